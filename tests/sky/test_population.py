"""Tests of the mock galaxy population and the three samples."""

import math

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.cosmology import FlatLambdaCDM

from specmorph.sky.population import (
    _JOINT_JITTER,
    _JOINT_RANGES,
    arcsec_per_kpc,
    calibration,
    distance_modulus,
    draw_galaxy,
    joint_draw,
    label_of,
)
from specmorph.sky.samples import califa_sample, galaxy10_sample, gz2_ra_window, gz2_sample
from specmorph.taxonomy import CALIFA_TYPES, CLASS_INDEX, CLASSES


def _by_label(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return {name: [draw_galaxy(rng, f"G{i}", 180.0, 10.0, None, label_name=name, field=True) for i in range(n)]
            for name in CLASSES}


@pytest.fixture(scope="module")
def per_class():
    return _by_label()


def test_cosmology_matches_astropy():
    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)
    for z in (0.01, 0.03, 0.1):
        expected = cosmo.arcsec_per_kpc_proper(z).value
        assert arcsec_per_kpc(z) == pytest.approx(expected, rel=0.01)
        assert distance_modulus(z) == pytest.approx(cosmo.distmod(z).value, abs=0.02)


def test_label_of_table():
    assert CLASSES[label_of("E0", 0, False, 0.95)] == "round_smooth"
    assert CLASSES[label_of("E4", 0, False, 0.6)] == "in_between_smooth"
    assert CLASSES[label_of("E7", 0, False, 0.3)] == "cigar_smooth"
    assert CLASSES[label_of("Sb", 85, False, 0.15)] == "edge_on_with_bulge"
    assert CLASSES[label_of("Sd", 85, True, 0.15)] == "edge_on_without_bulge"
    assert CLASSES[label_of("Sc", 40, True, 0.8)] == "barred_spiral"
    assert CLASSES[label_of("Sab", 40, False, 0.8)] == "unbarred_tight_spiral"
    assert CLASSES[label_of("Scd", 40, False, 0.8)] == "unbarred_loose_spiral"


def test_every_drawn_galaxy_has_the_requested_label(per_class):
    for name, gals in per_class.items():
        assert {g.label for g in gals} == {CLASS_INDEX[name]}
        assert all(g.hubtyp in CALIFA_TYPES for g in gals)


def test_class_conditional_shapes(per_class):
    q = {name: np.array([g.disc_q if g.bulge_frac < 1 else g.bulge_q for g in gals])
         for name, gals in per_class.items()}
    assert q["edge_on_with_bulge"].max() < 0.3
    assert q["edge_on_without_bulge"].max() < 0.3
    assert q["round_smooth"].min() >= 0.8
    assert q["cigar_smooth"].max() < 0.45
    assert np.median(q["unbarred_tight_spiral"]) > 0.45
    assert all(g.bar_strength > 0 for g in per_class["barred_spiral"])
    assert all(g.bar_strength == 0 for g in per_class["unbarred_loose_spiral"])
    assert all(g.bulge_frac <= 0.03 for g in per_class["edge_on_without_bulge"])
    tight = np.median([g.pitch for g in per_class["unbarred_tight_spiral"]])
    loose = np.median([g.pitch for g in per_class["unbarred_loose_spiral"]])
    assert tight < 13 and loose > 23
    assert max(g.pitch for g in per_class["unbarred_tight_spiral"]) <= 15


def test_spectral_correlations(per_class):
    """Star formation, kinematics and dust follow morphology as in real galaxies."""
    ew = {name: np.median([g.ew_ha for g in gals]) for name, gals in per_class.items()}
    assert ew["unbarred_loose_spiral"] > 3 * ew["round_smooth"]
    assert ew["edge_on_without_bulge"] > 3 * ew["cigar_smooth"]
    assert all(g.v_rot == 0 for g in per_class["cigar_smooth"])
    assert min(g.v_rot for g in per_class["edge_on_without_bulge"]) > 40
    assert np.median([g.av for g in per_class["edge_on_with_bulge"]]) > np.median(
        [g.av for g in per_class["unbarred_tight_spiral"]])
    assert np.median([g.age_disc for g in per_class["unbarred_loose_spiral"]]) < np.median(
        [g.age_bulge for g in per_class["round_smooth"]])


def test_califa_sample_follows_real_type_mix():
    gals = califa_sample(np.random.default_rng(1), 1500)
    mix = calibration()["type_mix"]
    frac_e = np.mean([g.hubtyp.startswith("E") for g in gals])
    assert frac_e == pytest.approx(sum(v for k, v in mix.items() if k.startswith("E")), abs=0.03)
    z = np.array([g.redshift for g in gals])
    assert 0.005 <= z.min() and z.max() <= 0.08 and 0.01 < np.median(z) < 0.03


def test_gz2_footprint_and_positions():
    rng = np.random.default_rng(2)
    califa = califa_sample(rng, 400)
    entries = gz2_sample(rng, califa, 50, 0.26)
    matched = [e for e in entries if e.califa_name and not e.shred]
    lo, hi = gz2_ra_window(0.26)
    expected = sum(lo <= g.ra < hi for g in califa)
    assert len(matched) == expected
    assert 0.15 < expected / 400 < 0.37
    by_name = {g.id_str: g for g in califa}
    for e in entries:
        if e.califa_name:
            g = by_name[e.califa_name]
            sep = SkyCoord(g.ra, g.dec, unit="deg").separation(SkyCoord(e.truth.ra, e.truth.dec, unit="deg"))
            assert sep.arcsec < 2.6
    assert len({e.dr7objid for e in entries}) == len(entries)
    assert all(len(str(e.dr7objid)) == 18 for e in entries)
    assert sum(not e.califa_name for e in entries) == 50


def test_galaxy10_shares_some_gz2_galaxies():
    rng = np.random.default_rng(3)
    gz2 = gz2_sample(rng, califa_sample(rng, 10), 300, 0.5)
    g10 = galaxy10_sample(rng, 200, gz2)
    codes = np.bincount([g.galaxy10 for g in g10], minlength=10)
    assert codes.sum() == 200 and (codes > 0).sum() >= 8
    gz2_ids = {e.truth.id_str for e in gz2}
    shared = [g for g in g10 if g.id_str in gz2_ids]
    assert 0 < len(shared) < 200
    assert len({g.id_str for g in g10}) == 200  # no galaxy twice within Galaxy10
    assert all(CLASSES[g.label] != "cigar_smooth" or g.galaxy10 == 4 for g in shared)


def test_same_seed_same_truths():
    a = califa_sample(np.random.default_rng(7), 20)
    b = califa_sample(np.random.default_rng(7), 20)
    assert a == b
    assert not math.isclose(a[0].ra, califa_sample(np.random.default_rng(8), 20)[0].ra)


def test_truth_names_the_quantities_the_copied_real_galaxy_lacked():
    """About as many E4 galaxies have [NII]/Hα unmeasured as real E4 galaxies lack it; only joint columns are named."""
    cal = calibration()
    columns = cal["joint"]["columns"]
    rows = cal["joint"]["rows"]["E4"]
    missing = np.mean([r[columns.index("log_nii_ha")] is None for r in rows])
    assert 0.05 < missing < 0.95  # the real E4 rows have some without a value
    rng = np.random.default_rng(3)
    truths = [draw_galaxy(rng, f"G{i}", 0.0, 0.0, None, hubtyp="E4") for i in range(600)]
    names = [t.unmeasured.split(";") if t.unmeasured else [] for t in truths]
    assert all(set(n) <= set(columns) for n in names)
    assert np.mean(["log_nii_ha" in n for n in names]) == pytest.approx(missing, abs=0.07)


def test_a_deck_copies_every_real_galaxy_once_before_any_twice(monkeypatch):
    """Without jitter a draw is its real row: one pass of the deck gives each S0 row exactly once."""
    monkeypatch.setattr("specmorph.sky.population._JOINT_JITTER",
                        {c: (0.0, log) for c, (_, log) in _JOINT_JITTER.items()})
    cal = calibration()
    columns, rows = cal["joint"]["columns"], cal["joint"]["rows"]["S0"]
    rng, deck = np.random.default_rng(1), {}
    drawn = [joint_draw(rng, "S0", deck)[0] for _ in rows]
    usable = [{c: float(v) for c, v in zip(columns, r, strict=True) if v is not None
               and _JOINT_RANGES[c][0] <= v <= _JOINT_RANGES[c][1]} for r in rows]
    key = lambda d: tuple(sorted(d.items()))  # noqa: E731
    assert sorted(map(key, drawn)) == sorted(map(key, usable))
    assert deck["S0"] == []
    joint_draw(rng, "S0", deck)  # the next pass is dealt afresh
    assert len(deck["S0"]) == len(rows) - 1


def test_joint_draw_takes_all_values_from_one_real_galaxy():
    """Every drawn set lies within 5 jitter-sigmas of one and the same real eCALIFA row of the type, and
    the draws keep the real rows' correlation of colour with EW(Hα) (two code paths, same numbers)."""
    cal = calibration()
    columns, rows = cal["joint"]["columns"], np.array(cal["joint"]["rows"]["Sb"], dtype=float)  # None -> nan
    rng = np.random.default_rng(0)
    draws = [joint_draw(rng, "Sb")[0] for _ in range(2000)]
    for d in draws[:200]:
        close = np.ones(len(rows), bool)
        for k, v in d.items():
            std, log = _JOINT_JITTER[k]
            real = rows[:, columns.index(k)]
            with np.errstate(invalid="ignore", divide="ignore"):  # real rows that are missing or <= 0
                dev = np.abs(np.log(v / real)) if log else np.abs(v - real)
            close &= np.nan_to_num(dev, nan=np.inf) <= 5 * std + 1e-9
        assert close.any()
    pairs = np.array([(d["g_r"], math.log10(d["ew_ha_re"])) for d in draws if {"g_r", "ew_ha_re"} <= d.keys()
                      and d["ew_ha_re"] > 0])
    ok = np.isfinite(rows[:, columns.index("g_r")]) & (rows[:, columns.index("ew_ha_re")] > 0)
    real = np.stack([rows[ok, columns.index("g_r")], np.log10(rows[ok, columns.index("ew_ha_re")])], 1)
    assert np.corrcoef(real.T)[0, 1] < -0.3  # redder Sb galaxies form fewer stars
    assert np.corrcoef(pairs.T)[0, 1] == pytest.approx(np.corrcoef(real.T)[0, 1], abs=0.1)
