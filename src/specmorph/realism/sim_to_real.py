"""Sim-to-real scores: a checkpoint's 8-class probabilities on real images summed into coarse classes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from specmorph.errors import InputError
from specmorph.evaluation.metrics import classification_metrics, confusion_matrix
from specmorph.evaluation.report import aggregate_seeds
from specmorph.executor import ExecutorParams
from specmorph.predict import FLAG_COLUMN, predict_many
from specmorph.taxonomy import CLASSES

logger = logging.getLogger(__name__)

_SMOOTH = ("cigar_smooth", "in_between_smooth", "round_smooth")
_SPIRAL = ("barred_spiral", "unbarred_loose_spiral", "unbarred_tight_spiral")
_EDGE_ON = ("edge_on_with_bulge", "edge_on_without_bulge")
THREE_CLASS = "smooth/spiral/edge_on"
# Coarse schemes: {scheme: {coarse class: the 8-class taxonomy names summed into it}}, classes in report order.
SCHEMES: dict[str, dict[str, tuple[str, ...]]] = {
    THREE_CLASS: {"smooth": _SMOOTH, "spiral": _SPIRAL, "edge_on": _EDGE_ON},
    "spiral/non_spiral": {"spiral": _SPIRAL, "non_spiral": _SMOOTH + _EDGE_ON},
}
SCORE_KEYS = ("balanced_accuracy", "accuracy", "macro_f1")


def membership(label_cols: Sequence[str], scheme: str) -> np.ndarray:
    """(C, K) 0/1 matrix: row c is 1 in the coarse class that 8-class name label_cols[c] belongs to.

    Raises:
        ValueError: a name of `label_cols` is in none of the scheme's classes.
    """
    coarse = SCHEMES[scheme]
    m = np.array([[name in members for members in coarse.values()] for name in label_cols], dtype=np.float64)
    if (m.sum(axis=1) != 1).any():
        raise ValueError(f"classes {[n for n, s in zip(label_cols, m.sum(axis=1), strict=True) if s != 1]} "
                         f"are not in exactly one class of scheme {scheme}")
    return m


def coarse_of_labels(labels: np.ndarray, scheme: str) -> np.ndarray:
    """(N,) coarse class names of (N,) 8-class indices into taxonomy.CLASSES."""
    names = np.array(list(SCHEMES[scheme]))
    return names[membership(CLASSES, scheme).argmax(axis=1)][np.asarray(labels, dtype=np.int64)]


def coarse_scores(probs: np.ndarray, label_cols: Sequence[str], y_true: np.ndarray, scheme: str
                  ) -> tuple[dict[str, Any], np.ndarray]:
    """Scores of one checkpoint's 8-class probabilities summed into the scheme's coarse classes.

    Rows with NaN probabilities (flagged by `predict_paths`, not classified) are left out and counted.
    Scores come from `evaluation.metrics.classification_metrics`: balanced accuracy is its macro recall
    (mean recall per true class present), macro-F1 averages the same classes.

    Args:
        probs: (N, C) probabilities, columns named by `label_cols`, NaN rows for flagged images.
        label_cols: (C,) 8-class names.
        y_true: (N,) coarse class names.
        scheme: key of SCHEMES.

    Returns:
        ({balanced_accuracy, accuracy, macro_f1, n_scored, n_flagged, predicted_fraction}, (N_scored,)
        predicted coarse names); predicted_fraction is over the smooth/spiral/edge_on classes.
    """
    classes = list(SCHEMES[scheme])
    scored = ~np.isnan(probs).any(axis=1)  # (N,)
    if not scored.any():
        raise InputError("no real image was classified (all flagged)")
    pred = np.array(classes)[(probs[scored] @ membership(label_cols, scheme)).argmax(axis=1)]
    truth = y_true[scored]
    three = (probs[scored] @ membership(label_cols, THREE_CLASS)).argmax(axis=1)  # (N_scored,)
    m = classification_metrics(truth, pred, classes)
    return {
        "balanced_accuracy": m["macro_recall"],  # mean recall over the true classes present
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "n_scored": int(scored.sum()),
        "n_flagged": int((~scored).sum()),
        "predicted_fraction": {c: float(np.mean(three == k)) for k, c in enumerate(SCHEMES[THREE_CLASS])},
    }, pred


def score_family(models_dir: str | Path, name: str, seeds: Sequence[int], paths: Sequence[Path],
                 ids: Sequence[str], coarse: np.ndarray, scheme: str, batch_size: int = 64,
                 executor: ExecutorParams | None = None, tta: bool = True
                 ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """`coarse_scores` of `<name>_seed<k>.pt` for every seed on one real set, in one `predict_many` pass.

    Args:
        models_dir: folder of the checkpoints.
        name: checkpoint family, e.g. "rgb_only".
        seeds: training seeds.
        paths: (N,) real images.
        ids: (N,) their ids.
        coarse: (N,) their true coarse classes.
        scheme: key of SCHEMES.
        batch_size: images per forward pass.
        executor: where `predict_paths` runs its shards (None: here).
        tta: average each image's probabilities over its 8 orientations (`predict_paths`).

    Returns:
        (report, y_true, y_pred): report has the SCORE_KEYS aggregated over seeds (`aggregate_seeds`),
        per_seed scores, n_unreadable, flags ({flag: count}; the same for every seed), the confusion matrix summed
        over seeds (rows true, columns predicted, scheme order); y_true and y_pred are the scored rows of
        every seed concatenated (for the confusion plot).
    """
    classes = list(SCHEMES[scheme])
    truth_of = {str(p): c for p, c in zip(paths, coarse, strict=True)}
    per_seed, trues, preds = {}, [], []
    logger.info("classifying %d real images with %s, seeds %s", len(paths), name, list(seeds))
    tables, skipped = predict_many([Path(models_dir) / f"{name}_seed{seed}.pt" for seed in seeds], paths,
                                   batch_size=batch_size, ids=ids, executor=executor, tta=tta)
    for seed, table in zip(seeds, tables, strict=True):
        label_cols = [c for c in CLASSES if c in table.columns]
        y_true = table["path"].map(truth_of).to_numpy(dtype=str)
        probs = table[label_cols].to_numpy(dtype=np.float64)  # (N_read, C)
        scores, pred = coarse_scores(probs, label_cols, y_true, scheme)
        per_seed[f"seed{seed}"] = {**scores, "n_unreadable": len(skipped)}
        trues.append(y_true[~np.isnan(probs).any(axis=1)])
        preds.append(pred)
    y_true, y_pred = np.concatenate(trues), np.concatenate(preds)
    keys = [*SCORE_KEYS, *(f"predicted_fraction.{c}" for c in SCHEMES[THREE_CLASS])]
    first = per_seed[f"seed{seeds[0]}"]
    report = {**aggregate_seeds(list(per_seed.values()), keys), "per_seed": per_seed,
              "n_scored": first["n_scored"], "n_flagged": first["n_flagged"],
              "flags": dict(Counter(f for f in tables[0][FLAG_COLUMN] if f)), "n_unreadable": len(skipped),
              "confusion_matrix": confusion_matrix(y_true, y_pred, classes).tolist()}
    return report, y_true, y_pred
