"""Weights that travel: torchvision's and timm's own ResNets load simclr's exports strictly and give the
same features, and simclr loads torchvision-layout state dicts (bare, wrapped, prefixed)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from simclr import Classifier, load_encoder
from simclr.errors import SimCLRError
from simclr.models.encoder import ARCHS, ResNet
from simclr.use.export import export_encoder, torchvision_state, usage_note


def _trained_like(arch: str, stem: str = "imagenet", input_norm: str = "none") -> ResNet:
    """An encoder with non-trivial weights and BN statistics (a few train-mode forwards)."""
    torch.manual_seed(0)
    enc = ResNet(arch, 1.0, stem, zero_init_residual=False, input_norm=input_norm)
    with torch.no_grad():
        enc.train()
        for _ in range(2):
            enc(torch.rand(4, 3, 32, 32))
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return enc.eval()


def _torchvision(arch: str, stem: str, num_classes: int | None = None) -> nn.Module:
    model = getattr(torchvision.models, arch)(weights=None, **({"num_classes": num_classes} if num_classes else {}))
    if stem == "cifar":  # the two module changes the README states
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    if stem == "nopool":  # the one change its usage note states
        model.maxpool = nn.Identity()
    if num_classes is None:
        model.fc = nn.Identity()
    return model.eval()


@pytest.mark.parametrize("arch", list(ARCHS))
def test_torchvision_loads_the_export_strictly_and_gives_h(arch: str, tmp_path: Path) -> None:
    enc = _trained_like(arch)
    path = export_encoder(enc, "torchvision", tmp_path / "tv.pth")
    model = _torchvision(arch, "imagenet")
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), enc(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("input_norm", ["none", "imagenet"])
def test_the_cifar_stem_loads_after_the_two_module_changes(tmp_path: Path, input_norm: str) -> None:
    enc = _trained_like("resnet18", "cifar", input_norm)
    model = _torchvision("resnet18", "cifar")
    model.load_state_dict(torch.load(export_encoder(enc, "torchvision", tmp_path / "c.pth"), weights_only=True))
    x = torch.rand(3, 3, 32, 32)
    if input_norm == "imagenet":  # torchvision models take normalised input: the user's transform does it
        x_tv = torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(x)
    else:
        x_tv = x
    with torch.no_grad():
        assert torch.allclose(model(x_tv), enc(x), atol=1e-5, rtol=1e-5)


def test_the_nopool_stem_loads_after_its_one_module_change(tmp_path: Path) -> None:
    enc = _trained_like("resnet18", "nopool")
    assert "maxpool = nn.Identity()" in usage_note(enc, "torchvision", with_fc=False)
    model = _torchvision("resnet18", "nopool")
    model.load_state_dict(torch.load(export_encoder(enc, "torchvision", tmp_path / "n.pth"), weights_only=True))
    x = torch.rand(3, 3, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), enc(x), atol=1e-5, rtol=1e-5)
        # and it is not the ImageNet stem's network: the max-pool changes the features
        assert not torch.allclose(model(x), _with_pool(model)(x), atol=1e-3)


def _with_pool(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    model.maxpool = nn.MaxPool2d(3, 2, 1)
    return model


def test_a_fine_tuned_classifier_exports_its_fc(tmp_path: Path) -> None:
    enc = _trained_like("resnet34")
    clf = Classifier(enc, 7).eval()
    with torch.no_grad():
        clf.fc.weight.normal_()
    state = torchvision_state(enc, clf.fc)
    model = _torchvision("resnet34", "imagenet", num_classes=7)
    model.load_state_dict(state, strict=True)
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(model(x), clf(x), atol=1e-5, rtol=1e-5)


def test_a_width_multiplier_is_refused_in_one_line() -> None:
    with pytest.raises(SimCLRError, match="no width multiplier: this encoder is x0.5"):
        torchvision_state(ResNet("resnet18", 0.5))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_timm_loads_the_export_strictly_and_gives_h(arch: str, tmp_path: Path) -> None:
    timm = pytest.importorskip("timm", reason="pip install 'simclr[timm]' (CI installs it)")
    enc = _trained_like(arch)
    model = timm.create_model(arch, pretrained=False, num_classes=0).eval()
    model.load_state_dict(torch.load(export_encoder(enc, "timm", tmp_path / "t.pth"), weights_only=True), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), enc(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("arch", "stem"), [("resnet18", "imagenet"), ("resnet50", "imagenet"),
                                            ("resnet34", "cifar"), ("resnet101", "imagenet")])
@pytest.mark.parametrize("wrap", ["bare", "state_dict+module.", "model+backbone.", "encoder."])
def test_load_encoder_reads_torchvision_state_dicts(arch: str, stem: str, wrap: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = _torchvision(arch, stem, num_classes=10)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 32, 32))  # BN statistics that are not the init's
    model.eval()
    state = model.state_dict()
    if wrap == "state_dict+module.":
        obj = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    elif wrap == "model+backbone.":  # lightly-style: the backbone beside a projection head
        obj = {"model": {**{f"backbone.{k}": v for k, v in state.items()},
                         "projection_head.layers.0.weight": torch.zeros(4, 4)}}
    elif wrap == "encoder.":
        obj = {f"encoder.{k}": v for k, v in state.items()}
    else:
        obj = state
    torch.save(obj, tmp_path / "w.pth")
    enc = load_encoder(tmp_path / "w.pth")
    assert (enc.arch, enc.stem_type, enc.width_multiplier) == (arch, stem, 1.0) and not enc.training
    model.fc = nn.Identity()
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(enc(x), model(x), atol=1e-5, rtol=1e-5)


def test_unknown_or_missing_keys_are_refused_listing_them(tmp_path: Path) -> None:
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer2.0.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(SimCLRError, match=r"unknown layer2\.0\.extra\.weight\); nothing loaded"):
        load_encoder(tmp_path / "extra.pth")
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer3.1.bn2.running_var"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(SimCLRError, match=r"missing layer3\.1\.bn2\.running_var"):
        load_encoder(tmp_path / "missing.pth")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(SimCLRError, match="not a ResNet state dict"):
        load_encoder(tmp_path / "other.pth")


def test_export_then_evaluate_the_file_equals_evaluating_the_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from simclr.cli.main import main

    run = tmp_path / "run"
    tiny = ["--limit", "64", "--image-size", "16"]
    assert main(["pretrain", "--out", str(run), *tiny, "--batch-size", "16", "--max-steps", "2",
                 "--no-online-probe"]) == 0
    assert main(["export", "--run", str(run), "--format", "torchvision", "--out", str(tmp_path / "r18.pth")]) == 0
    out = capsys.readouterr().out
    assert "no fc: set model.fc = nn.Identity()" in out and "RGB images in [0, 1], not normalised" in out
    model = _torchvision("resnet18", "imagenet")
    model.load_state_dict(torch.load(tmp_path / "r18.pth", weights_only=True), strict=True)
    results = []
    for source in (run, tmp_path / "r18.pth"):
        assert main(["linear-eval", "--run", str(source), "--dataset", "synthetic", *tiny]) == 0
        results.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert results[0] == results[1] and results[0].startswith("linear-eval: top1")


def test_hf_folder_loads_back_and_its_card_is_filled_from_the_run(tmp_path: Path) -> None:
    import json

    from simclr.cli.main import main

    run = tmp_path / "run"
    assert main(["pretrain", "--out", str(run), "--limit", "64", "--image-size", "16", "--batch-size", "16",
                 "--max-steps", "3", "--width-multiplier", "0.25", "--no-online-probe"]) == 0
    (run / "linear.json").write_text(json.dumps({"top1": 0.4321, "top5": 0.9, "random_init": False}))
    assert main(["export", "--run", str(run), "--format", "hf", "--out", str(tmp_path / "hub")]) == 0
    hub = tmp_path / "hub"
    assert sorted(p.name for p in hub.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((hub / "config.json").read_text())
    assert (config["architecture"], config["width_multiplier"], config["image_size"], config["feature_dim"]) == (
        "resnet18", 0.25, 16, 128)
    assert config["training"]["steps"] == 3 and config["training"]["dataset"] == "synthetic"
    card = (hub / "README.md").read_text()
    assert "| linear evaluation | 43.21 | 90.00 |" in card and "3 steps" in card and "datasets: [synthetic]" in card
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(load_encoder(hub)(x), load_encoder(run)(x))


def test_pretrain_continues_from_torchvision_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from simclr.cli.main import main

    torch.manual_seed(5)
    tv = torchvision.models.resnet18(weights=None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, tmp_path / "tv.pth")
    run = tmp_path / "run"
    tiny = ["--limit", "64", "--image-size", "16", "--batch-size", "16", "--no-online-probe", "--stem", "imagenet"]
    assert main(["pretrain", "--out", str(run), *tiny, "--max-steps", "1", "--lr", "1e-12",
                 "--init-from", str(tmp_path / "tv.pth")]) == 0
    assert "encoder initialised from" in capsys.readouterr().err
    enc = load_encoder(run)
    pairs = (("stem.0.weight", tv.conv1.weight), ("layer3.0.shortcut.0.weight", tv.layer3[0].downsample[0].weight),
             ("layer4.1.conv2.weight", tv.layer4[1].conv2.weight))
    for name, w in pairs:
        assert torch.allclose(enc.state_dict()[name], w, atol=1e-9), name  # lr 1e-12: one step moves nothing
    # weights of another network are refused in one line, before the run directory exists
    assert main(["pretrain", "--out", str(tmp_path / "bad"), *tiny, "--arch", "resnet34",
                 "--init-from", str(tmp_path / "tv.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a resnet18 x1 with the imagenet stem" in err[0] and "--arch" in err[0]
    assert not (tmp_path / "bad").exists()
