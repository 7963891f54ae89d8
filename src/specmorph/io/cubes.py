"""Reads eCALIFA V500 datacubes (and 1-D CALIFA spectra) and turns them into normalised galaxy spectra."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from astropy.io import fits
from scipy.ndimage import uniform_filter
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.fitsbase import Cube, celestial_position, read_fits_with
from specmorph.io.gzipfits import try_read_images
from specmorph.io.manga import is_logcube, read_logcube

log = logging.getLogger(__name__)
T = TypeVar("T")

# Observed-frame continuum window used to normalise every spectrum (Å): free of strong lines at the
# CALIFA redshifts (z ≲ 0.03), inside the V500 range (3749-7501 Å) and unaffected by its vignetting.
NORM_WINDOW: tuple[float, float] = (5450.0, 5550.0)
APERTURES = ("integrated", "central")
# Wavelength units accepted in CUNITn, as factors to Å.
_UNIT_TO_ANGSTROM = {"": 1.0, "ANGSTROM": 1.0, "ANGSTROEM": 1.0, "A": 1.0, "NM": 10.0, "UM": 1e4, "M": 1e10}
_NONLINEAR_CTYPES = ("-LOG", "-TAB", "-F2W", "-V2W", "-W2F")


def cube_name(path: Path) -> str:
    """The galaxy name of a CALIFA product file: `NGC5947.V500.rscube.fits.gz` -> `NGC5947`.

    Names may contain dots (`SDSSJ100141.02+371447.4.V500.rscube.fits.gz`): the name ends where the
    setup (`.V500.`, `.V1200.`, `.COMB.`) begins, or else before the FITS extension.
    """
    name = Path(path).name
    match = re.match(r"(.+?)\.(?:V500|V1200|COMB)\.", name)
    if match:
        return match.group(1)
    for ext in (".fits.gz", ".fits.fz", ".fits"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def wavelength_axis(header: fits.Header, n_wave: int, axis: int, source: str) -> np.ndarray:
    """Linear wavelength axis (Å) of FITS axis `axis` from CRVALn/CRPIXn and CDELTn or CDn_n.

    Args:
        header: The header holding the spectral WCS.
        n_wave: Number of channels.
        axis: FITS axis number (3 for cubes, 1 for 1-D spectra).
        source: File name used in error messages.

    Returns:
        (n_wave,) wavelengths in Å.
    """
    step_key = f"CD{axis}_{axis}" if f"CD{axis}_{axis}" in header else f"CDELT{axis}"
    needed = (f"CRVAL{axis}", f"CRPIX{axis}", step_key)
    missing = [k for k in needed if k not in header]
    if missing:
        raise InputError(
            f"{source}: no wavelength axis: header lacks {', '.join(missing)} "
            f"(expected CRVAL{axis}, CRPIX{axis} and CDELT{axis} or CD{axis}_{axis})"
        )
    ctype = str(header.get(f"CTYPE{axis}", "")).upper()
    if any(code in ctype for code in _NONLINEAR_CTYPES) or ctype.startswith(("FREQ", "VELO", "VRAD", "VOPT", "ENER")):
        raise InputError(f"{source}: CTYPE{axis}={ctype!r} is not a linear wavelength axis (expected AWAV or WAVE)")
    unit = str(header.get(f"CUNIT{axis}", "")).strip().upper()
    if unit not in _UNIT_TO_ANGSTROM:
        if ctype:
            raise InputError(f"{source}: CUNIT{axis}={unit!r} is not a wavelength unit (expected Angstrom, nm, um, m)")
        # Real CALIFA 1-D spectra carry CUNIT1='deg' left over from the cube's sky axes and no CTYPE1.
        log.info("%s: ignoring CUNIT%d=%r without CTYPE%d; assuming Å", source, axis, unit, axis)
        unit = ""
    pix = np.arange(1, n_wave + 1, dtype=np.float64)  # FITS pixel numbers start at 1
    wave = header[f"CRVAL{axis}"] + header[step_key] * (pix - header[f"CRPIX{axis}"])
    return wave * _UNIT_TO_ANGSTROM[unit]  # Å


def _read_astropy(path: Path, error: bool) -> tuple[fits.Header, fits.Header, np.ndarray, np.ndarray | None,
                                                   np.ndarray | None]:
    """Primary header, WCS header, flux, error and BADPIX != 0 of any FITS file astropy reads."""

    def take(hdul: fits.HDUList) -> tuple:
        hdu = hdul[0] if hdul[0].data is not None else hdul["FLUX"] if "FLUX" in hdul else None
        if hdu is None:
            raise InputError(f"{path}: no data in the primary HDU and no FLUX extension")
        header = hdul[0].header.copy()
        wcs_header = header if hdu is hdul[0] else hdu.header.copy()
        flux = np.array(hdu.data, dtype=np.float32)  # 1e-16 erg/s/cm²/Å
        err = np.array(hdul["ERROR"].data, dtype=np.float32) if error and "ERROR" in hdul else None
        badpix = np.array(hdul["BADPIX"].data) != 0 if "BADPIX" in hdul else None
        return header, wcs_header, flux, err, badpix

    return read_fits_with(path, take)


def _read_hdus(path: Path, error: bool) -> tuple[fits.Header, fits.Header, np.ndarray, np.ndarray | None,
                                                np.ndarray | None]:
    """As `_read_astropy`, streamed in one pass (gzipfits) when the file allows it, the same values either way."""
    images = try_read_images(path, ("ERROR", "BADPIX") if error else ("BADPIX",))
    if images is None or images[1] is None:  # astropy reads it, or says what is wrong (no data included)
        return _read_astropy(path, error)
    header, flux, ext = images
    err = np.asarray(ext["ERROR"], dtype=np.float32) if "ERROR" in ext else None
    badpix = ext["BADPIX"] != 0 if "BADPIX" in ext else None
    return header, header, np.asarray(flux, dtype=np.float32), err, badpix


def read_cube(path: str | Path, error: bool = True) -> Cube:
    """Reads a V500 cube (`*.rscube.fits[.gz]`) or a 1-D spectrum, masking bad pixels with NaN.

    The primary HDU holds the flux (n_wave, ny, nx) or (n_wave,); the optional `ERROR` and `BADPIX`
    (non-zero = bad) extensions have the same shape. Without `BADPIX` only non-finite flux is bad.
    A file named as a MaNGA LOGCUBE (`io.manga.is_logcube`) is read by `io.manga.read_logcube` onto
    the eCALIFA grid, so every stage that reads cubes takes either survey's.

    Args:
        path: The FITS file (plain or gzip; streamed once, or read by astropy if unusual).
        error: Read the `ERROR` extension; False leaves `Cube.error` None (and unchecked).

    Returns:
        The cube; a 1-D spectrum comes back with shape (n_wave, 1, 1).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: cube file not found")
    if is_logcube(path):
        return read_logcube(path, error=error)
    header, wcs_header, flux, error_arr, badpix = _read_hdus(path, error)
    if flux.ndim == 1:
        axis = 1
    elif flux.ndim == 3:
        axis = 3
    else:
        raise InputError(f"{path}: flux has shape {flux.shape}; expected a cube (n_wave, ny, nx) or spectrum (n_wave,)")
    wave = wavelength_axis(wcs_header, flux.shape[0], axis, str(path))
    for label, arr in (("ERROR", error_arr), ("BADPIX", badpix)):
        if arr is not None and arr.shape != flux.shape:
            raise InputError(f"{path}: {label} has shape {arr.shape}, flux has {flux.shape}")
    if badpix is None:
        log.warning("%s: no BADPIX extension; treating non-finite flux as bad", path)
        badpix = ~np.isfinite(flux)
    else:
        badpix |= ~np.isfinite(flux)
    flux[badpix] = np.nan
    if error_arr is not None:
        error_arr[badpix] = np.nan
    if axis == 1:
        flux = flux[:, None, None]  # (n_wave, 1, 1)
        error_arr = None if error_arr is None else error_arr[:, None, None]
    ra, dec = celestial_position(header)
    return Cube(cube_name(path), wave, flux, error_arr, header, ra, dec, path)


def _integrated(flux: np.ndarray, source: str) -> np.ndarray:
    """Sum over the footprint, each channel divided by the light share of its good spaxels.

    A spaxel's share is its fraction of the footprint's flux in the channels where no spaxel is bad
    (exact when the spaxels differ only in brightness); a channel missing half the light or more is NaN.
    """
    good = np.isfinite(flux)  # (n_wave, ny, nx)
    footprint = good.mean(axis=0) >= 0.5  # (ny, nx) spaxels valid in most channels
    if not footprint.any():
        raise InputError(f"{source}: no spaxel has valid flux in at least half of the channels")
    f = flux[:, footprint]  # (n_wave, n_spaxel)
    ok = good[:, footprint]
    filled = np.where(ok, f, 0.0)
    clean = ok.all(axis=1)  # (n_wave,) channels where every footprint spaxel is good
    if clean.sum() >= max(10, 0.05 * len(clean)):
        weight = filled[clean].sum(axis=0, dtype=np.float64)  # (n_spaxel,) light in the clean channels
    else:
        weight = filled.sum(axis=0, dtype=np.float64) / np.maximum(ok.sum(axis=0), 1)  # mean flux
    weight = np.clip(weight, 0.0, None)
    if not weight.sum() > 0:
        weight = np.ones_like(weight)
    missing = (~ok).astype(np.float64) @ weight / weight.sum()  # (n_wave,) fraction of light lost
    total = filled.sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(missing < 0.5, total / (1.0 - missing), np.nan)


def _central(flux: np.ndarray) -> np.ndarray:
    """Mean spectrum of the 3×3 spaxels around the peak of the box-smoothed white-light image."""
    good = np.isfinite(flux)
    white = np.where(good, flux, 0.0).sum(axis=0) / np.maximum(good.sum(axis=0), 1)  # (ny, nx)
    smooth = uniform_filter(white, size=3, mode="constant")
    cy, cx = np.unravel_index(np.argmax(smooth), smooth.shape)
    box = flux[:, max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2].reshape(flux.shape[0], -1)  # (n_wave, ≤9)
    return _nanmean_rows(box)


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite entries, NaN where a row has none."""
    ok = np.isfinite(a)
    count = ok.sum(axis=1)
    total = np.where(ok, a, 0.0).sum(axis=1, dtype=np.float64)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def galaxy_spectrum(
    cube: Cube,
    window: tuple[float, float] | None = None,
    bin_factor: int = 1,
    aperture: str = "integrated",
    norm_window: tuple[float, float] = NORM_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """The galaxy's spectrum, divided by its median in a continuum window so PCA sees shape, not distance.

    Args:
        cube: A cube from `read_cube`.
        window: Observed wavelength range (Å) to keep, inclusive; None keeps all channels.
        bin_factor: Number of adjacent channels averaged into one (trailing channels dropped).
        aperture: 'integrated' (whole footprint, bad spaxels corrected by their white-light share)
            or 'central' (3×3 spaxels around the white-light peak).
        norm_window: Observed wavelength range (Å) whose median flux is set to 1.

    Returns:
        wave (n,) in Å and the normalised spectrum (n,) float32 (dimensionless), NaN where no data.
    """
    source = str(cube.path or cube.name)
    if aperture not in APERTURES:
        raise ValueError(f"aperture={aperture!r}; expected one of {APERTURES}")
    if bin_factor < 1:
        raise ValueError(f"bin_factor={bin_factor}; expected a positive integer")
    spec = _integrated(cube.flux, source) if aperture == "integrated" else _central(cube.flux)  # (n_wave,)
    in_norm = (cube.wave >= norm_window[0]) & (cube.wave <= norm_window[1]) & np.isfinite(spec)
    norm = np.median(spec[in_norm]) if in_norm.any() else np.nan
    if not norm > 0:
        raise InputError(f"{source}: no positive continuum flux in the normalisation window {norm_window} Å")
    wave, spec = cube.wave, spec / norm
    if window is not None:
        keep = (wave >= window[0]) & (wave <= window[1])
        if not keep.any():
            raise InputError(f"{source}: window {window} Å lies outside the cube's {wave[0]:.0f}-{wave[-1]:.0f} Å")
        wave, spec = wave[keep], spec[keep]
    if bin_factor > 1:
        n = len(wave) // bin_factor * bin_factor
        if n == 0:
            raise ValueError(f"bin_factor={bin_factor} exceeds the {len(wave)} channels in the window")
        wave = wave[:n].reshape(-1, bin_factor).mean(axis=1)
        spec = _nanmean_rows(spec[:n].reshape(-1, bin_factor))
    return wave, spec.astype(np.float32)


def iter_spectra(
    paths: Iterable[str | Path],
    window: tuple[float, float] | None = None,
    bin_factor: int = 1,
    aperture: str = "integrated",
    progress: bool = True,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Reads cubes one at a time (memory bounded by one cube) and yields their normalised spectra.

    Args:
        paths: Cube files; read lazily, in order.
        window: See `galaxy_spectrum`.
        bin_factor: See `galaxy_spectrum`.
        aperture: See `galaxy_spectrum`.
        progress: Show a tqdm progress bar.

    Yields:
        (name, wave (n,) Å, spectrum (n,) float32) per cube.
    """
    total = len(paths) if hasattr(paths, "__len__") else None
    for path in tqdm(paths, total=total, desc="cubes", unit="cube", disable=not progress):
        cube = read_cube(path, error=False)
        wave, spec = galaxy_spectrum(cube, window=window, bin_factor=bin_factor, aperture=aperture)
        del cube
        yield cube_name(Path(path)), wave, spec
