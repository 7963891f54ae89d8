"""Validates a user's own archive files (eCALIFA, SDSS, GZ2, Galaxy10) and lays them out as a survey directory."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
from astropy.io import fits
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_dir
from specmorph.io.catalogs import read_cutout_index, read_gz2, read_morphology, read_table, with_survey, write_table
from specmorph.io.cubes import wavelength_axis
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT, cube_file
from specmorph.io.manga import check_logcube_header, is_logcube

log = logging.getLogger(__name__)

LINK_MODES = ("hardlink", "copy", "symlink")
PLAIN_CUBE_SUFFIX = ".V500.rscube.fits"  # uncompressed cubes are accepted and gzipped on the way in
_DIR_KEYS = ("cube_dir", "gz2_image_dir")
_MAX_LISTED = 5  # names quoted in an error message
# Cutout files relative to the index's directory: "cutouts".
_CUTOUT_SUBDIR = Path(LAYOUT["cutout_dir"]).relative_to(Path(LAYOUT["cutout_index_path"]).parent).as_posix()


@dataclass(frozen=True)
class LocalSources:
    """A user's files in the real archives' formats (the `ingest.local` params)."""

    morphology_path: str | Path = ""  # CALIFA morphology table: name, ra, dec, redshift, hubtyp (types or DR3 codes)
    cube_dir: str | Path = ""  # eCALIFA cubes <name>.V500.rscube.fits[.gz]
    cutout_index_path: str | Path = ""  # SDSS cutout index: name, ra, dec, file (relative to the index)
    gz2_catalog_path: str | Path = ""  # Galaxy Zoo 2 Hart+16 table
    gz2_image_dir: str | Path = ""  # GZ2 images <dr7objid>.jpg, one per catalogue row
    galaxy10_path: str | Path = ""  # Galaxy10_DECals.h5


@dataclass
class _Plan:
    """What validation found: the parsed tables and every file to place."""

    morph: pd.DataFrame  # read_morphology output
    cubes: dict[str, Path]  # galaxy name -> source cube
    cutouts: pd.DataFrame  # read_cutout_index output (with `path`)
    gz2_ids: list[str]  # dr7objid of every GZ2 row
    n_galaxy10: int


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names[:_MAX_LISTED]) + (" ..." if len(names) > _MAX_LISTED else "")


def find_cube(cube_dir: Path, name: str, survey: str = "califa") -> Path | None:
    """The cube of galaxy `name` in `cube_dir` (`io.layout.cube_file`, gzipped or not), or None."""
    gzipped = cube_dir / cube_file(name, survey)
    for path in (gzipped, gzipped.with_suffix("")):  # x.fits.gz, else x.fits
        if path.is_file():
            return path
    return None


def check_cube_header(path: Path) -> None:
    """Checks, from the headers alone, that `path` is a cube the readers take.

    Args:
        path: A V500 cube (the flux is the primary HDU or, when that is empty, a FLUX extension, with a
            linear wavelength axis 3), or a MaNGA LOGCUBE (FLUX, IVAR, MASK and WAVE extensions).
    """
    try:
        if is_logcube(path):
            check_logcube_header(path)
            return
        header = fits.getheader(path, 0)
        if header.get("NAXIS", 0) == 0:
            header = fits.getheader(path, "FLUX")
    except KeyError as err:
        raise InputError(f"{path}: no data in the primary HDU and no FLUX extension") from err
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise InputError(f"{path}: not a readable FITS file ({err})") from err
    if header.get("NAXIS") != 3:
        raise InputError(f"{path}: NAXIS={header.get('NAXIS')}; expected a cube (NAXIS=3: x, y, wavelength)")
    wavelength_axis(header, int(header["NAXIS3"]), 3, str(path))


def _resolve(src: LocalSources, out_dir: Path) -> dict[str, Path]:
    """The six source paths, expanded; each must be set, exist and lie outside `out_dir` (which is replaced)."""
    paths = {}
    for f in fields(src):
        value = str(getattr(src, f.name)).strip()
        if not value:
            raise InputError(f"local source {f.name} is empty; give the path of the file or directory")
        path = Path(value).expanduser()
        is_dir = f.name in _DIR_KEYS
        if not (path.is_dir() if is_dir else path.is_file()):
            raise InputError(f"{path}: {f.name} not found (expected a {'directory' if is_dir else 'file'})")
        if path.resolve().is_relative_to(out_dir.resolve()):
            raise InputError(f"{path}: {f.name} lies inside {out_dir}, which ingest replaces; move it elsewhere")
        paths[f.name] = path
    return paths


def validate(paths: dict[str, Path], gz2_columns: Sequence[str] = ()) -> _Plan:
    """Checks every product and reports all problems at once.

    Args:
        paths: The resolved LocalSources paths.
        gz2_columns: GZ2 columns later stages need (e.g. `catalog.selection.REQUIRED_COLUMNS`).

    Returns:
        The plan of what to place.
    """
    problems: list[str] = []
    morph = cutouts = None
    cubes: dict[str, Path] = {}
    gz2_ids: list[str] = []
    n_galaxy10 = 0
    try:
        morph = read_morphology(paths["morphology_path"])
    except InputError as err:
        problems.append(str(err))
    if morph is not None:
        cube_dir = paths["cube_dir"]
        found = {n: find_cube(cube_dir, n, s) for n, s in zip(morph["id_str"], morph["survey"], strict=True)}
        missing = [n for n, p in found.items() if p is None]
        if missing:
            problems.append(f"{cube_dir}: no cube for {len(missing)} of {len(found)} galaxies in "
                            f"{paths['morphology_path']} (expected <name>{CUBE_SUFFIX} or <name>{PLAIN_CUBE_SUFFIX}"
                            f", or {cube_file('<plate-ifu>', 'manga')} for survey manga): {', '.join(missing)}")
        cubes = {n: p for n, p in found.items() if p is not None}
        for path in tqdm(cubes.values(), desc="cube headers", unit="cube", disable=len(cubes) < 50):
            try:
                check_cube_header(path)
            except InputError as err:
                problems.append(str(err))
    try:
        cutouts = read_cutout_index(paths["cutout_index_path"])
    except InputError as err:
        problems.append(str(err))
    try:
        gz2_ids = read_gz2(paths["gz2_catalog_path"], columns=list(gz2_columns))["id_str"].tolist()
    except InputError as err:
        problems.append(str(err))
    image_dir = paths["gz2_image_dir"]
    with os.scandir(image_dir) as entries:
        present = {e.name for e in entries}
    no_image = [f"{i}.jpg" for i in gz2_ids if f"{i}.jpg" not in present]
    if no_image:
        problems.append(f"{image_dir}: {len(no_image)} of {len(gz2_ids)} GZ2 rows of {paths['gz2_catalog_path']} "
                        f"have no image <dr7objid>.jpg, e.g. {_listed(no_image)}; every catalogue row needs its "
                        "image: drop the rows without one from the catalogue")
    try:
        g10 = open_galaxy10(paths["galaxy10_path"])
        n_galaxy10 = len(g10.ans)
        g10.close()
    except InputError as err:
        problems.append(str(err))
    if problems:
        raise InputError(f"local sources: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    if morph is not None and cutouts is not None:
        no_cutout = sorted(set(morph["id_str"]) - set(cutouts["id_str"]))
        if no_cutout:
            log.warning("%d CALIFA galaxies have no SDSS cutout in the index: %s", len(no_cutout), _listed(no_cutout))
    return _Plan(morph, cubes, cutouts, gz2_ids, n_galaxy10)


def _place(src: Path, dst: Path, link: str) -> str:
    """Puts `src` at `dst` by `link` mode (a hard link falls back to a copy); returns the method used."""
    if link == "symlink":
        os.symlink(src.resolve(), dst)
        return "symlink"
    if link == "hardlink":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as err:  # another filesystem (EXDEV) or one without hard links
            log.debug("hard link %s -> %s failed (%s); copying", src, dst, err)
    shutil.copy2(src, dst)
    return "copy"


def _gzip(src: Path, dst: Path) -> str:
    """Writes a gzip copy of `src` at `dst` (the cube readers expect `.fits.gz` under that name)."""
    with open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=1) as fout:
        shutil.copyfileobj(fin, fout, length=1 << 22)
    return "gzip"


def _image_suffix(path: Path) -> str:
    """`.jpg` for `a.jpg`, `.fits.gz` for `a.fits.gz`: the suffix to keep when renaming an image."""
    if path.suffix.lower() in (".gz", ".fz", ".bz2") and len(path.suffixes) >= 2:
        return "".join(path.suffixes[-2:])
    return path.suffix


def _materialise(plan: _Plan, paths: dict[str, Path], work: Path, link: str) -> Counter:
    """Writes the standard tree under `work`; returns how many files each method placed."""
    dst = {k: work / v for k, v in LAYOUT.items() if k != "truth_dir"}
    for key in ("cube_dir", "cutout_dir", "gz2_image_dir"):
        dst[key].mkdir(parents=True)
    dst["galaxy10_path"].parent.mkdir(parents=True)
    morph = plan.morph
    write_table(with_survey(pd.DataFrame({"name": morph["id_str"], "ra": morph["ra"], "dec": morph["dec"],
                                          "redshift": morph["redshift"], "hubtyp": morph["hubtyp"]}),
                            morph["survey"]), dst["morphology_path"])
    cut = plan.cutouts
    files = [f"{_CUTOUT_SUBDIR}/{n}{_image_suffix(Path(p))}"
             for n, p in zip(cut["id_str"], cut["path"], strict=True)]
    write_table(pd.DataFrame({"name": cut["id_str"], "ra": cut["ra"], "dec": cut["dec"], "file": files}),
                dst["cutout_index_path"])
    gz2_src = paths["gz2_catalog_path"]
    survey_of = dict(zip(morph["id_str"], morph["survey"], strict=True))
    moves = [(p, dst["cube_dir"] / cube_file(n, survey_of[n])) for n, p in plan.cubes.items()]
    moves += [(Path(p), dst["cutout_index_path"].parent / f) for p, f in zip(cut["path"], files, strict=True)]
    moves += [(paths["gz2_image_dir"] / f"{i}.jpg", dst["gz2_image_dir"] / f"{i}.jpg") for i in plan.gz2_ids]
    moves.append((paths["galaxy10_path"], dst["galaxy10_path"]))
    if gz2_src.name.lower().endswith(".csv"):
        moves.append((gz2_src, dst["gz2_catalog_path"]))
    else:  # Parquet or gzipped CSV: rewritten as the plain CSV the layout names
        write_table(read_table(gz2_src, dtype={"dr7objid": str}), dst["gz2_catalog_path"])
    used: Counter = Counter()
    for src, target in tqdm(moves, desc="ingest local", unit="file"):
        plain_cube = src.name.endswith(".fits") and target.name.endswith(".fits.gz")
        used[_gzip(src, target) if plain_cube else _place(src, target, link)] += 1
    return used


def ingest_local(src: LocalSources, out_dir: Path, link: str = "hardlink",
                 gz2_columns: Sequence[str] = ()) -> dict:
    """Validates a user's archive files and materialises them as the standard survey tree (see LAYOUT).

    Catalogues are rewritten in the standard CSV form (a GZ2 CSV is placed as given); cubes, images and
    the Galaxy10 file are linked or copied. The tree is built in `.<out_dir name>.partial` beside
    `out_dir` and renamed over it at the end, so a failure leaves `out_dir` as it was. No `truth/`.

    Args:
        src: The source files.
        out_dir: The survey directory to (re)write, e.g. data/raw; the sources must lie outside it.
        link: 'hardlink' (a copy where hard links fail, e.g. across filesystems), 'copy' or 'symlink'.
        gz2_columns: GZ2 columns later stages need, checked up front.

    Returns:
        Counts of what was placed (also saved as `manifest.json`).
    """
    if link not in LINK_MODES:
        raise ValueError(f"link={link!r}; expected one of {', '.join(LINK_MODES)}")
    out_dir = Path(out_dir)
    paths = _resolve(src, out_dir)
    plan = validate(paths, gz2_columns)
    with atomic_dir(out_dir) as work:
        used = _materialise(plan, paths, work, link)
        summary = {"n_califa": len(plan.morph), "n_cutouts": len(plan.cutouts), "n_gz2": len(plan.gz2_ids),
                   "n_galaxy10": plan.n_galaxy10}
        manifest = {"source": "local", "link": link, "placed": dict(used),
                    "sources": {k: str(p.resolve()) for k, p in paths.items()}, **summary}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("local sources laid out in %s: %s (files placed: %s)", out_dir, summary, dict(used))
    return summary

