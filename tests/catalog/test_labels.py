"""Tests of the gz2_class grammar, its taxonomy mapping and the CALIFA coarse classes."""

import time

import numpy as np
import pandas as pd
import pytest

from specmorph.catalog.labels import (
    CALIFA_COARSE,
    EXCLUSION_REASONS,
    Gz2Class,
    califa_coarse,
    gz2_to_taxonomy,
    map_catalog,
    parse_gz2_class,
)
from specmorph.errors import InputError
from specmorph.taxonomy import CALIFA_TYPES, CLASS_INDEX

TABLE = [
    ("Er", "round_smooth"),
    ("Ei", "in_between_smooth"),
    ("Ec", "cigar_smooth"),
    ("Ser", "edge_on_with_bulge"),
    ("Seb", "edge_on_with_bulge"),
    ("Sen", "edge_on_without_bulge"),
    ("SBc2m", "barred_spiral"),
    ("SBa", "barred_spiral"),
    ("SBb?t(r)", "barred_spiral"),
    ("SBd(m)", "barred_spiral"),
    ("Sc2l", "unbarred_loose_spiral"),
    ("Sb2t", "unbarred_tight_spiral"),
    ("Sa1t", "unbarred_tight_spiral"),
    ("Sc?m", "unbarred_tight_spiral"),
    ("Sc4m(o)", "unbarred_tight_spiral"),
    ("Sd+l(r)", "unbarred_loose_spiral"),
    ("Sc3l(i)", "unbarred_loose_spiral"),
    ("Sb(l)", None),
    ("Sc(m)", None),
    ("Sb", None),
    ("Sd", None),
    ("A", None),
    ("Er(m)", "round_smooth"),
    ("Ei(d)(m)", "in_between_smooth"),
    ("Ec(l)", "cigar_smooth"),
    ("Sen(u)", "edge_on_without_bulge"),
    ("Seb(r)", "edge_on_with_bulge"),
]


@pytest.mark.parametrize(("s", "expected"), TABLE)
def test_taxonomy_table(s, expected):
    assert gz2_to_taxonomy(s) == expected


@pytest.mark.parametrize(
    ("s", "parsed"),
    [
        ("Er", Gz2Class(kind="E", roundness="r")),
        ("Ec(m)", Gz2Class(kind="E", roundness="c", odd=("m",))),
        ("Seb", Gz2Class(kind="S", edge_on=True, bulge_shape="b")),
        ("Sen(u)", Gz2Class(kind="S", edge_on=True, bulge_shape="n", odd=("u",))),
        ("SBc2m", Gz2Class(kind="S", bulge="c", barred=True, arm_count="2", tightness="m")),
        ("SBa", Gz2Class(kind="S", bulge="a", barred=True)),
        ("Sc2l", Gz2Class(kind="S", bulge="c", arm_count="2", tightness="l")),
        ("Sc?m", Gz2Class(kind="S", bulge="c", arm_count="?", tightness="m")),
        ("Sd+l(r)", Gz2Class(kind="S", bulge="d", arm_count="+", tightness="l", odd=("r",))),
        ("Sb(l)", Gz2Class(kind="S", bulge="b", odd=("l",))),
        ("Sc(m)(d)", Gz2Class(kind="S", bulge="c", odd=("m", "d"))),
        ("A", Gz2Class(kind="A")),
    ],
)
def test_parse_fields(s, parsed):
    assert parse_gz2_class(s) == parsed


def test_brackets_are_never_tightness():
    assert parse_gz2_class("Sb(l)").tightness is None
    assert parse_gz2_class("Sc(m)").tightness is None
    assert parse_gz2_class("Sc2l").tightness == "l"


@pytest.mark.parametrize(
    "s",
    [
        "X",
        "Sq",
        "",
        "S",
        "E",
        "Se",
        "Ex",
        "SB",
        "Sc2",
        "Sct",
        "Sc5t",
        "Sc2x",
        "SBer",
        "Er(x)",
        "Sb(l",
        "er",
        "Er ",
        "A2t",
        "Sb()",
    ],
)
def test_parse_errors_name_the_string(s):
    with pytest.raises(InputError, match=f"gz2_class {s!r}".replace("(", r"\(").replace(")", r"\)")):
        parse_gz2_class(s)


def test_parse_rejects_non_strings():
    with pytest.raises(InputError, match="gz2_class nan"):
        parse_gz2_class(float("nan"))


def test_map_catalog_labels_and_exclusions():
    df = pd.DataFrame(
        {"gz2_class": ["Er", "SBc2m", "Sb", "A", None, "Sc2l", "Er", "Sc(m)", "Sen(u)", " Ei "]},
        index=[f"r{i}" for i in range(10)],
    )
    labels, excluded = map_catalog(df)
    expected = [
        CLASS_INDEX["round_smooth"],
        CLASS_INDEX["barred_spiral"],
        -1,
        -1,
        -1,
        CLASS_INDEX["unbarred_loose_spiral"],
        CLASS_INDEX["round_smooth"],
        -1,
        CLASS_INDEX["edge_on_without_bulge"],
        CLASS_INDEX["in_between_smooth"],
    ]
    assert labels.tolist() == expected
    assert labels.dtype == np.int64 and list(labels.index) == list(df.index)
    assert excluded == {"artifact": 1, "spiral_without_arm_info": 2, "missing_class": 1}
    assert set(excluded) == set(EXCLUSION_REASONS)


def test_map_catalog_error_names_row_and_string():
    df = pd.DataFrame({"gz2_class": ["Er", "Er", "Sq", "Er"]}, index=[10, 11, 12, 13])
    with pytest.raises(InputError, match=r"row 12.*'Sq'"):
        map_catalog(df)
    with pytest.raises(InputError, match="'klass'"):
        map_catalog(df, column="klass")


def test_map_catalog_is_fast_on_a_full_size_catalogue():
    strings = np.array([s for s, _ in TABLE], dtype=object)
    df = pd.DataFrame({"gz2_class": strings[np.arange(240_000) % len(strings)]})
    start = time.perf_counter()
    labels, excluded = map_catalog(df)
    assert time.perf_counter() - start < 3.0
    n_excluded = sum(v is None for _, v in TABLE)
    assert sum(excluded.values()) == int((labels == -1).sum())
    assert int((labels == -1).sum()) == pytest.approx(240_000 * n_excluded / len(TABLE), abs=len(TABLE))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("E0", "E"),
        ("E7", "E"),
        ("S0", "S"),
        ("S0a", "S"),
        ("Sa", "S"),
        ("Sbc", "S"),
        ("Sdm", "S"),
        ("I", "I"),
        ("BCD", "BCD"),
        ("U", "U"),
        ("unknown", "U"),
        (" Sb ", "S"),
        (-1, "U"),
        (0, "E"),
        (7, "E"),
        (8, "S"),
        (9, "S"),
        (17, "S"),
        (18, "I"),
        (19, "BCD"),
        (np.int64(12), "S"),
        ("12", "S"),
        ("-1", "U"),
        (14.0, "S"),
    ],
)
def test_califa_coarse(value, expected):
    assert califa_coarse(value) == expected
    assert expected in CALIFA_COARSE


def test_califa_coarse_codes_agree_with_strings():
    for code, name in enumerate(CALIFA_TYPES):
        assert califa_coarse(code) == califa_coarse(name)


@pytest.mark.parametrize("value", ["E8", "Sx", "", "e0", 20, -2, 1.5, float("nan"), None, True])
def test_califa_coarse_rejects(value):
    with pytest.raises(InputError, match="bad CALIFA Hubble type"):
        califa_coarse(value)


def test_map_catalog_error_names_the_first_bad_row_in_row_order():
    # " Qx" (row b) and "Qx" (row d) are one bad string after stripping; "Zz" (row c) fails too, later.
    df = pd.DataFrame({"gz2_class": ["Er", " Qx", "Zz", "Qx", "Er"]}, index=list("abcde"))
    with pytest.raises(InputError, match=r"row b: cannot parse gz2_class 'Qx'"):
        map_catalog(df)
    mixed = pd.DataFrame({"gz2_class": pd.Series(["Er", 7, "Sb"], index=[5, 6, 7], dtype=object)})
    with pytest.raises(InputError, match=r"row 6: cannot parse gz2_class '7'"):
        map_catalog(mixed)


def test_map_catalog_counts_missing_of_every_kind():
    df = pd.DataFrame({"gz2_class": pd.Series([np.nan, None, "", "  ", "A", "Er", " Er"], dtype=object)})
    labels, excluded = map_catalog(df)
    assert labels.tolist() == [-1, -1, -1, -1, -1, CLASS_INDEX["round_smooth"], CLASS_INDEX["round_smooth"]]
    assert excluded == {"artifact": 1, "spiral_without_arm_info": 0, "missing_class": 4}
    labels, excluded = map_catalog(pd.DataFrame({"gz2_class": [np.nan, np.nan]}))
    assert labels.tolist() == [-1, -1] and labels.dtype == np.int64
    assert excluded["missing_class"] == 2
