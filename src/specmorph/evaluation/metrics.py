"""Classification metrics from true and predicted labels: accuracy, macro and per-class P/R/F1, confusion matrix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def label_indices(y: Sequence[Any] | np.ndarray, labels: Sequence[str], name: str = "labels") -> np.ndarray:
    """Converts class names or integer class indices to indices into `labels`.

    Args:
        y: (N,) class names (strings, each one of `labels`) or integer indices in [0, len(labels)).
        labels: class names, in index order.
        name: what `y` is, for error messages (e.g. "y_true").

    Returns:
        (N,) int64 indices.

    Raises:
        ValueError: a name is not in `labels` or an index is out of range; the message names the value.
    """
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of labels, got shape {a.shape}")
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(a.dtype, np.integer):
        bad = (a < 0) | (a >= len(labels))
        if bad.any():
            raise ValueError(f"{name}: class index {a[bad][0]} outside 0..{len(labels) - 1}")
        return a.astype(np.int64)
    index = {str(lab): i for i, lab in enumerate(labels)}
    out = np.empty(a.size, dtype=np.int64)
    for k, v in enumerate(a.tolist()):
        i = index.get(str(v))
        if i is None:
            raise ValueError(f"{name}: unknown class {v!r} at position {k}; expected one of {list(labels)}")
        out[k] = i
    return out


def confusion_matrix(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                     labels: Sequence[str]) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: (N,) true classes, names or indices (see `label_indices`).
        y_pred: (N,) predicted classes, names or indices.
        labels: class names, in index order.

    Returns:
        (C, C) int64; row i = true class labels[i], column j = predicted class labels[j].
    """
    t = label_indices(y_true, labels, "y_true")
    p = label_indices(y_pred, labels, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    n = len(labels)
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n).astype(np.int64)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den == 0 (sklearn's zero_division=0)."""
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_metrics(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                           labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    Precision of a class that is never predicted, recall of a class that never occurs and F1 where
    precision + recall = 0 are 0 (sklearn's ``zero_division=0``). Macro averages run over the classes
    present in `y_true` only (listed under ``macro_over``): a class absent from the test set has no
    defined recall, and counting it as 0 would penalise every model for the split, not the model.
    Predictions of such a class still count as errors in accuracy and in the recall of the true classes.

    Args:
        y_true: (N,) true classes, names or indices into `labels`.
        y_pred: (N,) predicted classes, names or indices into `labels`.
        labels: class names, in index order.

    Returns:
        JSON-ready dict: ``n``, ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``macro_over`` (class names averaged over), ``labels``, ``per_class`` ({name: {precision,
        recall, f1, support}}) and ``confusion_matrix`` (nested lists, rows true, columns predicted).

    Raises:
        ValueError: empty or mismatched inputs, or unknown classes.
    """
    cm = confusion_matrix(y_true, y_pred, labels)  # (C, C)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("classification_metrics: no samples")
    tp = np.diag(cm)  # (C,)
    support = cm.sum(axis=1)  # (C,) true counts
    predicted = cm.sum(axis=0)  # (C,) predicted counts
    precision = _safe_ratio(tp, predicted)
    recall = _safe_ratio(tp, support)
    f1 = _safe_ratio(2.0 * precision * recall, precision + recall)
    present = support > 0
    per_class = {
        str(lab): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, lab in enumerate(labels)
    }
    return {
        "n": n,
        "accuracy": float(tp.sum() / n),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "macro_over": [str(lab) for lab, keep in zip(labels, present, strict=True) if keep],
        "labels": [str(lab) for lab in labels],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
