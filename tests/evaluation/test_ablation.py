"""Tests for the ablation statistics: weighted scores, the galaxy bootstrap, per-seed differences and the sentence."""

import numpy as np
import pytest
from scipy import stats

from specmorph.evaluation.ablation import (
    ablation,
    mcnemar,
    minimum_detectable,
    paired_bootstrap,
    sentence,
    weighted_scores,
)
from specmorph.evaluation.metrics import classification_metrics

C = 3
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])  # 10 test images
NAMES = [str(c) for c in range(C)]


def _pred(n_correct: int) -> np.ndarray:
    """Predictions right on the first `n_correct` images of Y, wrong on the rest: accuracy n_correct / 10."""
    return np.where(np.arange(len(Y)) < n_correct, Y, (Y + 1) % C)


def test_per_seed_differences_mean_std_and_paired_t():
    base = {0: _pred(5), 1: _pred(6), 2: _pred(7)}  # accuracy 0.5, 0.6, 0.7
    guided = {0: _pred(6), 1: _pred(6), 2: _pred(8)}  # accuracy 0.6, 0.6, 0.8
    groups = [f"g{i}" for i in range(len(Y))]
    r = ablation(Y, base, guided, groups, C, n_boot=2000, seed=0)
    assert (r["n_images"], r["n_galaxies"], r["seeds"]) == (10, 10, [0, 1, 2])
    acc = r["accuracy"]
    assert acc["per_seed_diff"] == pytest.approx([0.1, 0.0, 0.1])
    assert acc["diff_mean"] == pytest.approx(0.2 / 3)
    assert acc["diff_std"] == pytest.approx(np.std([0.1, 0.0, 0.1], ddof=1))
    assert acc["baseline"] == pytest.approx({"mean": 0.6, "std": 0.1})
    assert acc["guided"]["mean"] == pytest.approx(2.0 / 3)
    assert acc["p_paired_t"] == pytest.approx(stats.ttest_rel([0.6, 0.6, 0.8], [0.5, 0.6, 0.7]).pvalue)
    lo, hi = acc["ci95"]
    assert lo < acc["diff_mean"] < hi
    f1_base = [classification_metrics(Y, base[s], NAMES)["macro_f1"] for s in range(3)]
    f1_guided = [classification_metrics(Y, guided[s], NAMES)["macro_f1"] for s in range(3)]
    f1 = r["macro_f1"]
    assert f1["per_seed_diff"] == pytest.approx(np.subtract(f1_guided, f1_base))
    assert f1["p_paired_t"] == pytest.approx(stats.ttest_rel(f1_guided, f1_base).pvalue)
    assert f1["diff_std"] == pytest.approx(np.std(np.subtract(f1_guided, f1_base), ddof=1))


def test_identical_predictions_give_zero_difference_and_no_test():
    preds = {0: _pred(5), 1: _pred(8)}
    r = ablation(Y, preds, dict(preds), [f"g{i}" for i in range(10)], C, n_boot=200)
    for metric in ("accuracy", "macro_f1"):
        assert r[metric]["per_seed_diff"] == [0.0, 0.0]
        assert r[metric]["diff_mean"] == 0.0 and r[metric]["diff_std"] == 0.0
        assert r[metric]["ci95"] == [0.0, 0.0]
        assert r[metric]["p_paired_t"] is None


def test_always_better_gives_degenerate_ci_at_the_difference():
    r = ablation(Y, {3: _pred(0)}, {3: _pred(10)}, np.arange(10), C, n_boot=200)
    assert r["accuracy"]["diff_mean"] == 1.0 and r["accuracy"]["ci95"] == [1.0, 1.0]
    assert r["macro_f1"]["ci95"] == [1.0, 1.0]
    assert r["accuracy"]["diff_std"] is None and r["accuracy"]["p_paired_t"] is None  # one seed
    assert r["accuracy"]["baseline"] == {"mean": 0.0, "std": None}


def test_bootstrap_resamples_whole_galaxies():
    # Galaxy k holds images k and k + 5; the baseline gets exactly one image of each galaxy right and the
    # guided model both. Any resample of galaxies gives an accuracy difference of exactly 0.5, whereas
    # resampling images one by one would not.
    groups = np.array([f"gal{k % 5}" for k in range(10)])
    base = np.where(np.arange(10) < 5, Y, (Y + 1) % C)
    diff = paired_bootstrap(Y, np.stack([base, base]), np.stack([Y, Y]), groups, C, n_boot=300, seed=1)
    assert diff.shape == (300, 2)
    assert np.allclose(diff[:, 0], 0.5, atol=1e-12)
    singles = paired_bootstrap(Y, base, Y, np.arange(10), C, n_boot=300, seed=1)  # every image its own galaxy
    assert singles[:, 0].std() > 0.05
    r = ablation(Y, {0: base}, {0: Y}, list(groups), C, n_boot=300)
    assert r["n_galaxies"] == 5 and r["accuracy"]["ci95"] == pytest.approx([0.5, 0.5], abs=1e-12)


def test_paired_bootstrap_is_seeded_and_checks_shapes():
    rng = np.random.default_rng(0)
    base, other = rng.integers(0, C, (2, 10)), rng.integers(0, C, (2, 10))
    a = paired_bootstrap(Y, base, other, np.arange(10), C, n_boot=50, seed=4)
    assert np.array_equal(a, paired_bootstrap(Y, base, other, np.arange(10), C, n_boot=50, seed=4))
    assert not np.array_equal(a, paired_bootstrap(Y, base, other, np.arange(10), C, n_boot=50, seed=5))
    with pytest.raises(ValueError, match="do not match 10 test images"):
        paired_bootstrap(Y, base, other[:1], np.arange(10), C)
    with pytest.raises(ValueError, match="no test images"):
        paired_bootstrap(Y[:0], base[:, :0], other[:, :0], [], C)


def test_weighted_scores_with_unit_weights_match_classification_metrics():
    rng = np.random.default_rng(1)
    n_classes = 5
    y_true = rng.integers(0, 4, 40)  # class 4 never true...
    y_pred = rng.integers(0, 5, 40)  # ...but sometimes predicted
    names = [str(c) for c in range(n_classes)]
    ref = classification_metrics(y_true, y_pred, names)
    got = weighted_scores(y_true, y_pred, np.ones(40), n_classes)
    assert got.shape == (1, 2)
    assert got[0] == pytest.approx([ref["accuracy"], ref["macro_f1"]], rel=1e-12)


def test_weighted_scores_with_integer_weights_match_repeated_samples():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, C, 25), rng.integers(0, C, 25)
    weights = rng.integers(0, 4, (4, 25))
    weights[2, y_true == 1] = 0  # a row where class 1 drops out of the averaged classes
    got = weighted_scores(y_true, y_pred, weights, C)
    assert got.shape == (4, 2)
    for row, w in zip(got, weights, strict=True):
        ref = classification_metrics(np.repeat(y_true, w), np.repeat(y_pred, w), NAMES)
        assert row == pytest.approx([ref["accuracy"], ref["macro_f1"]], rel=1e-12)


def test_ablation_needs_the_same_seeds():
    with pytest.raises(ValueError, match=r"\[0, 1\] and guided seeds \[0, 2\]"):
        ablation(Y, {0: Y, 1: Y}, {0: Y, 2: Y}, np.arange(10), C)
    with pytest.raises(ValueError, match="differ"):
        ablation(Y, {}, {}, np.arange(10), C)


def _result(mean: float, std: float | None, p: float | None, ci: list[float], n: int = 3) -> dict:
    return {"macro_f1": {"diff_mean": mean, "diff_std": std, "p_paired_t": p, "ci95": ci,
                         "per_seed_diff": [mean] * n},
            "accuracy": {"diff_mean": mean, "diff_std": std, "p_paired_t": p, "ci95": ci, "per_seed_diff": [mean] * n}}


def test_sentence_formats_signs_ci_and_test():
    r = _result(0.0123, 0.0204, 0.1234, [-0.0051, 0.0302])
    assert sentence(r, "accuracy") == ("spectral guidance changes RGB-only accuracy by +0.012 ± 0.020 "
                                       "(bootstrap 95% CI [-0.005, +0.030]; paired t over 3 seeds p = 0.12)")
    assert sentence(r).endswith(" by +0.012 ± 0.020 (bootstrap 95% CI [-0.005, +0.030]; "
                                "paired t over 3 seeds p = 0.12)")
    r = _result(-0.25, None, None, [-0.4, -0.1], n=1)
    assert sentence(r, "accuracy", "distillation") == ("distillation changes RGB-only accuracy by -0.250 "
                                                       "(bootstrap 95% CI [-0.400, -0.100])")


def test_sentence_names_macro_f1_as_in_its_docstring():
    assert sentence(_result(0.0123, 0.0204, 0.1234, [-0.0051, 0.0302])).startswith(
        "spectral guidance changes RGB-only macro-F1 by ")


def test_sentence_of_a_real_result():
    r = ablation(Y, {0: _pred(5), 1: _pred(6)}, {0: _pred(7), 1: _pred(7)}, np.arange(10), C, n_boot=100)
    s = sentence(r, "accuracy")
    assert s.startswith("spectral guidance changes RGB-only accuracy by +0.150 ± 0.071 (bootstrap 95% CI [")
    assert s.endswith(f"; paired t over 2 seeds p = {r['accuracy']['p_paired_t']:.2f}; "
                      f"detectable at 80% power: ±{r['accuracy']['mde']['combined']:.3f})")


def test_mcnemar_counts_the_images_only_one_model_gets_right():
    base, other = _pred(5), _pred(8)  # other right on images 5-7 too, never worse
    r = mcnemar(Y, base, other)
    assert (r["baseline_only"], r["guided_only"]) == (0, 3)
    assert r["p"] == pytest.approx(stats.binomtest(3, 3, 0.5).pvalue)  # 0.25
    assert mcnemar(Y, base, base) == {"baseline_only": 0, "guided_only": 0, "p": 1.0}
    swapped = mcnemar(Y, other, base)
    assert (swapped["baseline_only"], swapped["guided_only"], swapped["p"]) == (3, 0, r["p"])


def test_minimum_detectable_effect_known_answers():
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    d = np.array([0.01, 0.03, 0.02])  # sd 0.01, se over seeds 0.01 / sqrt(3)
    m = minimum_detectable(0.004, d)
    se_s = 0.01 / np.sqrt(3)
    assert z == pytest.approx(2.8016, abs=1e-4)
    assert m["galaxies"] == pytest.approx(z * 0.004)
    assert m["seeds"] == pytest.approx((stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * se_s)
    assert m["combined"] == pytest.approx(z * np.hypot(0.004, se_s))
    one = minimum_detectable(0.004, d[:1])
    assert one == {"galaxies": pytest.approx(z * 0.004), "seeds": None, "combined": pytest.approx(z * 0.004)}


def _simulated(gain: float, n: int, seeds: int, rng: np.random.Generator) -> tuple:
    """Labels and per-seed predictions of two models at accuracy 0.6 and 0.6 + gain (8 classes).

    As with trained networks, which galaxies a model gets right is mostly the same from seed to seed
    (each galaxy's right/wrong is drawn once per model); a new seed re-draws 10% of them.
    """
    y = rng.integers(0, 8, n)

    def runs(p: float) -> dict[int, np.ndarray]:
        right = rng.uniform(size=n) < p
        out = {}
        for s in range(seeds):
            r = np.where(rng.uniform(size=n) < 0.1, rng.uniform(size=n) < p, right)
            out[s] = np.where(r, y, (y + rng.integers(1, 8, n)) % 8)
        return out
    return y, runs(0.6), runs(0.6 + gain)


@pytest.mark.parametrize("gain, expect", [(0.15, True), (0.0, False)])
def test_ablation_finds_a_known_gain_and_no_gain_where_there_is_none(gain, expect):
    """Both directions of the positive control at the level of the statistics (the mock dial: test_sky_dial)."""
    rng = np.random.default_rng(3)
    y, base, guided = _simulated(gain, 300, 3, rng)
    r = ablation(y, base, guided, np.arange(len(y)), 8, n_boot=500, seed=1)
    acc = r["accuracy"]
    assert acc["detected"] is expect
    lo, hi = acc["ci95_seeds_and_galaxies"]
    assert (lo > 0) if expect else (lo < 0 < hi)
    assert acc["ci95_seeds_and_galaxies"][1] - lo >= acc["ci95"][1] - acc["ci95"][0] - 1e-12  # both noises >= one
    assert 0 < acc["mde"]["galaxies"] <= acc["mde"]["combined"]
    assert acc["ci95_seeds"][0] < acc["diff_mean"] < acc["ci95_seeds"][1]
    assert len(r["mcnemar"]) == 3 and all(m["p"] < 0.05 for m in r["mcnemar"]) is expect


def test_mde_matches_the_gain_detected_four_times_in_five():
    """A gain the size of the reported MDE is detected in about 80% of repeated experiments."""
    rng = np.random.default_rng(11)
    y, base, guided = _simulated(0.0, 400, 3, rng)
    mde = ablation(y, base, guided, np.arange(400), 8, n_boot=300, seed=0)["accuracy"]["mde"]["combined"]
    hits = [ablation(*_simulated(mde, 400, 3, rng), np.arange(400), 8, n_boot=300, seed=k)["accuracy"]["detected"]
            for k in range(40)]
    assert 0.55 <= np.mean(hits) <= 0.97
