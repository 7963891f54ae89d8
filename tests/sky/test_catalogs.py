"""Tests of the mock survey's table writers and the streaming Galaxy10 DECaLS HDF5 writer."""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import pandas as pd
import pytest

from specmorph.io.catalogs import write_table
from specmorph.sky import catalogs, votes
from specmorph.sky.truth import GalaxyTruth

BASE = GalaxyTruth(
    id_str="MOCK0001", ra=150.0, dec=10.0, redshift=0.02, label=7, galaxy10=6, hubtyp="Sb",
    mag_r=14.0, bulge_frac=0.2, bulge_n=2.5, bulge_re=3.0, bulge_q=0.85, disc_h=8.0, disc_q=0.8,
    inclination=37.0, pa=30.0, bar_strength=0.0, bar_length=0.0, n_arms=2, pitch=12.0, arm_strength=0.45,
    dust_lane=0.0, bulge_gr=0.77, disc_gr=0.5, age_bulge=8.0, age_disc=3.0, ew_ha=15.0, log_nii_ha=-0.4,
    log_oiii_hb=-0.3, av=0.5, v_rot=200.0, sigma=120.0,
)


def _gz2_rows(seed: int, n: int = 40) -> list[dict]:
    rng = np.random.default_rng(seed)
    ids = catalogs.make_dr7objid(rng, n)
    rows = []
    for i in range(n):
        g = replace(BASE, label=int(rng.integers(8)), ra=float(rng.uniform(0, 360)), dec=float(rng.uniform(-10, 60)))
        rows.append({"dr7objid": int(ids[i]), "ra": g.ra, "dec": g.dec, **votes.draw_votes(g, rng)})
    return rows


def test_write_table_leaves_only_the_csv(tmp_path):
    path = tmp_path / "sub" / "t.csv"
    write_table(pd.DataFrame({"a": [1, 2]}), path)
    assert pd.read_csv(path)["a"].tolist() == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]


def test_morphology_table_columns():
    df = catalogs.morphology_table([BASE, replace(BASE, id_str="MOCK0002", hubtyp="E4")])
    assert df.columns.tolist() == ["name", "ra", "dec", "redshift", "hubtyp"]
    assert df["hubtyp"].tolist() == ["Sb", "E4"]


@pytest.mark.parametrize(("ra", "expected"), [(0.0, "00:00:00.00"), (195.45, "13:01:48.00"),
                                              (359.99999999, "00:00:00.00"), (15.0 / 3600 * 59.996, "00:01:00.00")])
def test_ra_string(ra, expected):
    assert catalogs.ra_string(ra) == expected


@pytest.mark.parametrize(("dec", "expected"), [(14.23, "+14:13:48.0"), (-1.1483592, "-01:08:54.1"),
                                               (-0.00001, "+00:00:00.0"), (59.99999, "+60:00:00.0")])
def test_dec_string(dec, expected):
    assert catalogs.dec_string(dec) == expected


def test_gz2_table_layout_and_determinism(tmp_path):
    df = catalogs.gz2_table(_gz2_rows(11))
    assert df.columns.tolist() == votes.GZ2_COLUMNS
    assert df["dr7objid"].dtype == np.int64
    assert df["dr7objid"].astype(str).str.fullmatch(r"587\d{15}").all()
    assert set(df["sample"]) == {"original"}
    assert df["rastring"].str.fullmatch(r"\d\d:\d\d:\d\d\.\d\d").all()
    assert df["decstring"].str.fullmatch(r"[+-]\d\d:\d\d:\d\d\.\d").all()
    assert df.to_csv(index=False) == catalogs.gz2_table(_gz2_rows(11)).to_csv(index=False)
    assert df.to_csv(index=False) != catalogs.gz2_table(_gz2_rows(12)).to_csv(index=False)
    path = tmp_path / "gz2_hart16.csv"
    write_table(df, path)
    back = pd.read_csv(path)
    assert back.columns.tolist() == votes.GZ2_COLUMNS
    assert back["dr7objid"].tolist() == df["dr7objid"].tolist()


def test_gz2_table_rejects_unknown_sample():
    rows = _gz2_rows(1, n=2)
    rows[0]["sample"] = "stripe83"
    with pytest.raises(ValueError, match="stripe83"):
        catalogs.gz2_table(rows)


def test_make_dr7objid_unique_and_decodable():
    ids = catalogs.make_dr7objid(np.random.default_rng(0), 5000)
    assert len(set(ids.tolist())) == 5000
    assert all(587_000_000_000_000_000 <= i < 588_000_000_000_000_000 for i in ids.tolist())
    run, camcol = (ids >> 32) & 0xFFFF, (ids >> 29) & 0x7
    assert ((run >= 94) & (run <= 8162)).all() and ((camcol >= 1) & (camcol <= 6)).all()
    assert ((ids >> 48) & 0x7FF == 40).all()


def test_cutout_index_columns():
    df = catalogs.cutout_index([{"name": "MOCK0001", "ra": 1.0, "dec": 2.0, "file": "cutouts/MOCK0001.jpg"}])
    assert df.columns.tolist() == ["name", "ra", "dec", "file"]


def test_galaxy10_writer_roundtrip(tmp_path):
    path = tmp_path / "Galaxy10_DECals.h5"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 256, 256, 3), dtype=np.uint8)
    with catalogs.Galaxy10Writer(path, 3) as w:
        for i in range(3):
            w.write(i, images[i], ans=i + 7, ra=10.0 + i, dec=-5.0, redshift=0.05 * (i + 1))
        assert not path.exists()
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["ans", "dec", "images", "pxscale", "ra", "redshift"]
        assert f["images"].dtype == np.uint8 and f["images"].shape == (3, 256, 256, 3)
        assert f["images"].compression == "gzip" and f["images"].chunks == (1, 256, 256, 3)
        assert f["ans"].dtype == np.uint8 and f["ans"][:].tolist() == [7, 8, 9]
        assert f["ra"].dtype == np.float64 and f["redshift"][:] == pytest.approx([0.05, 0.1, 0.15])
        assert f["pxscale"].dtype == np.float32
        np.testing.assert_array_equal(f["images"][1], images[1])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_galaxy10_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "Galaxy10_DECals.h5"
    with pytest.raises(RuntimeError, match="boom"), catalogs.Galaxy10Writer(path, 2) as w:
        w.write(0, np.zeros((256, 256, 3), np.uint8), 2, 1.0, 2.0, 0.1)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_galaxy10_writer_rejects_bad_image(tmp_path):
    with catalogs.Galaxy10Writer(tmp_path / "g.h5", 1) as w, pytest.raises(ValueError, match="uint8"):
        w.write(0, np.zeros((128, 128, 3), np.uint8), 2, 1.0, 2.0, 0.1)
