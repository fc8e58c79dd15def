"""Every encoder x head: shapes, gradients reach every parameter, no NaN; stems; init."""

from __future__ import annotations

import pytest
import torch

from simclr import build_encoder, build_model
from simclr.errors import SimCLRError
from simclr.models.encoder import ARCHS, BasicBlock, Bottleneck, ResNet
from simclr.models.heads import HEADS, build_head

WIDTH = 0.25
FEATURE_DIM = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("head", HEADS)
def test_encoder_head_shapes_and_gradients(arch: str, head: str) -> None:
    model = build_model(arch, WIDTH, "cifar", 8, head=head, proj_dim=32)
    x = torch.rand(4, 3, 8, 8)
    h, z = model(x)
    dim = int(FEATURE_DIM[arch] * WIDTH)
    assert h.shape == (4, dim)
    assert z.shape == (4, dim if head == "none" else 32)
    assert torch.isfinite(h).all() and torch.isfinite(z).all()
    (z.pow(2).sum() + h.sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("bn", [True, False])
def test_mlp_head_depth_and_bn(layers: int, bn: bool) -> None:
    head = build_head("mlp", 64, 16, layers, bn)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == layers
    assert [m.out_features for m in linears] == [64] * (layers - 1) + [16]
    assert all((m.bias is None) == bn for m in linears)  # official code: no bias before BN
    assert head(torch.randn(8, 64)).shape == (8, 16)


def test_width_multiplier_scales_every_filter_count_including_stem() -> None:
    narrow = build_encoder("resnet18", 0.5, "imagenet")
    wide = build_encoder("resnet18", 2.0, "imagenet")
    assert narrow.feature_dim == 256 and wide.feature_dim == 1024
    convs_n = [m.out_channels for m in narrow.modules() if isinstance(m, torch.nn.Conv2d)]
    convs_w = [m.out_channels for m in wide.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs_n[0] == 32 and convs_w[0] == 128  # the stem scales too
    assert all(w == 4 * n for n, w in zip(convs_n, convs_w, strict=False))


def test_stems() -> None:
    cifar = build_encoder("resnet18", WIDTH, "auto", image_size=32)
    imnet = build_encoder("resnet18", WIDTH, "auto", image_size=64)
    c1 = next(m for m in cifar.modules() if isinstance(m, torch.nn.Conv2d))
    i1 = next(m for m in imnet.modules() if isinstance(m, torch.nn.Conv2d))
    assert c1.kernel_size == (3, 3) and c1.stride == (1, 1)
    assert i1.kernel_size == (7, 7) and i1.stride == (2, 2)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in cifar.modules())
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in imnet.modules())
    # nopool: the ImageNet stem's conv, no max-pool: 28 px -> a 14x14 first stage, as the ImageNet stem from 56 px
    nopool = build_encoder("resnet18", WIDTH, "nopool", image_size=28)
    n1 = next(m for m in nopool.modules() if isinstance(m, torch.nn.Conv2d))
    assert n1.kernel_size == (7, 7) and n1.stride == (2, 2)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in nopool.modules())
    assert nopool.stem(torch.rand(1, 3, 28, 28)).shape[-2:] == imnet.stem(torch.rand(1, 3, 56, 56)).shape[-2:] \
        == (14, 14)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_zero_init_last_bn_gamma_makes_blocks_identity(arch: str) -> None:
    enc = build_encoder(arch, WIDTH, "cifar")
    last_bns = [blk.bn2 if isinstance(blk, BasicBlock) else blk.bn3 for blk in enc.modules()
                if isinstance(blk, (BasicBlock, Bottleneck))]
    assert last_bns
    assert all(float(bn.weight.detach().abs().sum()) == 0.0 for bn in last_bns)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_standard_init_keeps_every_bn_gamma_one(arch: str) -> None:
    enc = ResNet(arch, WIDTH, "cifar", zero_init_residual=False)
    bns = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bool((bn.weight == 1).all()) for bn in bns)
    # and the blocks are no longer identities: the output depends on the residual branch
    enc.eval()
    x = torch.rand(2, 3, 16, 16)
    zero = ResNet(arch, WIDTH, "cifar").eval()
    zero.load_state_dict(enc.state_dict() | {k: v for k, v in zero.state_dict().items() if "bn" in k})
    assert not torch.allclose(enc(x), zero(x))


def test_unknown_names() -> None:
    with pytest.raises(SimCLRError, match="resnet18"):
        build_encoder("resnet19")
    with pytest.raises(SimCLRError):
        build_encoder("resnet18", stem="tiny")
    with pytest.raises(SimCLRError):
        build_head("transformer", 8)


def test_zero_init_residual_option_reaches_the_encoder() -> None:
    from simclr import PretrainConfig
    from simclr.config import apply_overrides, resolve
    from simclr.train.setup import build_network

    for flag in (True, False):
        cfg = PretrainConfig()
        apply_overrides(cfg, {"model.zero_init_residual": flag, "model.width_multiplier": WIDTH}, "test")
        model = build_network(resolve(cfg))
        gammas = [blk.bn2.weight for blk in model.encoder.modules() if isinstance(blk, BasicBlock)]
        assert all(bool((g == (0.0 if flag else 1.0)).all()) for g in gammas)


def test_imagenet_input_norm_is_the_plain_encoder_on_normalised_input() -> None:
    torch.manual_seed(0)
    plain = ResNet("resnet18", WIDTH, "imagenet", input_norm="none").eval()
    normed = ResNet("resnet18", WIDTH, "imagenet", input_norm="imagenet").eval()
    normed.load_state_dict(plain.state_dict())  # the same keys: the statistics are not weights
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(normed(x), plain((x - mean) / std))
        assert not torch.allclose(normed(x), plain(x), atol=1e-3)
        # channels_last input (as training feeds it) gives the same result
        torch.testing.assert_close(normed(x.contiguous(memory_format=torch.channels_last)), normed(x))
    with pytest.raises(SimCLRError, match="input normalisation 'cifar'"):
        ResNet("resnet18", WIDTH, "imagenet", input_norm="cifar")


@pytest.mark.parametrize("layers", [2, 3])
def test_head_without_output_bn_keeps_the_hidden_bn(layers: int) -> None:
    head = build_head("mlp", 64, 16, layers, bn=True, out_bn=False)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in head.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert [m.bias is None for m in linears] == [True] * (layers - 1) + [False]  # last: plain dense with bias
    assert len(norms) == layers - 1 and all(n.num_features == 64 for n in norms)
    assert isinstance(list(head.children())[-1], torch.nn.Linear)
    assert head(torch.randn(8, 64)).shape == (8, 16)
    # the default (official code) has a BN after the last layer as well
    assert len([m for m in build_head("mlp", 64, 16, layers).modules() if isinstance(m, torch.nn.Linear)]) == layers
    assert not isinstance(list(build_head("mlp", 64, 16, layers).children())[-1], torch.nn.Linear)
