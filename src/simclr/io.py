"""Files on disk: atomic writes and safe loads.

Every write goes to a temporary file beside the target, is flushed, then ``os.replace``'d over it: a
crash mid-write leaves the previous file intact, and no reader ever sees a partial file. Every load of
a PyTorch file uses ``torch.load(..., weights_only=True)``: a file crafted to run code when unpickled
is refused and runs nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from simclr.errors import SimCLRError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished temporary file over ``path`` with the permissions a plain ``open`` would
    give (``mkstemp`` creates files readable by their owner only)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path`` (same suffix), then rename it over
    ``path``; on any failure the temporary file is removed and ``path`` is left as it was."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=out.suffix or ".tmp")
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it: ``path`` is
    either the old file or the complete new one, never a partial one. A full disk or a read-only
    directory raises one SimCLRError that says the file on disk is unchanged."""
    path = Path(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except Exception as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        os_error = os_error_in(e)  # torch's zip writer may re-raise a disk error as RuntimeError
        if os_error is None:
            raise
        state = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise SimCLRError(
            f"cannot write {path}: {os_error.strerror or os_error}; {state}. Free space or fix the "
            "permissions (or choose another --out), then continue with --resume"
        ) from e
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def os_error_in(e: BaseException | None) -> OSError | None:
    """The OSError that ``e`` is or was raised while handling, if any."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def safe_load(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``; a clear error for unreadable or unsafe files."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise SimCLRError(f"{path} does not exist") from e
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SimCLRError(f"cannot load {path} safely (weights_only): {first}") from e
    if not isinstance(obj, dict):
        raise SimCLRError(f"{path} is not a simclr checkpoint or encoder file")
    return obj


__all__ = ["atomic_save", "atomic_write", "atomic_write_text", "os_error_in", "publish", "safe_load"]
