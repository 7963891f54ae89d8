"""Grouped, stratified train/test splits and k-folds: a group (galaxy) never spans two sides."""

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from specmorph.errors import InputError

logger = logging.getLogger(__name__)


def _factorize(labels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate the inputs and reduce them to per-group tables.

    Args:
        labels: (N,) class of each sample (any hashable values).
        groups: (N,) group id of each sample (e.g. the galaxy's name).

    Returns:
        (sample_group, group_label, group_size, label_values): (N,) group code of each sample,
        (G,) majority label code of each group (ties go to the first label in sorted order),
        (G,) samples per group, (L,) the sorted label values behind the codes.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.ndim != 1 or groups.ndim != 1 or len(labels) != len(groups):
        raise InputError(f"labels and groups must be 1-D of equal length, got shapes {labels.shape} and {groups.shape}")
    if len(labels) == 0:
        raise InputError("cannot split an empty sample")
    label_code, label_values = pd.factorize(labels, sort=True)
    sample_group, _ = pd.factorize(groups, sort=True)
    for name, code in (("label", label_code), ("group", sample_group)):
        if (code < 0).any():
            raise InputError(f"missing {name} at row {int(np.flatnonzero(code < 0)[0])}")
    n_groups, n_labels = int(sample_group.max()) + 1, len(label_values)
    counts = np.zeros((n_groups, n_labels), dtype=np.int64)  # (G, L)
    np.add.at(counts, (sample_group, label_code), 1)
    return sample_group, counts.argmax(axis=1), counts.sum(axis=1), np.asarray(label_values)


def _name(value: object, class_names: Sequence[str] | None) -> str:
    """Readable class name for messages."""
    if class_names is not None and isinstance(value, int | np.integer) and 0 <= int(value) < len(class_names):
        return f"{class_names[int(value)]!r} (label {int(value)})"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_group_counts(
    group_label: np.ndarray, label_values: np.ndarray, need: int, what: str, class_names: Sequence[str] | None
) -> None:
    """Raise when a class is the majority label of fewer than `need` groups."""
    have = np.bincount(group_label, minlength=len(label_values))  # (L,)
    for code in np.flatnonzero(have < need):
        raise InputError(
            f"class {_name(label_values[code], class_names)} has {int(have[code])} group(s) (galaxies) "
            f"as majority label; {what} needs at least {need}"
        )


def grouped_split(
    labels: np.ndarray,
    groups: np.ndarray,
    test_frac: float,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split samples into train and test, stratified by class, keeping each group on one side.

    A group's class is its majority label. Within each class the groups are shuffled and the
    shortest prefix whose sample count is nearest to `test_frac` of the class goes to test, with
    at least one group on each side, so every class appears in both splits.

    Args:
        labels: (N,) class of each sample.
        groups: (N,) group id of each sample; samples of one galaxy share it.
        test_frac: wanted fraction of each class's samples in test, in (0, 1).
        seed: seed of the shuffle.
        class_names: names of integer labels, for error messages.

    Returns:
        (train_idx, test_idx): sorted int64 sample indices, disjoint, covering 0..N-1.

    Raises:
        InputError: on bad shapes or fraction, or when a class has fewer than 2 groups.
    """
    if not 0.0 < test_frac < 1.0:
        raise InputError(f"test_frac must be in (0, 1), got {test_frac!r}")
    sample_group, group_label, group_size, label_values = _factorize(labels, groups)
    _check_group_counts(group_label, label_values, 2, "a train/test split", class_names)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(group_label), dtype=bool)  # (G,)
    for code in range(len(label_values)):
        members = rng.permutation(np.flatnonzero(group_label == code))
        cum = np.cumsum(group_size[members])  # samples in test if the first k+1 groups go there
        target = test_frac * cum[-1]
        k = int(np.argmin(np.abs(cum[:-1] - target))) + 1  # 1 .. n-1 groups in test
        is_test[members[:k]] = True
    test_mask = is_test[sample_group]
    train_idx, test_idx = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    logger.info("grouped split: %d train, %d test samples (%d groups)", len(train_idx), len(test_idx), len(is_test))
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def grouped_kfold(
    labels: np.ndarray,
    groups: np.ndarray,
    k: int,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold over groups: each group in exactly one test fold, each class in every fold.

    Within each class the groups are shuffled, ordered largest first, and each is dealt to the
    fold holding the fewest samples of that class (then fewest samples overall), so the first k
    groups of a class land in k different folds.

    Args:
        labels: (N,) class of each sample.
        groups: (N,) group id of each sample.
        k: number of folds, >= 2.
        seed: seed of the shuffle.
        class_names: names of integer labels, for error messages.

    Returns:
        k (train_idx, test_idx) pairs of sorted int64 indices; the test sets partition 0..N-1.
        Computed eagerly, so input errors surface at the call.

    Raises:
        InputError: on bad shapes or k, or when a class has fewer than k groups.
    """
    if not isinstance(k, int | np.integer) or k < 2:
        raise InputError(f"k must be an integer >= 2, got {k!r}")
    sample_group, group_label, group_size, label_values = _factorize(labels, groups)
    _check_group_counts(group_label, label_values, int(k), f"{k}-fold cross-validation", class_names)
    rng = np.random.default_rng(seed)
    fold_of_group = np.full(len(group_label), -1, dtype=np.int64)  # (G,)
    fold_total = np.zeros(k, dtype=np.int64)  # samples per fold, all classes
    for code in range(len(label_values)):
        members = rng.permutation(np.flatnonzero(group_label == code))
        members = members[np.argsort(-group_size[members], kind="stable")]
        fold_class = np.zeros(k, dtype=np.int64)
        for g in members:
            fold = int(np.lexsort((np.arange(k), fold_total, fold_class))[0])
            fold_of_group[g] = fold
            fold_class[fold] += group_size[g]
            fold_total[fold] += group_size[g]
    fold_of_sample = fold_of_group[sample_group]  # (N,)
    return [
        (np.flatnonzero(fold_of_sample != f).astype(np.int64), np.flatnonzero(fold_of_sample == f).astype(np.int64))
        for f in range(k)
    ]
