"""Galaxy isolation: triangle-threshold the blurred image, keep the central component, mask the rest."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
MAX_MASK_FRACTION = 0.9  # a mask covering more of the image than this is not a galaxy
MIN_MASK_PIXELS = 10


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


def segment(rgb: np.ndarray, params: SegmentParams | None = None) -> SegmentResult:
    """Isolate the central galaxy of a cutout.

    Steps, each an OpenCV call: luma (`cvtColor`, uint8); Gaussian blur (`sigma`); triangle threshold of
    the blurred luma (`_triangle`); of the connected (8-neighbour) components above it
    (`connectedComponents`) keep the one containing the centre pixel, or if the centre is background
    the one whose nearest pixel is closest to the image centre (a bright star elsewhere never wins,
    whatever its size); closing (`morphologyEx`) with a disc of `closing_radius`, which does not erode
    at the image edges; zero the pixels outside the mask; optionally shift (`warpAffine`) the centroid
    (`moments` of the luma inside the mask) to the centre; optionally centre-crop to a square and
    resize to `out_size` (`resize_square`).

    Args:
        rgb: (H, W, 3) uint8 image.
        params: settings; defaults to `SegmentParams()`.

    Returns:
        SegmentResult.
    """
    params = params or SegmentParams()
    _check_rgb(rgb)
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W) uint8 luma (BT.601 weights, rounded)
    blurred = cv2.GaussianBlur(gray, (0, 0), params.sigma, borderType=cv2.BORDER_REFLECT) if params.sigma > 0 else gray
    threshold = _triangle(blurred)
    binary = cv2.threshold(blurred, threshold, 1, cv2.THRESH_BINARY)[1]  # (H, W) uint8, 1 above the threshold
    mask = _central_component(binary)
    if params.closing_radius > 0:  # outside the image counts as mask for the erosion: edges do not erode
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disc(params.closing_radius))
    mask = mask.astype(bool)
    n_mask = int(mask.sum())
    degenerate = n_mask < MIN_MASK_PIXELS or n_mask > MAX_MASK_FRACTION * h * w
    if degenerate:
        logger.debug("degenerate mask: %d of %d pixels, threshold %.2f", n_mask, h * w, threshold)
        image = rgb
    else:
        image = rgb * mask[:, :, None]
        m = cv2.moments(to_gray(rgb) * mask) if params.recentre else {"m00": 0.0}  # luma-weighted, in the mask
        if m["m00"] > 0:
            dy, dx = round((h - 1) / 2 - m["m01"] / m["m00"]), round((w - 1) / 2 - m["m10"] / m["m00"])
            image, mask = _shift(image, dy, dx), _shift(mask.view(np.uint8), dy, dx).view(bool)
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


def _triangle(gray: np.ndarray) -> float:
    """Triangle threshold (Zack, Rogers & Latt 1977) of a uint8 image: OpenCV's THRESH_TRIANGLE, moved one level
    back towards the histogram peak, where skimage's `threshold_triangle` and the previous releases put it
    (OpenCV places it one grey level further into the tail). Pixels brighter than it are foreground."""
    level = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_TRIANGLE)[0]
    peak = int(np.argmax(cv2.calcHist([gray], [0], None, [256], [0, 256])))
    return level - 1 if level > peak else level + 1


def _central_component(binary: np.ndarray) -> np.ndarray:
    """(H, W) uint8 0/1: the 8-connected component of `binary` at the centre pixel, else the one nearest the centre."""
    n, labels = cv2.connectedComponents(binary, connectivity=8)
    return (labels == central_label(labels)).astype(np.uint8) if n > 1 else np.zeros_like(binary)


def _disc(radius: int) -> np.ndarray:
    """The structuring element of the closing: pixels within `radius` of the centre (uint8)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (yy**2 + xx**2 <= radius**2).astype(np.uint8)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Integer translation of an (H, W) or (H, W, 3) uint8 image, zero fill."""
    h, w = a.shape[:2]
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(a, move, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """An (S, S, ...) uint8 image resized to (size, size, ...): pixel-area averaging when shrinking (antialiased,
    `cv2.INTER_AREA`), bilinear when enlarging."""
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)


def _square_resize(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crops to a square and resizes to `size`: the image by `resize_square`, the mask nearest."""
    h, w = mask.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    image, mask = image[y0 : y0 + side, x0 : x0 + side], mask[y0 : y0 + side, x0 : x0 + side]
    if side == size:
        return image, mask
    image = resize_square(image, size)
    mask = cv2.resize(np.ascontiguousarray(mask).view(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return image, mask.view(bool)
