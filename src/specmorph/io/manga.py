"""Reads SDSS-IV MaNGA DRP datacubes (`manga-<plate>-<ifudesign>-LOGCUBE.fits[.gz]`) into the pipeline's `Cube`.

A LOGCUBE (DR17, DRP v3_1_1) holds, besides others, these extensions, each (n_wave, ny, nx) but WAVE:
- FLUX: 1e-17 erg/s/cm²/Å per spaxel (BUNIT); 0.5″ spaxels;
- IVAR: inverse variance of FLUX (0 where there is no measurement);
- MASK: the MANGA_DRP3PIXMASK bits; DONOTUSE (bit 10) marks what the DRP says not to use for science
  (with, for instance, no coverage or a foreground star);
- WAVE: (n_wave,) vacuum wavelengths, Å, logarithmically spaced (Δlog10 λ = 1e-4, 3622-10354 Å).

What the reader returns is the product eCALIFA cubes give (`io.cubes.Cube`), so every later stage takes
it unchanged: fluxes in 1e-16 erg/s/cm²/Å per spaxel (FLUX / 10), the error 1 / sqrt(IVAR) in the same
units (the two pixels' variances propagated through the interpolation), NaN where the pixel is
unusable (DONOTUSE, IVAR ≤ 0, non-finite), on a linear *air* wavelength grid, by default the eCALIFA
V500 one (3749-7501 Å, 2 Å: the grid the mock cubes and the spectral stages use; eCALIFA's
wavelengths are in air). Vacuum wavelengths become air ones (Morton 2000's refractive index), then
each spaxel's spectrum is linearly interpolated onto the grid: a channel is NaN when either of the two
MaNGA pixels it is drawn from is unusable, or outside MaNGA's range. MaNGA's pixels (69 km/s) are
finer than the grid's 2 Å (82-160 km/s), so the interpolation loses no resolution the grid keeps.
The 0.5″ spaxels are kept as they are: `prepare_cubes` resamples every cube onto its own grid.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from specmorph.errors import InputError
from specmorph.io.fitsbase import Cube, celestial_position, read_fits_with
from specmorph.io.gzipfits import try_read_images

log = logging.getLogger(__name__)

DONOTUSE = 1 << 10  # MANGA_DRP3PIXMASK bit 10
FLUX_TO_CALIFA = 0.1  # MaNGA's 1e-17 erg/s/cm²/Å units in eCALIFA's 1e-16
CALIFA_GRID: tuple[float, float, float] = (3749.0, 7501.0, 2.0)  # Å, air: first, last, step (1877 channels)
EXTENSIONS = ("FLUX", "IVAR", "MASK", "WAVE")
# The DRPall summary table (drpall-v3_1_1.fits, extension MANGA): one row per plate-IFU observation.
DRPALL_COLUMNS = ("plateifu", "mangaid", "objra", "objdec", "nsa_z", "drp3qual")
CRITICAL = 1 << 30  # MANGA_DRP3QUAL bit 30: a critical failure in one or more frames; not for science


def is_logcube(path: str | Path) -> bool:
    """Whether a file is named as a MaNGA LOGCUBE (`manga-<plate>-<ifudesign>-LOGCUBE.fits[.gz]`)."""
    return re.match(r"manga-\d+-\d+-LOGCUBE\.fits(\.gz)?$", Path(path).name) is not None


def logcube_name(path: str | Path) -> str:
    """The plate-IFU of a LOGCUBE file (`manga-8485-1901-LOGCUBE.fits.gz` -> `8485-1901`), else the bare file name."""
    name = Path(path).name
    match = re.match(r"manga-(\d+-\d+)-LOGCUBE", name)
    return match.group(1) if match else name.split(".")[0]


def vacuum_to_air(wave: np.ndarray) -> np.ndarray:
    """Air wavelengths (Å) of vacuum ones (Å > 2000), by Morton (2000)'s refractive index of air (IAU standard).

    n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s²) + 1.5998e-4 / (38.9 - s²), s = 1e4 / λ_vac (μm⁻¹).
    """
    s2 = (1e4 / np.asarray(wave, dtype=np.float64)) ** 2
    return wave / (1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2))


def linear_grid(first: float, last: float, step: float) -> np.ndarray:
    """(n,) the linear wavelength grid first, first + step, ..., last (Å)."""
    return first + step * np.arange(round((last - first) / step) + 1, dtype=np.float64)


def _read_extensions(path: Path) -> tuple[fits.Header, dict[str, np.ndarray]]:
    """The primary header and the EXTENSIONS' data: in one pass (`gzipfits`) where the file allows it, else
    (and for every error message) through astropy; the same values either way."""
    images = try_read_images(path, EXTENSIONS)
    if images is not None and len(images[2]) == len(EXTENSIONS):
        return images[0], images[2]

    def take(hdul: fits.HDUList) -> tuple[fits.Header, dict[str, np.ndarray]]:
        missing = [e for e in EXTENSIONS if e not in hdul]
        if missing:
            raise InputError(f"{path}: not a MaNGA LOGCUBE: no {', '.join(missing)} extension(s) "
                             f"(expected {', '.join(EXTENSIONS)})")
        return hdul[0].header.copy(), {e: np.array(hdul[e].data) for e in EXTENSIONS}

    return read_fits_with(path, take)


def check_logcube_header(path: Path) -> None:
    """Checks, from the headers alone, that `path` is a LOGCUBE: its extensions, with shapes that agree.

    Raises:
        InputError naming the file and what is missing or disagrees; astropy's own failures pass through
        (the caller words them, as for any FITS file).
    """
    with fits.open(path) as hdul:
        missing = [e for e in EXTENSIONS if e not in hdul]
        shapes = {e: _header_shape(hdul[e].header) for e in EXTENSIONS if e in hdul}
    if missing:
        raise InputError(f"{path}: not a MaNGA LOGCUBE: no {', '.join(missing)} extension(s)")
    if len(shapes["FLUX"]) != 3:
        raise InputError(f"{path}: FLUX has shape {shapes['FLUX']}; expected a cube (3 axes)")
    for ext in ("IVAR", "MASK"):
        if shapes[ext] != shapes["FLUX"]:
            raise InputError(f"{path}: {ext} has shape {shapes[ext]}, FLUX has {shapes['FLUX']}")
    if shapes["WAVE"] != shapes["FLUX"][2:]:
        raise InputError(f"{path}: WAVE has {shapes['WAVE']} values, FLUX {shapes['FLUX'][2]} channels")


def _header_shape(header: fits.Header) -> tuple[int, ...]:
    """(NAXIS1, NAXIS2, ...) of an HDU from its header: FITS order, fastest axis first."""
    return tuple(int(header[f"NAXIS{i}"]) for i in range(1, int(header.get("NAXIS", 0)) + 1))


def interpolate(src_wave: np.ndarray, dst_wave: np.ndarray, values: np.ndarray, good: np.ndarray,
                variance: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Linear interpolation along axis 0 of a masked cube from one increasing wavelength grid to another.

    Each output channel is drawn from the two source channels around it, with weights 1 - w and w; the
    variance of that weighted sum of independent pixels is (1 - w)² σ²_left + w² σ²_right. A channel is
    usable where both source pixels are good (or the one with weight 0 is not needed) and it lies inside
    the source grid. Used both ways: MaNGA's log grid onto eCALIFA's (`read_logcube`) and back (the mock).

    Args:
        src_wave: (n_src,) increasing wavelengths of `values`' axis 0.
        dst_wave: (n_dst,) wavelengths to interpolate to, in the same frame (air or vacuum).
        values: (n_src, ...) values; bad ones are ignored.
        good: (n_src, ...) bool, the usable pixels.
        variance: (n_src, ...) variances of `values`, or None.

    Returns:
        ((n_dst, ...) float64 values, their variances or None, (n_dst, ...) bool usable); values are
        meaningless where not usable.
    """
    n_src = len(src_wave)
    right = np.searchsorted(src_wave, dst_wave)  # (n_dst,) first source pixel at or beyond the channel
    inside = (right > 0) & (right < n_src)
    left = np.clip(right - 1, 0, n_src - 2)
    w = np.clip((dst_wave - src_wave[left]) / (src_wave[left + 1] - src_wave[left]), 0.0, 1.0)
    w = w.reshape(-1, *([1] * (values.ndim - 1)))  # broadcast over the spatial axes
    usable = inside.reshape(w.shape) & (good[left] | (w == 1)) & (good[left + 1] | (w == 0))
    v = np.where(good, values, 0.0).astype(np.float64)
    out = v[left] * (1 - w) + v[left + 1] * w
    var_out = None
    if variance is not None:
        var = np.where(good, variance, 0.0).astype(np.float64)
        var_out = var[left] * (1 - w) ** 2 + var[left + 1] * w**2
    return out, var_out, usable


def channel_span(src_wave: np.ndarray, dst_wave: np.ndarray) -> slice:
    """The source channels that `interpolate` onto `dst_wave` draws on: the two around each output channel.

    Interpolating from `src_wave[span]` gives the same usable values as from the whole grid; a reader
    slices a cube to it before any per-pixel work (eCALIFA's grid needs about 2/3 of MaNGA's channels).
    """
    right = np.searchsorted(src_wave, dst_wave)
    return slice(max(int(right.min()) - 1, 0), min(int(right.max()) + 1, len(src_wave)))


def read_logcube(path: str | Path, grid: tuple[float, float, float] = CALIFA_GRID, error: bool = True) -> Cube:
    """Reads a MaNGA LOGCUBE onto a linear air-wavelength grid, in eCALIFA's flux units (module docstring).

    Args:
        path: The LOGCUBE file (plain or gzip).
        grid: (first, last, step) of the output wavelength grid, Å, air.
        error: Also return the error cube (1 / sqrt(IVAR), resampled the same way).

    Returns:
        The cube: flux (n_grid, ny, nx) float32, NaN where unusable or outside MaNGA's range; the primary
        header; RA/Dec from its OBJRA/OBJDEC; the plate-IFU as its name.

    Raises:
        InputError: missing file or extension, truncated or unreadable file, shapes that disagree,
            or a WAVE that is not increasing; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: cube file not found")
    header, d = _read_extensions(path)
    flux, ivar, mask, wave = d["FLUX"], d["IVAR"], d["MASK"], d["WAVE"].astype(np.float64).ravel()
    if flux.ndim != 3:
        raise InputError(f"{path}: FLUX has shape {flux.shape}; expected (n_wave, ny, nx)")
    for label, arr in (("IVAR", ivar), ("MASK", mask)):
        if arr.shape != flux.shape:
            raise InputError(f"{path}: {label} has shape {arr.shape}, FLUX has {flux.shape}")
    if wave.shape != (flux.shape[0],) or not np.all(np.diff(wave) > 0):
        raise InputError(f"{path}: WAVE must hold {flux.shape[0]} increasing wavelengths, got shape {wave.shape}")
    out_wave = linear_grid(*grid)
    src_wave = vacuum_to_air(wave)
    span = channel_span(src_wave, out_wave)
    flux, ivar, mask, src_wave = flux[span], ivar[span], mask[span], src_wave[span]
    good = (mask.astype(np.int64) & DONOTUSE) == 0
    good &= np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    variance = np.where(good, 1.0 / np.where(good, ivar, 1.0).astype(np.float64), 0.0) if error else None
    values, var_out, usable = interpolate(src_wave, out_wave, flux, good, variance)
    cube_flux = (np.where(usable, values, np.nan) * FLUX_TO_CALIFA).astype(np.float32)
    cube_error = None
    if var_out is not None:
        cube_error = (np.sqrt(np.where(usable, var_out, np.nan)) * FLUX_TO_CALIFA).astype(np.float32)
    if not np.isfinite(cube_flux).any():
        log.warning("%s: no usable pixel on the %g-%g Å grid", path, grid[0], grid[1])
    ra, dec = celestial_position(header)
    return Cube(logcube_name(path), out_wave, cube_flux, cube_error, header, ra, dec, path)


def read_drpall(path: str | Path) -> pd.DataFrame:
    """Reads a DRPall summary table (FITS binary table, extension MANGA or the first table) with its checks.

    Returns:
        One row per plate-IFU: `plateifu`, `mangaid` (stripped strings), `ra`, `dec` (OBJRA/OBJDEC, deg),
        `redshift` (NSA_Z), `drp3qual` (int64), and the other columns of the file as they are.

    Raises:
        InputError naming the file, and the row or column: not a FITS table, a column of DRPALL_COLUMNS
        missing, an empty or repeated plate-IFU, an empty MaNGA ID, coordinates not finite or out of
        range, a negative quality bitmask.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: DRPall table not found")

    def take(hdul: fits.HDUList) -> pd.DataFrame:
        tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
        hdu = hdul["MANGA"] if "MANGA" in hdul else tables[0] if tables else None
        if hdu is None:
            raise InputError(f"{path}: no binary table extension, so not a DRPall table")
        names = {n.lower(): n for n in hdu.columns.names}
        missing = [c for c in DRPALL_COLUMNS if c not in names]
        if missing:
            raise InputError(f"{path}: column(s) {', '.join(missing)} missing in the DRPall table "
                             f"(required: {', '.join(DRPALL_COLUMNS)}; found: {', '.join(list(names)[:12])} ...)")
        data = hdu.data
        return pd.DataFrame({low: _column(data[name]) for low, name in names.items()
                             if np.asarray(data[name]).ndim == 1})  # the NSA array columns are left out

    df = read_fits_with(path, take)
    for column in ("plateifu", "mangaid"):
        df[column] = df[column].astype(str).str.strip()
        empty = np.flatnonzero((df[column] == "").to_numpy())
        if empty.size:
            raise InputError(f"{path}: row {empty[0] + 1}: empty {column}")
    repeated = np.flatnonzero(df["plateifu"].duplicated().to_numpy())
    if repeated.size:
        raise InputError(f"{path}: row {repeated[0] + 1}: plateifu {df['plateifu'].iloc[repeated[0]]} repeated")
    for column, lo, hi in (("objra", 0.0, 360.0), ("objdec", -90.0, 90.0)):
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < lo) | (values > hi))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{path}: row {i + 1} (plateifu {df['plateifu'].iloc[i]}): {column}={values[i]} "
                             f"is not a position in [{lo:g}, {hi:g}] degrees")
        df[column] = values
    quality = pd.to_numeric(df["drp3qual"], errors="coerce")
    bad = np.flatnonzero((quality.isna() | (quality < 0)).to_numpy())
    if bad.size:
        raise InputError(f"{path}: row {bad[0] + 1} (plateifu {df['plateifu'].iloc[bad[0]]}): "
                         f"drp3qual={df['drp3qual'].astype(str).iloc[bad[0]]} is not a quality bitmask")
    df["drp3qual"] = quality.astype(np.int64)
    df["redshift"] = pd.to_numeric(df["nsa_z"], errors="coerce")
    return df.rename(columns={"objra": "ra", "objdec": "dec"})


def _column(values: np.ndarray) -> np.ndarray:
    """A FITS table column as numpy: bytes decoded to str, big-endian numbers in native order."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "ascii", errors="replace")
    return arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.byteorder not in ("=", "|") else arr


def select_drpall(drpall: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One usable observation per galaxy: critical-quality cubes dropped, repeat observations folded.

    A galaxy observed more than once (several plate-IFUs, one MaNGA ID) keeps the observation with the
    highest `redsn2` (the red camera's summed S/N², when the table has it), else the first in the table;
    the others are dropped, so every split sees the galaxy once.

    Returns:
        (kept rows, dropped rows with a `reason` column naming why each was left out).
    """
    critical = (drpall["drp3qual"].to_numpy(np.int64) & CRITICAL) != 0
    ranked = drpall.assign(_bad=critical, _order=np.arange(len(drpall)))
    keys = ["_bad", "redsn2", "_order"] if "redsn2" in drpall.columns else ["_bad", "_order"]
    ranked = ranked.sort_values(keys, ascending=[k != "redsn2" for k in keys], kind="stable")
    first = ~ranked["mangaid"].duplicated()
    keep = first & ~ranked["_bad"]
    kept_of = dict(zip(ranked.loc[keep, "mangaid"], ranked.loc[keep, "plateifu"], strict=True))
    reasons = np.where(ranked["_bad"], "DRP3QUAL CRITICAL (bit 30)", "")
    repeat = ~first.to_numpy() & ~ranked["_bad"].to_numpy()
    reasons = np.where(repeat, [f"repeat observation of MaNGA ID {m} (kept {kept_of.get(m, '')})"
                                for m in ranked["mangaid"]], reasons)
    dropped = ranked.loc[~keep].assign(reason=reasons[~keep.to_numpy()])
    tidy = ["_bad", "_order"]
    return (ranked.loc[keep].sort_values("_order").drop(columns=tidy).reset_index(drop=True),
            dropped.sort_values("_order").drop(columns=tidy).reset_index(drop=True))
