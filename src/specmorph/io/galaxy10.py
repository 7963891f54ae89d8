"""Reads a Galaxy10 DECaLS HDF5 file (images uint8 (N,256,256,3), ans, ra, dec, redshift)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from specmorph.errors import InputError

REQUIRED = ("images", "ans", "ra", "dec")


@dataclass
class Galaxy10:
    """The file's arrays; `images` stays an open h5py dataset so memory holds one batch at a time."""

    images: h5py.Dataset  # (N, H, W, 3) uint8
    ans: np.ndarray  # (N,) Galaxy10 class codes 0-9
    ra: np.ndarray  # (N,) deg
    dec: np.ndarray  # (N,) deg
    file: h5py.File

    def close(self) -> None:
        self.file.close()


def open_galaxy10(path: str | Path) -> Galaxy10:
    """Opens a Galaxy10 DECaLS file and checks its layout.

    Args:
        path: The .h5 file.

    Returns:
        The opened file's arrays (call `close()` when done).
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: cannot open as HDF5: {err}") from err
    missing = [k for k in REQUIRED if k not in f]
    if missing:
        f.close()
        raise InputError(f"{path}: missing dataset(s) {', '.join(missing)}; Galaxy10 DECaLS has {', '.join(REQUIRED)}")
    images = f["images"]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        f.close()
        raise InputError(f"{path}: images has shape {images.shape} {images.dtype}; expected (N, H, W, 3) uint8")
    ans = f["ans"][:].astype(np.int64)
    if ans.shape != (images.shape[0],) or ans.min(initial=0) < 0 or ans.max(initial=0) > 9:
        f.close()
        raise InputError(f"{path}: ans must hold one code 0-9 per image")
    return Galaxy10(images, ans, f["ra"][:].astype(float), f["dec"][:].astype(float), f)
