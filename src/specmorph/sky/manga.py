"""A mock galaxy's cube written as a MaNGA DR17 LOGCUBE: log-λ vacuum grid, 0.5″ spaxels, a hexagonal bundle.

The mock builds each galaxy once, as an eCALIFA V500 cube (`sky.cube.build_cube`: 1″ spaxels, 2 Å
air grid 3749-7501 Å). `logcube_from_califa` re-samples that cube into MaNGA's format, so both surveys'
files carry the same galaxy and the same ground truth:
- spectral: MaNGA's DR17 grid (`WAVE`: 4563 vacuum wavelengths, Δlog10 λ = 1e-4 from 3621.6 Å),
  each pixel linearly interpolated (in air wavelength) from the two eCALIFA channels around it. MaNGA
  reaches 10354 Å, the mock 7501 Å: pixels outside the mock's range have no data (IVAR 0, DONOTUSE);
- spatial: every 1″ spaxel split into four 0.5″ ones holding a quarter of its flux (their noise is
  fully correlated, as neighbouring spaxels of a real MaNGA cube are strongly so);
- footprint: a hexagonal bundle of the real sizes (19 to 127 fibres, 12.5″ to 32.5″ across flats,
  `BUNDLES`); spaxels outside it are NOCOV and DONOTUSE, as are channels the eCALIFA cube flags bad;
- units: 1e-17 erg/s/cm²/Å per spaxel (eCALIFA's 1e-16 × 10), IVAR = 1 / σ².
`io.manga.read_logcube` reads these files as it reads real ones.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.table import Table

from specmorph.io.atomic import atomic_file
from specmorph.io.manga import CRITICAL, DONOTUSE, DRPALL_COLUMNS, FLUX_TO_CALIFA, interpolate, vacuum_to_air
from specmorph.sky import cube
from specmorph.sky.catalogs import make_dr7objid
from specmorph.sky.render import half_light
from specmorph.sky.samples import (
    ASTROMETRIC_JITTER,
    Gz2Entry,
    gz2_ra_window,
    offset_position,
    typed_sample,
)
from specmorph.sky.truth import GalaxyTruth

N_WAVE = 4563  # DR17 LOGCUBE channels
LOG_START, LOG_STEP = np.log10(3621.6), 1e-4  # vacuum Å
NOCOV = 1 << 0  # MANGA_DRP3PIXMASK bit 0: no coverage
# Fibres per bundle -> its width across the hexagon's flats, arcsec (Drory et al. 2015, Table 2)
BUNDLES: dict[int, float] = {19: 12.5, 37: 17.5, 61: 22.5, 91: 27.5, 127: 32.5}
REPEAT_FRACTION = 0.03  # galaxies observed twice (a second plate-IFU of the same MaNGA ID) in the DRPall table
CRITICAL_FRACTION = 0.01  # observations flagged DRP3QUAL CRITICAL


def manga_wave() -> np.ndarray:
    """(4563,) the DR17 LOGCUBE vacuum wavelengths, Å."""
    return 10 ** (LOG_START + LOG_STEP * np.arange(N_WAVE))


def hexagon(ny: int, nx: int, flat_width: float, scale: float = 0.5) -> np.ndarray:
    """(ny, nx) bool: spaxels whose centre lies inside a regular hexagon (two flats horizontal, centred).

    Args:
        flat_width: distance between opposite flats, arcsec.
        scale: spaxel side, arcsec.
    """
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    y, x = (y - (ny - 1) / 2) * scale, (x - (nx - 1) / 2) * scale  # arcsec from the centre
    half = flat_width / 2
    inside = np.abs(y) <= half
    for angle in (np.pi / 3, -np.pi / 3):  # the other two pairs of flats
        inside &= np.abs(x * np.sin(angle) + y * np.cos(angle)) <= half
    return inside


def logcube_from_califa(flux: np.ndarray, error: np.ndarray, badpix: np.ndarray, bundle: int = 61
                        ) -> dict[str, np.ndarray]:
    """FLUX, IVAR, MASK and WAVE arrays of a MaNGA LOGCUBE holding an eCALIFA-format mock cube (module docstring).

    Args:
        flux: (n_wave, ny, nx) 1e-16 erg/s/cm²/Å per 1″ spaxel on the eCALIFA grid (3749 Å + 2 Å steps).
        error: the same shape, σ.
        badpix: the same shape, non-zero = bad.
        bundle: fibres in the IFU bundle, a key of BUNDLES.

    Returns:
        {"FLUX": (4563, 2ny, 2nx) float32 1e-17 units, "IVAR": float32, "MASK": int32, "WAVE": (4563,) float64}.
    """
    if bundle not in BUNDLES:
        raise ValueError(f"bundle={bundle}: MaNGA bundles have {sorted(BUNDLES)} fibres")
    n_in, ny, nx = flux.shape
    wave = manga_wave()
    f_out, var_out, ok = interpolate(cube.wavelengths(n_in), vacuum_to_air(wave), flux, badpix == 0,
                                     error.astype(np.float64) ** 2)
    # 1″ -> 0.5″: each spaxel's flux split in four equal (fully correlated) parts
    f_out = np.repeat(np.repeat(f_out, 2, axis=1), 2, axis=2) / 4 / FLUX_TO_CALIFA
    sigma = np.repeat(np.repeat(np.sqrt(var_out), 2, axis=1), 2, axis=2) / 4 / FLUX_TO_CALIFA
    ok = np.repeat(np.repeat(ok, 2, axis=1), 2, axis=2)
    inside = hexagon(2 * ny, 2 * nx, BUNDLES[bundle])[None]
    usable = ok & inside & (sigma > 0)
    mask = np.where(inside, 0, NOCOV | DONOTUSE) | np.where(usable | ~inside, 0, DONOTUSE)
    ivar = np.zeros(f_out.shape, np.float32)
    ivar[usable] = 1.0 / sigma[usable] ** 2
    return {"FLUX": np.where(usable, f_out, 0.0).astype(np.float32), "IVAR": ivar,
            "MASK": mask.astype(np.int32), "WAVE": wave}


def write_logcube(path: str | Path, truth: GalaxyTruth, arrays: dict[str, np.ndarray], plateifu: str,
                  mangaid: str) -> None:
    """Writes `logcube_from_califa`'s arrays as a gzipped DR17-format LOGCUBE, atomically.

    The primary header names the galaxy (PLATEIFU, MANGAID, OBJRA/OBJDEC, IFURA/IFUDEC, the mock's id
    as OBJECT); FLUX carries BUNIT and a log-λ spectral WCS (CTYPE3 WAVE-LOG) as the real files do.
    """
    primary = fits.PrimaryHDU()
    for key, value in (("PLATEIFU", plateifu), ("MANGAID", mangaid), ("OBJRA", truth.ra), ("OBJDEC", truth.dec),
                       ("IFURA", truth.ra), ("IFUDEC", truth.dec), ("OBJECT", truth.id_str),
                       ("COMMENT", "Mock MaNGA LOGCUBE simulated by specmorph.sky.manga, not an observation.")):
        primary.header[key] = value
    _, ny, nx = arrays["FLUX"].shape
    flux = fits.ImageHDU(arrays["FLUX"], name="FLUX")
    for key, value in (("BUNIT", "1E-17 erg/s/cm^2/Ang/spaxel"), ("CTYPE3", "WAVE-LOG"), ("CUNIT3", "Angstrom"),
                       ("CRPIX3", 1.0), ("CRVAL3", float(arrays["WAVE"][0])),
                       ("CD3_3", float(arrays["WAVE"][0] * np.log(10) * LOG_STEP)),  # FITS -LOG: λ0 exp(CD (p-1)/λ0)
                       ("CTYPE1", "RA---TAN"), ("CRPIX1", (nx + 1) / 2), ("CRVAL1", truth.ra), ("CD1_1", -0.5 / 3600),
                       ("CTYPE2", "DEC--TAN"), ("CRPIX2", (ny + 1) / 2), ("CRVAL2", truth.dec), ("CD2_2", 0.5 / 3600)):
        flux.header[key] = value
    hdul = fits.HDUList([primary, flux, fits.ImageHDU(arrays["IVAR"], name="IVAR"),
                         fits.ImageHDU(arrays["MASK"], name="MASK"), fits.ImageHDU(arrays["WAVE"], name="WAVE")])
    buf = io.BytesIO()
    hdul.writeto(buf)
    with atomic_file(path) as tmp:
        tmp.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1, mtime=0))


def write_drpall(path: str | Path, rows: pd.DataFrame) -> None:
    """Writes a DRPall-like summary table (FITS, extension MANGA, the real file's column names), atomically.

    Args:
        path: The table, e.g. data/raw/manga/drpall-v3_1_1.fits.
        rows: One row per plate-IFU with at least DRPALL_COLUMNS (plateifu, mangaid, objra, objdec, nsa_z,
            drp3qual); others (ifudesignsize, redsn2, ...) are written as they are.
    """
    missing = [c for c in DRPALL_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"write_drpall: column(s) {', '.join(missing)} missing")
    hdu = fits.table_to_hdu(Table.from_pandas(rows.reset_index(drop=True)))
    hdu.name = "MANGA"
    hdu.header["COMMENT"] = "Mock DRPall table simulated by specmorph.sky.manga, not MaNGA data."
    with atomic_file(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)


@dataclass(frozen=True)
class MangaGalaxy:
    """One mock MaNGA galaxy: its truth (`id_str` is the plate-IFU of the observation kept), ID and bundle."""

    truth: GalaxyTruth
    mangaid: str
    bundle: int  # fibres


def bundle_for(g: GalaxyTruth) -> int:
    """The smallest bundle whose hexagon spans 3 half-light radii (MaNGA's Primary sample: out to 1.5 Re)."""
    return next((n for n, width in BUNDLES.items() if width >= 3 * half_light(g)), max(BUNDLES))


def manga_sample(rng: np.random.Generator, n: int, footprint_fraction: float) -> list[MangaGalaxy]:
    """Draws a MaNGA-like cube sample inside the GZ2 footprint (MaNGA targets come from the SDSS imaging).

    Types follow the eCALIFA mix and redshifts the CALIFA distribution of each type (MaNGA's median
    z ≈ 0.03 is close; its flat stellar-mass selection is not modelled). Each galaxy is named by the
    plate-IFU of its observation, `<10000 + i>-<fibres>01`, and has MaNGA ID `1-<100000 + i>`.
    """
    out = []
    for i, g in enumerate(typed_sample(rng, [""] * n, gz2_ra_window(footprint_fraction))):
        fibres = bundle_for(g)  # the bundle, and so the plate-IFU, follow from the drawn galaxy
        out.append(MangaGalaxy(replace(g, id_str=f"{10001 + i}-{fibres}01"), f"1-{100001 + i}", fibres))
    return out


def drpall_rows(rng: np.random.Generator, sample: list[MangaGalaxy]) -> pd.DataFrame:
    """The DRPall table of a mock sample: each kept observation, plus repeat and critical ones to be dropped.

    A REPEAT_FRACTION of the galaxies gets a second, lower-S/N plate-IFU (plate `2xxxx`), and a
    CRITICAL_FRACTION of them a further one flagged DRP3QUAL CRITICAL; `io.manga.select_drpall` keeps
    the observation each galaxy's cube is written for.
    """
    rows = []
    for k, m in enumerate(sample):
        g, plate_ifu = m.truth, m.truth.id_str
        ifu = plate_ifu.split("-")[1]
        base = {"mangaid": m.mangaid, "objra": g.ra, "objdec": g.dec, "ifura": g.ra, "ifudec": g.dec,
                "nsa_z": g.redshift, "ifudesignsize": m.bundle}
        rows.append({"plateifu": plate_ifu, **base, "drp3qual": 0, "redsn2": float(rng.uniform(20, 60))})
        if rng.uniform() < REPEAT_FRACTION:
            rows.append({"plateifu": f"{20001 + k}-{ifu}", **base, "drp3qual": 0, "redsn2": float(rng.uniform(2, 19))})
        if rng.uniform() < CRITICAL_FRACTION:
            rows.append({"plateifu": f"{30001 + k}-{ifu}", **base, "drp3qual": CRITICAL, "redsn2": 80.0})
    return pd.DataFrame(rows)


def gz2_entries(rng: np.random.Generator, sample: list[MangaGalaxy], taken: set[int]) -> list[Gz2Entry]:
    """GZ2 catalogue rows of the MaNGA galaxies (every one is in the footprint), with new unique objids."""
    ids = [int(i) for i in make_dr7objid(rng, len(sample) + len(taken)) if int(i) not in taken][:len(sample)]
    entries = []
    for objid, m in zip(ids, sample, strict=True):
        ra, dec = offset_position(m.truth.ra, m.truth.dec, abs(rng.normal(0, ASTROMETRIC_JITTER)),
                                  rng.uniform(0, 2 * np.pi))
        entries.append(Gz2Entry(objid, replace(m.truth, ra=ra, dec=dec), m.truth.id_str, m.truth.id_str, False))
    return entries
