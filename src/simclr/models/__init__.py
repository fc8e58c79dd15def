from simclr.models.classifier import Classifier, load_classifier
from simclr.models.encoder import ARCHS, ResNet, build_encoder
from simclr.models.heads import HEADS, build_head
from simclr.models.simclr import SimCLRModel, build_model

__all__ = [
    "ARCHS", "HEADS", "Classifier", "ResNet", "SimCLRModel", "build_encoder", "build_head", "build_model",
    "load_classifier",
]
