"""torch.distributed plumbing: process groups from torchrun, gathers with gradients.

A single process (no torchrun, or ``WORLD_SIZE=1``) never touches ``torch.distributed``: every
helper here is the identity then. Under ``torchrun --nproc_per_node=K`` each process is one rank;
``init_from_env`` joins the group (gloo on CPUs, nccl on GPUs, or the backend asked for).

Gradient conventions: DistributedDataParallel *averages* parameter gradients over ranks. The
collectives with gradients here therefore pass back the *sum* of every rank's gradient, and each
rank's loss is scaled so that DDP's average is the gradient of the global loss (see
``simclr.losses.nt_xent``). Global BN (BatchNorm statistics over every rank) is in ``simclr.models.norm``.
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.autograd import Function

from simclr.errors import SimCLRError

T = TypeVar("T")
BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size, local rank (its index on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context() -> DistContext:
    """The current process group's view (a single-process context when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        )
    return DistContext()


def env_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise SimCLRError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from e


def env_rank() -> int:
    """RANK as torchrun set it (0 outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError as e:
        raise SimCLRError(f"RANK={os.environ['RANK']!r} is not an integer") from e


def init_from_env(device: str = "auto", backend: str | None = None, timeout_s: float = 1800) -> DistContext:
    """Join the process group torchrun describes in the environment; idempotent.

    Outside torchrun (WORLD_SIZE unset or 1) nothing is initialised. The backend is nccl when
    the device is a CUDA GPU, gloo otherwise, unless ``backend`` names one. On GPUs each rank
    trains on ``cuda:LOCAL_RANK`` (``local_cuda_index``); a launch that cannot work (more ranks on a
    machine than visible GPUs, or ``--device cuda:N``, which would put every rank on one GPU) is refused
    with one line, alike on every rank, before the process group starts.
    """
    if dist.is_available() and dist.is_initialized():
        return context()
    if env_world_size() <= 1:
        return DistContext()
    if not dist.is_available():
        raise SimCLRError("this PyTorch build has no torch.distributed; run a single process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if backend is None:
        backend = "nccl" if use_cuda else "gloo"
    if backend not in BACKENDS:
        raise SimCLRError(f"--dist-backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "nccl" and not use_cuda:
        raise SimCLRError("--dist-backend nccl needs CUDA GPUs; on CPUs use gloo")
    if use_cuda:
        check_gpu_launch(device, local_rank)
        torch.cuda.set_device(local_cuda_index(local_rank))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return context()


def local_world_size() -> int:
    """Ranks on this machine: LOCAL_WORLD_SIZE as torchrun sets it (else LOCAL_RANK + 1, the least it can be)."""
    try:
        return int(os.environ["LOCAL_WORLD_SIZE"])
    except (KeyError, ValueError):
        return int(os.environ.get("LOCAL_RANK", "0")) + 1


def check_gpu_launch(device: str, local_rank: int) -> None:
    """Refuse a torchrun launch on GPUs that cannot work, with the same line on every rank of the machine.

    Each rank trains on its own GPU, ``cuda:LOCAL_RANK``: nccl refuses two ranks on one GPU ("Duplicate GPU
    detected"), so more ranks on a machine than visible GPUs is refused, and so is ``--device cuda:N``
    (every rank would train on GPU N)."""
    if device.startswith("cuda:"):
        raise same_on_this_machine(SimCLRError(
            f"--device {device}: under torchrun each rank trains on its own GPU, cuda:LOCAL_RANK; pass --device cuda "
            "(or auto), and choose the GPUs with CUDA_VISIBLE_DEVICES"
        ))
    gpus, ranks = torch.cuda.device_count(), max(local_world_size(), local_rank + 1)
    if ranks > gpus:
        raise same_on_this_machine(SimCLRError(
            f"torchrun starts {ranks} ranks on this machine but {gpus} GPU{'s are' if gpus != 1 else ' is'} visible: "
            f"each rank needs a GPU of its own (nccl refuses two ranks on one GPU); use --nproc_per_node={gpus} "
            "or fewer, or --device cpu (gloo)"
        ))


def local_cuda_index(local_rank: int) -> int:
    """The GPU of the rank with this LOCAL_RANK: ``cuda:LOCAL_RANK`` (``check_gpu_launch`` refused a
    launch with more ranks per machine than visible GPUs)."""
    return local_rank


def rank_device(device: str, ctx: DistContext) -> str:
    """The device string this rank trains on: under torchrun, ``cuda`` / ``auto`` (with GPUs) become
    ``cuda:LOCAL_RANK``; ``cuda:N`` is refused (``check_gpu_launch``)."""
    if not ctx.enabled:
        return device
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        check_gpu_launch(device, ctx.local_rank)
        return f"cuda:{local_cuda_index(ctx.local_rank)}"
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if context().enabled:
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` from rank ``src`` on every rank (pickled; for small things and checkpoints)."""
    if not context().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result, or its SimCLRError, to every rank.

    For checks and reads that must happen once (the run directory, the checkpoint) and must
    fail on every rank alike, so that no rank is left waiting in a collective."""
    ctx = context()
    if not ctx.enabled:
        return fn()
    result: Any = None
    error: str | None = None
    if ctx.is_main:
        try:
            result = fn()
        except SimCLRError as e:
            error = str(e)
    result, error = broadcast_object((result, error))
    if error is not None:
        raise same_on_every_rank(SimCLRError(error))
    return result


def same_on_every_rank(error: SimCLRError) -> SimCLRError:
    """Mark an error that every rank raises alike (rank 0 alone reports it)."""
    error.on_every_rank = True  # type: ignore[attr-defined]
    return error


def same_on_this_machine(error: SimCLRError) -> SimCLRError:
    """Mark an error that every rank of one machine raises alike, before the process group exists (the
    machine's LOCAL_RANK 0 alone reports it)."""
    error.on_every_rank = "machine"  # type: ignore[attr-defined]
    return error


def reports(error: Exception) -> bool:
    """Whether this process prints ``error``: always, unless every rank (rank 0 prints it) or every rank
    of this machine (LOCAL_RANK 0 prints it) raised the same."""
    alike = getattr(error, "on_every_rank", False)
    if not alike:
        return True
    if alike == "machine":
        return int(os.environ.get("LOCAL_RANK", "0")) == 0
    ctx = context()
    return (ctx.rank if ctx.enabled else env_rank()) == 0


def backend() -> str:
    """The process group's backend name (gloo, nccl)."""
    return str(dist.get_backend())


class _GatherWithGrad(Function):
    """all_gather along dim 0; the backward sums every rank's gradient for this rank's rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN401
        world = dist.get_world_size()
        x = x.contiguous()
        out = x.new_empty((world * x.shape[0], *x.shape[1:]))
        if backend() == "nccl":
            dist.all_gather_into_tensor(out, x)
        else:
            dist.all_gather(list(out.chunk(world)), x)
        ctx.rows = x.shape[0]
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN401
        grad = grad.contiguous()
        rank, rows = dist.get_rank(), ctx.rows
        if backend() == "nccl":
            out = grad.new_empty((rows, *grad.shape[1:]))
            dist.reduce_scatter_tensor(out, grad)
            return out
        # gloo has no reduce_scatter: sum the whole gradient, keep this rank's rows
        dist.all_reduce(grad)
        return grad[rank * rows : (rank + 1) * rows].clone()


class _AllReduceSumWithGrad(Function):
    """Sum over ranks; every rank's output depends on every input, so the backward sums too."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN401, ARG004
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN401, ARG004
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` concatenated in rank order (rows), with gradients passed back."""
    if not context().enabled:
        return x
    return _GatherWithGrad.apply(x)


def all_reduce_sum_with_grad(x: torch.Tensor) -> torch.Tensor:
    if not context().enabled:
        return x
    return _AllReduceSumWithGrad.apply(x)


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a detached tensor (for logging and agreement)."""
    if not context().enabled:
        return x
    out = x.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. "a signal arrived")."""
    if not context().enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def shard_range(n: int, ctx: DistContext | None = None) -> tuple[int, int]:
    """This rank's contiguous share [start, stop) of n items (sizes differ by at most one)."""
    ctx = ctx or context()
    return n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size


@torch.no_grad()
def gather_rows(x: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """Every rank's ``shard_range(n)`` rows of a result, reassembled in order on every rank."""
    ctx = context()
    if not ctx.enabled:
        return x
    most = -(-n // ctx.world_size)
    padded = x.new_zeros((most, *x.shape[1:])).to(device)
    padded[: x.shape[0]] = x.to(device)
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    rows = []
    for r, part in enumerate(parts):
        a, b = shard_range(n, DistContext(r, ctx.world_size))
        rows.append(part[: b - a])
    return torch.cat(rows).to(x.device)


def wrap_ddp(model: nn.Module, device: torch.device, sync_buffers: bool) -> nn.Module:
    """``model`` in DistributedDataParallel: rank 0's weights are broadcast now, gradients are
    averaged over ranks in the backward. ``sync_buffers`` re-broadcasts rank 0's BN buffers every
    forward (only needed for per-rank BN; global BN keeps them equal by itself)."""
    from torch.nn.parallel import DistributedDataParallel

    kwargs: dict[str, Any] = {"device_ids": [device.index] if device.type == "cuda" else None}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        kwargs["forward_sync_buffers"] = sync_buffers  # newer torch; broadcast_buffers is deprecated
    else:
        kwargs["broadcast_buffers"] = sync_buffers
    return DistributedDataParallel(model, **kwargs)


__all__ = [
    "DistContext",
    "env_rank",
    "all_reduce_mean",
    "all_reduce_sum_with_grad",
    "any_rank",
    "backend",
    "barrier",
    "broadcast_object",
    "check_gpu_launch",
    "context",
    "gather_rows",
    "gather_with_grad",
    "init_from_env",
    "local_cuda_index",
    "local_world_size",
    "main_first",
    "rank_device",
    "reports",
    "same_on_every_rank",
    "same_on_this_machine",
    "shard_range",
    "wrap_ddp",
    "shutdown",
]
