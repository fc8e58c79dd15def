"""retain_freed_memory: a freed large buffer is reused without page faults (Linux/glibc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from simclr.errors import SimCLRError

SCRIPT = """
import resource, sys, torch
from simclr.runtime import retain_freed_memory
if sys.argv[1] == "on":
    assert retain_freed_memory()
n = 64 * 2**20 // 4  # a 64 MiB buffer, above glibc's default mmap threshold
faults = []
for _ in range(6):  # allocate, fill and free it again and again, as a training loop does
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(n)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del x
print(min(faults[2:]))  # steady state (the first reuses can miss by the allocator's alignment padding)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_freed_buffers_are_reused_without_page_faults() -> None:
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    pages = 64 * 2**20 // 4096
    assert faults("off") > pages // 2  # glibc's default: the block went back to the kernel
    assert faults("on") < pages // 20  # retained: the second buffer reuses the first one's pages


def test_precision_auto_reads_the_cpu_flags(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from simclr.runtime import choose_precision

    cpu = torch.device("cpu")

    def never() -> float:
        raise AssertionError("measured where the flags decide")

    assert choose_precision(cpu, set(), never)[0] == "fp32"
    choice, why = choose_precision(cpu, {"avx2", "fma", "avx512f"}, never)
    assert choice == "fp32" and "no native bf16" in why and "13x" in why
    assert choose_precision(cpu, {"avx512_bf16", "amx_bf16", "amx_tile"}, never) == ("bf16", "the CPU has AMX-BF16")
    # AVX512-BF16 alone: bf16 only where a bf16 step measures faster (it is slower on some such CPUs)
    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path / "slow"))
    choice, why = choose_precision(cpu, {"avx512_bf16"}, lambda: 0.7)
    assert choice == "fp32" and "0.70x" in why
    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path / "fast"))
    choice, why = choose_precision(cpu, {"avx512_bf16"}, lambda: 1.6)
    assert choice == "bf16" and "1.60x" in why


def test_the_timed_choice_is_made_once_per_machine_and_torch_version(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Every command on one machine agrees: the AVX512-BF16 timing runs once, later commands read its
    result (and say so); another torch version, or another CPU model, times again; a cache that cannot
    be written is no error."""
    import json

    import simclr.runtime as runtime

    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine (the test suite is not)
    cpu, flags = torch.device("cpu"), {"avx512_bf16"}
    calls: list[float] = []

    def timed(ratio: float):  # noqa: ANN202
        def speedup() -> float:
            calls.append(ratio)
            return ratio
        return speedup

    assert runtime.choose_precision(cpu, flags, timed(1.5))[0] == "bf16"
    choice, why = runtime.choose_precision(cpu, flags, timed(0.5))  # a loaded machine would time fp32 now
    assert choice == "bf16" and "cached on" in why and "precision.json" in why and calls == [1.5]
    table = json.loads((tmp_path / "cache" / "precision.json").read_text())
    (key,) = table
    assert torch.__version__ in key and runtime.cpu_model() in key and table[key]["precision"] == "bf16"
    # the key a checkpoint keeps beside its precision, spelt as caches written before it was shared still are
    old_spelling = f"cpu | {runtime.cpu_model()} | avx512_bf16 | torch {torch.__version__}"
    assert key == runtime.machine_key(cpu, flags) == old_spelling
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert runtime.choose_precision(cpu, flags, timed(0.5))[0] == "fp32" and calls == [1.5, 0.5]
    monkeypatch.setattr(runtime, "cpu_model", lambda: "Another CPU")
    assert runtime.choose_precision(cpu, flags, timed(1.3))[0] == "bf16" and calls == [1.5, 0.5, 1.3]
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path / "file" / "cache"))  # cannot be made
    assert runtime.choose_precision(cpu, flags, timed(1.2))[0] == "bf16"
    assert runtime.choose_precision(cpu, flags, timed(0.9))[0] == "fp32"  # timed again: nothing was kept


def test_a_timing_under_load_is_not_kept(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Both cores busy: the timed choice holds for this command only, and says so; the next idle one times
    again and keeps its result."""
    import simclr.runtime as runtime

    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.0, 1.0))
    cpu, flags = torch.device("cpu"), {"avx512_bf16"}
    choice, why = runtime.choose_precision(cpu, flags, lambda: 0.7)
    assert choice == "fp32" and "not cached: the machine was busy (load 1.9 on 2 cores)" in why
    assert not (tmp_path / "cache" / "precision.json").exists()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.5, 0.5))
    assert runtime.choose_precision(cpu, flags, lambda: 1.5)[0] == "bf16"
    assert "cached on" in runtime.choose_precision(cpu, flags, lambda: 0.7)[1]


# compute capability -> what auto must run: bf16 from Ampere on, fp16 (with a grad scaler) on Volta / Turing,
# fp32 on older cards; current torch says bf16 is "supported" on all of them, so that is no guide
CARDS = {
    "NVIDIA H200": ((9, 0), "bf16"), "NVIDIA H100 80GB HBM3": ((9, 0), "bf16"),
    "NVIDIA A100-SXM4-80GB": ((8, 0), "bf16"),
    "NVIDIA GeForce RTX 3090": ((8, 6), "bf16"), "NVIDIA L4": ((8, 9), "bf16"), "Tesla T4": ((7, 5), "fp16"),
    "Tesla V100-SXM2-16GB": ((7, 0), "fp16"), "Tesla P100-PCIE-16GB": ((6, 0), "fp32"), "Tesla K80": ((3, 7), "fp32"),
}


def fake_cards(monkeypatch, names: list[str]) -> list[torch.device]:  # noqa: ANN001
    """GPUs 0, 1, ... are the cards ``names``; the current device is always GPU 0 (a query that reads the
    current device instead of the one it was given answers for the wrong card)."""
    def index(device) -> int:  # noqa: ANN001
        d = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
        return d.index if d.index is not None else torch.cuda.current_device()

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what current torch says
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: names[index(device)])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: CARDS[names[index(device)]][0])
    return [torch.device("cuda", i) for i in range(len(names))]


def test_precision_auto_on_gpus_follows_the_compute_capability(monkeypatch) -> None:  # noqa: ANN001
    from simclr.runtime import check_precision, choose_precision

    names = list(CARDS)
    for device, name in zip(fake_cards(monkeypatch, names), names, strict=True):
        choice, why = choose_precision(device)
        assert choice == CARDS[name][1], (name, choice)
        major, minor = CARDS[name][0]
        assert name in why and f"compute capability {major}.{minor}" in why
        if choice != "bf16":  # bf16 asked for by name is refused where there is no fast bf16, with auto's choice
            with pytest.raises(SimCLRError, match=rf"{name} \(compute capability {major}.{minor}\) has no fast bf16.*"
                                                 rf"--precision {choice} \(what auto picks here\)"):
                check_precision("bf16", device)
        else:
            check_precision("bf16", device)
        check_precision("fp16", device)
        check_precision("fp32", device)


def test_the_timed_step_takes_the_fastest_of_each() -> None:
    """Load on the cores only adds time: a burst that slows some bf16 repeats (or fp32 ones) must not
    move the ratio, which is fp32's fastest over bf16's fastest."""
    from simclr.runtime import measured_bf16_speedup, speedup_of

    assert speedup_of([2.0, 2.1, 9.0], [1.0, 6.0, 5.0]) == 2.0
    assert speedup_of([1.0, 8.0, 8.0], [2.0, 2.0, 2.5]) == 0.5
    ratio = measured_bf16_speedup(repeats=2)  # the real step runs and gives a positive, finite ratio
    assert 0 < ratio < float("inf")


def test_precision_auto_is_the_default_and_said_at_start(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """config.yaml keeps what was asked (auto); the choice is in the log and in every metrics record."""
    import json

    import yaml

    from simclr.cli.main import main

    tiny = ["--limit", "32", "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "16",
            "--max-steps", "1", "--no-online-probe"]
    for flags, want in (("avx2 fma", "fp32"), ("avx512_bf16 amx_bf16", "bf16")):
        monkeypatch.setenv("SIMCLR_CPU_FLAGS", flags)  # a faked CPU
        out = tmp_path / want
        assert main(["pretrain", "--out", str(out), *tiny]) == 0
        err = capsys.readouterr().err
        assert f"precision auto: {want} (" in err and f"{want} (auto) on cpu" in err  # the choice, and the banner
        assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == "auto"
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert rows and all(r["precision"] == want for r in rows)
    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx2")
    assert main(["linear-eval", "--run", str(tmp_path / "fp32"), "--limit", "32"]) == 0
    assert "precision auto: fp32 (the CPU has no native bf16" in capsys.readouterr().err


def test_a_run_resumed_on_another_machine_decides_its_precision_there(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """Started where auto picks bf16 (AMX), resumed on a CPU without native bf16: the resumed steps run
    fp32 (not bf16 emulated at about 13x the cost), and the log and records say which steps ran what."""
    import yaml
    from helpers import records, tiny_config

    from simclr.train.pretrain import pretrain

    run = tmp_path / "run"
    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx512_bf16 amx_bf16")  # the first machine
    pretrain(tiny_config(**{"train.precision": "auto", "train.max_steps": 2}), run)
    assert "precision auto: bf16 (the CPU has AMX-BF16)" in capsys.readouterr().err
    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx2 fma")  # the second
    result = pretrain(tiny_config(**{"train.precision": "auto"}), run, resume=True)
    assert result.step == 6
    err = capsys.readouterr().err
    assert "precision auto: fp32 (the CPU has no native bf16" in err and "fp32 (auto) on cpu" in err
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == "auto"
    assert [(r["step"], r["precision"]) for r in records(run)] == [(1, "bf16"), (2, "bf16"), (3, "fp32"),
                                                                   (4, "fp32"), (5, "fp32"), (6, "fp32")]


def test_a_run_resumed_on_the_same_machine_keeps_its_precision(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """auto's choice on an AVX512-BF16 CPU is a timing, not cached when the machine is busy: started in bf16,
    a resume whose timing now says fp32 must still run bf16 (its steps as the first ones), and say why."""
    from helpers import records, tiny_config

    import simclr.runtime as runtime
    from simclr.train.pretrain import pretrain

    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx512_bf16")
    monkeypatch.setattr(runtime, "busy", lambda: 4.0)  # every timing under load: none is cached
    timings = iter([1.6, 0.7, 0.7])  # the start measures bf16 faster, the resumes slower
    monkeypatch.setattr(runtime, "measured_bf16_speedup", lambda: next(timings))
    run = tmp_path / "run"
    pretrain(tiny_config(**{"train.precision": "auto", "train.max_steps": 2}), run)
    assert "precision auto: bf16 (the CPU has AVX512-BF16 and a bf16 step measured 1.60x" in capsys.readouterr().err
    result = pretrain(tiny_config(**{"train.precision": "auto", "train.max_steps": 4}), run, resume=True)
    assert result.step == 4
    err = capsys.readouterr().err
    assert "precision auto: bf16 (the run's choice when it started, on this machine: kept" in err
    assert "bf16 (auto) on cpu" in err
    assert [r["precision"] for r in records(run)] == ["bf16"] * 4
    # a fresh run in the same state times again and gets the slower verdict: the kept choice was the checkpoint's
    pretrain(tiny_config(**{"train.precision": "auto", "train.max_steps": 1}), tmp_path / "fresh")
    err = capsys.readouterr().err
    assert "precision auto: fp32 (the CPU has AVX512-BF16 but a bf16 step measured only 0.70x" in err
    # the same checkpoint on a machine without native bf16 decides there (the other test: it runs fp32)
    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx2")
    pretrain(tiny_config(**{"train.precision": "auto", "train.max_steps": 5}), run, resume=True)
    assert "precision auto: fp32 (the CPU has no native bf16" in capsys.readouterr().err
    assert [r["precision"] for r in records(run)][-1] == "fp32"
