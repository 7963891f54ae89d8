"""The bare-OpenCV baseline of the segmentation and predict benchmarks: our segmentation steps as direct cv2 calls."""

from __future__ import annotations

import cv2
import numpy as np

from specmorph.imaging.segment import SegmentParams


def cv2_segment(path: str, sp: SegmentParams) -> tuple[np.ndarray, np.ndarray]:
    """imread, luma, blur, triangle threshold, central 8-connected component, closing, recentring, resize.

    The same steps as `imaging.segment.segment` after `io.images.read_image`, with nothing but OpenCV and
    numpy (OpenCV's own triangle level and elliptical closing element: masks close to ours, not
    bit-identical). Returns the masked RGB image and its bool mask, resized to `sp.out_size` when set.
    """
    side = 2 * sp.closing_radius + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    blurred = cv2.GaussianBlur(gray, (0, 0), sp.sigma)
    _, binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_TRIANGLE)
    _, labels = cv2.connectedComponents(binary, connectivity=8)
    label = labels[h // 2, w // 2]
    if label == 0 and binary.any():
        ys, xs = np.nonzero(binary)
        nearest = np.argmin((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2)
        label = labels[ys[nearest], xs[nearest]]
    mask = cv2.morphologyEx((labels == label).astype(np.uint8), cv2.MORPH_CLOSE, disc)
    image = cv2.bitwise_and(rgb, rgb, mask=mask)
    m = cv2.moments(cv2.bitwise_and(gray, gray, mask=mask))
    if m["m00"] > 0:
        shift = np.float32([[1, 0, round((w - 1) / 2 - m["m10"] / m["m00"])],
                            [0, 1, round((h - 1) / 2 - m["m01"] / m["m00"])]])
        image = cv2.warpAffine(image, shift, (w, h), flags=cv2.INTER_NEAREST)
        mask = cv2.warpAffine(mask, shift, (w, h), flags=cv2.INTER_NEAREST)
    if sp.out_size is not None:
        image = cv2.resize(image, (sp.out_size, sp.out_size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (sp.out_size, sp.out_size), interpolation=cv2.INTER_NEAREST)
    return image, mask.astype(bool)
