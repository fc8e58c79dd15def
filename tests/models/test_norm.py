"""Global BN's two forms: under nccl PyTorch's SyncBatchNorm, else the all-reduce of sums (any backend).

Without a process group both must be plain BatchNorm; the conversion must keep every parameter and
buffer (the same tensors) and every state-dict key."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.models import build_model
from simclr.models.norm import GlobalBatchNorm, SyncBatchNormNoBeta, convert_global_bn


@pytest.mark.parametrize("backend", ["nccl", "gloo"])
def test_conversion_keeps_the_function_the_weights_and_the_keys(backend: str) -> None:
    torch.manual_seed(0)
    plain = build_model("resnet18", 0.25, "cifar", 12).train()
    torch.manual_seed(0)
    converted = convert_global_bn(build_model("resnet18", 0.25, "cifar", 12), backend).train()
    bns = [m for m in converted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if backend == "nccl":
        assert bns and all(isinstance(m, nn.SyncBatchNorm) for m in bns)
        assert any(isinstance(m, SyncBatchNormNoBeta) for m in bns)  # the head's last BN, gamma without beta
    else:
        assert all(getattr(m, "global_stats", False) for m in bns)
    assert list(converted.state_dict()) == list(plain.state_dict())
    x = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    for _ in range(2):  # train mode: batch statistics, running statistics updated
        for a, b in zip(converted(x), plain(x), strict=True):
            torch.testing.assert_close(a, b)
    for (k, a), b in zip(converted.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    converted.eval(), plain.eval()
    torch.testing.assert_close(converted(x)[1], plain(x)[1])


def test_sync_conversion_shares_the_tensors() -> None:
    bn = nn.BatchNorm1d(4)
    sync = convert_global_bn(nn.Sequential(bn), "nccl")[0]
    assert isinstance(sync, nn.SyncBatchNorm)
    assert sync.weight is bn.weight and sync.running_mean is bn.running_mean
    gloo = convert_global_bn(nn.Sequential(nn.BatchNorm2d(4)), "gloo")[0]
    assert isinstance(gloo, GlobalBatchNorm)


def test_an_unknown_batchnorm_is_refused() -> None:
    class OwnBN(nn.BatchNorm2d):
        pass

    for backend in ("nccl", "gloo"):
        with pytest.raises(SimCLRError, match="OwnBN is a BatchNorm that global BN cannot convert"):
            convert_global_bn(nn.Sequential(OwnBN(3)), backend)
