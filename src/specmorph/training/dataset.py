"""Assembles training and test sets from the pipeline products: image table, segmented images, spectra."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from specmorph.errors import InputError
from specmorph.imaging.transforms import preprocess
from specmorph.training.loop import TensorData


@dataclass
class ImageSet:
    """The rows of one split, with their network inputs and, where the galaxy has a cube, its features."""

    table: pd.DataFrame  # rows of the image table (id_str, galaxy_id, source, label, ...)
    data: TensorData


def align(ids: list[str], wanted: pd.Series, what: str) -> np.ndarray:
    """Row positions of `wanted` ids in `ids`, failing by name on ids absent from the product."""
    pos = {s: i for i, s in enumerate(ids)}
    missing = [s for s in wanted if s not in pos]
    if missing:
        raise InputError(f"{what}: {len(missing)} id(s) missing, e.g. {', '.join(map(str, missing[:5]))}")
    return np.array([pos[s] for s in wanted], dtype=np.int64)


def build_set(table: pd.DataFrame, seg_images: np.ndarray, seg_ids: list[str], features: np.ndarray,
              feature_ids: list[str], size: int, crop_fraction: float = 1.0) -> ImageSet:
    """Network inputs of `table`'s rows: segmented images → `preprocess`, spectra by CALIFA name.

    Args:
        table: Image-table rows (labelled).
        seg_images: (M, s, s, 3) uint8 segmented images of the segment stage.
        seg_ids: Their `id_str`.
        features: (K, k) spectral features of the spectra stage.
        feature_ids: Their CALIFA names.
        size: Network input side, px.
        crop_fraction: Central fraction kept before resizing.

    Returns:
        The set; `has_spec` marks rows whose galaxy has a cube.
    """
    rows = align(seg_ids, table["id_str"].astype(str), "segmented images")
    images = np.stack([preprocess(seg_images[r], size, crop_fraction) for r in rows]) if len(rows) else \
        np.zeros((0, 3, size, size), np.float32)
    spec = np.full((len(table), features.shape[1]), np.nan, np.float32)
    fpos = {n: i for i, n in enumerate(feature_ids)}
    califa = table["califa_name"].fillna("").astype(str).tolist()
    has_spec = np.array([c in fpos for c in califa])
    for i, c in enumerate(califa):
        if c in fpos:
            spec[i] = features[fpos[c]]
    data = TensorData(images, np.array(table["label"], dtype=np.int64), spec, has_spec)
    return ImageSet(table.reset_index(drop=True), data)
