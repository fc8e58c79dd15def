"""The tutorials' pages and the script that makes their outputs agree: every output a page shows is a
step of ``docs/tutorials/transcripts.sh``, shown with its command, and ``fill.py`` thins progress lines
without losing any other line."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"


def _fill():  # noqa: ANN202 - the module
    sys.path.insert(0, str(TUTORIALS))
    try:
        import fill
    finally:
        sys.path.remove(str(TUTORIALS))
    return fill


def test_every_output_shown_is_a_step_of_the_script_with_its_command() -> None:
    script = (TUTORIALS / "transcripts.sh").read_text()
    steps = dict(re.findall(r"^step ([\w.-]+) (.+)$", script, re.M))
    pages = sorted(TUTORIALS.glob("*.md"))
    shown = 0
    for page in pages:
        for name, block in re.findall(r"<!-- output: ([\w.-]+) -->\n```\n(.*?)```", page.read_text(), re.S):
            assert name in steps, f"{page.name}: {name} is not a step of transcripts.sh"
            first = block.splitlines()[0]
            command = steps[name].replace("$REPO/", "").replace('"', "").replace("'", "").rstrip(" \\").split()
            words = list(itertools.takewhile(lambda w: "$" not in w, command))  # up to a shell variable
            shown_words = first[2:].replace("'", "").split()
            assert first.startswith("$ ") and shown_words[: len(words)] == words, (page.name, name, first)
            shown += 1
    assert shown >= 15


def test_thin_keeps_every_line_but_the_middle_of_long_progress_runs() -> None:
    fill = _fill()
    progress = [f"step {i}/20 epoch 0.1 loss 1.0" for i in range(1, 21)]
    lines = ["$ simclr pretrain", *progress, "done: 20 steps", "step 1/2 x", "step 2/2 x", "end"]
    out = fill.thin(lines)
    k = fill.KEEP
    assert out == ["$ simclr pretrain", *progress[:k], "...", *progress[-k:], "done: 20 steps", "step 1/2 x",
                   "step 2/2 x", "end"]
