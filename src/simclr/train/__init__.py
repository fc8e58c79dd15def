"""Training: the loop and its callbacks, one optimiser step, the checkpoint, the run set-up, and the
runs built from them: ``pretrain`` (SimCLR / SupCon), ``finetune`` and ``distill`` (few labels)."""

from simclr.train.callbacks import Callback, StepEvent
from simclr.train.distill import distill
from simclr.train.finetune import finetune
from simclr.train.loop import Trainer
from simclr.train.pretrain import PretrainResult, pretrain
from simclr.train.run import fit_run
from simclr.train.step import TrainStep

__all__ = ["Callback", "PretrainResult", "StepEvent", "TrainStep", "Trainer", "distill", "finetune", "fit_run",
           "pretrain"]
