"""Shard files written by executor tasks, one per shard of objects, and their streaming merge into one product.

A per-object stage run through `specmorph.executor.map_shards` writes each shard's rows with
`ShardWriter` into a hidden directory beside its output (`shard_dir`), then `merge_shards` concatenates
the shards in order into the final HDF5 product, a block of rows at a time, and the directory is removed.
The merged file does not depend on how the objects were sharded: for the same rows it is byte-identical
whatever the shard size or executor.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file
from specmorph.io.hdf5 import ID_DATASET, _as_storable, compressed_layout

log = logging.getLogger(__name__)

LAYOUTS = ("product", "rows")
SHARED_FS_HINT = "with executor=dask every worker must see the same paths as this machine (a shared filesystem)"
_STR = h5py.string_dtype(encoding="utf-8")
_BLOCK_BYTES = 1 << 20  # shard chunks and merge read blocks: about this many bytes, at least one row
_MAX_CHUNK_ROWS = 4096


def shard_path(directory: str | Path, index: int) -> Path:
    """The file of shard `index` in a shard directory: `part-00000.h5`, ..."""
    return Path(directory) / f"part-{index:05d}.h5"


@contextmanager
def shard_dir(out_path: str | Path) -> Iterator[Path]:
    """A fresh, empty hidden directory `.<out name>.shards/` beside `out_path`, removed on exit (also on error).

    Args:
        out_path: The product the shards will be merged into.

    Yields:
        The directory, as an absolute path (a stale one left by a killed run is emptied first).
    """
    out_path = Path(os.path.abspath(out_path))  # absolute: tasks may run in another working directory
    directory = out_path.with_name(f".{out_path.name}.shards")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():
            log.warning("%s: could not remove the shard directory (a task still writing?)", directory)


class ShardWriter:
    """Appends per-object rows to one shard file: a resizable dataset per array name, plus `id_str`.

    Use as a context manager. Rows are buffered a chunk (about 1 MiB, at least one row) at a time and go
    to a temporary file (`io.atomic.atomic_file`), renamed to `path` only when the block exits without
    error. The writer never creates the directory, so a task still running after its run failed (and
    removed the shard directory) cannot leave files behind.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._atomic: AbstractContextManager[Path] | None = None
        self._file: h5py.File | None = None
        self._ids: list[str] = []
        self._pending: dict[str, list[np.ndarray]] = {}

    def __enter__(self) -> ShardWriter:
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path.parent}: shard directory not found; {SHARED_FS_HINT}")
        self._atomic = atomic_file(self.path)
        self._file = h5py.File(self._atomic.__enter__(), "w", track_order=True)
        return self

    def append(self, id_str: str, row: Mapping[str, np.ndarray]) -> None:
        """Adds one object: its identifier and one row (numbers, any shape) per dataset, the same names every time."""
        f, n = self._file, len(self._ids)
        if n and set(row) != set(self._pending):
            raise ValueError(f"{self.path}: row {n} has datasets {sorted(row)}, earlier rows {sorted(self._pending)}")
        for name, value in row.items():
            value = np.asarray(value)
            if name not in f:
                if value.dtype.kind not in "biuf":
                    raise TypeError(f"{self.path}: dataset {name!r}: dtype {value.dtype} (numbers expected)")
                per_chunk = max(1, min(_MAX_CHUNK_ROWS, _BLOCK_BYTES // max(value.nbytes, 1)))
                f.create_dataset(name, shape=(0, *value.shape), maxshape=(None, *value.shape), dtype=value.dtype,
                                 chunks=(per_chunk, *value.shape), compression="lzf")
                self._pending[name] = []
            self._pending[name].append(value)
            if len(self._pending[name]) == f[name].chunks[0]:
                self._flush(name)
        self._ids.append(str(id_str))

    def _flush(self, name: str) -> None:
        rows, ds = self._pending[name], self._file[name]
        if rows:
            ds.resize(len(ds) + len(rows), axis=0)
            ds[len(ds) - len(rows):] = np.stack(rows)  # (k, *row)
            rows.clear()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                for name in self._pending:
                    self._flush(name)
                self._file.create_dataset(ID_DATASET, data=np.array(self._ids, dtype=_STR))
            self._file.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)  # removes the temporary file
            raise
        self._atomic.__exit__(exc_type, exc, tb)  # on a clean exit renames the file into place


def shard_ids(path: str | Path) -> list[str]:
    """The `id_str` of one shard, in row order."""
    with _open_shard(path) as f:
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[ID_DATASET][()]]


@contextmanager
def _open_shard(path: str | Path) -> Iterator[h5py.File]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: shard file not found; {SHARED_FS_HINT}")
    with h5py.File(path, "r") as f:
        yield f


def _columns(shard_paths: Sequence[Path]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Row shape and dtype of every dataset, checked equal across the shards that have rows."""
    columns: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None
    for path in shard_paths:
        with _open_shard(path) as f:
            here = {n: (ds.shape[1:], ds.dtype) for n, ds in f.items() if n != ID_DATASET}
        if not here:
            continue
        if columns is None:
            columns = here
        elif here != columns:
            raise ValueError(f"{path}: datasets {here} differ from the first shard's {columns}")
    if columns is None:
        raise ValueError(f"no rows in any of the {len(shard_paths)} shard(s)")
    return columns


def _blocks(shard_paths: Sequence[Path], name: str, rows: int) -> Iterator[np.ndarray]:
    """Dataset `name` of the shards in order, re-cut into blocks of exactly `rows` rows (the last may be shorter)."""
    parts, have = [], 0
    for path in shard_paths:
        with _open_shard(path) as f:
            if name not in f:
                continue
            ds = f[name]
            for a in range(0, len(ds), ds.chunks[0]):
                block = ds[a:a + ds.chunks[0]]
                while len(block):
                    take = min(rows - have, len(block))
                    parts.append(block[:take])
                    have, block = have + take, block[take:]
                    if have == rows:
                        yield np.concatenate(parts)
                        parts, have = [], 0
    if parts:
        yield np.concatenate(parts)


def _write_whole(f: h5py.File, name: str, shard_paths: Sequence[Path], n: int, shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
    """As `write_product` stores an (n, *shape) array (`io.hdf5.compressed_layout`)."""
    row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    ds = f.create_dataset(name, shape=(n, *shape), dtype=dtype, track_times=False,
                          **compressed_layout((n, *shape), dtype.itemsize))
    rows = ds.chunks[0] if ds.chunks else max(1, _BLOCK_BYTES // max(row_bytes, 1))
    start = 0
    for block in _blocks(shard_paths, name, rows):  # whole chunks, each written once, in order
        ds[start:start + len(block)] = block
        start += len(block)


def _write_rows(f: h5py.File, name: str, shard_paths: Sequence[Path], shape: tuple[int, ...],
                dtype: np.dtype) -> h5py.Dataset:
    """A dataset grown a row at a time, one row per gzip chunk (`spectral.cubeprep.prepare_all`'s layout).

    Returns the dataset still open: as in the streaming writer, its last chunks stay in the chunk cache
    until the file is closed, which fixes where they land in the file.
    """
    ds = f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=(1, *shape),
                          compression="gzip", track_times=False)
    row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    n = 0
    for block in _blocks(shard_paths, name, max(1, _BLOCK_BYTES // max(row_bytes, 1))):
        for row in block:
            ds.resize(n + 1, axis=0)
            ds[n] = row
            n += 1
    return ds


def merge_shards(shard_paths: Sequence[str | Path], out_path: str | Path, attrs: Mapping[str, object], stage: str,
                 params_hash: str, layout: str = "product", arrays: Mapping[str, np.ndarray] | None = None) -> Path:
    """Concatenates shards row-wise, in order, into one HDF5 product, atomically (temp file, then rename).

    Memory holds one block of rows (about a chunk of the output, at least one row) at a time, never a
    whole dataset; only the identifiers are gathered.

    Args:
        shard_paths: Shard files from `ShardWriter`, in object order.
        out_path: Destination `.h5`; nothing is left there if the merge fails.
        attrs: File attributes (numbers, strings or lists of them), as for `write_product`.
        stage: The producing stage, stored as the `stage` attribute.
        params_hash: Hash of the stage's params, stored as an attribute.
        layout: 'product': `io.hdf5.write_product`'s layout (`id_str` first; each dataset gzip-compressed
            with h5py's chunk guess when over 1 MiB, else contiguous), so the file is byte-identical to
            write_product's for the same arrays. 'rows': each dataset chunked one row per chunk and gzip,
            grown a row at a time, `id_str` after the datasets (the prepared-cube layout).
        arrays: Small per-object datasets known to the caller (e.g. `io.catalogs.survey_dataset`), written
            whole after `id_str` and the shards' datasets; None or {} writes none.

    Returns:
        `out_path`.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}; expected one of {LAYOUTS}")
    shard_paths = [Path(p) for p in shard_paths]
    out_path = Path(out_path)
    ids = [i for path in shard_paths for i in shard_ids(path)]
    columns = _columns(shard_paths)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        if layout == "product":
            f.create_dataset(ID_DATASET, data=np.array(ids, dtype=_STR), track_times=False)
        still_open = []  # row datasets stay open until the file closes (see _write_rows)
        for name, (shape, dtype) in columns.items():
            if layout == "product":
                _write_whole(f, name, shard_paths, len(ids), shape, dtype)
            else:
                still_open.append(_write_rows(f, name, shard_paths, shape, dtype))
        if layout == "rows":
            f.create_dataset(ID_DATASET, data=np.array(ids, dtype=_STR), track_times=False)
        for name, value in (arrays or {}).items():
            if len(value) != len(ids):
                raise ValueError(f"{out_path}: dataset {name!r} has {len(value)} rows for {len(ids)} objects")
            f.create_dataset(name, data=_as_storable(name, value), track_times=False)
        for key, value in {**attrs, "stage": stage, "params_hash": params_hash}.items():
            f.attrs[key] = _as_storable(key, value)
    log.info("merged %d shard(s), %d objects -> %s", len(shard_paths), len(ids), out_path)
    return out_path
