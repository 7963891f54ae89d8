"""The image table: every RGB image with its galaxy, labels, spectra availability and split."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from specmorph.catalog.labels import califa_coarse, map_catalog
from specmorph.catalog.selection import HighConfidence, select_high_confidence
from specmorph.catalog.splits import grouped_split
from specmorph.errors import InputError
from specmorph.taxonomy import CLASSES

log = logging.getLogger(__name__)

# Tables with fewer rows than this check each image file; larger ones list the directory once.
LIST_IMAGE_DIR_FROM_ROWS = 1000

IMAGE_COLUMNS = ["id_str", "galaxy_id", "source", "path", "ra", "dec", "califa_name", "gz2_class",
                 "label", "label_name", "class5", "califa_coarse", "split"]


def galaxy_of_gz2(gz2: pd.DataFrame, matched: pd.DataFrame, duplicates: pd.DataFrame) -> pd.Series:
    """The physical galaxy of each GZ2 row: the CALIFA name when matched (or a duplicate entry of a
    matched CALIFA galaxy), else the GZ2 object itself.

    Args:
        gz2: GZ2 table with `id_str`.
        matched: Crossmatch result with columns `califa` (CALIFA id) and `gz2` (GZ2 id).
        duplicates: Unaccepted pairs within the radius, same id columns.

    Returns:
        Series of galaxy ids aligned with `gz2`.
    """
    owner = dict(zip(matched["gz2"].astype(str).tolist(), matched["califa"].astype(str).tolist(), strict=True))
    for c, g in zip(duplicates["califa"].astype(str).tolist(), duplicates["gz2"].astype(str).tolist(), strict=True):
        owner.setdefault(g, c)  # a shredded or neighbouring entry counts as the same galaxy
    ids = gz2["id_str"].astype(str)
    galaxy = ids.copy()
    owned = np.flatnonzero(ids.isin(list(owner)).to_numpy(dtype=bool))  # (M,) rows, M ≤ matched + duplicates
    galaxy.iloc[owned] = [owner.get(i, i) for i in ids.iloc[owned].tolist()]
    return galaxy


def build_image_table(morph: pd.DataFrame, cutouts: pd.DataFrame, gz2: pd.DataFrame, matched: pd.DataFrame,
                      duplicates: pd.DataFrame, thresholds: HighConfidence, test_frac: float,
                      seed: int) -> tuple[pd.DataFrame, dict]:
    """Joins the catalogues into one row per image and splits the labelled ones by galaxy.

    GZ2 images carry their own `gz2_class` label; an SDSS cutout of a CALIFA galaxy takes the label
    of its matched GZ2 entry. The split is grouped by galaxy, so the GZ2 image and the SDSS cutout
    of one galaxy (and duplicate GZ2 entries) always fall on the same side.

    Args:
        morph: CALIFA morphology table (`io.catalogs.read_morphology`).
        cutouts: SDSS cutout index (`io.catalogs.read_cutout_index`).
        gz2: GZ2 table (`io.catalogs.read_gz2`) with the high-confidence columns.
        matched: CALIFA × GZ2 matches (columns `califa`, `gz2`).
        duplicates: Unaccepted pairs (columns `califa`, `gz2`).
        thresholds: High-confidence vote-fraction thresholds.
        test_frac: Fraction of labelled galaxies in the test split.
        seed: Split seed.

    Returns:
        The image table (IMAGE_COLUMNS) and a report: excluded counts and class counts per split.
    """
    labels, excluded = map_catalog(gz2)
    class5 = select_high_confidence(gz2, thresholds)
    galaxy = galaxy_of_gz2(gz2, matched, duplicates)
    coarse = {n: califa_coarse(t if t is not None else "U") for n, t in zip(morph["id_str"], morph["hubtyp"],
                                                                          strict=True)}
    gz2_rows = pd.DataFrame({
        "id_str": gz2["id_str"].astype(str), "galaxy_id": galaxy, "source": "gz2", "path": gz2["path"],
        "ra": gz2["ra"], "dec": gz2["dec"],
        "califa_name": galaxy.where(galaxy.isin(coarse.keys()), ""), "gz2_class": gz2["gz2_class"],
        "label": labels.to_numpy(), "class5": class5.fillna("").to_numpy()})
    by_califa = dict(zip(matched["califa"].astype(str), matched["gz2"].astype(str), strict=True))
    gz2_by_id = gz2_rows.set_index("id_str")
    sdss = cutouts[["id_str", "ra", "dec", "path"]].copy()
    sdss["galaxy_id"] = sdss["id_str"].astype(str)
    sdss["id_str"] = "sdss_" + sdss["galaxy_id"]
    sdss["source"] = "sdss"
    sdss["califa_name"] = sdss["galaxy_id"].where(sdss["galaxy_id"].isin(coarse.keys()), "")
    partner = sdss["galaxy_id"].map(by_califa)
    sdss["gz2_class"] = partner.map(gz2_by_id["gz2_class"]).fillna("")
    sdss["label"] = partner.map(gz2_by_id["label"]).fillna(-1).astype(int)
    sdss["class5"] = partner.map(gz2_by_id["class5"]).fillna("")
    table = pd.concat([gz2_rows, sdss], ignore_index=True)
    table["label_name"] = [CLASSES[i] if i >= 0 else "" for i in table["label"]]
    table["califa_coarse"] = table["califa_name"].map(coarse).fillna("")
    table["split"] = "unlabelled"
    lab = np.flatnonzero(table["label"].to_numpy() >= 0)
    if lab.size == 0:
        raise InputError("no GZ2 object has a gz2_class that maps to the 8-class taxonomy")
    train_idx, test_idx = grouped_split(table["label"].to_numpy()[lab], table["galaxy_id"].to_numpy()[lab],
                                        test_frac, seed, class_names=CLASSES)
    table.loc[lab[train_idx], "split"] = "train"
    table.loc[lab[test_idx], "split"] = "test"
    counts = {split: {name: int(((table["split"] == split) & (table["label_name"] == name)).sum())
                      for name in CLASSES} for split in ("train", "test")}
    class5_counts = {split: table.loc[(table["split"] == split) & (table["source"] == "gz2"), "class5"]
                     .replace("", "none").value_counts().to_dict() for split in ("train", "test")}
    report = {"n_images": len(table), "n_labelled": int(lab.size), "excluded": excluded,
              "n_galaxies_labelled": int(table.loc[lab, "galaxy_id"].nunique()),
              "class_counts": counts, "class5_counts": class5_counts,
              "cube_and_label": cube_and_label(table, dict(zip(morph["id_str"], morph["survey"], strict=True)))}
    return table[IMAGE_COLUMNS], report


def cube_and_label(table: pd.DataFrame, survey_of: dict[str, str]) -> dict:
    """Galaxies that have both a cube and an 8-class label, per survey and class, and per split.

    Args:
        table: The image table (`califa_name` non-empty for a galaxy with a cube, `label` >= 0 when labelled).
        survey_of: Each cube galaxy's survey (`read_morphology`'s `survey`).

    Returns:
        {"galaxies": n, "by_split": {train, test: n}, "by_survey": {survey: {"galaxies": n, class: n ...}}}.
    """
    rows = table[(table["califa_name"] != "") & (table["label"] >= 0)].drop_duplicates("galaxy_id")
    surveys = rows["califa_name"].map(survey_of)
    by_survey = {}
    for survey in sorted(set(surveys)):
        names = rows.loc[surveys == survey, "label_name"]
        by_survey[survey] = {"galaxies": len(names), **{c: int((names == c).sum()) for c in CLASSES}}
    return {"galaxies": len(rows), "by_split": {s: int((rows["split"] == s).sum()) for s in ("train", "test")},
            "by_survey": by_survey}


def _files_in(directory: Path) -> set[str] | None:
    """Names of the regular files (or links to them) in a directory, from one listing; None if it can't be listed."""
    try:
        with os.scandir(directory) as entries:
            return {e.name for e in entries if _is_file(e)}
    except OSError:
        return None


def _is_file(entry: os.DirEntry) -> bool:
    """`Path.is_file` of a directory entry, from the listing's cached type where it can."""
    try:
        return entry.is_file()
    except OSError:
        return Path(entry.path).is_file()


def attach_gz2_images(gz2: pd.DataFrame, image_dir: str | Path) -> pd.DataFrame:
    """Adds `path`, the Kaggle-style image `<dr7objid>.jpg` of each GZ2 row, failing on missing ones.

    For a large table the directory is listed once instead of asking for each file.

    Args:
        gz2: GZ2 table with `id_str`.
        image_dir: Directory of the GZ2 images.

    Returns:
        A copy of `gz2` with `path`.
    """
    image_dir = Path(image_dir)
    names = [f"{i}.jpg" for i in gz2["id_str"].tolist()]  # tolist: one conversion, not one per row
    prefix = str(image_dir / "_")[:-1]  # "<dir>/", or "" for "."
    files = _files_in(image_dir) if len(names) >= LIST_IMAGE_DIR_FROM_ROWS else None
    sep, altsep = os.sep, os.altsep or os.sep
    paths, missing = [], []
    for name in names:
        if files is None or sep in name or altsep in name:  # not a plain name of the listing
            path = image_dir / name
            paths.append(str(path))
            if not path.is_file():
                missing.append(path.name)
        else:
            paths.append(prefix + name)
            if name not in files:
                missing.append(name)
    if missing:
        raise InputError(f"{image_dir}: {len(missing)} GZ2 image(s) missing, e.g. {', '.join(missing[:5])}")
    out = gz2.copy()
    out["path"] = paths
    return out
