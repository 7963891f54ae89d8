"""The spectral baseline: a Random Forest on PCA features, over several stratified 80:20 splits."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from specmorph.errors import InputError
from specmorph.evaluation.metrics import classification_metrics

log = logging.getLogger(__name__)


def drop_rare_classes(labels: np.ndarray, min_count: int) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean mask of samples whose class has at least `min_count` members, and the dropped counts."""
    names, counts = np.unique(labels, return_counts=True)
    dropped = {str(n): int(c) for n, c in zip(names, counts, strict=True) if c < min_count}
    if dropped:
        log.warning("classes with fewer than %d galaxies left out of the RF baseline: %s", min_count, dropped)
    return ~np.isin(labels, list(dropped)), dropped


def rf_baseline(features: np.ndarray, labels: np.ndarray, class_names: list[str], test_frac: float,
                seeds: list[int], n_estimators: int) -> list[dict]:
    """Trains and scores one Random Forest per seed, each on its own stratified split.

    Args:
        features: (N, k) spectral features.
        labels: (N,) class names.
        class_names: Classes, in report order.
        test_frac: Test fraction of each split.
        seeds: One split and forest per seed.
        n_estimators: Trees per forest.

    Returns:
        Per seed: the metrics of `classification_metrics` plus `y_true`, `y_pred` lists.
    """
    names, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise InputError(f"class {names[counts.argmin()]!r} has {counts.min()} galaxy; a stratified split needs 2")
    out = []
    for seed in seeds:
        idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=test_frac, stratify=labels,
                                               random_state=seed)
        forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=2,
                                        class_weight="balanced")
        forest.fit(features[idx_train], labels[idx_train])
        pred = forest.predict(features[idx_test])
        metrics = classification_metrics(labels[idx_test].tolist(), pred.tolist(), class_names)
        out.append({**metrics, "y_true": labels[idx_test].tolist(), "y_pred": pred.tolist()})
    return out
