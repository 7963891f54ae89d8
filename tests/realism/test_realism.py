"""Tests for the realism report: coarse schemes, scores on hand-made predictions, real-set params, the clean skip."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from specmorph.params import ParamsError
from specmorph.realism import sim_to_real
from specmorph.realism.compare import compare, sample_per_class
from specmorph.realism.report import RealismParams, RealSet, load_real_set, realism_params, realism_report
from specmorph.realism.sim_to_real import (
    SCHEMES,
    THREE_CLASS,
    coarse_of_labels,
    coarse_scores,
    membership,
    score_family,
)
from specmorph.realism.stats import STAT_NAMES
from specmorph.taxonomy import CLASS_INDEX, CLASSES

REPO = Path(__file__).resolve().parents[2]
TWO_CLASS = "spiral/non_spiral"


def test_schemes_cover_the_taxonomy_once():
    three = membership(CLASSES, THREE_CLASS)
    assert three.shape == (8, 3) and (three.sum(axis=1) == 1).all()
    to_two = np.array([[0, 1], [1, 0], [0, 1]])  # smooth, spiral, edge_on -> spiral, non_spiral
    assert (membership(CLASSES, TWO_CLASS) == three @ to_two).all()
    names = [CLASS_INDEX[n] for n in ("round_smooth", "cigar_smooth", "barred_spiral", "edge_on_with_bulge")]
    assert coarse_of_labels(np.array(names), THREE_CLASS).tolist() == ["smooth", "smooth", "spiral", "edge_on"]
    assert coarse_of_labels(np.array(names), TWO_CLASS).tolist() == ["non_spiral", "non_spiral", "spiral",
                                                                     "non_spiral"]


def _probs(rows: list[dict[str, float]]) -> np.ndarray:
    """(N, 8) probabilities from {class name: p} rows (the rest of each row spread evenly), NaN for {}."""
    out = np.full((len(rows), len(CLASSES)), np.nan)
    for i, row in enumerate(rows):
        if row:
            rest = (1.0 - sum(row.values())) / (len(CLASSES) - len(row))
            out[i] = [row.get(c, rest) for c in CLASSES]
    return out


def test_coarse_scores_sum_probabilities_and_skip_flagged_rows():
    # row 0: the top single class is a spiral (0.3), but the smooth classes sum to 0.6 -> smooth
    rows = [{"barred_spiral": 0.3, "round_smooth": 0.2, "in_between_smooth": 0.2, "cigar_smooth": 0.2},
            {"round_smooth": 0.9},
            {"unbarred_tight_spiral": 0.9},
            {"edge_on_with_bulge": 0.5, "edge_on_without_bulge": 0.4},
            {"round_smooth": 0.9},  # a true edge-on called smooth
            {}]  # flagged: NaN probabilities
    truth = np.array(["smooth", "smooth", "spiral", "edge_on", "edge_on", "spiral"])
    scores, pred = coarse_scores(_probs(rows), CLASSES, truth, THREE_CLASS)
    assert pred.tolist() == ["smooth", "smooth", "spiral", "edge_on", "smooth"]
    recall = {"smooth": 2 / 2, "spiral": 1 / 1, "edge_on": 1 / 2}
    precision = {"smooth": 2 / 3, "spiral": 1.0, "edge_on": 1.0}
    f1 = [2 * precision[c] * recall[c] / (precision[c] + recall[c]) for c in recall]
    assert scores["balanced_accuracy"] == pytest.approx(np.mean(list(recall.values())))
    assert scores["accuracy"] == pytest.approx(4 / 5)
    assert scores["macro_f1"] == pytest.approx(np.mean(f1))
    assert (scores["n_scored"], scores["n_flagged"]) == (5, 1)
    assert scores["predicted_fraction"] == pytest.approx({"smooth": 3 / 5, "spiral": 1 / 5, "edge_on": 1 / 5})
    two, pred2 = coarse_scores(_probs(rows), CLASSES, np.array(["non_spiral"] * 2 + ["spiral"] + ["non_spiral"] * 3),
                               TWO_CLASS)
    assert pred2.tolist() == ["non_spiral", "non_spiral", "spiral", "non_spiral", "non_spiral"]
    assert two["balanced_accuracy"] == 1.0


def test_score_family_aggregates_seeds_and_sums_the_confusion(monkeypatch, tmp_path):
    """predict_many stubbed: seed 0 right on 3 of 3 scored images, seed 1 on 1 of 3; one image flagged."""
    paths = [tmp_path / f"{i}.jpg" for i in range(4)]
    truth = np.array(["spiral", "non_spiral", "non_spiral", "spiral"])
    tables = {
        "m_seed0.pt": [{"barred_spiral": 0.9}, {"round_smooth": 0.9}, {"edge_on_with_bulge": 0.9}, {}],
        "m_seed1.pt": [{"barred_spiral": 0.9}, {"barred_spiral": 0.9}, {"barred_spiral": 0.9}, {}],
    }

    def fake_predict(model_path, paths_in, ids):
        probs = _probs(tables[Path(model_path).name])
        table = pd.DataFrame({"id_str": ids, "path": [str(p) for p in paths_in]})
        for k, c in enumerate(CLASSES):
            table[c] = probs[:, k]
        table["flag"] = ["", "", "", "no_central_source"]
        return table

    passed = []

    def fake_predict_many(model_paths, paths_in, batch_size, ids, executor, tta):
        passed.append(tta)
        return [fake_predict(m, paths_in, ids) for m in model_paths], []

    monkeypatch.setattr(sim_to_real, "predict_many", fake_predict_many)
    report, y_true, y_pred = score_family(tmp_path, "m", [0, 1], paths, [p.stem for p in paths], truth, TWO_CLASS)
    assert report["per_seed"]["seed0"]["accuracy"] == 1.0
    assert report["per_seed"]["seed1"]["accuracy"] == pytest.approx(1 / 3)
    assert report["accuracy"]["mean"] == pytest.approx(2 / 3) and report["accuracy"]["n"] == 2
    assert report["accuracy"]["std"] == pytest.approx(np.std([1.0, 1 / 3], ddof=1))
    assert report["per_seed"]["seed1"]["balanced_accuracy"] == pytest.approx((1.0 + 0.0) / 2)
    assert (report["n_scored"], report["n_flagged"], report["flags"]) == (3, 1, {"no_central_source": 1})
    assert report["confusion_matrix"] == [[2, 0], [2, 2]]  # rows spiral, non_spiral; both seeds
    assert len(y_true) == len(y_pred) == 6
    assert passed == [True]  # scored as predict classifies by default: over the 8 orientations


def _set(tmp_path: Path, **over) -> dict:
    (tmp_path / "images").mkdir(exist_ok=True)
    pd.DataFrame({"objid": ["1", "2", "3", "4"], "cls": ["elliptical", "spiral_cw", "dont_know", "edge_on"]}
                 ).to_csv(tmp_path / "labels.csv", index=False)
    return {"image_dir": str(tmp_path / "images"), "labels_path": str(tmp_path / "labels.csv"),
            "id_column": "objid", "label_column": "cls", "file_pattern": "{id}.jpeg", "scheme": THREE_CLASS,
            "classes": {"elliptical": "smooth", "spiral_cw": "spiral", "edge_on": "edge_on", "dont_know": None},
            **over}


def test_the_shipped_params_section_parses():
    section = yaml.safe_load((REPO / "params.yaml").read_text())["realism"]
    p, sets = realism_params(section)
    assert isinstance(p, RealismParams) and set(sets) == {"gz1", "kaggle"}
    assert sets["gz1"].classes["merger"] is None and sets["kaggle"].scheme == TWO_CLASS


@pytest.mark.parametrize(("over", "message"), [
    ({"colour": "x"}, r"unknown key\(s\) realism.real_sets.s.colour"),
    ({"id_column": 3}, r"realism.real_sets.s.id_column = 3 should be of type str"),
    ({"scheme": "hubble"}, r"scheme = 'hubble'"),
    ({"classes": {"elliptical": "elliptical"}}, r"classes must map label values"),
    ({"file_pattern": "x.jpg"}, r"has no \{id\}"),
])
def test_real_set_params_are_strict(tmp_path, over, message):
    with pytest.raises(ParamsError, match=message):
        realism_params({"real_sets": {"s": _set(tmp_path, **over)}})
    with pytest.raises(ParamsError, match=r"realism.max_images = '300' should be of type int"):
        realism_params({"max_images": "300"})


def test_load_real_set_excludes_null_classes_and_refuses_unknown_values(tmp_path):
    real = load_real_set(RealSet(**_set(tmp_path)))
    assert real.ids == ["1", "2", "4"] and real.coarse.tolist() == ["smooth", "spiral", "edge_on"]
    assert real.excluded == {"dont_know": 1} and real.paths[0] == tmp_path / "images" / "1.jpeg"
    with pytest.raises(Exception, match=r"label values \['dont_know'\] are not in"):
        load_real_set(RealSet(**_set(tmp_path, classes={"elliptical": "smooth", "spiral_cw": "spiral",
                                                        "edge_on": "edge_on"})))


def test_a_missing_real_set_is_skipped_and_nothing_is_made_up(tmp_path):
    sets = {"gz1": RealSet(**_set(tmp_path, image_dir=str(tmp_path / "absent")))}
    mock = pd.DataFrame({"path": ["a.jpg"], "label": [0]})
    out, spectra = realism_report(sets, mock, tmp_path / "no_models", {"rgb_only": "rgb_only"}, [0],
                                  RealismParams(), 0, tmp_path / "plots", truth_dir=tmp_path / "no_truth")
    assert out == {"gz1": {"skipped": f"no real set at {tmp_path / 'absent'}"}}
    assert spectra == {"skipped": f"no mock truth at {tmp_path / 'no_truth' / 'califa.csv'}"}
    json.dumps(out, allow_nan=False)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion", "histograms", "spectra"]
    assert not any((tmp_path / "plots").rglob("*.*"))


def test_sample_per_class_keeps_at_most_n_of_each_class_reproducibly():
    classes = np.array(["a"] * 10 + ["b"] * 3 + ["c"] * 6)
    picked = sample_per_class(classes, 4, seed=1)
    assert [int((classes[picked] == c).sum()) for c in "abc"] == [4, 3, 4]
    assert (np.diff(picked) > 0).all() and (picked == sample_per_class(classes, 4, seed=1)).all()


def test_compare_gives_zero_ks_for_identical_samples_and_one_for_disjoint_ones():
    rng = np.random.default_rng(0)
    values = pd.DataFrame(rng.normal(size=(20, len(STAT_NAMES))), columns=list(STAT_NAMES)).assign(coarse="x")
    shifted = values.assign(**{STAT_NAMES[0]: values[STAT_NAMES[0]] + 100.0})
    out = compare(values, shifted, ["x"])
    assert out["x"][STAT_NAMES[1]]["ks"] == 0.0
    assert out["x"][STAT_NAMES[0]]["ks"] == 1.0 and out["max_ks_at"] == f"x.{STAT_NAMES[0]}"
    assert out["x"][STAT_NAMES[0]]["median_real"] == pytest.approx(values[STAT_NAMES[0]].median() + 100.0)
    assert out["x"]["n_mock"] == out["x"]["n_real"] == 20
    assert set(SCHEMES) == {THREE_CLASS, TWO_CLASS}
