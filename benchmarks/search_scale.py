"""`simclr search` at scale: 1,000,000 synthetic vectors of dimension 512.

The gallery is a mixture of 1,000 Gaussian clusters on the unit sphere (embeddings of real images
cluster by content; uniform random vectors are the worst case for any index and unlike them), and
the queries are held-out draws from the same mixture. Reports the build time of the approximate
index (FAISS IVF-Flat, as ``Searcher(method="approx")`` builds it at this size), the time per query
of the approximate and of the exact (chunked) search, and recall@10 of approximate vs exact.

usage: python benchmarks/search_scale.py [--n 1000000] [--dim 512] [--queries 200] [--nprobe 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from simclr.use.embeddings import Embeddings
from simclr.use.search import Searcher


def mixture(n: int, dim: int, centres: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = centres[rng.integers(0, len(centres), m)]
        out[start : start + m] = c + spread * rng.standard_normal((m, dim), dtype=np.float32)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=0.04, help="per-dimension noise around each centre")
    p.add_argument("--nprobe", type=int, default=64)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    t0 = time.perf_counter()
    vectors = mixture(args.n, args.dim, centres, rng, args.spread)
    queries = mixture(args.queries, args.dim, centres, rng, args.spread)
    print(f"{args.n} x {args.dim} vectors generated in {time.perf_counter() - t0:.1f} s; "
          f"{torch.get_num_threads()} threads")
    gallery = Embeddings(vectors, [""] * args.n, np.full(args.n, -1))
    del vectors

    exact = Searcher(gallery, method="exact")
    t_exact = []
    exact_idx = []
    for q in queries[:20]:  # exact is slow per query: 20 of them
        t = time.perf_counter()
        exact_idx.append(exact.search(q[None], 10).indices[0])
        t_exact.append(time.perf_counter() - t)
    t = time.perf_counter()
    batch_exact = exact.search(queries, 10).indices
    t_batch_exact = time.perf_counter() - t

    t = time.perf_counter()
    approx = Searcher(gallery, method="approx", nprobe=args.nprobe)
    t_build = time.perf_counter() - t
    t_approx = []
    approx_idx = []
    for q in queries:
        t = time.perf_counter()
        approx_idx.append(approx.search(q[None], 10).indices[0])
        t_approx.append(time.perf_counter() - t)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx_idx, batch_exact, strict=True)])
    assert all((a == b).all() for a, b in zip(exact_idx, batch_exact[:20], strict=True))
    index = approx._index
    kind = (f"IVF-Flat, {index.nlist} lists, nprobe {index.nprobe}" if hasattr(index, "nlist")
            else type(index).__name__)
    print(f"approximate index ({kind}): built in {t_build:.1f} s")
    print("| search | ms per query (median) | recall@10 vs exact |")
    print("| --- | --- | --- |")
    print(f"| exact, one query at a time | {1e3 * statistics.median(t_exact):.1f} | 1.0 |")
    print(f"| exact, {args.queries} queries batched | {1e3 * t_batch_exact / args.queries:.1f} | 1.0 |")
    print(f"| approximate, one query at a time | {1e3 * statistics.median(t_approx):.2f} | {recall:.4f} |")


if __name__ == "__main__":
    main()
