"""How well the deblending isolates real galaxies: hand-labelled masks, and how often real masks change.

The labels (`real_dev_masks.json`, next to this module; made with tools/label_masks.py, which says how)
are target masks a person chose on 40 cutouts of ../shared/data/real_dev. They exist only for that set:
a clone without it gets `{"skipped": "no real set at <path>"}`, never a figure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from specmorph.errors import InputError
from specmorph.executor import ExecutorParams, map_items
from specmorph.imaging.segment import SegmentParams, segment
from specmorph.io.images import read_image

logger = logging.getLogger(__name__)

LABELS = Path(__file__).with_name("real_dev_masks.json")
CONTAMINATION_LIMIT = 0.1  # issue 15: no mask with more than 10% of its area from another source
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def label_mask(entry: dict[str, Any]) -> np.ndarray:
    """(H, W) bool mask of one labelled cutout, filled from its polygons."""
    mask = np.zeros(entry["shape"], np.uint8)
    cv2.fillPoly(mask, [np.asarray(p, np.int32).reshape(-1, 2) for p in entry["polygons"]], 1)
    return mask.astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def _spread(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def check_labels(real_dir: str | Path, sp: SegmentParams, labels: str | Path = LABELS) -> dict[str, Any]:
    """IoU with the hand-labelled masks and foreign share of the mask, without and with deblending.

    Each labelled cutout is segmented at full size (no recentring) with `sp`, once with deblending off
    ("before") and once as `sp` says ("after"). Contamination is the fraction of our mask outside the
    label: the part taken from other sources. Cutouts the labeller called ambiguous are left out of the
    figures and reported with how many of them the segmentation flagged `ambiguous`. `labels` is the
    JSON of the masks (tools/label_masks.py's format; paths relative to `real_dir`).
    """
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        return {"skipped": f"no real set at {real_dir}"}
    labels = Path(labels)
    doc = json.loads(labels.read_text())
    full = replace(sp, recentre=False, out_size=None)
    rows, ambiguous, missing = [], [], []
    for entry in doc["masks"]:
        path = real_dir / entry["path"]
        if not path.is_file():
            missing.append(entry["path"])
            continue
        rgb = read_image(path)
        if tuple(entry["shape"]) != rgb.shape[:2]:
            raise InputError(f"{path}: {rgb.shape[:2]} px, but its label in {labels} is {entry['shape']}")
        after = segment(rgb, full)
        if entry["ambiguous"]:
            ambiguous.append(after.ambiguous)
            continue
        label, before = label_mask(entry), segment(rgb, replace(full, deblend=False)).mask
        rows.append({"iou_before": _iou(before, label), "iou_after": _iou(after.mask, label),
                     "contamination_before": float((before & ~label).sum() / max(before.sum(), 1)),
                     "contamination_after": float((after.mask & ~label).sum() / max(after.mask.sum(), 1)),
                     "flagged_ambiguous": after.ambiguous})
    if not rows:
        return {"skipped": f"none of the labelled cutouts found under {real_dir}"}
    out: dict[str, Any] = {"labels": labels.name, "real_dir": str(real_dir),
                           "n_labelled": len(rows), "n_missing": len(missing)}
    for key in ("iou_before", "iou_after", "contamination_before", "contamination_after"):
        out[key] = _spread([r[key] for r in rows])
    for when in ("before", "after"):
        out[f"n_contaminated_over_{CONTAMINATION_LIMIT:g}_{when}"] = sum(
            r[f"contamination_{when}"] > CONTAMINATION_LIMIT for r in rows)
    out["ambiguous"] = {"labelled_ambiguous": len(ambiguous), "of_them_flagged": int(sum(ambiguous)),
                        "labelled_clear_but_flagged": int(sum(r["flagged_ambiguous"] for r in rows))}
    return out


def _deblend_shard(sp: SegmentParams, index: int, paths: list[str]) -> list[tuple[int, float, bool]]:
    """An executor task: (sources removed, flux removed, ambiguous) of each readable image; unreadable ones skipped."""
    rows = []
    for path in paths:
        try:
            r = segment(read_image(path), sp)
        except InputError as exc:
            logger.warning("deblending check: skipping %s", exc)
            continue
        rows.append((r.n_removed, r.flux_removed, r.ambiguous))
    return rows


def changed_on_real(real_dir: str | Path, sp: SegmentParams, executor: ExecutorParams | None = None) -> dict[str, Any]:
    """How many real cutouts under `real_dir` (every image in its subfolders) deblending changes, with `sp`."""
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        return {"skipped": f"no real set at {real_dir}"}
    paths = sorted(str(p) for p in real_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rows = map_items(partial(_deblend_shard, sp), paths, executor or ExecutorParams(), desc="deblending check",
                     unit="img", disable=None)
    if not rows:
        return {"skipped": f"no readable image under {real_dir}"}
    return {"n_images": len(rows), "changed_fraction": float(np.mean([n > 0 for n, _, _ in rows])),
            "mean_flux_removed": float(np.mean([f for _, f, _ in rows])),
            "ambiguous_fraction": float(np.mean([a for _, _, a in rows]))}
