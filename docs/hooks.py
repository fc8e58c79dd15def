"""mkdocs hook: the links of the repository's Markdown made right for the site.

The guides and the root files (README.md, BENCHMARKS.md, REPRODUCTION.md) link as they read on GitHub:
relative to where they sit in the repository. On the site the root files are pages of their own
(``index.md``, ``project/BENCHMARKS.md``, ``project/REPRODUCTION.md``, made by ``gen_pages.py``), so each
link is resolved from the page's place in the repository and written relative to its place on the site;
a link to a file the site does not hold (a script, a results JSON) becomes its path in code. Links that
still point nowhere are left for ``mkdocs build --strict`` to refuse.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# site page (relative to docs/) -> the repository file it is made from
ORIGIN = {"index.md": "README.md", "project/BENCHMARKS.md": "BENCHMARKS.md",
          "project/REPRODUCTION.md": "REPRODUCTION.md"}
PAGE_OF = {origin: page for page, origin in ORIGIN.items()}
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def site_target(origin: str, target: str) -> str | None:
    """The site path (relative to docs/) of ``target`` linked from the repository file ``origin``, or None
    where the site does not hold it."""
    path = posixpath.normpath(posixpath.join(posixpath.dirname(origin), target))
    if path in PAGE_OF:
        return PAGE_OF[path]
    if path.startswith("docs/") and (ROOT / path).exists():
        return path[len("docs/"):]
    if path.rstrip("/") == "docs":
        return "guide/index.md"
    return None


def rewrite(markdown: str, page: str) -> str:
    """``markdown`` of the site page ``page`` (relative to docs/) with its links made site-relative."""
    origin = ORIGIN.get(page, "docs/" + page)

    def fix(m: re.Match) -> str:
        bang, text, target = m.groups()
        if re.match(r"^[a-z]+:|^#|^/", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        found = site_target(origin, path)
        if found is None:
            shown = posixpath.normpath(posixpath.join(posixpath.dirname(origin), path))
            if not (ROOT / shown).exists():
                return m.group(0)  # a link to nothing: left for --strict to refuse
            return f"{text} (`{shown}`)" if text and not bang else f"`{shown}`"
        if (DOCS / found).is_dir():  # a folder of pages: its index (benchmarks/index.md is made by gen_pages)
            found = posixpath.join(found, "index.md")
        rel = posixpath.relpath(found, posixpath.dirname(page) or ".")
        return f"{bang}[{text}]({rel}{'#' + anchor if anchor else ''})"

    return LINK.sub(fix, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001, ARG001 - mkdocs' hook signature
    return rewrite(markdown, page.file.src_uri)
