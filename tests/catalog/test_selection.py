"""Tests of the high-confidence 5-class GZ2 selection at its threshold boundaries."""

import numpy as np
import pandas as pd
import pytest

from specmorph.catalog.selection import (
    COL_CIGAR,
    COL_EDGE_ON,
    COL_FEATURES,
    COL_IN_BETWEEN,
    COL_NOT_EDGE_ON,
    COL_ROUND,
    COL_SMOOTH,
    COL_SPIRAL,
    FIVE_CLASSES,
    REQUIRED_COLUMNS,
    HighConfidence,
    select_high_confidence,
)
from specmorph.errors import InputError

# (votes, expected class or None), votes not given are 0.
ROWS: list[tuple[dict[str, float], str | None]] = [
    ({COL_FEATURES: 0.430, COL_NOT_EDGE_ON: 0.715, COL_SPIRAL: 0.619}, "spiral"),
    ({COL_FEATURES: 0.4299, COL_NOT_EDGE_ON: 0.9, COL_SPIRAL: 0.9}, None),
    ({COL_FEATURES: 0.9, COL_NOT_EDGE_ON: 0.7149, COL_SPIRAL: 0.9}, None),
    ({COL_FEATURES: 0.9, COL_NOT_EDGE_ON: 0.9, COL_SPIRAL: 0.6189}, None),
    ({COL_FEATURES: 0.430, COL_EDGE_ON: 0.602}, "edge_on"),
    ({COL_FEATURES: 0.430, COL_EDGE_ON: 0.6019}, None),
    ({COL_FEATURES: 0.4299, COL_EDGE_ON: 0.9}, None),
    ({COL_SMOOTH: 0.469, COL_ROUND: 0.50}, "round"),
    ({COL_SMOOTH: 0.469, COL_IN_BETWEEN: 0.50}, "in_between"),
    ({COL_SMOOTH: 0.469, COL_CIGAR: 0.50}, "cigar"),
    ({COL_SMOOTH: 0.4689, COL_ROUND: 0.9}, None),
    ({COL_SMOOTH: 0.9, COL_ROUND: 0.4999, COL_IN_BETWEEN: 0.4999}, None),
    ({COL_SMOOTH: 0.9, COL_ROUND: 0.50, COL_IN_BETWEEN: 0.50}, None),  # ambiguous
    ({COL_SMOOTH: 0.5, COL_ROUND: 0.9, COL_FEATURES: 0.5, COL_EDGE_ON: 0.9}, None),  # ambiguous
    ({COL_SMOOTH: np.nan, COL_ROUND: 0.9}, None),
    (
        {COL_FEATURES: 0.55, COL_EDGE_ON: 0.2, COL_NOT_EDGE_ON: 0.8, COL_SPIRAL: 0.7, COL_SMOOTH: 0.45, COL_ROUND: 0.8},
        "spiral",
    ),
]


def frame(rows: list[dict[str, float]]) -> pd.DataFrame:
    df = pd.DataFrame([{c: r.get(c, 0.0) for c in REQUIRED_COLUMNS} for r in rows])
    df["gz2_class"] = "Er"
    return df


def test_boundaries_row_by_row():
    df = frame([r for r, _ in ROWS])
    df.index = [100 + i for i in range(len(df))]
    got = select_high_confidence(df)
    assert list(got.index) == list(df.index)
    assert [None if pd.isna(v) else v for v in got] == [e for _, e in ROWS]
    assert set(got.dropna()) <= set(FIVE_CLASSES)


def test_custom_thresholds():
    df = frame([{COL_SMOOTH: 0.6, COL_ROUND: 0.7}, {COL_FEATURES: 0.5, COL_EDGE_ON: 0.65}])
    assert list(select_high_confidence(df, HighConfidence())) == ["round", "edge_on"]
    got = select_high_confidence(df, HighConfidence(rounded=0.8, edge_on=0.7))
    assert got.isna().all()


def test_missing_columns_listed():
    df = frame([{}]).drop(columns=[COL_SPIRAL, COL_CIGAR])
    with pytest.raises(InputError) as err:
        select_high_confidence(df)
    assert COL_SPIRAL in str(err.value) and COL_CIGAR in str(err.value)


def test_non_numeric_column_named():
    df = frame([{}])
    df[COL_ROUND] = "lots"
    with pytest.raises(InputError, match=COL_ROUND):
        select_high_confidence(df)
