"""Galaxy isolation: triangle-threshold the blurred image, keep the central component, mask the rest."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.segmentation import watershed

logger = logging.getLogger(__name__)

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
MAX_MASK_FRACTION = 0.9  # a mask covering more of the image than this is not a galaxy
MIN_MASK_PIXELS = 10
# A target is ambiguous when another deblended source is a major companion (at least 1/3 of the target's
# flux, the usual major-pair ratio) whose light centre lies within AMBIGUOUS_RADIUS of the image centre:
# a fraction of the short side, 0.118 = the petroR90 of a Galaxy Zoo cutout (scale 0.02 petroR90 per px,
# 424 px), i.e. the companion overlaps the target's own light.
AMBIGUOUS_FLUX_RATIO = 1 / 3
AMBIGUOUS_RADIUS = 0.118


@dataclass(frozen=True)
class SegmentParams:
    """Segmentation settings.

    Attributes:
        sigma: Gaussian blur before thresholding, pixels.
        closing_radius: radius of the disc used to close the mask, pixels (0 = no closing).
        recentre: shift the image so the mask's flux-weighted centroid lands on the centre pixel.
        out_size: side of the square output, pixels; None keeps the input shape.
        deblend: split the central component into the sources it merges (`deblend`) and keep the target's.
        deblend_levels: thresholds between the detection threshold and the peak at which branches are sought.
        deblend_contrast: least fraction of the component's flux a branch needs to be a source of its own.
    """

    sigma: float = 2.0
    closing_radius: int = 3
    recentre: bool = True
    out_size: int | None = None
    deblend: bool = True
    deblend_levels: int = 24
    deblend_contrast: float = 0.05

    def __post_init__(self) -> None:
        if self.deblend_levels < 1 or not 0 < self.deblend_contrast < 1:
            raise ValueError(f"deblend_levels={self.deblend_levels} must be >= 1 and deblend_contrast="
                             f"{self.deblend_contrast} in (0, 1)")


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
        n_removed: other sources split off the central component by deblending (0 without).
        flux_removed: their share of the component's flux above the threshold (blurred luma).
        ambiguous: another source about as bright as the target sits near the centre (see
            AMBIGUOUS_FLUX_RATIO): which one is "the galaxy" is not clear.
    """

    image: np.ndarray
    mask: np.ndarray
    threshold: float
    degenerate: bool
    n_removed: int = 0
    flux_removed: float = 0.0
    ambiguous: bool = False


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
    the blurred luma (`triangle_threshold`); of the connected (8-neighbour) components above it
    (`connectedComponents`) keep the one containing the centre pixel, or if the centre is background
    the one whose nearest pixel is closest to the image centre (a bright star elsewhere never wins,
    whatever its size); with `deblend`, that component split into the sources it merges (`deblend`) and
    the one at the centre kept; closing (`morphologyEx`) with a disc of `closing_radius`, which does not erode
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
    blurred, threshold, mask = detect(rgb, params.sigma)
    n_removed, flux_removed, ambiguous = 0, 0.0, False
    if params.deblend and mask.any():
        labels = deblend(blurred, mask, threshold, params.deblend_levels, params.deblend_contrast)
        mask, n_removed, flux_removed, ambiguous = _target(labels, blurred, threshold)
    if params.closing_radius > 0:  # outside the image counts as mask for the erosion: edges do not erode
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disc(params.closing_radius))
    mask = mask.astype(bool)
    n_mask = int(mask.sum())
    degenerate = n_mask < MIN_MASK_PIXELS or n_mask > MAX_MASK_FRACTION * h * w
    if degenerate:
        logger.debug("degenerate mask: %d of %d pixels, threshold %.2f", n_mask, h * w, threshold)
        image = rgb
    else:
        image = cv2.bitwise_and(rgb, rgb, mask=mask.view(np.uint8))
        m, (x0, y0) = {"m00": 0.0}, (0, 0)
        if params.recentre:  # luma-weighted moments in the mask, computed on its bounding box
            x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
            box = (slice(y0, y0 + bh), slice(x0, x0 + bw))
            m = cv2.moments(to_gray(rgb[box]) * mask[box])
        if m["m00"] > 0:
            dy = round((h - 1) / 2 - (y0 + m["m01"] / m["m00"]))
            dx = round((w - 1) / 2 - (x0 + m["m10"] / m["m00"]))
            image, mask = _shift(image, dy, dx), _shift(mask.view(np.uint8), dy, dx).view(bool)
    if params.out_size is not None:
        image, mask = _square_resize(image, mask, params.out_size)
    return SegmentResult(image=np.ascontiguousarray(image), mask=mask, threshold=threshold, degenerate=degenerate,
                         n_removed=n_removed, flux_removed=flux_removed, ambiguous=ambiguous)


def detect(rgb: np.ndarray, sigma: float) -> tuple[np.ndarray, float, np.ndarray]:
    """The detection step of `segment`: luma (`cvtColor`, uint8), Gaussian blur (`sigma` px; 0: none), triangle
    threshold, and the 8-connected component above it at (or nearest) the centre.

    Returns:
        (blurred luma (H, W) uint8, threshold, central component (H, W) uint8 0/1).
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W) uint8 luma (BT.601 weights, rounded)
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else gray
    threshold = triangle_threshold(blurred)
    binary = cv2.threshold(blurred, threshold, 1, cv2.THRESH_BINARY)[1]  # (H, W) uint8, 1 above the threshold
    return blurred, threshold, central_component(binary)


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


def triangle_threshold(gray: np.ndarray) -> float:
    """Triangle threshold (Zack, Rogers & Latt 1977) of a uint8 image: OpenCV's THRESH_TRIANGLE, moved one level
    back towards the histogram peak, where skimage's `threshold_triangle` and the previous releases put it
    (OpenCV places it one grey level further into the tail). Pixels brighter than it are foreground."""
    level = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_TRIANGLE)[0]
    peak = int(np.argmax(cv2.calcHist([gray], [0], None, [256], [0, 256])))
    return level - 1 if level > peak else level + 1


def deblend(blurred: np.ndarray, mask: np.ndarray, threshold: float, n_levels: int = 24,
            contrast: float = 0.05) -> np.ndarray:
    """Splits one connected component into the sources it merges: multi-threshold branches, then watershed.

    As SExtractor's and photutils' deblending: at `n_levels` thresholds between `threshold` and the
    component's peak (spaced quadratically, denser near the faint end), the pixels of `blurred` above
    the level split into connected pieces; going down from the peak, a piece holding two or more
    branches (pieces of the level above) keeps them apart when at least two of them hold `contrast`
    of the component's flux (blurred luma above `threshold`) each; otherwise it merges them into its
    brightest. The surviving branches seed a watershed on the inverted luma, which gives every pixel
    of the component to one of them along the valleys between them (skimage's watershed: see below).

    Args:
        blurred: (H, W) uint8 blurred luma.
        mask: (H, W) uint8 or bool, one connected component of `blurred > threshold`.
        threshold: the detection threshold, grey levels.
        n_levels: number of thresholds.
        contrast: least flux fraction of a source.

    Returns:
        (H, W) int32 labels: 1..K the sources, 0 outside `mask`.
    """
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    b, m = blurred[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(bool)  # the component's bounding box
    flux = (np.clip(b.astype(np.float64) - threshold, 0.0, None) * m).ravel()
    least = contrast * flux.sum()  # a source's least flux
    top = float(b[m].max())
    steps = np.linspace(0.0, 1.0, n_levels + 2)[1:-1] ** 2
    levels = np.unique(np.round(threshold + (top - threshold) * steps))
    inside = np.where(m, b, 0).astype(np.uint8)  # other components in the box: below every level (>= threshold)
    darker = -inside.ravel().astype(np.int16)
    order = np.argsort(darker, kind="stable")  # flat positions in the box, brightest first
    n_above = np.searchsorted(darker[order], -levels)  # pixels brighter than each level: order[:n_above]
    # The branches at the current level: flat positions and branch numbers 1..k. Every branch pixel is
    # above the next (lower) level. While one piece holds at most one branch, the branch is all pixels
    # above the level (`lazy` of them), kept as a count.
    at, branch_of = np.zeros(0, np.int64), np.zeros(0, np.int32)
    k, lazy = 0, None
    for level, above in zip(levels[::-1], n_above[::-1], strict=True):
        n, comp = cv2.connectedComponents(cv2.threshold(inside, level, 1, cv2.THRESH_BINARY)[1], connectivity=8)
        if n == 2 and k <= 1:  # one piece: it is (or becomes) branch 1
            k, lazy = 1, above
            continue
        if lazy is not None:
            at, branch_of, lazy = order[:lazy], np.ones(lazy, np.int32), None
        comp = comp.ravel()
        piece_at = comp[at]  # (M,) the piece holding each branch pixel
        code = piece_at.astype(np.int64) * (k + 1) + branch_of
        pairs = np.flatnonzero(np.bincount(code)) if n * (k + 1) <= 8 * len(code) + 4096 else np.unique(code)
        piece, branch = pairs // (k + 1), (pairs % (k + 1)).astype(np.int32)  # (piece, branch) pairs
        count = np.bincount(piece, minlength=n)  # branches per piece
        owner = np.zeros(n, np.int32)  # the branch a piece becomes; 0: the piece keeps its split branches
        fresh = np.flatnonzero(count == 0)[1:]  # pieces without a branch (0 is the background): new peaks
        owner[fresh] = k + 1 + np.arange(len(fresh), dtype=np.int32)
        single = count[piece] == 1
        owner[piece[single]] = branch[single]
        kept = np.zeros(len(at), bool)
        if (count >= 2).any():
            branch_flux = np.bincount(branch_of, flux[at], minlength=k + 1)  # flux of each branch above this level
            split, significant = np.zeros(n, bool), np.zeros(k + 1, bool)
            for c in np.flatnonzero(count >= 2):
                members = branch[piece == c]
                strong = members[branch_flux[members] >= least]
                if len(strong) >= 2:
                    split[c], significant[strong] = True, True
                else:
                    owner[c] = members[np.argmax(branch_flux[members])]
            kept = split[piece_at] & significant[branch_of]  # a split piece keeps its significant branches
        k += len(fresh)
        px = order[:above]
        grown = owner[comp[px]]
        at = np.concatenate([px[grown > 0], at[kept]])
        branch_of = np.concatenate([grown[grown > 0], branch_of[kept]])
    labels = np.zeros(blurred.shape, np.int32)
    if lazy is not None or len(np.unique(branch_of)) <= 1:  # one source: the component itself
        labels[y0:y1, x0:x1] = m
        return labels
    seeds = np.zeros(b.size, np.int32)
    seeds[at] = branch_of
    # Flooding by brightness from the branches (skimage's watershed, as photutils uses): cv2.watershed
    # floods by the local colour gradient, which is flattest exactly at the saddle between two galaxies.
    labels[y0:y1, x0:x1] = watershed(-b.astype(np.int32), seeds.reshape(b.shape), mask=m)
    return labels


def _target(labels: np.ndarray, blurred: np.ndarray, threshold: float) -> tuple[np.ndarray, int, float, bool]:
    """The target's (central) source of deblended `labels`: its uint8 mask, the other sources' count and flux
    share, and whether the target is ambiguous (AMBIGUOUS_FLUX_RATIO, AMBIGUOUS_RADIUS)."""
    h, w = labels.shape
    target = central_label(labels)
    inside = labels > 0
    lab = labels[inside]
    flux = np.clip(blurred[inside].astype(np.float64) - threshold, 0.0, None)  # (M,)
    fluxes = np.bincount(lab, flux)  # (K + 1,) per source
    present = np.bincount(lab) > 0
    others = [i for i in np.flatnonzero(present) if i != target]
    ambiguous = False
    ys, xs = np.nonzero(inside)
    for i in others:
        if fluxes[i] >= AMBIGUOUS_FLUX_RATIO * fluxes[target] and fluxes[i] > 0:
            sel = lab == i
            cy, cx = ys[sel] @ flux[sel] / fluxes[i], xs[sel] @ flux[sel] / fluxes[i]
            ambiguous |= bool(np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) <= AMBIGUOUS_RADIUS * min(h, w))
    total = float(fluxes.sum())
    removed = float(fluxes[others].sum()) / total if total > 0 else 0.0
    return (labels == target).astype(np.uint8), len(others), removed, ambiguous


def central_component(binary: np.ndarray) -> np.ndarray:
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
