"""Image statistics of mock and real cutouts per coarse class: KS distances, medians and overlaid histograms."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import ks_2samp

from specmorph.errors import InputError
from specmorph.executor import ExecutorParams, map_items
from specmorph.io.catalogs import read_table
from specmorph.io.images import read_image
from specmorph.realism.stats import STAT_NAMES, image_stats

logger = logging.getLogger(__name__)

HIST_BINS = 30
HIST_RANGE_PCT = (1.0, 99.0)  # histogram range: these percentiles of mock and real together
PANEL_INCHES = 2.6


def mock_labels(images_path: str | os.PathLike, truth_dir: str | os.PathLike, sources: Sequence[str]
                ) -> tuple[pd.DataFrame, str]:
    """The mock images of `sources` with their 8-class labels: the mock truth where the survey has one.

    GZ2 images take the truth of their `dr7objid` (truth/gz2.csv), SDSS cutouts that of their galaxy
    (truth/califa.csv). Without a truth folder (data/raw from real files) the image table's `label`
    (from the GZ2 votes) is used instead, and the second return value says so.

    Returns:
        (table of path, label (index into taxonomy.CLASSES), labels_from): unlabelled rows dropped.
    """
    table = read_table(images_path, ["id_str", "galaxy_id", "source", "path", "label"],
                       dtype={"id_str": str, "galaxy_id": str})
    table = table[table["source"].isin(list(sources))].reset_index(drop=True)
    truth_dir = Path(truth_dir)
    if (truth_dir / "gz2.csv").is_file():
        gz2 = read_table(truth_dir / "gz2.csv", ["dr7objid", "label"], dtype={"dr7objid": str})
        califa = read_table(truth_dir / "califa.csv", ["id_str", "label"], dtype={"id_str": str})
        key = table["id_str"].where(table["source"] == "gz2", table["galaxy_id"])
        truth = pd.concat([gz2.set_index("dr7objid")["label"], califa.set_index("id_str")["label"]])
        truth = truth[~truth.index.duplicated()]
        label, labels_from = key.map(truth).fillna(-1).astype(int), f"mock truth ({truth_dir})"
    else:
        label, labels_from = table["label"].astype(int), f"{images_path} `label` (GZ2 votes; no {truth_dir})"
    out = pd.DataFrame({"path": table["path"].astype(str), "label": label.to_numpy()})
    return out[out["label"] >= 0].reset_index(drop=True), labels_from


def sample_per_class(classes: np.ndarray, max_per_class: int, seed: int) -> np.ndarray:
    """Indices of at most `max_per_class` rows of each class, drawn without replacement, sorted.

    Args:
        classes: (N,) class of each row.
        max_per_class: rows kept per class.
        seed: random seed (the same seed and inputs give the same rows).

    Returns:
        (M,) int64 row indices in increasing order.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for c in sorted(set(classes.tolist())):
        rows = np.flatnonzero(classes == c)
        keep.append(rows if len(rows) <= max_per_class else rng.choice(rows, max_per_class, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _stats_shard(detect_sigma: float, index: int, paths: list[str]) -> list[dict[str, float]]:
    """An executor task: `image_stats` of each file; all-NaN for an unreadable one (logged)."""
    rows = []
    for path in paths:
        try:
            rows.append(image_stats(read_image(path), detect_sigma))
        except InputError as exc:
            logger.warning("image statistics: skipping %s", exc)
            rows.append(dict.fromkeys(STAT_NAMES, math.nan))
    return rows


def stats_of(paths: Sequence[str], detect_sigma: float, executor: ExecutorParams | None = None) -> pd.DataFrame:
    """`image_stats` of every file, through the executor.

    Returns:
        One row per path (index: the path as given), columns STAT_NAMES; NaN rows for unreadable files.
    """
    rows = map_items(partial(_stats_shard, detect_sigma), [os.path.abspath(p) for p in paths],
                     executor or ExecutorParams(), desc="image statistics", unit="img", disable=None)
    return pd.DataFrame(rows, index=list(paths), columns=list(STAT_NAMES))


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if len(values) else None


def compare(mock: pd.DataFrame, real: pd.DataFrame, classes: Sequence[str],
            names: Sequence[str] = STAT_NAMES) -> dict[str, Any]:
    """Two-sample KS statistic and medians, mock vs real, of every statistic in every class.

    Args:
        mock: `names` columns and `coarse` (class of each row).
        real: the same for the real images.
        classes: the coarse classes compared.
        names: the statistics compared (default: the image statistics).

    Returns:
        {class: {"n_mock", "n_real", stat: {"ks", "p_value", "median_mock", "median_real", "n_mock",
        "n_real"}}} with NaN values dropped per statistic (ks and p_value None with fewer than 2
        values on a side), plus "max_ks": the largest KS distance and "max_ks_at": "<class>.<stat>".
    """
    out: dict[str, Any] = {}
    worst = (-1.0, "")
    for c in classes:
        m, r = mock[mock["coarse"] == c], real[real["coarse"] == c]
        entry: dict[str, Any] = {"n_mock": len(m), "n_real": len(r)}
        for name in names:
            a, b = m[name].dropna().to_numpy(), r[name].dropna().to_numpy()
            ks = ks_2samp(a, b) if min(len(a), len(b)) >= 2 else None
            entry[name] = {"ks": None if ks is None else float(ks.statistic),
                           "p_value": None if ks is None else float(ks.pvalue),
                           "median_mock": _median(a), "median_real": _median(b), "n_mock": len(a), "n_real": len(b)}
            if ks is not None and ks.statistic > worst[0]:
                worst = (float(ks.statistic), f"{c}.{name}")
        out[c] = entry
    return {**out, "max_ks": worst[0] if worst[1] else None, "max_ks_at": worst[1] or None}


def _bins(values: np.ndarray) -> np.ndarray:
    """HIST_BINS bin edges over the HIST_RANGE_PCT percentiles; whole-number edges (+-0.5) for integer data."""
    lo, hi = np.percentile(values, HIST_RANGE_PCT) if len(values) else (0.0, 1.0)
    if len(values) and np.all(values == np.round(values)):
        step = max(1, math.ceil((hi - lo) / HIST_BINS))
        return np.arange(math.floor(lo) - 0.5, math.ceil(hi) + step, step)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, HIST_BINS + 1)


def write_histograms(panels: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, Sequence[str]]],
                     out_dir: str | os.PathLike, names: Sequence[str] = STAT_NAMES) -> list[Path]:
    """One PNG per statistic, `<out_dir>/<stat>.png`: a row of panels per set, one panel per class, mock vs real.

    Args:
        panels: {set name: (mock, real, classes)} as for `compare`.
        out_dir: destination folder (created).
        names: the statistics drawn (default: the image statistics).

    Returns:
        The PNG paths, in `names` order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_cols = max(len(classes) for _, _, classes in panels.values())
    written = []
    for name in names:
        fig = Figure(figsize=(PANEL_INCHES * n_cols, PANEL_INCHES * len(panels) + 0.4), dpi=100)
        axes = fig.subplots(len(panels), n_cols, squeeze=False)
        for row, (set_name, (mock, real, classes)) in enumerate(panels.items()):
            for col in range(n_cols):
                ax = axes[row, col]
                if col >= len(classes):
                    ax.set_axis_off()
                    continue
                a = mock.loc[mock["coarse"] == classes[col], name].dropna().to_numpy()
                b = real.loc[real["coarse"] == classes[col], name].dropna().to_numpy()
                bins = _bins(np.concatenate([a, b]))
                for values, label, colour in ((a, "mock", "tab:blue"), (b, "real", "tab:orange")):
                    if len(values):
                        ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5,
                                color=colour, label=f"{label} ({len(values)})")
                ks = ks_2samp(a, b).statistic if min(len(a), len(b)) >= 2 else float("nan")
                ax.set_title(f"{set_name} {classes[col]}: KS {ks:.2f}", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.legend(fontsize=6)
        fig.suptitle(name, fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, format="png", metadata={"Software": None})
        written.append(path)
    return written
