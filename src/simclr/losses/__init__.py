"""Training objectives, one a file; each an ``nn.Module`` whose docstring gives the formula."""

from simclr.losses.distill import DistillLoss, soft_cross_entropy
from simclr.losses.ntxent import NTXentLoss, at_least_fp32, nt_xent
from simclr.losses.supcon import SupConLoss, supcon

LOSSES = ("ntxent", "supcon")

__all__ = ["LOSSES", "DistillLoss", "NTXentLoss", "SupConLoss", "at_least_fp32", "nt_xent", "soft_cross_entropy",
           "supcon"]
