"""DVC plot data: per-sample confusion rows and per-epoch curves as CSV, written atomically."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from specmorph.evaluation.metrics import label_indices
from specmorph.io.atomic import atomic_file

logger = logging.getLogger(__name__)

CONFUSION_FIELDS = ("actual", "predicted")  # dvc.yaml: `template: confusion, x: actual, y: predicted`
STEP_FIELD = "step"  # dvc.yaml: `x: step`


def write_csv_atomic(rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str], path: str | os.PathLike) -> Path:
    """Writes dict rows as CSV with a header through `io.atomic.atomic_file`.

    Args:
        rows: one mapping per row, keys exactly `fieldnames`.
        fieldnames: column order.
        path: destination; parent directories are created.

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames), extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
    return path


def confusion_rows(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                   labels: Sequence[str]) -> list[dict[str, str]]:
    """One row per sample with its true and predicted class names, as DVC's confusion template reads.

    Args:
        y_true: (N,) true classes, names or indices into `labels`.
        y_pred: (N,) predicted classes, names or indices into `labels`.
        labels: class names, in index order.

    Returns:
        N dicts {"actual": name, "predicted": name}, in sample order.
    """
    t = label_indices(y_true, labels, "y_true")
    p = label_indices(y_pred, labels, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    names = [str(lab) for lab in labels]
    return [{"actual": names[i], "predicted": names[j]} for i, j in zip(t.tolist(), p.tolist(), strict=True)]


def write_confusion_csv(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                        labels: Sequence[str], path: str | os.PathLike) -> Path:
    """Writes `confusion_rows` as a CSV with columns actual, predicted.

    Args:
        y_true: (N,) true classes, names or indices into `labels`.
        y_pred: (N,) predicted classes, names or indices into `labels`.
        labels: class names, in index order.
        path: destination CSV.

    Returns:
        `path` as a Path.
    """
    return write_csv_atomic(confusion_rows(y_true, y_pred, labels), CONFUSION_FIELDS, path)


def curve_rows(curves: Mapping[str, Sequence[float]], steps: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Per-epoch curves as rows of (step, value per curve).

    Args:
        curves: {name: (E,) values}, e.g. {"train_loss": [...], "val_loss": [...]}; all of length E.
        steps: (E,) step numbers; None: 0..E-1 (DVCLive's convention, step 0 = first epoch).

    Returns:
        E dicts {"step": int, name: float, ...}.

    Raises:
        ValueError: no curves, a curve named "step", or curves/steps of different lengths.
    """
    if not curves:
        raise ValueError("curve_rows: no curves")
    if STEP_FIELD in curves:
        raise ValueError(f"curve_rows: a curve may not be named '{STEP_FIELD}'")
    lengths = {name: len(v) for name, v in curves.items()}
    n = next(iter(lengths.values()))
    if len(set(lengths.values())) != 1:
        raise ValueError(f"curve_rows: curves of different lengths {lengths}")
    steps = list(range(n)) if steps is None else [int(s) for s in steps]
    if len(steps) != n:
        raise ValueError(f"curve_rows: {len(steps)} steps for curves of length {n}")
    return [{STEP_FIELD: s, **{name: float(v[k]) for name, v in curves.items()}} for k, s in enumerate(steps)]


def write_curves_csv(curves: Mapping[str, Sequence[float]], path: str | os.PathLike,
                     steps: Sequence[int] | None = None) -> Path:
    """Writes `curve_rows` as a CSV with columns step, then one per curve in `curves` order.

    Args:
        curves: {name: (E,) values}.
        path: destination CSV.
        steps: (E,) step numbers; None: 0..E-1.

    Returns:
        `path` as a Path.
    """
    return write_csv_atomic(curve_rows(curves, steps), (STEP_FIELD, *curves), path)
