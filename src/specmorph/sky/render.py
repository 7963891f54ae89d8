"""Noiseless g, r, i light of a mock galaxy: Sérsic bulge, exponential disc, bar, spiral arms, dust lane."""

from __future__ import annotations

import dataclasses
import math
import zlib
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import gamma

from specmorph.sky.truth import GalaxyTruth

# A_b / A_g for g, r, i: Schlafly & Finkbeiner (2011) R_V=3.1 coefficients 3.303, 2.285, 1.698.
DUST_K = np.array([1.0, 0.692, 0.514], np.float64)
ARM_BLUE = 0.3  # mag, arm light is this much bluer in g-r than the underlying disc (young stars)
KNOT_GR = 0.1  # mag, g-r of star-forming knots (OB associations + HII regions), capped by the disc colour
BAR_AXIS_RATIO = 0.3  # intrinsic b/a of bars (Gadotti 2011: ellipticity ~0.6-0.7)
BAR_BOXINESS = 3.0  # superellipse exponent of the bar isophotes (2 = ellipse, >2 = boxy)
_KNOT_SIZE = 0.25  # arcsec, Gaussian sigma of a knot (a few hundred pc at z ~ 0.03)
# Spheroids are larger at shorter wavelengths (bluer outskirts: metallicity gradients): R_e ∝ λ^-0.3 (Vulcani et
# al. 2014, GAMA/MegaMorph: R_e(H)/R_e(g) ~ 0.68 for n > 2.5), at g, r, i 4770, 6231, 7625 Å relative to r.
BULGE_SIZE_BAND = (1.08, 1.0, 0.94)
PATCHINESS = 0.5  # log-normal sigma of the arms' brightness along their length (real arms are patchy)


def band_ratios(g_r: float) -> np.ndarray:
    """Flux in g, r, i relative to r for a g-r colour; r-i = 0.45 (g-r) + 0.04.

    The r-i relation is a linear fit through the SDSS galaxy locus (early types g-r 0.77, r-i 0.39;
    late types g-r 0.45, r-i 0.24; Strateva et al. 2001).
    """
    r_i = 0.45 * g_r + 0.04
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_i)], np.float64)  # (3,)


def nanomaggies(mag: float) -> float:
    """AB magnitude to nanomaggies."""
    return 10 ** (-0.4 * (mag - 22.5))


def sersic_b(n: float) -> float:
    """b_n of the Sérsic profile (Ciotti & Bertin 1999 asymptotic expansion)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def sersic_sb(u: np.ndarray, v: np.ndarray, n: float, re: float, q: float) -> np.ndarray:
    """Unit-flux Sérsic surface brightness (1/arcsec²) at major/minor-axis offsets u, v (arcsec)."""
    b = sersic_b(n)
    norm = b ** (2 * n) / (2 * math.pi * q * re * re * n * gamma(2 * n))
    r = np.sqrt(u * u + (v / q) ** 2) / re
    return (norm * np.exp(-b * r ** (1 / n))).astype(np.float64)


@lru_cache(maxsize=4)
def _bar_area(c: float) -> float:
    """Integral of the unit Ferrers (n=2) superellipse bar profile (1 - m)², m = (|x|^c + |y|^c)^(2/c)."""
    t = (np.arange(1000) + 0.5) / 1000
    m = (t[:, None] ** c + t[None, :] ** c) ** (2 / c)
    return float(4 * np.sum(np.clip(1 - m, 0, None) ** 2) / t.size**2)


@dataclasses.dataclass(frozen=True)
class Draws:
    """The random, non-truth choices of one rendering (orientation of bar and arms, disturbances)."""

    bar_angle: float  # rad, bar major axis from the disc major axis, in the disc plane
    arm_phase2: float  # rad, phase of the secondary (flocculent) arm pattern
    lane_side: float  # +1/-1: side of the mid-plane the dust lane is displaced to (near side)
    lopsided: float = 0.0  # m=1 amplitude of a disturbed disc
    lopsided_phase: float = 0.0  # rad
    disc_shift: tuple[float, float] = (0.0, 0.0)  # arcsec (u, v): disc centre off the bulge (disturbed)
    shear: float = 0.0  # banana-shaped (area-preserving) bend of the disc plane of a disturbed disc
    waves: tuple[tuple[float, float, float], ...] = ()  # (kx, ky 1/arcsec, phase): patchiness of the arms


def _arm_pattern(r: np.ndarray, phi: np.ndarray, m: int, pitch: float, r0: float, phase: float,
                 k: float) -> np.ndarray:
    """Unit-mean logarithmic-spiral density pattern ((1 + cos θ)/2)^k / mean, θ = m(φ − ln(r/r0)/tan p − φ0)."""
    theta = m * (phi - np.log(np.maximum(r, 1e-3) / r0) / math.tan(math.radians(pitch)) - phase)
    mean = math.gamma(k + 0.5) / (math.sqrt(math.pi) * math.gamma(k + 1))  # azimuthal mean of the profile
    return (((1 + np.cos(theta)) / 2) ** k / mean).astype(np.float64)


def arm_start(t: GalaxyTruth) -> float:
    """Radius (arcsec) where the spiral arms begin: the bar ends, or outside the bulge."""
    return max(t.bar_length, 1.5 * t.bulge_re if t.bulge_frac > 0 else 0.0, 0.5 * t.disc_h)


def galaxy_sb(t: GalaxyTruth, x: np.ndarray, y: np.ndarray, d: Draws) -> np.ndarray:
    """Surface brightness of the smooth components, nmgy/arcsec², at sky offsets from the galaxy centre.

    Args:
        t: The galaxy.
        x: East offsets, arcsec (any shape).
        y: North offsets, arcsec (same shape).
        d: The rendering's random choices.

    Returns:
        (3, *x.shape) float64 g, r, i surface brightness (knots excluded).
    """
    pa = math.radians(t.pa)
    u = x * math.sin(pa) + y * math.cos(pa)  # arcsec, along the major axis
    v = -x * math.cos(pa) + y * math.sin(pa)  # arcsec, along the minor axis
    f_tot = nanomaggies(t.mag_r)
    out = np.zeros((3, *np.broadcast_shapes(np.shape(x), np.shape(y))), np.float64)
    has_disc = t.bulge_frac < 1 and t.disc_h > 0
    edge = max(0.0, min(1.0, (t.inclination - 70.0) / 15.0)) if has_disc else 0.0  # dust lane visibility
    tau = None
    if edge > 0 and t.dust_lane > 0:
        width = max(0.5 * t.disc_q * t.disc_h, 0.15)  # arcsec, lane half-thickness
        shift = d.lane_side * 0.8 * t.disc_h * math.cos(math.radians(t.inclination))  # near side
        tau = (-math.log(1 - min(t.dust_lane, 0.99)) * edge
               * np.exp(-0.5 * ((v - shift) / width) ** 2 - np.abs(u) / (3 * t.disc_h)))
    if t.bulge_frac > 0:
        col = band_ratios(t.bulge_gr) * (f_tot * t.bulge_frac)
        for b in range(3):
            bulge = sersic_sb(u, v, t.bulge_n, t.bulge_re * BULGE_SIZE_BAND[b], t.bulge_q)
            att = 1.0 if tau is None else 0.5 + 0.5 * np.exp(-DUST_K[b] * tau)  # half the bulge is behind
            out[b] += col[b] * bulge * att
    if not has_disc:
        return out
    q, h = max(t.disc_q, 0.05), t.disc_h
    xd, yd = u - d.disc_shift[0], (v - d.disc_shift[1]) / q  # arcsec, in the disc plane
    if d.shear:
        xd = xd - d.shear * yd * yd / (4 * h)
    r = np.sqrt(xd * xd + yd * yd)
    f_disc = f_tot * (1 - t.bulge_frac)
    disc = np.exp(-r / h) / (2 * math.pi * q * h * h)  # unit flux
    phi = np.arctan2(yd, xd) if (t.n_arms > 0 or d.lopsided > 0) else None
    if d.lopsided > 0:
        disc *= 1 + d.lopsided * r / (r + h) * np.cos(phi - d.lopsided_phase)
    smooth = disc * (1 - t.bar_strength - knot_fraction(t))
    arms = None
    if t.n_arms > 0 and t.arm_strength > 0:
        r0 = arm_start(t)
        m = min(t.n_arms, 4)
        pattern = _arm_pattern(r, phi, m, t.pitch, r0, d.bar_angle, 3.0)
        if t.n_arms >= 5:  # "more than four": flocculent, many short arm segments
            pattern = 0.5 * pattern + 0.5 * _arm_pattern(r, phi, 5, t.pitch * 1.4, r0, d.arm_phase2, 2.0)
        if d.waves:
            g = sum(np.cos(kx * xd + ky * yd + ph) for kx, ky, ph in d.waves) * math.sqrt(2 / len(d.waves))
            pattern = pattern * np.exp(PATCHINESS * g - PATCHINESS**2 / 2)
        window = t.arm_strength * (1 - np.exp(-((r / r0) ** 4)))
        arms = smooth * window * pattern
        smooth = smooth * (1 - window)
    if t.bar_strength > 0 and t.bar_length > 0:
        cb, sb = math.cos(d.bar_angle), math.sin(d.bar_angle)
        length = t.bar_length
        xb = np.abs(xd * cb + yd * sb) / length
        yb = np.abs(-xd * sb + yd * cb) / (BAR_AXIS_RATIO * length)
        mb = (xb**BAR_BOXINESS + yb**BAR_BOXINESS) ** (2 / BAR_BOXINESS)
        bar = np.clip(1 - mb, 0, None) ** 2 / (_bar_area(BAR_BOXINESS) * length * length * BAR_AXIS_RATIO * q)
        smooth = smooth + t.bar_strength * bar
    col_d = band_ratios(t.disc_gr) * f_disc
    col_a = band_ratios(t.disc_gr - ARM_BLUE) * f_disc
    for b in range(3):
        band = col_d[b] * smooth if arms is None else col_d[b] * smooth + col_a[b] * arms
        out[b] += band if tau is None else band * np.exp(-DUST_K[b] * tau)
    return out


def knot_fraction(t: GalaxyTruth) -> float:
    """Fraction of the disc's r light in star-forming knots: grows with arm strength and Hα EW."""
    if t.n_arms == 0 or t.bulge_frac >= 1:
        return 0.0
    return 0.06 * t.arm_strength * float(np.clip(t.ew_ha / 15.0, 0.3, 2.0))


def knots(t: GalaxyTruth, d: Draws, rng: np.random.Generator, scatter: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Star-forming knots strung along the spiral arms.

    Args:
        t: The galaxy.
        d: The rendering's random choices (bar angle sets the arm phase).
        rng: Random generator.
        scatter: rad, azimuthal scatter of knots about the arm ridge.

    Returns:
        Sky offsets (K, 2) east/north in arcsec, and g, r, i fluxes (K, 3) in nmgy.
    """
    frac = knot_fraction(t)
    n = round(8 + 50 * t.arm_strength) if frac > 0 else 0
    if n == 0:
        return np.zeros((0, 2)), np.zeros((0, 3))
    r0, m = arm_start(t), min(t.n_arms, 4)
    r = r0 + rng.gamma(2.0, t.disc_h, n)  # arcsec, in the disc plane
    arm = rng.integers(0, m, n)
    phi = d.bar_angle + np.log(r / r0) / math.tan(math.radians(t.pitch)) + 2 * math.pi * arm / m
    phi = phi + rng.normal(0, scatter * (3 if t.n_arms >= 5 else 1), n)
    w = rng.exponential(1.0, n)
    u, v = r * np.cos(phi) + d.disc_shift[0], r * np.sin(phi) * max(t.disc_q, 0.05) + d.disc_shift[1]
    pa = math.radians(t.pa)
    xy = np.stack([u * math.sin(pa) - v * math.cos(pa), u * math.cos(pa) + v * math.sin(pa)], 1)
    flux_r = nanomaggies(t.mag_r) * (1 - t.bulge_frac) * frac * w / w.sum()
    col = band_ratios(min(KNOT_GR, t.disc_gr - 0.2))
    return xy, flux_r[:, None] * col[None, :]


def deposit(img: np.ndarray, xy_px: np.ndarray, flux: np.ndarray) -> None:
    """Adds point fluxes (K, 3) at fractional pixel positions (K, 2: column, row) by bilinear sharing."""
    _, h, w = img.shape
    x0, y0 = np.floor(xy_px[:, 0]).astype(int), np.floor(xy_px[:, 1]).astype(int)
    fx, fy = xy_px[:, 0] - x0, xy_px[:, 1] - y0
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        for b in range(img.shape[0]):
            np.add.at(img[b], (yi[ok], xi[ok]), (flux[ok, b] * wt[ok]).astype(img.dtype))


def sky_to_pixel(xy: np.ndarray, size: int, pixscale: float) -> np.ndarray:
    """Sky offsets (K, 2: east, north arcsec) from the image centre to pixel (column, row) positions."""
    c = (size - 1) / 2
    return np.stack([c - xy[:, 0] / pixscale, c - xy[:, 1] / pixscale], 1)


def sample_sb(sb_fn, size: int, pixscale: float, x0: float, y0: float, centres: list[tuple[float, float]]
              ) -> np.ndarray:
    """Pixel-integrated image (3, size, size) in nmgy of a surface-brightness function, refined at nuclei.

    Args:
        sb_fn: Callable (x_east, y_north) -> (3, ...) nmgy/arcsec², offsets from (x0, y0).
        size: Image side, px.
        pixscale: arcsec/px.
        x0: East offset of the function's origin from the image centre, arcsec.
        y0: North offset, arcsec.
        centres: Sky positions (east, north arcsec from the image centre) of cusps to supersample.

    Returns:
        (3, size, size) float64 flux per pixel, nmgy.
    """
    c = (size - 1) / 2
    ax = ((c - np.arange(size)) * pixscale).astype(np.float64)  # arcsec; east at left, north at top
    img = sb_fn(ax[None, :] - x0, ax[:, None] - y0) * np.float64(pixscale**2)
    for xc, yc in centres:
        col, row = round(c - xc / pixscale), round(c - yc / pixscale)
        for half, sub in ((4, 7), (1, 21)):  # a 9x9 box at 7x7, then the central 3x3 at 21x21 samples
            lo_c, lo_r = max(col - half, 0), max(row - half, 0)
            hi_c, hi_r = min(col + half + 1, size), min(row + half + 1, size)
            if hi_c <= lo_c or hi_r <= lo_r:
                continue
            off = (np.arange(sub) + 0.5) / sub - 0.5  # px
            sx = ((c - (np.arange(lo_c, hi_c)[:, None] + off[None, :])) * pixscale).ravel()
            sy = ((c - (np.arange(lo_r, hi_r)[:, None] + off[None, :])) * pixscale).ravel()
            fine = sb_fn(sx[None, :] - x0, sy[:, None] - y0)  # (3, ny*sub, nx*sub)
            fine = fine.reshape(3, hi_r - lo_r, sub, hi_c - lo_c, sub).mean(axis=(2, 4))
            img[:, lo_r:hi_r, lo_c:hi_c] = fine * pixscale**2
    return img


def add_knots(img: np.ndarray, xy: np.ndarray, flux: np.ndarray, pixscale: float) -> None:
    """Adds knots (sky offsets from the image centre) as small Gaussians."""
    if len(xy) == 0:
        return
    layer = np.zeros_like(img)
    deposit(layer, sky_to_pixel(xy, img.shape[-1], pixscale), flux)
    sigma = _KNOT_SIZE / pixscale
    img += gaussian_filter(layer, (0, sigma, sigma), truncate=3.0) if sigma > 0.5 else layer


def draw(t: GalaxyTruth, rng: np.random.Generator, disturbed: bool = False) -> Draws:
    """Draws the rendering's random choices; `disturbed` adds an m=1 asymmetry and an off-centre disc."""
    bar_angle, arm_phase2, lop_phase = rng.uniform(0, 2 * math.pi, 3)
    lane_side = 1.0 if rng.uniform() < 0.5 else -1.0
    k = 2 * math.pi / (rng.uniform(0.6, 1.5, 4) * max(t.disc_h, 0.1))  # 1/arcsec
    ang, ph = rng.uniform(0, 2 * math.pi, (2, 4))
    waves = tuple((float(a * math.cos(b)), float(a * math.sin(b)), float(c))
                  for a, b, c in zip(k, ang, ph, strict=True))
    if not disturbed:
        return Draws(float(bar_angle), float(arm_phase2), lane_side, waves=waves)
    shift = rng.normal(0, 0.4 * t.disc_h, 2)
    return Draws(float(bar_angle), float(arm_phase2), lane_side, lopsided=float(rng.uniform(0.5, 0.9)),
                 lopsided_phase=float(lop_phase), disc_shift=(float(shift[0]), float(shift[1])),
                 shear=float(rng.uniform(-0.6, 0.6)), waves=waves)


def half_light(t: GalaxyTruth) -> float:
    """Approximate half-light radius, arcsec (light-weighted bulge Re and disc 1.678 h)."""
    disc = 1.678 * t.disc_h if t.disc_h > 0 else t.bulge_re
    return t.bulge_frac * t.bulge_re + (1 - t.bulge_frac) * disc


def tails(t: GalaxyTruth, x: np.ndarray, y: np.ndarray, m: int, phase: float, frac: float) -> np.ndarray:
    """Tidal tails: m faint, broad, open spiral streams from 1.5 to ~5 half-light radii (nmgy/pixel shape).

    Args:
        t: The galaxy the tails come from (orientation, size, colour, flux).
        x: East offsets from its centre, arcsec (2-D grid).
        y: North offsets, arcsec.
        m: Number of tails (1: one plume; 2: tail + counter-tail, or tail + bridge).
        phase: rad, direction of the first tail in the galaxy's plane.
        frac: Fraction of the galaxy's flux in the tails.

    Returns:
        (3, *x.shape) image normalised so that its sum is `frac` of the galaxy's flux per band.
    """
    pa, q, r50 = math.radians(t.pa), max(t.disc_q if t.disc_h > 0 else t.bulge_q, 0.35), half_light(t)
    u = x * math.sin(pa) + y * math.cos(pa)
    v = (-x * math.cos(pa) + y * math.sin(pa)) / q
    r = np.sqrt(u * u + v * v)
    shape = _arm_pattern(r, np.arctan2(v, u), m, 35.0, 1.5 * r50, phase, 6.0)
    shape = shape * np.exp(-(((r - 3 * r50) / (1.8 * r50)) ** 2))
    total = float(shape.sum())
    col = band_ratios(t.disc_gr if t.disc_h > 0 else t.bulge_gr) * nanomaggies(t.mag_r) * frac
    return col[:, None, None] * (shape / max(total, 1e-30))[None]


def render_model_gri(truth: GalaxyTruth, size: int, pixscale: float, rng: np.random.Generator) -> np.ndarray:
    """Noiseless g, r, i image of a galaxy before the PSF.

    Galaxy10 codes 0 (disturbed) and 1 (merging) add an m=1 asymmetry with a tidal plume, or a
    companion with a bridge and counter-tails.

    Args:
        truth: The galaxy.
        size: Image side, px.
        pixscale: arcsec/px.
        rng: Random generator for the sub-pixel centring (the structure is seeded by `id_str`).

    Returns:
        (3, size, size) float64 flux per pixel in nanomaggies, g, r, i; north up, east left; the
        galaxy (the pair's light centre for a merger) within half a pixel of the image centre.
    """
    dx, dy = rng.uniform(-0.5, 0.5, 2) * pixscale  # arcsec, sub-pixel centring
    # The galaxy's own structure (bar angle, arm phases, knots, tails) depends on the galaxy only, so
    # two surveys imaging it (SDSS cutout, GZ2 image, Galaxy10) see the same object.
    rng = np.random.default_rng([zlib.crc32(truth.id_str.encode()), 7])
    merging, disturbed = truth.galaxy10 == 1, truth.galaxy10 == 0
    gals = [(truth, float(dx), float(dy))]
    if merging:
        s = 10 ** (-0.4 * rng.uniform(0.0, 1.5))  # companion/primary flux ratio
        size_f = math.sqrt(s)
        comp = dataclasses.replace(
            truth, mag_r=truth.mag_r - 2.5 * math.log10(s), pa=float(rng.uniform(0, 180)),
            bulge_re=truth.bulge_re * size_f, disc_h=truth.disc_h * size_f, bar_length=truth.bar_length * size_f,
            disc_q=float(rng.uniform(0.3, 1.0)) if truth.disc_h > 0 else truth.disc_q,
            bulge_q=float(rng.uniform(0.5, 1.0)), inclination=min(truth.inclination, 70.0))
        sep = rng.uniform(1.0, 2.2) * (half_light(truth) + half_light(comp))  # arcsec
        ang = rng.uniform(0, 2 * math.pi)
        ex, ny = math.sin(ang), math.cos(ang)
        gals = [(truth, dx - sep * s / (1 + s) * ex, dy - sep * s / (1 + s) * ny),
                (comp, dx + sep / (1 + s) * ex, dy + sep / (1 + s) * ny)]
    draws = [draw(g, rng, disturbed or merging) for g, _, _ in gals]

    def sb(x, y):
        return sum(galaxy_sb(g, x - gx, y - gy, dr) for (g, gx, gy), dr in zip(gals, draws, strict=True))

    img = sample_sb(sb, size, pixscale, 0.0, 0.0, [(gx, gy) for _, gx, gy in gals])
    c = (size - 1) / 2
    ax = ((c - np.arange(size)) * pixscale).astype(np.float64)
    for (g, gx, gy), dr in zip(gals, draws, strict=True):
        xy, flux = knots(g, dr, rng, scatter=0.8 if disturbed else 0.15)
        add_knots(img, xy + np.array([gx, gy]), flux, pixscale)
        if disturbed or merging:
            m = 2 if merging else int(rng.integers(1, 3))
            frac = rng.uniform(0.08, 0.2)
            xg, yg = np.broadcast_arrays(ax[None, :] - gx, ax[:, None] - gy)
            img += tails(g, xg, yg, m, float(rng.uniform(0, 2 * math.pi)), frac).astype(np.float64)
    return img
