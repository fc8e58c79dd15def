"""An offline HTML page of search results: each query beside its neighbours, as thumbnails with scores.

Images are inlined as small JPEG data URIs (thumbnails), so the page works from any directory,
offline, with no server. A gallery entry that is not a readable file (a dataset index such as
``fashion-mnist:test:17``) is drawn from ``thumb_for`` when given, else shown as its name.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from simclr.use.search import Hits

THUMB = 96


def thumbnail_uri(img: Image.Image, side: int = THUMB) -> str:
    img = img.convert("RGB")
    img.thumbnail((side, side), Image.BICUBIC)
    if max(img.size) < side // 2:  # tiny images (28 px): enlarge so they are visible
        scale = side // max(img.size)
        img = img.resize((img.size[0] * scale, img.size[1] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _image(path: str, thumb_for: Callable[[str], Image.Image | None] | None) -> Image.Image | None:
    if thumb_for is not None:
        img = thumb_for(path)
        if img is not None:
            return img
    p = Path(path)
    if p.is_file():
        try:
            from simclr.data.folder import load_rgb

            return load_rgb(str(p))
        except Exception:  # noqa: BLE001 - unreadable: the page shows the name instead
            return None
    return None


def _cell(path: str, caption: str, thumb_for: Callable[[str], Image.Image | None] | None, cls: str) -> str:
    img = _image(path, thumb_for)
    title = html.escape(path)
    if img is None:
        pic = f'<div class="missing">{html.escape(Path(path).name)}</div>'
    else:
        pic = f'<img src="{thumbnail_uri(img)}" alt="{title}" title="{title}">'
    return f'<figure class="{cls}">{pic}<figcaption>{html.escape(caption)}</figcaption></figure>'


def render(queries: Sequence[str], hits: Hits, thumb_for: Callable[[str], Image.Image | None] | None = None,
           title: str = "simclr search", classes: Sequence[str] = ()) -> str:
    """The page as a string (one row per query); a hit's label is shown by its class name where ``classes``
    names it."""
    rows = []
    for qi, q in enumerate(queries):
        cells = [_cell(q, "query", thumb_for, "query")]
        for j, (path, score) in enumerate(zip(hits.paths[qi], hits.scores[qi], strict=True)):
            label = int(hits.labels[qi][j])
            name = classes[label] if 0 <= label < len(classes) else str(label)
            cells.append(_cell(path, f"{score:.3f}" + (f" · {name}" if label >= 0 else ""), thumb_for, "hit"))
        rows.append(f'<section class="row"><h2>{html.escape(Path(q).name)}</h2>'
                    f'<div class="cells">{"".join(cells)}</div></section>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em; background: #fafafa; }}
h1 {{ font-size: 1.2em; }} h2 {{ font-size: 0.9em; margin: 0.2em 0; color: #444; }}
.row {{ margin-bottom: 1em; }} .cells {{ display: flex; flex-wrap: wrap; gap: 6px; }}
figure {{ margin: 0; text-align: center; font-size: 0.75em; }}
figure img {{ width: {THUMB}px; height: {THUMB}px; object-fit: contain; background: #fff; border: 1px solid #ddd; }}
figure.query img {{ border: 3px solid #1f6feb; }}
.missing {{ width: {THUMB}px; height: {THUMB}px; border: 1px dashed #aaa; overflow: hidden; font-size: 0.8em; }}
</style></head>
<body><h1>{html.escape(title)}: {len(queries)} queries, {hits.indices.shape[1] if len(queries) else 0} neighbours each
(cosine similarity)</h1>
{"".join(rows)}
<script>
// after load: how many thumbnails decoded (data-images-loaded="ok/total"), for checks and tests
window.addEventListener("load", () => {{
  const imgs = Array.from(document.images);
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = ok + "/" + imgs.length;
}});
</script>
</body></html>
"""
