"""Tests for the validating catalogue readers and the atomic table writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specmorph.errors import InputError
from specmorph.io.catalogs import (
    parse_hubtyp,
    read_cutout_index,
    read_gz2,
    read_morphology,
    write_table,
)

SMOOTH = "t01_smooth_or_features_a01_smooth_debiased"
FEATURES = "t01_smooth_or_features_a02_features_or_disk_debiased"
EDGE_ON = "t02_edgeon_a04_yes_debiased"


def _morphology(hubtyp: list) -> pd.DataFrame:
    n = len(hubtyp)
    return pd.DataFrame({"name": [f"NGC{1000 + i}" for i in range(n)], "ra": np.linspace(10, 350, n),
                         "dec": np.linspace(-20, 60, n), "redshift": np.full(n, 0.02), "hubtyp": hubtyp})


def _gz2() -> pd.DataFrame:
    n = 5
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "dr7objid": 587722981736120347 + np.arange(n, dtype=np.int64),  # exceeds float64's exact integers
        "ra": np.linspace(0.0, 359.9, n), "dec": np.linspace(-10.0, 70.0, n),
        "rastring": ["00:00:00.00"] * n, "decstring": ["+00:00:00.0"] * n, "sample": ["original"] * n,
        "gz2_class": ["Sc+t", "Ei", "Er", "SBb2m", "Ser"],
        "total_classifications": rng.integers(20, 60, n), SMOOTH: rng.random(n), FEATURES: rng.random(n),
        EDGE_ON: rng.random(n),
    })


def _csv(tmp_path: Path, df: pd.DataFrame, name: str = "table.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_morphology_type_strings(tmp_path):
    df = read_morphology(_csv(tmp_path, _morphology(["E3", "S0a", "Sbc", "BCD", "U"])))
    assert list(df.columns[:2]) == ["id_str", "name"]
    assert df["id_str"].tolist() == ["NGC1000", "NGC1001", "NGC1002", "NGC1003", "NGC1004"]
    assert df["hubtyp"].tolist() == ["E3", "S0a", "Sbc", "BCD", None]
    assert df["ra"].dtype == np.float64 and df["redshift"].tolist() == [0.02] * 5


def test_morphology_dr3_integer_codes(tmp_path):
    df = read_morphology(_csv(tmp_path, _morphology([-1, 0, 8, 12, 19])))
    assert df["hubtyp"].tolist() == [None, "E0", "S0", "Sb", "BCD"]


@pytest.mark.parametrize(("value", "expected"), [(9, "S0a"), ("17", "Sdm"), (7.0, "E7"), ("sab", "Sab"), (None, None)])
def test_parse_hubtyp(value, expected):
    assert parse_hubtyp(value) == expected


@pytest.mark.parametrize("bad", ["Sz", 20])
def test_morphology_bad_type_names_row(tmp_path, bad):
    path = _csv(tmp_path, _morphology(["E1", bad, "Sa"]), "morphology.csv")
    with pytest.raises(InputError, match=r"morphology\.csv: row 2 \(id_str=NGC1001\).*hubtyp"):
        read_morphology(path)


def test_morphology_missing_column_and_duplicates(tmp_path):
    path = _csv(tmp_path, _morphology(["E1", "Sa"]).drop(columns="redshift"), "morphology.csv")
    with pytest.raises(InputError, match=r"'redshift' missing in .*morphology\.csv"):
        read_morphology(path)
    df = _morphology(["E1", "Sa", "Sb"])
    df.loc[2, "name"] = "NGC1000"
    with pytest.raises(InputError, match=r"row 3.*duplicate"):
        read_morphology(_csv(tmp_path, df))


def test_gz2_reads_requested_columns_with_exact_ids(tmp_path):
    path = _csv(tmp_path, _gz2(), "gz2_hart16.csv")
    df = read_gz2(path, columns=[SMOOTH, FEATURES])
    assert list(df.columns) == ["id_str", "dr7objid", "ra", "dec", "gz2_class", SMOOTH, FEATURES]
    assert df["id_str"].iloc[4] == "587722981736120351"
    assert df["dr7objid"].dtype == np.int64 and df["dr7objid"].iloc[4] == 587722981736120351
    assert EDGE_ON in read_gz2(path).columns  # columns=None reads everything


def test_gz2_missing_column_is_named(tmp_path):
    path = _csv(tmp_path, _gz2().drop(columns="gz2_class"), "gz2_hart16.csv")
    with pytest.raises(InputError, match=r"'gz2_class' missing in .*gz2_hart16\.csv"):
        read_gz2(path)
    with pytest.raises(InputError, match="'t99_nothing' missing"):
        read_gz2(_csv(tmp_path, _gz2()), columns=["t99_nothing"])


@pytest.mark.parametrize(("column", "value", "message"), [
    ("dec", 95.0, r"row 3 \(id_str=587722981736120349\): dec=95.0 outside \[-90, 90\]"),
    ("ra", 360.0, r"row 3 .*ra=360.0 outside \[0, 360\)"),
    ("ra", np.nan, r"row 3 .*ra=.* not a finite number"),
])
def test_gz2_bad_coordinates_name_the_row(tmp_path, column, value, message):
    df = _gz2()
    df.loc[2, column] = value
    path = _csv(tmp_path, df, "gz2_hart16.csv")
    with pytest.raises(InputError, match=message) as err:
        read_gz2(path)
    assert "gz2_hart16.csv" in str(err.value)


def test_gz2_rejects_float_object_ids(tmp_path):
    df = _gz2().astype({"dr7objid": str})
    df.loc[1, "dr7objid"] = "5.877229817361203e+17"
    with pytest.raises(InputError, match=r"row 2.*dr7objid"):
        read_gz2(_csv(tmp_path, df))


def test_gz2_parquet_round_trip_through_write_table(tmp_path):
    path = write_table(_gz2(), tmp_path / "sub" / "gz2.parquet")
    df = read_gz2(path, columns=[EDGE_ON])
    assert df["id_str"].tolist() == [str(587722981736120347 + i) for i in range(5)]
    np.testing.assert_allclose(df[EDGE_ON], _gz2()[EDGE_ON])
    assert [p.name for p in path.parent.iterdir()] == ["gz2.parquet"]  # no temporary left


def test_cutout_index_resolves_and_checks_files(tmp_path):
    (tmp_path / "sdss" / "cutouts").mkdir(parents=True)
    index = pd.DataFrame({"name": ["MOCK0001", "MOCK0002"], "ra": [10.0, 20.0], "dec": [1.0, 2.0],
                          "file": ["cutouts/MOCK0001.jpg", "cutouts/MOCK0002.jpg"]})
    (tmp_path / "sdss" / "cutouts" / "MOCK0001.jpg").write_bytes(b"\xff\xd8")
    path = _csv(tmp_path / "sdss", index, "index.csv")
    with pytest.raises(InputError, match=r"1 cutout file\(s\) not found.*MOCK0002 \(cutouts/MOCK0002\.jpg\)"):
        read_cutout_index(path)
    (tmp_path / "sdss" / "cutouts" / "MOCK0002.jpg").write_bytes(b"\xff\xd8")
    df = read_cutout_index(path)
    assert Path(df["path"].iloc[1]) == (tmp_path / "sdss" / "cutouts" / "MOCK0002.jpg").resolve()
    assert df["id_str"].tolist() == ["MOCK0001", "MOCK0002"]


def test_write_table_csv_round_trip_and_failure_leaves_nothing(tmp_path, monkeypatch):
    df = pd.DataFrame({"id_str": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0]})
    pd.testing.assert_frame_equal(pd.read_csv(write_table(df, tmp_path / "t.csv")), df, check_dtype=False)
    with pytest.raises(InputError, match="unknown table format"):
        write_table(df, tmp_path / "t.xlsx")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)
    with pytest.raises(OSError, match="disk full"):
        write_table(df, tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_missing_catalogue_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.csv: catalogue file not found"):
        read_morphology(tmp_path / "nothere.csv")


def test_the_morphology_survey_column_defaults_to_califa_and_is_checked(tmp_path):
    rows = "name,ra,dec,redshift,hubtyp\nNGC0001,1.0,2.0,0.01,Sb\n"
    plain = tmp_path / "m.csv"
    plain.write_text(rows)
    assert read_morphology(plain)["survey"].tolist() == ["califa"]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("name,ra,dec,redshift,hubtyp,survey\nNGC0001,1.0,2.0,0.01,Sb,califa\n"
                     "8485-1901,3.0,4.0,0.02,U,manga\n7443-3702,5.0,6.0,0.03,U,sami\n")
    with pytest.raises(InputError, match=r"mixed\.csv: row 3 \(id_str=7443-3702\): survey='sami'"):
        read_morphology(mixed)
    mixed.write_text("\n".join(mixed.read_text().splitlines()[:3]) + "\n")
    assert read_morphology(mixed)["survey"].tolist() == ["califa", "manga"]
