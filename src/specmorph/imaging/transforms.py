"""The one image preprocessing path, shared by training and `specmorph predict`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specmorph.imaging.segment import SegmentParams, resize_square, segment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessConfig:
    """How a cutout becomes a network input; saved with every checkpoint and reused at predict time.

    Attributes:
        size: side of the square network input, pixels.
        crop_fraction: central fraction of the (square-cropped) image kept before resizing, in (0, 1].
        segment: mask everything but the central galaxy first (`segment`).
        segment_params: segmentation settings, used when `segment` is true.
    """

    size: int
    crop_fraction: float = 1.0
    segment: bool = False
    segment_params: SegmentParams = field(default_factory=SegmentParams)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"PreprocessConfig.size must be >= 1, got {self.size}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"PreprocessConfig.crop_fraction must be in (0, 1], got {self.crop_fraction}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for a checkpoint or JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        seg_known = {f.name for f in dataclasses.fields(SegmentParams)}
        seg = dict(d.get("segment_params") or {})
        unknown = sorted(set(d) - known) + [f"segment_params.{k}" for k in sorted(set(seg) - seg_known)]
        if unknown:
            raise ValueError(f"unknown PreprocessConfig keys: {', '.join(unknown)}")
        seg.setdefault("deblend", False)  # checkpoints written before deblending existed were trained without it
        return cls(**{**d, "segment_params": SegmentParams(**seg)})


def preprocess(rgb: np.ndarray, size: int, crop_fraction: float = 1.0) -> np.ndarray:
    """Centre-crop to a square, keep the central `crop_fraction`, resize and scale to a network input.

    Args:
        rgb: (H, W, 3) uint8 image.
        size: output side, pixels.
        crop_fraction: central fraction of the square crop kept before resizing, in (0, 1].

    Returns:
        (3, size, size) float32 in [0, 1], channels first (R, G, B), C-contiguous.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    h, w = rgb.shape[:2]
    side = max(1, round(min(h, w) * crop_fraction))
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = rgb[y0 : y0 + side, x0 : x0 + side]  # (side, side, 3)
    if side != size:
        crop = resize_square(crop, size)
    return np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def apply(rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Optional segmentation, then `preprocess`; deterministic.

    Args:
        rgb: (H, W, 3) uint8 image.
        cfg: preprocessing settings.

    Returns:
        (3, cfg.size, cfg.size) float32 in [0, 1].
    """
    if cfg.segment:
        rgb = segment(rgb, cfg.segment_params).image
    return preprocess(rgb, cfg.size, cfg.crop_fraction)
