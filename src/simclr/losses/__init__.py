"""Contrastive objectives, one a file; each an ``nn.Module`` whose docstring gives the formula."""

from simclr.losses.ntxent import NTXentLoss, at_least_fp32, nt_xent

__all__ = ["NTXentLoss", "at_least_fp32", "nt_xent"]
