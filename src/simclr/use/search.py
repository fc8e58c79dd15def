"""Nearest neighbours by cosine similarity over an embeddings file.

Exact search multiplies the L2-normalised queries by the gallery in chunks (bounded memory,
any size). For large galleries an approximate FAISS index over inner products of the normalised
vectors (``pip install 'simclr[faiss]'``) answers in milliseconds: an inverted file (IVF-Flat,
4 sqrt(N) lists, k-means on a sample, ``nprobe`` lists searched) from 100k vectors up, HNSW below.
It is chosen automatically above ``APPROX_ABOVE`` vectors when FAISS is installed, or by ``method=``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from simclr.errors import SimCLRError
from simclr.use.embeddings import Embeddings

APPROX_ABOVE = 200_000
METHODS = ("auto", "exact", "approx")


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Hits:
    """For each query: the gallery rows of its k neighbours, their scores, paths and labels."""

    indices: np.ndarray  # (Q, k) int64
    scores: np.ndarray  # (Q, k) float32 cosine similarities, best first
    paths: list[list[str]]
    labels: np.ndarray  # (Q, k) int64, -1 where unknown


class Searcher:
    """k-nearest-neighbour search by cosine similarity over a gallery of embeddings.

    Args:
        gallery: an ``Embeddings`` (or a path to an embeddings file).
        method: ``exact``, ``approx`` (FAISS HNSW) or ``auto`` (approx above ``APPROX_ABOVE``
            vectors when FAISS is installed).
        chunk: gallery rows per block of the exact search.
    """

    def __init__(self, gallery: Embeddings | str, method: str = "auto", chunk: int = 65536,
                 nprobe: int = 64, ef_search: int = 128, seed: int = 0, ivf_from: int = 100_000) -> None:
        if isinstance(gallery, str):
            gallery = Embeddings.load(gallery)
        if method not in METHODS:
            raise SimCLRError(f"--method {method!r} is not valid: choose one of {', '.join(METHODS)}")
        if len(gallery) == 0:
            raise SimCLRError("the index holds no embeddings")
        self.gallery = gallery
        self.chunk = chunk
        if method == "auto":
            method = "approx" if len(gallery) > APPROX_ABOVE and faiss_available() else "exact"
        if method == "approx" and not faiss_available():
            raise SimCLRError("approximate search needs FAISS: pip install 'simclr[faiss]' (or --method exact)")
        self.method = method
        self._vectors = torch.from_numpy(_normalise(gallery.vectors))
        self._index = None
        if method == "approx":
            self._index = _build_index(self._vectors.numpy(), nprobe, ef_search, seed, ivf_from)

    def check_dim(self, queries: np.ndarray | torch.Tensor) -> None:
        d = queries.shape[1]
        if d != self.gallery.dim:
            raise SimCLRError(
                f"the queries have dimension {d} but the index has {self.gallery.dim}: "
                "embed them with the model that built the index"
            )

    def search(self, queries: np.ndarray | torch.Tensor, k: int = 10) -> Hits:
        """The k most similar gallery vectors of each query (rows of ``queries``)."""
        q = np.asarray(queries.cpu() if isinstance(queries, torch.Tensor) else queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        self.check_dim(q)
        k = min(k, len(self.gallery))
        qn = _normalise(q)
        if self._index is not None:
            scores, idx = self._index.search(qn, k)
        else:
            scores, idx = self._exact(torch.from_numpy(qn), k)
        idx = idx.astype(np.int64)
        return Hits(idx, scores.astype(np.float32), [[self.gallery.paths[j] for j in row] for row in idx],
                    self.gallery.labels[idx])

    def _exact(self, q: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        best_s = torch.full((len(q), k), -float("inf"))
        best_i = torch.zeros((len(q), k), dtype=torch.long)
        for start in range(0, len(self._vectors), self.chunk):
            block = self._vectors[start : start + self.chunk]
            s = q @ block.T
            kk = min(k, block.shape[0])
            top_s, top_i = s.topk(kk, dim=1)
            cat_s = torch.cat([best_s, top_s], 1)
            cat_i = torch.cat([best_i, top_i + start], 1)
            best_s, order = cat_s.topk(k, dim=1)
            best_i = cat_i.gather(1, order)
        return best_s.numpy(), best_i.numpy()


def _build_index(x: np.ndarray, nprobe: int, ef_search: int, seed: int, ivf_from: int):  # noqa: ANN202
    import faiss

    n, d = x.shape
    if n < ivf_from:
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(x)
        index.hnsw.efSearch = ef_search
        return index
    nlist = int(4 * np.sqrt(n))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(n, size=min(n, 40 * nlist), replace=False)
    index.train(x[np.sort(sample)])
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    return index


def precision_at_k(hits: Hits, query_labels: np.ndarray) -> float:
    """Fraction of the k neighbours that share the query's label, averaged over the queries."""
    return float((hits.labels == np.asarray(query_labels)[:, None]).mean())
