"""The run configuration: small dataclasses, one a section, every field with its help text.

A field's help is where the command line finds it: ``simclr pretrain`` has one flag per field
(``--`` and the field's name with dashes, unless ``flag`` names another), with that help, except the
fields marked ``cli=False``, which are keys of a ``--config`` YAML file only. ``None`` is "auto":
``simclr.config.resolve`` fills it from the dataset's defaults, so a run's ``config.yaml`` is complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from simclr.augment import AugmentConfig


def opt(default: Any, help: str = "", *, flag: str | None = None, cli: bool = True) -> Any:  # noqa: A002
    """A config field with its command-line help (``cli=False``: a YAML key only)."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


@dataclass
class DataConfig:
    dataset: str = opt("synthetic", "synthetic (default), folder, cifar10, cifar100, stl10, mnist, fashion-mnist")
    data_dir: str | None = opt(None, "where the dataset lives (a folder of images for 'folder')")
    image_size: int | None = opt(None, "training crop side (default: the dataset's own; 224 for folders)")
    limit: int | None = opt(None, "use only the first N images")
    workers: int = opt(2, "DataLoader workers for folder datasets (default 2)")


@dataclass
class ModelConfig:
    arch: str = opt("resnet18", "resnet18 (default), resnet34, resnet50, resnet101, resnet152")
    width_multiplier: float = opt(1.0, "scales every filter count, stem included (0.25-4)")
    stem: str = opt("auto", "auto (cifar at <= 32 px), cifar or imagenet")
    head: str = opt("mlp", "projection head: mlp (default), linear or none")
    head_layers: int = opt(2, "mlp head depth: 2 = SimCLR v1 (default), 3 = v2")
    head_bn: bool = opt(True, "BN in the head as the official code (default on)")
    head_out_bn: bool = opt(
        True, "BN after the head's last layer too, as the official code (default on; off: hidden layers only)")
    proj_dim: int = opt(128, "dimension of z (default 128)")
    zero_init_residual: bool = opt(
        True, "start each residual block's last BN gamma at 0, as the official code (default on)")
    input_norm: str = opt(
        "none", "none (default, the official code) or imagenet (ImageNet mean/std inside the encoder, as "
        "torchvision users do)")


@dataclass
class AugmentSection:
    color_strength: float | None = opt(None, "colour distortion strength s (1.0 ImageNet, 0.5 CIFAR)")
    blur: bool | None = opt(None, "Gaussian blur (default: on above 32 px)")
    crop_scale: tuple[float, float] | None = opt(None, "crop area range; auto: (0.08, 1), per dataset where set",
                                                 cli=False)
    crop_ratio: tuple[float, float] = opt((3 / 4, 4 / 3), "crop aspect-ratio range", cli=False)
    crop_interpolation: str = opt(
        "bicubic", "resize of the random crop: bicubic (default, the paper) or bilinear (torchvision's default)")
    flip_p: float = opt(0.5, "probability of a horizontal flip", cli=False)
    color_p: float = opt(0.8, "probability of the colour jitter", cli=False)
    grayscale_p: float = opt(0.2, "probability of grayscale", cli=False)
    blur_p: float = opt(0.5, "probability of the blur (when on)", cli=False)
    blur_sigma: tuple[float, float] = opt((0.1, 2.0), "blur sigma range", cli=False)
    brightness: str = opt("multiplicative", "multiplicative (official v2, torchvision) or additive (v1)", cli=False)
    contrast: str = opt("gray-mean", "gray-mean (torchvision) or channel-mean (official code)", cli=False)
    on: str = opt(
        "device", "device (default: batched on the training device) or workers (torchvision PIL per image, "
        "the reference)", flag="--augment-on")

    def to_augment_config(self) -> AugmentConfig:
        assert self.color_strength is not None and self.blur is not None and self.crop_scale is not None
        return AugmentConfig(
            crop=True,
            crop_scale=tuple(self.crop_scale),  # type: ignore[arg-type]
            crop_ratio=tuple(self.crop_ratio),  # type: ignore[arg-type]
            crop_interpolation=self.crop_interpolation,
            flip_p=self.flip_p,
            color_strength=self.color_strength,
            color_p=self.color_p,
            brightness=self.brightness,
            contrast=self.contrast,
            grayscale_p=self.grayscale_p,
            blur=self.blur,
            blur_p=self.blur_p,
            blur_sigma=tuple(self.blur_sigma),  # type: ignore[arg-type]
        )


@dataclass
class LossConfig:
    temperature: float | None = opt(
        None, "NT-Xent tau (0.1 ImageNet, 0.5 CIFAR; too high or low costs points)")


@dataclass
class OptimConfig:
    optimizer: str = opt("lars", "lars (default), sgd or adamw")
    lr: float | None = opt(None, "peak learning rate (default: --base-lr scaled by the batch size)")
    base_lr: float | None = opt(
        None, "lr per 256 images (linear) or per sqrt(B) (sqrt); lars 0.3, sgd 0.06, adamw 1e-3")
    lr_scaling: str = opt("linear", "linear (base x B/256) or sqrt (base x sqrt(B), base 0.075)")
    weight_decay: float = opt(1e-6, "weight decay, not on biases and BN (default 1e-6)")
    momentum: float = opt(0.9, "momentum (default 0.9)")
    warmup_epochs: float | None = opt(None, "linear warm-up length (default 10%% of epochs, at most 10)")
    lr_schedule: str = opt(
        "step", "step (default: the lr moves every step) or epoch (held through each epoch, as CosineAnnealingLR "
        "per epoch)")
    decay_1d: bool = opt(
        False, "weight decay on biases and BN parameters too, as torch's plain optimisers (default off, as the paper)")


@dataclass
class TrainConfig:
    epochs: int = opt(100, "epochs (default 100)")
    batch_size: int = opt(256, "images per step, 2 views each (default 256)")
    max_steps: int | None = opt(None, "stop after this many steps in total")
    precision: str = opt("fp32", "fp32 (default), bf16 (autocast) or fp16 (GPU, grad scaler)")
    channels_last: bool | None = opt(None, "channels_last memory format (default: on)")
    seed: int = opt(0, "seed for weights, data order and augmentation (default 0)")
    device: str = opt("auto", "auto (default), cpu, cuda, cuda:N")
    log_every: int = opt(
        10, "steps between log lines and metrics records (default 10); the loss is read from the device only "
        "then, so a non-finite loss stops the run at most this many steps late")
    chunk_size: int | None = opt(
        None, "exact gradient of the batch in chunks of this many images (bounded memory; BN sees a chunk)")
    global_bn: bool | None = opt(None, "BN statistics over all ranks under torchrun (default: on)")
    bn_views: str = opt(
        "joint", "joint (default, the official code: one forward of both views, BN statistics over all 2N) or "
        "per-view (one forward per view, BN statistics of each view's N, as implementations that call the model "
        "per view)")
    dist_backend: str | None = opt(None, "torch.distributed backend: nccl (GPUs) or gloo (default by device)")
    checkpoint_every_steps: int | None = opt(
        None, "also write the checkpoint every N steps mid-epoch (a crash loses at most N steps)")
    compile: bool = opt(False, "torch.compile the model (off by default; pays off on long GPU runs)")
    save_every_epoch: bool = opt(
        False, "keep the encoder of every epoch as encoder-epochE.pt (for accuracy-vs-time curves)")


@dataclass
class MonitorConfig:
    online_probe: bool | None = opt(
        None, "train a linear classifier on stop-gradient h beside pretraining, with its own optimiser, and "
        "report its accuracy (default: on when the dataset has labels)")
    probe_lr: float = opt(0.1, "peak lr of the online probe (SGD, Nesterov momentum 0.9; follows the run's "
                               "warm-up + cosine)", cli=False)
    knn_every: int = opt(
        0, "every E epochs, the kNN top-1 of a held-out part (a bank of train images against test images), "
        "in metrics and the progress line (default 0: off)")
    knn_k: int = opt(200, "neighbours of the kNN monitor", cli=False)
    knn_bank: int | None = opt(
        None, "train images in the kNN monitor's bank; auto: a tenth of the set, 1000 to 20000", cli=False)
    knn_queries: int | None = opt(
        None, "test images the kNN monitor classifies; auto: a fifth of the bank, at least 200", cli=False)


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentSection = field(default_factory=AugmentSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for section in d.values():
            for k, v in section.items():
                if isinstance(v, tuple):
                    section[k] = list(v)
        return d


def sections() -> dict[str, type]:
    """Section name -> its dataclass, in order."""
    return {f.name: f.default_factory for f in dataclasses.fields(PretrainConfig)}  # type: ignore[misc]


__all__ = [
    "AugmentSection", "DataConfig", "LossConfig", "ModelConfig", "MonitorConfig", "OptimConfig", "PretrainConfig",
    "TrainConfig", "opt", "sections",
]
