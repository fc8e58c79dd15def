"""Projection heads g(h) -> z.

``mlp`` with ``bn=True`` (the default) follows the official code (``model_util.py``): every
dense layer has no bias and is followed by BN; hidden layers use BN with beta then ReLU; the
last BN has gamma but no beta and no ReLU; hidden width = dim(h). With ``bn=False`` it is the
paper's ``z = W2 relu(W1 h)`` (with biases). v1 uses 2 layers, v2 uses 3. ``out_bn=False`` keeps
the hidden layers' BN but makes the last layer a plain dense layer with bias (no BN), as
torchvision-based implementations' heads.
``linear`` is a single dense layer and ``none`` the identity (Figure 8's ablations).
"""

from __future__ import annotations

from torch import nn

from simclr.errors import SimCLRError
from simclr.models.norm import BatchNorm1d, BatchNorm1dNoBeta

HEADS = ("mlp", "linear", "none")


def hidden_layers(dim: int, count: int, bn: bool = True) -> nn.Sequential:
    """``count`` hidden layers of an mlp head on features of ``dim``: dense (no bias with BN), BN, ReLU
    each; what fine-tuning from head layer ``count`` keeps (SimCLRv2), with the head's own keys."""
    layers: list[nn.Module] = []
    for _ in range(count):
        if bn:
            layers += [nn.Linear(dim, dim, bias=False), BatchNorm1d(dim), nn.ReLU(True)]
        else:
            layers += [nn.Linear(dim, dim), nn.ReLU(True)]
    return nn.Sequential(*layers)


def head_depth(kind: str, num_layers: int) -> int:
    """How many hidden layers (dense + ReLU) a head has: the deepest ``--from-head-layer``."""
    return num_layers - 1 if kind == "mlp" else 0


def build_head(
    kind: str, in_dim: int, out_dim: int = 128, num_layers: int = 2, bn: bool = True, out_bn: bool = True
) -> nn.Module:
    """The projection head ``kind`` (``mlp``, ``linear`` or ``none``) on features of ``in_dim``."""
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        if bn:
            return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), BatchNorm1dNoBeta(out_dim))
        return nn.Linear(in_dim, out_dim)
    if kind != "mlp":
        raise SimCLRError(f"unknown head {kind!r}: choose one of {', '.join(HEADS)}")
    if num_layers < 2:
        raise SimCLRError(f"an mlp head needs >= 2 layers (2 = v1, 3 = v2), got {num_layers}")
    layers = list(hidden_layers(in_dim, num_layers - 1, bn))
    if bn and out_bn:
        layers += [nn.Linear(in_dim, out_dim, bias=False), BatchNorm1dNoBeta(out_dim)]
    else:
        layers += [nn.Linear(in_dim, out_dim)]
    return nn.Sequential(*layers)
