"""Embedding quality on held-out galaxies: silhouette, Davies-Bouldin and kNN accuracy over grouped folds.

The seed study's Table 4.4 reported these scores without saying on which galaxies. Here every
number is computed on held-out galaxies: the samples are split by `grouped_kfold` (a galaxy is
never on both sides, each class in every fold); in each fold a k-nearest-neighbour classifier
(Euclidean, uniform votes) is fit on the training part and scored on the held-out part, and the
silhouette and Davies-Bouldin scores (Euclidean) are computed on the held-out part with its true
labels. Each score is reported as the mean and the sample standard deviation (ddof=1) over folds.

Geometry: the embeddings are used as they are. All three scores are invariant to translation and
to a global scale, so embedders with different output scales compare fairly; standardising each
dimension (optional, with the training part's mean and std) would instead give near-constant noise
dimensions the same weight as the informative ones, which misjudges both learned 512-d embeddings
(many weak dimensions) and PCA coefficients (variance falls steeply by design). The embed stage
reports both, the standardised scores under `standardised` in metrics/embed.json, as issue 16 asks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import balanced_accuracy_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from specmorph.catalog.splits import grouped_kfold
from specmorph.errors import InputError

log = logging.getLogger(__name__)

# The data are small (hundreds of galaxies): one thread is fast, reproducible, and immune to the
# OpenMP spin-waits that made a 45-point t-SNE take a minute on a busy 2-core machine.
_THREADS = 1

SCORES = ("knn_accuracy", "knn_balanced_accuracy", "chance_accuracy", "silhouette", "davies_bouldin")
PROJECTIONS = ("pca", "tsne")


def _check(emb: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Validated float64 embeddings (N, D), labels (N,) and groups (N,) (one group per sample if None)."""
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    if emb.ndim != 2 or labels.shape != (len(emb),):
        raise InputError(f"embeddings {emb.shape} and labels {labels.shape}: expected (N, D) and (N,)")
    if not np.isfinite(emb).all():
        row = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise InputError(f"embedding row {row} is not finite")
    groups = np.arange(len(emb)) if groups is None else np.asarray(groups)
    if groups.shape != labels.shape:
        raise InputError(f"groups {groups.shape} and labels {labels.shape} differ in shape")
    return emb, labels, groups


def _majority_groups(labels: np.ndarray, groups: np.ndarray) -> pd.Series:
    """Number of groups whose majority label is each class (ties: first label in sorted order)."""
    counts = pd.crosstab(pd.Series(groups), pd.Series(labels))  # (G, L), labels sorted
    return counts.idxmax(axis=1).value_counts()


def drop_rare_classes(
    labels: np.ndarray, groups: np.ndarray, min_groups: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Keeps the classes that are the majority label of at least `min_groups` groups.

    Args:
        labels: (N,) class of each sample.
        groups: (N,) group (galaxy) of each sample.
        min_groups: Groups a class needs (the number of folds).

    Returns:
        (keep (N,) bool mask, {dropped class: its number of groups}); repeated until stable, since
        dropping samples can change the majority label of a mixed group.
    """
    keep = np.ones(len(labels), dtype=bool)
    dropped: dict[str, int] = {}
    while keep.any():
        n_groups = _majority_groups(labels[keep], groups[keep])
        n_groups = n_groups.reindex(pd.unique(labels[keep]), fill_value=0)
        rare = n_groups[n_groups < min_groups]
        if rare.empty:
            break
        for cls, n in rare.items():
            dropped[str(cls)] = int(n)
        keep &= ~np.isin(labels, rare.index.to_numpy())
    return keep, dropped


def _fold_scores(
    emb: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, k: int, standardise: bool
) -> dict[str, float]:
    """The SCORES of one fold: kNN fit on `train`, everything scored on `test`."""
    x_train, x_test = emb[train], emb[test]  # (n, D)
    if standardise:
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    knn = KNeighborsClassifier(n_neighbors=k).fit(x_train, labels[train])
    pred = knn.predict(x_test)
    values, counts = np.unique(labels[train], return_counts=True)
    out = {
        "knn_accuracy": float(np.mean(pred == labels[test])),
        "knn_balanced_accuracy": float(balanced_accuracy_score(labels[test], pred)),
        "chance_accuracy": float(np.mean(labels[test] == values[np.argmax(counts)])),  # training majority class
        "silhouette": float("nan"),
        "davies_bouldin": float("nan"),
    }
    n_cls = len(np.unique(labels[test]))
    if 2 <= n_cls < len(test):
        out["silhouette"] = float(silhouette_score(x_test, labels[test], metric="euclidean"))
        out["davies_bouldin"] = float(davies_bouldin_score(x_test, labels[test]))
    else:
        log.warning("held-out fold of %d samples has %d class(es); silhouette and Davies-Bouldin undefined",
                    len(test), n_cls)
    return out


def embedding_quality(
    emb: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    k: int = 5,
    folds: int = 5,
    seed: int = 0,
    standardise: bool = False,
) -> dict[str, object]:
    """Cross-validated quality of an embedding, every score on held-out galaxies (module docstring).

    Args:
        emb: (N, D) embeddings.
        labels: (N,) class of each sample (ints or strings).
        groups: (N,) galaxy of each sample; None treats every sample as its own galaxy.
        k: Neighbours of the kNN classifier.
        folds: Number of grouped stratified folds; classes that are the majority label of fewer
            than `folds` galaxies are dropped (and reported, with a warning).
        seed: Seed of the fold assignment.
        standardise: Scale each dimension to zero mean and unit variance (training-part
            statistics) before scoring; off by default (see the module docstring).

    Returns:
        A flat dict for DVC metrics: `<score>_mean` and `<score>_std` (ddof=1 over folds) for
        knn_accuracy, knn_balanced_accuracy, chance_accuracy (predicting the training majority
        class), silhouette and davies_bouldin; `n` (samples used), `n_dropped`, `k`, `folds`,
        `seed`, `standardise`, `classes` (kept, as strings), `dropped_classes` ({class: groups}),
        `evaluated_on`, and `per_fold` ({score: [one value per fold]}).

    Raises:
        InputError: on bad shapes, non-finite embeddings, fewer than two classes left, or a
            training fold smaller than k.
    """
    emb, labels, groups = _check(emb, labels, groups)
    keep, dropped = drop_rare_classes(labels, groups, folds)
    if dropped:
        log.warning("dropped %d class(es) with fewer than %d galaxies: %s", len(dropped), folds, dropped)
    emb, labels, groups = emb[keep], labels[keep], groups[keep]
    classes = sorted(pd.unique(labels).tolist(), key=str)
    if len(classes) < 2:
        raise InputError(f"{len(classes)} class(es) with at least {folds} galaxies; need two (dropped: {dropped})")
    splits = grouped_kfold(labels, groups, folds, seed)
    smallest = min(len(train) for train, _ in splits)
    if smallest < k:
        raise InputError(f"a training fold has {smallest} samples, fewer than k={k} neighbours")
    per_fold = {name: [] for name in SCORES}
    with threadpool_limits(_THREADS):
        for train, test in splits:
            for name, value in _fold_scores(emb, labels, train, test, k, standardise).items():
                per_fold[name].append(value)
    out: dict[str, object] = {}
    for name, values in per_fold.items():
        v = np.asarray(values)
        out[f"{name}_mean"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        out[f"{name}_std"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan")
    out.update({
        "n": len(labels), "n_dropped": int((~keep).sum()), "k": int(k), "folds": int(folds), "seed": int(seed),
        "standardise": bool(standardise),
        "classes": [str(c) for c in classes], "dropped_classes": dropped,
        "evaluated_on": f"held-out galaxies of {folds} grouped stratified folds",
        "per_fold": per_fold,
    })
    log.info("kNN accuracy %.3f ± %.3f (chance %.3f), silhouette %.3f, Davies-Bouldin %.3f on %d samples",
             out["knn_accuracy_mean"], out["knn_accuracy_std"], out["chance_accuracy_mean"],
             out["silhouette_mean"], out["davies_bouldin_mean"], out["n"])
    return out


def projection_2d(
    emb: np.ndarray,
    labels: np.ndarray,
    method: str = "pca",
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A 2-D projection of the embeddings (same geometry as `embedding_quality`) for a scatter plot by class.

    Args:
        emb: (N, D) embeddings.
        labels: (N,) class of each sample.
        method: 'pca' (deterministic) or 'tsne' (perplexity min(30, (N - 1) / 3), PCA init, seeded).
        seed: Seed of t-SNE.
        ids: Optional (N,) identifiers, added as an `id_str` column.

    Returns:
        DataFrame with columns x, y, label (as strings) and, with ids, id_str.
    """
    emb, labels, _ = _check(emb, labels, None)
    if method not in PROJECTIONS:
        raise ValueError(f"method={method!r}; expected one of {PROJECTIONS}")
    if len(emb) < 3:
        raise InputError(f"{len(emb)} embeddings; a 2-D projection needs at least 3")
    if emb.shape[1] < 2:
        raise InputError(f"embeddings have {emb.shape[1]} dimension(s); a 2-D projection needs at least 2")
    x = emb / (np.std(emb) or 1.0)  # one global scale: t-SNE's PCA initialisation is scale-sensitive
    if method == "pca":
        xy = PCA(n_components=2, svd_solver="full").fit_transform(x)  # (N, 2)
    else:
        tsne = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed)
        with threadpool_limits(_THREADS):
            xy = tsne.fit_transform(x)
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": [str(v) for v in labels]})
    if ids is not None:
        if len(ids) != len(df):
            raise InputError(f"{len(ids)} ids for {len(df)} embeddings")
        df.insert(0, "id_str", [str(i) for i in ids])
    return df
