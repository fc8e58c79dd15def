"""Training methods: objects with ``training_step(batch) -> StepOutput`` that the loop can run."""

from simclr.methods.base import Method, StepOutput, identity
from simclr.methods.distill import Distill
from simclr.methods.finetune import FineTune
from simclr.methods.simclr import SimCLR, project_views

__all__ = ["Distill", "FineTune", "Method", "SimCLR", "StepOutput", "identity", "project_views"]
