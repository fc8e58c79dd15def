"""The run's state: counters from a checkpoint, and the random-number state of the training device only."""

from __future__ import annotations

import pytest
import torch

from simclr import distributed
from simclr.train.state import TrainState, restore_rng, rng_state


def test_counters_come_back_from_a_checkpoint() -> None:
    state = TrainState.from_checkpoint({"step": 7, "epoch": 2, "batch_in_epoch": 1, "last_loss": 4.5,
                                        "train_seconds": 12.0})
    assert (state.step, state.epoch, state.batch_in_epoch, state.last_loss) == (7, 2, 1, 4.5)
    assert 12.0 <= state.train_seconds() < 13.0 and not state.interrupted


def test_the_cpu_generator_round_trips() -> None:
    saved = rng_state(torch.device("cpu"))
    assert saved["cuda"] is None
    a = torch.rand(3)
    restore_rng(saved, torch.device("cpu"))
    assert torch.equal(torch.rand(3), a)


class FakeCuda:
    def __init__(self) -> None:
        self.set: list[tuple[torch.Tensor, torch.device]] = []

    def set_rng_state(self, state: torch.Tensor, device: torch.device) -> None:
        self.set.append((state, device))


def test_cuda_state_is_the_training_devices_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved: one device's state. Restored there; an older checkpoint's list of every GPU's states gives
    the training device's entry, and one from a machine with fewer GPUs restores nothing (no crash)."""
    fake = FakeCuda()
    monkeypatch.setattr(torch.cuda, "set_rng_state", fake.set_rng_state)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: torch.tensor([device.index], dtype=torch.uint8))
    cpu = torch.get_rng_state()
    dev = torch.device("cuda", 1)
    saved = rng_state(dev)
    assert torch.equal(saved["cuda"], torch.tensor([1], dtype=torch.uint8))  # that device's, not a list
    restore_rng(saved, dev)
    restore_rng({"torch": cpu, "cuda": [torch.tensor([10]), torch.tensor([11]), torch.tensor([12])]}, dev)
    restore_rng({"torch": cpu, "cuda": [torch.tensor([10])]}, dev)  # saved where one GPU was visible
    assert [(int(s[0]), d) for s, d in fake.set] == [(1, dev), (11, dev)]


def test_a_rank_trains_on_its_own_gpu_and_more_ranks_than_gpus_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from simclr.errors import SimCLRError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    for r in range(4):
        ctx = distributed.DistContext(rank=4 + r, world_size=8, local_rank=r)  # the second machine of two
        assert distributed.rank_device("cuda", ctx) == distributed.rank_device("auto", ctx) == f"cuda:{r}"
        assert distributed.rank_device("cpu", ctx) == "cpu"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # 4 ranks, 2 GPUs: nccl would refuse the sharing
    with pytest.raises(SimCLRError, match="torchrun starts 4 ranks on this machine but 2 GPUs are visible"):
        distributed.rank_device("cuda", distributed.DistContext(rank=1, world_size=4, local_rank=1))
    assert distributed.rank_device("cuda:1", distributed.DistContext()) == "cuda:1"  # one process: as asked
