"""Checks downloaded files on arrival (gzip, V500 cube header, JPEG, Galaxy10 by slices) and writes Galaxy10 subsets."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.images import read_image
from specmorph.io.local import check_cube_header

log = logging.getLogger(__name__)

C_KMS = 299_792.458  # km/s
GALAXY10_SIZE = 256  # px
GALAXY10_SLICE = 256  # images read at a time (~50 MB)
_READ_BYTES = 1 << 22


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def check_gzip(path: Path) -> None:
    """Decompresses the whole gzip stream (in blocks) so that truncation and CRC errors show now."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(_READ_BYTES):
                pass
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: corrupt or truncated gzip file ({type(err).__name__}: {err})") from err


def check_cube(path: Path) -> None:
    """A V500 cube: intact gzip (when gzipped), FITS with NAXIS=3 and a linear wavelength axis."""
    if path.name.endswith(".gz"):
        check_gzip(path)
    check_cube_header(path)


def check_image(path: Path) -> None:
    """A JPEG/PNG that decodes to an RGB image."""
    image = read_image(path)  # (H, W, 3) uint8
    if min(image.shape[:2]) < 8:
        raise InputError(f"{path}: image of {image.shape[1]}×{image.shape[0]} px is too small to be a cutout")


def cube_redshift(path: Path) -> float | None:
    """Redshift from a CALIFA cube header's MED_VEL (km/s, the systemic velocity), or None."""
    header = fits.getheader(path, 0)
    vel = header.get("MED_VEL")
    return float(vel) / C_KMS if isinstance(vel, int | float) and np.isfinite(vel) else None


def check_galaxy10(path: Path) -> int:
    """Opens a Galaxy10 DECaLS file and reads every image by slices (never the whole file) to prove it is intact.

    Returns:
        The number of images.
    """
    g10 = open_galaxy10(path)
    try:
        n, n_read = len(g10.ans), 0
        for start in tqdm(range(0, n, GALAXY10_SLICE), desc="check Galaxy10", unit="slice", disable=n < 4096):
            n_read += len(g10.images[start:start + GALAXY10_SLICE])  # (≤256, 256, 256, 3) uint8: reading is the check
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: Galaxy10 images unreadable ({err})") from err
    finally:
        g10.close()
    if n_read != n:
        raise InputError(f"{path}: read {n_read} of {n} Galaxy10 images")
    return n


def write_galaxy10_subset(src: Path | None, dst: Path, rows: np.ndarray) -> None:
    """Copies the Galaxy10 rows `rows` (sorted indices) of `src` into a new file `dst`, by slices, atomically.

    Args:
        src: A Galaxy10 DECaLS file (None: write the empty layout).
        dst: The subset file; `rows` may be empty (a Galaxy10-layout file with no images).
        rows: (n,) sorted row indices.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as out:
            if src is None:
                _create(out, {}, 0)
            else:
                with h5py.File(src, "r") as f:
                    _create(out, f, len(rows))
                    for start in range(0, len(rows), GALAXY10_SLICE):
                        idx = rows[start:start + GALAXY10_SLICE]
                        for name in out:
                            if name in f:
                                out[name][start:start + len(idx)] = f[name][idx]
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _create(out: h5py.File, like, n: int) -> None:
    """Galaxy10 datasets (images, ans, ra, dec, redshift, pxscale) of length n, typed like the source's."""
    shape = like["images"].shape[1:] if "images" in like else (GALAXY10_SIZE, GALAXY10_SIZE, 3)
    out.create_dataset("images", (n, *shape), dtype=np.uint8, chunks=(1, *shape) if n else None,
                       compression="gzip" if n else None)
    out.create_dataset("ans", (n,), dtype=like["ans"].dtype if "ans" in like else np.uint8)
    for name in ("ra", "dec", "redshift", "pxscale"):
        if name in like or not like:
            out.create_dataset(name, (n,), dtype=like[name].dtype if name in like else np.float64)


def write_empty_galaxy10(dst: Path) -> None:
    """A Galaxy10-layout file with no images, for a run without Galaxy10 (the evaluate stage then has none)."""
    write_galaxy10_subset(None, dst, np.zeros(0, np.int64))
