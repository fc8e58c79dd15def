"""retain_freed_memory: a freed large buffer is reused without page faults (Linux/glibc)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

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


def test_precision_auto_reads_the_cpu_flags() -> None:
    from simclr.runtime import choose_precision

    cpu = torch.device("cpu")

    def never() -> float:
        raise AssertionError("measured where the flags decide")

    assert choose_precision(cpu, set(), never)[0] == "fp32"
    choice, why = choose_precision(cpu, {"avx2", "fma", "avx512f"}, never)
    assert choice == "fp32" and "no native bf16" in why and "13x" in why
    assert choose_precision(cpu, {"avx512_bf16", "amx_bf16", "amx_tile"}, never) == ("bf16", "the CPU has AMX-BF16")
    # AVX512-BF16 alone: bf16 only where a bf16 step measures faster (it is slower on some such CPUs)
    choice, why = choose_precision(cpu, {"avx512_bf16"}, lambda: 0.7)
    assert choice == "fp32" and "0.70x" in why
    choice, why = choose_precision(cpu, {"avx512_bf16"}, lambda: 1.6)
    assert choice == "bf16" and "1.60x" in why


def test_the_timed_step_takes_the_fastest_of_each() -> None:
    """Load on the cores only adds time: a burst that slows some bf16 repeats (or fp32 ones) must not
    move the ratio, which is fp32's fastest over bf16's fastest."""
    from simclr.runtime import measured_bf16_speedup, speedup_of

    assert speedup_of([2.0, 2.1, 9.0], [1.0, 6.0, 5.0]) == 2.0
    assert speedup_of([1.0, 8.0, 8.0], [2.0, 2.0, 2.5]) == 0.5
    ratio = measured_bf16_speedup(repeats=2)  # the real step runs and gives a positive, finite ratio
    assert 0 < ratio < float("inf")


def test_precision_auto_is_the_default_and_said_at_start(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    import yaml

    from simclr.cli.main import main

    tiny = ["--limit", "32", "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "16",
            "--max-steps", "1", "--no-online-probe"]
    for flags, want in (("avx2 fma", "fp32"), ("avx512_bf16 amx_bf16", "bf16")):
        monkeypatch.setenv("SIMCLR_CPU_FLAGS", flags)  # a faked CPU
        out = tmp_path / want
        assert main(["pretrain", "--out", str(out), *tiny]) == 0
        assert f"precision auto: {want} (" in capsys.readouterr().err
        assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == want  # resumes alike
    monkeypatch.setenv("SIMCLR_CPU_FLAGS", "avx2")
    assert main(["linear-eval", "--run", str(tmp_path / "fp32"), "--limit", "32"]) == 0
    assert "precision auto: fp32 (the CPU has no native bf16" in capsys.readouterr().err
