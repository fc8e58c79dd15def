"""Online monitors of a pretraining run: "is it learning?" answered in accuracy while it trains.

- ``OnlineProbe``: a linear classifier on stop-gradient h, trained beside the encoder with its own
  optimiser on every batch's views and labels (the official code's ``lineareval_while_pretraining``;
  PAPER.md: it ends near the offline linear evaluation). h is standardised by a BatchNorm without
  affine parameters (as ``linear-eval`` standardises the features), then a linear layer; SGD with
  Nesterov momentum 0.9, its learning rate following the run's warm-up + cosine. No gradient reaches
  the encoder. Logged on log steps: ``probe_loss``, ``probe_acc`` (on the batch's augmented views);
  at the last step, ``probe_test_top1``: its top-1 on the un-augmented test split, with the encoder in
  eval mode, as ``simclr linear-eval`` measures (``--limit N``: the first N/5 test images, as there).
- ``KNNMonitor``: every E epochs, the weighted kNN top-1 (``simclr.eval.knn``) of a fixed sample of
  test images against a fixed bank of train images, both encoded un-augmented: ``knn_top1``.

Both need labels (images without one, label -1, are left out of the probe's loss); under torchrun the
probe's gradients are averaged over the ranks, so every rank holds the same probe.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from simclr import distributed
from simclr.data.images import Images, has_labels, num_classes
from simclr.data.loaders import ViewBatch
from simclr.data.seeds import mix_seed
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.eval.features import extract_features
from simclr.eval.knn import knn_eval
from simclr.eval.linear import topk_accuracy
from simclr.methods.base import StepOutput
from simclr.train.callbacks import Callback, LoopView, StepEvent

if TYPE_CHECKING:
    from simclr.train.setup import Training


def _eval_split(training: Training, split: str, limit: int | None) -> Images:
    d = training.cfg.data
    return load_images(d.dataset, split, d.data_dir, limit, training.cfg.train.seed, d.image_size)


class OnlineProbe(Callback):
    """The online linear probe (module docstring)."""

    name = "online_probe"

    def __init__(self, training: Training, lr: float = 0.1) -> None:
        self.training, self.lr = training, lr
        self.images = training.loader.images
        dim = training.model.encoder.feature_dim
        with torch.random.fork_rng(devices=[]):  # its initialisation leaves the run's random stream alone
            torch.manual_seed(mix_seed(training.cfg.train.seed, 5))
            self.probe = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes(self.images)))
        self.probe.to(training.device)
        self.dtype = self.probe[1].weight.dtype  # the default float dtype: h of bf16 runs is cast to it
        self.optimizer = torch.optim.SGD(self.probe.parameters(), lr=lr, momentum=0.9, nesterov=True)
        self.test: Images | None = None  # loaded when the run starts

    def on_fit_start(self, trainer: LoopView) -> None:
        d = self.training.cfg.data
        limit = None if d.limit is None else max(1, d.limit // 5)
        try:
            self.test = _eval_split(self.training, "test", limit)
        except SimCLRError as e:  # the run goes on; the probe reports its training accuracy only
            self.test = None
            warnings.warn(f"online probe: no test split to report on ({e}); probe_acc only", stacklevel=2)

    def on_train_step(self, trainer: LoopView, batch: ViewBatch, output: StepOutput) -> None:
        if output.features is None:
            return
        step = trainer.state.step - 1
        lr = self.lr * trainer.step_fn.lr_at(step) / max(self.training.peak_lr, 1e-12)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        y = torch.cat([batch.labels, batch.labels])  # features: view 1 of every image, then view 2
        self.probe.train()
        logits = self.probe(output.features.detach().to(self.dtype))
        valid = y >= 0
        count = valid.sum().clamp(min=1)
        loss = (F.cross_entropy(logits, y.clamp(min=0), reduction="none") * valid).sum() / count
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distributed.context().enabled:
            for p in self.probe.parameters():
                if p.grad is not None:
                    p.grad.copy_(distributed.all_reduce_mean(p.grad))
        self.optimizer.step()
        with torch.no_grad():
            acc = ((logits.argmax(1) == y) & valid).sum() / count
        output.logs["probe_loss"] = loss.detach()
        output.logs["probe_acc"] = acc

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None:
        if event.final and self.test is not None:
            top1 = self.test_top1()
            event.extras["probe_test_top1"] = top1
            print(f"online probe: top1 {top1:.4f} on the test split", file=trainer.log)

    @torch.no_grad()
    def test_top1(self) -> float:
        """The probe's top-1 on the un-augmented test split, the encoder in eval mode."""
        t, test = self.training, self.test
        assert t.cfg.data.image_size is not None and test is not None
        x, y = extract_features(t.model.encoder, test, t.cfg.data.image_size, t.device, t.cfg.train.batch_size,
                                t.cfg.data.workers, t.precision)
        self.probe.eval()
        logits = self.probe(x.to(t.device, self.dtype)).cpu()
        keep = y >= 0
        return topk_accuracy(logits[keep], y[keep], (1,))["top1"] if bool(keep.any()) else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"probe": self.probe.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.probe.load_state_dict(state["probe"])
        self.optimizer.load_state_dict(state["optimizer"])


def _sample(images: Images, n: int, seed: int) -> Images:
    """A fixed random sample of n labelled images."""
    labelled = torch.nonzero(torch.as_tensor(images.labels) >= 0).flatten()
    order = torch.randperm(len(labelled), generator=torch.Generator().manual_seed(seed))
    return images.subset(labelled[order[:n]].sort().values.tolist())


class KNNMonitor(Callback):
    """kNN top-1 of a held-out sample every ``every`` epochs (module docstring). ``bank``: train images
    in the bank (auto: a tenth of the train split, 1000 to 20000); ``queries``: test images (auto: a
    fifth of the bank, at least 200)."""

    def __init__(self, training: Training, every: int, k: int = 200, bank: int | None = None,
                 queries: int | None = None) -> None:
        self.training, self.every, self.k = training, every, k
        self.bank_size, self.query_size = bank, queries
        self.bank: Images | None = None
        self.queries: Images | None = None

    def on_fit_start(self, trainer: LoopView) -> None:
        seed, limit = self.training.cfg.train.seed, self.training.cfg.data.limit
        try:
            train = _eval_split(self.training, "train", limit)
            test = _eval_split(self.training, "test", None if limit is None else max(1, limit // 5))
        except SimCLRError as e:
            raise SimCLRError(f"--knn-every needs the dataset's labelled train and test splits: {e}") from e
        if not (has_labels(train) and has_labels(test)):
            raise SimCLRError("--knn-every needs labels: this dataset's images have none (use --knn-every 0)")
        n_bank = self.bank_size or min(max(len(train) // 10, 1000), 20000)
        n_query = self.query_size or max(200, n_bank // 5)
        self.bank = _sample(train, n_bank, mix_seed(seed, 6))
        self.queries = _sample(test, n_query, mix_seed(seed, 7))

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None:
        if event.end_of_epoch and (event.epoch + 1) % self.every == 0:
            event.extras["knn_top1"] = self.top1()

    @torch.no_grad()
    def top1(self) -> float:
        t = self.training
        assert self.bank is not None and self.queries is not None and t.cfg.data.image_size is not None
        args = (t.cfg.data.image_size, t.device, t.cfg.train.batch_size, t.cfg.data.workers, t.precision)
        xb, yb = extract_features(t.model.encoder, self.bank, *args)
        xq, yq = extract_features(t.model.encoder, self.queries, *args)
        return knn_eval(xb, yb, xq, yq, k=min(self.k, len(xb)))["top1"]


__all__ = ["KNNMonitor", "OnlineProbe"]
