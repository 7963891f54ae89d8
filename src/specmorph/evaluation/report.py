"""Seed-aggregated metric reports and paired model comparisons."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


IMAGE_CEILING_KEY = "rgb_only_on_truth"  # metrics/image_ceiling.json: the RGB-only network trained on the truth

def metric_value(metrics: Mapping[str, Any], key: str, where: str = "metrics") -> float:
    """One scalar metric, addressed by a dotted key ("accuracy", "per_class.round_smooth.f1").

    Args:
        metrics: a (nested) metrics dict, e.g. from `classification_metrics`.
        key: dotted path to a number.
        where: what `metrics` is, for error messages (e.g. "seed 3").

    Returns:
        The value as a float.

    Raises:
        ValueError: the key is missing or does not hold a real number; the message names both.
    """
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"{where}: no metric '{key}' (missing '{part}')")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float | np.integer | np.floating):
        raise ValueError(f"{where}: metric '{key}' is {node!r}, not a number")
    return float(node)


def scalar_keys(metrics: Mapping[str, Any]) -> list[str]:
    """Top-level keys of `metrics` that hold a real number (booleans excluded), in dict order."""
    return [k for k, v in metrics.items()
            if not isinstance(v, bool) and isinstance(v, int | float | np.integer | np.floating)]


def _summary(values: np.ndarray) -> dict[str, Any]:
    """mean, std (ddof=1; None for a single value), min, max, n of a 1-D array."""
    n = int(values.size)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if n > 1 else None,
        "min": float(values.min()),
        "max": float(values.max()),
        "n": n,
    }


def aggregate_seeds(per_seed: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of scalar metrics over training seeds.

    Args:
        per_seed: one metrics dict per seed (e.g. `classification_metrics` output).
        keys: dotted metric keys to aggregate; None: the top-level numeric keys of the first dict.

    Returns:
        {key: {"mean", "std", "min", "max", "n"}}; ``std`` uses ddof=1 (the spread of a new seed's
        result, not of the mean) and is None when there is a single seed.

    Raises:
        ValueError: no seeds, or a seed lacks a key (the message names the seed index and key).
    """
    if not per_seed:
        raise ValueError("aggregate_seeds: no per-seed results")
    keys = scalar_keys(per_seed[0]) if keys is None else list(keys)
    out: dict[str, Any] = {}
    for key in keys:
        values = np.array([metric_value(m, key, f"seed result {i}") for i, m in enumerate(per_seed)])
        out[key] = _summary(values)
    return out


def mean_std(summary: Mapping[str, Any]) -> str:
    """An `aggregate_seeds` entry as text: "0.477 ± 0.019" (the mean alone when there is no std)."""
    if summary.get("std") is None:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def compare(baseline: Mapping[Any, Mapping[str, Any]], other: Mapping[Any, Mapping[str, Any]],
            keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Compares two models trained on the same seeds: difference of means and the paired difference.

    Seeds are matched by ``str(seed)``, so dicts read back from JSON (string keys) match int keys.
    Pairing removes the part of the seed-to-seed scatter the two models share (same split, same
    initialisation seed), so ``paired_std`` is usually much smaller than either model's own std.
    With identical seeds the difference of means equals ``paired_mean``; both are reported.

    Args:
        baseline: {seed: metrics dict} for the reference model.
        other: {seed: metrics dict} for the model compared with it, on the same seeds.
        keys: dotted metric keys; None: the top-level numeric keys of the first baseline dict.

    Returns:
        {"seeds": [...], "metrics": {key: {"baseline_mean", "other_mean", "diff_of_means",
        "paired_mean", "paired_std", "paired_sem", "n"}}}, differences being other - baseline;
        ``paired_std`` (ddof=1) and ``paired_sem`` = paired_std / sqrt(n) are None for one seed.

    Raises:
        ValueError: no seeds, the seed sets differ (the message lists the unmatched seeds) or a key
            is missing.
    """
    b = {str(s): m for s, m in baseline.items()}
    o = {str(s): m for s, m in other.items()}
    if not b:
        raise ValueError("compare: no baseline seeds")
    if set(b) != set(o):
        raise ValueError(f"compare: models were not run on the same seeds; only in baseline: "
                         f"{sorted(set(b) - set(o))}, only in other: {sorted(set(o) - set(b))}")
    seeds = sorted(b, key=_seed_order)
    keys = scalar_keys(b[seeds[0]]) if keys is None else list(keys)
    result: dict[str, Any] = {}
    for key in keys:
        bv = np.array([metric_value(b[s], key, f"baseline seed {s}") for s in seeds])
        ov = np.array([metric_value(o[s], key, f"other seed {s}") for s in seeds])
        diff = ov - bv  # (n_seeds,)
        n = len(seeds)
        std = float(diff.std(ddof=1)) if n > 1 else None
        result[key] = {
            "baseline_mean": float(bv.mean()),
            "other_mean": float(ov.mean()),
            "diff_of_means": float(ov.mean() - bv.mean()),
            "paired_mean": float(diff.mean()),
            "paired_std": std,
            "paired_sem": std / math.sqrt(n) if std is not None else None,
            "n": n,
        }
    return {"seeds": seeds, "metrics": result}


def _seed_order(seed: str) -> tuple[int, int, str]:
    """Sort key: integer seeds numerically, then any others by name."""
    try:
        return (0, int(seed), "")
    except ValueError:
        return (1, 0, seed)
