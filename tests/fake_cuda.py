"""A CUDA device that is not there: runs the real code on fake ``cuda`` tensors, on a machine without a GPU.

``fake_cuda()`` is PyTorch's ``FakeTensorMode`` (tensors with shapes, dtypes and devices but no data)
plus what a CPU-only machine lacks for it: ``torch.cuda`` answers as one GPU of the given name and
compute capability would, pinned memory is a no-op, and ``backward`` gives every leaf of the graph a
zero gradient of its own shape, dtype and device (the autograd engine needs a real CUDA context).

Host work stays real: an op whose tensors are all real CPU tensors, making none on CUDA (the random
draws of the augmentation, a shuffle's indices), runs for real; only what touches the fake GPU is fake.

What it shows, on the CPU: a device mismatch (a CPU tensor meeting a CUDA tensor in an op) raises as
on a GPU; every host read of a CUDA tensor is counted (``HostReads``): a Python read (``item``,
``tolist``, ``bool``, ``float``, ``int``, ``numpy``), ``torch.cuda.synchronize``, a blocking copy to
the CPU (``.cpu()``, ``.to("cpu")``, a ``copy_`` without ``non_blocking``), a ``torch.save`` of CUDA
tensors, and an op whose output size depends on the values (``nonzero``, masked selection: those
raise, as they cannot run on fake tensors). A copy to the host arrives as real zeros (so the host
work after it runs for real), and a read answers ``0`` through ``item`` (so torch's grad scaler sees
no overflow) and ``-1`` through ``tolist`` (so the loop's finiteness guard sees no bad step;
``False`` for a bool tensor). Files load for real (``torch.load``) and save fake tensors as zeros.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")
DYNAMIC = {torch.ops.aten.nonzero.default, torch.ops.aten.masked_select.default}


class HostRead(RuntimeError):
    """An op whose output size depends on a CUDA tensor's values: a host read that fake tensors cannot run."""


class _Mode(FakeTensorMode):
    @property
    def avoid_device_init(self) -> bool:  # never initialise the CUDA that is not there
        return True


def _on_cuda(x: Any) -> bool:  # noqa: ANN401
    return isinstance(x, torch.Tensor) and x.device.type == "cuda"


class HostReads(TorchDispatchMode):
    """Counts the host reads of CUDA tensors (module docstring); ``events`` says which, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.events: list[str] = []
        self.python_read = 0  # inside a Python-level read: its scalar reads are that one read

    def hit(self, what: str) -> None:
        self.count += 1
        self.events.append(what)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if kwargs.get("pin_memory"):  # no pinned memory without CUDA: plain host memory stands in
            kwargs = {**kwargs, "pin_memory": False}
        dev = kwargs.get("device")
        if not any(isinstance(t, FakeTensor) for t in pytree.tree_leaves((args, kwargs))) and (
                dev is None or torch.device(dev).type != "cuda"):
            with _disable_current_modes():  # host work on real CPU tensors (random draws, indices) runs for real
                return func(*args, **kwargs)
        if func is torch.ops.aten._local_scalar_dense.default:
            if _on_cuda(args[0]) and not self.python_read:
                self.hit(f"{func} (from C++)")
            x = args[0]
            return False if x.dtype == torch.bool else 0 if not x.is_floating_point() else 0.0
        if func in DYNAMIC and _on_cuda(args[0]):
            self.hit(str(func))
            raise HostRead(f"{func} on a CUDA tensor: its output size needs a host read")
        # a copy to the host arrives as a real CPU tensor of zeros, so the host work after it runs for real
        if func is torch.ops.aten._to_copy.default and _on_cuda(args[0]) and dev is not None \
                and torch.device(dev).type == "cpu":
            if not kwargs.get("non_blocking", False):
                self.hit(f"{func} to the CPU (blocking)")
            with _disable_current_modes():
                return torch.zeros(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        if func is torch.ops.aten.copy_.default and _on_cuda(args[1]) and args[0].device.type == "cpu":
            if not (len(args) > 2 and args[2]) and not kwargs.get("non_blocking", False):
                self.hit(f"{func} to the CPU (blocking)")
            if not isinstance(args[0], FakeTensor):
                with _disable_current_modes():
                    return args[0].zero_()
        return func(*args, **kwargs)


def _leaves(roots: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every tensor that would receive a ``.grad`` from a backward of ``roots``."""
    out, seen, stack = [], set(), []
    for r in roots:
        if r.grad_fn is None:
            if r.requires_grad:
                out.append(r)
        else:
            stack.append(r.grad_fn)
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if hasattr(node, "variable"):  # AccumulateGrad
            out.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return out


def _apply_fresh(self: torch.nn.Module, fn: Callable, recurse: bool = True) -> torch.nn.Module:
    """``Module._apply`` (``.to``, ``.double``, ...) that gives a module new parameter and buffer objects
    instead of swapping the old ones' contents (which fake tensors refuse): parameters are moved before
    any optimiser holds them, as in the code under test."""
    if recurse:
        for child in self.children():
            _apply_fresh(child, fn)
    with torch.no_grad():
        for key, p in self._parameters.items():
            if p is not None:
                self._parameters[key] = torch.nn.Parameter(fn(p), requires_grad=p.requires_grad)
        for key, b in self._buffers.items():
            if b is not None:
                self._buffers[key] = fn(b)
    return self


def _saving(real_save: Callable, counter: HostReads) -> Callable:
    """``torch.save`` that writes fake tensors as real zeros of their shape and dtype (a save of a CUDA
    tensor reads it back: one host read per save that holds any)."""
    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        on_gpu = []

        def real(x: Any) -> Any:  # noqa: ANN401
            if isinstance(x, FakeTensor):
                on_gpu.append(x.device.type == "cuda")
                with _disable_current_modes():
                    return torch.zeros(x.shape, dtype=x.dtype)
            return x

        obj = pytree.tree_map(real, obj)
        if any(on_gpu):
            counter.hit("torch.save of CUDA tensors")
        with _disable_current_modes():
            real_save(obj, f, *args, **kwargs)

    return save


def _real(fn: Callable) -> Callable:
    """``fn`` run outside the fake mode: host work (reading a file) that must give real tensors."""
    def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        with _disable_current_modes():
            return fn(*args, **kwargs)

    return call


def _fake_backward(tensors: Any, grad_tensors: Any = None, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
    roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
    grads = grad_tensors if isinstance(grad_tensors, (list, tuple)) else [grad_tensors] * len(roots)
    for root, grad in zip(roots, grads, strict=True):
        if grad is not None and grad.device != root.device:
            raise RuntimeError(f"backward: a gradient on {grad.device} for a tensor on {root.device}")
        if not root.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    for leaf in _leaves(roots):
        g = torch.zeros_like(leaf)
        leaf.grad = g if leaf.grad is None else leaf.grad + g


@contextlib.contextmanager
def fake_cuda(name: str = "NVIDIA H100 80GB HBM3 (fake)", capability: tuple[int, int] = (9, 0),
              reads: HostReads | None = None) -> Iterator[HostReads]:
    """Inside: one fake GPU, ``cuda:0`` (module docstring). Yields the host-read counter. Build models on the
    CPU before entering, or inside (their parameters are fake then), and move them with ``.to("cuda:0")``."""
    counter = reads or HostReads()
    mode = _Mode(allow_non_fake_inputs=True)
    mp = pytest_monkeypatch()
    mp.setattr(torch.cuda, "is_available", lambda: True)
    mp.setattr(torch.cuda, "device_count", lambda: 1)
    mp.setattr(torch.cuda, "current_device", lambda: 0)
    mp.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    mp.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    mp.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    mp.setattr(torch.cuda, "synchronize", lambda device=None: counter.hit("torch.cuda.synchronize"))
    mp.setattr(torch.cuda, "set_device", lambda device: None)
    mp.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.zeros(16, dtype=torch.uint8))
    mp.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": None)
    mp.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    mp.setattr(torch.Tensor, "is_pinned", lambda self, *a, **k: True)
    mp.setattr(torch.Tensor, "backward", lambda self, gradient=None, *a, **k: _fake_backward(self, gradient))
    mp.setattr(torch.autograd, "backward", _fake_backward)
    mp.setattr(torch.nn.Module, "_apply", _apply_fresh)
    mp.setattr(torch, "save", _saving(torch.save, counter))
    mp.setattr(torch, "load", _real(torch.load))  # files load as real CPU tensors (map_location cuda: fake)
    for method in READS:
        mp.setattr(torch.Tensor, method, _counted(getattr(torch.Tensor, method), method, counter))
    mp.setattr(FakeTensor, "tolist", _counted(FakeTensor.tolist, "tolist", counter))  # its own: item() per element
    try:
        with mode, counter:
            yield counter
    finally:
        mp.undo()


def _counted(real: Callable, name: str, counter: HostReads) -> Callable:
    def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if self.device.type == "cuda":
            counter.hit(f"Tensor.{name}")
        counter.python_read += 1
        try:
            if name == "tolist" and self.device.type == "cuda":
                return _filled(list(self.shape), False if self.dtype == torch.bool else -1.0)
            return real(self, *args, **kwargs)
        finally:
            counter.python_read -= 1

    return read


def _filled(shape: list[int], value: float) -> Any:  # noqa: ANN401
    return value if not shape else [_filled(shape[1:], value) for _ in range(shape[0])]


def pytest_monkeypatch() -> Any:  # noqa: ANN401
    import pytest

    return pytest.MonkeyPatch()


__all__ = ["HostRead", "HostReads", "fake_cuda"]
