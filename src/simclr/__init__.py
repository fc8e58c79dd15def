"""simclr: SimCLR contrastive self-supervised pretraining and evaluation in PyTorch."""

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.config import PretrainConfig
from simclr.errors import SimCLRError
from simclr.eval import extract_features, knn_eval, linear_eval
from simclr.losses import DistillLoss, NTXentLoss, SupConLoss, nt_xent
from simclr.methods import PretrainMethod, StepOutput, StepTools, register
from simclr.models import ResNet, SimCLRModel, build_encoder, build_head, build_model
from simclr.models.backbones import Backbone, EncoderSpec
from simclr.models.classifier import Classifier, load_classifier
from simclr.models.weights import load_encoder, load_head
from simclr.optim import LARS, lr_at, scaled_lr
from simclr.train import Callback, distill, finetune, pretrain
from simclr.use.embeddings import Embeddings, embed
from simclr.use.search import Searcher

__version__ = "0.1.0"

__all__ = [
    "LARS",
    "AugmentConfig",
    "Backbone",
    "Callback",
    "Classifier",
    "DistillLoss",
    "Embeddings",
    "EncoderSpec",
    "NTXentLoss",
    "PretrainConfig",
    "PretrainMethod",
    "ResNet",
    "Searcher",
    "SupConLoss",
    "SimCLRAugment",
    "SimCLRError",
    "SimCLRModel",
    "StepOutput",
    "StepTools",
    "build_encoder",
    "build_head",
    "build_model",
    "distill",
    "embed",
    "extract_features",
    "finetune",
    "knn_eval",
    "linear_eval",
    "load_classifier",
    "load_encoder",
    "load_head",
    "lr_at",
    "nt_xent",
    "pretrain",
    "register",
    "scaled_lr",
]
