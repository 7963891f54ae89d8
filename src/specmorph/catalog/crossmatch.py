"""One-to-one positional crossmatch of two catalogues on the sky (nearest pair wins)."""

import logging

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord, search_around_sky

from specmorph.errors import InputError

logger = logging.getLogger(__name__)

# Reasons a within-radius pair is left out of the one-to-one match (duplicates report).
REASON_LEFT_TAKEN = "left object matched to a nearer right object"
REASON_RIGHT_TAKEN = "right object matched to a nearer left object"


def _coords(df: pd.DataFrame, table: str, id_col: str, ra_col: str, dec_col: str) -> SkyCoord:
    """Validate a table's id/ra/dec columns and return its positions.

    Args:
        df: the catalogue.
        table: its name, for error messages.
        id_col: identifier column that must exist.
        ra_col: right ascension column, degrees in [0, 360].
        dec_col: declination column, degrees in [-90, 90].

    Returns:
        ICRS SkyCoord of shape (len(df),).
    """
    missing = [c for c in (id_col, ra_col, dec_col) if c not in df.columns]
    if missing:
        raise InputError(f"table {table!r} has no column(s) {missing}; columns are {list(df.columns)}")
    values = {}
    for col, lo, hi in ((ra_col, 0.0, 360.0), (dec_col, -90.0, 90.0)):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)  # deg
        bad = ~np.isfinite(v) | (v < lo) | (v > hi)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"table {table!r} column {col!r}: {int(bad.sum())} value(s) not a finite number in "
                f"[{lo:g}, {hi:g}] degrees; first at row {df.index[first]} (value {df[col].iloc[first]})"
            )
        values[col] = v
    return SkyCoord(values[ra_col] * u.deg, values[dec_col] * u.deg, frame="icrs")


def _output_names(left_id: str, right_id: str) -> tuple[str, str]:
    """Id column names in the outputs; suffixed `_left`/`_right` only when the two collide."""
    if left_id == right_id:
        return f"{left_id}_left", f"{right_id}_right"
    return left_id, right_id


def crossmatch(
    left: pd.DataFrame,
    right: pd.DataFrame,
    radius_arcsec: float = 3.0,
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
    pair wins. Pairs within the radius that lost are reported as duplicates.

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
    c_left = _coords(left, left_name, left_id, ra_col, dec_col)
    c_right = _coords(right, right_name, right_id, ra_col, dec_col)

    if len(left) and len(right):
        i_left, i_right, sep, _ = search_around_sky(c_left, c_right, radius_arcsec * u.arcsec)
        sep = sep.to_value(u.arcsec)  # (P,) arcsec
    else:
        i_left = i_right = np.zeros(0, dtype=np.int64)
        sep = np.zeros(0)
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
    ra_l, dec_l = c_left.ra.deg, c_left.dec.deg
    ra_r, dec_r = c_right.ra.deg, c_right.dec.deg

    def pairs(mask: np.ndarray) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((sep[idx], i_left[idx]))]  # by left row, then separation
        a, b = i_left[idx].astype(np.int64), i_right[idx].astype(np.int64)
        return pd.DataFrame(
            {
                out_left: left[left_id].to_numpy()[a],
                out_right: right[right_id].to_numpy()[b],
                "left_row": a,
                "right_row": b,
                "ra_left": ra_l[a],
                "dec_left": dec_l[a],
                "ra_right": ra_r[b],
                "dec_right": dec_r[b],
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
    matched: pd.DataFrame, left_name: str = "left", right_name: str = "right", radius_arcsec: float = 3.0
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
