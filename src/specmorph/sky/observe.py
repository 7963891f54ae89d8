"""SDSS-like observation of a model image: PSF, field stars and neighbours, sky noise, asinh RGB JPEG."""

from __future__ import annotations

import io
import math

import numpy as np
from astropy.visualization import make_lupton_rgb
from PIL import Image
from scipy.signal import fftconvolve

from specmorph.sky.render import band_ratios, deposit, nanomaggies, render_model_gri, sersic_sb
from specmorph.sky.truth import GalaxyTruth

SDSS_PIXSCALE = 0.396  # arcsec/px, native SDSS imaging
# Photometric calibration of an SDSS frame, g, r, i. NMGYPERCOUNT: typical values of the DR8+ frame
# headers (0.0038, 0.0051, 0.0066 nmgy/ADU, i.e. 1 nmgy ~ 260, 196, 152 ADU in 53.907 s);
# gains: typical SDSS camera values (3.3-4.0, 4.7, 4.6-5.2 e-/ADU by camcol; Gunn et al. 1998).
NMGY_PER_COUNT = np.array([0.0038, 0.0051, 0.0066])
GAIN = np.array([3.8, 4.7, 5.0])  # e-/ADU
# Dark-sky brightness (AB mag/arcsec²) of SDSS DR7 imaging, g, r, i (median of the survey fields).
SKY_MAG = (21.9, 20.9, 20.3)
SKY_NMGY_PER_ARCSEC2 = tuple(round(nanomaggies(m), 3) for m in SKY_MAG)  # (1.738, 4.365, 7.586)
SEEING_BAND = np.array([1.05, 1.0, 0.96])  # FWHM_b / FWHM_r: seeing ∝ λ^-0.2 at 4770, 6231, 7625 Å
MOFFAT_BETA = 2.5  # SDSS PSF wings are close to a β ≈ 2.5 Moffat
# Field objects at high Galactic latitude, per arcmin²: stars with 14 < r < 22.5 (~0.7-0.8, Juric et al.
# 2008 at |b| ~ 50°); faint galaxies with 17.5 < r < 23. The galaxies' rate is an effective one, set so
# that the number of sources detected in a cutout (realism.stats `n_sources`, 5 sigma) matches its
# distribution in ../shared/data/real_dev (median ~20): it stands in for the real counts' faint end,
# clustering and the companions of the target, which the mock does not model one by one.
STARS_PER_ARCMIN2 = 0.8
GALAXIES_PER_ARCMIN2 = 35.0
GALAXY_MAGS = (17.5, 23.0)  # r, the faint field galaxies' range
GALAXY_COUNT_SLOPE = 0.4  # dex per mag: dN/dm ∝ 10^(slope m)
FAINT_RE = 0.5  # arcsec, median half-light radius of the faint galaxies at r = 20 (smaller when fainter)
# Diffraction spikes of bright stars (`add_spikes`): r brighter than SPIKE_MAG, SPIKE_FRACTION of the light
# in a cross of SPIKE_LENGTH arcsec e-folding arms (at r = 14) and SPIKE_WIDTH arcsec width, as seen on the
# bright stars of ../shared/data/sdss_examples and real_dev (spikes reach ~10-20" from a 13-14 mag star).
# The cross follows the scan direction of the frame, at any angle to north in the north-up cutouts.
SPIKE_MAG = 16.0
SPIKE_FRACTION = 0.01
SPIKE_LENGTH = 4.0  # arcsec
SPIKE_WIDTH = 0.4  # arcsec
# Lupton et al. (2004) asinh colour mapping. First calibrated on the Galaxy Zoo JPEGs in
# shared/data/sdss_examples (tools/compare_real_mock.py), then on the distributions of sky level, sky
# noise and colour per coarse class in ../shared/data/real_dev (realism.stats; the realism stage).
# i set by the real dev cutouts' r-i-like colour (realism.stats `colour_ri`, -2.5 log10 F_green / F_red):
# at 1.0 the mock's galaxies were 0.04-0.12 mag bluer in it than the real ones of each class.
RGB_SCALES = (1.88, 1.24, 1.08)  # multipliers of g (-> blue), r (-> green), i (-> red)
RGB_Q = 6.0  # asinh softening: sets the galaxies' central grey levels (real dev medians ~140-160 of 255)
RGB_STRETCH = 0.9  # 1/nmgy per native pixel: linear gain of the faint end, sets the sky noise (~2.9/255)
RGB_GAIN = 1.0  # multiplier of the whole asinh curve: with q, sets how bright the outskirts are against the centre
RGB_OFFSET = 0.0025  # nmgy per native pixel added to every band before the stretch: the dark grey sky
# Real cutouts show grey-brown sky noise, not independent colour speckle: below a few sky sigmas the
# colour fades to this sky tint (R, G, B relative to the intensity; real sky median is (4, 4, 2)/255).
SKY_TINT = (1.2, 1.2, 0.6)  # mean 1: the tint keeps the intensity that sets the stretch
# Intensity (scaled nmgy per native pixel) where colour is half faded to the tint. At 0.06 the faint outskirts of
# galaxies took the tint too and came out redder than their centres, where real galaxies' outskirts are bluer
# (realism.stats `colour_gradient`, real dev medians -0.06 to -0.10 mag per class).
GREY_BELOW = 0.03
# Colour saturation about the intensity (1: the plain Lupton et al. mix, which the real colours match).
RGB_SATURATION = 1.0
# Field-to-field scatter of real cutouts (natural-log std of the factor unless stated), calibrated on the
# distributions of sky level, sky noise and colour of ../shared/data/real_dev (realism.stats): the sky
# brightness varies with moon, airmass and season, the JPEGs' grey sky offset and colour balance with
# the frame's sky subtraction and calibration.
SKY_MAG_SCATTER = 0.4  # mag, the same in g, r, i
OFFSET_SCATTER = 0.5  # RGB_OFFSET
STRETCH_SCATTER = 0.1  # RGB_STRETCH
# Each of RGB_SCALES, independently, g, r, i: the real cutouts' colour scatter within a class is mostly in
# blue vs green (std of ln(B/G) 0.15-0.23), little in green vs red (ln(R/G) 0.08-0.10); one 0.12 for all
# three bands gave the mock twice the real spread in colour_ri (KS 0.3-0.4).
COLOUR_SCATTER = (0.17, 0.05, 0.05)
# Correlation of the sky noise, Gaussian std in native pixels (`_unit_noise`): set so that the noise's
# autocorrelation at lags of 1-4 px matches the real dev cutouts' border strips (~0.95, 0.85, 0.6).
NOISE_SMOOTH = 0.5
JPEG_QUALITY = 75  # the real SDSS/Galaxy Zoo JPEGs use the standard tables at 50% (quality 75), 4:2:0


def moffat_kernel(fwhm: float, pixscale: float, beta: float = MOFFAT_BETA) -> np.ndarray:
    """Unit-sum Moffat PSF image (odd side, out to ~4 FWHM) for a FWHM in arcsec."""
    alpha = fwhm / pixscale / (2 * math.sqrt(2 ** (1 / beta) - 1))  # px
    half = max(math.ceil(4 * fwhm / pixscale), 2)
    ax = np.arange(-half, half + 1, dtype=np.float64)
    r2 = ax[None, :] ** 2 + ax[:, None] ** 2
    k = np.where(r2 <= half * half, (1 + r2 / alpha**2) ** -beta, 0)
    return (k / k.sum()).astype(np.float64)


def _stellar_colour(rng: np.random.Generator, n: int) -> np.ndarray:
    """g-r of field stars: ~60% halo turn-off stars (g-r ~ 0.3) and ~40% M dwarfs (g-r ~ 1.4)."""
    blue = rng.uniform(size=n) < 0.6
    return np.where(blue, rng.normal(0.35, 0.12, n), rng.uniform(1.1, 1.5, n))


def _star_ratios(g_r: np.ndarray) -> np.ndarray:
    """(n, 3) g, r, i flux relative to r along the stellar locus (r-i rises steeply for M dwarfs)."""
    r_i = np.where(g_r < 1.1, 0.38 * g_r, 0.42 + 2.6 * (g_r - 1.1))
    return np.stack([10 ** (-0.4 * g_r), np.ones_like(g_r), 10 ** (0.4 * r_i)], 1)


def _power_law_mags(rng: np.random.Generator, n: int, lo: float, hi: float, slope: float) -> np.ndarray:
    """Magnitudes with dN/dm ∝ 10^(slope m) on [lo, hi] (inverse CDF)."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.uniform(size=n) * (b - a)) / slope


def add_field(img: np.ndarray, pixscale: float, rng: np.random.Generator, n_stars_per_arcmin2: float,
              n_galaxies_per_arcmin2: float, neighbour_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Adds field stars (points), faint galaxies and sometimes a neighbour (Sérsic stamps), before the PSF.

    Returns:
        The stars' positions (K, 2: column, row) px and g, r, i fluxes (K, 3) nmgy (for their spikes).
    """
    _, h, w = img.shape
    area = h * w * (pixscale / 60) ** 2  # arcmin²
    n = rng.poisson(n_stars_per_arcmin2 * area)
    mags = _power_law_mags(rng, n, 14.0, 22.5, 0.15)
    xy = rng.uniform(0, 1, (n, 2)) * [w - 1, h - 1]
    star_flux = nanomaggies(1.0) * 10 ** (-0.4 * mags)[:, None] * _star_ratios(_stellar_colour(rng, n))
    deposit(img, xy, star_flux)
    n_gal = rng.poisson(n_galaxies_per_arcmin2 * area)
    gal_mags = _power_law_mags(rng, n_gal, *GALAXY_MAGS, GALAXY_COUNT_SLOPE)
    far = rng.uniform(size=n_gal) < 0.5  # distant red early types (g-r ~ 1.2 at z ~ 0.3) or blue discs
    gal_gr = np.where(far, rng.normal(1.2, 0.2, n_gal), rng.normal(0.55, 0.15, n_gal))
    gal_re = np.clip(rng.lognormal(math.log(FAINT_RE), 0.35, n_gal) * 10 ** (-0.12 * (gal_mags - 20)), 0.2, 4.0)
    for i in range(n_gal):
        _add_sersic(img, rng.uniform(0, w - 1), rng.uniform(0, h - 1), nanomaggies(gal_mags[i]),
                    band_ratios(gal_gr[i]), gal_re[i], 4.0 if far[i] else 1.0, rng.uniform(0.3, 1.0),
                    rng.uniform(0, math.pi), pixscale)
    if rng.uniform() < neighbour_prob:  # a brighter, resolved neighbour away from the target
        ang, rad = rng.uniform(0, 2 * math.pi), rng.uniform(0.22, 0.48) * min(h, w)
        mag = rng.uniform(16.0, 19.0)
        _add_sersic(img, (w - 1) / 2 + rad * math.cos(ang), (h - 1) / 2 + rad * math.sin(ang), nanomaggies(mag),
                    band_ratios(rng.uniform(0.4, 0.9)), 1.5 * 10 ** (-0.2 * (mag - 17)) * rng.lognormal(0, 0.3),
                    float(rng.choice([1.0, 4.0])), rng.uniform(0.3, 1.0), rng.uniform(0, math.pi), pixscale)
    return xy, star_flux


def _add_sersic(img: np.ndarray, col: float, row: float, flux: float, ratios: np.ndarray, re: float, n: float,
                q: float, pa: float, pixscale: float) -> None:
    """Adds a small Sérsic galaxy on a stamp (flux in nmgy, re in arcsec, pa in rad)."""
    _, h, w = img.shape
    half = int(min(6 * re / pixscale + 2, 80))
    c0, r0 = round(col), round(row)
    lo_c, hi_c, lo_r, hi_r = max(c0 - half, 0), min(c0 + half + 1, w), max(r0 - half, 0), min(r0 + half + 1, h)
    if hi_c <= lo_c or hi_r <= lo_r:
        return
    x = ((col - np.arange(lo_c, hi_c)) * pixscale)[None, :]  # arcsec, east
    y = ((row - np.arange(lo_r, hi_r)) * pixscale)[:, None]  # arcsec, north
    u, v = x * math.sin(pa) + y * math.cos(pa), -x * math.cos(pa) + y * math.sin(pa)
    stamp = sersic_sb(u, v, n, re, q) * (flux * pixscale**2)
    img[:, lo_r:hi_r, lo_c:hi_c] += ratios[:, None, None] * stamp[None]


def _add_bright_star(img: np.ndarray, rng: np.random.Generator, pixscale: float, fwhm: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A saturated 9-13 mag star at or beyond the field's edge: Moffat core, r^-2.5 aureole, E-W bleed trail.

    Added after the PSF (it is its own PSF), per band with FWHM `fwhm` (3,) arcsec; its spikes are left
    to `add_spikes`.

    Returns:
        Its position (2,: column, row) px and g, r, i flux (3,) nmgy.
    """
    _, h, w = img.shape
    t, out = rng.uniform(0, 1), rng.uniform(-0.05, 0.1) * min(h, w)  # out: px beyond the edge
    col, row = [(t * w, -out), (t * w, h + out), (-out, t * h), (w + out, t * h)][rng.integers(4)]
    flux = nanomaggies(rng.uniform(9.0, 13.0)) * _star_ratios(_stellar_colour(rng, 1))[0]  # (3,) nmgy
    x = ((np.arange(w) - col) * pixscale).astype(np.float64)[None, :]  # arcsec
    y = ((np.arange(h) - row) * pixscale).astype(np.float64)[:, None]
    r2 = x * x + y * y
    aureole = 0.02 / (16 * math.pi) * (1 + r2 / 4.0) ** -1.25  # 1/arcsec², 2% of the light, 2" core
    trail = 3e-4 * np.exp(-0.5 * (y / 0.3) ** 2 - np.abs(x) / (5.0 + 15.0 * math.sqrt(flux[1] / 1e5)))
    for b in range(3):
        alpha = fwhm[b] / (2 * math.sqrt(2 ** (1 / MOFFAT_BETA) - 1))  # arcsec
        core = (MOFFAT_BETA - 1) / (math.pi * alpha**2) * (1 + r2 / alpha**2) ** -MOFFAT_BETA
        img[b] += flux[b] * pixscale**2 * (0.98 * core + aureole + trail)
    return np.array([col, row], np.float64), flux


def add_spikes(img: np.ndarray, xy: np.ndarray, flux: np.ndarray, pixscale: float, angle: float) -> None:
    """Adds the diffraction spikes of the stars brighter than SPIKE_MAG (r), after the PSF.

    The secondary mirror's four-vane spider makes a cross of SPIKE_FRACTION of the star's light, along
    the frame's rows and columns (`angle` rad from the cutout's axes): each arm falls off exponentially,
    with a length growing as the square root of the flux (SPIKE_LENGTH arcsec at r = 14), and has a
    Gaussian width SPIKE_WIDTH arcsec.

    Args:
        img: (3, H, W) flux per pixel, nmgy, modified in place.
        xy: (K, 2) star positions, column and row, px.
        flux: (K, 3) g, r, i fluxes, nmgy.
        pixscale: arcsec/px.
        angle: rad, rotation of the cross.
    """
    _, h, w = img.shape
    bright = flux[:, 1] > nanomaggies(SPIKE_MAG)
    ca, sa = math.cos(angle), math.sin(angle)
    for (col, row), f in zip(xy[bright], flux[bright], strict=True):
        length = SPIKE_LENGTH * math.sqrt(f[1] / nanomaggies(14.0)) / pixscale  # px, e-folding length
        half = int(min(5 * length, max(h, w)))
        lo_c, hi_c = max(int(col) - half, 0), min(int(col) + half + 1, w)
        lo_r, hi_r = max(int(row) - half, 0), min(int(row) + half + 1, h)
        if hi_c <= lo_c or hi_r <= lo_r:
            continue
        dx, dy = np.arange(lo_c, hi_c)[None, :] - col, np.arange(lo_r, hi_r)[:, None] - row
        u, v = dx * ca + dy * sa, -dx * sa + dy * ca  # px, along the two vanes
        wid = SPIKE_WIDTH / pixscale
        cross = (np.exp(-np.abs(u) / length - 0.5 * (v / wid) ** 2)
                 + np.exp(-np.abs(v) / length - 0.5 * (u / wid) ** 2))
        norm = 4 * length * wid * math.sqrt(2 * math.pi)  # sum of the cross over the plane
        img[:, lo_r:hi_r, lo_c:hi_c] += (SPIKE_FRACTION * f / norm)[:, None, None] * cross[None]


def _noise_matrix(n_out: int, n_in: int, step: float, sigma: float) -> np.ndarray:
    """(n_out, n_in) weights from a coarse grid of spacing `step` output px, centred, to the output pixels.

    Each output pixel is a Gaussian-weighted (std `sigma` coarse px) sum of the coarse values, the
    weights of a row normalised to unit sum of squares: the noise per pixel keeps a native pixel's
    variance, and only its correlation changes.
    """
    pos = (np.arange(n_out) - (n_out - 1) / 2) / step + (n_in - 1) / 2  # (n_out,) in coarse px
    m = np.exp(-0.5 * ((pos[:, None] - np.arange(n_in)[None, :]) / sigma) ** 2)
    return m / np.sqrt((m * m).sum(axis=1, keepdims=True))


def _unit_noise(rng: np.random.Generator, h: int, w: int, pixscale: float) -> np.ndarray:
    """(3, h, w) N(0, 1) noise of native SDSS pixels, resampled smoothly (`_noise_matrix`) to the image's scale.

    The real cutouts' sky noise is correlated over NOISE_SMOOTH native pixels: the archive's resampling
    of the frames to the cutout scale and the JPEG compression smooth it.
    """
    step = SDSS_PIXSCALE / pixscale  # output px per native px
    pad = math.ceil(3 * NOISE_SMOOTH) + 1
    nh, nw = math.ceil(h / step) + 2 * pad, math.ceil(w / step) + 2 * pad
    coarse = rng.standard_normal((3, nh, nw), dtype=np.float32).astype(np.float64)
    my, mx = _noise_matrix(h, nh, step, NOISE_SMOOTH), _noise_matrix(w, nw, step, NOISE_SMOOTH)
    return np.einsum("ij,bjk,lk->bil", my, coarse, mx, optimize=True)


def observe_sdss(model_gri: np.ndarray, pixscale: float, rng: np.random.Generator, seeing_fwhm: float = 1.4,
                 sky_nmgy_per_arcsec2: tuple[float, float, float] = SKY_NMGY_PER_ARCSEC2,
                 n_stars_per_arcmin2: float = STARS_PER_ARCMIN2, n_galaxies_per_arcmin2: float = GALAXIES_PER_ARCMIN2,
                 neighbour_prob: float = 0.25, bright_star_prob: float = 0.04) -> np.ndarray:
    """Observes a model image as an SDSS frame: field objects, PSF, sky Poisson noise, sky subtracted.

    Args:
        model_gri: (3, H, W) noiseless g, r, i flux per pixel, nmgy.
        pixscale: arcsec/px of the image (noise is drawn on native 0.396" pixels and resampled).
        rng: Random generator.
        seeing_fwhm: r-band PSF FWHM, arcsec (g 5% wider, i 4% narrower).
        sky_nmgy_per_arcsec2: Sky surface brightness in g, r, i.
        n_stars_per_arcmin2: Field stars with 14 < r < 22.5.
        n_galaxies_per_arcmin2: Faint field galaxies with 17.5 < r < 23.
        neighbour_prob: Probability of a brighter resolved neighbour galaxy in the field.
        bright_star_prob: Probability of a saturated star at the field's edge.

    Returns:
        (3, H, W) float64 sky-subtracted flux per pixel, nmgy.
    """
    img = model_gri.astype(np.float64, copy=True)
    star_xy, star_flux = add_field(img, pixscale, rng, n_stars_per_arcmin2, n_galaxies_per_arcmin2, neighbour_prob)
    _, h, w = img.shape
    area = (pixscale / SDSS_PIXSCALE) ** 2  # output pixel / native pixel
    noise = _unit_noise(rng, h, w, pixscale)
    out = np.empty_like(img)
    fwhm = seeing_fwhm * SEEING_BAND  # (3,) arcsec
    for b in range(3):
        out[b] = fftconvolve(img[b], moffat_kernel(fwhm[b], pixscale), mode="same")
    spike_angle = rng.uniform(0, math.pi / 2)
    if rng.uniform() < bright_star_prob:
        col_row, flux = _add_bright_star(out, rng, pixscale, fwhm)
        star_xy, star_flux = np.vstack([star_xy, col_row[None]]), np.vstack([star_flux, flux[None]])
    add_spikes(out, star_xy, star_flux, pixscale, spike_angle)
    for b in range(3):
        sky = sky_nmgy_per_arcsec2[b] * SDSS_PIXSCALE**2  # nmgy per native pixel
        var = (sky + np.maximum(out[b], 0) / area) * (NMGY_PER_COUNT[b] / GAIN[b])  # nmgy² per native pixel
        out[b] += np.sqrt(var) * noise[b] * area
    return out


def sdss_rgb(gri: np.ndarray, pixscale: float = SDSS_PIXSCALE, scales: tuple[float, float, float] = RGB_SCALES,
             q: float = RGB_Q, stretch: float = RGB_STRETCH, offset: float = RGB_OFFSET,
             saturation: float = RGB_SATURATION, gain: float = RGB_GAIN) -> np.ndarray:
    """Lupton et al. (2004) asinh colour image, i -> red, r -> green, g -> blue, as SDSS JPEG cutouts.

    The mix is astropy's `make_lupton_rgb` (as in `remote.frames`), fed bands that first get the
    survey's scales, grey sky offset and faint-end sky tint. Its stretch f(I) = asinh(I Q'/s) a(Q')
    with a(Q') = 0.1 / asinh(0.1 Q') is the curve gain asinh(stretch q I) / q of the calibration when
    Q' = 10 sinh(q / (10 gain)) and s = Q' / (stretch q).

    Args:
        gri: (3, H, W) g, r, i flux per pixel, nmgy.
        pixscale: arcsec/px of `gri`; brightness is set per native SDSS pixel, so zoomed cutouts
            keep the look of the survey (as SDSS cutouts resampled from the same frames do).
        scales: Multipliers of g, r, i before mixing.
        q: asinh softening parameter.
        stretch: Linear gain at the faint end, per nmgy per native pixel.
        offset: Added to every band before the stretch (a slightly grey sky).
        saturation: Colour spread about the intensity (1 = plain Lupton et al. mix).
        gain: Multiplier of the whole curve (the faint-end gain is stretch x gain).

    Returns:
        (H, W, 3) uint8 RGB, colour preserved where the brightest channel saturates.
    """
    area = (SDSS_PIXSCALE / pixscale) ** 2
    x = np.maximum(gri * (area * np.asarray(scales, np.float64)[:, None, None])
                   + np.float64(offset), 0)  # (3, H, W)
    inten = x.mean(axis=0)
    x = inten + saturation * (x - inten)  # keeps the intensity
    w = inten**2 / (inten**2 + GREY_BELOW**2)  # 1: own colour, 0: sky tint (its mean is 1: intensity kept)
    rgb = w * x[::-1] + (1 - w) * np.asarray(SKY_TINT, np.float64)[:, None, None] * inten  # i, r, g as R, G, B
    lupton_q = 10 * math.sinh(q / (10 * gain))
    with np.errstate(invalid="ignore", divide="ignore"):  # zero-intensity pixels map to 0
        out = make_lupton_rgb(*rgb, stretch=lupton_q / (stretch * q), Q=lupton_q, output_dtype=np.float64)
    return np.round(out * 255).astype(np.uint8)


def render_cutout(truth: GalaxyTruth, size: int = 424, pixscale: float = SDSS_PIXSCALE, *,
                  rng: np.random.Generator, seeing_fwhm: float = 1.4, seeing_scatter: float = 0.15,
                  **observe_kwargs) -> np.ndarray:
    """Renders an SDSS-like colour cutout of a galaxy: model, observation, asinh RGB.

    Args:
        truth: The galaxy.
        size: Image side, px.
        pixscale: arcsec/px.
        rng: Random generator (the only source of randomness).
        seeing_fwhm: Median r-band seeing, arcsec.
        seeing_scatter: Log-normal scatter of the seeing from cutout to cutout (SDSS: 1.0-2.0").
        **observe_kwargs: Passed to `observe_sdss` (sky levels, star and neighbour rates).

    The module's constants are read at each call (not bound as defaults), so that
    tools/calibrate_mock_images.py can try other values.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    model = render_model_gri(truth, size, pixscale, rng)
    seeing = seeing_fwhm * math.exp(rng.normal(0, seeing_scatter))
    sky_factor = 10 ** (-0.4 * rng.normal(0, SKY_MAG_SCATTER))
    offset = RGB_OFFSET * math.exp(rng.normal(0, OFFSET_SCATTER))
    stretch = RGB_STRETCH * math.exp(rng.normal(0, STRETCH_SCATTER))
    scales = tuple(float(s) for s in np.asarray(RGB_SCALES) * np.exp(rng.normal(0, COLOUR_SCATTER, 3)))
    observe_kwargs.setdefault("sky_nmgy_per_arcsec2", tuple(sky_factor * s for s in SKY_NMGY_PER_ARCSEC2))
    observe_kwargs.setdefault("n_stars_per_arcmin2", STARS_PER_ARCMIN2)
    observe_kwargs.setdefault("n_galaxies_per_arcmin2", GALAXIES_PER_ARCMIN2)
    gri = observe_sdss(model, pixscale, rng, seeing, **observe_kwargs)
    return sdss_rgb(gri, pixscale, scales=scales, q=RGB_Q, stretch=stretch, offset=offset, saturation=RGB_SATURATION,
                    gain=RGB_GAIN)


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 image (PIL, deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()
