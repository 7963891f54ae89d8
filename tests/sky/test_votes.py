"""Tests of the mock Galaxy Zoo 2 votes: the real column scheme, the decision tree and the gz2_class grammar."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specmorph.sky import votes
from specmorph.sky.truth import GalaxyTruth
from specmorph.taxonomy import CLASS_INDEX, CLASSES

DATA = Path(__file__).parents[1] / "data"
REAL_TABLE5 = Path("/work/shared/data/gz2_columns/gz2_table5_first50.csv")

BASE = GalaxyTruth(
    id_str="587722981736120347", ra=150.0, dec=10.0, redshift=0.03, label=0, galaxy10=5, hubtyp="Sb",
    mag_r=15.5, bulge_frac=0.2, bulge_n=2.5, bulge_re=1.5, bulge_q=0.85, disc_h=5.0, disc_q=0.8,
    inclination=37.0, pa=30.0, bar_strength=0.0, bar_length=0.0, n_arms=2, pitch=12.0, arm_strength=0.45,
    dust_lane=0.0, bulge_gr=0.77, disc_gr=0.5, age_bulge=8.0, age_disc=3.0, ew_ha=15.0, log_nii_ha=-0.4,
    log_oiii_hb=-0.3, av=0.5, v_rot=200.0, sigma=120.0,
)


def make_truth(label: str, rng: np.random.Generator, redshift: float | None = None) -> GalaxyTruth:
    """A galaxy of one 8-class label with parameters drawn in that class's typical ranges."""
    z = float(rng.uniform(0.01, 0.1)) if redshift is None else redshift
    g = replace(BASE, label=CLASS_INDEX[label], redshift=z, disc_h=float(rng.uniform(2.0, 8.0)),
                arm_strength=float(rng.uniform(0.3, 0.6)), bulge_frac=float(rng.uniform(0.08, 0.35)),
                inclination=float(rng.uniform(0.0, 65.0)), n_arms=int(rng.choice([2, 2, 3, 4])))
    if label.endswith("_smooth"):
        q = {"round_smooth": (0.83, 1.0), "in_between_smooth": (0.5, 0.77), "cigar_smooth": (0.22, 0.42)}[label]
        qq = float(rng.uniform(*q))
        return replace(g, hubtyp="E3", bulge_frac=1.0, disc_h=0.0, bulge_re=float(rng.uniform(2, 6)), bulge_q=qq,
                       disc_q=qq, inclination=0.0, n_arms=0, pitch=0.0, arm_strength=0.0)
    if label.startswith("edge_on"):
        bt = float(rng.uniform(0.2, 0.4)) if label == "edge_on_with_bulge" else float(rng.uniform(0.0, 0.03))
        return replace(g, inclination=float(rng.uniform(82.0, 90.0)), disc_q=0.13, bulge_frac=bt, n_arms=0,
                       dust_lane=float(rng.uniform(0.3, 0.9)))
    if label == "barred_spiral":
        return replace(g, bar_strength=float(rng.uniform(0.12, 0.3)), bar_length=4.0,
                       pitch=float(rng.uniform(8.0, 30.0)))
    if label == "unbarred_loose_spiral":
        return replace(g, hubtyp="Sc", pitch=float(rng.uniform(21.0, 35.0)), bulge_frac=float(rng.uniform(0, 0.1)))
    return replace(g, pitch=float(rng.uniform(5.0, 15.0)))


def map8(gz2_class: str) -> int:
    """The 8-class label a gz2_class string maps to (-1: excluded), as the catalogue stage reads it."""
    c = gz2_class.split("(")[0]
    simple = {"Ec": "cigar_smooth", "Ser": "edge_on_with_bulge", "Seb": "edge_on_with_bulge",
              "Sen": "edge_on_without_bulge", "Ei": "in_between_smooth", "Er": "round_smooth"}
    if c.startswith("SB"):
        return CLASS_INDEX["barred_spiral"]
    if c in simple:
        return CLASS_INDEX[simple[c]]
    if c.startswith("S") and len(c) == 4:
        return CLASS_INDEX["unbarred_loose_spiral" if c[-1] == "l" else "unbarred_tight_spiral"]
    return -1


@pytest.fixture(scope="module")
def sample() -> tuple[list[GalaxyTruth], list[dict]]:
    rng = np.random.default_rng(0)
    truths = [make_truth(CLASSES[i % 8], rng) for i in range(8 * 500)]
    return truths, [votes.draw_votes(g, rng) for g in truths]


def _stems(path: Path) -> list[str]:
    return [s for s in path.read_text().split() if s and not s.startswith("#")]


def test_answer_columns_follow_the_real_gz2_scheme():
    fixture = [ln for ln in (DATA / "gz2_columns_header.txt").read_text().splitlines() if not ln.startswith("#")]
    assert votes.ANSWERS == fixture
    assert votes.GZ2_COLUMNS[:9] == ["dr7objid", "ra", "dec", "rastring", "decstring", "sample", "gz2_class",
                                     "total_classifications", "total_votes"]
    assert len(votes.GZ2_COLUMNS) == 9 + 37 * 6
    assert votes.GZ2_COLUMNS[9:15] == [f"t01_smooth_or_features_a01_smooth_{s}" for s in votes.SUFFIXES]


@pytest.mark.skipif(not REAL_TABLE5.exists(), reason="reference data /work/shared/data absent")
def test_answer_columns_exist_in_the_real_table():
    header = pd.read_csv(REAL_TABLE5, nrows=0).columns.tolist()
    assert [c[: -len("_count")] for c in header if c.endswith("_count")] == votes.ANSWERS
    assert set(votes.ANSWER_COLUMNS) <= set(header)


def test_votes_respect_the_decision_tree(sample):
    _, rows = sample
    for r in rows[:800]:
        n = {t: sum(r[f"{a}_count"] for a in answers) for t, answers in votes.TASKS.items()}
        assert n["t01"] == r["total_classifications"]
        assert r["total_votes"] == sum(n.values())
        assert n["t02"] == r["t01_smooth_or_features_a02_features_or_disk_count"]
        assert n["t03"] == n["t04"] == n["t05"] == r["t02_edgeon_a05_no_count"] <= n["t02"]
        assert n["t07"] == r["t01_smooth_or_features_a01_smooth_count"]
        assert n["t09"] == r["t02_edgeon_a04_yes_count"]
        assert n["t10"] == n["t11"] == r["t04_spiral_a08_spiral_count"]
        assert n["t08"] == r["t06_odd_a14_yes_count"] <= n["t06"] <= n["t01"]
        for t, answers in votes.TASKS.items():
            for suffix in ("fraction", "weighted_fraction", "debiased"):
                total = sum(r[f"{a}_{suffix}"] for a in answers)
                assert total == pytest.approx(1.0 if n[t] else 0.0, abs=len(answers) * 0.0006)


def test_total_classifications_like_gz2_main_sample(sample):
    _, rows = sample
    n = np.array([r["total_classifications"] for r in rows])
    assert 42 <= np.median(n) <= 46
    assert n.min() >= 38


@pytest.mark.parametrize(("fractions", "expected"), [
    ({"t01_smooth_or_features_a01_smooth": 0.8, "t07_rounded_a16_completely_round": 0.6,
      "t07_rounded_a17_in_between": 0.4, "t06_odd_a15_no": 0.9}, "Er"),
    ({"t01_smooth_or_features_a01_smooth": 0.7, "t07_rounded_a18_cigar_shaped": 0.7,
      "t06_odd_a15_no": 0.9}, "Ec"),
    ({"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a04_yes": 0.8,
      "t09_bulge_shape_a27_no_bulge": 0.7, "t06_odd_a15_no": 0.8}, "Sen"),
    ({"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a04_yes": 0.8,
      "t09_bulge_shape_a26_boxy": 0.5, "t09_bulge_shape_a25_rounded": 0.4, "t06_odd_a15_no": 0.8}, "Seb"),
    ({"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a05_no": 0.9, "t03_bar_a06_bar": 0.7,
      "t05_bulge_prominence_a11_just_noticeable": 0.6, "t04_spiral_a08_spiral": 0.8, "t11_arms_number_a32_2": 0.6,
      "t10_arms_winding_a29_medium": 0.5, "t06_odd_a15_no": 0.7}, "SBc2m"),
    ({"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a05_no": 0.9, "t03_bar_a07_no_bar": 0.7,
      "t05_bulge_prominence_a12_obvious": 0.6, "t04_spiral_a08_spiral": 0.8,
      "t11_arms_number_a37_cant_tell": 0.6, "t10_arms_winding_a28_tight": 0.5, "t06_odd_a15_no": 0.7}, "Sb?t"),
    ({"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a05_no": 0.9, "t03_bar_a07_no_bar": 0.6,
      "t05_bulge_prominence_a11_just_noticeable": 0.6, "t04_spiral_a08_spiral": 0.8,
      "t11_arms_number_a36_more_than_4": 0.4, "t11_arms_number_a32_2": 0.3, "t10_arms_winding_a30_loose": 0.6,
      "t06_odd_a14_yes": 0.6, "t08_odd_feature_a19_ring": 0.5, "t08_odd_feature_a23_other": 0.3}, "Sc+l(r)"),
    ({"t01_smooth_or_features_a03_star_or_artifact": 0.6, "t01_smooth_or_features_a01_smooth": 0.3,
      "t06_odd_a14_yes": 0.9}, "A"),
])
def test_gz2_class_grammar(fractions, expected):
    assert votes.gz2_class_from_fractions(fractions) == expected


def test_gz2_class_maps_back_to_truth_mostly(sample):
    truths, rows = sample
    labels = np.array([g.label for g in truths])
    mapped = np.array([map8(r["gz2_class"]) for r in rows])
    agreement = np.mean(mapped == labels)
    assert 0.75 <= agreement < 1.0
    for k in range(8):
        assert np.mean(mapped[labels == k] == k) > 0.6, CLASSES[k]


def test_high_confidence_subset_is_sizeable_and_clean(sample):
    truths, rows = sample
    picked = []
    for g, r in zip(truths, rows, strict=True):
        d = {c[: -len("_debiased")]: v for c, v in r.items() if c.endswith("_debiased")}
        feat, smooth = d["t01_smooth_or_features_a02_features_or_disk"], d["t01_smooth_or_features_a01_smooth"]
        name = CLASSES[g.label]
        family = "spiral" if name.endswith("_spiral") else "edge" if name.startswith("edge") else name
        if feat >= 0.430 and d["t02_edgeon_a05_no"] >= 0.715 and d["t04_spiral_a08_spiral"] >= 0.619:
            picked.append(family == "spiral")
        elif feat >= 0.430 and d["t02_edgeon_a04_yes"] >= 0.602:
            picked.append(family == "edge")
        elif smooth >= 0.469:
            for stem, cls in (("t07_rounded_a16_completely_round", "round_smooth"),
                              ("t07_rounded_a17_in_between", "in_between_smooth"),
                              ("t07_rounded_a18_cigar_shaped", "cigar_smooth")):
                if d[stem] >= 0.5:
                    picked.append(family == cls)
    assert 0.2 <= len(picked) / len(rows) <= 0.8
    assert np.mean(picked) >= 0.9


def test_redshift_bias_and_debiasing():
    rng = np.random.default_rng(1)
    stem = "t01_smooth_or_features_a02_features_or_disk"
    raw, deb = {}, {}
    for z in (0.02, 0.15):
        rows = [votes.draw_votes(make_truth(name, rng, redshift=z), rng)
                for name in ("barred_spiral", "unbarred_tight_spiral", "unbarred_loose_spiral") * 150]
        raw[z] = np.mean([r[f"{stem}_fraction"] for r in rows])
        deb[z] = np.mean([r[f"{stem}_debiased"] for r in rows])
    assert raw[0.15] < raw[0.02] - 0.1
    assert deb[0.15] - deb[0.02] > raw[0.15] - raw[0.02]
    assert all(d >= r for d, r in zip(deb.values(), raw.values(), strict=True))


def test_same_seed_same_votes():
    g = make_truth("barred_spiral", np.random.default_rng(3))
    a = votes.draw_votes(g, np.random.default_rng(5))
    b = votes.draw_votes(g, np.random.default_rng(5))
    assert a == b
    assert votes.draw_votes(g, np.random.default_rng(6)) != a


def test_n_volunteers_and_flags():
    g = make_truth("round_smooth", np.random.default_rng(4))
    r = votes.draw_votes(g, np.random.default_rng(0), n_volunteers=60)
    assert r["total_classifications"] == 60
    for stem in votes.ANSWERS:
        assert r[f"{stem}_flag"] in (0, 1)
        assert r[f"{stem}_flag"] == 0 or r[f"{stem}_debiased"] >= 0.8
