"""The realism report: shipped checkpoints scored on real labelled image sets, and mock-vs-real image statistics."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from specmorph.errors import InputError
from specmorph.evaluation.plots import write_confusion_csv
from specmorph.executor import ExecutorParams
from specmorph.io.atomic import atomic_dir
from specmorph.params import ParamsError, build
from specmorph.realism.compare import compare, sample_per_class, stats_of, write_histograms
from specmorph.realism.sim_to_real import SCHEMES, THREE_CLASS, coarse_of_labels, score_family
from specmorph.realism.spectra import spectra_section

logger = logging.getLogger(__name__)

NOTES = {
    "scores": "balanced_accuracy = mean per-class recall (evaluation.metrics), the headline figure (the real sets are "
              "unbalanced); accuracy and macro_f1 beside it; mean/std (ddof=1) over the training seeds. Only "
              "classified rows are scored: n_flagged images (imaging.quality flags) and n_unreadable files are "
              "left out and counted.",
    "confusion_matrix": "rows true, columns predicted, in `classes` order, summed over the seeds",
    "image_statistics": "two-sample KS statistic mock vs real per coarse class, medians of both; a seeded "
                        "subsample of at most max_images per set and class; concentration = R90/R50",
    "spectra": "mock CALIFA galaxies (the truth their cubes were built from) against eCALIFA's Pipe3D values, "
               "per Hubble-type group (E0-E7, S0, S0a-Sdm): KS per quantity; separability = balanced accuracy "
               "of a random forest on the four quantities, 5 stratified folds, mean/std over the seeds",
}


@dataclass(frozen=True)
class RealSet:
    """One real labelled image set (params.yaml `realism.real_sets.<name>`).

    Attributes:
        image_dir: folder of the images.
        labels_path: CSV with one row per image.
        id_column: column naming each image (`file_pattern`'s {id}).
        label_column: column of the set's own label values.
        file_pattern: image file name inside image_dir, e.g. "{id}.jpeg".
        scheme: coarse scheme of `classes` (a key of SCHEMES).
        classes: {label value (as written in the CSV): coarse class of the scheme, or None to exclude (counted)}.
    """

    image_dir: str = ""
    labels_path: str = ""
    id_column: str = ""
    label_column: str = ""
    file_pattern: str = "{id}.jpg"
    scheme: str = THREE_CLASS
    classes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RealismParams:
    """The `realism` params section; `real_sets` is checked by `realism_params` into RealSet objects."""

    max_images: int = 300  # per set and coarse class, a seeded subsample for the image statistics
    batch_size: int = 64  # images per forward pass
    detect_sigma: float = 5.0  # image statistics: detection threshold in blurred sky-noise units
    mock_sources: tuple = ("gz2",)  # images.csv `source` values whose images stand for the mock
    califa_table: str = "../shared/data/califa/ecalifa_global.csv"  # real spectral quantities (eCALIFA ECSV)
    real_sets: dict = field(default_factory=dict)


def realism_params(section: Mapping[str, Any]) -> tuple[RealismParams, dict[str, RealSet]]:
    """Parses the `realism` section, failing by key name on unknown keys, wrong types or bad values.

    Returns:
        (the section, {set name: RealSet}).
    """
    p = build(RealismParams, dict(section), "realism")
    if p.max_images < 1 or p.batch_size < 1:
        raise ParamsError("params.yaml: realism.max_images and realism.batch_size must be >= 1")
    if not all(isinstance(s, str) for s in p.mock_sources):
        raise ParamsError(f"params.yaml: realism.mock_sources = {list(p.mock_sources)!r} should be names (gz2, sdss)")
    sets = {}
    for name, values in p.real_sets.items():
        where = f"realism.real_sets.{name}"
        if not isinstance(values, Mapping):
            raise ParamsError(f"params.yaml: {where} should be a mapping")
        rs = build(RealSet, dict(values), where)
        for key in ("image_dir", "labels_path", "id_column", "label_column"):
            if not getattr(rs, key).strip():
                raise ParamsError(f"params.yaml: {where}.{key} is empty")
        if "{id}" not in rs.file_pattern:
            raise ParamsError(f"params.yaml: {where}.file_pattern = {rs.file_pattern!r} has no {{id}}")
        if rs.scheme not in SCHEMES:
            raise ParamsError(f"params.yaml: {where}.scheme = {rs.scheme!r}; expected one of {', '.join(SCHEMES)}")
        bad = {k: v for k, v in rs.classes.items() if v is not None and v not in SCHEMES[rs.scheme]}
        if bad or not rs.classes:
            raise ParamsError(f"params.yaml: {where}.classes must map label values to "
                              f"{' | '.join(SCHEMES[rs.scheme])} or null; got {bad or 'nothing'}")
        sets[str(name)] = replace(rs, classes={str(k): v for k, v in rs.classes.items()})  # CSV values are str
    return p, sets


@dataclass
class RealLabels:
    """A real set's images and coarse classes, after excluding the label values mapped to null."""

    paths: list[Path]  # (N,) image files
    ids: list[str]  # (N,)
    coarse: np.ndarray  # (N,) coarse class names
    excluded: dict[str, int]  # {label value: rows left out}


def skip_reason(rs: RealSet) -> str | None:
    """`"no real set at <path>"` when the set's folder or labels file is absent, else None."""
    for path in (rs.image_dir, rs.labels_path):
        if not os.path.exists(path):
            return f"no real set at {path}"
    return None


def load_real_set(rs: RealSet) -> RealLabels:
    """Reads the labels CSV of a set and maps each row to its image file and coarse class.

    Raises:
        InputError: missing columns, duplicate ids, or label values the mapping does not name (listed).
    """
    df = pd.read_csv(rs.labels_path, dtype=str, keep_default_na=False)
    for col in (rs.id_column, rs.label_column):
        if col not in df.columns:
            raise InputError(f"{rs.labels_path}: no column {col!r}; found {list(df.columns)}")
    unknown = sorted(set(df[rs.label_column]) - set(rs.classes))
    if unknown:
        raise InputError(f"{rs.labels_path}: label values {unknown} are not in the set's `classes` mapping")
    dup = df[rs.id_column][df[rs.id_column].duplicated()].tolist()
    if dup:
        raise InputError(f"{rs.labels_path}: duplicate {rs.id_column} {dup[:5]}")
    coarse = df[rs.label_column].map(rs.classes)
    keep = coarse.notna().to_numpy()
    ids = df.loc[keep, rs.id_column].tolist()
    return RealLabels(paths=[Path(rs.image_dir) / rs.file_pattern.format(id=i) for i in ids], ids=ids,
                      coarse=coarse[keep].to_numpy(dtype=str),
                      excluded=dict(Counter(df.loc[~keep, rs.label_column].tolist())))




def realism_report(real_sets: Mapping[str, RealSet], mock: pd.DataFrame, models_dir: str | Path,
                   families: Mapping[str, str], seeds: list[int], p: RealismParams, seed: int,
                   plot_dir: str | Path, executor: ExecutorParams | None = None, truth_dir: str | Path = "",
                   tta: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores every checkpoint family on every real set present and compares the mock with real data.

    A set whose folder or labels file is absent gets {"skipped": "no real set at <path>"}, nothing else.
    Plots (rebuilt whole, through a temporary folder): `<plot_dir>/confusion/<set>_<role>.csv` (one
    row per scored image and seed, DVC's confusion template), `<plot_dir>/histograms/<stat>.png` and
    `<plot_dir>/spectra/<quantity>.png` (`spectra.spectra_section`).

    Args:
        real_sets: {set name: RealSet}.
        mock: mock images, columns path and label (index into taxonomy.CLASSES).
        models_dir: checkpoints `<name>_seed<k>.pt`.
        families: {role: checkpoint name}, e.g. {"rgb_only": "rgb_only", "guided": "gated"}.
        seeds: training seeds.
        p: the realism params.
        seed: seed of the statistics' subsamples.
        plot_dir: plot folder (replaced).
        executor: where prediction and statistics shards run.
        truth_dir: the mock truth tables (the spectral comparison needs `califa.csv`).
        tta: classify each real image on the mean over its 8 orientations (`predict.predict_paths`).

    Returns:
        ({set name: report}, the spectral comparison), JSON-ready.
    """
    with atomic_dir(plot_dir) as work:
        for sub in ("confusion", "histograms", "spectra"):
            (work / sub).mkdir(parents=True)
        out: dict[str, Any] = {}
        loaded: dict[str, RealLabels] = {}
        for name, rs in real_sets.items():
            reason = skip_reason(rs)
            if reason:
                logger.warning("realism: %s skipped: %s", name, reason)
                out[name] = {"skipped": reason}
                continue
            real = loaded[name] = load_real_set(rs)
            classes = list(SCHEMES[rs.scheme])
            entry: dict[str, Any] = {"image_dir": rs.image_dir, "scheme": rs.scheme, "classes": classes,
                                     "n_images": len(real.paths), "excluded": real.excluded,
                                     "class_counts": {c: int((real.coarse == c).sum()) for c in classes},
                                     "chance_balanced_accuracy": 1.0 / len(classes)}
            for role, checkpoint in families.items():
                report, y_true, y_pred = score_family(models_dir, checkpoint, seeds, real.paths, real.ids, real.coarse,
                                                      rs.scheme, p.batch_size, executor, tta)
                entry[role] = {"checkpoint": checkpoint, **report}
                write_confusion_csv(y_true, y_pred, classes, work / "confusion" / f"{name}_{role}.csv")
            out[name] = entry
        picks = {}
        for name, real in loaded.items():
            mock_coarse = coarse_of_labels(mock["label"].to_numpy(), real_sets[name].scheme)
            m, r = sample_per_class(mock_coarse, p.max_images, seed), sample_per_class(real.coarse, p.max_images, seed)
            picks[name] = ([str(mock["path"].iloc[i]) for i in m], mock_coarse[m], [str(real.paths[i]) for i in r],
                           real.coarse[r])
        unique = sorted({path for mp, _, rp, _ in picks.values() for path in mp + rp})
        stats = stats_of(unique, p.detect_sigma, executor) if unique else None
        panels = {}
        for name, (mock_paths, mock_coarse, real_paths, real_coarse) in picks.items():
            m, r = stats.loc[mock_paths].assign(coarse=mock_coarse), stats.loc[real_paths].assign(coarse=real_coarse)
            classes = list(SCHEMES[real_sets[name].scheme])
            out[name]["image_statistics"] = compare(m, r, classes)
            panels[name] = (m, r, classes)
        if panels:
            write_histograms(panels, work / "histograms")
        spectra = spectra_section(truth_dir, p.califa_table, seeds, work / "spectra")
        if "skipped" in spectra:
            logger.warning("realism: spectra skipped: %s", spectra["skipped"])
    return out, spectra
