"""Puts the real output of ``transcripts.sh`` into the tutorial pages.

A page marks a command's output with ``<!-- output: NAME -->`` on the line before a fenced block; this
replaces the block's content with ``TRANSCRIPTS/NN-NAME.txt`` (the command and what it printed), with long
runs of progress lines thinned to their first and last few and the work directory's path left out.

usage: python docs/tutorials/fill.py /tmp/simclr-tutorials/transcripts
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PAGES = Path(__file__).resolve().parent
MARK = re.compile(r"<!-- output: ([\w.-]+) -->\n```\n.*?```", re.S)
PROGRESS = re.compile(r"^step \d+/\d+ ")
KEEP = 3  # progress lines kept at each end of a run of them


def thin(lines: list[str]) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for line in [*lines, ""]:
        if PROGRESS.match(line):
            run.append(line)
            continue
        out += run if len(run) <= 2 * KEEP + 1 else [*run[:KEEP], "...", *run[-KEEP:]]
        run = []
        out.append(line)
    return out[:-1]


def transcript(folder: Path, name: str, work: str) -> str:
    (path,) = folder.glob(f"[0-9][0-9]-{name}.txt")
    text = path.read_text().replace(work + "/", "").replace(str(PAGES.parents[1]) + "/", "")
    return "\n".join(thin(text.rstrip("\n").splitlines()))


def main() -> None:
    folder = Path(sys.argv[1])
    work = str(folder.resolve().parent)
    for page in sorted(PAGES.glob("*.md")):
        text = page.read_text()
        filled = MARK.sub(lambda m: f"<!-- output: {m[1]} -->\n```\n{transcript(folder, m[1], work)}\n```", text)
        if filled != text:
            page.write_text(filled)
            print(f"filled {page.name}")


if __name__ == "__main__":
    main()
