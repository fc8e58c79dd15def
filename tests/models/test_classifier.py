"""The classifier on an encoder: the kept head layers, and classifier.pt's round trip."""

from __future__ import annotations

from pathlib import Path

import torch

from simclr import Classifier, build_model, load_classifier
from simclr.io import atomic_save
from simclr.models.classifier import classifier_payload
from simclr.models.heads import hidden_layers


def test_hidden_layers_have_the_heads_own_keys_and_values() -> None:
    model = build_model("resnet18", 0.25, "cifar", 16, head="mlp", head_layers=3)
    kept = hidden_layers(model.encoder.feature_dim, 1)
    kept.load_state_dict({k: v for k, v in model.head.state_dict().items() if k.split(".")[0] in ("0", "1")})
    model.eval()
    kept.eval()
    h = model.encoder(torch.rand(4, 3, 16, 16))
    assert torch.equal(kept(h), model.head[:3](h))  # Linear, BN, ReLU: the first layer of g


def test_classifier_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = build_model("resnet18", 0.25, "cifar", 16, head="mlp", head_layers=3)
    model = Classifier(base.encoder, 5, hidden_layers(base.encoder.feature_dim, 2))
    model.classes = list("abcde")
    x = torch.rand(3, 3, 16, 16)
    model(torch.rand(8, 3, 16, 16))  # one train-mode forward moves the BN statistics
    model.eval()
    want = model(x)
    atomic_save(classifier_payload(model, 16, {"dataset": "synthetic"}), tmp_path / "classifier.pt")
    torch.load(tmp_path / "classifier.pt", weights_only=True)  # plain tensors and containers
    loaded = load_classifier(tmp_path)
    assert not loaded.training and loaded.image_size == 16 and loaded.classes == list("abcde")
    assert loaded.head_layers == 2 and loaded.num_classes == 5
    assert torch.equal(loaded(x), want)
