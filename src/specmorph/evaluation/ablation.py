"""Does spectral guidance help? A guided model against the RGB-only baseline: per-seed differences, CI, test.

Two sources of uncertainty are reported separately. Training noise: both models are trained once
per seed on the same split, so the per-seed differences (guided − baseline) and their spread show
how much a new seed could change the answer; a paired t-test over seeds asks whether their mean is
zero. Test-set noise: a paired bootstrap resamples the test *galaxies* (all images of a resampled
galaxy go together) and recomputes the seed-averaged difference on each resample, so its 95%
interval shows how much another test sample of the same size could change it. A joint bootstrap
resamples the seeds as well; its interval holds both sources and decides `detected`.

Power: the minimum detectable effect (MDE) is the true difference that a two-sided test at
α = 0.05 finds with probability 0.8, (z_0.975 + z_0.8) × SE = 2.80 SE for the galaxies' bootstrap
SE and the seeds' SE together (Student's t quantiles for the seeds alone). A measured difference
inside ±MDE with an interval covering 0 means "no effect of that size or larger", not "no effect".
McNemar's exact test per seed counts the test images that only one of the two models gets right.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("accuracy", "macro_f1")
ALPHA, POWER = 0.05, 0.8
Z_POWER = float(stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER))  # 2.80


def weighted_scores(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Accuracy and macro-F1 under sample weights, for many weight vectors at once.

    Macro-F1 averages over the classes with positive true weight (as `classification_metrics`
    averages over the classes present in y_true); a class never predicted and never true is skipped.

    Args:
        y_true: (N,) class indices.
        y_pred: (N,) class indices.
        weights: (B, N) non-negative weights (e.g. bootstrap counts); each row has a positive sum.
        n_classes: C.

    Returns:
        (B, 2): accuracy, macro-F1 per weight row.
    """
    weights = np.atleast_2d(weights).astype(np.float64)
    t = np.eye(n_classes)[y_true]  # (N, C) one-hot
    p = np.eye(n_classes)[y_pred]  # (N, C)
    tp = weights @ (t * p)  # (B, C)
    true_c = weights @ t  # (B, C)
    pred_c = weights @ p  # (B, C)
    acc = tp.sum(axis=1) / weights.sum(axis=1)
    present = true_c > 0
    f1 = np.where(present, 2.0 * tp / np.maximum(true_c + pred_c, 1e-300), 0.0)
    macro = f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return np.stack([acc, macro], axis=1)


def paired_bootstrap(y_true: np.ndarray, base_pred: np.ndarray, other_pred: np.ndarray, groups: Sequence[Any],
                     n_classes: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Seed-averaged (other − baseline) accuracy and macro-F1 on `n_boot` resamples of the test galaxies.

    Args:
        y_true: (N,) true class indices of the test images.
        base_pred: (S, N) baseline predictions, one row per training seed.
        other_pred: (S, N) guided-model predictions for the same seeds.
        groups: (N,) galaxy of each image; galaxies are resampled with replacement.
        n_classes: C.
        n_boot: number of resamples.
        seed: of the resampling.

    Returns:
        (n_boot, 2) differences of accuracy and macro-F1.
    """
    base_pred, other_pred = np.atleast_2d(base_pred), np.atleast_2d(other_pred)
    if base_pred.shape != other_pred.shape or base_pred.shape[1] != len(y_true):
        raise ValueError(f"paired_bootstrap: predictions {base_pred.shape} and {other_pred.shape} do not match "
                         f"{len(y_true)} test images")
    _, gidx = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if not len(gidx):
        raise ValueError("paired_bootstrap: no test images")
    return _per_seed_bootstrap(y_true, base_pred, other_pred, gidx, n_classes, n_boot,
                                np.random.default_rng(seed)).mean(axis=0)


def _per_seed_bootstrap(y_true: np.ndarray, base_pred: np.ndarray, other_pred: np.ndarray, gidx: np.ndarray,
                        n_classes: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(S, n_boot, 2) per-seed (other − baseline) accuracy and macro-F1, the same galaxy resamples for every seed."""
    n_groups = int(gidx.max()) + 1
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))  # (B, G) resampled galaxies
    counts = np.stack([np.bincount(d, minlength=n_groups) for d in draws])  # (B, G)
    weights = counts[:, gidx]  # (B, N) each image weighted by how often its galaxy was drawn
    return np.stack([weighted_scores(y_true, o_row, weights, n_classes)
                     - weighted_scores(y_true, b_row, weights, n_classes)
                     for b_row, o_row in zip(base_pred, other_pred, strict=True)])


def ablation(y_true: np.ndarray, base_pred: Mapping[int, np.ndarray], other_pred: Mapping[int, np.ndarray],
             groups: Sequence[Any], n_classes: int, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Compares a guided model with the RGB-only baseline on one test set.

    Args:
        y_true: (N,) true class indices.
        base_pred: {seed: (N,) baseline predictions}.
        other_pred: {seed: (N,) guided predictions}; the same seeds.
        groups: (N,) galaxy of each test image.
        n_classes: C.
        n_boot: bootstrap resamples.
        seed: of the bootstrap.

    Returns:
        {"n_images", "n_galaxies", "seeds", metric: {"baseline": {mean, std}, "guided": {mean, std},
        "per_seed_diff": [...], "diff_mean", "diff_std", "ci95": [lo, hi] (bootstrap over galaxies),
        "p_paired_t" (None for < 2 seeds or identical differences)}} for accuracy and macro_f1.
    """
    seeds = sorted(base_pred)
    if not seeds or sorted(other_pred) != seeds:
        raise ValueError(f"ablation: baseline seeds {sorted(base_pred)} and guided seeds {sorted(other_pred)} differ")
    y_true = np.asarray(y_true, dtype=np.int64)
    base = np.stack([np.asarray(base_pred[s], dtype=np.int64) for s in seeds])  # (S, N)
    other = np.stack([np.asarray(other_pred[s], dtype=np.int64) for s in seeds])  # (S, N)
    if len(y_true) == 0:
        raise ValueError("ablation: no test images")
    ones = np.ones((1, len(y_true)))
    base_scores = np.concatenate([weighted_scores(y_true, b, ones, n_classes) for b in base])  # (S, 2)
    other_scores = np.concatenate([weighted_scores(y_true, o, ones, n_classes) for o in other])  # (S, 2)
    _, gidx = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    per_seed = _per_seed_bootstrap(y_true, base, other, gidx, n_classes, n_boot, rng)  # (S, B, 2)
    boot = per_seed.mean(axis=0)  # (B, 2) galaxies resampled, seeds fixed
    picks = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))  # (B, S) seeds resampled too
    joint = per_seed[picks, np.arange(n_boot)[:, None]].mean(axis=1)  # (B, 2)
    out: dict[str, Any] = {"n_images": len(y_true), "n_galaxies": int(gidx.max()) + 1, "seeds": seeds,
                           "mcnemar": [mcnemar(y_true, b_row, o_row) for b_row, o_row in zip(base, other, strict=True)]}
    for k, name in enumerate(METRICS):
        b, o = base_scores[:, k], other_scores[:, k]
        d = o - b
        se_galaxies = float(boot[:, k].std(ddof=1)) if n_boot > 1 else 0.0
        se_seeds = _se_of_mean(d)
        ci_joint = [float(v) for v in np.percentile(joint[:, k], [2.5, 97.5])]
        out[name] = {
            "baseline": _mean_std(b),
            "guided": _mean_std(o),
            "per_seed_diff": [float(v) for v in d],
            "diff_mean": float(d.mean()),
            "diff_std": float(d.std(ddof=1)) if len(d) > 1 else None,
            "ci95": [float(v) for v in np.percentile(boot[:, k], [2.5, 97.5])],
            "ci95_seeds": _t_interval(d),
            "ci95_seeds_and_galaxies": ci_joint,
            "detected": bool(ci_joint[0] > 0 or ci_joint[1] < 0),
            "p_paired_t": _paired_t(o, b),
            "se_galaxies": se_galaxies,
            "se_seeds": se_seeds,
            "mde": minimum_detectable(se_galaxies, d),
        }
    return out


def mcnemar(y_true: np.ndarray, base: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test of two models' predictions on the same images.

    Returns:
        {"baseline_only": images only the baseline gets right, "guided_only": only the other,
        "p": two-sided exact binomial p-value of the split of those (1.0 when there are none)}.
    """
    right_b, right_o = base == y_true, other == y_true
    b_only, o_only = int((right_b & ~right_o).sum()), int((right_o & ~right_b).sum())
    p = float(stats.binomtest(o_only, b_only + o_only, 0.5).pvalue) if b_only + o_only else 1.0
    return {"baseline_only": b_only, "guided_only": o_only, "p": p}


def minimum_detectable(se_galaxies: float, per_seed_diff: np.ndarray) -> dict[str, float | None]:
    """MDE at α = 0.05 (two-sided) and power 0.8 (see the module docstring).

    Args:
        se_galaxies: Bootstrap SE over test galaxies of the seed-averaged difference.
        per_seed_diff: (S,) differences, one per training seed.

    Returns:
        {"galaxies": 2.80 × se_galaxies (test-set noise alone), "seeds": paired-t MDE over the seeds
        ((t_0.975 + t_0.8; S−1 dof) × sd / √S, None for < 2 seeds), "combined": 2.80 × √(se_galaxies² +
        sd²/S), the one to quote (se_galaxies alone for < 2 seeds)}.
    """
    d = np.asarray(per_seed_diff, np.float64)
    out: dict[str, float | None] = {"galaxies": Z_POWER * se_galaxies, "seeds": None, "combined": Z_POWER * se_galaxies}
    se_seeds = _se_of_mean(d)
    if se_seeds is not None:
        dof = len(d) - 1
        out["seeds"] = float((stats.t.ppf(1 - ALPHA / 2, dof) + stats.t.ppf(POWER, dof)) * se_seeds)
        out["combined"] = Z_POWER * math.hypot(se_galaxies, se_seeds)
    return out


def _se_of_mean(d: np.ndarray) -> float | None:
    """Standard error of the mean of the per-seed differences (sd / √S); None for < 2 seeds."""
    return float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else None


def _t_interval(d: np.ndarray) -> list[float] | None:
    """Student-t 95% interval of the mean per-seed difference (training noise alone); None for < 2 seeds."""
    if len(d) < 2:
        return None
    half = float(stats.t.ppf(1 - ALPHA / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))  # as recorded
    return [float(d.mean()) - half, float(d.mean()) + half]


def _mean_std(v: np.ndarray) -> dict[str, float | None]:
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None}


def _paired_t(other: np.ndarray, base: np.ndarray) -> float | None:
    """Two-sided paired t-test p-value over seeds; None when undefined (< 2 seeds, or no spread in the differences)."""
    d = other - base
    if len(d) < 2 or np.allclose(d, d[0]):
        return None
    p = float(stats.ttest_rel(other, base).pvalue)
    return p if math.isfinite(p) else None


def sentence(result: Mapping[str, Any], metric: str = "macro_f1", what: str = "spectral guidance") -> str:
    """One line for the README: "<what> changes RGB-only macro-F1 by +0.012 ± 0.020 (95% CI [...]; p = ...)."""
    r = result[metric]
    std = f" ± {r['diff_std']:.3f}" if r["diff_std"] is not None else ""
    p = f"; paired t over {len(r['per_seed_diff'])} seeds p = {r['p_paired_t']:.2f}" if r["p_paired_t"] is not None \
        else ""
    lo, hi = r["ci95"]
    mde = f"; detectable at 80% power: ±{r['mde']['combined']:.3f}" if r.get("mde") else ""
    label = {"accuracy": "accuracy", "macro_f1": "macro-F1"}.get(metric, metric)
    return (f"{what} changes RGB-only {label} by {r['diff_mean']:+.3f}{std} "
            f"(bootstrap 95% CI [{lo:+.3f}, {hi:+.3f}]{p}{mde})")
