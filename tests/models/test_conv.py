"""The dense form of tiny-map convolutions equals F.conv2d in value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr.models import conv as conv_mod
from simclr.models.conv import Conv2d, dense_conv2d, use_dense
from simclr.models.encoder import ResNet

CASES = [
    # (in_ch, out_ch, kernel, stride, padding, size)
    (8, 6, 3, 1, 1, 1),  # the ResNet layer4 case at 28 px: only the centre tap meets the input
    (8, 6, 3, 1, 1, 2),
    (8, 6, 3, 2, 1, 2),  # the stride-2 transition into a 1x1 map
    (5, 7, 3, 2, 1, 3),
    (3, 4, 7, 2, 3, 2),  # a 7x7 stem on a tiny image
    (4, 4, 3, 1, 0, 3),  # no padding
    (4, 4, (3, 1), (2, 1), (1, 0), 2),  # rectangular kernel, stride and padding
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_dense_conv_equals_conv2d_in_value_and_gradient(case: tuple, bias: bool) -> None:
    c, o, k, s, p, size = case
    k2 = k if isinstance(k, tuple) else (k, k)
    s2 = s if isinstance(s, tuple) else (s, s)
    p2 = p if isinstance(p, tuple) else (p, p)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, c, size, size, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(o, c, *k2, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(o, dtype=torch.float64, generator=g, requires_grad=True) if bias else None
    ref = F.conv2d(x, w, b, s2, p2)
    out = dense_conv2d(x, w, b, s2, p2)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    up = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    inputs = (x, w) + ((b,) if b is not None else ())
    for got, want in zip(torch.autograd.grad(out, inputs, up), torch.autograd.grad(ref, inputs, up), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_dense_conv_accepts_channels_last_input() -> None:
    x = torch.randn(4, 6, 2, 2).contiguous(memory_format=torch.channels_last)
    w = torch.randn(5, 6, 3, 3)
    torch.testing.assert_close(dense_conv2d(x, w, None, (1, 1), (1, 1)), F.conv2d(x, w, None, 1, 1))


def test_dense_form_is_chosen_only_where_it_does_less_work() -> None:
    conv3 = Conv2d(4, 4, 3, padding=1)
    conv1 = Conv2d(4, 4, 1)
    assert use_dense(torch.zeros(1, 4, 1, 1), conv3)
    assert use_dense(torch.zeros(1, 4, 2, 2), conv3)  # 4 < 9
    assert not use_dense(torch.zeros(1, 4, 3, 3), conv3)  # 9 == 9: the conv is no worse
    assert not use_dense(torch.zeros(1, 4, 1, 1), conv1)  # a 1x1 kernel is already a matmul
    assert not use_dense(torch.zeros(1, 4, 1, 1), Conv2d(4, 4, 3, padding=1, groups=2))
    assert not use_dense(torch.zeros(1, 4, 1, 1), Conv2d(4, 4, 3, padding=1, dilation=2))
    assert not use_dense(torch.zeros(1, 4, 1, 1), Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))


def test_resnet_at_28px_uses_the_dense_form_and_matches_plain_convolutions(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    net = ResNet("resnet18", 0.25, "imagenet").double().train()
    x = torch.rand(6, 3, 28, 28, dtype=torch.float64)
    calls = []
    real = conv_mod.dense_conv2d

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_mod, "dense_conv2d", counting)
    out = net(x)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    # layer3 at 2x2 (3 convs), layer4 at 1x1 (3 convs) and the stride-2 conv into layer4
    assert len(calls) == 7
    net.zero_grad()
    monkeypatch.setattr(conv_mod, "use_dense", lambda x, conv: False)
    ref = net(x)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for n, p in net.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-9, atol=1e-10, msg=n)


def test_state_dict_keys_match_plain_conv() -> None:
    assert set(Conv2d(3, 4, 3).state_dict()) == set(torch.nn.Conv2d(3, 4, 3).state_dict())
