"""High-confidence 5-class Galaxy Zoo 2 subset selected by thresholds on debiased vote fractions."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from specmorph.errors import InputError

logger = logging.getLogger(__name__)

FIVE_CLASSES: tuple[str, ...] = ("cigar", "edge_on", "in_between", "round", "spiral")

# Hart+16 debiased vote-fraction columns the selection reads.
COL_SMOOTH = "t01_smooth_or_features_a01_smooth_debiased"
COL_FEATURES = "t01_smooth_or_features_a02_features_or_disk_debiased"
COL_EDGE_ON = "t02_edgeon_a04_yes_debiased"
COL_NOT_EDGE_ON = "t02_edgeon_a05_no_debiased"
COL_SPIRAL = "t04_spiral_a08_spiral_debiased"
COL_ROUND = "t07_rounded_a16_completely_round_debiased"
COL_IN_BETWEEN = "t07_rounded_a17_in_between_debiased"
COL_CIGAR = "t07_rounded_a18_cigar_shaped_debiased"
REQUIRED_COLUMNS: tuple[str, ...] = (
    COL_SMOOTH,
    COL_FEATURES,
    COL_EDGE_ON,
    COL_NOT_EDGE_ON,
    COL_SPIRAL,
    COL_ROUND,
    COL_IN_BETWEEN,
    COL_CIGAR,
)


@dataclass(frozen=True)
class HighConfidence:
    """Vote-fraction thresholds (all inclusive, >=) of the 5-class subset.

    Defaults: the features/disc, edge-on and spiral cuts are Willett et al. (2013, Table 3); the
    smooth and roundness cuts are those of Zhu et al. (2019, MNRAS 483, 1214), who built this
    5-class GZ2 sample.

    Attributes:
        features: t01 features/disc fraction for edge_on and spiral.
        not_edge_on: t02 'no' fraction for spiral.
        spiral: t04 spiral fraction for spiral.
        edge_on: t02 'yes' fraction for edge_on.
        smooth: t01 smooth fraction for round, in_between and cigar.
        rounded: t07 fraction of the chosen roundness answer.
    """

    features: float = 0.430
    not_edge_on: float = 0.715
    spiral: float = 0.619
    edge_on: float = 0.602
    smooth: float = 0.469
    rounded: float = 0.50


def select_high_confidence(df: pd.DataFrame, thr: HighConfidence | None = None) -> pd.Series:
    """Assign each GZ2 row to one of FIVE_CLASSES when its debiased votes are confident.

    A row that meets the cuts of exactly one class gets that class; a row meeting none, or more
    than one (possible at the boundaries, since debiased fractions need not sum to 1), gets NA.
    NaN fractions never pass a cut.

    Args:
        df: Hart+16 table with the REQUIRED_COLUMNS debiased fractions.
        thr: thresholds; None means the literature defaults.

    Returns:
        A string Series on df's index, values in FIVE_CLASSES or NA.

    Raises:
        InputError: listing the missing columns, or naming a column that is not numeric.
    """
    thr = thr or HighConfidence()
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"GZ2 catalogue lacks the debiased vote columns {missing}")
    f = {}
    for col in REQUIRED_COLUMNS:
        column = df[col]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            f[col] = column.to_numpy(dtype=float)  # (N,) vote fraction; already numbers
            continue
        try:
            f[col] = pd.to_numeric(column).to_numpy(dtype=float)  # (N,) vote fraction
        except (TypeError, ValueError) as err:
            raise InputError(f"GZ2 column {col!r} is not numeric: {err}") from err

    disc = f[COL_FEATURES] >= thr.features
    smooth = f[COL_SMOOTH] >= thr.smooth
    passes = {
        "cigar": smooth & (f[COL_CIGAR] >= thr.rounded),
        "edge_on": disc & (f[COL_EDGE_ON] >= thr.edge_on),
        "in_between": smooth & (f[COL_IN_BETWEEN] >= thr.rounded),
        "round": smooth & (f[COL_ROUND] >= thr.rounded),
        "spiral": disc & (f[COL_NOT_EDGE_ON] >= thr.not_edge_on) & (f[COL_SPIRAL] >= thr.spiral),
    }
    n_hits = np.zeros(len(df), dtype=np.int64)  # (N,) classes passed
    which = np.zeros(len(df), dtype=np.int64)  # (N,) index into FIVE_CLASSES of the class passed, if one
    for k, c in enumerate(FIVE_CLASSES):
        n_hits += passes[c]
        which[passes[c]] = k
    which[n_hits != 1] = -1
    names = pd.array(np.array(FIVE_CLASSES, dtype=object), dtype="string")
    out = pd.Series(names.take(which, allow_fill=True), index=df.index, name="class5")  # NA where -1
    logger.info(
        "high-confidence GZ2 subset: %d of %d rows selected, %d ambiguous (more than one class)",
        int((n_hits == 1).sum()),
        len(df),
        int((n_hits > 1).sum()),
    )
    return out
