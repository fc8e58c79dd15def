"""A folder's index: one walk that opens no file, kept in the cache while the folder is unchanged.

``folder_index(root)`` lists the images under ``root`` with ``os.scandir`` (names, sizes and
modification times from one ``stat`` each; no image is opened), in a fixed order (each directory's
files by name, then its subdirectories by name: ``os.walk``'s top-down order with sorted names),
with labels from the first-level subfolders as torchvision's ImageFolder. The index is stored
compactly (every relative path in one UTF-8 byte array with offsets: about 60 bytes an image
instead of a Python string each, and one array that loader workers share instead of copying) in
``simclr.runtime.cache_dir()/folders/``, and reused while every directory's modification time is
what it was (adding, removing or renaming a file changes its directory's): a million files are read
back in about a second instead of walked again. Files that turn out not to decode are appended to
the index's ``bad`` list by whichever process meets them (loader workers included), named once, and
left out of the next run's index.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simclr import distributed
from simclr.errors import SimCLRError
from simclr.runtime import cache_dir

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
)
INDEX_VERSION = 1


def gather_strings(blob: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strings ``idx`` of a packed array (string i is ``blob[offsets[i]:offsets[i + 1]]``), packed again
    in that order: (blob, offsets), without a Python loop."""
    starts, lengths = offsets[idx], offsets[idx + 1] - offsets[idx]
    out = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    gather = np.repeat(starts - out[:-1], lengths) + np.arange(out[-1], dtype=np.int64)
    return blob[gather], out


@dataclass
class FolderIndex:
    """The images under ``root``: relative paths (``blob[offsets[i]:offsets[i + 1]]``, UTF-8), labels
    (-1: unlabelled), class names, file sizes and modification times (ns); ``dirs`` / ``dir_mtimes``:
    every directory walked (relative, ``.`` the root) and its modification time, the cache's check."""

    root: str
    blob: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len n + 1
    labels: np.ndarray  # int64
    classes: list[str]
    sizes: np.ndarray  # int64
    mtimes: np.ndarray  # int64 ns
    dirs: list[str]
    dir_mtimes: np.ndarray  # int64 ns

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def relative(self, i: int) -> str:
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8", "surrogateescape")

    def path(self, i: int) -> str:
        return os.path.join(self.root, self.relative(i))

    def subset(self, indices: Sequence[int] | np.ndarray) -> FolderIndex:
        """The entries at ``indices``, in that order (vectorised: a million entries in well under a second)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        blob, offsets = gather_strings(self.blob, self.offsets, idx)
        return FolderIndex(self.root, blob, offsets, self.labels[idx], list(self.classes),
                           self.sizes[idx], self.mtimes[idx], self.dirs, self.dir_mtimes)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.blob, self.offsets, self.labels, self.sizes, self.mtimes))


class LazyStrings(Sequence[str]):
    """A read-only sequence of ``n`` strings made one at a time by ``item(i)`` (no list of them held)."""

    def __init__(self, n: int, item: Callable[[int], str]) -> None:
        self.n, self.item = n, item

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - int or slice, as a list
        if isinstance(i, slice):
            return [self.item(k) for k in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.item(i % self.n)

    def __iter__(self) -> Iterator[str]:
        return (self.item(k) for k in range(self.n))


class PathList(LazyStrings):
    """The absolute paths of a ``FolderIndex``, made one at a time."""

    def __init__(self, index: FolderIndex) -> None:
        super().__init__(len(index), index.path)


def check_root(root: Path) -> None:
    """One line for a folder that cannot be a dataset: missing, not a directory, unreadable."""
    if not root.exists():
        raise SimCLRError(f"--data-dir {root} does not exist: point it at a folder of images")
    if not root.is_dir():
        raise SimCLRError(f"--data-dir {root} is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SimCLRError(f"--data-dir {root} is not readable: check its permissions")


def _walk(root: Path) -> tuple[list[bytes], list[int], list[int], list[str], list[int], list[str]]:
    """(relative paths, sizes, mtimes, dirs, dir mtimes, skipped) of the image files under ``root``."""
    rels: list[bytes] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    dirs: list[str] = []
    dir_mtimes: list[int] = []
    skipped: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        path, rel = stack.pop()
        try:
            st = os.stat(path)
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skipped.append(f"{path}: {e.strerror or e}")
            continue
        if (st.st_dev, st.st_ino) in seen:  # a directory loop through a link: not followed again
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.append(rel or ".")
        dir_mtimes.append(st.st_mtime_ns)
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=not e.is_symlink()):
                    subdirs.append(e)
                    continue
                if not e.name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                fst = e.stat()
            except OSError as err:  # a broken link, a link loop
                skipped.append(f"{e.path}: {err.strerror or err}")
                continue
            if fst.st_size == 0:
                skipped.append(f"{e.path}: empty file")
                continue
            rels.append(os.fsencode(os.path.join(rel, e.name) if rel else e.name))
            sizes.append(fst.st_size)
            mtimes.append(fst.st_mtime_ns)
        for e in reversed(subdirs):  # popped in name order
            stack.append((e.path, os.path.join(rel, e.name) if rel else e.name))
    return rels, sizes, mtimes, dirs, dir_mtimes, skipped


def scan(root: str | os.PathLike) -> FolderIndex:
    """Walk ``root`` once (no file opened): the index of its image files; empty and unreadable entries
    named in one warning."""
    root_p = Path(root)
    check_root(root_p)
    rels, sizes, mtimes, dirs, dir_mtimes, skipped = _walk(root_p)
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"skipping {len(skipped)} entries under {root}: {shown}", stacklevel=3)
    sep = os.sep.encode()
    tops = [r.split(sep, 1)[0] if sep in r else None for r in rels]
    if rels and all(t is not None for t in tops):
        classes = sorted({t.decode("utf-8", "surrogateescape") for t in tops if t is not None})
        number = {c.encode("utf-8", "surrogateescape"): i for i, c in enumerate(classes)}
        labels = np.array([number[t] for t in tops if t is not None], dtype=np.int64)
    else:
        classes, labels = [], np.full(len(rels), -1, dtype=np.int64)
    offsets = np.zeros(len(rels) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rels], out=offsets[1:])
    blob = np.frombuffer(b"".join(rels), dtype=np.uint8).copy()
    return FolderIndex(str(root), blob, offsets, labels, classes, np.array(sizes, dtype=np.int64),
                       np.array(mtimes, dtype=np.int64), dirs, np.array(dir_mtimes, dtype=np.int64))


def index_dir(root: str | os.PathLike) -> Path:
    """Where the index of ``root`` is kept: ``cache_dir()/folders/<hash of its absolute path>``."""
    key = hashlib.sha1(os.fsencode(os.path.abspath(root))).hexdigest()[:20]
    return cache_dir() / "folders" / key


def _save(index: FolderIndex, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    tmp = where / f".index.{os.getpid()}.npz"
    meta = {"version": INDEX_VERSION, "root": os.path.abspath(index.root), "classes": index.classes,
            "dirs": index.dirs, "made": time.time()}
    with open(tmp, "wb") as f:
        np.savez(f, blob=index.blob, offsets=index.offsets, labels=index.labels, sizes=index.sizes,
                 mtimes=index.mtimes, dir_mtimes=index.dir_mtimes,
                 meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    os.replace(tmp, where / "index.npz")


def _load(root: str | os.PathLike, where: Path) -> FolderIndex | None:
    """The cached index of ``root`` if it is still the folder's (every directory's mtime unchanged)."""
    try:
        with np.load(where / "index.npz") as z:
            meta = json.loads(z["meta"].tobytes())
            if meta.get("version") != INDEX_VERSION or meta.get("root") != os.path.abspath(root):
                return None
            dirs, dir_mtimes = meta["dirs"], z["dir_mtimes"]
            for rel, mtime in zip(dirs, dir_mtimes.tolist(), strict=True):
                if os.stat(os.path.join(root, rel)).st_mtime_ns != mtime:
                    return None
            return FolderIndex(str(root), z["blob"], z["offsets"], z["labels"], list(meta["classes"]), z["sizes"],
                               z["mtimes"], list(dirs), dir_mtimes)
    except (OSError, KeyError, ValueError):  # no cache, a directory gone, an unreadable or older file
        return None


def _bad_path(root: str | os.PathLike) -> Path:
    return index_dir(root) / "bad.txt"


def bad_files(root: str | os.PathLike) -> set[tuple[str, int, int]]:
    """(relative path, size, mtime ns) of the files under ``root`` found not to decode (``mark_bad``), by
    this run or an earlier one: a file replaced since (another size or time) is tried again."""
    try:
        text = _bad_path(root).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return set()
    out = set()
    for line in text.splitlines():
        rel, _, rest = line.rpartition("\t")
        rel, _, size = rel.rpartition("\t")
        if rel and size.lstrip("-").isdigit() and rest.lstrip("-").isdigit():
            out.add((rel, int(size), int(rest)))
    return out


def mark_bad(root: str | os.PathLike, relative: str) -> bool:
    """Remember that ``relative`` (under ``root``, as it is now: its size and time) does not decode; False
    if it was known already, so whoever calls it names the file only the first time, across processes
    and runs."""
    try:
        st = os.stat(os.path.join(root, relative))
        key = (relative, st.st_size, st.st_mtime_ns)
    except OSError:  # gone since the walk
        key = (relative, -1, -1)
    if key in bad_files(root):
        return False
    path = _bad_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(f"{key[0]}\t{key[1]}\t{key[2]}\n")  # one short append: whole lines from several workers
    except OSError:
        pass  # a read-only cache: the file is named, just not remembered
    return True


def _unchanged(root: str | os.PathLike, relative: str, size: int, mtime_ns: int) -> bool:
    """The file is as it was when found bad (rewritten in place, its directory's time does not move)."""
    try:
        st = os.stat(os.path.join(root, relative))
    except OSError:
        return False
    return st.st_size == size and st.st_mtime_ns == mtime_ns


def folder_index(root: str | os.PathLike, *, use_cache: bool = True) -> tuple[FolderIndex, str]:
    """The index of ``root`` without the files known not to decode, and a line saying where it came from
    (walked, or read from the cache). Under torchrun rank 0 walks and writes the cache; the others read it."""
    check_root(Path(root))
    where = index_dir(root)

    def build() -> tuple[str, FolderIndex | None]:
        """Rank 0: "cache", or the walk's seconds (and the index itself where it could not be cached)."""
        if use_cache and _load(root, where) is not None:
            return "cache", None
        start = time.perf_counter()
        walked = scan(root)
        seconds = f"{time.perf_counter() - start:.1f}"
        if not use_cache:
            return seconds, walked
        try:
            _save(walked, where)
        except OSError as e:
            warnings.warn(f"the index of {root} could not be cached in {where}: {e}", stacklevel=4)
            return seconds + " (not cached)", walked
        return seconds, None

    how, index = distributed.main_first(build)
    if index is None:
        index = _load(root, where)
    if index is None:  # the cache changed under us (another process re-walked): walk here
        index = scan(root)
    bad = {rel for rel, size, mtime in bad_files(root) if _unchanged(root, rel, size, mtime)}
    if bad:
        keep = [i for i in range(len(index)) if index.relative(i) not in bad]
        dropped = len(index) - len(keep)
        index = index.subset(keep)
    if len(index) == 0:
        raise SimCLRError(f"no readable images found under {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    what = f"{len(index)} images" + (f", {dropped} known not to decode left out ({_bad_path(root)})"
                                     if bad and dropped else "")
    if how == "cache":
        return index, f"folder {root}: {what}; index read from the cache (the folder is unchanged)"
    cached = use_cache and "not cached" not in how
    return index, f"folder {root}: {what}; indexed in {how.split()[0]} s" + (f", cached in {where}" if cached else "")


__all__ = [
    "FolderIndex", "IMAGE_EXTENSIONS", "LazyStrings", "PathList", "bad_files", "check_root", "folder_index",
    "gather_strings", "index_dir", "mark_bad", "scan",
]
