"""Training methods: objects with ``training_step(batch) -> StepOutput`` that the loop can run."""

from simclr.methods.base import Method, StepOutput
from simclr.methods.simclr import SimCLR, project_views

__all__ = ["Method", "SimCLR", "StepOutput", "project_views"]
