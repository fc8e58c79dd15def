"""The documentation site's link rewriting (docs/hooks.py): root files become pages of their own, files the
site does not hold become code, links to nothing stay for ``mkdocs build --strict`` to refuse (CI builds
the site with --strict)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
hooks = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(hooks)  # type: ignore[union-attr]


def test_links_of_the_readme_page() -> None:
    md = ("[guide](docs/guide/pretrain.md#your-data) [bench](BENCHMARKS.md#machines) "
          "[script](benchmarks/folder_startup.py) ![pic](docs/map.png) [web](https://x.org/a.md) [top](#two-commands)")
    out = hooks.rewrite(md, "index.md")
    assert "[guide](guide/pretrain.md#your-data)" in out
    assert "[bench](project/BENCHMARKS.md#machines)" in out
    assert "script (`benchmarks/folder_startup.py`)" in out and "](benchmarks/folder_startup.py)" not in out
    assert "![pic](map.png)" in out
    assert "[web](https://x.org/a.md)" in out and "[top](#two-commands)" in out


def test_links_of_a_guide_and_of_a_root_page() -> None:
    out = hooks.rewrite("[readme](../../README.md) [figs](../../BENCHMARKS.md) [all](../benchmarks/)",
                        "guide/index.md")
    assert out == "[readme](../index.md) [figs](../project/BENCHMARKS.md) [all](../benchmarks/index.md)"
    out = hooks.rewrite("[plot](docs/reproduce/temperature.png) [me](REPRODUCTION.md)", "project/BENCHMARKS.md")
    assert out == "[plot](../reproduce/temperature.png) [me](REPRODUCTION.md)"


def test_a_link_to_nothing_is_left_for_strict_to_refuse() -> None:
    assert hooks.rewrite("[gone](nope.md)", "guide/evaluate.md") == "[gone](nope.md)"
    assert hooks.rewrite("[gone](../../NOPE.md)", "guide/evaluate.md") == "[gone](../../NOPE.md)"
