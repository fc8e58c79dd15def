"""Embeddings of images through a trained encoder, and the embeddings file.

``embed(encoder, images)`` returns the representation of every image as one tensor;
``embed_images`` embeds a whole dataset or folder, skipping (and naming) files that cannot be
decoded. Both go through ``simclr.eval.features.encode``. An
embeddings file (``.npz``, or ``.parquet`` with pyarrow) holds the vectors with each image's path
(or dataset index), its label when known, and the model's fingerprint (architecture, feature
dimension, layer, and a hash of the weights), so that ``simclr search`` can refuse a query
embedded by a different model.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from simclr.data.folder import FolderImages
from simclr.data.images import ArrayImages, Images, center_resize, pil_to_uint8
from simclr.data.shards import ShardImages
from simclr.errors import SimCLRError
from simclr.eval.features import encode
from simclr.io import atomic_write

FORMAT = "simclr-embeddings-v1"


def embed(
    encoder: nn.Module,
    images: torch.Tensor | Iterable,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    head: nn.Module | None = None,
    image_size: int | None = None,
) -> torch.Tensor:
    """Embeddings (N, D) float32 on the CPU of ``images`` through the frozen ``encoder``.

    ``images``: a tensor (N, 3 or 1, H, W), float in [0, 1] or uint8, or an iterable of such
    batches or of ``(images, labels)`` pairs (a DataLoader). ``head``: also apply the projection
    head g (z instead of h). ``image_size``: resize inputs to this side first (bilinear, antialiased).
    (``simclr.eval.features.encode`` with the tensor cut into batches.)
    """
    if isinstance(images, torch.Tensor):
        images = images.unsqueeze(0) if images.dim() == 3 else images
        batches: Iterable = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    else:
        batches = images
    return encode(encoder, batches, device, head=head, image_size=image_size)


class _Files(Dataset):
    """The images of a decoded-on-demand source (a folder, shards), each or why it could not be read."""

    def __init__(self, images: FolderImages | ShardImages, size: int) -> None:
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str]:
        try:
            return pil_to_uint8(center_resize(self.images.decode(i), self.size)), i, ""
        except Exception as e:  # noqa: BLE001 - any decode failure: skip this file, name it
            return None, i, f"{type(e).__name__}: {e}"


def _collate(items: list) -> tuple[torch.Tensor, list[int], list[tuple[int, str]]]:
    good = [(x, i) for x, i, _ in items if x is not None]
    bad = [(i, why) for x, i, why in items if x is None]
    x = torch.stack([x for x, _ in good]) if good else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    return x, [i for _, i in good], bad


def embed_images(
    encoder: nn.Module,
    images: Images,
    size: int,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    head: nn.Module | None = None,
    progress: bool = True,
    precision: str = "fp32",
) -> tuple[torch.Tensor, list[int]]:
    """(embeddings (M, D), indices of the M images that could be read) of a dataset or folder at side
    ``size``, batched, with a progress bar; image files that cannot be decoded are skipped and named
    (never replaced by another image)."""
    bar = tqdm(total=len(images), unit="img", desc="embed", file=sys.stderr, disable=not progress or None)
    kept: list[int] = []

    def batches():  # noqa: ANN202
        if isinstance(images, ArrayImages):
            for start in range(0, len(images), batch_size):
                x = images.images[start : start + batch_size]
                kept.extend(range(start, start + len(x)))
                bar.update(len(x))
                yield x
            return
        assert isinstance(images, (FolderImages, ShardImages))
        loader = DataLoader(_Files(images, size), batch_size=batch_size, num_workers=workers, collate_fn=_collate)
        for x, idx, bad in loader:
            for i, why in bad:
                warnings.warn(f"skipping {images.names[i]}: {why}", stacklevel=3)
            bar.update(len(idx) + len(bad))
            if idx:
                kept.extend(idx)
                yield x

    try:
        vectors = encode(encoder, batches(), device, precision=precision, head=head, image_size=size)
    finally:
        bar.close()
    return vectors, kept


def fingerprint(encoder: nn.Module, layer: str = "h") -> dict[str, object]:
    """What identifies the model that made a set of embeddings."""
    digest = hashlib.sha256()
    for name, t in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {
        "arch": getattr(encoder, "arch", type(encoder).__name__),
        "width_multiplier": getattr(encoder, "width_multiplier", None),
        "layer": layer,
        "weights_sha256": digest.hexdigest()[:16],
    }


@dataclass
class Embeddings:
    """Vectors (N, D) float32 with the path (or id) and label (-1 = unknown) of each; ``classes`` names the
    labels (empty where the source has no names: files of older versions)."""

    vectors: np.ndarray
    paths: list[str]
    labels: np.ndarray
    model: dict[str, object] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.vectors.ndim != 2 or len(self.paths) != len(self.vectors) or len(self.labels) != len(self.vectors):
            raise SimCLRError("embeddings: vectors, paths and labels must have one row per image")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` or ``.parquet`` (by extension) atomically: no partial file on failure."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".npz", ".parquet"):
            raise SimCLRError(f"--out {p}: use a .npz or .parquet file name")
        if suffix == ".npz":
            return atomic_write(p, lambda tmp: np.savez(
                tmp, format=FORMAT, vectors=self.vectors, paths=np.asarray(self.paths, dtype=str),
                labels=self.labels, model=json.dumps(self.model), classes=np.asarray(self.classes, dtype=str)))
        return atomic_write(p, self._save_parquet)

    def _save_parquet(self, tmp: str) -> None:
        pa, pq = _pyarrow()
        table = pa.table({
            "path": pa.array(self.paths, pa.string()),
            "label": pa.array(self.labels, pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(self.vectors.reshape(-1)), self.dim),
        })
        table = table.replace_schema_metadata({"format": FORMAT, "model": json.dumps(self.model),
                                               "classes": json.dumps(self.classes)})
        pq.write_table(table, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Embeddings:
        p = Path(path)
        if not p.is_file():
            raise SimCLRError(f"{p} does not exist: make it with 'simclr embed'")
        try:
            if p.suffix.lower() == ".parquet":
                _, pq = _pyarrow()
                table = pq.read_table(p)
                meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
                if meta.get("format") != FORMAT:
                    raise SimCLRError(f"{p} is not a simclr embeddings file")
                vectors = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(len(table), -1)
                return cls(vectors, table.column("path").to_pylist(), np.asarray(table.column("label")),
                           json.loads(meta.get("model", "{}")), json.loads(meta.get("classes", "[]")))
            with np.load(p, allow_pickle=False) as z:
                if "format" not in z or str(z["format"]) != FORMAT:
                    raise SimCLRError(f"{p} is not a simclr embeddings file")
                classes = [str(c) for c in z["classes"]] if "classes" in z else []
                return cls(z["vectors"], [str(s) for s in z["paths"]], z["labels"], json.loads(str(z["model"])),
                           classes)
        except SimCLRError:
            raise
        except Exception as e:  # noqa: BLE001 - any unreadable file: one line
            raise SimCLRError(f"cannot read embeddings {p}: {type(e).__name__}: {e}") from e


def _pyarrow():  # noqa: ANN202
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise SimCLRError("writing .parquet needs pyarrow: pip install 'simclr[parquet]' (or use .npz)") from e
    return pa, pq
