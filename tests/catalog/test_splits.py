"""Tests of grouped, stratified splits: no galaxy leaks across sides, every class on both."""

import numpy as np
import pytest

from specmorph.catalog.splits import grouped_kfold, grouped_split
from specmorph.errors import InputError


def sample(n_groups: int = 400, n_classes: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Galaxies with 1-3 images each; class frequencies unequal; a few groups with a minority label."""
    rng = np.random.default_rng(seed)
    group_class = rng.choice(
        n_classes, size=n_groups, p=np.linspace(1, 3, n_classes) / np.linspace(1, 3, n_classes).sum()
    )
    sizes = rng.integers(1, 4, size=n_groups)
    groups = np.repeat([f"gal{i:04d}" for i in range(n_groups)], sizes)
    labels = np.repeat(group_class, sizes)
    flip = rng.choice(len(labels), size=10, replace=False)
    labels[flip] = (labels[flip] + 1) % n_classes
    return labels, groups


def test_split_keeps_groups_whole_and_classes_on_both_sides():
    labels, groups = sample()
    train, test = grouped_split(labels, groups, test_frac=0.2, seed=1)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
    assert not set(groups[train]) & set(groups[test])
    for c in np.unique(labels):
        assert (labels[train] == c).any() and (labels[test] == c).any()
        frac = (labels[test] == c).sum() / (labels == c).sum()
        assert frac == pytest.approx(0.2, abs=0.05)
    assert len(test) / len(labels) == pytest.approx(0.2, abs=0.02)


def test_split_is_deterministic_in_seed():
    labels, groups = sample()
    a = grouped_split(labels, groups, 0.3, seed=7)
    b = grouped_split(labels, groups, 0.3, seed=7)
    c = grouped_split(labels, groups, 0.3, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_group_follows_its_majority_label():
    # g0 holds two class-0 images and one class-1 image: it counts as class 0.
    labels = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    groups = np.array(["g0", "g0", "g0", "g1", "g2", "g3", "g4", "g5"])
    train, test = grouped_split(labels, groups, 0.5, seed=0)
    g0 = np.flatnonzero(groups == "g0")
    assert set(g0) <= set(train) or set(g0) <= set(test)
    assert not set(groups[train]) & set(groups[test])


def test_smallest_classes_still_on_both_sides():
    labels = np.array([0] * 50 + [1, 1])
    groups = np.arange(52)
    train, test = grouped_split(labels, groups, 0.1, seed=3)
    assert (labels[test] == 1).sum() == 1 and (labels[train] == 1).sum() == 1


def test_singleton_class_error_names_class_and_counts():
    labels = np.array(["spiral"] * 10 + ["cigar"])
    with pytest.raises(InputError, match=r"class 'cigar' has 1 group.*at least 2"):
        grouped_split(labels, np.arange(11), 0.2, seed=0)


def test_two_images_of_one_galaxy_are_one_group():
    labels = np.array([0] * 10 + [1, 1])
    groups = np.array([f"g{i}" for i in range(10)] + ["same", "same"])
    with pytest.raises(InputError, match=r"'round_smooth' \(label 1\) has 1 group"):
        grouped_split(labels, groups, 0.2, seed=0, class_names=["cigar_smooth", "round_smooth"])


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(frac):
    with pytest.raises(InputError, match="test_frac"):
        grouped_split(np.array([0, 0, 1, 1]), np.arange(4), frac, seed=0)


def test_bad_shapes_and_missing_groups():
    with pytest.raises(InputError, match="equal length"):
        grouped_split(np.array([0, 1]), np.arange(3), 0.5, seed=0)
    with pytest.raises(InputError, match="missing group at row 1"):
        grouped_split(np.array([0, 0, 1, 1]), np.array(["a", None, "c", "d"], dtype=object), 0.5, seed=0)


def test_kfold_partitions_every_index_once():
    labels, groups = sample(seed=2)
    folds = grouped_kfold(labels, groups, k=5, seed=0)
    assert len(folds) == 5
    seen = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(labels)))
    for train, test in folds:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
        assert not set(groups[train]) & set(groups[test])
        for c in np.unique(labels):
            assert (labels[test] == c).any() and (labels[train] == c).any()
        assert len(test) / len(labels) == pytest.approx(0.2, abs=0.03)


def test_kfold_with_exactly_k_groups_per_class():
    labels = np.repeat([0, 1], [3, 3])
    folds = grouped_kfold(labels, np.arange(6), k=3, seed=4)
    for _, test in folds:
        assert sorted(labels[test].tolist()) == [0, 1]


def test_kfold_errors():
    labels = np.array([0] * 10 + [1] * 4)
    with pytest.raises(InputError, match=r"class 1 has 4 group.*5-fold.*at least 5"):
        grouped_kfold(labels, np.arange(14), k=5, seed=0)
    with pytest.raises(InputError, match="k must be"):
        grouped_kfold(labels, np.arange(14), k=1, seed=0)
