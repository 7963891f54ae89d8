"""Label mapping: the Galaxy Zoo 2 `gz2_class` grammar to the 8-class taxonomy, CALIFA types to coarse classes."""

import logging
import math
import re
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from specmorph.errors import InputError
from specmorph.taxonomy import CALIFA_TYPES, CLASS_INDEX

logger = logging.getLogger(__name__)

# gz2_class strings of Hart et al. (2016), built by walking the GZ2 decision tree (Willett et al. 2013):
#   E<roundness>            roundness r (completely round), i (in between), c (cigar)
#   Se<bulge shape>         edge-on disc; bulge shape r (rounded), b (boxy), n (none)
#   S[B]<bulge>[<n><wind>]  disc; B = barred; bulge a (dominant) .. d (none); arm count 1-4, + (more
#                           than four), ? (can't tell); winding t (tight), m (medium), l (loose)
#   A                       star or artifact
# followed by zero or more odd features in brackets: (r) ring, (l) lens/arc, (d) disturbed,
# (i) irregular, (o) other, (m) merger, (u) dust lane. A bracket is never an arm winding.
_GZ2_RE = re.compile(
    r"""^(?:
        (?P<smooth>E)(?P<roundness>[ric])
      | (?P<edge>Se)(?P<bulge_shape>[rbn])
      | (?P<disc>S)(?P<barred>B)?(?P<bulge>[a-d])(?:(?P<arm_count>[1-4+?])(?P<tightness>[tml]))?
      | (?P<artifact>A)
    )(?P<odd>(?:\([rldiomu]\))*)$""",
    re.VERBOSE,
)

# Reasons a gz2_class is left out of the 8-class taxonomy (keys of `map_catalog`'s counts).
EXCLUDE_ARTIFACT = "artifact"
EXCLUDE_NO_ARMS = "spiral_without_arm_info"
EXCLUDE_MISSING = "missing_class"
EXCLUSION_REASONS: tuple[str, ...] = (EXCLUDE_ARTIFACT, EXCLUDE_NO_ARMS, EXCLUDE_MISSING)

# Coarse CALIFA classes, alphabetical.
CALIFA_COARSE: tuple[str, ...] = ("BCD", "E", "I", "S", "U")


@dataclass(frozen=True)
class Gz2Class:
    """A parsed `gz2_class` string.

    Attributes:
        kind: 'E' smooth, 'S' features/disc (edge-on or not), 'A' star/artifact.
        roundness: 'r', 'i' or 'c' for kind 'E', else None.
        edge_on: True for the 'Se' strings.
        bulge_shape: 'r', 'b' or 'n' for edge-on discs, else None.
        bulge: bulge prominence 'a' (dominant) .. 'd' (none) for face-on discs, else None.
        barred: True for 'SB' strings.
        arm_count: '1'..'4', '+' or '?' when the spiral arms question was answered, else None.
        tightness: 't', 'm' or 'l' (arm winding) when answered, else None.
        odd: odd-feature letters from the bracketed suffixes, in order, e.g. ('r',).
    """

    kind: str
    roundness: str | None = None
    edge_on: bool = False
    bulge_shape: str | None = None
    bulge: str | None = None
    barred: bool = False
    arm_count: str | None = None
    tightness: str | None = None
    odd: tuple[str, ...] = ()


def parse_gz2_class(s: str) -> Gz2Class:
    """Parse one Hart+16 `gz2_class` string.

    Args:
        s: e.g. 'Er', 'Sen(u)', 'SBc2m', 'Sd+l(r)', 'A'.

    Returns:
        The parsed class.

    Raises:
        InputError: when `s` is not a string of the grammar; the message quotes it.
    """
    m = _GZ2_RE.match(s) if isinstance(s, str) else None
    if m is None:
        raise InputError(
            f"cannot parse gz2_class {s!r}: expected E[ric], Se[rbn], S[B][a-d][1-4+?][tml] or A, "
            "optionally followed by odd features such as (r)"
        )
    g = m.groupdict()
    odd = tuple(g["odd"][1::3])  # "(r)(m)" -> ('r', 'm')
    if g["smooth"]:
        return Gz2Class(kind="E", roundness=g["roundness"], odd=odd)
    if g["edge"]:
        return Gz2Class(kind="S", edge_on=True, bulge_shape=g["bulge_shape"], odd=odd)
    if g["disc"]:
        return Gz2Class(
            kind="S",
            bulge=g["bulge"],
            barred=g["barred"] is not None,
            arm_count=g["arm_count"],
            tightness=g["tightness"],
            odd=odd,
        )
    return Gz2Class(kind="A", odd=odd)


def _classify(c: Gz2Class) -> tuple[str | None, str | None]:
    """(taxonomy class name or None, exclusion reason or None) of a parsed class."""
    if c.kind == "A":
        return None, EXCLUDE_ARTIFACT
    if c.kind == "E":
        return {"r": "round_smooth", "i": "in_between_smooth", "c": "cigar_smooth"}[c.roundness], None
    if c.edge_on:
        return ("edge_on_without_bulge" if c.bulge_shape == "n" else "edge_on_with_bulge"), None
    if c.barred:
        return "barred_spiral", None
    if c.tightness == "l":
        return "unbarred_loose_spiral", None
    if c.tightness in ("t", "m"):
        return "unbarred_tight_spiral", None
    return None, EXCLUDE_NO_ARMS


def gz2_to_taxonomy(s: str) -> str | None:
    """Map a `gz2_class` string to a class of `specmorph.taxonomy.CLASSES`, or None if excluded.

    SB... -> barred_spiral; Er/Ei/Ec -> round/in_between/cigar_smooth; Ser, Seb ->
    edge_on_with_bulge; Sen -> edge_on_without_bulge; other discs with winding l ->
    unbarred_loose_spiral, t or m -> unbarred_tight_spiral; artifacts and discs without
    arm information (e.g. 'Sb', 'Sc(m)') -> None. Odd-feature brackets do not change the class.

    Args:
        s: a gz2_class string.

    Returns:
        The taxonomy class name, or None.

    Raises:
        InputError: when `s` does not parse.
    """
    return _classify(parse_gz2_class(s))[0]


def map_catalog(df: pd.DataFrame, column: str = "gz2_class") -> tuple[pd.Series, dict[str, int]]:
    """Map a GZ2 catalogue's class strings to taxonomy label indices.

    The column is factorised once and each distinct value parsed once; the rows then take their
    value's label by index, so 300k rows take a few milliseconds.

    Args:
        df: catalogue with a `column` of gz2_class strings.
        column: the class-string column.

    Returns:
        (labels, excluded): labels is an int64 Series on df's index holding the index into
        `specmorph.taxonomy.CLASSES`, or -1 for excluded rows; excluded counts the -1 rows by
        reason (every key of EXCLUSION_REASONS present). Missing values (NaN, empty) count as
        'missing_class'.

    Raises:
        InputError: when the column is absent or a string does not parse (names the row).
    """
    if column not in df.columns:
        raise InputError(f"GZ2 catalogue has no column {column!r}; columns are {list(df.columns)}")
    raw = df[column]
    codes, uniques = pd.factorize(raw)  # (N,) index into uniques, -1 for NaN/None; uniques in order of first row
    distinct = pd.Series(uniques, dtype=raw.dtype)  # (U,)
    blank = (distinct.astype("string").str.strip() == "").fillna(False).to_numpy(dtype=bool)  # (U,)
    strings = distinct.astype(str).str.strip().to_numpy()  # (U,)
    label_of = np.full(len(distinct) + 1, -1, dtype=np.int64)  # (U + 1,); the last serves code -1
    reason_of: list[str | None] = [None] * len(distinct)
    for k in np.flatnonzero(~blank):
        try:
            name, reason_of[k] = _classify(parse_gz2_class(strings[k]))
        except InputError as err:
            row = df.index[int(np.flatnonzero(codes == k)[0])]  # first row of the first failing value
            raise InputError(f"column {column!r} row {row}: {err}") from err
        if name is not None:
            label_of[k] = CLASS_INDEX[name]
    labels = pd.Series(label_of[codes], index=df.index, name="label")
    n_rows = np.bincount(codes[codes >= 0], minlength=len(distinct))  # (U,)
    excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
    excluded[EXCLUDE_MISSING] = int((codes < 0).sum() + n_rows[blank].sum())
    for k in np.flatnonzero(~blank):
        if reason_of[k] is not None:
            excluded[reason_of[k]] += int(n_rows[k])
    logger.info("mapped %d gz2_class rows: %d labelled, excluded %s", len(df), int((labels >= 0).sum()), excluded)
    return labels, excluded


def califa_coarse(hubtyp: str | int) -> str:
    """Coarse class (BCD, E, I, S, U) of a CALIFA Hubble type.

    Args:
        hubtyp: a type string (E0..E7, S0, S0a, Sa..Sdm, I, BCD, U or 'unknown') or the DR3
            integer code (-1 unknown, 0..19 in the order of `taxonomy.CALIFA_TYPES`), also as a
            digit string or an integral float.

    Returns:
        'E' for E0-E7, 'S' for S0-Sdm, 'I', 'BCD', or 'U' for unknown.

    Raises:
        InputError: for anything else (names the value).
    """
    code: int | None = None
    if isinstance(hubtyp, Integral) and not isinstance(hubtyp, bool | np.bool_):
        code = int(hubtyp)
    elif isinstance(hubtyp, Real) and not isinstance(hubtyp, bool | np.bool_):
        if math.isfinite(float(hubtyp)) and float(hubtyp).is_integer():
            code = int(hubtyp)
    elif isinstance(hubtyp, str):
        text = hubtyp.strip()
        if re.fullmatch(r"-?\d+", text):
            code = int(text)
        elif text.upper() in ("U", "UNKNOWN"):
            return "U"
        elif text in CALIFA_TYPES:
            code = CALIFA_TYPES.index(text)
    if code is None or not -1 <= code < len(CALIFA_TYPES):
        raise InputError(
            f"bad CALIFA Hubble type {hubtyp!r}: expected one of {', '.join(CALIFA_TYPES)}, U, "
            f"or an integer code -1..{len(CALIFA_TYPES) - 1}"
        )
    if code == -1:
        return "U"
    name = CALIFA_TYPES[code]
    if name in ("I", "BCD"):
        return name
    return "E" if name.startswith("E") else "S"
