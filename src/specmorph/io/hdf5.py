"""Self-describing HDF5 products: arrays as datasets, `id_str`, and attributes for units, labels, stage and params."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file

log = logging.getLogger(__name__)

ID_DATASET = "id_str"
_STR = h5py.string_dtype(encoding="utf-8")  # UTF-8, variable length
_COMPRESS_BYTES = 1 << 20  # datasets larger than this are gzip-compressed


def _json_default(obj: object) -> object:
    """JSON form of the non-JSON types found in params: numpy scalars/arrays, paths, tuples, dataclasses."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"params_hash: cannot encode {type(obj).__name__} as JSON")


def params_hash(obj: object) -> str:
    """The first 12 hex digits of the SHA-256 of `obj` as canonical JSON (sorted keys, no spaces).

    Args:
        obj: JSON-like parameters (dicts, lists, numbers, strings; numpy scalars, paths, dataclasses).

    Returns:
        12 lower-case hex characters.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def compressed_layout(shape: Sequence[int], itemsize: int) -> dict[str, object]:
    """`create_dataset` keywords for an (N, ...) per-object array: gzip in chunks of whole rows when over 1 MiB.

    Rows are what readers take (a batch of images, one cube), so a chunk holds about 1 MiB of whole
    rows (at least one) instead of h5py's guess, which tiles the image axes and makes reading every
    row decompress many small chunks. Smaller arrays are stored contiguous and uncompressed.

    Args:
        shape: The array's shape, objects first.
        itemsize: Bytes per element.

    Returns:
        {} or {"compression": "gzip", "chunks": (rows, *shape[1:])}.
    """
    shape = tuple(int(n) for n in shape)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    if not shape or shape[0] * row_bytes <= _COMPRESS_BYTES:
        return {}
    return {"compression": "gzip", "chunks": (max(1, min(shape[0], _COMPRESS_BYTES // max(row_bytes, 1))), *shape[1:])}


def _as_storable(name: str, value: object) -> object:
    """An attribute or dataset value h5py can store; strings become UTF-8 variable-length."""
    if isinstance(value, str | int | float | bool | np.generic):
        return value
    if isinstance(value, Mapping) or value is None:
        raise TypeError(f"attribute {name!r}: {type(value).__name__} not supported; store json.dumps(...) instead")
    arr = np.asarray(value)
    if arr.dtype.kind in "UO" or (arr.size == 0 and isinstance(value, list | tuple)):
        return np.array([str(v) for v in arr.ravel()], dtype=_STR).reshape(arr.shape)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name!r}: dtype {arr.dtype} not supported (numbers or strings expected)")
    return arr


def write_product(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    id_str: Sequence[str],
    attrs: Mapping[str, object],
    stage: str,
    params_hash: str,
) -> Path:
    """Writes an HDF5 product atomically, through `io.atomic.atomic_file`.

    Args:
        arrays: Datasets by name ('/' makes groups); per-object arrays have len(id_str) rows.
        id_str: Object identifiers, stored as the `id_str` dataset (may be empty for model files).
        attrs: File attributes (units, label names, ...): numbers, strings or lists of them.
        stage: The producing stage, stored as the `stage` attribute.
        params_hash: Hash of the stage's params (see `params_hash`), stored as an attribute.

    Returns:
        `path`.
    """
    path = Path(path)
    if ID_DATASET in arrays:
        raise ValueError(f"{path}: '{ID_DATASET}' is reserved; pass identifiers as id_str")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        f.create_dataset(ID_DATASET, data=np.array([str(s) for s in id_str], dtype=_STR), track_times=False)
        for name, value in arrays.items():
            data = _as_storable(name, value)
            big = isinstance(data, np.ndarray) and data.ndim > 0 and data.dtype != _STR
            layout = compressed_layout(data.shape, data.dtype.itemsize) if big else {}
            f.create_dataset(name, data=data, track_times=False, **layout)
        for key, value in {**attrs, "stage": stage, "params_hash": params_hash}.items():
            f.attrs[key] = _as_storable(key, value)
    log.debug("wrote %s (%d datasets, %d ids)", path, len(arrays), len(id_str))
    return path


def _decode(value: object) -> object:
    """Strings back from HDF5: bytes to str, string arrays to str arrays (datasets) or lists (attrs)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.ravel()],
                        dtype=str).reshape(value.shape)
    return value


def read_product(
    path: str | Path, names: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], list[str], dict[str, object]]:
    """Reads an HDF5 product written by `write_product`.

    Args:
        path: The product file.
        names: Datasets to read (None: all); a missing one is an error naming it.

    Returns:
        (arrays by dataset path, id_str list, attrs incl. `stage` and `params_hash`); string
        datasets come back as str arrays, string-list attributes as lists.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: HDF5 product not found")
    try:
        with h5py.File(path, "r") as f:
            if ID_DATASET not in f:
                raise InputError(f"{path}: no '{ID_DATASET}' dataset; not a specmorph product")
            found: list[str] = []
            f.visititems(lambda n, obj: found.append(n) if isinstance(obj, h5py.Dataset) else None)
            wanted = [n for n in found if n != ID_DATASET] if names is None else list(names)
            missing = [n for n in wanted if n not in found]
            if missing:
                raise InputError(f"{path}: dataset(s) {', '.join(missing)} missing (has: {', '.join(found)})")
            arrays = {n: _decode(f[n][()]) for n in wanted}
            ids = [str(s) for s in _decode(f[ID_DATASET][()])]
            attrs = {}
            for key, value in f.attrs.items():
                value = _decode(value)
                attrs[key] = value.tolist() if isinstance(value, np.ndarray) and value.dtype.kind == "U" else value
    except InputError:
        raise
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from err
    return arrays, ids, attrs
