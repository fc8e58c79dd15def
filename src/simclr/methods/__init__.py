"""Training methods: objects with ``training_step(batch) -> StepOutput`` that the loop can run; the
pretraining ones found by name (``simclr.methods.registry``)."""

from simclr.methods.base import Method, MethodBase, PretrainMethod, StepOutput, StepTools, identity
from simclr.methods.distill import Distill
from simclr.methods.finetune import FineTune
from simclr.methods.registry import METHODS, method_class, register
from simclr.methods.simclr import SimCLR, project_views

__all__ = ["METHODS", "Distill", "FineTune", "Method", "MethodBase", "PretrainMethod", "SimCLR", "StepOutput",
           "StepTools", "identity", "method_class", "project_views", "register"]
