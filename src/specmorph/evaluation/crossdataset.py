"""Galaxy10 DECaLS as a second test set: the images of galaxies not seen in training, prepared as at predict time."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord
from tqdm import tqdm

from specmorph.imaging.transforms import PreprocessConfig, apply
from specmorph.io.galaxy10 import Galaxy10
from specmorph.taxonomy import CLASSES, GALAXY10_CLASSES

log = logging.getLogger(__name__)


def galaxy10_holdout(g10: Galaxy10, seen: pd.DataFrame, radius_arcsec: float) -> tuple[np.ndarray, int]:
    """Galaxy10 images usable for validation: in the 8 classes and not of a galaxy seen in training.

    Args:
        g10: The opened Galaxy10 file.
        seen: ra, dec (deg) of every image of every galaxy used in training.
        radius_arcsec: A Galaxy10 image within this radius of a seen galaxy is the same galaxy.

    Returns:
        Indices of usable images, and how many were dropped as seen galaxies.
    """
    in_taxonomy = np.array([GALAXY10_CLASSES[a] in CLASSES for a in g10.ans])
    overlap = np.zeros(len(g10.ans), bool)
    if len(seen):
        c10 = SkyCoord(g10.ra * u.deg, g10.dec * u.deg)
        cs = SkyCoord(seen["ra"].to_numpy() * u.deg, seen["dec"].to_numpy() * u.deg)
        _, sep, _ = c10.match_to_catalog_sky(cs)
        overlap = sep.arcsec < radius_arcsec
    keep = np.flatnonzero(in_taxonomy & ~overlap)
    n_seen = int((in_taxonomy & overlap).sum())
    log.info("Galaxy10: %d images in the 8 classes, %d dropped as galaxies seen in training",
             int(in_taxonomy.sum()), n_seen)
    return keep, n_seen


def galaxy10_inputs(g10: Galaxy10, rows: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs of Galaxy10 images, by exactly the predict-time preprocessing, and 8-class labels."""
    images = np.stack([apply(g10.images[int(i)], cfg) for i in tqdm(rows, desc="Galaxy10", mininterval=2)]) \
        if len(rows) else np.zeros((0, 3, cfg.size, cfg.size), np.float32)
    labels = np.array([CLASSES.index(GALAXY10_CLASSES[g10.ans[int(i)]]) for i in rows], dtype=np.int64)
    return images, labels
