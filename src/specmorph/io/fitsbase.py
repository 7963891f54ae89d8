"""FITS files opened with one-line errors that name the file, and `Cube`, the product every cube reader returns.

Shared by the eCALIFA reader (`io.cubes`) and the MaNGA one (`io.manga`): a gzip file is inflated here so
that truncation is caught, and astropy's failures become an `InputError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import logging
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from astropy.io import fits

from specmorph.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Cube:
    """One IFS datacube (or a 1-D spectrum as a 1×1 cube) with bad pixels set to NaN."""

    name: str
    wave: np.ndarray  # (n_wave,) Å, observed frame
    flux: np.ndarray  # (n_wave, ny, nx) float32, 1e-16 erg/s/cm²/Å, NaN where bad
    error: np.ndarray | None  # (n_wave, ny, nx) float32, same units, NaN where bad; None if absent or not read
    header: fits.Header  # primary header
    ra: float  # deg, NaN if the header has none
    dec: float  # deg
    path: Path | None = None


def open_fits(path: Path) -> fits.HDUList:
    """Opens a FITS file; gzip files are decompressed here so that truncation is detected."""
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(f"{path}: corrupt or truncated gzip file ({err})") from err
        return fits.open(io.BytesIO(raw), lazy_load_hdus=False)
    return fits.open(path, memmap=True, lazy_load_hdus=False)


def read_fits_with(path: Path, take: Callable[[fits.HDUList], T]) -> T:
    """`take(hdul)` on a FITS file opened by `open_fits`, its failures as one-line `InputError`s naming the file.

    `take` copies what it needs out of the file (the file is closed after it) and may raise InputError
    itself. A truncated file (astropy's warning), an unreadable one, or a missing key becomes InputError.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_fits(path) as hdul:
                out = take(hdul)
        truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
        for w in caught:
            log.debug("%s: %s", path, w.message)
        if truncated:
            raise InputError(f"{path}: truncated FITS file ({truncated[0]})")
    except InputError:
        raise
    except (OSError, EOFError, TypeError, ValueError, KeyError) as err:
        raise InputError(f"{path}: not a readable FITS file ({err})") from err
    return out


def celestial_position(header: fits.Header) -> tuple[float, float]:
    """RA, Dec (deg) from RA/DEC or OBJRA/OBJDEC keywords, else from the celestial WCS reference."""
    for ra_key, dec_key in (("RA", "DEC"), ("OBJRA", "OBJDEC")):
        if isinstance(header.get(ra_key), float | int) and isinstance(header.get(dec_key), float | int):
            return float(header[ra_key]), float(header[dec_key])
    if str(header.get("CTYPE1", "")).upper().startswith("RA") and "CRVAL2" in header:
        return float(header["CRVAL1"]), float(header["CRVAL2"])
    return float("nan"), float("nan")
