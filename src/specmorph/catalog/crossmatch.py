"""One-to-one positional crossmatch of two catalogues on the sky (nearest pair wins)."""

import logging

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord, search_around_sky

from specmorph.errors import InputError
from specmorph.sections import CrossmatchSection

logger = logging.getLogger(__name__)

# Reasons a within-radius pair is left out of the one-to-one match (duplicates report).
REASON_LEFT_TAKEN = "left object matched to a nearer right object"
REASON_RIGHT_TAKEN = "right object matched to a nearer left object"


# Declination cells of the pre-filter: at most this many over the 180 deg (a 1 MB lookup table).
_MAX_DEC_CELLS = 2**20


def _degrees(df: pd.DataFrame, table: str, id_col: str, ra_col: str, dec_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a table's id/ra/dec columns and return its positions.

    Args:
        df: the catalogue.
        table: its name, for error messages.
        id_col: identifier column that must exist.
        ra_col: right ascension column, degrees in [0, 360].
        dec_col: declination column, degrees in [-90, 90].

    Returns:
        (ra, dec), float64 arrays of shape (len(df),), deg.
    """
    missing = [c for c in (id_col, ra_col, dec_col) if c not in df.columns]
    if missing:
        raise InputError(f"table {table!r} has no column(s) {missing}; columns are {list(df.columns)}")
    values = []
    for col, lo, hi in ((ra_col, 0.0, 360.0), (dec_col, -90.0, 90.0)):
        column = df[col]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            v = column.to_numpy(dtype=float)  # deg; already numbers, no coercing copy
        else:
            v = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)  # deg
        bad = ~np.isfinite(v) | (v < lo) | (v > hi)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"table {table!r} column {col!r}: {int(bad.sum())} value(s) not a finite number in "
                f"[{lo:g}, {hi:g}] degrees; first at row {df.index[first]} (value {column.iloc[first]})"
            )
        values.append(v)
    return values[0], values[1]


def _near_in_dec(dec: np.ndarray, ref: np.ndarray, margin_deg: float) -> np.ndarray:
    """Which declinations lie within `margin_deg` of some reference declination (a superset).

    Declinations are binned in cells at least `margin_deg` wide; a row is kept when its cell or
    a neighbouring one holds a reference, so every row within the margin is kept (and some a
    little further). No pair within the margin on the sky can be dropped: |Δdec| never exceeds
    the angular separation, whatever the RA.

    Args:
        dec: (N,) deg, the rows to keep or drop.
        ref: (M,) deg.
        margin_deg: largest |Δdec| that must be kept, deg.

    Returns:
        (N,) bool.
    """
    width = max(margin_deg * (1.0 + 1e-6), 180.0 / _MAX_DEC_CELLS)  # deg; slack for rounding in the division
    n_cells = int(180.0 / width) + 1

    def cell(d: np.ndarray) -> np.ndarray:
        return np.clip(((d + 90.0) / width).astype(np.int64), 0, n_cells - 1) + 1  # (·,), one spare cell each side

    occupied = np.zeros(n_cells + 2, dtype=bool)
    ref_cells = cell(ref)
    for shift in (-1, 0, 1):
        occupied[ref_cells + shift] = True
    return occupied[cell(dec)]


def _ids(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """`column.to_numpy()[rows]`, converting only the taken rows where that gives the same array."""
    if isinstance(column.dtype, np.dtype | pd.StringDtype):
        return column.iloc[rows].to_numpy()  # element-wise conversion: same values and dtype
    return column.to_numpy()[rows]


def _output_names(left_id: str, right_id: str) -> tuple[str, str]:
    """Id column names in the outputs; suffixed `_left`/`_right` only when the two collide."""
    if left_id == right_id:
        return f"{left_id}_left", f"{right_id}_right"
    return left_id, right_id


def crossmatch(
    left: pd.DataFrame,
    right: pd.DataFrame,
    radius_arcsec: float = CrossmatchSection.radius_arcsec,
    left_id: str = "name",
    right_id: str = "dr7objid",
    *,
    left_name: str = "left",
    right_name: str = "right",
    ra_col: str = "ra",
    dec_col: str = "dec",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match two catalogues one-to-one by position on the sky.

    All pairs closer than the radius are found (astropy's kd-tree on unit vectors, so RA wrap at
    0/360 and the poles need no special care), then accepted in order of increasing separation
    when neither object is already taken: each object is matched at most once and the nearest
    pair wins. Pairs within the radius that lost are reported as duplicates. Only rows whose
    declination lies within the radius of one of the other table's go into the kd-trees, so a
    small table against a large one costs little more than validating the large one's columns.

    Args:
        left: catalogue with `left_id`, `ra_col`, `dec_col` (degrees).
        right: catalogue with `right_id`, `ra_col`, `dec_col` (degrees).
        radius_arcsec: maximum separation of a match, arcsec.
        left_id: identifier column of `left`.
        right_id: identifier column of `right`.
        left_name: name of the left table in error messages (e.g. "califa").
        right_name: name of the right table in error messages (e.g. "gz2").
        ra_col: right ascension column in both tables.
        dec_col: declination column in both tables.

    Returns:
        (matched, duplicates). `matched` has one row per accepted pair, ordered by left row:
        the two id columns (suffixed `_left`/`_right` if they share a name), `left_row`,
        `right_row` (positions in the inputs), `ra_left`, `dec_left`, `ra_right`, `dec_right`
        (deg) and `sep_arcsec`. `duplicates` has one row per rejected within-radius pair: the id
        columns, `left_row`, `right_row`, `sep_arcsec` and `reason`.
    """
    if not (np.isfinite(radius_arcsec) and radius_arcsec > 0):
        raise InputError(f"crossmatch radius must be a positive number of arcsec, got {radius_arcsec!r}")
    ra_l, dec_l = _degrees(left, left_name, left_id, ra_col, dec_col)
    ra_r, dec_r = _degrees(right, right_name, right_id, ra_col, dec_col)
    # Only rows with a declination near the other table's can pair: the kd-trees hold those alone.
    margin = radius_arcsec / 3600.0 * (1.0 + 1e-6) + 1e-9  # deg, above any rounding in astropy's chord test
    near_r = np.flatnonzero(_near_in_dec(dec_r, dec_l, margin))  # (R',) rows of right
    near_l = np.flatnonzero(_near_in_dec(dec_l, dec_r[near_r], margin))  # (L',) rows of left
    c_left = SkyCoord(ra_l[near_l] * u.deg, dec_l[near_l] * u.deg, frame="icrs")
    c_right = SkyCoord(ra_r[near_r] * u.deg, dec_r[near_r] * u.deg, frame="icrs")

    if len(near_l) and len(near_r):
        k_left, k_right, sep, _ = search_around_sky(c_left, c_right, radius_arcsec * u.arcsec)
        sep = sep.to_value(u.arcsec)  # (P,) arcsec
    else:
        k_left = k_right = np.zeros(0, dtype=np.int64)
        sep = np.zeros(0)
    i_left, i_right = near_l[k_left], near_r[k_right]  # (P,) rows of left and right
    order = np.lexsort((i_right, i_left, sep))  # nearest first; ties broken by row for determinism
    left_taken = np.zeros(len(left), dtype=bool)
    right_taken = np.zeros(len(right), dtype=bool)
    accepted = np.zeros(len(sep), dtype=bool)
    reasons = np.full(len(sep), "", dtype=object)
    for p in order:
        a, b = i_left[p], i_right[p]
        if left_taken[a]:
            reasons[p] = REASON_LEFT_TAKEN
        elif right_taken[b]:
            reasons[p] = REASON_RIGHT_TAKEN
        else:
            accepted[p] = left_taken[a] = right_taken[b] = True

    out_left, out_right = _output_names(left_id, right_id)
    ra_kl, dec_kl = c_left.ra.deg, c_left.dec.deg  # (L',) deg, RA wrapped to [0, 360)
    ra_kr, dec_kr = c_right.ra.deg, c_right.dec.deg  # (R',) deg

    def pairs(mask: np.ndarray) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((sep[idx], i_left[idx]))]  # by left row, then separation
        a, b = i_left[idx].astype(np.int64), i_right[idx].astype(np.int64)
        ka, kb = k_left[idx], k_right[idx]
        return pd.DataFrame(
            {
                out_left: _ids(left[left_id], a),
                out_right: _ids(right[right_id], b),
                "left_row": a,
                "right_row": b,
                "ra_left": ra_kl[ka],
                "dec_left": dec_kl[ka],
                "ra_right": ra_kr[kb],
                "dec_right": dec_kr[kb],
                "sep_arcsec": sep[idx],
                "reason": reasons[idx],
            }
        )

    matched = pairs(accepted).drop(columns="reason")
    duplicates = pairs(~accepted)[[out_left, out_right, "left_row", "right_row", "sep_arcsec", "reason"]]
    logger.info(
        "crossmatch %s (%d) x %s (%d) within %.2f arcsec: %d matched, %d duplicate pairs",
        left_name,
        len(left),
        right_name,
        len(right),
        radius_arcsec,
        len(matched),
        len(duplicates),
    )
    return matched, duplicates


def require_matches(
    matched: pd.DataFrame, left_name: str = "left", right_name: str = "right",
    radius_arcsec: float = CrossmatchSection.radius_arcsec
) -> None:
    """Stop with a clear message when a crossmatch found nothing.

    Args:
        matched: the first output of `crossmatch`.
        left_name: name of the left table.
        right_name: name of the right table.
        radius_arcsec: the radius that was used, arcsec.

    Raises:
        InputError: when `matched` has no rows.
    """
    if len(matched) == 0:
        raise InputError(
            f"no galaxy of {left_name} within {radius_arcsec} arcsec of {right_name}: the crossmatch is empty "
            "(check that both catalogues cover the same sky and use ra/dec in degrees)"
        )


def match_stats(matched: pd.DataFrame, duplicates: pd.DataFrame) -> dict[str, float | int]:
    """Summary numbers of a crossmatch for metrics files.

    Args:
        matched: the first output of `crossmatch`.
        duplicates: the second output of `crossmatch`.

    Returns:
        n_matched, median_sep_arcsec, max_sep_arcsec (NaN when nothing matched), n_duplicates.
    """
    sep = matched["sep_arcsec"].to_numpy(dtype=float)
    return {
        "n_matched": len(matched),
        "median_sep_arcsec": float(np.median(sep)) if len(sep) else float("nan"),
        "max_sep_arcsec": float(np.max(sep)) if len(sep) else float("nan"),
        "n_duplicates": len(duplicates),
    }
