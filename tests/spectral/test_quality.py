"""Tests for embedding quality: separated clusters score well, random labels score chance, no group leaks."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from specmorph.errors import InputError
from specmorph.spectral import quality
from specmorph.spectral.quality import drop_rare_classes, embedding_quality, projection_2d


def _clusters(n_per: int = 40, n_cls: int = 3, dim: int = 8, sep: float = 10.0, seed: int = 0):
    """Gaussian clusters (unit variance) whose centres are `sep` apart along separate axes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_cls), n_per)
    centres = sep * np.eye(n_cls, dim)  # (n_cls, dim)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_separated_clusters_score_well():
    emb, labels = _clusters()
    q = embedding_quality(emb, labels, k=5, folds=5)
    assert q["knn_accuracy_mean"] == 1.0 and q["knn_accuracy_std"] == 0.0
    assert q["silhouette_mean"] > 0.5 and q["davies_bouldin_mean"] < 1.0
    assert q["n"] == 120 and q["folds"] == 5 and q["k"] == 5 and q["classes"] == ["0", "1", "2"]
    assert q["dropped_classes"] == {} and len(q["per_fold"]["silhouette"]) == 5
    assert q["chance_accuracy_mean"] == pytest.approx(1 / 3, abs=0.05)


def test_scores_ignore_translation_and_global_scale_but_not_per_dimension_scaling():
    emb, labels = _clusters(sep=4.0)
    emb = np.hstack([emb, 0.05 * np.random.default_rng(5).normal(size=(len(emb), 24))])  # weak noise dims
    base = embedding_quality(emb, labels)
    moved = embedding_quality(7.0 * emb - 3.0, labels)
    for key in ("knn_accuracy_mean", "silhouette_mean", "davies_bouldin_mean"):
        assert moved[key] == pytest.approx(base[key], rel=1e-9)
    standardised = embedding_quality(emb, labels, standardise=True)  # noise dims blown up to unit variance
    assert standardised["silhouette_mean"] < base["silhouette_mean"] - 0.2 and standardised["standardise"]


def test_random_labels_score_chance():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(400, 16))
    labels = rng.integers(0, 4, size=400)
    q = embedding_quality(emb, labels, k=5, folds=5, seed=3)
    # Chance is 1/4; the held-out accuracy over 400 samples has a binomial spread of ~0.022,
    # so 0.08 is a ~3.5 sigma tolerance. Random labels also give no cluster structure.
    assert abs(q["knn_accuracy_mean"] - 0.25) < 0.08
    assert abs(q["silhouette_mean"]) < 0.05


def test_no_group_is_both_trained_on_and_held_out(monkeypatch):
    # Each galaxy has 3 identical embeddings and a random label: a 1-NN that saw a held-out galaxy's
    # twin would score 1.0; with galaxies kept on one side it can only score chance (1/2).
    rng = np.random.default_rng(2)
    n_groups = 120
    centres = rng.normal(size=(n_groups, 6))
    group_label = rng.integers(0, 2, size=n_groups)
    groups = np.repeat(np.arange(n_groups), 3)
    emb, labels = centres[groups], group_label[groups]
    seen = []
    real_fit = quality.KNeighborsClassifier.fit

    def spy_fit(self, x, y):
        seen.append(len(x))
        return real_fit(self, x, y)

    monkeypatch.setattr(quality.KNeighborsClassifier, "fit", spy_fit)
    grouped = embedding_quality(emb, labels, groups, k=1, folds=4)
    assert len(seen) == 4 and all(n % 3 == 0 for n in seen)  # training sets hold whole galaxies
    assert abs(grouped["knn_accuracy_mean"] - 0.5) < 0.12
    leaky = embedding_quality(emb, labels, None, k=1, folds=4)  # samples as their own groups: twins leak
    assert leaky["knn_accuracy_mean"] > 0.9  # < 1 only where all three twins share a held-out fold


def test_rare_class_is_dropped_and_reported(caplog):
    emb, labels = _clusters()
    labels = labels.astype(str)
    labels[:3] = "rare"  # three galaxies of a class cannot fill five folds
    with caplog.at_level(logging.WARNING, logger="specmorph.spectral.quality"):
        q = embedding_quality(emb, labels, folds=5)
    assert q["dropped_classes"] == {"rare": 3} and q["n_dropped"] == 3 and q["n"] == 117
    assert q["classes"] == ["0", "1", "2"] and "rare" in caplog.text


def test_drop_rare_classes_counts_galaxies_not_samples():
    labels = np.array(["a"] * 6 + ["b"] * 6)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7])  # 'a' has 6 samples but 2 galaxies
    keep, dropped = drop_rare_classes(labels, groups, min_groups=3)
    assert dropped == {"a": 2} and keep.tolist() == [False] * 6 + [True] * 6


def test_bad_inputs_are_errors():
    emb, labels = _clusters(n_per=6)
    with pytest.raises(InputError, match="1 class"):
        embedding_quality(emb, np.zeros(len(emb), dtype=int), folds=3)
    with pytest.raises(InputError, match="expected \\(N, D\\)"):
        embedding_quality(emb[:, 0], labels)
    emb[4, 2] = np.nan
    with pytest.raises(InputError, match="row 4"):
        embedding_quality(emb, labels)


def test_projection_2d():
    emb, labels = _clusters(n_per=15)
    df = projection_2d(emb, labels, ids=[f"g{i}" for i in range(len(emb))])
    assert list(df.columns) == ["id_str", "x", "y", "label"] and len(df) == 45
    assert df["x"].var() >= df["y"].var()  # PCA: first axis explains the most variance
    means = df.groupby("label")[["x", "y"]].mean().to_numpy()
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(3, 1)]
    assert gaps.min() > 2.0  # clusters stay apart in the plane (standardised units)
    tsne = projection_2d(emb, labels, method="tsne", seed=0)
    np.testing.assert_array_equal(tsne[["x", "y"]], projection_2d(emb, labels, method="tsne", seed=0)[["x", "y"]])
    with pytest.raises(ValueError, match="umap"):
        projection_2d(emb, labels, method="umap")
