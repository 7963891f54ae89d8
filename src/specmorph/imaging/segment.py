"""Galaxy isolation: triangle-threshold the blurred image, keep the central component, mask the rest."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

logger = logging.getLogger(__name__)

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
MAX_MASK_FRACTION = 0.9  # a mask covering more of the image than this is not a galaxy
MIN_MASK_PIXELS = 10
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SegmentParams:
    """Segmentation settings.

    Attributes:
        sigma: Gaussian blur before thresholding, pixels.
        closing_radius: radius of the disc used to close the mask, pixels (0 = no closing).
        recentre: shift the image so the mask's flux-weighted centroid lands on the centre pixel.
        out_size: side of the square output, pixels; None keeps the input shape.
    """

    sigma: float = 2.0
    closing_radius: int = 3
    recentre: bool = True
    out_size: int | None = None


@dataclass(frozen=True)
class SegmentResult:
    """What `segment` returns.

    Attributes:
        image: (S, S, 3) uint8 masked image (S = out_size), or (H, W, 3) when out_size is None.
            When `degenerate`, the input unmasked and not recentred (same geometry), so callers
            can still use it.
        mask: bool mask in the same geometry as `image`.
        threshold: triangle threshold on the blurred gray image, 0–255 gray levels.
        degenerate: the mask is empty, has fewer than MIN_MASK_PIXELS pixels, or covers more than
            MAX_MASK_FRACTION of the image.
    """

    image: np.ndarray
    mask: np.ndarray
    threshold: float
    degenerate: bool


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma 0.299 R + 0.587 G + 0.114 B of an RGB image.

    Args:
        rgb: (H, W, 3) array, any real dtype.

    Returns:
        (H, W) float32, same units as the input.
    """
    return rgb.astype(np.float32) @ GRAY_WEIGHTS


def triangle_threshold(gray: np.ndarray, nbins: int = 256) -> float:
    """Triangle threshold (Zack, Rogers & Latt 1977), the same as skimage's `threshold_triangle`.

    The histogram is binned as skimage does: integer images get one bin per integer value (nbins
    ignored), float images `nbins` equal bins between the minimum and the maximum. The threshold
    is the centre of the bin farthest from the line joining the histogram peak to the end of its
    longer tail.

    Args:
        gray: grayscale image, any shape.
        nbins: number of histogram bins for float images.

    Returns:
        The threshold; pixels brighter than it are foreground. A constant image returns its value.
    """
    values = np.asarray(gray).ravel()
    if np.issubdtype(values.dtype, np.integer):
        lo_val, hi_val = int(values.min()), int(values.max())
        hist = np.bincount((values.astype(np.int64) - lo_val), minlength=hi_val - lo_val + 1)
        centers = np.arange(lo_val, hi_val + 1, dtype=np.float64)
    else:
        lo_val, hi_val = values.min(), values.max()
        if hi_val == lo_val:
            return float(lo_val)
        # np.histogram's binning in one vectorised pass (np.histogram is 2x slower; a value lying within
        # rounding of a bin edge may land in the neighbouring bin)
        idx = ((values - lo_val) * (nbins / (hi_val - lo_val))).astype(np.intp)
        np.minimum(idx, nbins - 1, out=idx)
        hist = np.bincount(idx, minlength=nbins)
        edges = np.linspace(float(lo_val), float(hi_val), nbins + 1)
        centers = 0.5 * (edges[:-1] + edges[1:])
    nb = len(hist)
    arg_peak = int(np.argmax(hist))
    nonzero = np.flatnonzero(hist)
    arg_low, arg_high = int(nonzero[0]), int(nonzero[-1])
    if arg_low == arg_high:
        return float(values[0])
    flip = arg_peak - arg_low < arg_high - arg_peak  # longer tail on the right: work on the reversed histogram
    if flip:
        hist = hist[::-1]
        arg_low = nb - arg_high - 1
        arg_peak = nb - arg_peak - 1
    width = arg_peak - arg_low
    x = np.arange(width)
    y = hist[x + arg_low].astype(np.float64)
    norm = np.hypot(float(hist[arg_peak]), width)
    length = (hist[arg_peak] / norm) * x - (width / norm) * y  # signed distance to the peak-tail line, up to a constant
    arg_level = int(np.argmax(length)) + arg_low
    if flip:
        arg_level = nb - arg_level - 1
    return float(centers[arg_level])


def segment(rgb: np.ndarray, params: SegmentParams | None = None) -> SegmentResult:
    """Isolate the central galaxy of a cutout.

    Steps: luma; Gaussian blur (`sigma`); triangle threshold of the blurred luma; of the connected
    (8-neighbour) components above it keep the one containing the centre pixel, or if the centre is
    background the one whose nearest pixel is closest to the image centre (a bright star elsewhere
    never wins, whatever its size); binary closing with a disc of `closing_radius`; zero the pixels
    outside the mask; optionally shift the centroid (luma-weighted, inside the mask) to the centre;
    optionally centre-crop to a square and resize (bilinear, antialiased) to `out_size`.

    Args:
        rgb: (H, W, 3) uint8 image.
        params: settings; defaults to `SegmentParams()`.

    Returns:
        SegmentResult.
    """
    params = params or SegmentParams()
    _check_rgb(rgb)
    h, w = rgb.shape[:2]
    gray = to_gray(rgb)  # (H, W) 0–255
    blurred = ndimage.gaussian_filter(gray, params.sigma) if params.sigma > 0 else gray
    threshold = triangle_threshold(blurred)
    mask = _central_component(blurred > threshold)
    mask = _close(mask, params.closing_radius)
    n_mask = int(mask.sum())
    degenerate = n_mask < MIN_MASK_PIXELS or n_mask > MAX_MASK_FRACTION * h * w
    if degenerate:
        logger.debug("degenerate mask: %d of %d pixels, threshold %.2f", n_mask, h * w, threshold)
        image = rgb
    else:
        image = rgb * mask[:, :, None]
        weights = gray * mask if params.recentre else None  # (H, W)
        if weights is not None and weights.sum() > 0:
            cy, cx = _centroid(weights)  # pixels
            dy, dx = round((h - 1) / 2 - cy), round((w - 1) / 2 - cx)
            image, mask = _shift(image, dy, dx), _shift(mask, dy, dx)
    if params.out_size is not None:
        image, mask = _square_resize(image, mask, params.out_size)
    return SegmentResult(image=np.ascontiguousarray(image), mask=mask, threshold=threshold, degenerate=degenerate)


def segment_batch(images: Iterable[np.ndarray], params: SegmentParams | None = None) -> Iterator[SegmentResult]:
    """Segment images one at a time.

    Args:
        images: (H, W, 3) uint8 images.
        params: settings shared by all images.

    Yields:
        One SegmentResult per image, in order.
    """
    for rgb in images:
        yield segment(rgb, params)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")


def central_label(labels: np.ndarray) -> int:
    """Label of the component at the centre pixel of a label image, else of the one nearest the centre; 0 if none."""
    h, w = labels.shape
    label = int(labels[h // 2, w // 2])
    if label == 0 and labels.any():
        ys, xs = np.nonzero(labels)
        nearest = np.argmin((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2)
        label = int(labels[ys[nearest], xs[nearest]])
    return label


def _central_component(binary: np.ndarray) -> np.ndarray:
    """The connected component at the centre pixel, else the one nearest the centre."""
    if not binary.any():
        return binary
    labels, _ = ndimage.label(binary, structure=EIGHT_CONNECTED)
    return labels == central_label(labels)


def _centroid(weights: np.ndarray) -> tuple[float, float]:
    total = weights.sum()
    return (
        float(weights.sum(axis=1) @ np.arange(weights.shape[0]) / total),
        float(weights.sum(axis=0) @ np.arange(weights.shape[1]) / total),
    )


def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def _close(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing by a disc, computed on the mask's bounding box padded so edges do not erode."""
    if radius <= 0 or not mask.any():
        return mask
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = np.pad(mask[r0:r1, c0:c1], 2 * radius)
    closed = ndimage.binary_closing(box, structure=_disc(radius))
    out = np.zeros_like(mask)
    # the closed region can reach `radius` beyond the box only inside the padding; clip to the image
    y0, x0 = max(r0 - 2 * radius, 0), max(c0 - 2 * radius, 0)
    y1, x1 = min(r1 + 2 * radius, mask.shape[0]), min(c1 + 2 * radius, mask.shape[1])
    by0, bx0 = y0 - (r0 - 2 * radius), x0 - (c0 - 2 * radius)
    out[y0:y1, x0:x1] = closed[by0 : by0 + (y1 - y0), bx0 : bx0 + (x1 - x0)]
    return out


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Integer translation of the first two axes, zero fill."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _square_resize(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    image, mask = image[y0 : y0 + side, x0 : x0 + side], mask[y0 : y0 + side, x0 : x0 + side]
    if side == size:
        return image, mask
    image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.BILINEAR))
    mask_img = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return image, np.asarray(mask_img) > 127
