"""Backbones by name and by object: every family pretrains, resumes, evaluates, exports, and loads strict
into its own library with the same features; the spec round-trips; what cannot work is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from helpers import records, tiny_config
from torch import nn

from simclr import Backbone, EncoderSpec, load_encoder, pretrain
from simclr.config import resolve
from simclr.errors import SimCLRError
from simclr.eval.protocol import evaluate_linear
from simclr.use.export import export_encoder

timm = pytest.importorskip("timm", reason="the timm family needs timm: pip install simclr[timm] (.ci/run does)")

# (arch, backbone_kwargs): every family at 32 px
FAMILIES = [
    ("resnet18", {}),
    ("torchvision/resnet18", {}),
    ("torchvision/convnext_tiny", {}),
    ("torchvision/vit_b_32", {}),
    ("timm/resnet18", {}),
    ("timm/vit_tiny_patch16_224", {"patch_size": 8}),
    ("timm/convnext_atto", {}),
]


def wide(**over: object) -> object:
    """tiny_config at width 1 (the torchvision / timm models have their own sizes)."""
    return tiny_config(**{"model.width_multiplier": 1.0, **over})


def _cfg(arch: str, kwargs: dict, **over: object) -> object:
    return tiny_config(**{"model.arch": arch, "model.width_multiplier": 0.25 if arch == "resnet18" else 1.0,
                          "model.backbone_kwargs": kwargs or None, "data.image_size": 32, "data.limit": 32,
                          "train.batch_size": 8, "monitor.online_probe": False, **over})


def _library_model(arch: str, kwargs: dict, stem: str) -> nn.Module:
    """The library's own constructor with the classifier replaced by nn.Identity (and the small stem)."""
    name = arch.split("/", 1)[1]
    if arch.startswith("timm/"):
        model = timm.create_model(name, num_classes=0, img_size=32, **kwargs) if "vit" in name else \
            timm.create_model(name, num_classes=0, **kwargs)
    else:
        model = torchvision.models.get_model(name, **({"image_size": 32} if name.startswith("vit") else {}))
        if name.startswith("resnet"):
            model.fc = nn.Identity()
        elif name.startswith("convnext"):
            model.classifier[2] = nn.Identity()
        else:
            model.heads.head = nn.Identity()
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model.eval()


@pytest.mark.parametrize("arch, kwargs", FAMILIES, ids=[a for a, _ in FAMILIES])
def test_every_family_pretrains_resumes_evaluates_and_exports(tmp_path: Path, arch: str, kwargs: dict) -> None:
    run = tmp_path / "run"
    pretrain(_cfg(arch, kwargs, **{"train.max_steps": 2}), run)
    result = pretrain(_cfg(arch, kwargs, **{"train.max_steps": 3}), run, resume=True)
    assert result.step == 3 and [r["step"] for r in records(run)] == [1, 2, 3]
    encoder = load_encoder(run)
    assert encoder.arch == arch and encoder.image_size == 32
    scores = evaluate_linear(run, limit=32, device="cpu", precision="fp32")
    assert scores is not None and 0 <= scores["top1"] <= 1
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = encoder(x)
    assert h.shape == (3, encoder.feature_dim) and torch.isfinite(h).all()
    # the safetensors export rebuilds the same encoder
    back = load_encoder(export_encoder(encoder, "safetensors", tmp_path / "enc.safetensors"))
    torch.testing.assert_close(back(x), h)
    if arch == "resnet18":
        return  # simclr's ResNet: its torchvision / timm exports are tests/models/test_interop.py's
    fmt = arch.split("/", 1)[0]
    state = torch.load(export_encoder(encoder, fmt, tmp_path / f"enc.{fmt}"), weights_only=True)
    own = _library_model(arch, kwargs, encoder.stem_type)
    own.load_state_dict(state)  # strict: the library's own keys, classifier removed
    with torch.no_grad():
        torch.testing.assert_close(own(x), h)


def test_only_the_classifier_is_removed_so_h_is_what_the_models_head_sees() -> None:
    torch.manual_seed(0)
    enc = EncoderSpec("torchvision/convnext_tiny", image_size=32).build().eval()
    model = enc.model
    assert isinstance(model.classifier[2], nn.Identity) and enc.feature_dim == 768
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():  # ConvNeXt's head: LayerNorm2d, Flatten, then the removed Linear
        torch.testing.assert_close(enc(x), model.classifier[1](model.classifier[0](model.avgpool(model.features(x)))))
    vit = EncoderSpec("timm/vit_tiny_patch16_224", image_size=32, kwargs={"patch_size": 8}).build().eval()
    with torch.no_grad():  # timm with num_classes=0: the pooled, normed token its head would see
        torch.testing.assert_close(vit(x), vit.model.forward_head(vit.model.forward_features(x), pre_logits=True))


def test_the_spec_round_trips_and_stems_are_offered_where_they_fit() -> None:
    spec = EncoderSpec("timm/vit_tiny_patch16_224", 1.0, "imagenet", "imagenet", 32, {"patch_size": 8})
    assert EncoderSpec.from_dict(spec.to_dict()) == spec
    assert EncoderSpec.from_dict({"arch": "resnet50", "width_multiplier": 2, "stem": "auto", "image_size": 32}) == \
        EncoderSpec("resnet50", 2.0, "cifar", "none", 32)  # older files: defaults, auto resolved
    small = EncoderSpec("torchvision/resnet18", stem="cifar", image_size=32).build()
    assert small.model.conv1.kernel_size == (3, 3) and small.model.conv1.stride == (1, 1)
    assert isinstance(small.model.maxpool, nn.Identity)
    nopool = EncoderSpec("torchvision/resnet18", stem="nopool", image_size=28).build()
    assert nopool.model.conv1.kernel_size == (7, 7) and isinstance(nopool.model.maxpool, nn.Identity)
    with pytest.raises(SimCLRError, match="--stem nopool .* is for ResNet-like backbones"):
        resolve(wide(**{"model.arch": "torchvision/convnext_tiny", "model.stem": "nopool"}))
    with pytest.raises(SimCLRError, match="--stem cifar .* is for ResNet-like backbones"):
        resolve(wide(**{"model.arch": "torchvision/convnext_tiny", "model.stem": "cifar"}))
    cfg = resolve(wide(**{"model.arch": "torchvision/convnext_tiny", "data.image_size": 32}))
    assert cfg.model.stem == "auto"  # and the run builds ConvNeXt's own stem
    with pytest.raises(SimCLRError, match="--width-multiplier is simclr's ResNet's"):
        resolve(tiny_config(**{"model.arch": "timm/resnet18", "model.width_multiplier": 2.0}))
    with pytest.raises(SimCLRError, match="torchvision has no classification model 'convnext_tny'.*convnext_tiny"):
        resolve(wide(**{"model.arch": "torchvision/convnext_tny"}))
    with pytest.raises(SimCLRError, match="timm has no model"):
        resolve(wide(**{"model.arch": "timm/not_a_model"}))


def test_transformers_get_moco_v3s_recipe_unless_told_otherwise() -> None:
    vit = resolve(wide(**{"model.arch": "timm/vit_tiny_patch16_224", "train.batch_size": 256}))
    assert (vit.optim.optimizer, vit.optim.weight_decay, vit.optim.base_lr) == ("adamw", 0.1, 1.5e-4)
    # ConvNeXt too (its features collapsed under LARS in 22 steps on Fashion-MNIST; AdamW reached 0.860 linear
    # top-1 in 10 minutes: BENCHMARKS.md); other convolutional nets keep LARS
    cnn = resolve(wide(**{"model.arch": "torchvision/convnext_tiny"}))
    assert (cnn.optim.optimizer, cnn.optim.weight_decay, cnn.optim.base_lr) == ("adamw", 0.1, 1.5e-4)
    res = resolve(wide(**{"model.arch": "torchvision/resnet18"}))
    assert (res.optim.optimizer, res.optim.weight_decay, res.optim.base_lr) == ("lars", 1e-6, 0.3)
    told = resolve(wide(**{"model.arch": "timm/vit_tiny_patch16_224", "optim.optimizer": "lars"}))
    assert (told.optim.optimizer, told.optim.weight_decay) == ("lars", 1e-6)


def test_a_vit_whose_patches_do_not_tile_the_image_is_refused_before_the_run_directory(tmp_path: Path) -> None:
    with pytest.raises(SimCLRError, match="torchvision/vit_b_32 at 40 px: torchvision cannot build it"):
        pretrain(_cfg("torchvision/vit_b_32", {}, **{"data.image_size": 40}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


class TinyNet(nn.Module):
    """Any module: images -> a feature map (pooled by the Backbone)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 24, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_any_module_from_python(tmp_path: Path) -> None:
    net = TinyNet()
    pretrain(_cfg("resnet18", {}, **{"model.width_multiplier": 1.0, "train.max_steps": 2}), tmp_path / "run",
             backbone=net)
    enc = load_encoder(tmp_path / "run", backbone=TinyNet())
    assert enc.arch == "module/TinyNet" and enc.feature_dim == 24  # found by one dry forward
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), net.eval()(x).mean((2, 3)))  # the trained module's own weights
    with pytest.raises(SimCLRError, match="load it with load_encoder\\(path, backbone="):
        load_encoder(tmp_path / "run")
    wrapped = Backbone.wrap(TinyNet(), 32)
    assert wrapped.feature_dim == 24


def test_init_from_takes_a_file_in_the_librarys_own_layout(tmp_path: Path) -> None:
    """A torchvision ImageNet-style file (with its fc, wrapped and prefixed as checkpoints often are) loads
    strict into a torchvision/resnet18 run; its classifier is dropped."""
    torch.manual_seed(5)
    theirs = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in theirs.state_dict().items()}}, path)
    cfg = _cfg("torchvision/resnet18", {}, **{"model.init_from": str(path), "model.stem": "imagenet",
                                               "train.max_steps": 1, "optim.lr": 1e-12})
    pretrain(cfg, tmp_path / "run")
    enc = load_encoder(tmp_path / "run")
    theirs.fc = nn.Identity()
    torch.testing.assert_close(enc.model.conv1.weight, theirs.conv1.weight, atol=1e-6, rtol=0)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    bad = _cfg("torchvision/resnet18", {}, **{"model.init_from": str(tmp_path / "bad.pth")})
    with pytest.raises(SimCLRError, match="is not a torchvision/resnet18 state dict"):
        pretrain(bad, tmp_path / "run2")
