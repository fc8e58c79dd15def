"""The contrastive losses by name (``--loss``): one entry each, the one place that lists them.

An entry builds its module from a run's ``loss`` config section, names it and its setting for the banner,
says whether it needs labels or takes ``--semi-hard``, and gives its value when every pair of views is
equally similar (cosine s between any two): the level a representation that cannot tell an image's two
views from the other images sits at. For NT-Xent and SupCon it is ln(2N-1) at any s and temperature;
an untrained network's similarities are not all equal, so its first losses can sit well above that level
at a low temperature; learning takes the loss below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from simclr.losses.ntlogistic import NTLogisticLoss
from simclr.losses.ntxent import NTXentLoss
from simclr.losses.supcon import SupConLoss
from simclr.losses.triplet import MarginTripletLoss


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@dataclass(frozen=True)
class LossKind:
    """A loss by name. ``build(cfg)``, ``at_equal(cfg, n, s)`` and ``equal_text(cfg, n)`` take the run's
    ``loss`` section (``name``, ``temperature``, ``margin``, ``semi_hard``) and N, the global batch of images."""

    name: str
    title: str
    build: Callable[[Any], nn.Module]
    uses: str  # the setting it reads: "temperature" or "margin"
    at_equal: Callable[[Any, int, float], float]  # its value when every pair has cosine s
    equal_text: Callable[[Any, int], str]  # the same, as the banner says it
    needs_labels: bool = False
    semi_hard: bool = False  # takes --semi-hard

    def describe(self, cfg: Any) -> str:  # noqa: ANN401 - a run's loss section
        setting = f"margin {cfg.margin}" if self.uses == "margin" else f"temperature {cfg.temperature}"
        return f"{self.title} {setting}{' semi-hard negatives' if cfg.semi_hard else ''}"


def _log_2n_1(cfg: Any, n: int, s: float) -> float:  # noqa: ANN401, ARG001
    return math.log(2 * n - 1)


def _log_text(cfg: Any, n: int) -> str:  # noqa: ANN401
    return (f"at chance, every pair equally similar: ln(2N-1) = {math.log(2 * n - 1):.3f} at any temperature "
            f"(an untrained network can start above it at a low one; learning takes the loss below it)")


def _logistic(cfg: Any, n: int, s: float) -> float:  # noqa: ANN401, ARG001
    # l = softplus(-s/tau) + mean over negatives softplus(s/tau); semi-hard keeps no negative when all are equal
    pos = _softplus(-s / cfg.temperature)
    return pos if cfg.semi_hard else pos + _softplus(s / cfg.temperature)


def _logistic_text(cfg: Any, n: int) -> str:  # noqa: ANN401
    if cfg.semi_hard:
        return (f"at chance, every pair exactly equally similar: {_logistic(cfg, n, 0.0):.3f} at s = 0 (the "
                "positive's term alone: no negative is less similar than the positive); learning takes it lower")
    return (f"at chance, every pair equally similar at cosine s: {_logistic(cfg, n, 0.0):.3f} (s = 0) to "
            f"{_logistic(cfg, n, 1.0):.3f} (s = 1, an untrained network's start); learning takes it lower")


def _triplet(cfg: Any, n: int, s: float) -> float:  # noqa: ANN401, ARG001
    return 0.0 if cfg.semi_hard else float(cfg.margin)


def _triplet_text(cfg: Any, n: int) -> str:  # noqa: ANN401
    if cfg.semi_hard:
        return "at chance, every pair equally similar: 0 (no negative is less similar than the positive)"
    return f"at chance, every pair equally similar: the margin, {cfg.margin}; learning takes it lower"


LOSS_KINDS: dict[str, LossKind] = {
    kind.name: kind
    for kind in (
        LossKind("ntxent", "NT-Xent", lambda c: NTXentLoss(c.temperature), "temperature", _log_2n_1, _log_text),
        LossKind("supcon", "SupCon", lambda c: SupConLoss(c.temperature), "temperature", _log_2n_1, _log_text,
                 needs_labels=True),
        LossKind("ntlogistic", "NT-Logistic", lambda c: NTLogisticLoss(c.temperature, semi_hard=c.semi_hard),
                 "temperature", _logistic, _logistic_text, semi_hard=True),
        LossKind("triplet", "margin triplet", lambda c: MarginTripletLoss(c.margin, semi_hard=c.semi_hard),
                 "margin", _triplet, _triplet_text, semi_hard=True),
    )
}
LOSSES = tuple(LOSS_KINDS)

__all__ = ["LOSSES", "LOSS_KINDS", "LossKind"]
