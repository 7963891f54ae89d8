"""Image readers: JPEG/PNG cutouts and FITS images as uint8 RGB arrays (H, W, 3)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from specmorph.errors import InputError, NoDataError

logger = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz", ".fts.gz")

# FITS display stretch: values are clipped to the [STRETCH_LOW_PCT, STRETCH_HIGH_PCT] percentiles,
# mapped to [0, 1] and passed through asinh(y / STRETCH_SOFTENING) / asinh(1 / STRETCH_SOFTENING),
# which is linear in the faint end and logarithmic in the bright end (Lupton et al. 2004 style).
STRETCH_LOW_PCT = 0.5
STRETCH_HIGH_PCT = 99.5
STRETCH_SOFTENING = 0.1


def read_image(path: str | Path) -> np.ndarray:
    """Read a JPEG, PNG or FITS image as an 8-bit RGB array.

    JPEG/PNG (anything OpenCV's `imdecode` reads: JPEG, PNG, TIFF, BMP, WebP, ...): grayscale images are
    expanded to three equal channels and palette images to their colours, RGBA and gray+alpha lose their
    alpha channel (not composited), 16-bit images keep their top 8 bits and 32-bit float images are
    stretched like FITS.

    FITS (by suffix or by the ``SIMPLE`` card): the first HDU holding an image of 2 or 3 axes.
    A 2-D image is stretched (`asinh_stretch`) and replicated to three channels; a 3-D image of shape
    (3, H, W) or (H, W, 3) is stretched channel by channel (each its own percentiles), channels in
    file order taken as R, G, B. NaN/inf pixels become 0. FITS rows run bottom to top, so the array is
    flipped vertically to put north-up images the same way up as a JPEG cutout.

    Args:
        path: image file.

    Returns:
        (H, W, 3) uint8 array, C-contiguous.

    Raises:
        InputError: the file is missing, truncated, corrupt or not a 2-D/3-channel image; the
            message names the path and the reason.
        NoDataError: a FITS image without a finite pixel (an `InputError` too).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: cannot read image: no such file")
    if _is_fits(path):
        return _read_fits(path)
    return _read_raster(path)


def asinh_stretch(data: np.ndarray) -> np.ndarray:
    """Map one channel of linear flux to uint8 with a percentile-clipped asinh stretch.

    Args:
        data: (H, W) array of any real dtype, linear flux in any unit.

    Returns:
        (H, W) uint8; a constant or all-NaN image gives zeros. When the high percentile equals the low
        one (a few bright pixels on a flat floor) the maximum is used instead.
    """
    x = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.zeros(x.shape, dtype=np.uint8)
    if not finite.any():
        return out
    lo, hi = np.percentile(x[finite], [STRETCH_LOW_PCT, STRETCH_HIGH_PCT])
    if hi <= lo:  # fewer than (100 - STRETCH_HIGH_PCT)% of pixels above the floor: scale to the maximum
        hi = x[finite].max()
    if hi <= lo:
        return out
    y = np.clip((np.where(finite, x, lo) - lo) / (hi - lo), 0.0, 1.0)
    y = np.arcsinh(y / STRETCH_SOFTENING) / np.arcsinh(1.0 / STRETCH_SOFTENING)
    out[...] = np.rint(y * 255.0)
    return out


def _is_fits(path: Path) -> bool:
    if path.name.lower().endswith(FITS_SUFFIXES):
        return True
    with open(path, "rb") as f:
        return f.read(6) == b"SIMPLE"


def _read_raster(path: Path) -> np.ndarray:
    """A JPEG/PNG/TIFF/... file through `cv2.imdecode` (no EXIF rotation, as the archives' cutouts need none)."""
    try:
        img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"{path}: cannot read image: {exc}") from exc
    if img is None:
        raise InputError(f"{path}: cannot read image: OpenCV cannot decode it (truncated, corrupt, or not an "
                         "image format it reads: JPEG, PNG, TIFF, BMP, WebP, ...)")
    if img.ndim == 3 and img.shape[2] in (2, 4):
        img = img[..., : img.shape[2] - 1]  # alpha dropped, not composited
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # the top 8 bits
    elif img.dtype in (np.float32, np.float64):
        img = asinh_stretch(img) if img.ndim == 2 else np.stack([asinh_stretch(c) for c in img.transpose(2, 0, 1)], -1)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: cannot read image: unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return _gray_to_rgb(img)
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _read_fits(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyWarning)  # truncation and header warnings → errors
            with fits.open(path, memmap=False) as hdul:
                data = next((h.data for h in hdul if h.is_image and h.data is not None and h.data.ndim >= 2), None)
                if data is not None:
                    data = np.array(data)
    except (OSError, ValueError, TypeError, AstropyWarning) as exc:
        raise InputError(f"{path}: cannot read FITS image: {exc}") from exc
    if data is None:
        raise InputError(f"{path}: no HDU holds an image with 2 or 3 axes")
    if not np.isfinite(data).any():
        raise NoDataError(f"{path}: no finite pixel (all NaN or inf)")
    if data.ndim == 2:
        rgb = _gray_to_rgb(asinh_stretch(data))
    elif data.ndim == 3 and data.shape[0] == 3:
        rgb = np.stack([asinh_stretch(c) for c in data], axis=-1)
    elif data.ndim == 3 and data.shape[-1] == 3:
        rgb = np.stack([asinh_stretch(data[..., k]) for k in range(3)], axis=-1)
    else:
        raise InputError(f"{path}: FITS image of shape {data.shape}; expected (H, W), (3, H, W) or (H, W, 3)")
    return np.ascontiguousarray(rgb[::-1])  # FITS row 0 is the bottom row
