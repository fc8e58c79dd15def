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

from simclr.augment import OPS, AugmentConfig

LOGGER_NAMES = ("tensorboard", "csv", "wandb", "mlflow")  # --logger's choices (simclr.train.loggers)


def opt(default: Any, help: str = "", *, flag: str | None = None, cli: bool = True) -> Any:  # noqa: A002
    """A config field with its command-line help (``cli=False``: a YAML key only)."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


@dataclass
class DataConfig:
    dataset: str = opt("synthetic", "synthetic (default), folder, webdataset, cifar10, cifar100, stl10, mnist, "
                                     "fashion-mnist")
    data_dir: str | None = opt(None, "where the dataset lives (a folder of images for 'folder'; the shards for "
                                     "'webdataset': 'dir/shard-{000000..000099}.tar')")
    image_size: int | None = opt(None, "training crop side (default: the dataset's own; 224 for folders)")
    limit: int | None = opt(None, "use only the first N images")
    workers: int = opt(2, "DataLoader workers for folder datasets (default 2)")


@dataclass
class ModelConfig:
    method: str = opt(
        "simclr", "the pretraining method: simclr (default); others registered with simclr.methods.register")
    method_options: dict[str, Any] | None = opt(
        None, "settings of a method registered outside simclr, read by its own code (e.g. an EMA momentum)",
        cli=False)
    arch: str = opt(
        "resnet18", "the encoder f: resnet18 (default), resnet34, resnet50, resnet101, resnet152 (simclr's ResNet), "
        "torchvision/<name> (any torchvision classification model) or timm/<name> (any timm model, pip install "
        "'simclr[timm]'); simclr backbones lists the families")
    width_multiplier: float = opt(1.0, "scales every filter count, stem included (0.25-4; simclr's ResNet only)")
    stem: str = opt("auto", "auto (cifar at <= 32 px for ResNet-like backbones), cifar (3x3 stride-1 conv, no "
                            "max-pool), imagenet (the model's own) or nopool (ResNet's own without its max-pool: a "
                            "28 px image gives a 14x14 first stage)")
    backbone_kwargs: dict[str, Any] | None = opt(
        None, "keyword arguments of the torchvision / timm constructor, e.g. {patch_size: 4} for a timm ViT on "
        "28 px images", cli=False)
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
    init_from: str | None = opt(
        None, "start the encoder from these weights and pretrain on: a run, an encoder.pt, a .safetensors, an "
        "hf folder, or a torchvision-layout ResNet state dict (torchvision, lightly, solo-learn); the head starts "
        "fresh; --arch, --width-multiplier and --stem must match the weights")


@dataclass
class AugmentSection:
    crop: bool = opt(True, "random resized crop (off: every view is the whole image, resized)", cli=False)
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
    order: tuple[str, ...] = opt(
        OPS, "the order the ops run in, a permutation of crop, flip, color, grayscale, blur (default this one, "
        "the paper's)", cli=False)
    identity_view: bool = opt(
        False, "the first view is the image itself, only the second is augmented (the paper's Figure 5 "
        "ablation setting; default off: both views augmented)", cli=False)
    on: str = opt(
        "device", "device (default: batched on the training device) or workers (torchvision PIL per image, "
        "the reference)", flag="--augment-on")

    def to_augment_config(self) -> AugmentConfig:
        assert self.color_strength is not None and self.blur is not None and self.crop_scale is not None
        return AugmentConfig(
            crop=self.crop,
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
            order=tuple(self.order),
            identity_view=self.identity_view,
        )


@dataclass
class LossConfig:
    name: str = opt(
        "ntxent", "ntxent (default, SimCLR), supcon (supervised contrastive, Khosla et al. 2020: every view "
        "with the same label is a positive; needs a labelled dataset), or the paper's Table 2 alternatives "
        "ntlogistic (NT-Logistic, uses --temperature) and triplet (margin triplet, uses --margin)", flag="--loss")
    temperature: float | None = opt(
        None, "tau of the loss (0.1 ImageNet, 0.5 CIFAR; too high or low costs points)")
    margin: float = opt(0.5, "m of --loss triplet, in cosine similarity (default 0.5)")
    semi_hard: bool = opt(
        False, "--loss ntlogistic / triplet: only semi-hard negatives, less similar than the positive (the "
        "paper's Table 4 'sh' rows; default off)")


@dataclass
class OptimConfig:
    optimizer: str | None = opt(
        None, "lars (default), sgd or adamw (default for transformer and ConvNeXt backbones, with lr 1.5e-4 x B/256 "
        "and weight decay 0.1, as MoCo v3 found for ViTs)")
    lr: float | None = opt(None, "peak learning rate (default: --base-lr scaled by the batch size)")
    base_lr: float | None = opt(
        None, "lr per 256 images (linear) or per sqrt(B) (sqrt); lars 0.3, sgd 0.06, adamw 1e-3 (1.5e-4 for "
        "transformers)")
    lr_scaling: str = opt("linear", "linear (base x B/256) or sqrt (base x sqrt(B), base 0.075)")
    weight_decay: float | None = opt(None, "weight decay, not on biases and BN (default 1e-6; 0.1 for transformers)")
    momentum: float = opt(0.9, "momentum (default 0.9)")
    warmup_epochs: float | None = opt(None, "linear warm-up length (default 10%% of epochs, at most 10)")
    lr_schedule: str = opt(
        "step", "step (default: the lr moves every step) or epoch (held through each epoch, as CosineAnnealingLR "
        "per epoch)")
    decay_1d: bool = opt(
        False, "weight decay on biases and BN parameters too, as torch's plain optimisers (default off, as the paper)")


@dataclass
class RunTrain:
    """The ``train`` section's fields every training command shares (pretrain, finetune, distill): one
    declaration, one help text, one check (``simclr.config.resolve.check_common``). A command's own
    section subclasses it and adds its fields after these; fine-tuning restates ``epochs`` and
    ``batch_size`` as auto (a restated field keeps its place)."""

    epochs: int = opt(100, "epochs (default 100)")
    batch_size: int = opt(256, "images per step, 2 views each (default 256)")
    max_steps: int | None = opt(None, "stop after this many steps in total")
    precision: str = opt(
        "auto", "auto (default: bf16 autocast where the hardware runs it natively: a CUDA device with bf16, a CPU "
        "with AMX-BF16, or with AVX512-BF16 where a bf16 step measures faster; else fp32), fp32, bf16 (autocast) or "
        "fp16 (GPU, grad scaler)")
    channels_last: bool | None = opt(None, "channels_last memory format (default: on)")
    seed: int = opt(0, "seed for weights, data order and augmentation (and a labelled subset's draw) (default 0)")
    device: str = opt("auto", "auto (default), cpu, cuda, cuda:N")
    log_every: int = opt(
        10, "steps between log lines and metrics records (default 10); the loss is read from the device only "
        "then, so a non-finite loss stops the run at most this many steps late")
    checkpoint_every_steps: int | None = opt(
        None, "also write the checkpoint every N steps mid-epoch (a crash loses at most N steps)")
    global_bn: bool | None = opt(None, "BN statistics over all ranks under torchrun (default: on)")
    dist_backend: str | None = opt(None, "torch.distributed backend: nccl (GPUs) or gloo (default by device)")
    compile: bool = opt(False, "torch.compile the model (off by default; pays off on long GPU runs)")
    logger: str = opt(
        "auto", "where metrics go besides metrics.jsonl: auto (default: TensorBoard when installed), none, or any of "
        "tensorboard, csv, wandb, mlflow, comma-separated (pip install 'simclr[wandb]' / 'simclr[mlflow]')")


@dataclass
class TrainConfig(RunTrain):
    """``simclr pretrain``'s ``train`` section: the shared fields, then pretraining's own."""

    time_budget: float | None = opt(
        None, "minutes of pretraining: the run times its first steps and sets its length (steps, epochs, the "
        "warm-up and cosine) to end on time; the plan is kept in config.yaml, so --resume follows it")
    schedule_anchors: list[list[float]] | None = opt(
        None, "written by a --time-budget run that moved its end: [step, progress] pairs, where the cosine stood "
        "(0-1) at each step the run re-planned at, so the learning rate stays continuous and --resume follows it",
        cli=False)
    chunk_size: int | None = opt(
        None, "exact gradient of the batch in chunks of this many images (bounded memory; BN sees a chunk)")
    bn_views: str = opt(
        "joint", "joint (default, the official code: one forward of both views, BN statistics over all 2N) or "
        "per-view (one forward per view, BN statistics of each view's N, as implementations that call the model "
        "per view)")
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
        return config_dict(self)


@dataclass
class LabelsConfig:
    label_fraction: float | None = opt(
        None, "train on this fraction of the train split's labels (e.g. 0.01, 0.1, 1.0): a class-balanced "
        "subset drawn with --seed, written to OUT/subset.txt")
    subset_file: str | None = opt(
        None, "train on the images a file names, one a line (indices, relative paths or file names, e.g. "
        "another run's subset.txt or the official ImageNet 1percent.txt)")


@dataclass
class FinetuneModelConfig:
    run: str | None = opt(None, "the pretraining run (directory) to fine-tune", cli=False)
    from_head_layer: int = opt(
        0, "0 (default, v1): the classifier on h; k: keep and fine-tune the projection head's first k layers "
        "(v2: 1, with a 3-layer head)")
    random_init: bool = opt(
        False, "train the same network from random weights on the same labels: the supervised baseline")


@dataclass
class ClassifierAugment:
    crop_scale: tuple[float, float] | None = opt(None, "crop area range; auto: as pretraining on the dataset",
                                                 cli=False)
    flip_p: float = opt(0.5, "probability of a horizontal flip", cli=False)
    color_strength: float = opt(
        0.0, "colour distortion s of the training views (default 0: crop + flip only, the paper's fine-tuning); "
        "> 0 adds SimCLR's colour jitter (p 0.8) and grayscale (p 0.2), as the supervised baselines of the "
        "paper's Table 1")


@dataclass
class ClassifierOptim:
    lr: float | None = opt(None, "peak learning rate (default: --base-lr x B/256)")
    base_lr: float = opt(0.05, "lr per 256 images (default 0.05, the paper's fine-tuning rate)")
    momentum: float = opt(0.9, "Nesterov momentum (default 0.9)")
    weight_decay: float = opt(0.0, "weight decay, not on biases and BN (default 0, the paper's fine-tuning)")
    warmup_epochs: float = opt(0.0, "linear warm-up length before the cosine decay (default 0)")


@dataclass
class ClassifierTrain(RunTrain):
    """``simclr finetune`` / ``distill``'s ``train`` section: the shared fields, epochs and batch size
    chosen from the labelled set's size when left out."""

    epochs: int | None = opt(  # type: ignore[assignment]
        None, "epochs; auto: 60 when the labels are <= 2%% of the train split, 30 up to 20%%, else 15")
    batch_size: int | None = opt(  # type: ignore[assignment]
        None, "images per step; auto: 64 for <= 2000 labelled images, else 256")


@dataclass
class FinetuneConfig:
    """``simclr finetune``: the whole network and a linear classifier trained on a labelled subset."""

    data: DataConfig = field(default_factory=DataConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    model: FinetuneModelConfig = field(default_factory=FinetuneModelConfig)
    augment: ClassifierAugment = field(default_factory=ClassifierAugment)
    optim: ClassifierOptim = field(default_factory=ClassifierOptim)
    train: ClassifierTrain = field(default_factory=ClassifierTrain)

    def to_dict(self) -> dict[str, Any]:
        return config_dict(self)


@dataclass
class DistillSection:
    teacher: str | None = opt(None, "the teacher: a `simclr finetune` (or distill) directory", cli=False)
    student_arch: str | None = opt(None, "the student's architecture (default: the teacher's)")
    student_width: float | None = opt(None, "the student's width multiplier (default: the teacher's)")
    temperature: float | None = opt(
        None, "T of the softened distributions (default 1.0, v2's for a smaller student; v2 self-distils at 0.1, "
        "which left a student trained from scratch at chance on short runs here: BENCHMARKS.md)")
    label_weight: float = opt(
        0.0, "alpha: weight of the teacher's labelled subset's cross-entropy, (1 - alpha) of the distillation "
        "(default 0: labels unused)")


@dataclass
class DistillConfig:
    """``simclr distill``: a student trained on every image to match the teacher's softened predictions."""

    data: DataConfig = field(default_factory=DataConfig)
    distill: DistillSection = field(default_factory=DistillSection)
    augment: ClassifierAugment = field(default_factory=ClassifierAugment)
    optim: ClassifierOptim = field(default_factory=ClassifierOptim)
    train: ClassifierTrain = field(default_factory=ClassifierTrain)

    def to_dict(self) -> dict[str, Any]:
        return config_dict(self)


def sections(config_type: type = PretrainConfig) -> dict[str, type]:
    """Section name -> its dataclass, in order, of a config made of sections (``PretrainConfig`` or the
    configs of the other runs, e.g. ``FinetuneConfig``)."""
    return {f.name: f.default_factory for f in dataclasses.fields(config_type)}  # type: ignore[misc]


def config_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain nested dicts and lists (tuples as lists), as ``config.yaml`` holds it."""
    d = dataclasses.asdict(cfg)
    for section in d.values():
        for k, v in section.items():
            if isinstance(v, tuple):
                section[k] = list(v)
    return d


__all__ = [
    "AugmentSection", "ClassifierAugment", "ClassifierOptim", "ClassifierTrain", "DataConfig", "DistillConfig",
    "DistillSection", "FinetuneConfig", "FinetuneModelConfig", "LOGGER_NAMES", "LabelsConfig", "LossConfig",
    "ModelConfig", "MonitorConfig", "OptimConfig", "PretrainConfig", "RunTrain", "TrainConfig", "config_dict", "opt",
    "sections",
]
