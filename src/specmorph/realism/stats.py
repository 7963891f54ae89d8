"""Photometric and structural statistics of one RGB cutout, for comparing the mock survey with real images."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
from astropy.stats import sigma_clip

from specmorph.imaging.segment import central_label, to_gray

logger = logging.getLogger(__name__)

# Column names of `image_stats`, in the order the realism report lists them.
STAT_NAMES: tuple[str, ...] = (
    "colour_gr",  # mag, -2.5 log10(F_blue / F_green) inside the galaxy mask (SDSS JPEGs: g -> blue, r -> green)
    "colour_ri",  # mag, -2.5 log10(F_green / F_red) inside the galaxy mask (r -> green, i -> red)
    "colour_gradient",  # mag, colour_gr of the mask beyond R50 minus colour_gr within R50 (> 0: redder outskirts)
    "half_light_radius",  # px, R50 about the flux-weighted centroid
    "concentration",  # R90 / R50
    "axis_ratio",  # b/a from the flux-weighted second moments
    "central_sb",  # gray levels per px above the sky, mean within CENTRAL_RADIUS of the centroid
    "sky_noise",  # gray levels, sigma-clipped std of the luma in the border strip
    "background",  # gray levels, sigma-clipped median of the luma in the border strip
    "n_sources",  # other detected sources (connected components) in the cutout
    "outside_flux_fraction",  # detected flux outside the main galaxy / all detected flux
    "asymmetry",  # A of CAS: sum |I - I rotated 180° about the centroid| / sum |I|, over the galaxy's mask
    "clumpiness",  # S of CAS: flux above a smoothed copy (std CLUMP_SMOOTH x R50), outside R50/2, / the flux
)

DETECT_SIGMA = 5.0  # detection threshold: sky + DETECT_SIGMA x the blurred luma's sky noise
BORDER_FRACTION = 0.1  # width of the border strip that measures the sky, as a fraction of the short side
BLUR_SIGMA = 1.5  # px, Gaussian blur of the luma before detection
CLIP_SIGMA = 3.0  # sigma clipping of the border pixels (stars and galaxy outskirts in the strip)
NOISE_FLOOR = 0.5  # gray levels, least blurred noise used for the threshold (a flat, noiseless sky)
MIN_AREA = 20  # px, smallest component counted as a source (a 5-sigma star at the GZ scale, 0.2-0.4"/px, covers more)
CLOSING_RADIUS = 2  # px, closing of the main galaxy's mask (fills pixels the threshold missed inside it)
CENTRAL_RADIUS = 2.0  # px, aperture of the central surface brightness
SUBSAMPLE = 2  # radii: each pixel cut into SUBSAMPLE x SUBSAMPLE parts
RED, GREEN, BLUE = 0, 1, 2  # channels of an SDSS JPEG: i, r, g
CLUMP_SMOOTH = 0.3  # clumpiness: Gaussian std of the smoothed copy in units of R50 (Conselice 2003: 0.25-0.3 R_P)


def _sky_pixels(values: np.ndarray) -> np.ndarray:
    """(N,) bool: the pixels astropy's `sigma_clip` keeps at CLIP_SIGMA (what `sigma_clipped_stats` averages)."""
    return ~np.ma.getmaskarray(sigma_clip(values, sigma=CLIP_SIGMA, maxiters=10, masked=True))


def radius_enclosing(dy: np.ndarray, dx: np.ndarray, weights: np.ndarray, fractions: tuple[float, ...],
                     subsample: int = SUBSAMPLE) -> list[float]:
    """Radii of the circles about the origin that enclose given fractions of the pixels' total weight.

    Each pixel is cut into subsample x subsample equal parts at their own distances, and each part
    counts as half inside its own radius (it straddles it), which removes most of the bias of summing
    whole pixels (about 1% on R90 of a Gaussian of std 6 px without subsampling, < 0.3% with 2 x 2).

    Args:
        dy: (N,) row offsets of the pixel centres from the centre, px.
        dx: (N,) column offsets, px.
        weights: (N,) non-negative fluxes.
        fractions: fractions of the total in (0, 1).
        subsample: parts per pixel side.

    Returns:
        One radius (px) per fraction; NaN when the total weight is not positive.
    """
    total = float(weights.sum())
    if not total > 0:
        return [math.nan] * len(fractions)
    off = (np.arange(subsample) + 0.5) / subsample - 0.5  # (k,) px
    sub_y = (dy[:, None, None] + off[None, :, None]).repeat(subsample, axis=2).ravel()  # (N k²,)
    sub_x = (dx[:, None, None] + off[None, None, :]).repeat(subsample, axis=1).ravel()
    dist = np.hypot(sub_y, sub_x)
    order = np.argsort(dist, kind="stable")
    w = np.repeat(weights / subsample**2, subsample**2)[order]
    cum = np.cumsum(w) - 0.5 * w  # weight inside each part's radius
    return [float(np.interp(f * total, cum, dist[order])) for f in fractions]


def image_stats(rgb: np.ndarray, detect_sigma: float = DETECT_SIGMA) -> dict[str, float]:
    """The statistics of STAT_NAMES for one cutout.

    The sky (background level and noise) is the sigma-clipped median and standard deviation of the
    luma (`segment.to_gray`) in a border strip BORDER_FRACTION of the short side wide (astropy's
    `sigma_clip` at CLIP_SIGMA, as `sigma_clipped_stats`); the same sky pixels give each channel's
    level for the colour and the blurred luma's noise for detection. The luma is blurred (Gaussian,
    BLUR_SIGMA px) and thresholded at the sky plus `detect_sigma` times the blurred strip's noise (at
    least NOISE_FLOOR); the 8-connected components (`cv2.connectedComponentsWithStats`) of MIN_AREA px
    or more are the detected sources. The main
    galaxy is the component at the centre pixel (else the one nearest the centre), closed by a disc
    of CLOSING_RADIUS; the others are counted in `n_sources`. Fluxes are sky-subtracted luma (or
    channel) values summed over the main galaxy's mask; radii are about its flux-weighted centroid and
    use positive fluxes only (`radius_enclosing`). Concentration is R90 / R50 (SDSS's definition, on
    the isophotal mask rather than the Petrosian aperture).

    Args:
        rgb: (H, W, 3) image as read (R, G, B), any real dtype.
        detect_sigma: detection threshold in units of the blurred sky noise.

    Returns:
        {name: value} for every name of STAT_NAMES; the galaxy's statistics are NaN when nothing is
        detected at the centre or its flux is not positive.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {rgb.shape}")
    img = rgb.astype(np.float32)  # (H, W, 3)
    gray = to_gray(img)  # (H, W) gray levels
    h, w = gray.shape
    b = max(2, round(BORDER_FRACTION * min(h, w)))
    border = np.ones((h, w), dtype=bool)
    border[b:-b, b:-b] = False
    sky = _sky_pixels(gray[border])  # (B,) the border pixels that are sky, chosen once on the luma
    background, noise = float(np.median(gray[border][sky])), float(gray[border][sky].std())
    out = dict.fromkeys(STAT_NAMES, math.nan)
    out.update(sky_noise=noise, background=background)
    blurred = cv2.GaussianBlur(gray, (0, 0), BLUR_SIGMA, borderType=cv2.BORDER_REFLECT)
    blurred_sky = blurred[border][sky]
    threshold = float(np.median(blurred_sky)) + detect_sigma * max(float(blurred_sky.std()), NOISE_FLOOR)
    n, labels, comp, _ = cv2.connectedComponentsWithStats((blurred > threshold).astype(np.uint8), connectivity=8)
    areas = comp[:, cv2.CC_STAT_AREA]  # (n,) px, label 0 = background
    main = central_label(labels)
    others = [k for k in range(1, n) if k != main and areas[k] >= MIN_AREA]
    out["n_sources"] = float(len(others))
    if main == 0:
        return out
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * CLOSING_RADIUS + 1, 2 * CLOSING_RADIUS + 1))
    mask = cv2.morphologyEx((labels == main).astype(np.uint8), cv2.MORPH_CLOSE, disc).astype(bool)
    flux = gray - background  # (H, W) sky-subtracted luma
    weights = np.clip(flux[mask], 0.0, None)  # (M,)
    total = float(flux[mask].sum())
    if not total > 0 or not weights.sum() > 0:
        return out
    ys, xs = np.nonzero(mask)  # (M,)
    cy, cx = float(ys @ weights / weights.sum()), float(xs @ weights / weights.sum())
    dy, dx = ys - cy, xs - cx
    r50, r90 = radius_enclosing(dy, dx, weights, (0.5, 0.9))
    cov = np.cov(np.stack([dx, dy]), aweights=weights, bias=True)  # (2, 2) px²
    minor, major = np.linalg.eigvalsh(cov)
    dist = np.hypot(dy, dx)  # (M,) px from the centroid
    central = dist <= CENTRAL_RADIUS
    pix = img[ys, xs] - np.median(img[border][sky], axis=0)  # (M, 3) sky-subtracted R, G, B of the mask's pixels
    inner = dist < r50
    asymmetry, clumpiness = _cas(flux, mask, cx, cy, r50)
    other_mask = np.isin(labels, others) & ~mask
    other_flux = float(np.clip(flux[other_mask], 0.0, None).sum())
    out.update(
        colour_gr=_colour(pix, BLUE, GREEN),
        colour_ri=_colour(pix, GREEN, RED),
        colour_gradient=_colour(pix[~inner], BLUE, GREEN) - _colour(pix[inner], BLUE, GREEN),
        half_light_radius=r50,
        concentration=r90 / r50 if r50 > 0 else math.nan,
        axis_ratio=math.sqrt(max(minor, 0.0) / major) if major > 0 else math.nan,
        central_sb=float(flux[ys[central], xs[central]].mean()) if central.any() else math.nan,
        outside_flux_fraction=other_flux / (other_flux + total),
        asymmetry=asymmetry,
        clumpiness=clumpiness,
    )
    return out


def _colour(pix: np.ndarray, bluer: int, redder: int) -> float:
    """-2.5 log10(F_bluer / F_redder) of (M, 3) sky-subtracted R, G, B pixels; NaN where a sum is not positive."""
    a, b = float(pix[:, bluer].sum()), float(pix[:, redder].sum())
    return -2.5 * math.log10(a / b) if a > 0 and b > 0 else math.nan


def _cas(flux: np.ndarray, mask: np.ndarray, cx: float, cy: float, r50: float) -> tuple[float, float]:
    """Asymmetry and clumpiness (Conselice 2003) of the sky-subtracted luma `flux` within `mask`.

    Asymmetry: the image rotated 180° about the flux-weighted centroid (`cv2.warpAffine`, bilinear)
    is subtracted, A = sum |I - I_180| / sum |I| over the pixels in both the mask and its rotated copy
    (no noise correction, so mock and real
    compare only at matched noise, which the sky statistics check). Clumpiness: the positive part of
    I minus its Gaussian-smoothed copy (std CLUMP_SMOOTH x R50), summed over the mask outside R50/2
    (the unresolved centre is always "clumpy"), over the flux in the mask.
    """
    if not r50 > 0:
        return math.nan, math.nan
    rot = cv2.getRotationMatrix2D((cx, cy), 180.0, 1.0)
    flipped = cv2.warpAffine(flux, rot, flux.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    both = mask & (cv2.warpAffine(mask.astype(np.uint8), rot, mask.shape[::-1], flags=cv2.INTER_NEAREST) > 0)
    denom = float(np.abs(flux[both]).sum())
    asym = float(np.abs(flux[both] - flipped[both]).sum()) / denom if denom > 0 else math.nan
    smooth = cv2.GaussianBlur(flux, (0, 0), CLUMP_SMOOTH * r50, borderType=cv2.BORDER_REFLECT)
    ys, xs = np.nonzero(mask)
    outer = np.hypot(ys - cy, xs - cx) > 0.5 * r50
    resid = np.clip(flux[ys[outer], xs[outer]] - smooth[ys[outer], xs[outer]], 0.0, None)
    total = float(flux[mask].sum())
    return asym, (float(resid.sum()) / total if total > 0 else math.nan)
