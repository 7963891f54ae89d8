"""The one atomic-write helper: files and directories appear under their name only once complete.

A file is written to a hidden temporary name in the same directory (`.<name>.<pid>.tmp`) and moved
over its destination with `os.replace`; a directory is built as the sibling `.<name>.partial` and
renamed over its destination. On an error the temporary is removed and the destination keeps its old
content (or stays absent), so a failed stage leaves no half-written file behind. A process killed
outright (SIGKILL) cannot remove its temporary: the next write of the same file removes the temporaries
of writers that are no longer running (`remove_stale_temps`).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name `atomic_file` writes `path` under: `.<name>.<pid>.tmp` in the same directory."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def partial_dir(path: str | os.PathLike) -> Path:
    """The work directory `atomic_dir` builds `path` in: the sibling `.<name>.partial`."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def _running(pid: int) -> bool:
    """Whether process `pid` exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Removes the `atomic_file` temporaries of `path` left by writers that are no longer running.

    Temporaries of running processes (another writer of the same file) are kept.

    Returns:
        The removed paths.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on a clean exit it replaces `path`, on an error it is removed.

    The parent directory is not created; temporaries of `path` left by killed writers are removed
    (`remove_stale_temps`). Writers that infer a format from the file name (matplotlib,
    PIL, pandas compression) must be told the format, as the temporary name ends in `.tmp`.

    Args:
        path: The destination file.

    Yields:
        The temporary file's path (`.<name>.<pid>.tmp` beside `path`); the block must create it.
    """
    path = Path(path)
    tmp = temp_path(path)
    if path.parent.is_dir():
        remove_stale_temps(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty work directory; on a clean exit it replaces the directory `path`, on an error it is removed.

    The work directory (and any missing parent of `path`) is created; a stale one left by a killed run
    is emptied first. On success the old `path` is removed and the work directory renamed to it.

    Args:
        path: The destination directory.

    Yields:
        The work directory (`.<name>.partial` beside `path`).
    """
    path = Path(path)
    work = partial_dir(path)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    os.replace(work, path)


def _json_default(obj: object) -> object:
    """JSON form of numpy scalars and arrays and of paths; anything else is refused."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Writes `obj` as indented JSON (2 spaces, a final newline) through `atomic_file`.

    NaN and infinity are refused (they are not JSON, and DVC's metrics reader rejects them); numpy
    scalars and arrays and paths are converted.

    Args:
        obj: JSON-serialisable object.
        path: destination; parent directories are created.

    Returns:
        `path` as a Path.

    Raises:
        ValueError: `obj` holds NaN or infinity. TypeError: `obj` holds something JSON cannot store.
    """
    path = Path(path)
    text = json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
