"""Training: the loop and its callbacks, one optimiser step, the checkpoint, the run set-up, and
``pretrain``, the SimCLR pretraining run built from them."""

from simclr.train.callbacks import Callback, StepEvent
from simclr.train.loop import Trainer
from simclr.train.pretrain import PretrainResult, pretrain
from simclr.train.run import fit_run
from simclr.train.step import TrainStep

__all__ = ["Callback", "PretrainResult", "StepEvent", "TrainStep", "Trainer", "fit_run", "pretrain"]
