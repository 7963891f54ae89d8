"""Mock eCALIFA V500 datacubes: spaxel-resolved spectra of one GalaxyTruth, written as real-format FITS.

Geometry and kinematics conventions (1 arcsec spaxels, numpy axes (wavelength, y, x)): +y is north
and +x is west (CDELT1 < 0, so RA falls with x). The galaxy sits at spaxel (nx // 2, ny // 2).
Position angles are east of north; the disc's major axis points towards `pa`, and the side of
the major axis in the direction `pa` is the receding one (positive line-of-sight velocity).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.ndimage import gaussian_filter
from scipy.special import gammainc

from specmorph.io.atomic import atomic_file
from specmorph.sky import spectra
from specmorph.sky.truth import GalaxyTruth

log = logging.getLogger(__name__)

C_KMS = spectra.C_KMS
CRVAL3, CDELT3 = 3749.0, 2.0  # Å, the V500 grid of eCALIFA cubes (integ_3D.fits header)
INST_FWHM = 6.0  # Å, V500 resolution (header PIPE SPEC RES)
SEEING_FWHM = 2.5  # arcsec, typical CALIFA cube PSF (Sánchez et al. 2016)
R_BAND = 6200.0  # Å, effective wavelength of SDSS r
AB_ZERO_JY = 3631.0  # Jy, AB zero point
FLUX_UNIT = 1e-16  # erg/s/cm²/Å, BUNIT of CALIFA cubes
DV_BIN = 5.0  # km/s, velocity-bin width for shifting spectra
PAD = 4  # spaxels of margin so the seeing kernel sees light from beyond the field
LANE_AV = 2.0  # mag, extra V attenuation behind the mid-plane dust lane of edge-on discs
YOUNG_AGE = 0.2  # Gyr, the young component of discs
BAD_ERROR = 1e10  # ERROR given to bad spaxel-channels (flux 0), so 1/σ² weights vanish
# Noise model, in 1e-16 erg/s/cm²/Å per spaxel and per 2 Å channel: σ² = κ (f + sky)/T + (r/T)².
# κ and r give S/N ≈ 30 per channel at f = 1, the central continuum of NGC4047 (Pipe3D
# medflx_ssp ≈ 1.0), and S/N of a few at f ≈ 0.1 (its 15-20" ring), as in CALIFA V500.
NOISE_KAPPA = 1e-3
READ_SIGMA = 0.01
SKY_CONT = 0.12  # 21.2 V mag/arcsec² (header PIPE SKY MEAN 21.24) in 1e-16 erg/s/cm²/Å/arcsec²
# Night-sky lines at Calar Alto (Å, peak relative to the sky continuum at 6 Å FWHM).
SKY_LINES = ((4358.3, 1.5), (5460.7, 1.5), (5577.3, 20.0), (5890.0, 2.0), (5895.9, 1.5),
             (6300.3, 6.0), (6363.8, 2.0), (6498.7, 1.5), (6553.6, 1.5), (6863.9, 3.0),
             (6923.2, 2.0), (7276.4, 3.0), (7316.3, 4.0), (7340.9, 4.0), (7369.2, 3.0), (7401.7, 2.0))
BAD_WINDOWS = ((5573.0, 5582.0),)  # Å, channels flagged everywhere: [OI]5577 sky residuals
COSMIC_RATE = 2e-5  # fraction of spaxel-channels hit by unremoved cosmic rays (flagged)
# Positive control of the ablation (issue 16, `sky.spectral_information`): a ripple across the
# spectrum whose shape names the galaxy's 8-class label, at most this fraction of the flux at
# strength 1. Deliberately unphysical, and in the cubes only (no image shows it): then spectra tell
# apart what the RGB images confuse, and the ablation must find a gain.
TAG_AMPLITUDE = 0.1


def wavelengths(n_wave: int) -> np.ndarray:
    """Observed air wavelengths (Å) of the V500 channels: 3749 + 2 k."""
    return CRVAL3 + CDELT3 * np.arange(n_wave)


def class_tag(label: int, wave: np.ndarray, strength: float) -> np.ndarray:
    """The factor (n,) that writes class `label` into a spectrum on `wave` (Å), at `strength` in [0, 1].

    Class k's factor is 1 + strength · TAG_AMPLITUDE · mean_j(s_j cos(π j x)), j = 1, 2, 3, over x = 0..1
    across the V500 range, with signs s_j = ±1 from the bits of k: the 8 classes get 8 distinct
    shapes, smooth on scales of ≥ 1250 Å, so the observed-frame spectra (and their PCA) keep them.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"class_tag: strength must be in [0, 1], got {strength}")
    x = (np.asarray(wave, np.float64) - CRVAL3) / (CDELT3 * 1876)
    signs = [1.0 if (label >> j) & 1 else -1.0 for j in range(3)]
    ripple = sum(s * np.cos(np.pi * (j + 1) * x) for j, s in enumerate(signs)) / 3
    return 1.0 + strength * TAG_AMPLITUDE * ripple


def _stellar(wave: np.ndarray, age: float, sigma: float, inst: float) -> np.ndarray:
    """A population of light-weighted age `age` (Gyr): old, or old + young when younger than 1.5 Gyr."""
    age = max(age, YOUNG_AGE)
    f_young = float(np.clip(np.log(1.5 / age) / np.log(1.5 / YOUNG_AGE), 0.0, 1.0))  # log-age weighting
    old = spectra.old_population(wave, max(age, 1.5), sigma, inst)
    if f_young == 0:
        return old
    return (1 - f_young) * old + f_young * spectra.young_population(wave, YOUNG_AGE, sigma, inst)


def _disc_old_age(g: GalaxyTruth) -> float:
    """Age (Gyr) of the old component of a disc: at least the bulge's, and never younger than 3 Gyr."""
    return max(g.age_bulge, g.age_disc, 3.0)


def _templates(g: GalaxyTruth, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame component spectra on `wave`, each 1 at observed r (before the lane's extinction).

    Returns:
        (6, n) templates: bulge, disc old, disc young, the two disc ones behind the dust lane, and
        the emission lines (attenuated Hα flux = 1); (5,) pseudo-continua at Hα of the stellar
        ones.
    """
    z = g.redshift
    inst = INST_FWHM / 2.3548 / (1 + z)  # Å, rest-frame instrumental σ
    probe = np.array([R_BAND / (1 + z), 6520.0, 6610.0])  # Å: r band, Hα pseudo-continuum
    full = np.concatenate([wave, probe])
    disc = g.disc_h > 0 and g.bulge_frac < 1
    av_bulge = 0.5 * g.av if disc else g.av  # a bulge is seen partly through its disc
    disc_sigma = float(np.clip(0.5 * g.sigma, 20.0, 60.0))  # km/s, disc stars are dynamically cold
    # A galaxy with no disc (E, BCD) has one population, of the galaxy's light-weighted age.
    bulge_age = g.age_bulge if disc else min(g.age_bulge, g.age_disc)
    bulge = _stellar(full, bulge_age, g.sigma, inst) * spectra.dust_attenuation(full, av_bulge)
    old = spectra.old_population(full, _disc_old_age(g), disc_sigma, inst) * spectra.dust_attenuation(full, g.av)
    young = spectra.young_population(full, YOUNG_AGE, disc_sigma, inst) * spectra.dust_attenuation(full, g.av)
    stars = np.stack([bulge, old, young])
    stars /= stars[:, -3:-2]  # 1 at observed r
    lane = stars[1:] * spectra.dust_attenuation(full, LANE_AV)
    gas_sigma = 25.0 if disc else float(np.clip(0.6 * g.sigma, 40.0, 200.0))  # km/s
    av_gas = g.av / spectra.STELLAR_GAS_AV
    lines = spectra.emission_lines(full, 1.0, g.log_nii_ha, g.log_oiii_hb, gas_sigma, inst, av_gas)
    lines /= spectra.dust_attenuation(np.array([spectra.LINES["Halpha"]]), av_gas)[0]
    comps = np.concatenate([stars, lane, lines[None]])  # (6, n + 3)
    return comps[:, : len(wave)], comps[:5, -2:].mean(axis=1)


def _maps(g: GalaxyTruth, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-spaxel r-band flux of each component and its line-of-sight velocity, on the padded grid.

    Returns:
        (6, nyp, nxp) weights in 1e-16 erg/s/cm²/Å at observed r (emission: Hα EW × continuum)
        and (6, nyp, nxp) velocities relative to systemic, km/s.
    """
    nyp, nxp = ny + 2 * PAD, nx + 2 * PAD
    sub = (np.arange(4) - 1.5) / 4.0  # 4×4 sub-spaxel sampling of the light profiles
    yy = np.arange(nyp)[:, None, None, None] - (ny // 2 + PAD) + sub[None, None, :, None]
    xx = np.arange(nxp)[None, :, None, None] - (nx // 2 + PAD) + sub[None, None, None, :]
    pa = np.radians(g.pa)
    east, north = -xx, yy  # arcsec
    s4 = east * np.sin(pa) + north * np.cos(pa)  # (nyp, nxp, 4, 4) along the major axis, towards PA
    t4 = -east * np.cos(pa) + north * np.sin(pa)  # along the minor axis
    s, t = s4.mean(axis=(2, 3)), t4.mean(axis=(2, 3))  # (nyp, nxp) spaxel centres
    total = AB_ZERO_JY * 1e-23 * 10 ** (-0.4 * g.mag_r) * 2.998e18 / R_BAND**2 / FLUX_UNIT
    n, re, qb = g.bulge_n, max(g.bulge_re, 0.3), max(g.bulge_q, 0.05)
    b = 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)  # Ciotti & Bertin (1999)
    bulge = np.exp(-b * (np.hypot(s4, t4 / qb) / re) ** (1 / n)).mean(axis=(2, 3))
    # Sampling misses or overshoots a steep cusp: scale to the analytic Sérsic flux inside the grid.
    inside = gammainc(2 * n, b * (min(nyp, nxp) / 2 / re) ** (1 / n))
    bulge *= g.bulge_frac * total * inside / max(bulge.sum(), 1e-300)
    rb = np.hypot(s, t / qb)
    cos_b = s / (rb + 1e-9)
    weights, vel = np.zeros((6, nyp, nxp)), np.zeros((6, nyp, nxp))
    sin_i = np.sin(np.radians(g.inclination))
    if g.disc_h > 0 and g.bulge_frac < 1:
        h, qd = g.disc_h, max(g.disc_q, 0.05)
        i_0 = (1 - g.bulge_frac) * total / (2 * np.pi * qd * h**2)  # central surface brightness
        disc = i_0 * np.exp(-np.hypot(s4, t4 / qd) / h).mean(axis=(2, 3))
        rd = np.hypot(s, t / qd)
        arms = np.zeros_like(rd)
        if g.n_arms > 0:
            theta = np.arctan2(t / qd, s)
            wind = np.log(np.maximum(rd, 0.3) / h) / np.tan(np.radians(max(g.pitch, 3.0)))
            arms = g.arm_strength * np.cos(min(g.n_arms, 4) * (theta - wind)) * np.tanh(rd / h)
        old_age = _disc_old_age(g)
        # Young light fraction giving the light-weighted log age of the disc at Re, as Pipe3D's age_lwt.
        f_re = np.clip(np.log(old_age / g.age_disc) / np.log(old_age / YOUNG_AGE), 0.0, 0.95)
        f_young = np.clip(f_re * (0.6 + 0.4 * rd / (1.678 * h)) * (1 + 0.5 * arms), 0.0, 0.97)
        lane = g.dust_lane * sin_i**4 * np.exp(-0.5 * (t / max(0.1 * h, 0.5)) ** 2) * (np.abs(s) < 4 * h)
        weights[1] = disc * (1 - f_young) * (1 - lane)
        weights[2] = disc * f_young * (1 - lane)
        weights[3], weights[4] = disc * (1 - f_young) * lane, disc * f_young * lane
        v_gas = g.v_rot * np.tanh(rd / max(0.5 * h, 1.0)) * sin_i * s / (rd + 1e-9)
        vel[1:5] = 0.9 * v_gas  # asymmetric drift: disc stars lag the gas
        vel[5] = v_gas
        # Hα EW rises outwards (inside-out growth, cf. NGC4047) and peaks on the arms; it is 1 at Re.
        ew = g.ew_ha * (0.5 + 0.5 * np.tanh(rd / (1.5 * h))) / 0.9 * np.clip(1 + 1.5 * arms, 0.1, None)
        weights[5] = ew  # times the disc continuum at Hα, in build_cube
        vel[0] = 0.5 * g.v_rot * sin_i * np.tanh(rb / re) * cos_b  # bulges rotate, slower
    else:
        vel[0] = 0.2 * g.sigma * np.sqrt(1 - qb**2) * np.tanh(rb / re) * cos_b  # slow rotators
        vel[5] = vel[0]
        weights[5] = g.ew_ha * (0.5 + 0.5 * np.tanh(rb / re))  # diffuse retired-galaxy gas
    weights[0] = bulge
    return weights, vel


def _footprint(nx: int, ny: int) -> np.ndarray:
    """Bad-spaxel mask (ny, nx): outside the PPak hexagon (vertices left/right, flat top/bottom,
    scaled to the field as the 74"×64" hexagon fills a 78×73 cube) and a thin ring at its edge."""
    y = np.arange(ny)[:, None] - (ny - 1) / 2
    x = np.arange(nx)[None, :] - (nx - 1) / 2
    r_v = 0.96 * min(nx / 2, ny / np.sqrt(3))  # vertex radius, spaxels
    apothem = np.sqrt(3) / 2 * r_v
    edge_distance = np.minimum(apothem - np.abs(y), (np.sqrt(3) * r_v - np.sqrt(3) * np.abs(x) - np.abs(y)) / 2)
    return edge_distance < 0.7


def _noise_sigma(model: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """Per spaxel-channel σ (1e-16 erg/s/cm²/Å) of sky, read and source noise; model is (n_wave, ny, nx)."""
    throughput = np.exp(-(((wave - 5700.0) / 2600.0) ** 4)) / (1 + np.exp(-(wave - 3800.0) / 100.0))
    sky = SKY_CONT * (1 + sum(a * np.exp(-0.5 * ((wave - w) / (INST_FWHM / 2.3548)) ** 2) for w, a in SKY_LINES))
    kappa = (NOISE_KAPPA / throughput)[:, None, None].astype(np.float32)
    floor = (READ_SIGMA / throughput) ** 2 + NOISE_KAPPA * sky / throughput  # (n_wave,)
    return np.sqrt(kappa * np.maximum(model, 0) + floor[:, None, None].astype(np.float32))


def build_cube(truth: GalaxyTruth, n_wave: int = 1877, nx: int = 78, ny: int = 73,
               rng: np.random.Generator | None = None, spectral_information: float = 0.0,
               bad_windows: tuple[tuple[float, float], ...] = BAD_WINDOWS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Builds the V500 datacube of one galaxy: bulge + disc populations, gas, kinematics, seeing, noise.

    Each spaxel's spectrum is a sum of six rest-frame templates (bulge, old/young disc, both behind
    the dust lane, emission lines), each shifted by its own line-of-sight velocity; the shifted
    templates are precomputed on a 5 km/s velocity grid, so a spaxel costs one gather per template.

    Args:
        truth: the galaxy.
        n_wave: channels from 3749 Å in 2 Å steps.
        nx: spaxels along x (1 arcsec each).
        ny: spaxels along y.
        rng: noise generator; a fixed default seed when None.
        spectral_information: strength of the class tag (`class_tag`; 0: none, the default).
        bad_windows: wavelength ranges (Å) flagged in every spaxel: eCALIFA's (BAD_WINDOWS) by default;
            () for a MaNGA cube, whose pipeline leaves the [OI]5577 residuals in with their larger errors.

    Returns:
        flux (n_wave, ny, nx) float32 in 1e-16 erg/s/cm²/Å (0 where bad), error (same shape,
        float32, σ; BAD_ERROR where bad) and badpix (same shape, uint8, 1 = bad).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    g, z = truth, truth.redshift
    wave = wavelengths(n_wave)  # Å, observed
    weights, vel = _maps(g, nx, ny)
    v_lo, v_hi = vel.min() - DV_BIN, vel.max() + DV_BIN
    fine = np.arange(wave[0] / (1 + z) / (1 + v_hi / C_KMS) - 5, wave[-1] / (1 + z) / (1 + v_lo / C_KMS) + 5, 0.5)
    temps, ha_cont = _templates(g, fine)  # (6, n_fine)
    v_grid = np.arange(v_lo, v_hi + DV_BIN, DV_BIN)  # km/s
    pos = (wave[:, None] / ((1 + z) * (1 + v_grid[None, :] / C_KMS)) - fine[0]) / 0.5  # (n_wave, n_bins)
    i0 = np.clip(pos.astype(np.int64), 0, len(fine) - 2)
    frac = (pos - i0).astype(np.float32)
    shifted = temps[:, i0].astype(np.float32) * (1 - frac) + temps[:, i0 + 1].astype(np.float32) * frac
    bins = np.rint((vel - v_lo) / DV_BIN).astype(np.int64).reshape(6, -1)
    host = slice(1, 5) if weights[1:5].any() else slice(0, 1)  # continuum under the gas
    weights[5] *= np.tensordot(ha_cont[host], weights[host], axes=1)
    weights = weights.reshape(6, -1).astype(np.float32)
    model = np.zeros((n_wave, weights.shape[1]), dtype=np.float32)
    for c in np.flatnonzero(weights.any(axis=1)):
        part = np.take(shifted[c], bins[c], axis=1)  # (n_wave, n_spax)
        part *= weights[c]
        model += part
    model = model.reshape(n_wave, ny + 2 * PAD, nx + 2 * PAD)
    seeing = SEEING_FWHM / 2.3548  # spaxels
    model = gaussian_filter(model, (0, seeing, seeing), truncate=3.5)[:, PAD:PAD + ny, PAD:PAD + nx]
    if spectral_information > 0:
        model *= class_tag(g.label, wave, spectral_information).astype(np.float32)[:, None, None]
    error = _noise_sigma(model, wave)
    flux = model + error * rng.standard_normal(model.shape, dtype=np.float32)
    bad = np.zeros(model.shape, dtype=bool)
    bad[:, _footprint(nx, ny)] = True
    for lo, hi in bad_windows:
        bad[(wave >= lo) & (wave <= hi)] = True
    hits = rng.integers(0, bad.size, rng.poisson(COSMIC_RATE * bad.size))
    bad.reshape(-1)[hits] = True
    flux[bad] = 0.0
    error[bad] = BAD_ERROR
    return flux, error, bad.astype(np.uint8)


def white_light(flux: np.ndarray, badpix: np.ndarray) -> np.ndarray:
    """Mean flux over good channels of each spaxel, (ny, nx); NaN where no channel is good."""
    good = badpix == 0
    n = good.sum(axis=0)
    total = np.where(good, flux, 0).sum(axis=0, dtype=np.float64)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)


def central_spectrum(flux: np.ndarray, badpix: np.ndarray) -> np.ndarray:
    """Mean spectrum (n_wave,) of the good spaxels in the 3×3 box around the white-light peak."""
    white = white_light(flux, badpix)
    cy, cx = np.unravel_index(np.argmax(np.nan_to_num(white, nan=-np.inf)), white.shape)
    box = (slice(None), slice(max(cy - 1, 0), cy + 2), slice(max(cx - 1, 0), cx + 2))
    good = badpix[box] == 0
    n = good.sum(axis=(1, 2))
    total = np.where(good, flux[box], 0).sum(axis=(1, 2), dtype=np.float64)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)


def cube_header(truth: GalaxyTruth, shape: tuple[int, int, int]) -> fits.Header:
    """Primary header of a V500 rscube: spectral and celestial WCS plus CALIFA pipeline keywords."""
    _, ny, nx = shape
    h = fits.Header()
    digits = "".join(ch for ch in truth.id_str if ch.isdigit())
    cards = [
        ("OBJECT", truth.id_str, "Target object"), ("CALIFAID", int(digits[-9:] or 0), "CALIFAID of object"),
        ("RA", truth.ra, "[deg] galaxy centre"), ("DEC", truth.dec, "[deg] galaxy centre"),
        ("CTYPE1", "RA---TAN", ""), ("CUNIT1", "deg", ""), ("CRPIX1", float(nx // 2 + 1), ""),
        ("CRVAL1", truth.ra, ""), ("CDELT1", -1 / 3600, "1 arcsec spaxels"),
        ("CTYPE2", "DEC--TAN", ""), ("CUNIT2", "deg", ""), ("CRPIX2", float(ny // 2 + 1), ""),
        ("CRVAL2", truth.dec, ""), ("CDELT2", 1 / 3600, ""),
        ("CTYPE3", "AWAV", "air wavelength"), ("CUNIT3", "Angstrom", ""), ("CRPIX3", 1.0, ""),
        ("CRVAL3", CRVAL3, ""), ("CDELT3", CDELT3, ""), ("RADESYS", "ICRS", ""), ("EQUINOX", 2000.0, ""),
        ("BUNIT", "10**(-16) erg/(s cm2 Angstrom)", "flux unit"),
        ("OBJDESC", "GALAXY", "Object description"), ("INTRUME", "PMAS/PPAK", "Instrument"),
        ("HIERARCH PIPE VERS", "2.2", "Pipeline version"),
        ("HIERARCH PIPE UNITS", "1e-16erg/s/cm^2/A", "flux unit"),
        ("HIERARCH PIPE SPEC RES", INST_FWHM, "FWHM in A of spectral resolution"),
        ("HIERARCH PIPE SEEING", SEEING_FWHM, "[arcsec] FWHM of the PSF"),
        ("MED_VEL", C_KMS * truth.redshift, "measured systemic velocity (km/s)"),
        ("RMS_VEL", 20.0, "rms of systemic velocity (km/s)"),
        ("FILENAME", f"{truth.id_str}.V500.rscube.fits.gz", "File Name"),
    ]
    for key, value, comment in cards:
        h[key] = (value, comment)
    h["COMMENT"] = "Mock eCALIFA V500 cube simulated by specmorph.sky.cube, not an observation."
    return h


def quantise(flux: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rounds flux to multiples of σ/16 (to the nearest power of two) and σ to 8 significant bits.

    fpack-style lossy quantisation: the discarded flux bits are noise far below σ, σ keeps a
    relative precision of 0.2% (2-3 significant digits), and the zeroed low mantissa bits make
    the gzip-compressed file about 2× smaller.
    """
    step = np.exp2(np.rint(np.log2(np.maximum(error, 1e-30) / 16.0))).astype(np.float32)
    flux_q = (np.rint(flux / step) * step).astype(np.float32)
    bits = error.astype(np.float32).view(np.uint32)
    err_q = ((bits + np.uint32(1 << 14)) & np.uint32(0xFFFF8000)).view(np.float32)
    return flux_q, err_q


def write_cube(path: str | os.PathLike, truth: GalaxyTruth, flux: np.ndarray, error: np.ndarray,
               badpix: np.ndarray, compresslevel: int = 1) -> None:
    """Writes an eCALIFA-format `<name>.V500.rscube.fits.gz` atomically (temporary file + rename).

    Args:
        path: output path, ending .fits.gz.
        truth: the galaxy (OBJECT, WCS centre, MED_VEL).
        flux: (n_wave, ny, nx) 1e-16 erg/s/cm²/Å.
        error: (n_wave, ny, nx) σ, same units.
        badpix: (n_wave, ny, nx) 1 = bad.
        compresslevel: gzip level (1 = fastest).
    """
    path = Path(path)
    flux_q, err_q = quantise(flux, error)
    header = cube_header(truth, flux.shape)
    ext_wcs = {k: header[k] for k in header if k[:5] in ("CTYPE", "CUNIT", "CRPIX", "CRVAL", "CDELT")}
    hdul = fits.HDUList([
        fits.PrimaryHDU(flux_q, header=header),
        fits.ImageHDU(err_q, header=fits.Header(list(ext_wcs.items())), name="ERROR"),
        fits.ImageHDU(badpix.astype(np.uint8), header=fits.Header(list(ext_wcs.items())), name="BADPIX"),
    ])
    buf = io.BytesIO()
    hdul.writeto(buf)
    with atomic_file(path) as tmp:
        tmp.write_bytes(gzip.compress(buf.getvalue(), compresslevel=compresslevel, mtime=0))
    log.debug("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
