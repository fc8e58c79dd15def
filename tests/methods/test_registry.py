"""A new pretraining method defined here, outside the package, trains through the real engine once
registered: its own model parts (an EMA teacher the optimiser must not touch), its step, its
after-optimiser-step hook, its banner line; checkpoints, resume, the encoder file and evaluation work
for it unchanged. And the registry's refusals."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import losses, tiny_config
from torch import nn

from simclr import PretrainMethod, StepOutput, StepTools, load_encoder, pretrain, register
from simclr.config import PretrainConfig
from simclr.errors import SimCLRError
from simclr.eval.protocol import evaluate_knn
from simclr.io import safe_load
from simclr.methods import METHODS, method_class
from simclr.models.heads import build_head


class EMAModel(nn.Module):
    """Online f, g and a predictor q; a frozen target copy of f and g (moved by the EMA, not the optimiser)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head, self.predictor = encoder, head, predictor
        self.target = nn.ModuleDict({"encoder": copy.deepcopy(encoder), "head": copy.deepcopy(head)})
        self.target.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h, self.predictor(self.head(h))

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        return self.target["head"](self.target["encoder"](x))


class EMAPairs(PretrainMethod):
    """BYOL's shape, small: the online prediction of one view regresses the target's projection of the other."""

    name = "ema-pairs-test"
    summary = "online predictor vs an EMA target (test)"
    hook_steps: list[int] = []  # noqa: RUF012 - the test reads what the engine called
    online_at_hook: list[torch.Tensor] = []  # noqa: RUF012 - the initial f, then f after every step
    models: list[EMAModel] = []  # noqa: RUF012

    def __init__(self, model: EMAModel, net: nn.Module, momentum: float) -> None:
        self.model, self.net, self.momentum = model, net, momentum

    @classmethod
    def validate(cls, cfg: PretrainConfig, labelled: bool) -> None:
        m = (cfg.model.method_options or {}).get("momentum", 0.99)
        if not 0 <= m < 1:
            raise SimCLRError(f"ema-pairs-test: momentum must be in [0, 1), got {m}")

    @classmethod
    def build_model(cls, cfg: PretrainConfig, encoder: nn.Module) -> nn.Module:
        head = build_head("mlp", encoder.feature_dim, 16, 2, True, False)
        return EMAModel(encoder, head, nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)))

    @classmethod
    def from_config(cls, model: nn.Module, cfg: PretrainConfig, tools: StepTools) -> EMAPairs:
        assert isinstance(model, EMAModel)
        cls.models.append(model)
        cls.online_at_hook.append(torch.cat([q.detach().flatten() for q in model.encoder.parameters()]).clone())
        return cls(model, tools.net, float((cfg.model.method_options or {}).get("momentum", 0.99)))

    @classmethod
    def describe(cls, cfg: PretrainConfig) -> str:
        return f"ema-pairs-test momentum {(cfg.model.method_options or {}).get('momentum', 0.99)}"

    def training_step(self, batch) -> StepOutput:  # noqa: ANN001
        x = torch.cat([batch.view1, batch.view2])
        h, p = self.net(x)
        t = self.model.teacher(x)
        p1, p2 = p.chunk(2)
        t1, t2 = t.chunk(2)
        loss = (4 - 2 * F.cosine_similarity(p1, t2).mean() - 2 * F.cosine_similarity(p2, t1).mean()) / 2
        return StepOutput(loss, features=h.detach())

    @torch.no_grad()
    def after_optimizer_step(self, step: int) -> None:
        type(self).hook_steps.append(step)
        online = [*self.model.encoder.parameters(), *self.model.head.parameters()]
        target = [*self.model.target["encoder"].parameters(), *self.model.target["head"].parameters()]
        torch._foreach_lerp_(target, online, 1 - self.momentum)
        type(self).online_at_hook.append(torch.cat([q.flatten() for q in self.model.encoder.parameters()]).clone())


@pytest.fixture
def ema_method(monkeypatch: pytest.MonkeyPatch) -> type[EMAPairs]:
    monkeypatch.setitem(METHODS, EMAPairs.name, EMAPairs)
    EMAPairs.hook_steps, EMAPairs.online_at_hook, EMAPairs.models = [], [], []
    return EMAPairs


def _cfg(**extra: object) -> PretrainConfig:
    return tiny_config(**{"model.method": EMAPairs.name, "model.method_options": {"momentum": 0.9},
                          "monitor.online_probe": True, **extra})


def test_a_method_defined_outside_the_package_trains_through_the_engine(tmp_path: Path, ema_method) -> None:  # noqa: ANN001
    log = io.StringIO()
    result = pretrain(_cfg(), tmp_path / "run", log=log)
    assert result.step == 6
    assert "ema-pairs-test momentum 0.9 |" in log.getvalue()  # the method names its objective in the banner
    # the hook ran once after every optimiser step, in order, with the online weights already stepped
    assert ema_method.hook_steps == list(range(6))
    seen = ema_method.online_at_hook  # f at the start, then at every hook
    # (step 0 has lr 0, the warm-up's start: from step 1 on, every hook sees weights the optimiser moved)
    assert len(seen) == 7 and all(not torch.equal(a, b) for a, b in zip(seen[1:], seen[2:], strict=False))
    # the target is the EMA of what the hooks saw and nothing else: m^6 f_0 + sum_k (1 - m) m^(6-k) f_k
    m, want = 0.9, seen[0].double()
    for f in seen[1:]:
        want = m * want + (1 - m) * f.double()
    target = torch.cat([q.flatten() for q in ema_method.models[0].target["encoder"].parameters()])
    torch.testing.assert_close(target.double(), want, rtol=1e-5, atol=1e-6)
    ckpt = safe_load(tmp_path / "run" / "checkpoint.pt")
    state = ckpt["model"]
    # the target is in the checkpoint, moved by the EMA only: not in the optimiser, unequal to the online net
    n_trainable = sum(1 for k in state if not k.startswith("target.") and state[k].is_floating_point()
                      and "running" not in k and "num_batches" not in k)
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == n_trainable
    key = next(k for k in state if k.startswith("encoder.") and k.endswith("weight") and state[k].ndim == 4)
    assert not torch.equal(state[key], state["target." + key])
    encoder = load_encoder(tmp_path / "run")  # encoder.pt: the online f, as for SimCLR
    torch.testing.assert_close(encoder.state_dict()[key.removeprefix("encoder.")], state[key])
    result = evaluate_knn(tmp_path / "run", k=5)
    assert 0 <= result["top1"] <= 1


def test_resume_is_exact_for_a_new_method(tmp_path: Path, ema_method) -> None:  # noqa: ANN001
    pretrain(_cfg(), tmp_path / "full")
    pretrain(_cfg(**{"train.max_steps": 4}), tmp_path / "part")
    pretrain(_cfg(), tmp_path / "part", resume=True)
    a, b = losses(tmp_path / "full"), losses(tmp_path / "part")
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 7))
    for (_, la), (_, lb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-4)


def test_a_method_checks_its_own_settings(tmp_path: Path, ema_method) -> None:  # noqa: ANN001
    with pytest.raises(SimCLRError, match="momentum must be in"):
        pretrain(_cfg(**{"model.method_options": {"momentum": 1.5}}), tmp_path / "run")


def test_the_registry_refuses_unknown_and_clashing_names() -> None:
    with pytest.raises(SimCLRError, match="unknown --method 'simclrr' \\(did you mean 'simclr'\\?\\); known: .*simclr"):
        method_class("simclrr")

    class Clash(PretrainMethod):
        name = "simclr"

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    assert METHODS["simclr"] is not Clash


def test_an_unknown_method_stops_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SimCLRError, match="unknown --method"):
        pretrain(tiny_config(**{"model.method": "nope"}), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
