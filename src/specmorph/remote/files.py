"""Downloaded files: checks on arrival (gzip, V500 cube, JPEG, Galaxy10 by slices), Galaxy10 subsets, MANIFEST.csv."""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from astropy.io import fits
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file
from specmorph.io.catalogs import write_table
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.images import read_image
from specmorph.io.local import check_cube_header
from specmorph.remote.http import Fetched, sha256_file
from specmorph.remote.jobs import utc_now

log = logging.getLogger(__name__)

C_KMS = 299_792.458  # km/s
GALAXY10_SIZE = 256  # px
GALAXY10_SLICE = 256  # images read at a time (~50 MB)
_READ_BYTES = 1 << 22
MANIFEST_NAME = "MANIFEST.csv"
MANIFEST_COLUMNS = ("path", "source_url", "bytes", "sha256", "fetched_at")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (`http.sha256_file`)."""
    return sha256_file(path).hexdigest()


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
    with atomic_file(dst) as tmp, h5py.File(tmp, "w") as out:
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


def write_manifest(out_dir: Path, known: dict[str, Fetched], derived: dict[str, str]) -> Path:
    """Writes `<out_dir>/MANIFEST.csv` (atomically): path, source_url, bytes, sha256, fetched_at of every file.

    Args:
        out_dir: The survey directory.
        known: Downloaded files by path relative to `out_dir` (their sha256 is re-used when the size matches).
        derived: Files written here from a downloaded table, by relative path -> that table's URL. Other files
            (summaries, the cutout index) have an empty source_url; their fetched_at is when they were written.

    Returns:
        The manifest's path.
    """
    rows = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        rel = path.relative_to(out_dir).as_posix()
        got = known.get(rel)
        size = path.stat().st_size
        same = got is not None and got.bytes == size
        rows.append({"path": rel, "source_url": got.url if got else derived.get(rel, ""), "bytes": size,
                     "sha256": got.sha256 if same else sha256_of(path),
                     "fetched_at": got.fetched_at if got else utc_now()})
    return write_table(pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)), out_dir / MANIFEST_NAME)
