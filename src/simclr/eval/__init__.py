"""Judging a representation: features from a frozen encoder, linear evaluation, kNN, the protocols that
run them on a trained run, and the online monitors that track them during pretraining."""

from simclr.eval.features import check_finite, encode, extract_features
from simclr.eval.knn import knn_eval
from simclr.eval.linear import linear_eval, topk_accuracy

__all__ = ["check_finite", "encode", "extract_features", "knn_eval", "linear_eval", "topk_accuracy"]
