"""Input checks before classification: no data, constant, too small for the network, no source at the centre."""

from __future__ import annotations

import logging

import cv2
import numpy as np
from astropy.stats import SigmaClip

from specmorph.imaging.segment import to_gray
from specmorph.imaging.transforms import PreprocessConfig

logger = logging.getLogger(__name__)

ALL_NAN = "all_nan"  # set by the reader (`io.images.NoDataError`): a FITS image without a finite pixel
CONSTANT = "constant"
TOO_SMALL = "too_small"
NO_CENTRAL_SOURCE = "no_central_source"
FLAGS = (ALL_NAN, CONSTANT, TOO_SMALL, NO_CENTRAL_SOURCE)  # in the order they are checked

MAX_UPSAMPLE = 4.0  # too_small: the crop the network sees is enlarged more than this many times per side
SMOOTH_SIGMA = 2.0  # px, Gaussian blur of the luma before detection (segment's default blur)
SKY_GRID = 8  # the image is cut into SKY_GRID x SKY_GRID cells; the 4 * SKY_GRID - 4 outer ones measure the sky
CLIP_SIGMA = 3.0  # sigma clipping of each sky cell (field stars, the galaxy's outskirts)
CENTRE_FRACTION = 0.05  # radius of the central disc searched for a source, as a fraction of the short side
DETECT_SIGMA = 5.0  # a source's blurred peak must exceed the sky median by this many sky standard deviations
SIGMA_FLOOR = 0.5  # gray levels, least sky std used (a flat, noiseless sky still needs a real bump to pass)


def crop_side(height: int, width: int, crop_fraction: float) -> int:
    """Side (px of the image as read) of the central square that `preprocess` resizes to the network input.

    Args:
        height: image rows.
        width: image columns.
        crop_fraction: central fraction kept, as in `PreprocessConfig`.

    Returns:
        max(1, round(min(height, width) * crop_fraction)), the same rounding as `preprocess`.
    """
    return max(1, round(min(height, width) * crop_fraction))


def mesh_sky(image: np.ndarray) -> tuple[float, float]:
    """Sky level and noise of a (blurred) gray image from its outer cells, a background mesh as in SExtractor.

    The image is cut into a SKY_GRID x SKY_GRID grid and a least-squares plane is fitted to each outer
    cell (sampled every SMOOTH_SIGMA px: neighbouring blurred pixels are near copies). The residuals
    are sigma-clipped at CLIP_SIGMA (astropy `SigmaClip`, median-centred); a cell's level is the plane at
    its centre plus their clipped mean, its noise their clipped standard deviation, so a large-scale
    gradient such as scattered light is not noise. The sky level and noise are the medians over the
    cells, so a bright star or a neighbour filling some cells does not raise them.

    Args:
        image: (H, W) gray levels, H and W at least 2 * SKY_GRID.

    Returns:
        (level, noise) in the image's units; noise is at least SIGMA_FLOOR.
    """
    h, w = image.shape
    cell_h, cell_w = h // SKY_GRID, w // SKY_GRID
    y0, x0 = (h - SKY_GRID * cell_h) // 2, (w - SKY_GRID * cell_w) // 2
    grid = image[y0 : y0 + SKY_GRID * cell_h, x0 : x0 + SKY_GRID * cell_w]
    cells = grid.reshape(SKY_GRID, cell_h, SKY_GRID, cell_w).transpose(0, 2, 1, 3)  # (G, G, ch, cw)
    outer = np.ones((SKY_GRID, SKY_GRID), dtype=bool)
    outer[1:-1, 1:-1] = False
    step = max(1, int(SMOOTH_SIGMA))
    sky_cells = cells[outer][:, ::step, ::step]  # (4G - 4, n, m)
    cy, cx = np.mgrid[0 : sky_cells.shape[1], 0 : sky_cells.shape[2]]
    design = np.stack([np.ones(cy.size), cy.ravel() - cy.mean(), cx.ravel() - cx.mean()], axis=1)  # (n m, 3)
    values = sky_cells.reshape(len(sky_cells), -1)  # (4G - 4, n m)
    coef = values @ np.linalg.pinv(design).T  # (4G - 4, 3): level at the cell centre, slopes
    kept = SigmaClip(sigma=CLIP_SIGMA, maxiters=10)(values - coef @ design.T, axis=1, masked=False)  # NaN: clipped
    level = coef[:, 0] + np.nanmean(kept, axis=1)  # (4G - 4,)
    return float(np.median(level)), max(float(np.median(np.nanstd(kept, axis=1))), SIGMA_FLOOR)


def central_snr(rgb: np.ndarray) -> float:
    """Significance of the brightest blurred luma at the centre over the sky of the outer cells (`mesh_sky`).

    The luma is blurred by a Gaussian of SMOOTH_SIGMA px and the sky is measured on the same blurred
    image, so the noise's pixel-to-pixel correlation (JPEG blocks, resampling, the blur) is accounted for.

    Args:
        rgb: (H, W, 3) image as read, any real dtype (uint8 from `read_image`).

    Returns:
        (peak - sky level) / sky noise, where peak is the largest blurred luma within CENTRE_FRACTION of
        the short side from the image centre (at least the centre pixel); below DETECT_SIGMA for blank
        sky. NaN when a side is shorter than 2 * SKY_GRID px (too few pixels to measure a sky).
    """
    h, w = rgb.shape[:2]
    if min(h, w) < 2 * SKY_GRID:
        return float("nan")
    blurred = cv2.GaussianBlur(to_gray(rgb), (0, 0), SMOOTH_SIGMA, borderType=cv2.BORDER_REFLECT)  # (H, W) gray levels
    level, noise = mesh_sky(blurred)
    yy, xx = np.ogrid[0:h, 0:w]
    radius = max(1.0, CENTRE_FRACTION * min(h, w))
    centre = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= radius**2
    return (float(blurred[centre].max()) - level) / noise


def input_flag(rgb: np.ndarray, prep: PreprocessConfig) -> str:
    """Why an image should not be classified, or "" when it can be.

    Checks, in order (the first that fails names the flag):
      - CONSTANT: every pixel of the image as read has the same colour (all-NaN FITS images are
        ALL_NAN before this: `read_image` raises `NoDataError` for them).
      - TOO_SMALL: the central crop the network sees (`crop_side`) is smaller than prep.size /
        MAX_UPSAMPLE, i.e. it would be enlarged more than MAX_UPSAMPLE (4) times per side.
      - NO_CENTRAL_SOURCE: `central_snr` < DETECT_SIGMA (5): nothing at the centre stands above the
        sky noise of the outer cells at 5 sigma (images too small to measure a sky are not tested).

    Args:
        rgb: (H, W, 3) image as read (`read_image`).
        prep: the checkpoint's preprocessing (its size and crop_fraction).

    Returns:
        One of FLAGS, or "".
    """
    if rgb.size == 0 or ((rgb[0] == rgb[0, 0]).all() and (rgb == rgb[0, 0]).all()):  # first row, then all
        return CONSTANT
    if crop_side(rgb.shape[0], rgb.shape[1], prep.crop_fraction) * MAX_UPSAMPLE < prep.size:
        return TOO_SMALL
    snr = central_snr(rgb)
    if snr < DETECT_SIGMA:
        logger.debug("no central source: peak %.1f sky sigma, under %g", snr, DETECT_SIGMA)
        return NO_CENTRAL_SOURCE
    return ""
