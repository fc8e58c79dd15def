"""retain_freed_memory: a freed large buffer is reused without page faults (Linux/glibc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
