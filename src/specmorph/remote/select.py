"""Chooses what a remote run fetches: CALIFA galaxies from the sample table, GZ2 rows near them and a random field."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord, search_around_sky

from specmorph.errors import InputError
from specmorph.io.catalogs import GZ2_COLUMNS, parse_hubtyp, read_ecsv
from specmorph.io.manga import read_drpall, select_drpall
from specmorph.taxonomy import CALIFA_TYPES

log = logging.getLogger(__name__)

# eCALIFA ECSV column -> morphology column.
ECALIFA_COLUMNS = {"Name": "name", "RA": "ra", "DEC": "dec", "z": "redshift", "type": "hubtyp"}
# The DR3 morphology table has no column line: '#' comments, then these eight columns.
DR3_COLUMNS = ("CALIFAID", "REALNAME", "DBName", "RA", "DE", "hubtyp", "bar", "merg")
TYPE_GROUPS = {"E": CALIFA_TYPES[:8]}  # 'E' in hubble_types means E0-E7
_GZ2_CHUNK_ROWS = 50_000


def _morphology(path: Path, names: Iterable, ra: Iterable, dec: Iterable, redshift: Iterable,
                types: Iterable) -> pd.DataFrame:
    """The sample as name, ra, dec (deg), redshift (NaN if unknown), hubtyp (CALIFA type or None)."""
    df = pd.DataFrame({"name": [str(n).strip() for n in names],
                       "ra": pd.to_numeric(pd.Series(list(ra)), errors="coerce"),
                       "dec": pd.to_numeric(pd.Series(list(dec)), errors="coerce"),
                       "redshift": pd.to_numeric(pd.Series(list(redshift)), errors="coerce")})
    hubtyp = []
    for i, value in enumerate(types):
        try:
            hubtyp.append(parse_hubtyp(value))
        except ValueError as err:
            raise InputError(f"{path}: row {i + 1} ({df['name'].iloc[i]}): {err}") from err
    df["hubtyp"] = pd.Series(hubtyp, dtype=object)
    bad = df["name"].eq("") | ~np.isfinite(df["ra"]) | ~np.isfinite(df["dec"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: row {i + 1}: empty name or RA/Dec not a number ({df.iloc[i].to_dict()})")
    if df.empty:
        raise InputError(f"{path}: the CALIFA table has no rows")
    dup = df["name"].duplicated(keep="first")
    if dup.any():
        log.warning("%s: %d duplicate names dropped, e.g. %s", path, int(dup.sum()), df["name"][dup].iloc[0])
        df = df[~dup].reset_index(drop=True)
    return df


def read_califa_table(path: str | Path, table_format: str) -> pd.DataFrame:
    """Reads the CALIFA sample table as downloaded.

    Args:
        path: The table.
        table_format: 'ecalifa' (ECSV with Name, RA, DEC, z, type), 'dr3' (headerless CSV: CALIFAID,
            REALNAME, DBName, RA, DE, hubtyp code, bar, merg; the cube files use DBName; no redshift) or
            'drpall' (MaNGA's DRPall FITS table: `io.manga.select_drpall`'s observations, named by plate-IFU).

    Returns:
        name, ra, dec (deg), redshift (NaN for dr3: taken from the cubes later), hubtyp (type string or None).
    """
    path = Path(path)
    if table_format == "ecalifa":
        table = read_ecsv(path, list(ECALIFA_COLUMNS), "eCALIFA ECSV table (califa_table_format 'ecalifa'; "
                          "use 'dr3' for the DR3 morphology CSV)")
        return _morphology(path, *(np.asarray(table[c]).tolist() for c in ECALIFA_COLUMNS))
    if table_format == "dr3":
        try:
            df = pd.read_csv(path, comment="#", header=None, skipinitialspace=True, dtype=str)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise InputError(f"{path}: not a readable CSV ({err})") from err
        if df.shape[1] != len(DR3_COLUMNS):
            raise InputError(f"{path}: {df.shape[1]} columns; the DR3 morphology table has {len(DR3_COLUMNS)}: "
                             f"{', '.join(DR3_COLUMNS)}")
        df.columns = list(DR3_COLUMNS)
        codes = pd.to_numeric(df["hubtyp"], errors="coerce")  # the real table has '11' and '11.0'
        types = [c if np.isfinite(c) else raw for c, raw in zip(codes, df["hubtyp"], strict=True)]
        return _morphology(path, df["DBName"], df["RA"], df["DE"], [np.nan] * len(df), types)
    if table_format == "drpall":  # MaNGA: one usable observation per galaxy, named by plate-IFU, no Hubble type
        kept, dropped = select_drpall(read_drpall(path))
        for plate_ifu, reason in zip(dropped["plateifu"], dropped["reason"], strict=True):
            log.info("%s: %s left out: %s", path.name, plate_ifu, reason)
        z = kept["redshift"].where(kept["redshift"] > 0)  # NSA's -9999: unknown, taken from the cube later
        return _morphology(path, kept["plateifu"], kept["ra"], kept["dec"], z, ["U"] * len(kept))
    raise ValueError(f"table_format={table_format!r}; expected ecalifa, dr3 or drpall")


def expand_types(types: Sequence[str]) -> set[str]:
    """CALIFA types to keep: exact types (E0 ... BCD) and 'E' for E0-E7; an unknown name is an error."""
    keep: set[str] = set()
    for t in types:
        if t in TYPE_GROUPS:
            keep.update(TYPE_GROUPS[t])
        elif t in CALIFA_TYPES:
            keep.add(t)
        else:
            raise ValueError(f"hubble_types: {t!r} is not a CALIFA type ({', '.join(CALIFA_TYPES)}) or 'E'")
    return keep


def near(left: pd.DataFrame, right: pd.DataFrame, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of each table have a row of the other within `radius_arcsec` (ra/dec in degrees).

    Returns:
        (len(left),) and (len(right),) boolean masks.
    """
    hit_left = np.zeros(len(left), bool)
    hit_right = np.zeros(len(right), bool)
    if len(left) and len(right):
        a = SkyCoord(left["ra"].to_numpy(float) * u.deg, left["dec"].to_numpy(float) * u.deg)
        b = SkyCoord(right["ra"].to_numpy(float) * u.deg, right["dec"].to_numpy(float) * u.deg)
        i, j, _, _ = search_around_sky(a, b, radius_arcsec * u.arcsec)
        hit_left[i] = True
        hit_right[j] = True
    return hit_left, hit_right


def select_califa(califa: pd.DataFrame, *, max_galaxies: int, seed: int, hubble_types: Sequence[str] = (),
                  gz2: pd.DataFrame | None = None, radius_arcsec: float = 5.0) -> pd.DataFrame:
    """The CALIFA galaxies to fetch: type filter, GZ2 footprint, then a seeded random subset.

    The subset is a prefix of one seeded permutation of the name-sorted candidates, so a larger
    `max_galaxies` with the same seed selects a superset (and re-uses what is in the cache).

    Args:
        califa: read_califa_table output.
        max_galaxies: How many (-1: all).
        seed: Random seed.
        hubble_types: Keep only these types (see expand_types); empty keeps all, unknown types included.
        gz2: GZ2 positions; when given, keep only galaxies with a GZ2 row within `radius_arcsec`.
        radius_arcsec: Match radius, arcsec.

    Returns:
        The selected rows, sorted by name.
    """
    if max_galaxies == 0 or max_galaxies < -1:
        raise ValueError(f"max_galaxies={max_galaxies}; expected -1 (all) or a positive number")
    cand = califa.sort_values("name", kind="stable").reset_index(drop=True)
    if hubble_types:
        keep = expand_types(hubble_types)
        cand = cand[cand["hubtyp"].isin(keep)].reset_index(drop=True)
    if gz2 is not None:
        matched, _ = near(cand, gz2, radius_arcsec)
        cand = cand[matched].reset_index(drop=True)
    order = np.random.default_rng([seed, 1]).permutation(len(cand))
    if max_galaxies > 0:
        order = order[:max_galaxies]
    out = cand.iloc[np.sort(order)].reset_index(drop=True)
    log.info("selected %d of %d CALIFA galaxies (types %s, GZ2 footprint %s)", len(out), len(califa),
             ",".join(hubble_types) or "all", "required" if gz2 is not None else "not required")
    return out


def select_gz2(gz2: pd.DataFrame, califa: pd.DataFrame, *, radius_arcsec: float, max_field: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GZ2 rows to fetch: every row within `radius_arcsec` of a selected CALIFA galaxy, plus a random field.

    Args:
        gz2: GZ2 positions (dr7objid, ra, dec).
        califa: The selected CALIFA galaxies.
        radius_arcsec: Match radius, arcsec.
        max_field: Further GZ2 rows away from them (-1: all; 0: none), a prefix of one seeded permutation.
        seed: Random seed.

    Returns:
        Sorted row indices into `gz2`, and a mask over them marking the CALIFA-matched rows.
    """
    if max_field < -1:
        raise ValueError(f"max_gz2_images={max_field}; expected -1 (all), 0 (matched rows only) or more")
    _, matched = near(califa, gz2, radius_arcsec)
    order = np.random.default_rng([seed, 2]).permutation(len(gz2))
    field = order[~matched[order]]
    if max_field >= 0:
        field = field[:max_field]
    rows = np.sort(np.concatenate([np.flatnonzero(matched), field]))
    return rows, matched[rows]


def gz2_header(path: str | Path) -> list[str]:
    """Column names of a GZ2 table (CSV or CSV.gz) without reading its rows."""
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def check_gz2_columns(path: str | Path, columns: Sequence[str]) -> None:
    """Fails by name unless the GZ2 table has dr7objid, ra, dec, gz2_class and `columns`."""
    present = gz2_header(path)
    missing = [c for c in (*GZ2_COLUMNS, *columns) if c not in present]
    if missing:
        raise InputError(f"{path}: GZ2 column(s) {', '.join(missing)} missing (found {len(present)} columns: "
                         f"{', '.join(present[:8])} ...)")


def read_gz2_positions(path: str | Path) -> pd.DataFrame:
    """dr7objid (str), ra, dec (deg) of every GZ2 row, reading three columns only."""
    df = pd.read_csv(path, usecols=["dr7objid", "ra", "dec"], dtype={"dr7objid": str})
    df["dr7objid"] = df["dr7objid"].str.strip()
    bad = ~np.isfinite(pd.to_numeric(df["ra"], errors="coerce")) | ~np.isfinite(
        pd.to_numeric(df["dec"], errors="coerce"))
    if bad.any():
        log.warning("%s: %d GZ2 rows without a valid RA/Dec ignored", path, int(bad.sum()))
        df = df[~bad.to_numpy()].reset_index(drop=True)
    return df


def read_gz2_rows(path: str | Path, ids: set[str]) -> pd.DataFrame:
    """The full GZ2 rows whose dr7objid is in `ids`, read in chunks (the whole table is ~1 GB in memory)."""
    parts = [chunk[chunk["dr7objid"].str.strip().isin(ids)]
             for chunk in pd.read_csv(path, dtype={"dr7objid": str}, chunksize=_GZ2_CHUNK_ROWS)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
