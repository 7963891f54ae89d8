"""Tests for the evaluation study: predictions of saved checkpoints, seed-aggregated scores, ablations, Grad-CAM."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from specmorph.errors import InputError
from specmorph.evaluation.ablation import ablation
from specmorph.evaluation.metrics import classification_metrics
from specmorph.evaluation.study import TestSet as EvalSet  # not "Test*": pytest would try to collect it
from specmorph.evaluation.study import ablations, gradcam_galleries, label_ceiling, predict_all, scores
from specmorph.models import ModelConfig, build_model
from specmorph.models.checkpoint import save_checkpoint
from specmorph.taxonomy import CLASSES
from specmorph.torchutil import torch_settings
from specmorph.training.loop import predict_proba

CFG = ModelConfig(kind="rgb", n_classes=len(CLASSES), label_cols=CLASSES, image_size=32, depth=(1, 1), width=8,
                  feature_dim=16, head_hidden=8, spec_dim=5, spec_hidden=8)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny 2-thread convolutions are ~300× slower on a busy 2-core machine."""
    with torch_settings(1):
        yield


def _set(name: str, n: int, seed: int = 0) -> EvalSet:
    rng = np.random.default_rng(seed)
    return EvalSet(name, rng.uniform(0, 1, (n, 3, 32, 32)).astype(np.float32), np.arange(n) % len(CLASSES),
                   np.array([f"gal{i // 2}" for i in range(n)]))


def _save(models_dir, name: str, seed: int, **kw) -> torch.nn.Module:
    cfg = dataclasses.replace(CFG, **kw)
    torch.manual_seed(100 * seed + len(name))
    model = build_model(cfg)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that eval mode matters
        model.train()(torch.rand(8, 3, 32, 32))
    save_checkpoint(models_dir / f"{name}_seed{seed}.pt", model, cfg, {"seed": seed})
    return model.eval()


def test_predict_all_reads_name_seed_checkpoints(tmp_path):
    models = {("rgb_only", s): _save(tmp_path, "rgb_only", s) for s in (0, 1)}
    models |= {("gated", s): _save(tmp_path, "gated", s, kind="gated", rgb_inference="hallucinate") for s in (0, 1)}
    sets = [_set("a", 6), _set("b", 0), _set("c", 3, seed=1)]
    out = predict_all(tmp_path, ["rgb_only", "gated"], [0, 1], sets)
    assert set(out) == {"rgb_only", "gated"} and all(set(v) == {"a", "b", "c"} for v in out.values())
    for (name, seed), model in models.items():
        for test in sets:
            pred = out[name][test.name][seed]
            if not len(test.labels):
                assert pred.shape == (0,) and pred.dtype == np.int64
                continue
            assert np.array_equal(pred, predict_proba(model, test.images).argmax(axis=1))


def test_predict_all_names_a_missing_checkpoint(tmp_path):
    _save(tmp_path, "rgb_only", 0)
    with pytest.raises(InputError, match=r"rgb_only_seed1\.pt"):
        predict_all(tmp_path, ["rgb_only"], [0, 1], [_set("a", 2)])


def test_scores_of_an_empty_set():
    assert scores({0: np.zeros(0, np.int64), 1: np.zeros(0, np.int64)}, np.zeros(0, np.int64)) == {"n": 0}


def test_scores_aggregate_seeds():
    labels = np.array([0, 0, 1, 1, 2, 5])
    preds = {0: np.array([0, 0, 1, 2, 2, 5]), 1: np.array([0, 1, 1, 1, 0, 5])}
    out = scores(preds, labels)
    runs = [classification_metrics(labels, p, list(CLASSES)) for p in preds.values()]
    assert out["n"] == 6
    assert out["accuracy"]["mean"] == pytest.approx(np.mean([r["accuracy"] for r in runs]))
    assert out["accuracy"]["mean"] == pytest.approx((5 / 6 + 4 / 6) / 2)
    assert out["macro_f1"]["std"] == pytest.approx(np.std([r["macro_f1"] for r in runs], ddof=1))
    per_class = sorted(k for k in out if k.startswith("per_class."))
    assert per_class == sorted(f"per_class.{CLASSES[c]}.f1" for c in (0, 1, 2, 5))  # classes present only
    assert out[f"per_class.{CLASSES[5]}.f1"] == pytest.approx({"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0,
                                                               "n": 2})


def test_ablations_skip_empty_sets_and_match_ablation():
    full, empty = _set("full", 8), _set("empty", 0)
    rng = np.random.default_rng(3)
    preds = {name: {"full": {s: rng.integers(0, len(CLASSES), 8) for s in (0, 1)},
                    "empty": {s: np.zeros(0, np.int64) for s in (0, 1)}} for name in ("rgb_only", "gated")}
    out = ablations(preds, "rgb_only", "gated", [full, empty], n_boot=50, seed=2)
    assert list(out) == ["full"]
    ref = ablation(full.labels, preds["rgb_only"]["full"], preds["gated"]["full"], full.groups, len(CLASSES), 50, 2)
    assert out["full"] == ref and out["full"]["n_galaxies"] == 4


def test_gradcam_galleries_replace_the_directory(tmp_path):
    _save(tmp_path, "rgb_only", 0)
    out_dir = tmp_path / "plots" / "gradcam" / "rgb_only"
    out_dir.mkdir(parents=True)
    (out_dir / "stale.png").write_bytes(b"old")
    gradcam_galleries(tmp_path / "rgb_only_seed0.pt", _set("a", 8), out_dir, n_per_row=1)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{c}.png" for c in CLASSES)
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in out_dir.iterdir())
    assert [p.name for p in out_dir.parent.iterdir()] == ["rgb_only"]  # no partial directory left behind


def test_label_ceiling_is_the_labels_agreement_with_the_truth(tmp_path):
    """Truth 0, 1, 2, unknown; labels 0, 1, 1, 2: two of the three known rows agree, so the ceiling is 2/3;
    a model that repeats the labels scores 1 against them, 1.5 times the ceiling; one that is always
    class 0 scores 1/4 against them, 0.375 of it. Against the truth (the three known rows) the copy
    agrees on 2 of 3, the zeros on 1 of 3."""
    pd.DataFrame({"dr7objid": ["11", "12", "13"], "label": [0, 1, 2]}).to_csv(tmp_path / "gz2.csv", index=False)
    labels = np.array([0, 1, 1, 2])
    preds = {"copy": {0: labels.copy(), 1: labels.copy()}, "zeros": {0: np.zeros(4, int)}}
    out = label_ceiling(tmp_path, pd.Series(["11", "12", "13", "99"]), labels, preds)
    assert out["n"] == 3 and out["accuracy"] == pytest.approx(2 / 3)
    assert out["per_class"][CLASSES[2]] == {"precision": 0.0, "recall": 0.0, "support": 1}
    assert out["per_class"][CLASSES[1]]["precision"] == pytest.approx(0.5)
    assert out["fraction_of_ceiling"] == pytest.approx({"copy": 1.5, "zeros": 0.375})
    assert out["truth_accuracy"] == pytest.approx({"copy": 2 / 3, "zeros": 1 / 3})
    assert label_ceiling(tmp_path / "absent", pd.Series(["11"]), labels[:1], preds) == {
        "skipped": f"no mock truth at {tmp_path / 'absent' / 'gz2.csv'}"}
