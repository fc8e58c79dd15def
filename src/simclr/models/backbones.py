"""Backbones by name: simclr's own ResNet, any torchvision classification model, any timm model.

An encoder is described by one ``EncoderSpec`` (``arch``, width, stem, input normalisation, image size,
the backbone's own keyword arguments): ``build()`` makes it, ``to_dict()`` / ``from_dict()`` carry it in
checkpoints, encoder files, exports and config files. Every path that builds, saves, loads or exports an
encoder goes through it.

- ``resnet18`` .. ``resnet152``: simclr's ResNet (``simclr.models.encoder``), the paper's network, with a
  width multiplier and the CIFAR stem.
- ``torchvision/<name>``: ``torchvision.models.get_model(name, weights=None, **kwargs)`` (resnet,
  wide_resnet, resnext, convnext, efficientnet, regnet, mobilenet, vit, swin, ...); a ViT is built for
  the run's image size.
- ``timm/<name>``: ``timm.create_model(name, num_classes=0, **kwargs)`` (the optional ``[timm]`` extra),
  with ``img_size`` = the run's image size where the model takes one.

Only the final classification Linear is removed (replaced by ``nn.Identity``), so h is what the model's
own head sees. The small-image stem (``cifar``: a 3x3 stride-1 first convolution, no max-pool) and ``nopool``
(the model's own stem without its max-pool) are offered where the model has ResNet's ``conv1`` and
``maxpool``, and refused in one line elsewhere;
``imagenet`` keeps the model's own stem. Any ``nn.Module`` works from Python too (``Backbone.wrap``),
its feature dimension found by one dry forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from simclr.errors import SimCLRError, suggest
from simclr.models.encoder import ARCHS, INPUT_NORMS, STEMS, ResNet

FAMILIES = {
    "simclr": "resnet18 (default), resnet34, resnet50, resnet101, resnet152: simclr's ResNet (width multiplier, "
              "CIFAR stem)",
    "torchvision": "torchvision/<name>: any torchvision classification model, e.g. torchvision/resnet50, "
                   "torchvision/convnext_tiny, torchvision/efficientnet_b0, torchvision/vit_b_16, torchvision/swin_t",
    "timm": "timm/<name>: any timm model (pip install 'simclr[timm]'), e.g. timm/resnet50, timm/convnext_atto, "
            "timm/vit_tiny_patch16_224, timm/efficientnet_b0",
}
EXAMPLES = {"simclr": "resnet18", "torchvision": "torchvision/convnext_tiny", "timm": "timm/vit_tiny_patch16_224"}
# transformers get MoCo v3's optimiser defaults (AdamW, lr 1.5e-4 x B/256, weight decay 0.1)
TRANSFORMER = re.compile(r"(^|[/_])(vit|deit|swin|beit|eva|cait|xcit|levit|pvt|twins|mvit|maxvit|crossvit|tnt)")


def family(arch: str) -> str:
    """``simclr``, ``torchvision`` or ``timm``: who builds ``arch``."""
    if arch.startswith("torchvision/"):
        return "torchvision"
    if arch.startswith("timm/"):
        return "timm"
    if arch.startswith("module/"):
        return "module"
    return "simclr"


def is_transformer(arch: str) -> bool:
    return family(arch) != "simclr" and bool(TRANSFORMER.search(arch.lower()))


def wants_adamw(arch: str) -> bool:
    """Backbones whose default recipe is AdamW (MoCo v3's for ViTs: 1.5e-4 x B/256, weight decay 0.1), not
    LARS: the transformers, and ConvNeXt (trained with AdamW by its authors; under LARS its features collapsed
    to a constant within 22 steps here, BENCHMARKS.md)."""
    return is_transformer(arch) or (family(arch) != "simclr" and "convnext" in arch.lower())


def _timm() -> Any:  # noqa: ANN401
    try:
        import timm
    except ImportError as e:
        raise SimCLRError("timm/<name> backbones need timm: pip install 'simclr[timm]'") from e
    return timm


def check_arch(arch: str) -> None:
    """Refuse, in one line, an ``--arch`` no family builds."""
    fam, name = family(arch), arch.split("/", 1)[-1]
    if fam == "simclr":
        if arch not in ARCHS:
            raise SimCLRError(f"--arch {arch!r} is not valid{suggest(arch, list(ARCHS))}: choose one of "
                              f"{', '.join(ARCHS)}, or torchvision/<name>, timm/<name> (simclr backbones lists them)")
    elif fam == "torchvision":
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models)
        if name not in names:
            raise SimCLRError(f"--arch {arch}: torchvision has no classification model {name!r}{suggest(name, names)}")
    elif fam == "timm":
        timm = _timm()
        if not timm.is_model(name):
            raise SimCLRError(f"--arch {arch}: timm has no model {name!r}{suggest(name, timm.list_models())}")
    # module/<name>: a module given from Python (pretrain(..., backbone=module)); nothing to check by name


def resnet_like(model: nn.Module) -> bool:
    """Has ResNet's stem (``conv1`` and ``maxpool``): the small-image stem can replace it."""
    return isinstance(getattr(model, "conv1", None), nn.Conv2d) and hasattr(model, "maxpool")


def resolve_stem(stem: str, image_size: int, arch: str = "resnet18") -> str:
    """``auto`` -> ``cifar`` at <= 32 px for simclr's ResNet and ResNet-like backbones (PAPER.md: a missing
    CIFAR stem costs a lot), else ``imagenet`` (the model's own stem)."""
    if stem not in ("auto", *STEMS):
        raise SimCLRError(f"unknown stem {stem!r}: choose one of auto, {', '.join(STEMS)}")
    if stem != "auto":
        return stem
    small = image_size <= 32
    if family(arch) == "simclr":
        return "cifar" if small else "imagenet"
    resnetish = re.match(r"^(resnet|wide_resnet|resnext|resnetv2|seresnet|resnetrs|resnest)", arch.split("/", 1)[1])
    return "cifar" if small and resnetish else "imagenet"


STEM_WORDS = {"cifar": "the small-image stem: 3x3 stride-1 conv, no max-pool",
              "nopool": "the ImageNet stem without its max-pool"}


def _small_stem(model: nn.Module, arch: str, stem: str) -> None:
    """ResNet's stem made ``cifar`` (a 3x3 stride-1 conv1, no max-pool) or ``nopool`` (no max-pool)."""
    if not resnet_like(model):
        raise SimCLRError(f"--stem {stem} ({STEM_WORDS[stem]}) is for ResNet-like backbones; {arch} has no conv1 / "
                          "maxpool stem: use --stem imagenet (its own)")
    if stem == "cifar":
        conv = model.conv1
        model.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()


def _drop_classifier(model: nn.Module, arch: str) -> None:
    """Replace the last ``nn.Linear`` (the classification layer) by ``nn.Identity``."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    if last is None:
        raise SimCLRError(f"{arch} has no final Linear layer to remove")
    parent = model.get_submodule(last.rsplit(".", 1)[0]) if "." in last else model
    setattr(parent, last.rsplit(".", 1)[-1], nn.Identity())


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder is: enough to build it again (module docstring)."""

    arch: str = "resnet18"
    width_multiplier: float = 1.0
    stem: str = "imagenet"  # resolved: cifar (the small-image stem) or imagenet (the model's own)
    input_norm: str = "none"
    image_size: int = 224
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return family(self.arch)

    def library_model(self, classifier: bool = False) -> nn.Module:
        """The torchvision / timm model itself, randomly initialised, stem as specified; with ``classifier``
        its classification layer kept (to load a file of the library's own, then ``strip``)."""
        name, kwargs = self.arch.split("/", 1)[1], dict(self.kwargs)
        if self.family == "torchvision":
            import torchvision

            if name.startswith("vit_") and "image_size" not in kwargs:
                kwargs["image_size"] = self.image_size
            try:
                model = torchvision.models.get_model(name, weights=None, **kwargs)
            except (TypeError, ValueError, AssertionError) as e:
                raise SimCLRError(f"--arch {self.arch} at {self.image_size} px: torchvision cannot build it "
                                  f"({e})") from e
        else:
            timm = _timm()
            extra = {} if classifier else {"num_classes": 0}
            try:
                model = timm.create_model(name, pretrained=False, img_size=self.image_size, **extra, **kwargs)
            except TypeError:  # a model without an input size
                model = timm.create_model(name, pretrained=False, **extra, **kwargs)
            except (ValueError, AssertionError, RuntimeError) as e:
                raise SimCLRError(f"--arch {self.arch} at {self.image_size} px: timm cannot build it ({e})") from e
        if self.stem in ("cifar", "nopool"):
            _small_stem(model, self.arch, self.stem)
        return model

    def strip(self, model: nn.Module) -> nn.Module:
        """``model`` (from ``library_model(classifier=True)``) without its classification layer."""
        if self.family == "timm":
            model.reset_classifier(0)
        else:
            _drop_classifier(model, self.arch)
        return model

    def build(self, zero_init_residual: bool = True) -> nn.Module:
        """A randomly initialised encoder f: images (B, 3, H, W) in [0, 1] -> h (B, feature_dim)."""
        if self.input_norm not in INPUT_NORMS:
            raise SimCLRError(f"unknown input normalisation {self.input_norm!r}: choose one of "
                              f"{', '.join(INPUT_NORMS)}")
        if self.family == "simclr":
            if self.kwargs:
                raise SimCLRError(f"--arch {self.arch} (simclr's ResNet) takes no backbone_kwargs")
            encoder = ResNet(self.arch, self.width_multiplier, self.stem, zero_init_residual, self.input_norm)
            encoder.image_size = self.image_size  # type: ignore[assignment]
            return encoder
        check_arch(self.arch)
        if self.family == "module":
            raise SimCLRError(f"{self.arch} is a module given from Python: pass it again (pretrain(..., backbone=...), "
                              "load_encoder(..., backbone=...))")
        if self.width_multiplier != 1:
            raise SimCLRError(f"--width-multiplier is simclr's ResNet's; {self.arch} has its own sizes "
                              f"(got x{self.width_multiplier:g}): choose a wider or narrower model by name")
        model = self.library_model()
        if self.family == "torchvision":
            _drop_classifier(model, self.arch)
        return Backbone(model, self)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain values files keep (``backbone_kwargs`` only when given)."""
        out: dict[str, Any] = {"arch": self.arch, "width_multiplier": self.width_multiplier, "stem": self.stem,
                               "input_norm": self.input_norm, "image_size": int(self.image_size)}
        if self.kwargs:
            out["backbone_kwargs"] = dict(self.kwargs)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderSpec:
        """A spec from ``to_dict``'s keys (files written before a key existed take its default)."""
        arch = d["arch"]
        size = int(d.get("image_size") or 224)
        return cls(arch, float(d.get("width_multiplier", 1.0)), resolve_stem(d.get("stem", "auto"), size, arch),
                   d.get("input_norm", "none") or "none", size, dict(d.get("backbone_kwargs") or {}))

    def describe(self) -> str:
        width = f" x{self.width_multiplier:g}" if self.family == "simclr" else ""
        kwargs = f" {self.kwargs}" if self.kwargs else ""
        return f"{self.arch}{width} stem {self.stem}{kwargs}"


def spec_of(encoder: nn.Module) -> EncoderSpec:
    """The spec of a built encoder (simclr's ResNet, or a ``Backbone``)."""
    if isinstance(encoder, Backbone):
        return encoder.spec
    if isinstance(encoder, ResNet):
        return EncoderSpec(encoder.arch, float(encoder.width_multiplier), encoder.stem_type, encoder.input_norm,
                           int(getattr(encoder, "image_size", None) or 224))
    raise SimCLRError(f"{type(encoder).__name__} is not a simclr encoder (ResNet or Backbone)")


class Backbone(nn.Module):
    """A torchvision / timm model (or any module) as simclr's encoder f: [0, 1] images -> h (B, feature_dim).

    ``model`` holds the library's own module (state-dict keys ``model.<its keys>``), classification layer
    removed; the input normalisation (``input_norm``) runs first, inside, as in simclr's ResNet. A 4-D
    output (a feature map) is average-pooled, any other flattened.
    """

    def __init__(self, model: nn.Module, spec: EncoderSpec, feature_dim: int | None = None) -> None:
        super().__init__()
        self.model, self.spec = model, spec
        self.arch, self.width_multiplier, self.stem_type = spec.arch, 1.0, spec.stem
        self.input_norm = spec.input_norm
        stats = INPUT_NORMS[spec.input_norm]
        self.register_buffer("input_mean", torch.tensor(stats[0]).view(1, 3, 1, 1) if stats else None, False)
        self.register_buffer("input_std", torch.tensor(stats[1]).view(1, 3, 1, 1) if stats else None, False)
        self.image_size = spec.image_size
        self.feature_dim = feature_dim if feature_dim is not None else self._dry_run_dim()

    @classmethod
    def wrap(cls, module: nn.Module, image_size: int, name: str = "module", input_norm: str = "none") -> Backbone:
        """Any ``nn.Module`` mapping images to features (or feature maps) as an encoder (from Python)."""
        return cls(module, EncoderSpec(f"module/{name}", 1.0, "imagenet", input_norm, image_size))

    def _dry_run_dim(self) -> int:
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                h = self(torch.zeros(2, 3, self.image_size, self.image_size))
        except Exception as e:  # noqa: BLE001 - any failure of a foreign model: one line
            raise SimCLRError(f"{self.arch} does not run on {self.image_size} px images: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e
        finally:
            self.train(was)
        if h.dim() != 2:
            raise SimCLRError(f"{self.arch} gives features of shape {tuple(h.shape[1:])}, not a vector per image")
        return int(h.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_mean is not None:
            x = (x - self.input_mean) / self.input_std
        h = self.model(x)
        if isinstance(h, (tuple, list)):
            h = h[0]
        if h.dim() == 4:
            return h.mean((2, 3))
        return h.flatten(1) if h.dim() > 2 else h


def library_names(library: str) -> list[str]:
    """The model names ``torchvision/<name>`` or ``timm/<name>`` takes."""
    if library == "torchvision":
        import torchvision

        return list(torchvision.models.list_models(module=torchvision.models))
    return list(_timm().list_models())


def backbone_rows() -> list[tuple[str, str, str]]:
    """(family, example name, what it is) for ``simclr backbones``."""
    return [(fam, EXAMPLES[fam], FAMILIES[fam]) for fam in FAMILIES]


__all__ = [
    "EXAMPLES", "FAMILIES", "STEM_WORDS", "Backbone", "EncoderSpec", "backbone_rows", "check_arch", "family",
    "is_transformer", "library_names", "resnet_like", "resolve_stem", "spec_of", "wants_adamw",
]
