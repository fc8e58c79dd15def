"""Global BN: the all-reduce of sums on every backend (nccl too: no SyncBatchNorm, which reads the host).

Without a process group it must be plain BatchNorm; the conversion must keep every parameter and
buffer (the same tensors) and every state-dict key; its forward and backward equal torch's BN on one
process's batch (the all-reduces are the identity there; tests/test_distributed.py has 2 ranks)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.models import build_model
from simclr.models.norm import GlobalBatchNorm, convert_global_bn, global_batch_norm


@pytest.mark.parametrize("backend", ["nccl", "gloo"])
def test_conversion_keeps_the_function_the_weights_and_the_keys(backend: str) -> None:
    torch.manual_seed(0)
    plain = build_model("resnet18", 0.25, "cifar", 12).train()
    torch.manual_seed(0)
    converted = convert_global_bn(build_model("resnet18", 0.25, "cifar", 12), backend).train()
    bns = [m for m in converted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(getattr(m, "global_stats", False) for m in bns)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in converted.modules())
    assert list(converted.state_dict()) == list(plain.state_dict())
    x = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    for _ in range(2):  # train mode: batch statistics, running statistics updated
        for a, b in zip(converted(x), plain(x), strict=True):
            torch.testing.assert_close(a, b)
    for (k, a), b in zip(converted.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    converted.eval(), plain.eval()
    torch.testing.assert_close(converted(x)[1], plain(x)[1])


@pytest.mark.parametrize("backend", ["nccl", "gloo"])
def test_conversion_shares_the_tensors(backend: str) -> None:
    bn = nn.BatchNorm1d(4)
    converted = convert_global_bn(nn.Sequential(bn), backend)[0]
    assert isinstance(converted, GlobalBatchNorm)
    assert converted.weight is bn.weight and converted.running_mean is bn.running_mean


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 5, 7)])
@pytest.mark.parametrize("affine", [True, False])
def test_the_global_function_is_batch_norm_with_its_gradients(shape: tuple[int, ...], affine: bool) -> None:
    """Forward, running statistics, and the backward of x, gamma and beta against torch's BN in float64
    (on one process the all-reduces are the identity; the function writes its own backward)."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5).requires_grad_()
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    mod = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
    ours, ref = mod(shape[1], affine=affine).double(), mod(shape[1], affine=affine).double()
    if affine:
        with torch.no_grad():
            for m in (ours, ref):
                m.weight.copy_(torch.linspace(0.5, 2, shape[1]))
                m.bias.copy_(torch.linspace(-1, 1, shape[1]))
    x2 = x.detach().clone().requires_grad_()
    y = global_batch_norm(ours, x)
    y_ref = ref(x2)
    torch.testing.assert_close(y, y_ref)
    y.backward(dy)
    y_ref.backward(dy)
    torch.testing.assert_close(x.grad, x2.grad)
    if affine:
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == 1


def test_the_global_function_saves_the_input_in_its_own_dtype() -> None:
    """What the backward keeps of a bf16 activation is the bf16 tensor itself (as torch's BN keeps it),
    not a float32 copy of it: twice the memory of every BN input in a bf16 run."""
    x = torch.randn(8, 16, 6, 6).to(torch.bfloat16).requires_grad_()
    bn = nn.BatchNorm2d(16)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = global_batch_norm(bn, x)
    assert y.dtype == torch.bfloat16
    big = [t for t in saved if t.numel() == x.numel()]
    assert len(big) == 1 and big[0].dtype == torch.bfloat16


def test_an_unknown_batchnorm_is_refused() -> None:
    class OwnBN(nn.BatchNorm2d):
        pass

    for backend in ("nccl", "gloo"):
        with pytest.raises(SimCLRError, match="OwnBN is a BatchNorm that global BN cannot convert"):
            convert_global_bn(nn.Sequential(OwnBN(3)), backend)
