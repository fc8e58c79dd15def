"""Pages the site makes at build time (mkdocs-gen-files): nothing here is written to the repository.

- ``index.md``, ``project/BENCHMARKS.md``, ``project/REPRODUCTION.md``: the root files as they are (their
  links are made site-relative by ``hooks.py``);
- ``reference/cli.md``: every command's ``--help``, from the parsers themselves;
- ``reference/api.md``: the Python API, from the docstrings (mkdocstrings);
- ``results.md``: every results JSON under ``benchmarks/results/``, rendered as tables;
- ``benchmarks/index.md``: the dated investigations, newest first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

for page, origin in {"index.md": "README.md", "project/BENCHMARKS.md": "BENCHMARKS.md",
                     "project/REPRODUCTION.md": "REPRODUCTION.md"}.items():
    with mkdocs_gen_files.open(page, "w") as f:
        f.write((ROOT / origin).read_text())


def cli_reference() -> str:
    from simclr.cli.main import build_parser

    parser, _ = build_parser()
    lines = ["# Command line", "", "Every command's `--help`, generated from the parsers when the site is built.", ""]
    lines += ["```", parser.format_help().rstrip(), "```", ""]
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # noqa: SLF001 - argparse's own tree
        lines += [f"## simclr {name}", "", "```", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


API = [
    ("The package", "simclr"),
    ("Configuration", "simclr.config.schema"),
    ("Training: the run builder", "simclr.train.engine"),
    ("Training: the run directory", "simclr.train.rundir"),
    ("Training: callbacks", "simclr.train.callbacks"),
    ("Methods", "simclr.methods.base"),
    ("The method registry", "simclr.methods.registry"),
    ("Losses", "simclr.losses.catalog"),
    ("Backbones", "simclr.models.backbones"),
    ("Data sources", "simclr.data.registry"),
    ("Folders", "simclr.data.folder"),
    ("Folder index", "simclr.data.index"),
    ("WebDataset shards", "simclr.data.shards"),
    ("Evaluation", "simclr.eval.protocol"),
    ("Embeddings", "simclr.use.embeddings"),
    ("Export", "simclr.use.export"),
]


def api_reference() -> str:
    lines = ["# Python API", "", "Generated from the docstrings (mkdocstrings) when the site is built.", ""]
    for title, module in API:
        lines += [f"## {title}", "", f"::: {module}", "    options:", "      show_root_heading: false",
                  "      heading_level: 3", ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value).replace("|", "\\|")


def results_page() -> str:
    lines = ["# Results", "", "Every results file under `benchmarks/results/`, as the scripts wrote it (rendered when",
             "the site is built; the commands, machines and readings are in [BENCHMARKS.md](project/BENCHMARKS.md)).",
             ""]
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text())
        lines += [f"## {path.stem}", ""]
        if isinstance(data, dict):
            facts = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
            lines += [f"- {k}: {_cell(v)}" for k, v in facts.items()] + [""]
            tables = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        else:
            tables = {"rows": data} if isinstance(data, list) else {}
        for name, rows in tables.items():
            columns = [c for c in rows[0] if not isinstance(rows[0][c], (dict, list))][:9]
            lines += [f"{name}:", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows[:60]]
            if len(rows) > 60:
                lines.append(f"| ... {len(rows) - 60} more rows |" + " |" * (len(columns) - 1))
            lines.append("")
    return "\n".join(lines)


def investigations() -> str:
    lines = ["# Investigations", "", "Dated write-ups, newest first (current figures: [BENCHMARKS.md]"
             "(../project/BENCHMARKS.md)).", ""]
    for path in sorted((ROOT / "docs" / "benchmarks").glob("*.md"), reverse=True):
        heads = (ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("# "))
        title = next(heads, path.stem)
        lines.append(f"- [{title}]({path.name})")
    return "\n".join(lines) + "\n"


for page, text in {"reference/cli.md": cli_reference(), "reference/api.md": api_reference(),
                   "results.md": results_page(), "benchmarks/index.md": investigations()}.items():
    with mkdocs_gen_files.open(page, "w") as f:
        f.write(text)
