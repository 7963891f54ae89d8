"""tools/results_table.py: the README results block is built from the metrics files and replaced in place."""

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "results_table.py"
_spec = importlib.util.spec_from_file_location("results_table", TOOL)
results_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_table)


def _agg(mean, std):
    return {"mean": mean, "std": std, "min": mean, "max": mean, "n": 2}


def _metrics(tmp_path: Path) -> Path:
    scores = {"n": 10, "accuracy": _agg(0.5, 0.01), "macro_f1": _agg(0.4, 0.02)}
    guided = {"n": 10, "accuracy": _agg(0.6, 0.03), "macro_f1": _agg(0.45, 0.04)}
    ev = {"guided": "gated", "seeds": [0, 1], "gz2_test": {"rgb_only": scores, "gated": guided},
          "galaxy10": {"rgb_only": scores, "gated": guided},
          "label_ceiling": {"n": 10, "accuracy": 0.8, "fraction_of_ceiling": {"rgb_only": 0.625, "gated": 0.75},
                            "truth_accuracy": {"rgb_only": 0.7, "gated": 0.65}}}
    train = {"final": {"rgb_only_seed0": {"train_acc": 0.5, "val_acc": 0.4, "epoch": 10},
                       "rgb_only_seed1": {"train_acc": 0.7, "val_acc": 0.6, "epoch": 20},
                       "gated_seed0": {"train_acc": 0.6, "val_acc": 0.5, "epoch": 30}}}
    for name, obj in (("evaluate", ev), ("train", train)):
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    return tmp_path


def test_rows_come_from_the_metrics(tmp_path):
    table = results_table.rows(_metrics(tmp_path))
    assert "| 8-class accuracy, GZ2 test (10 images) | 0.500 ± 0.010 | 0.600 ± 0.030 |" in "\n".join(table)
    assert any(r.startswith("| share of the label ceiling (0.800) | 0.625 | 0.750 |") for r in table)
    assert any(r.startswith("| 8-class accuracy against the mock's truth | 0.700 | 0.650 |") for r in table)
    assert any(r.startswith("| train accuracy at the kept epoch | 0.600 ± 0.141 | 0.600 |") for r in table)
    kept = "| kept epoch (the last; with patience, the lowest val loss) | 15.000 ± 7.071 | 30.000 |"
    assert any(r.startswith(kept) for r in table)
    assert not any("CvT" in r or "sim-to-real" in r for r in table)  # absent files give no rows


def test_replace_block_keeps_the_text_around_it():
    text = "intro\n<!-- results:begin -->\nold\nrows\n<!-- results:end -->\noutro\n"
    assert results_table.replace_block(text, ["a", "b"]) == (
        "intro\n<!-- results:begin -->\na\nb\n<!-- results:end -->\noutro\n")
    with pytest.raises(SystemExit, match="no <!-- results:begin -->"):
        results_table.replace_block("no markers", ["a"])


def test_deblend_rows_come_from_segment_json(tmp_path):
    spread = {"median": 0.9, "min": 0.8, "max": 0.95}
    seg = {"n_images": 100, "deblended_fraction": 0.2, "mean_flux_removed": 0.05,
           "real_dev": {"hand_labels": {"n_labelled": 36, "iou_before": spread, "iou_after": spread,
                                        "contamination_before": spread, "contamination_after": spread,
                                        "n_contaminated_over_0.1_before": 11, "n_contaminated_over_0.1_after": 2,
                                        "ambiguous": {"labelled_ambiguous": 4, "of_them_flagged": 1,
                                                      "labelled_clear_but_flagged": 0}},
                        "all_images": {"n_images": 2907, "changed_fraction": 0.25, "mean_flux_removed": 0.08,
                                       "ambiguous_fraction": 0.01}}}
    (tmp_path / "segment.json").write_text(json.dumps(seg))
    text = "\n".join(results_table.deblend_rows(tmp_path))
    assert "| IoU with the label (36 cutouts) | median 0.900, worst 0.800 | median 0.900, worst 0.800 |" in text
    assert "| masks with more than 10 % from other sources | 11 | 2 |" in text
    assert "Of the 4 cutouts labelled ambiguous, 1 is flagged" in text and "On all 2907 real dev cutouts" in text
    (tmp_path / "segment.json").write_text(json.dumps({"real_dev": {"hand_labels": {"skipped": "no real set at x"}}}))
    assert results_table.deblend_rows(tmp_path) == ["Not measured in this run: no real set at x."]


def test_referenced_figures_are_rewritten_from_the_metrics(tmp_path):
    metrics = _metrics(tmp_path)
    (metrics / "ablation.json").write_text(json.dumps({"rows": [{"diff": -0.0123}, {"diff": 0.0004}]}))
    text = ("RGB-only 0.1<!-- =evaluate/gz2_test/rgb_only/accuracy/mean --> ± 9.99<!-- "
            "=evaluate/gz2_test/rgb_only/accuracy/std -->, gain +0.500<!-- =ablation/rows/0/diff -->, "
            "−0.300<!-- =ablation/rows/1/diff --> and 12.5%<!-- =evaluate/label_ceiling/accuracy*100 --> "
            "of 7<!-- =evaluate/gz2_test/rgb_only/n --> galaxies; 0.999 untouched.")
    assert results_table.refresh_figures(text, metrics) == (
        "RGB-only 0.5<!-- =evaluate/gz2_test/rgb_only/accuracy/mean --> ± 0.01<!-- "
        "=evaluate/gz2_test/rgb_only/accuracy/std -->, gain −0.012<!-- =ablation/rows/0/diff -->, "
        "+0.000<!-- =ablation/rows/1/diff --> and 80.0%<!-- =evaluate/label_ceiling/accuracy*100 --> "
        "of 10<!-- =evaluate/gz2_test/rgb_only/n --> galaxies; 0.999 untouched.")


@pytest.mark.parametrize(("ref", "message"), [
    ("nosuch/a", "nosuch.json missing"), ("evaluate/gz2_test/nomodel", "has no 'gz2_test/nomodel'"),
    ("evaluate/seeds/5", "has no 'seeds/5'"), ("evaluate/guided", "is 'gated', not a number")])
def test_a_bad_figure_reference_names_the_file_and_key(tmp_path, ref, message):
    with pytest.raises(SystemExit, match=message):
        results_table.refresh_figures(f"0.1<!-- ={ref} -->", _metrics(tmp_path))
