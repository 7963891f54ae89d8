"""The test of every trained network on every test set: predictions by seed, metrics, ablation, Grad-CAM.

Every set is RGB-only except one with `spec`: there the networks that take spectra (concat, gated)
get each galaxy's spectral features too, which measures what spectra add where a cube exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.evaluation.ablation import ablation
from specmorph.evaluation.gradcam import gradcam_with_probs, write_gallery
from specmorph.evaluation.metrics import classification_metrics
from specmorph.evaluation.report import aggregate_seeds
from specmorph.io.atomic import atomic_dir
from specmorph.io.catalogs import read_table
from specmorph.models.checkpoint import load_checkpoint
from specmorph.models.config import SPECTRAL_KINDS
from specmorph.taxonomy import CLASSES
from specmorph.training.loop import predict_proba

logger = logging.getLogger(__name__)

KEYS = ["accuracy", "macro_precision", "macro_recall", "macro_f1"]


@dataclass
class TestSet:
    """Network inputs of one test set (the same preprocessing as the checkpoints), labels and galaxy ids."""

    name: str
    images: np.ndarray  # (N, 3, S, S) float32 in [0, 1]
    labels: np.ndarray  # (N,) class indices into CLASSES
    groups: np.ndarray  # (N,) galaxy of each image, for the bootstrap
    spec: np.ndarray | None = None  # (N, k) spectral features for the networks that take them; None: RGB only


def predict_all(models_dir: str | Path, names: list[str], seeds: list[int],
                sets: list[TestSet], tta: bool = True) -> dict[str, dict[str, dict[int, np.ndarray]]]:
    """Class predictions of `<name>_seed<k>.pt` for every name, seed and test set.

    A network sees a set's `spec` only if it takes spectra (`ModelConfig.kind` concat or gated);
    every other prediction is from RGB alone. With `tta` a prediction is the argmax of the softmax
    averaged over the image's 8 orientations (`models.inference.class_probabilities`).

    Returns:
        {name: {set name: {seed: (N,) predicted class indices}}}.
    """
    out: dict[str, dict[str, dict[int, np.ndarray]]] = {n: {s.name: {} for s in sets} for n in names}
    for name in names:
        for seed in tqdm(seeds, desc=f"evaluate {name}", disable=None, leave=False):
            path = Path(models_dir) / f"{name}_seed{seed}.pt"
            model, cfg, _ = load_checkpoint(path)
            if tuple(cfg.label_cols) != tuple(CLASSES):  # the labels are indices into CLASSES
                raise InputError(f"{path}: built for the classes {list(cfg.label_cols)}, not the 8 of "
                                 f"taxonomy.CLASSES in their order; it cannot be scored against these labels")
            for test in sets:
                spec = test.spec if cfg.kind in SPECTRAL_KINDS else None
                out[name][test.name][seed] = predict_proba(model, test.images, spec, tta=tta).argmax(axis=1) \
                    if len(test.labels) else np.zeros(0, np.int64)
    return out


def scores(preds: dict[int, np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    """Seed-aggregated accuracy, macro P/R/F1 and per-class F1 of {seed: predictions}; empty set → {"n": 0}."""
    if not len(labels):
        return {"n": 0}
    runs = [classification_metrics(labels, p, list(CLASSES)) for p in preds.values()]
    present = [c for c in CLASSES if c in runs[0]["macro_over"]]
    return {"n": len(labels), **aggregate_seeds(runs, KEYS + [f"per_class.{c}.f1" for c in present])}


TRUTH_TABLE = "gz2.csv"  # the mock's truth per GZ2 row, in the ingest stage's truth directory


def true_classes(truth_dir: str | Path, keys: pd.Series, by: str = "dr7objid") -> np.ndarray | None:
    """The mock's true 8-class index of each row, from its truth table (`TRUTH_TABLE`: dr7objid, galaxy_id, label).

    Args:
        truth_dir: the ingest stage's truth directory; real data has none.
        keys: (N,) the rows' GZ2 objids (`by` "dr7objid") or galaxy ids (`by` "galaxy_id": a galaxy's SDSS
            cutout and its GZ2 image share it, and its true class).
        by: the truth table's column `keys` are matched on.

    Returns:
        (N,) int class indices, -1 where the table has no such row; None when there is no truth table.
    """
    path = Path(truth_dir) / TRUTH_TABLE
    if not path.is_file():
        return None
    table = read_table(path, [by, "label"], dtype={by: str}).drop_duplicates(by)
    return keys.astype(str).map(table.set_index(by)["label"]).fillna(-1).to_numpy(int)


def label_ceiling(truth_dir: str | Path, ids: pd.Series, labels: np.ndarray, preds: dict[str, dict[int, np.ndarray]]
                  ) -> dict[str, Any]:
    """How well the test labels agree with the mock's ground truth, and each model's accuracy as a share of it.

    The labels are what the (simulated) volunteers voted; a classifier that recovered every galaxy's
    true class would score the labels' agreement with the truth against them, the ceiling the models
    are judged by. Rows without a truth are left out of the ceiling.

    Args:
        truth_dir: the mock truth tables (`gz2.csv`: dr7objid, label); absent for real data.
        ids: (N,) the test rows' GZ2 objids (`id_str`).
        labels: (N,) test labels, indices into CLASSES.
        preds: {model name: {seed: (N,) predictions}} on the same rows.

    Returns:
        {"skipped": reason} without a truth table, else {"n", "accuracy" (labels vs truth), "per_class":
        {class: {"precision", "recall", "support"}} with the truth as reference (recall: share of a true
        class labelled as such), "fraction_of_ceiling": {model: mean accuracy over seeds / the ceiling},
        "truth_accuracy": {model: mean over seeds of the predictions' agreement with the truth}}. The last
        separates the two gaps: labels vs truth (the volunteers') and predictions vs truth (the model's).
    """
    truth = true_classes(truth_dir, ids)
    if truth is None:
        return {"skipped": f"no mock truth at {Path(truth_dir) / TRUTH_TABLE}"}
    known = truth >= 0
    m = classification_metrics(truth[known], labels[known], list(CLASSES))
    per_class = {c: {k: v[k] for k in ("precision", "recall", "support")} for c, v in m["per_class"].items()}
    fraction = {name: float(np.mean([(p == labels).mean() for p in runs.values()]) / m["accuracy"])
                for name, runs in preds.items()}
    vs_truth = {name: float(np.mean([(p[known] == truth[known]).mean() for p in runs.values()]))
                for name, runs in preds.items()}
    return {"n": int(known.sum()), "accuracy": m["accuracy"], "per_class": per_class, "fraction_of_ceiling": fraction,
            "truth_accuracy": vs_truth}


def ablations(preds: dict[str, dict[str, dict[int, np.ndarray]]], baseline: str, guided: str, sets: list[TestSet],
              n_boot: int, seed: int) -> dict[str, Any]:
    """`ablation.ablation` of guided vs baseline on each non-empty test set."""
    return {t.name: ablation(t.labels, preds[baseline][t.name], preds[guided][t.name], t.groups, len(CLASSES),
                             n_boot, seed) for t in sets if len(t.labels)}


def gradcam_galleries(model_path: str | Path, test: TestSet, out_dir: str | Path, n_per_row: int) -> None:
    """Grad-CAM gallery of one checkpoint on one test set: `<out_dir>/<class>.png` (replaces the directory).

    Class names come from the checkpoint (`label_cols`), so 8-class and 5-class models both work.
    """
    model, cfg, _ = load_checkpoint(model_path)
    cam = gradcam_with_probs(model, test.images)
    with atomic_dir(out_dir) as work:
        write_gallery(test.images, cam.cams, test.labels, cam.y_pred, list(cfg.label_cols), work,
                      n_per_row=n_per_row, title_prefix=f"{Path(model_path).stem}: ")
