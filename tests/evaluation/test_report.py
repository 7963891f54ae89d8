"""Tests for seed aggregation and paired comparison."""

import numpy as np
import pytest

from specmorph.evaluation.report import aggregate_seeds, compare


def _m(acc, f1, per_class_f1=0.5):
    return {"accuracy": acc, "macro_f1": f1, "n": 100, "per_class": {"x": {"f1": per_class_f1}}, "labels": ["x"]}


def test_aggregate_known_numbers():
    per_seed = [_m(0.7, 0.6, 0.1), _m(0.8, 0.6, 0.2), _m(0.9, 0.6, 0.6)]
    agg = aggregate_seeds(per_seed, ["accuracy", "macro_f1", "per_class.x.f1"])
    assert agg["accuracy"] == pytest.approx({"mean": 0.8, "std": 0.1, "min": 0.7, "max": 0.9, "n": 3})
    assert agg["macro_f1"]["std"] == 0.0
    assert agg["per_class.x.f1"]["mean"] == pytest.approx(0.3)
    assert agg["per_class.x.f1"]["std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    # default keys: top-level numbers only (not the nested dict, not the label list)
    assert list(aggregate_seeds(per_seed)) == ["accuracy", "macro_f1", "n"]


def test_aggregate_single_seed_and_errors():
    assert aggregate_seeds([_m(0.7, 0.6)], ["accuracy"])["accuracy"]["std"] is None
    with pytest.raises(ValueError, match=r"seed result 1: no metric 'accuracy'"):
        aggregate_seeds([_m(0.7, 0.6), {"macro_f1": 0.5}], ["accuracy"])
    with pytest.raises(ValueError, match=r"'labels' is \['x'\], not a number"):
        aggregate_seeds([_m(0.7, 0.6)], ["labels"])
    with pytest.raises(ValueError, match="no per-seed results"):
        aggregate_seeds([], ["accuracy"])


def test_compare_paired_difference():
    base = {0: _m(0.70, 0.5), 1: _m(0.80, 0.5), 2: _m(0.75, 0.5)}
    other = {"2": _m(0.76, 0.5), "0": _m(0.72, 0.5), "1": _m(0.83, 0.5)}  # JSON-style string seeds, any order
    out = compare(base, other, ["accuracy"])
    assert out["seeds"] == ["0", "1", "2"]
    acc = out["metrics"]["accuracy"]
    assert acc["baseline_mean"] == pytest.approx(0.75)
    assert acc["other_mean"] == pytest.approx(0.77)
    assert acc["diff_of_means"] == pytest.approx(0.02)
    assert acc["paired_mean"] == pytest.approx(0.02)  # diffs 0.02, 0.03, 0.01
    assert acc["paired_std"] == pytest.approx(0.01)
    assert acc["paired_sem"] == pytest.approx(0.01 / np.sqrt(3))
    assert acc["n"] == 3
    # pairing removes the shared seed scatter: the baseline's own std is 5x the paired one
    assert aggregate_seeds(list(base.values()), ["accuracy"])["accuracy"]["std"] == pytest.approx(0.05)


def test_compare_requires_same_seeds():
    with pytest.raises(ValueError, match=r"only in baseline: \['2'\], only in other: \['5'\]"):
        compare({0: _m(0.7, 0.5), 2: _m(0.7, 0.5)}, {0: _m(0.7, 0.5), 5: _m(0.7, 0.5)})

