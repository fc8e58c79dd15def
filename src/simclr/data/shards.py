"""WebDataset tar shards as a dataset (``ShardImages``), and writing them from a folder (``write_shards``).

The layout is WebDataset's: a sample is the run of consecutive tar members sharing a key (a member's
name up to the first dot of its base name): ``key.jpg`` (or .jpeg, .png, .webp, .bmp, .tif, ...) the
image, ``key.cls`` its label (an integer as text) or ``key.json`` with ``"label"`` (and ``"class"``, its
name). ``--data-dir`` names the shards with WebDataset's brace pattern
(``shards/shard-{000000..000099}.tar``), a directory (every ``.tar`` in it) or one file.

The shards are read the way WebDataset's indexed reader (``wids``) reads them: their tar headers are
indexed once (every sample's image offset and size, its label; cached while the shards' sizes and
times are unchanged) and each image is read by one seek. So the loader's order (a pure function of the
seed and the epoch), its split across ranks and workers, and ``--resume`` at the exact sample are those
of every other dataset. Uncompressed tar only (a ``.tar.gz`` cannot be read by seeking). A truncated
shard keeps its complete samples and is named; a sample without an image is named (shard and key) and
skipped; a pattern that matches nothing is one line before any work.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from simclr import distributed
from simclr.data.folder import load_rgb
from simclr.data.index import IMAGE_EXTENSIONS, LazyStrings, gather_strings
from simclr.data.registry import DatasetDefaults, hold_out, register_source
from simclr.errors import SimCLRError
from simclr.runtime import cache_dir

INDEX_VERSION = 1
IMAGE_SUFFIXES = tuple(e.lstrip(".") for e in IMAGE_EXTENSIONS)


def expand_pattern(pattern: str) -> list[str]:
    """The shard paths of ``pattern``: WebDataset's braces (``{000..099}`` ranges keep their zero padding,
    ``{a,b}`` lists), a directory (its ``.tar`` files, sorted) or a file."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m:
        head, tail, body = pattern[: m.start()], pattern[m.end():], m.group(1)
        rng = re.fullmatch(r"(\d+)\.\.(\d+)", body)
        if rng:
            lo, hi = rng.group(1), rng.group(2)
            width = len(lo) if lo.startswith("0") else 0
            items = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
        else:
            items = body.split(",")
        return [p for item in items for p in expand_pattern(head + item + tail)]
    if os.path.isdir(pattern):
        return sorted(str(p) for p in Path(pattern).glob("*.tar"))
    return [pattern]


@dataclass
class ShardIndex:
    """Every sample of the shards: its shard (into ``shards``), its image's offset and size in that file, its
    label (-1: none) and key (``keys[key_offsets[i]:key_offsets[i + 1]]``, UTF-8)."""

    shards: list[str]
    shard: np.ndarray  # int32
    offset: np.ndarray  # int64
    size: np.ndarray  # int64
    labels: np.ndarray  # int64
    keys: np.ndarray  # uint8
    key_offsets: np.ndarray  # int64
    classes: list[str]

    def __len__(self) -> int:
        return len(self.shard)

    def key(self, i: int) -> str:
        return self.keys[self.key_offsets[i]:self.key_offsets[i + 1]].tobytes().decode("utf-8", "replace")

    def name(self, i: int) -> str:
        return f"{self.shards[int(self.shard[i])]}:{self.key(i)}"

    def subset(self, indices: Sequence[int] | np.ndarray) -> ShardIndex:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        keys, offsets = gather_strings(self.keys, self.key_offsets, idx)
        return ShardIndex(self.shards, self.shard[idx], self.offset[idx], self.size[idx], self.labels[idx],
                          keys, offsets, self.classes)


def _split_name(name: str) -> tuple[str, str]:
    """(key, extension) as WebDataset splits a member's name: the base name's first dot."""
    folder, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return os.path.join(folder, stem), ext.lower()


def _label(ext: str, data: bytes) -> tuple[int, str | None]:
    if ext == "cls":
        return int(data.decode().strip()), None
    obj = json.loads(data)
    value = obj.get("label", obj.get("cls")) if isinstance(obj, dict) else obj
    return int(value), (obj.get("class") if isinstance(obj, dict) else None)


def index_shard(path: str) -> tuple[list[tuple[str, int, int, int, str | None]], list[str]]:
    """(samples, problems) of one shard: each sample (key, image offset, image size, label, class name),
    in tar order; problems name what was skipped (a truncated shard, a sample without an image, a bad label)."""
    samples: list[tuple[str, int, int, int, str | None]] = []
    problems: list[str] = []
    try:
        file_size = os.path.getsize(path)
        tf = tarfile.open(path, "r:")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as e:
        return [], [f"{path}: not a readable uncompressed tar ({type(e).__name__}: {e})"]
    current: str | None = None
    parts: dict[str, tarfile.TarInfo] = {}

    def finish() -> None:
        if current is None:
            return
        image = next((parts[e] for e in IMAGE_SUFFIXES if e in parts), None)
        if image is None:
            problems.append(f"{path}:{current}: no image ({', '.join(sorted(parts)) or 'no members'})")
            return
        label, name = -1, None
        for ext in ("json", "cls"):  # the json may name the class; a cls, where present, is the label
            if ext in parts:
                try:
                    value, named = _label(ext, tf.extractfile(parts[ext]).read())  # type: ignore[union-attr]
                except (ValueError, TypeError, AttributeError, OSError) as e:
                    problems.append(f"{path}:{current}: unreadable {ext} label ({e}); kept unlabelled")
                    continue
                label, name = value, named or name
        samples.append((current, image.offset_data, image.size, label, name))

    with tf:
        try:
            for member in tf:
                if not member.isfile():
                    continue
                key, ext = _split_name(member.name)
                if key != current:
                    finish()
                    current, parts = key, {}
                if member.offset_data + member.size > file_size:  # this sample is cut: the ones before are kept
                    problems.append(f"{path}: truncated at {member.name}; its complete samples kept")
                    break
                parts[ext] = member
            else:
                finish()
        except (tarfile.TarError, OSError, EOFError) as e:
            problems.append(f"{path}: truncated or damaged after {len(samples)} samples ({type(e).__name__}: "
                            f"{e}); those kept")
    return samples, problems


def scan_shards(paths: Sequence[str]) -> ShardIndex:
    """The index of ``paths`` (in order), every problem named in one warning."""
    shard, offset, size, labels, keys = [], [], [], [], []
    names: dict[int, str] = {}
    problems: list[str] = []
    for s, path in enumerate(paths):
        samples, trouble = index_shard(path)
        problems += trouble
        for key, off, n, label, name in samples:
            shard.append(s)
            offset.append(off)
            size.append(n)
            labels.append(label)
            keys.append(key.encode("utf-8", "replace"))
            if name is not None and label >= 0:
                names.setdefault(label, name)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        warnings.warn(f"skipping in the shards: {shown}", stacklevel=3)
    top = max(labels, default=-1)
    classes = [names.get(i, str(i)) for i in range(top + 1)] if top >= 0 else []
    key_offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum([len(k) for k in keys], out=key_offsets[1:])
    return ShardIndex(list(paths), np.array(shard, dtype=np.int32), np.array(offset, dtype=np.int64),
                      np.array(size, dtype=np.int64), np.array(labels, dtype=np.int64),
                      np.frombuffer(b"".join(keys), dtype=np.uint8).copy(), key_offsets, classes)


def _signature(paths: Sequence[str]) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def shard_index(pattern: str) -> tuple[ShardIndex, str]:
    """The index of the shards of ``pattern`` (cached in ``cache_dir()/shards/`` while every shard's size and
    time are unchanged; under torchrun rank 0 builds it) and a line saying what it holds."""
    paths = expand_pattern(pattern)
    missing = [p for p in paths if not os.path.isfile(p)]
    if not paths or missing:
        what = "no shard matches" if not paths else f"no such shard {missing[0]}"
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SimCLRError(f"--data-dir {pattern}: {what}{more}; give shards as 'dir/shard-{{000000..000099}}.tar', "
                          "a directory of .tar files or one .tar")
    compressed = [p for p in paths if not p.endswith(".tar")]
    if compressed:
        raise SimCLRError(f"--data-dir {compressed[0]}: shards are read by seeking, so they must be uncompressed "
                          ".tar files")
    where = cache_dir() / "shards" / hashlib.sha1("\n".join(map(os.path.abspath, paths)).encode()).hexdigest()[:20]
    signature = _signature(paths)

    def load() -> ShardIndex | None:
        try:
            with np.load(where / "index.npz") as z:
                meta = json.loads(z["meta"].tobytes())
                if meta.get("version") != INDEX_VERSION or meta.get("signature") != signature:
                    return None
                return ShardIndex(list(paths), z["shard"], z["offset"], z["size"], z["labels"], z["keys"],
                                  z["key_offsets"], list(meta["classes"]))
        except (OSError, KeyError, ValueError):
            return None

    def build() -> tuple[str, ShardIndex | None]:
        if load() is not None:
            return "cache", None
        start = time.perf_counter()
        index = scan_shards(paths)
        seconds = f"{time.perf_counter() - start:.1f}"
        try:
            where.mkdir(parents=True, exist_ok=True)
            tmp = where / f".index.{os.getpid()}.npz"
            meta = {"version": INDEX_VERSION, "signature": signature, "classes": index.classes}
            with open(tmp, "wb") as f:
                np.savez(f, shard=index.shard, offset=index.offset, size=index.size, labels=index.labels,
                         keys=index.keys, key_offsets=index.key_offsets,
                         meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
            os.replace(tmp, where / "index.npz")
        except OSError as e:
            warnings.warn(f"the shards' index could not be cached in {where}: {e}", stacklevel=4)
            return seconds, index
        return seconds, None

    how, index = distributed.main_first(build)
    index = index or load() or scan_shards(paths)
    if len(index) == 0:
        raise SimCLRError(f"--data-dir {pattern}: the {len(paths)} shards hold no sample with an image")
    what = f"{len(index)} samples in {len(paths)} shards"
    if how == "cache":
        return index, f"shards {pattern}: {what}; index read from the cache (the shards are unchanged)"
    return index, f"shards {pattern}: {what}; indexed in {how} s"


class ShardImages:
    """The samples of WebDataset shards (an ``Images``): ``load(i) -> (PIL RGB image, label)``, one seek a
    sample; ``names`` are ``shard.tar:key``. A sample that fails to decode is named once in each process
    and replaced by the next good one (as a folder's)."""

    def __init__(self, pattern: str, limit: int | None = None, *, index: ShardIndex | None = None) -> None:
        self.index_line = ""
        if index is None:
            index, self.index_line = shard_index(pattern)
        if limit is not None and limit < len(index):
            index = index.subset(np.arange(limit))
        self.root = pattern
        self.index = index
        self.labels = torch.from_numpy(np.asarray(index.labels, dtype=np.int64))
        self.classes = list(index.classes)
        self._bad: set[int] = set()
        self._files: dict[int, object] = {}
        self._pid = -1

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:  # open files stay with the process that opened them
        return {**self.__dict__, "_files": {}, "_pid": -1}

    @property
    def names(self) -> LazyStrings:
        """What names each sample in listings and embeddings: ``shard.tar:key``."""
        return LazyStrings(len(self.index), self.index.name)

    def subset(self, indices: Sequence[int]) -> ShardImages:
        return ShardImages(self.root, index=self.index.subset(np.asarray(list(indices), dtype=np.int64)))

    def read(self, i: int) -> bytes:
        """The image bytes of sample ``i`` (one seek and one read in its shard)."""
        if self._pid != os.getpid():  # a forked loader worker: its own file handles
            self._files, self._pid = {}, os.getpid()
        s = int(self.index.shard[i])
        f = self._files.get(s)
        if f is None:
            f = self._files[s] = open(self.index.shards[s], "rb")  # noqa: SIM115 - kept open for the run
        f.seek(int(self.index.offset[i]))  # type: ignore[attr-defined]
        data = f.read(int(self.index.size[i]))  # type: ignore[attr-defined]
        if len(data) != int(self.index.size[i]):
            raise OSError(f"short read: {len(data)} of {int(self.index.size[i])} bytes")
        return data

    def decode(self, i: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None) -> Image.Image:
        return load_rgb(io.BytesIO(self.read(i)), plan)

    def load(self, index: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None
             ) -> tuple[Image.Image, int]:
        n = len(self)
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                return self.decode(i, plan), int(self.labels[i])
            except Exception as e:  # noqa: BLE001 - any decode failure: skip the sample, name it
                self._bad.add(i)
                warnings.warn(f"skipping {self.index.name(i)}: {type(e).__name__}: {e}", stacklevel=2)
        raise SimCLRError(f"none of the {n} samples of {self.root} could be decoded")


def write_shards(images: Iterable[tuple[str, int, str]], out: str | os.PathLike, per_shard: int = 1000,
                 progress: Callable[[int], None] | None = None) -> list[Path]:
    """Shards of ``images`` ((file path, label, class name) each; label -1: none) in ``out``:
    ``shard-000000.tar``, ... of ``per_shard`` samples; each sample ``key.<ext>`` (the file's own bytes) and,
    when labelled, ``key.cls`` and ``key.json`` (label, class, the source path)."""
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tf: tarfile.TarFile | None = None

    def add(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tf.addfile(info, io.BytesIO(data))  # type: ignore[union-attr]

    try:
        for i, (path, label, cls) in enumerate(images):
            if i % per_shard == 0:
                if tf is not None:
                    tf.close()
                written.append(out_p / f"shard-{len(written):06d}.tar")
                tf = tarfile.open(written[-1], "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
            key = f"{i:09d}"
            ext = Path(path).suffix.lower().lstrip(".") or "jpg"
            add(f"{key}.{ext}", Path(path).read_bytes())
            if label >= 0:
                add(f"{key}.cls", str(label).encode())
                add(f"{key}.json", json.dumps({"label": label, "class": cls, "path": path}).encode())
            if progress is not None:
                progress(i + 1)
    finally:
        if tf is not None:
            tf.close()
    return written


def iter_members(path: str) -> Iterator[str]:
    """The member names of one shard, in order (for inspection and tests)."""
    with tarfile.open(path, "r:") as tf:
        for m in tf:
            yield m.name


@register_source("webdataset", DatasetDefaults(224, 0.1, 1.0),
                 "WebDataset tar shards (--data-dir 'dir/shard-{000000..000099}.tar'; labels from key.cls / key.json)")
def load_shards(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None
                ) -> ShardImages:
    """``--dataset webdataset``: every sample of the shards, every 5th held out for evaluation (``hold_out``)."""
    if not data_dir:
        raise SimCLRError("--dataset webdataset needs --data-dir 'dir/shard-{000000..000099}.tar' (WebDataset shards)")
    return hold_out(ShardImages(data_dir), split, limit)  # type: ignore[return-value]


__all__ = [
    "ShardImages", "ShardIndex", "expand_pattern", "index_shard", "iter_members", "load_shards", "scan_shards",
    "shard_index", "write_shards",
]
