"""BatchNorm layers, and global BN: BatchNorm statistics over the batch of every rank.

simclr's ``BatchNorm1d`` / ``BatchNorm2d`` are torch's with a switch, ``global_stats``, off by
default. ``convert_global_bn`` makes every BN of a model global, in one of two ways:

- under nccl (GPUs): PyTorch's own ``nn.SyncBatchNorm`` (fused statistics kernels), sharing the
  layers' parameters and buffers. (Its forward, up to torch 2.14 at least, drops ranks with empty
  batches by boolean-mask indexing, which reads the device once per layer: pytorch#78549. The sums
  path below reads nothing; which is faster on several GPUs is not measured yet.)
- otherwise (gloo, CPUs included, where ``nn.SyncBatchNorm`` does not run): ``global_batch_norm``,
  which all-reduces per-channel sums and sums of squares *with gradients*.

Both give the normalisation (and gradient) of one process on the whole global batch, and update the
running statistics with the global mean and unbiased variance. Parameters, buffers and state-dict
keys stay torch's own, so checkpoints load into plain BatchNorm layers anywhere.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from simclr import distributed
from simclr.errors import SimCLRError


def global_batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn``'s training-mode forward with statistics over the batch of every rank (any backend).

    The local count of values per channel is a Python number; it travels in the all-reduced vector
    (written there on the device, no host round trip), so ranks may hold batches of different sizes.
    """
    dims = [0] if x.dim() == 2 else [0, *range(2, x.dim())]
    xf = x if x.dtype == torch.float64 else x.float()  # statistics in at least float32
    local_sum = xf.sum(dims)
    count = local_sum.new_full((1,), float(x.numel() // x.shape[1]))
    stats = distributed.all_reduce_sum_with_grad(torch.cat([local_sum, (xf * xf).sum(dims), count]))
    c = bn.num_features
    n = stats[-1]
    mean = stats[:c] / n
    var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)  # biased, as BN normalises
    if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
        with torch.no_grad():
            bn.num_batches_tracked += 1  # type: ignore[operator]
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            bn.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
    shape = [1, c] + [1] * (x.dim() - 2)
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    shift = -mean * scale
    if bn.affine:
        shift = shift + bn.bias
    return (xf * scale.view(shape) + shift.view(shape)).to(x.dtype)


class _MaybeGlobal:
    global_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_stats and self.training and distributed.context().enabled:  # type: ignore[attr-defined]
            self._check_input_dim(x)  # type: ignore[attr-defined]
            return global_batch_norm(self, x)  # type: ignore[arg-type]
        return super().forward(x)  # type: ignore[misc]


class BatchNorm1d(_MaybeGlobal, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that can take its statistics over every rank."""


class BatchNorm2d(_MaybeGlobal, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that can take its statistics over every rank."""


class BatchNorm1dNoBeta(BatchNorm1d):
    """BN with a learnable scale (gamma) and no shift (beta): TF's ``center=False``."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=1e-5, momentum=0.1, affine=False)
        self.weight_g = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.weight_g


class SyncBatchNormNoBeta(nn.SyncBatchNorm):
    """``BatchNorm1dNoBeta`` on ``nn.SyncBatchNorm``: what ``convert_global_bn`` makes of it under nccl."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=1e-5, momentum=0.1, affine=False)
        self.weight_g = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.weight_g


class GlobalBatchNorm(_BatchNorm):
    """A BatchNorm (1-D or 2-D input) whose training statistics span every rank (``global_batch_norm``).

    What ``convert_global_bn`` puts in place of a plain ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` outside
    nccl; same parameters and buffers, so state dicts move freely between the two. Outside training,
    or in a single process, it is a plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002
        if input.dim() not in (2, 4):
            raise ValueError(f"expected a 2-D or 4-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if self.training and distributed.context().enabled:
            return global_batch_norm(self, x)
        return super().forward(x)


def _share_state(new: nn.Module, old: _BatchNorm) -> nn.Module:
    """``new`` holding ``old``'s parameters and buffers (the same tensors), in ``old``'s mode."""
    if old.affine:
        new.weight, new.bias = old.weight, old.bias
    if hasattr(old, "weight_g"):
        new.weight_g = old.weight_g
    new.running_mean, new.running_var = old.running_mean, old.running_var
    new.num_batches_tracked = old.num_batches_tracked
    new.train(old.training)
    return new


def _to_sync(bn: _BatchNorm) -> nn.Module:
    if isinstance(bn, BatchNorm1dNoBeta):
        return _share_state(SyncBatchNormNoBeta(bn.num_features), bn)
    sync = nn.SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    return _share_state(sync, bn)


def convert_global_bn(module: nn.Module, backend: str = "gloo") -> nn.Module:
    """Every BatchNorm in ``module`` made global (in place where possible; returns the module).

    ``backend="nccl"``: each BN becomes an ``nn.SyncBatchNorm`` (or ``SyncBatchNormNoBeta``) sharing
    its parameters and buffers. Otherwise simclr's own BN layers switch on their ``global_stats``
    flag, and plain ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` are replaced by ``GlobalBatchNorm``.
    """
    is_bn = isinstance(module, _BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm))
    unknown = SimCLRError(f"{type(module).__name__} is a BatchNorm that global BN cannot convert; use --no-global-bn")
    if is_bn and backend == "nccl":
        if type(module) not in (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm1d, BatchNorm2d, BatchNorm1dNoBeta):
            raise unknown
        return _to_sync(module)  # type: ignore[arg-type]
    if hasattr(module, "global_stats"):
        module.global_stats = True
        return module
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        return _share_state(new, module)  # type: ignore[arg-type]
    if is_bn:
        raise unknown
    for name, child in module.named_children():
        setattr(module, name, convert_global_bn(child, backend))
    return module


__all__ = [
    "BatchNorm1d", "BatchNorm1dNoBeta", "BatchNorm2d", "GlobalBatchNorm", "SyncBatchNormNoBeta",
    "convert_global_bn", "global_batch_norm",
]
