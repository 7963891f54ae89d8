"""Validating readers for the input catalogues (CALIFA morphology, SDSS cutout index, GZ2) and an atomic writer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from astropy.table import Table

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file
from specmorph.io.layout import SURVEYS, cube_file
from specmorph.taxonomy import CALIFA_TYPES

log = logging.getLogger(__name__)

MORPHOLOGY_COLUMNS = ("name", "ra", "dec", "redshift", "hubtyp")
CUTOUT_INDEX_COLUMNS = ("name", "ra", "dec", "file")
GZ2_COLUMNS = ("dr7objid", "ra", "dec", "gz2_class")
# Unknown Hubble type: DR3 code -1, eCALIFA 'U', or an empty cell.
_UNKNOWN_TYPES = {"", "u", "-1", "nan", "none"}
_TYPE_BY_LOWER = {t.lower(): t for t in CALIFA_TYPES}
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _kind(path: Path) -> str:
    """'csv' or 'parquet' from the file name, else an error naming the file."""
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise InputError(f"{path}: unknown table format; expected a name ending in {_CSV_SUFFIXES + _PARQUET_SUFFIXES}")


def _columns_of(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file without reading its rows."""
    if _kind(path) == "csv":
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _read_table(path: str | Path, required: Sequence[str], usecols: Sequence[str] | None = None,
                dtype: dict[str, type] | None = None, allow_empty: bool = False) -> tuple[Path, pd.DataFrame]:
    """Reads a CSV/Parquet table after checking that it exists and has the `required` columns.

    Args:
        path: The table.
        required: Columns that must be present.
        usecols: Columns to read (None: all).
        dtype: CSV column types (ignored for Parquet).
        allow_empty: Accept a table with a header and no rows.

    Returns:
        The path and the table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: catalogue file not found")
    try:
        present = _columns_of(path)
        missing = [c for c in required if c not in present]
        if missing:
            found = ", ".join(present[:12]) + (" ..." if len(present) > 12 else "")
            raise InputError(f"column(s) {', '.join(repr(c) for c in missing)} missing in {path} "
                             f"(required: {', '.join(required)}; found: {found})")
        cols = None if usecols is None else list(dict.fromkeys(usecols))
        if _kind(path) == "csv":
            df = pd.read_csv(path, usecols=cols, dtype=dtype)
        else:
            df = pd.read_parquet(path, columns=cols)
    except InputError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise InputError(f"{path}: not a readable table ({err})") from err
    if df.empty and not allow_empty:
        raise InputError(f"{path}: the table has no rows")
    return path, df.reset_index(drop=True)


def _row_error(path: Path, df: pd.DataFrame, i: int, what: str) -> InputError:
    """An error naming the file, the 1-based data row (after the header) and its id_str when known."""
    ident = f" (id_str={df['id_str'].iloc[i]})" if "id_str" in df.columns else ""
    return InputError(f"{path}: row {i + 1}{ident}: {what}")


def _numeric(path: Path, df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64, or an error naming the first row that is not a finite number."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise _row_error(path, df, int(bad[0]), f"{column}={df[column].iloc[bad[0]]!r} is not a finite number")
    return values


def _check_coordinates(path: Path, df: pd.DataFrame) -> None:
    """Converts ra/dec to float degrees in place; ra must be in [0, 360), dec in [-90, 90]."""
    ra, dec = _numeric(path, df, "ra"), _numeric(path, df, "dec")
    for column, values, lo, hi, closed in (("ra", ra, 0.0, 360.0, ")"), ("dec", dec, -90.0, 90.0, "]")):
        outside = (values < lo) | (values > hi) | ((values == hi) & (closed == ")"))
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise _row_error(path, df, i, f"{column}={values[i]} outside [{lo:g}, {hi:g}{closed} degrees")
    df["ra"], df["dec"] = ra, dec


def _check_ids(path: Path, df: pd.DataFrame, keys: np.ndarray | None = None) -> None:
    """id_str must be non-empty and unique.

    `keys`, when given, holds a number per row that is equal wherever id_str is (e.g. the integer
    value of a digit string): when the keys are all distinct, so are the ids, and the slower string
    comparison is skipped.
    """
    empty = np.flatnonzero((df["id_str"].isna() | (df["id_str"].astype(str).str.strip() == "")).to_numpy())
    if empty.size:
        raise _row_error(path, df, int(empty[0]), "empty identifier")
    if keys is not None and pd.Index(keys).is_unique:
        return
    dup = np.flatnonzero(df["id_str"].duplicated().to_numpy())
    if dup.size:
        raise _row_error(path, df, int(dup[0]), "duplicate identifier")


def _int64(digits: pd.Series) -> np.ndarray:
    """Strings of decimal digits as an int64 array: one Arrow cast, or pandas' conversion (and its errors)."""
    try:
        return np.array(pc.cast(pa.array(digits), pa.int64()))  # (N,), a writable copy
    except (pa.ArrowException, TypeError, ValueError):
        return digits.astype(np.int64).to_numpy()


def _with_id(df: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """The table with `id_str` as its first column."""
    rest = df.drop(columns=["id_str"], errors="ignore")
    return pd.concat([ids.astype(str).str.strip().rename("id_str"), rest], axis=1)  # one block copy, no fragmenting


def read_ecsv(path: str | Path, required: Sequence[str], what: str = "ECSV table") -> Table:
    """Reads an ECSV table (astropy), checking that it is one and that it has the `required` columns.

    Raises:
        InputError: not an ECSV file, not readable, or columns missing (named, with `what` it should be).
    """
    path = Path(path)
    head = path.read_bytes()[:64]
    if not head.startswith(b"# %ECSV"):
        raise InputError(f"{path}: not an ECSV table (starts {head[:20]!r}), so not a readable {what}")
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as err:  # astropy raises many types on a malformed ECSV
        raise InputError(f"{path}: not a readable {what} ({type(err).__name__}: {err})") from err
    missing = [c for c in required if c not in table.colnames]
    if missing:
        raise InputError(f"{path}: column(s) {', '.join(missing)} missing in the {what} "
                         f"(required: {', '.join(required)}; found: {', '.join(table.colnames[:12])} ...)")
    return table


def parse_hubtyp(value: object) -> str | None:
    """A CALIFA Hubble type from a type string (E0 ... BCD) or a DR3 integer code (0..19); None if unknown.

    Raises ValueError for anything else.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    if text.lower() in _UNKNOWN_TYPES:
        return None
    if text.lstrip("-").isdigit():
        code = int(text)
        if 0 <= code < len(CALIFA_TYPES):
            return CALIFA_TYPES[code]
        raise ValueError(f"hubtyp code {code} outside -1..{len(CALIFA_TYPES) - 1}")
    if text.lower() in _TYPE_BY_LOWER:
        return _TYPE_BY_LOWER[text.lower()]
    raise ValueError(f"hubtyp {text!r} is neither a CALIFA type ({', '.join(CALIFA_TYPES)}) nor a DR3 code")


def read_morphology(path: str | Path) -> pd.DataFrame:
    """Reads the morphology table of the galaxies with cubes (name, ra, dec, redshift, hubtyp[, survey]).

    Args:
        path: CSV or Parquet; `hubtyp` holds type strings (E0 ... BCD, 'U') or DR3 codes (-1..19); the
            optional `survey` column says whose cube each galaxy has (`io.layout.SURVEYS`: califa, the
            default where the column is absent, or manga, whose `name` is the plate-IFU).

    Returns:
        The table with `id_str` (= name) first, float ra/dec (deg) and redshift, `hubtyp` as the
        CALIFA type string (None where unknown) and `survey`.
    """
    path, df = _read_table(path, MORPHOLOGY_COLUMNS, dtype={"name": str, "hubtyp": str, "survey": str})
    df = _with_id(df, df["name"])
    if "survey" not in df.columns:
        df["survey"] = "califa"
    unknown = np.flatnonzero(~df["survey"].isin(SURVEYS).to_numpy())
    if unknown.size:
        raise _row_error(path, df, int(unknown[0]), f"survey={df['survey'].iloc[unknown[0]]!r}; "
                         f"expected one of {', '.join(SURVEYS)}")
    _check_ids(path, df)
    _check_coordinates(path, df)
    df["redshift"] = _numeric(path, df, "redshift")
    types = []
    for i, value in enumerate(df["hubtyp"].tolist()):
        try:
            types.append(parse_hubtyp(value))
        except ValueError as err:
            raise _row_error(path, df, i, str(err)) from err
    df["hubtyp"] = pd.Series(types, dtype=object)
    n_unknown = sum(t is None for t in types)
    if n_unknown:
        log.info("%s: %d of %d galaxies have an unknown Hubble type", path, n_unknown, len(df))
    return df


def with_survey(table: pd.DataFrame, surveys: Sequence[str] | str) -> pd.DataFrame:
    """A morphology table with the `survey` column `read_morphology` reads, where any galaxy is not eCALIFA.

    An eCALIFA-only table keeps the columns it has always had (read back as survey califa).
    """
    listed = [surveys] * len(table) if isinstance(surveys, str) else list(surveys)
    return table.assign(**survey_dataset(listed))


def survey_dataset(surveys: Sequence[str]) -> dict[str, np.ndarray]:
    """The per-galaxy `survey` dataset of an HDF5 product (spectra, prepared cubes, embeddings), as `with_survey`.

    Present only where a galaxy is not eCALIFA, so an eCALIFA-only product keeps its bytes; a reader
    takes a product without it as all eCALIFA (`product_surveys`).

    Args:
        surveys: Each galaxy's survey, in the product's row order.

    Returns:
        {} or {"survey": (N,) str array}.
    """
    listed = [str(s) for s in surveys]
    return {"survey": np.array(listed, dtype=str)} if any(s != "califa" for s in listed) else {}


def product_surveys(arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Each row's survey in an HDF5 product read by `io.hdf5.read_product`: its `survey` dataset, or califa."""
    return np.asarray(arrays["survey"], dtype=str) if "survey" in arrays else np.full(n, "califa")


def cube_paths(morphology: pd.DataFrame, cube_dir: str | Path) -> list[Path]:
    """Each galaxy's cube file in `cube_dir` (`io.layout.cube_file`), from a `read_morphology` table."""
    return [Path(cube_dir) / cube_file(n, s) for n, s in zip(morphology["id_str"], morphology["survey"], strict=True)]


def read_cutout_index(path: str | Path) -> pd.DataFrame:
    """Reads the SDSS cutout index (name, ra, dec, file) and checks that every cutout exists.

    Args:
        path: CSV or Parquet; `file` is relative to the index's directory (or absolute).

    Returns:
        The table with `id_str` (= name) first and `path`, the resolved cutout file.
    """
    path, df = _read_table(path, CUTOUT_INDEX_COLUMNS, dtype={"name": str, "file": str})
    df = _with_id(df, df["name"])
    _check_ids(path, df)
    _check_coordinates(path, df)
    base = path.parent.resolve()
    resolved = [base / str(f) for f in df["file"]]
    missing = [(n, f) for n, f, p in zip(df["id_str"], df["file"], resolved, strict=True) if not p.is_file()]
    if missing:
        listed = ", ".join(f"{n} ({f})" for n, f in missing[:5])
        raise InputError(f"{path}: {len(missing)} cutout file(s) not found under {base}: {listed}"
                         f"{' ...' if len(missing) > 5 else ''}")
    df["path"] = [str(p) for p in resolved]
    return df


def read_gz2(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Reads a Galaxy Zoo 2 (Hart+16) table.

    Args:
        path: CSV or Parquet with dr7objid, ra, dec, gz2_class and the vote columns.
        columns: Further columns to read and require (e.g. 't01_smooth_or_features_a01_smooth_debiased');
            None reads every column.

    Returns:
        The table with `id_str` (= str(dr7objid)) first, `dr7objid` int64, float ra/dec (deg).
    """
    required = list(dict.fromkeys([*GZ2_COLUMNS, *(columns or ())]))
    usecols = None if columns is None else required
    path, df = _read_table(path, required, usecols=usecols, dtype={"dr7objid": str})
    ids = df["dr7objid"].astype(str).str.strip()
    not_int = np.flatnonzero(~ids.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool))
    if not_int.size:
        i = int(not_int[0])
        raise _row_error(path, df, i, f"dr7objid={df['dr7objid'].iloc[i]!r} is not a non-negative integer")
    df = _with_id(df, ids)
    df["dr7objid"] = _int64(ids)
    _check_ids(path, df, keys=df["dr7objid"].to_numpy())  # equal digit strings, equal integers
    _check_coordinates(path, df)
    no_class = np.flatnonzero((df["gz2_class"].isna() | (df["gz2_class"].astype(str).str.strip() == "")).to_numpy())
    if no_class.size:
        raise _row_error(path, df, int(no_class[0]), "empty gz2_class")
    return df


def read_table(path: str | Path, required: Sequence[str] = (), dtype: dict[str, type] | None = None,
               allow_empty: bool = False) -> pd.DataFrame:
    """Reads a pipeline product table (CSV or Parquet), failing by name on a missing file or column.

    Args:
        path: The table.
        required: Columns that must be present.
        dtype: CSV column types.
        allow_empty: Accept a table with a header and no rows (e.g. no crossmatch duplicates).

    Returns:
        The table.
    """
    return _read_table(path, list(required), dtype=dtype, allow_empty=allow_empty)[1]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Writes a table atomically (temporary name, then rename) as CSV or Parquet, chosen by suffix.

    Args:
        df: The table; its index is not written.
        path: Destination ending in .csv, .csv.gz, .parquet or .pq.

    Returns:
        `path`.
    """
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        if kind == "csv":
            df.to_csv(tmp, index=False, compression="gzip" if path.name.lower().endswith(".gz") else None)
        else:
            df.to_parquet(tmp, index=False)
    return path
