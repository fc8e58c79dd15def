"""Embeddings of images through a trained encoder, and the embeddings file.

``embed(encoder, images)`` returns the representation of every image as one tensor. An
embeddings file (``.npz``, or ``.parquet`` with pyarrow) holds the vectors with each image's path
(or dataset index), its label when known, and the model's fingerprint (architecture, feature
dimension, layer, and a hash of the weights), so that ``simclr search`` can refuse a query
embedded by a different model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simclr.errors import SimCLRError
from simclr.write import atomic_write

FORMAT = "simclr-embeddings-v1"


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


@torch.no_grad()
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
    """
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    if head is not None:
        head.eval()
    if isinstance(images, torch.Tensor):
        batches: Iterable = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    else:
        batches = images
    out = []
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = _as_batch(torch.as_tensor(x)).to(device)
            if image_size is not None and x.shape[-1] != image_size:
                x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True)
            h = encoder(x)
            if head is not None:
                h = head(h)
            out.append(h.float().cpu())
    finally:
        encoder.train(was_training)
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


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
    """Vectors (N, D) float32 with the path (or id) and label (-1 = unknown) of each."""

    vectors: np.ndarray
    paths: list[str]
    labels: np.ndarray
    model: dict[str, object] = field(default_factory=dict)

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
                labels=self.labels, model=json.dumps(self.model)))
        return atomic_write(p, self._save_parquet)

    def _save_parquet(self, tmp: str) -> None:
        pa, pq = _pyarrow()
        table = pa.table({
            "path": pa.array(self.paths, pa.string()),
            "label": pa.array(self.labels, pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(self.vectors.reshape(-1)), self.dim),
        })
        table = table.replace_schema_metadata({"format": FORMAT, "model": json.dumps(self.model)})
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
                           json.loads(meta.get("model", "{}")))
            with np.load(p, allow_pickle=False) as z:
                if "format" not in z or str(z["format"]) != FORMAT:
                    raise SimCLRError(f"{p} is not a simclr embeddings file")
                return cls(z["vectors"], [str(s) for s in z["paths"]], z["labels"], json.loads(str(z["model"])))
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
