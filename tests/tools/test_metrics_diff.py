"""tools/metrics_diff.py: changes set against the seed spread, from `dvc metrics diff --all --json` output."""

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "metrics_diff.py"
_spec = importlib.util.spec_from_file_location("metrics_diff", TOOL)
metrics_diff = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(metrics_diff)


def _entry(old, new):
    return {"old": old, "new": new, "diff": None if old is None or new is None else new - old}


SEEDS = [0.50, 0.54, 0.52, 0.56]
DIFF = {
    "metrics/evaluate.json": {
        "acc.mean": _entry(0.60, 0.61), "acc.std": _entry(0.02, 0.02), "acc.n": _entry(5, 5),
        "acc.max": _entry(0.62, 0.64),
        "f1.mean": _entry(0.60, 0.70), "f1.std": _entry(0.02, 0.02), "f1.n": _entry(5, 5),
        "n_test": _entry(478, 478),
    },
    "metrics/train.json": {
        **{f"final.rgb_seed{k}.val_acc": _entry(v, v) for k, v in enumerate(SEEDS)},
        "final.rgb_seed0.val_acc": _entry(0.50, 0.53),
        "n_train": _entry(1813, 1812),
        "fresh": _entry(None, 1.0),
    },
}


def test_mean_over_seeds_is_judged_by_std_sqrt_2_over_n():
    rows = {r["key"]: r for r in metrics_diff.annotate(DIFF)}
    scale = 0.02 * math.sqrt(2 / 5)  # 0.01265: 0.01 is within 2 scales, 0.10 is not
    assert rows["acc.mean"]["scale"] == pytest.approx(scale) and rows["acc.mean"]["verdict"] == "within spread"
    assert rows["f1.mean"]["verdict"] == "beyond spread" and rows["f1.mean"]["delta"] == pytest.approx(0.10)
    assert "acc.std" not in rows and "n_test" not in rows  # unchanged numbers are not listed
    assert rows["acc.max"]["verdict"] == "spread statistic" and rows["acc.max"]["scale"] is None


def test_a_per_seed_figure_is_judged_by_the_spread_over_seeds():
    rows = {r["key"]: r for r in metrics_diff.annotate(DIFF)}
    row = rows["final.rgb_seed0.val_acc"]
    assert row["scale"] == pytest.approx(statistics.stdev(SEEDS) * math.sqrt(2))
    assert 0.03 <= 2 * row["scale"] and row["verdict"] == "within spread"


def test_counts_and_new_keys_have_no_noise_scale():
    rows = {r["key"]: r for r in metrics_diff.annotate(DIFF)}
    assert rows["n_train"]["verdict"] == "changed" and rows["n_train"]["scale"] is None
    assert rows["fresh"]["verdict"] == "new"


def test_main_prints_a_table_and_a_tally(tmp_path, capsys):
    path = tmp_path / "diff.json"
    path.write_text(json.dumps(DIFF))
    assert metrics_diff.main(["--json-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| metrics/evaluate.json | f1.mean | 0.6 | 0.7 |" in out
    tally = "6 changed: 2 within spread, 1 spread statistic, 1 beyond spread, 1 changed, 1 new"
    assert out.strip().splitlines()[-1] == tally


def test_bad_json_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "diff.json"
    path.write_text("{not json")
    assert metrics_diff.main(["--json-file", str(path)]) == 2
    assert "not JSON from dvc metrics diff" in capsys.readouterr().err
