"""Tests of the one-to-one sky crossmatch on hand-placed coordinates."""

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from specmorph.catalog.crossmatch import (
    REASON_LEFT_TAKEN,
    REASON_RIGHT_TAKEN,
    _near_in_dec,
    crossmatch,
    match_stats,
    require_matches,
)
from specmorph.errors import InputError

ARCSEC = 1.0 / 3600.0  # deg


def haversine_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle separation computed independently of astropy, arcsec."""
    r1, d1, r2, d2 = np.radians([ra1, dec1, ra2, dec2])
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return float(np.degrees(2 * np.arcsin(np.sqrt(h))) * 3600)


def table(rows: list[tuple[object, float, float]], id_col: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[id_col, "ra", "dec"])


def test_ra_wrap_and_poles_match_with_true_separation():
    left = table([("wrap", 359.9999, 10.0), ("north", 0.0, 89.99), ("south", 200.0, -89.99)], "name")
    right = table([(3, 1.0, 89.99), (1, 0.0001, 10.0), (2, 204.0, -89.99)], "dr7objid")
    matched, duplicates = crossmatch(left, right, radius_arcsec=3.0)
    assert list(matched["name"]) == ["wrap", "north", "south"]
    assert list(matched["dr7objid"]) == [1, 3, 2]
    expected = [
        haversine_arcsec(359.9999, 10.0, 0.0001, 10.0),  # ~0.709"
        haversine_arcsec(0.0, 89.99, 1.0, 89.99),  # RA differs by 1 deg, ~0.628"
        haversine_arcsec(200.0, -89.99, 204.0, -89.99),  # RA differs by 4 deg, ~2.51"
    ]
    np.testing.assert_allclose(matched["sep_arcsec"], expected, rtol=1e-6)
    assert max(expected) < 3.0 and min(expected) > 0.5
    assert duplicates.empty
    np.testing.assert_allclose(matched["ra_right"], [0.0001, 1.0, 204.0])
    assert list(matched["left_row"]) == [0, 1, 2] and list(matched["right_row"]) == [1, 0, 2]


def test_pole_pair_just_outside_radius_is_not_matched():
    # Opposite sides of the pole: RA 180 deg apart, 2 * 0.0005 deg = 3.6" apart.
    left = table([("a", 100.0, -89.9995)], "name")
    right = table([(7, 280.0, -89.9995)], "dr7objid")
    matched, _ = crossmatch(left, right, radius_arcsec=3.0)
    assert matched.empty
    matched, _ = crossmatch(left, right, radius_arcsec=3.7)
    assert matched["sep_arcsec"].iloc[0] == pytest.approx(3.6, rel=1e-4)


def test_nearest_right_wins_and_other_is_reported():
    left = table([("L", 150.0, 20.0)], "name")
    right = table([(20, 150.0, 20.0 + 2 * ARCSEC), (10, 150.0, 20.0 + 1 * ARCSEC)], "dr7objid")
    matched, duplicates = crossmatch(left, right)
    assert list(matched["dr7objid"]) == [10]
    assert matched["sep_arcsec"].iloc[0] == pytest.approx(1.0, rel=1e-6)
    assert list(duplicates["dr7objid"]) == [20] and list(duplicates["name"]) == ["L"]
    assert duplicates["sep_arcsec"].iloc[0] == pytest.approx(2.0, rel=1e-6)
    assert duplicates["reason"].iloc[0] == REASON_LEFT_TAKEN


def test_right_object_goes_to_nearest_left_only():
    left = table([("far", 120.0, -30.0 + 2 * ARCSEC), ("near", 120.0, -30.0)], "name")
    right = table([(5, 120.0, -30.0 + 0.5 * ARCSEC)], "dr7objid")
    matched, duplicates = crossmatch(left, right)
    assert list(matched["name"]) == ["near"]
    assert list(duplicates["name"]) == ["far"] and duplicates["reason"].iloc[0] == REASON_RIGHT_TAKEN
    assert duplicates["sep_arcsec"].iloc[0] == pytest.approx(1.5, rel=1e-6)


def test_one_to_one_on_a_crowded_field():
    rng = np.random.default_rng(0)
    left = table([(f"g{i}", 30.0, 5.0 + i * ARCSEC) for i in range(6)], "name")
    right = table([(i, 30.0 + rng.normal(0, 0.3) * ARCSEC, 5.0 + (i + 0.2) * ARCSEC) for i in range(8)], "dr7objid")
    matched, duplicates = crossmatch(left, right, radius_arcsec=2.5)
    assert matched["name"].is_unique and matched["dr7objid"].is_unique
    assert (matched["sep_arcsec"] <= 2.5).all() and (duplicates["sep_arcsec"] <= 2.5).all()
    pairs = set(zip(matched["name"], matched["dr7objid"], strict=True))
    assert not pairs & set(zip(duplicates["name"], duplicates["dr7objid"], strict=True))


def test_empty_match_and_require_matches_message():
    left = table([("NGC1", 10.0, 10.0)], "name")
    right = table([(1, 10.0, 10.0 + 10 * ARCSEC)], "dr7objid")
    matched, duplicates = crossmatch(left, right, left_name="califa", right_name="gz2")
    assert matched.empty and duplicates.empty
    assert {"name", "dr7objid", "sep_arcsec"} <= set(matched.columns)
    with pytest.raises(InputError, match=r"no galaxy of califa within 3\.0 arcsec of gz2"):
        require_matches(matched, "califa", "gz2", 3.0)
    require_matches(crossmatch(left, right, radius_arcsec=11.0)[0])


def test_empty_tables_give_empty_match():
    left = table([], "name")
    right = table([(1, 10.0, 10.0)], "dr7objid")
    matched, duplicates = crossmatch(left, right)
    assert matched.empty and duplicates.empty


def test_shared_id_column_name_gets_suffixes():
    left = table([("A", 1.0, 1.0)], "name")
    right = table([("B", 1.0, 1.0)], "name")
    matched, _ = crossmatch(left, right, left_id="name", right_id="name")
    assert matched[["name_left", "name_right"]].iloc[0].tolist() == ["A", "B"]


def test_missing_column_names_table_and_column():
    left = table([("A", 1.0, 1.0)], "name").drop(columns="dec")
    right = table([(1, 1.0, 1.0)], "dr7objid")
    with pytest.raises(InputError, match=r"'califa'.*'dec'"):
        crossmatch(left, right, left_name="califa")
    with pytest.raises(InputError, match=r"'gz2'.*'dr7objid'"):
        crossmatch(table([("A", 1.0, 1.0)], "name"), right.rename(columns={"dr7objid": "objid"}), right_name="gz2")


@pytest.mark.parametrize(
    ("col", "value", "pattern"),
    [
        ("dec", 95.0, r"'dec'.*\[-90, 90\].*row g2"),
        ("ra", np.nan, r"'ra'.*row g2"),
        ("ra", 360.5, r"'ra'"),
        ("ra", "12:30:00", r"'ra'.*row g2"),
    ],
)
def test_bad_coordinates_name_column_and_row(col, value, pattern):
    left = table([("A", 1.0, 1.0), ("B", 2.0, 2.0), ("C", 3.0, 3.0)], "name")
    left.index = ["g0", "g1", "g2"]
    left[col] = left[col].astype(object)
    left.loc["g2", col] = value
    with pytest.raises(InputError, match=pattern):
        crossmatch(left, table([(1, 1.0, 1.0)], "dr7objid"))


def test_bad_radius():
    with pytest.raises(InputError, match="radius"):
        crossmatch(table([("A", 1.0, 1.0)], "name"), table([(1, 1.0, 1.0)], "dr7objid"), radius_arcsec=0.0)


def test_match_stats_known_values():
    left = table([("L", 150.0, 20.0), ("M", 60.0, 0.0)], "name")
    right = table(
        [(1, 150.0, 20.0 + 1 * ARCSEC), (2, 150.0, 20.0 + 2 * ARCSEC), (3, 60.0, 0.0 + 2.5 * ARCSEC)], "dr7objid"
    )
    stats = match_stats(*crossmatch(left, right))
    assert stats["n_matched"] == 2 and stats["n_duplicates"] == 1
    assert stats["median_sep_arcsec"] == pytest.approx(1.75, rel=1e-6)
    assert stats["max_sep_arcsec"] == pytest.approx(2.5, rel=1e-6)
    empty = match_stats(*crossmatch(left, table([(9, 0.0, -45.0)], "dr7objid")))
    assert empty["n_matched"] == 0 and np.isnan(empty["median_sep_arcsec"])


def test_near_in_dec_keeps_rows_within_the_margin_and_drops_far_ones():
    margin = 3 * ARCSEC
    dec = np.array([0.0, 2.9 * ARCSEC, -2.9 * ARCSEC, 1.0, 45.0, 89.9995, 90.0, -90.0])
    kept = _near_in_dec(dec, np.array([0.0, 90.0]), margin)
    assert kept.tolist() == [True, True, True, False, False, True, True, False]
    assert not _near_in_dec(dec, np.zeros(0), margin).any()
    assert _near_in_dec(dec, np.array([10.0]), 200.0).all()  # a margin wider than the sky keeps everything


def test_near_in_dec_never_drops_a_neighbour_even_below_the_cell_size():
    rng = np.random.default_rng(3)
    ref = rng.uniform(-90, 90, 300)
    margin = 0.05 * ARCSEC  # below the coarsest cell width, so cells are wider than the margin
    dec = np.clip(np.repeat(ref, 4) + rng.uniform(-margin, margin, 1200), -90, 90)
    far = rng.uniform(-90, 90, 5000)
    assert _near_in_dec(dec, ref, margin).all()
    near = np.abs(far[:, None] - ref[None, :]).min(axis=1) <= margin
    kept = _near_in_dec(far, ref, margin)
    assert kept[near].all() and kept.mean() < 0.01


@pytest.mark.parametrize("radius", [3.0, 40.0])
def test_pairs_equal_astropy_search_on_the_whole_tables(radius):
    # Clusters at the RA wrap, both poles and the equator, plus a uniform sky: the declination
    # pre-filter must hand astropy every pair it would find on the full tables, with the same separations.
    rng = np.random.default_rng(7)
    centres = [(0.0, 10.0), (359.99, -20.0), (45.0, 89.99), (200.0, -89.99), (120.0, 0.0)]
    right = [(rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))) for _ in range(3000)]
    for ra, dec in centres:
        right += [((ra + rng.normal(0, 20) * ARCSEC) % 360, float(np.clip(dec + rng.normal(0, 20) * ARCSEC, -90, 90)))
                  for _ in range(400)]
    right = np.array(right)
    picks = rng.choice(len(right), 300, replace=False)
    left = right[picks] + rng.normal(0, radius / 3, (300, 2)) * ARCSEC
    left[:, 0] %= 360
    left[:, 1] = np.clip(left[:, 1], -90, 90)
    lt = table([(f"L{i}", ra, dec) for i, (ra, dec) in enumerate(left)], "name")
    rt = table([(i, ra, dec) for i, (ra, dec) in enumerate(right)], "dr7objid")
    matched, duplicates = crossmatch(lt, rt, radius_arcsec=radius)
    i, j, sep, _ = search_around_sky(SkyCoord(left[:, 0] * u.deg, left[:, 1] * u.deg),
                                     SkyCoord(right[:, 0] * u.deg, right[:, 1] * u.deg), radius * u.arcsec)
    expected = dict(zip(zip(i.tolist(), j.tolist(), strict=True), sep.to_value(u.arcsec).tolist(), strict=True))
    got = pd.concat([matched, duplicates])
    found = dict(zip(zip(got["left_row"], got["right_row"], strict=True), got["sep_arcsec"], strict=True))
    assert len(expected) > 300
    assert found == expected  # same pairs, bit-identical separations
