"""simclr: SimCLR contrastive self-supervised pretraining and evaluation in PyTorch."""

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.checkpoint import load_encoder
from simclr.config import PretrainConfig
from simclr.embedding import Embeddings, embed
from simclr.errors import SimCLRError
from simclr.evaluate import extract_features, knn_eval, linear_eval
from simclr.loss import NTXentLoss, nt_xent
from simclr.models import ResNet, SimCLRModel, build_encoder, build_head, build_model
from simclr.optim import LARS, lr_at, scaled_lr
from simclr.search import Searcher
from simclr.train import pretrain

__version__ = "0.1.0"

__all__ = [
    "LARS",
    "AugmentConfig",
    "Embeddings",
    "NTXentLoss",
    "PretrainConfig",
    "ResNet",
    "Searcher",
    "SimCLRAugment",
    "SimCLRError",
    "SimCLRModel",
    "build_encoder",
    "build_head",
    "build_model",
    "embed",
    "extract_features",
    "knn_eval",
    "linear_eval",
    "load_encoder",
    "lr_at",
    "nt_xent",
    "pretrain",
    "scaled_lr",
]
