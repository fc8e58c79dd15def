"""Pages the site makes at build time (mkdocs-gen-files): nothing here is written to the repository.

- ``index.md``, ``project/BENCHMARKS.md``, ``project/REPRODUCTION.md``: the root files as they are (their
  links are made site-relative by ``hooks.py``);
- ``reference/cli.md``: every command's ``--help``, from the parsers themselves;
- ``reference/api.md``: the Python API, from the docstrings (mkdocstrings);
- ``results.md``: every results JSON under ``benchmarks/results/``, rendered as tables;
- ``benchmarks/index.md``: the dated investigations, newest first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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


def results_page() -> str:
    """Every results JSON, rendered by the benchmarks' one reporter (benchmarks/report.py results)."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    head = ["# Results", "", "Every results file under `benchmarks/results/`, as the scripts wrote it (rendered when",
            "the site is built by `python benchmarks/report.py results`; the commands, machines and readings are",
            "in [BENCHMARKS.md](project/BENCHMARKS.md)).", ""]
    return "\n".join(head) + report.results_markdown(sorted((ROOT / "benchmarks" / "results").glob("*.json")))


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
