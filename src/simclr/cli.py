"""``simclr <command>``: thin argparse -> config -> call.

Commands: ``pretrain``, ``linear-eval``, ``knn``, ``presets``; and, in ``cli_use``, ``embed``,
``search``, ``export``, ``preview-augment``, ``plot``, ``visualize``. Errors the user can fix are
printed as one ``error: ...`` line with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from simclr.errors import SimCLRError

# flag -> (config key, type, help). None type = boolean switch pair (--x / --no-x).
PRETRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "data.dataset", str, "synthetic (default), folder, cifar10, cifar100, stl10, mnist, fashion-mnist"),
    ("--data-dir", "data.data_dir", str, "where the dataset lives (a folder of images for 'folder')"),
    ("--image-size", "data.image_size", int, "training crop side (default: the dataset's own; 224 for folders)"),
    ("--limit", "data.limit", int, "use only the first N images"),
    ("--workers", "data.workers", int, "DataLoader workers for folder datasets (default 2)"),
    ("--arch", "model.arch", str, "resnet18 (default), resnet34, resnet50, resnet101, resnet152"),
    ("--width-multiplier", "model.width_multiplier", float, "scales every filter count, stem included (0.25-4)"),
    ("--stem", "model.stem", str, "auto (cifar at <= 32 px), cifar or imagenet"),
    ("--head", "model.head", str, "projection head: mlp (default), linear or none"),
    ("--head-layers", "model.head_layers", int, "mlp head depth: 2 = SimCLR v1 (default), 3 = v2"),
    ("--head-bn", "model.head_bn", None, "BN in the head as the official code (default on)"),
    ("--head-out-bn", "model.head_out_bn", None,
     "BN after the head's last layer too, as the official code (default on; off: hidden layers only)"),
    ("--zero-init-residual", "model.zero_init_residual", None,
     "start each residual block's last BN gamma at 0, as the official code (default on)"),
    ("--proj-dim", "model.proj_dim", int, "dimension of z (default 128)"),
    ("--input-norm", "model.input_norm", str,
     "none (default, the official code) or imagenet (ImageNet mean/std inside the encoder, as torchvision users do)"),
    ("--color-strength", "augment.color_strength", float, "colour distortion strength s (1.0 ImageNet, 0.5 CIFAR)"),
    ("--blur", "augment.blur", None, "Gaussian blur (default: on above 32 px)"),
    ("--crop-interpolation", "augment.crop_interpolation", str,
     "resize of the random crop: bicubic (default, the paper) or bilinear (torchvision's default)"),
    ("--augment-on", "augment.on", str,
     "device (default: batched on the training device) or workers (torchvision PIL per image, the reference)"),
    ("--temperature", "loss.temperature", float, "NT-Xent tau (0.1 ImageNet, 0.5 CIFAR; too high or low costs points)"),
    ("--optimizer", "optim.optimizer", str, "lars (default), sgd or adamw"),
    ("--lr", "optim.lr", float, "peak learning rate (default: --base-lr scaled by the batch size)"),
    ("--base-lr", "optim.base_lr", float, "lr per 256 images (linear) or per sqrt(B) (sqrt); lars 0.3, sgd 0.06"),
    ("--lr-scaling", "optim.lr_scaling", str, "linear (base x B/256) or sqrt (base x sqrt(B), base 0.075)"),
    ("--weight-decay", "optim.weight_decay", float, "weight decay, not on biases and BN (default 1e-6)"),
    ("--decay-1d", "optim.decay_1d", None,
     "weight decay on biases and BN parameters too, as torch's plain optimisers (default off, as the paper)"),
    ("--momentum", "optim.momentum", float, "momentum (default 0.9)"),
    ("--warmup-epochs", "optim.warmup_epochs", float, "linear warm-up length (default 10%% of epochs, at most 10)"),
    ("--lr-schedule", "optim.lr_schedule", str,
     "step (default: the lr moves every step) or epoch (held through each epoch, as CosineAnnealingLR per epoch)"),
    ("--epochs", "train.epochs", int, "epochs (default 100)"),
    ("--batch-size", "train.batch_size", int, "images per step, 2 views each (default 256)"),
    ("--max-steps", "train.max_steps", int, "stop after this many steps in total"),
    ("--precision", "train.precision", str, "fp32 (default), bf16 (autocast) or fp16 (GPU, grad scaler)"),
    ("--channels-last", "train.channels_last", None, "channels_last memory format (default: on)"),
    ("--seed", "train.seed", int, "seed for weights, data order and augmentation (default 0)"),
    ("--device", "train.device", str, "auto (default), cpu, cuda, cuda:N"),
    ("--log-every", "train.log_every", int, "steps between log lines and metrics records (default 10)"),
    ("--chunk-size", "train.chunk_size", int,
     "exact gradient of the batch in chunks of this many images (bounded memory; BN sees a chunk)"),
    ("--bn-views", "train.bn_views", str,
     "joint (default, the official code: one forward of both views, BN statistics over all 2N) or per-view "
     "(one forward per view, BN statistics of each view's N, as implementations that call the model per view)"),
    ("--global-bn", "train.global_bn", None, "BN statistics over all ranks under torchrun (default: on)"),
    ("--checkpoint-every-steps", "train.checkpoint_every_steps", int,
     "also write the checkpoint every N steps mid-epoch (a crash loses at most N steps)"),
    ("--compile", "train.compile", None, "torch.compile the model (off by default; pays off on long GPU runs)"),
    ("--save-every-epoch", "train.save_every_epoch", None,
     "keep the encoder of every epoch as encoder-epochE.pt (for accuracy-vs-time curves)"),
    ("--dist-backend", "train.dist_backend", str, "torch.distributed backend: nccl (GPUs) or gloo (default by device)"),
]


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain an encoder with SimCLR",
        description="Pretrain an encoder with SimCLR. Precedence: defaults < dataset defaults "
        "< --preset < --config < flags.",
    )
    p.add_argument("--out", required=True, help="run directory (config, metrics, checkpoints)")
    p.add_argument("--preset", help="a named recipe (see `simclr presets`)")
    p.add_argument("--config", help="a YAML config, e.g. a run's config.yaml")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    for flag, key, typ, help_text in PRETRAIN_FLAGS:
        dest = key.replace(".", "__")
        if typ is None:
            p.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            p.add_argument(flag, dest=dest, type=typ, default=None, help=help_text)


def _add_eval(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    # --run-dir: the same, for torchrun, whose parser takes --run for an abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="a run directory or an encoder.pt")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the run's)")
    p.add_argument("--data-dir", help="where the dataset lives (default: the run's)")
    p.add_argument("--limit", type=int, help="use only the first N train images (and N/5 test)")
    p.add_argument("--image-size", type=int, help="input size (default: the run's)")
    p.add_argument("--random-init", action="store_true", help="same architecture, untrained: the baseline")
    p.add_argument("--batch-size", type=int, default=256, help="feature extraction batch (default 256)")
    p.add_argument("--workers", type=int, default=2, help="loader workers for folder datasets")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="feature extraction precision")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init weights")
    p.add_argument("--out", help="write the result as JSON here")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simclr", description="SimCLR pretraining and evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pretrain(sub)
    _add_eval(sub, "linear-eval", "linear evaluation: logistic regression on frozen features h")
    knn = _add_eval(sub, "knn", "weighted kNN on frozen features h (cosine similarity)")
    knn.add_argument("--k", type=int, default=200, help="neighbours (default 200)")
    knn.add_argument("--knn-temperature", type=float, default=0.1, help="vote weight exp(sim/t) (default 0.1)")
    sub.add_parser("presets", help="list the shipped presets and the figures the paper reports")
    from simclr import cli_use

    cli_use.add_commands(sub)
    return parser


def _pretrain(args: argparse.Namespace) -> int:
    from simclr.config import PretrainConfig, apply_overrides, load_preset, load_yaml
    from simclr.train import pretrain

    cfg = PretrainConfig()
    if args.preset:
        apply_overrides(cfg, load_preset(args.preset), f"preset {args.preset}")
    config_path = args.config
    if config_path is None and args.resume and (Path(args.out) / "config.yaml").exists():
        config_path = str(Path(args.out) / "config.yaml")  # resume the run as it was configured
    if config_path:
        saved = load_yaml(config_path)
        if args.resume and config_path == str(Path(args.out) / "config.yaml"):
            # a run stopped by --max-steps continues to its end unless --max-steps is given again
            saved.get("train", {}).pop("max_steps", None)
        apply_overrides(cfg, saved, config_path)
    flags = {
        key: getattr(args, key.replace(".", "__"))
        for _, key, _, _ in PRETRAIN_FLAGS
        if getattr(args, key.replace(".", "__")) is not None
    }
    apply_overrides(cfg, flags, "command line")
    pretrain(cfg, args.out, resume=args.resume, log=sys.stderr)
    # a stop asked for by SIGTERM / Ctrl-C is a clean exit once the checkpoint is saved (schedulers
    # that preempt with SIGTERM then do not count the job as failed); the log line says so
    return 0


def _features(args: argparse.Namespace):  # noqa: ANN202
    import torch

    from simclr import distributed
    from simclr.checkpoint import load_encoder
    from simclr.data.sources import load_images
    from simclr.evaluate import check_finite, extract_features
    from simclr.models.encoder import ResNet
    from simclr.train import pick_device

    encoder = load_encoder(args.run)
    run_cfg: dict[str, Any] = {}
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    if (run_dir / "config.yaml").exists():
        from simclr.config import load_yaml

        run_cfg = load_yaml(run_dir / "config.yaml").get("data", {})
    if args.random_init:
        torch.manual_seed(args.seed)
        # the fair baseline: a standard init (BN gamma 1), not training's zero-gamma start
        fresh = ResNet(encoder.arch, encoder.width_multiplier, encoder.stem_type, zero_init_residual=False,
                       input_norm=encoder.input_norm)
        fresh.image_size = encoder.image_size  # type: ignore[assignment]
        encoder = fresh.eval()
    dataset = args.dataset or run_cfg.get("dataset")
    if not dataset:
        raise SimCLRError("pass --dataset (the run has no config.yaml to take it from)")
    data_dir = args.data_dir or (run_cfg.get("data_dir") if dataset == run_cfg.get("dataset") else None)
    size = args.image_size or int(encoder.image_size)  # type: ignore[arg-type]
    world = distributed.init_from_env(args.device)  # under torchrun: each rank encodes a share
    device = pick_device(distributed.rank_device(args.device, world))
    encoder = encoder.to(device)
    test_limit = None if args.limit is None else max(1, args.limit // 5)
    train = load_images(dataset, "train", data_dir, args.limit, args.seed, size)
    test = load_images(dataset, "test", data_dir, test_limit, args.seed, size)
    if bool((torch.as_tensor(train.labels) < 0).any()):
        raise SimCLRError(
            f"the {dataset} images have no labels: evaluation needs class subfolders (DIR/CLASS/img.png)"
        )
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    xtr, ytr = extract_features(encoder, train, size, device, args.batch_size, args.workers, args.precision)
    xte, yte = extract_features(encoder, test, size, device, args.batch_size, args.workers, args.precision)
    for k, v in encoder.state_dict().items():
        if not torch.equal(v, before[k]):
            raise RuntimeError(f"evaluation changed the encoder's {k}: this is a bug")
    check_finite(xtr, "train")
    check_finite(xte, "test")
    what = "random-init" if args.random_init else str(args.run)
    if not world.is_main:
        return None  # rank 0 fits the classifier and reports
    print(f"{what}: {len(xtr)} train / {len(xte)} test images of {dataset}, h dim {xtr.shape[1]}", file=sys.stderr)
    return xtr, ytr, xte, yte, dataset


def _write_result(result: dict[str, Any], args: argparse.Namespace, kind: str) -> None:
    line = f"{kind}{' (random init)' if args.random_init else ''}: " + " ".join(
        f"{k} {v:.4f}" for k, v in result.items() if k.startswith("top")
    )
    print(line)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


def _linear_eval(args: argparse.Namespace) -> int:
    from simclr.evaluate import linear_eval

    features = _features(args)
    if features is None:
        return 0
    xtr, ytr, xte, yte, dataset = features
    result = linear_eval(xtr, ytr, xte, yte, seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    result.update(dataset=dataset, random_init=args.random_init, run=str(args.run))
    _write_result(result, args, "linear-eval")
    return 0


def _knn(args: argparse.Namespace) -> int:
    from simclr.evaluate import knn_eval

    features = _features(args)
    if features is None:
        return 0
    xtr, ytr, xte, yte, dataset = features
    result = knn_eval(xtr, ytr, xte, yte, k=args.k, temperature=args.knn_temperature)
    result.update(dataset=dataset, random_init=args.random_init, run=str(args.run))
    _write_result(result, args, "knn")
    return 0


def _presets(args: argparse.Namespace) -> int:  # noqa: ARG001
    from importlib import resources

    import yaml

    from simclr.config import preset_names

    for name in preset_names():
        data = yaml.safe_load((resources.files("simclr") / "presets" / f"{name}.yaml").read_text())
        print(f"{name}: {data.get('reported', '')}")
    return 0


def _use_command(args: argparse.Namespace) -> int:
    from simclr import cli_use

    return cli_use.COMMANDS[args.command](args)


COMMANDS = {"pretrain": _pretrain, "linear-eval": _linear_eval, "knn": _knn, "presets": _presets}
COMMANDS.update(dict.fromkeys(("embed", "search", "export", "preview-augment", "plot", "visualize"), _use_command))


def _warning_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202, ARG001
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _warning_line  # one plain line per warning
    from simclr import distributed

    try:
        return COMMANDS[args.command](args)
    except OSError as e:  # a file the command needed to read or write: one line, no traceback
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except SimCLRError as e:
        world = distributed.context()
        if world.is_main:
            print(f"error: {e}", file=sys.stderr)
        elif not getattr(e, "on_every_rank", False):
            print(f"error (rank {world.rank}): {e}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
