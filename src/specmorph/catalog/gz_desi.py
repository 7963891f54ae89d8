"""Galaxy Zoo DESI (Walmsley et al. 2023) vote tables as Galaxy Zoo 2 (Hart et al. 2016) tables.

GZ DESI asked volunteers (and its CNN) the GZ DECaLS decision tree. Its public catalogues name each
answer's vote fraction `<question>_<answer>_fraction` (e.g. `smooth-or-featured_smooth_fraction`,
`disk-edge-on_yes_fraction`, `bar_strong_fraction`), with the galaxy's `dr8_id` (`<brickid>_<objid>` of
the DESI Legacy Surveys DR8), `ra` and `dec`.

`gz_desi_as_gz2` turns such a table into the layout the pipeline reads for GZ2, so that the crossmatch,
the labels and the 5-class subset run unchanged:

- `gz2_class` is built as Hart et al. built theirs: walking the tree from the first question and taking
  the answer with the largest vote fraction at each step (`desi_class`). The string then maps to the 8
  classes by `catalog.labels.gz2_to_taxonomy`, exactly as a GZ2 row does:

  | path (the largest fraction at each step) | gz2_class | 8-class label |
  |---|---|---|
  | smooth, how-rounded round / in-between / cigar-shaped | Er / Ei / Ec | round / in-between / cigar smooth |
  | featured, edge-on, edge-on-bulge rounded / boxy / none | Ser / Seb / Sen | edge-on with / with / without bulge |
  | featured, face-on, bar strong + weak > no | SB... | barred spiral |
  | featured, face-on, no bar, arms, winding tight or medium | S...t, S...m | unbarred tight spiral |
  | featured, face-on, no bar, arms, winding loose | S...l | unbarred loose spiral |
  | featured, face-on, no bar, no spiral arms | S<bulge> | left out, as GZ2's discs without arms |
  | artifact | A | left out |

  The bulge letter (GZ DESI's five bulge-size answers: dominant a, large b, moderate b, small c, none d)
  and the arm count (1-4, more-than-4 `+`, cant-tell `?`) are kept for completeness; neither changes the
  8-class label. GZ2 split "barred" from a yes/no question; GZ DESI asks strong / weak / no, and
  strong + weak against no is the same split.
- The 5-class subset's eight Hart+16 debiased columns are filled from the same questions' GZ DESI
  fractions (t01 smooth / features ← smooth-or-featured, t02 edge-on yes / no ← disk-edge-on,
  t04 spiral ← has-spiral-arms yes, t07 round / in-between / cigar ← how-rounded). GZ DESI's fractions
  are not debiased the way Hart et al.'s are, so the thresholds mean a little less there.
- `dr7objid`, the integer key the pipeline gives GZ2 rows (and their `<dr7objid>.jpg` images), is
  `brickid × 10⁶ + objid` from the `dr8_id` (below 10¹², so it never equals a real SDSS DR7 objid,
  which is about 5.8 × 10¹⁷); the `dr8_id` is kept beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specmorph.catalog import selection as sel
from specmorph.errors import InputError

ID_COLUMN = "dr8_id"
OBJID_FACTOR = 1_000_000  # dr7objid = brickid * OBJID_FACTOR + objid

# question -> {answer: letter of the gz2_class grammar}; the fraction column is f"{question}_{answer}_fraction".
_SMOOTH = "smooth-or-featured"
_TREE: dict[str, dict[str, str]] = {
    _SMOOTH: {"smooth": "E", "featured-or-disk": "S", "artifact": "A"},
    "how-rounded": {"round": "r", "in-between": "i", "cigar-shaped": "c"},
    "disk-edge-on": {"yes": "e", "no": ""},
    "edge-on-bulge": {"rounded": "r", "boxy": "b", "none": "n"},
    "bar": {"strong": "B", "weak": "B", "no": ""},
    "bulge-size": {"dominant": "a", "large": "b", "moderate": "b", "small": "c", "none": "d"},
    "has-spiral-arms": {"yes": "y", "no": ""},
    "spiral-arm-count": {"1": "1", "2": "2", "3": "3", "4": "4", "more-than-4": "+", "cant-tell": "?"},
    "spiral-winding": {"tight": "t", "medium": "m", "loose": "l"},
}
# The Hart+16 debiased columns of the 5-class subset, from the GZ DESI fraction of the same answer.
_AS_GZ2_VOTES: dict[str, str] = {
    sel.COL_SMOOTH: "smooth-or-featured_smooth_fraction",
    sel.COL_FEATURES: "smooth-or-featured_featured-or-disk_fraction",
    sel.COL_EDGE_ON: "disk-edge-on_yes_fraction",
    sel.COL_NOT_EDGE_ON: "disk-edge-on_no_fraction",
    sel.COL_SPIRAL: "has-spiral-arms_yes_fraction",
    sel.COL_ROUND: "how-rounded_round_fraction",
    sel.COL_IN_BETWEEN: "how-rounded_in-between_fraction",
    sel.COL_CIGAR: "how-rounded_cigar-shaped_fraction",
}


def fraction_column(question: str, answer: str) -> str:
    """The GZ DESI column of one answer's vote fraction, e.g. ('bar', 'strong') -> 'bar_strong_fraction'."""
    return f"{question}_{answer}_fraction"


FRACTION_COLUMNS: tuple[str, ...] = tuple(fraction_column(q, a) for q, answers in _TREE.items() for a in answers)
REQUIRED_COLUMNS: tuple[str, ...] = (ID_COLUMN, "ra", "dec", *FRACTION_COLUMNS)


def is_gz_desi(columns: pd.Index | list[str]) -> bool:
    """Whether a table's columns are GZ DESI's (its id and first question) rather than a GZ2 table's."""
    return ID_COLUMN in columns and fraction_column(_SMOOTH, "smooth") in columns


def _fractions(df: pd.DataFrame, question: str) -> tuple[list[str], np.ndarray]:
    """The answers of `question` and their (N, A) vote fractions; a blank (unasked) answer counts 0."""
    answers = list(_TREE[question])
    cols = []
    for a in answers:
        col = df[fraction_column(question, a)]
        try:
            cols.append(pd.to_numeric(col).to_numpy(dtype=float))
        except (TypeError, ValueError) as err:
            raise InputError(f"GZ DESI column {col.name!r} is not numeric: {err}") from err
    return answers, np.nan_to_num(np.column_stack(cols), nan=0.0)


def _pick(df: pd.DataFrame, question: str) -> np.ndarray:
    """(N,) str: the gz2_class letter of each row's most-voted answer (ties: the first answer listed)."""
    answers, f = _fractions(df, question)
    if question == "bar":  # strong + weak against no, as GZ2's yes / no
        return np.where(f[:, 0] + f[:, 1] > f[:, 2], "B", "")
    return np.array([_TREE[question][a] for a in answers], dtype=str)[f.argmax(axis=1)]


def desi_class(df: pd.DataFrame) -> pd.Series:
    """Each row's gz2_class-style string from its GZ DESI vote fractions (see the module docstring).

    Args:
        df: A GZ DESI table with `FRACTION_COLUMNS`.

    Returns:
        A string Series on df's index: E[ric], Se[rbn], S[B][a-d][1-4+?][tml], S[B][a-d] or A.
    """
    missing = [c for c in FRACTION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"GZ DESI table lacks the vote-fraction columns {missing}")
    kind = _pick(df, _SMOOTH)
    rounded, edge, bulge_shape = _pick(df, "how-rounded"), _pick(df, "disk-edge-on"), _pick(df, "edge-on-bulge")
    bar, bulge, arms = _pick(df, "bar"), _pick(df, "bulge-size"), _pick(df, "has-spiral-arms")
    count, winding = _pick(df, "spiral-arm-count"), _pick(df, "spiral-winding")
    add = np.char.add
    face_on = add(add(add("S", bar), bulge), np.where(arms != "", add(count, winding), ""))
    disc = np.where(edge != "", add("Se", bulge_shape), face_on)
    out = np.where(kind == "E", add("E", rounded), np.where(kind == "A", "A", disc))
    return pd.Series(out.astype(object), index=df.index, name="gz2_class")


def _dr7objid(ids: pd.Series) -> np.ndarray:
    """`brickid × 10⁶ + objid` of each `<brickid>_<objid>` dr8_id; a malformed one names its row."""
    text = ids.astype(str).str.strip()
    bad = np.flatnonzero(~text.str.fullmatch(r"(\d+)_(\d+)").fillna(False).to_numpy(dtype=bool))
    split = text.str.split("_", expand=True)
    if not bad.size:
        objid = split[1].astype(np.int64).to_numpy()
        bad = np.flatnonzero(objid >= OBJID_FACTOR)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"row {i}: {ID_COLUMN}={ids.iloc[i]!r} is not <brickid>_<objid> with objid < {OBJID_FACTOR}")
    return split[0].astype(np.int64).to_numpy() * OBJID_FACTOR + split[1].astype(np.int64).to_numpy()


def gz_desi_as_gz2(df: pd.DataFrame) -> pd.DataFrame:
    """A GZ DESI vote table in the GZ2 (Hart+16) layout: dr7objid, ra, dec, gz2_class, the 5-class columns, dr8_id.

    Args:
        df: GZ DESI rows with `REQUIRED_COLUMNS` (other columns are dropped).

    Returns:
        One row per input row, in order.

    Raises:
        InputError: naming the missing columns, a non-numeric fraction column or a malformed dr8_id's row.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"GZ DESI table lacks the columns {missing}")
    df = df.reset_index(drop=True)
    out = pd.DataFrame({"dr7objid": _dr7objid(df[ID_COLUMN]), "ra": df["ra"], "dec": df["dec"],
                        "gz2_class": desi_class(df)})
    for gz2_col, desi_col in _AS_GZ2_VOTES.items():
        out[gz2_col] = pd.to_numeric(df[desi_col]).fillna(0.0)
    out[ID_COLUMN] = df[ID_COLUMN].astype(str).str.strip()
    return out
