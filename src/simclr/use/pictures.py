"""Pictures of a run: augmentation previews, training curves, and a 2-D map of the embeddings.

``augmentation_grid`` needs only Pillow. ``plot_run`` and ``embedding_map`` need matplotlib, and
the map t-SNE from scikit-learn (or UMAP with umap-learn): ``pip install 'simclr[plots]'``.
Every PNG is written atomically (no partial file on failure).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.errors import SimCLRError
from simclr.io import atomic_write

CELL = 96


def _save_png(img_or_fig, out: Path) -> Path:  # noqa: ANN001
    if isinstance(img_or_fig, Image.Image):
        return atomic_write(out, lambda tmp: img_or_fig.save(tmp, format="PNG"))
    return atomic_write(out, lambda tmp: img_or_fig.savefig(tmp, format="png", dpi=100))


def to_pil(x: torch.Tensor, side: int = CELL) -> Image.Image:
    """A float (3, H, W) in [0, 1] or uint8 (C, H, W) image as an RGB PIL image of side ``side``."""
    if x.dtype != torch.uint8:
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    img = Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), mode="RGB")
    return img.resize((side, side), Image.NEAREST if img.size[0] < side // 2 else Image.BICUBIC)


def augmentation_grid(
    images: torch.Tensor, cfg: AugmentConfig, size: int, pairs: int = 2, seed: int = 0
) -> Image.Image:
    """One row per image: the original, then ``pairs`` pairs of SimCLR views (as the paper's Figure 4).

    ``images``: uint8 (N, C, H, W), all the same size (resize them first)."""
    if images.dim() != 4 or images.shape[0] == 0:
        raise SimCLRError("no images to preview")
    aug = SimCLRAugment(cfg, size)
    g = torch.Generator().manual_seed(seed)
    views = [aug(images, g) for _ in range(2 * pairs)]
    n = images.shape[0]
    cols = 1 + 2 * pairs
    gap, head = 4, 18
    grid = Image.new("RGB", (cols * CELL + (cols + 1) * gap + gap, head + n * (CELL + gap) + gap), "white")
    draw = ImageDraw.Draw(grid)
    titles = ["original"] + [f"pair {p + 1}, view {v + 1}" for p in range(pairs) for v in range(2)]
    for c, t in enumerate(titles):
        x0 = gap + c * (CELL + gap) + (gap if c > 0 and (c - 1) % 2 == 0 else 0)
        draw.text((x0 + 2, 3), t, fill=(60, 60, 60))
    for r in range(n):
        y0 = head + r * (CELL + gap)
        cells = [to_pil(images[r])] + [to_pil(v[r]) for v in views]
        for c, cell in enumerate(cells):
            x0 = gap + c * (CELL + gap) + (gap if c > 0 and (c - 1) % 2 == 0 else 0)
            grid.paste(cell, (x0, y0))
    return grid


def save_augmentation_grid(images: torch.Tensor, cfg: AugmentConfig, size: int, out: str | os.PathLike,
                           pairs: int = 2, seed: int = 0) -> Path:
    return _save_png(augmentation_grid(images, cfg, size, pairs, seed), Path(out))


def _pyplot():  # noqa: ANN202
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SimCLRError("plots need matplotlib: pip install 'simclr[plots]'") from e
    return plt


def plot_run(run: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """PNG curves of every metric in ``RUN/metrics.jsonl`` against the step, and of the linear-eval
    accuracies of ``linear-epochE.json`` files (``--save-every-epoch`` runs) against the epoch."""
    run, out_dir = Path(run), Path(out_dir)
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise SimCLRError(f"{run} has no metrics.jsonl: is it a simclr run directory?")
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        raise SimCLRError(f"{metrics} is empty: the run has not logged a step yet")
    plt = _pyplot()
    written = []
    steps = [r["step"] for r in rows]
    titles = {"loss": "NT-Xent loss", "lr": "learning rate", "images_per_s": "images/s",
              "pos_acc": "positive-pair accuracy", "align": "alignment (lower: views closer)",
              "uniform": "uniformity (lower: more spread)", "rank_h": "effective rank of h"}
    for key, title in titles.items():
        ys = [r.get(key) for r in rows]
        if all(y is None for y in ys):
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(steps, ys, lw=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        ax.set_title(f"{run.name}: {title}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save_png(fig, out_dir / f"{key}.png"))
        plt.close(fig)
    evals = sorted(run.glob("linear-epoch*.json"), key=lambda p: int(p.stem.removeprefix("linear-epoch")))
    if evals:
        epochs = [int(p.stem.removeprefix("linear-epoch")) for p in evals]
        top1 = [json.loads(p.read_text())["top1"] for p in evals]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(epochs, top1, marker="o")
        ax.set_xlabel("epoch")
        ax.set_ylabel("linear top-1")
        ax.set_title(f"{run.name}: linear evaluation")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save_png(fig, out_dir / "linear_top1.png"))
        plt.close(fig)
    return written


def project_2d(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of ``vectors``: UMAP when installed (``auto``), else t-SNE (scikit-learn)."""
    if method in ("auto", "umap"):
        try:
            import umap

            return umap.UMAP(random_state=seed).fit_transform(vectors), "UMAP"
        except ImportError:
            if method == "umap":
                raise SimCLRError("--method umap needs umap-learn: pip install umap-learn") from None
    try:
        from sklearn.manifold import TSNE
    except ImportError as e:
        raise SimCLRError("the map needs scikit-learn for t-SNE: pip install 'simclr[plots]'") from e
    perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors), "t-SNE"


def embedding_map(vectors: np.ndarray, labels: np.ndarray, classes: list[str], out: str | os.PathLike,
                  title: str = "", method: str = "auto", seed: int = 0) -> Path:
    """A scatter of the 2-D projection of ``vectors`` coloured by label, saved as PNG."""
    if len(vectors) < 5:
        raise SimCLRError(f"a map needs at least 5 images, got {len(vectors)}")
    plt = _pyplot()
    xy, name = project_2d(np.asarray(vectors, dtype=np.float32), method, seed)
    fig, ax = plt.subplots(figsize=(7, 6))
    labels = np.asarray(labels)
    if (labels >= 0).any():
        cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
        for c in np.unique(labels):
            m = labels == c
            name_c = classes[c] if 0 <= c < len(classes) else ("unlabelled" if c < 0 else str(c))
            ax.scatter(xy[m, 0], xy[m, 1], s=4, color=cmap(int(c) % cmap.N), label=name_c)
        ax.legend(markerscale=3, fontsize=7, loc="best")
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=4)
    ax.set_title(title or f"{name} of {len(vectors)} embeddings")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = _save_png(fig, Path(out))
    plt.close(fig)
    return path
