"""BatchNorm layers, and global BN: BatchNorm statistics over the batch of every rank.

simclr's ``BatchNorm1d`` / ``BatchNorm2d`` are torch's with a switch, ``global_stats``, off by
default. ``convert_global_bn`` makes every BN of a model global: simclr's own BN layers switch the
flag on, plain ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` become ``GlobalBatchNorm``. Their training
forward under torchrun is ``global_batch_norm`` on every backend, gloo and nccl alike: one all-reduce
of the per-channel sums and sums of squares (and the count) in the forward, one of the two per-channel
gradient sums in the backward, and nothing read back to the host. It saves for the backward what
PyTorch's BN saves (the input in its own dtype and two per-channel vectors), so bf16 runs keep bf16
activations. (``nn.SyncBatchNorm`` is not used: its forward, up to torch 2.14 at least, drops ranks
with empty batches by boolean-mask indexing, which reads the device once per BN layer and step,
pytorch#78549; every rank here holds an equal share of the batch.)

It gives the normalisation and gradients of one process on the whole global batch, and updates the
running statistics with the global mean and unbiased variance. Parameters, buffers and state-dict
keys stay torch's own, so checkpoints load into plain BatchNorm layers anywhere.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.autograd import Function
from torch.nn.modules.batchnorm import _BatchNorm

from simclr import distributed
from simclr.errors import SimCLRError


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0] if x.dim() == 2 else [0, *range(2, x.dim())]


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if distributed.context().enabled:
        dist.all_reduce(t)
    return t


class _GlobalBatchNorm(Function):
    """BN's training forward and backward with statistics and gradient sums over every rank (the sums are
    in float32, or float64 for float64 inputs; the input is saved as it is, not as a float32 copy)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,  # noqa: ANN401
                bn: _BatchNorm) -> torch.Tensor:
        dims, c = _reduce_dims(x), x.shape[1]
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        xf = x.to(acc)
        var, mean = torch.var_mean(xf, dims, correction=0)  # one pass; this rank's statistics
        m = x.numel() // c
        stats = _all_reduce(torch.cat([mean * m, (var + mean * mean) * m, mean.new_full((1,), float(m))]))
        n = stats[-1:]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)  # biased, as BN normalises
        invstd = torch.rsqrt(var + bn.eps)
        if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
            bn.num_batches_tracked += 1  # type: ignore[operator]
            mom = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - mom).add_(mean.to(bn.running_mean.dtype), alpha=mom)
            bn.running_var.mul_(1 - mom).add_((var * (n / (n - 1))).to(bn.running_var.dtype), alpha=mom)
        shape = [1, c] + [1] * (x.dim() - 2)
        scale = invstd * weight.to(acc) if weight is not None else invstd
        shift = -mean * scale + (bias.to(acc) if bias is not None else 0)
        ctx.save_for_backward(x, weight, mean, invstd, n)
        return torch.addcmul(shift.view(shape), xf, scale.view(shape)).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple:  # noqa: ANN401
        x, weight, mean, invstd, n = ctx.saved_tensors
        dims, c = _reduce_dims(x), x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        acc = mean.dtype
        dyf = dy.to(acc)
        xhat = (x.to(acc) - mean.view(shape)) * invstd.view(shape)
        sum_dy = dyf.sum(dims)
        sum_dy_xhat = (dyf * xhat).sum(dims)
        # the normalisation of every rank's values depends on every rank's: their gradient sums, all-reduced
        total = _all_reduce(torch.cat([sum_dy, sum_dy_xhat]))
        scale = invstd * weight.to(acc) if weight is not None else invstd
        dx = (dyf - (total[:c] / n).view(shape) - xhat * (total[c:] / n).view(shape)) * scale.view(shape)
        grad_w = sum_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_dy.to(weight.dtype if weight is not None else acc) if ctx.needs_input_grad[2] else None
        return dx.to(x.dtype), grad_w, grad_b, None


def global_batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn``'s training-mode forward with statistics over the batch of every rank (any backend), its
    running statistics updated with the global ones. No host read: the local count of values per channel
    is a Python number and travels in the all-reduced vector, so ranks may hold batches of different sizes.
    """
    return _GlobalBatchNorm.apply(x, bn.weight if bn.affine else None, bn.bias if bn.affine else None, bn)


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


def convert_global_bn(module: nn.Module, backend: str = "gloo") -> nn.Module:  # noqa: ARG001
    """Every BatchNorm in ``module`` made global (in place where possible; returns the module): simclr's
    own BN layers switch on their ``global_stats`` flag, plain ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``
    are replaced by ``GlobalBatchNorm`` sharing their parameters and buffers. Both run
    ``global_batch_norm`` on any ``backend`` (nccl included: see the module docstring); another
    BatchNorm subclass is refused in one line.
    """
    is_bn = isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm)
    if hasattr(module, "global_stats"):
        module.global_stats = True
        return module
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        return _share_state(new, module)  # type: ignore[arg-type]
    if is_bn:
        raise SimCLRError(f"{type(module).__name__} is a BatchNorm that global BN cannot convert; use --no-global-bn")
    for name, child in module.named_children():
        setattr(module, name, convert_global_bn(child, backend))
    return module


__all__ = [
    "BatchNorm1d", "BatchNorm1dNoBeta", "BatchNorm2d", "GlobalBatchNorm", "convert_global_bn", "global_batch_norm",
]
