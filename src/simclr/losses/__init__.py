"""Training objectives, one a file; each an ``nn.Module`` whose docstring gives the formula."""

from simclr.losses.catalog import LOSS_KINDS, LOSSES, LossKind
from simclr.losses.distill import DistillLoss, soft_cross_entropy
from simclr.losses.ntlogistic import NTLogisticLoss, nt_logistic
from simclr.losses.ntxent import NTXentLoss, at_least_fp32, nt_xent
from simclr.losses.supcon import SupConLoss, supcon
from simclr.losses.triplet import MarginTripletLoss, margin_triplet

__all__ = [
    "LOSSES", "LOSS_KINDS", "DistillLoss", "LossKind", "MarginTripletLoss", "NTLogisticLoss", "NTXentLoss",
    "SupConLoss", "at_least_fp32", "margin_triplet", "nt_logistic", "nt_xent", "soft_cross_entropy", "supcon",
]
