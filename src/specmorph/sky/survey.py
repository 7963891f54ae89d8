"""Writes a whole mock survey to disk in the real archives' formats, one galaxy at a time."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from specmorph.io.atomic import atomic_dir, atomic_file
from specmorph.io.catalogs import with_survey, write_table
from specmorph.io.layout import CUBE_SUFFIX, DRPALL_PATH, LAYOUT, SURVEY_CHOICES, cube_file
from specmorph.params import ParamsError
from specmorph.sky import catalogs, cube, manga, observe, votes
from specmorph.sky.render import half_light
from specmorph.sky.samples import Gz2Entry, califa_sample, galaxy10_sample, gz2_sample
from specmorph.sky.truth import GalaxyTruth

log = logging.getLogger(__name__)

SDSS_PIXSCALE = 0.396  # arcsec/px, SDSS imaging
DECALS_PIXSCALE = 0.262  # arcsec/px, DECaLS (Galaxy10 DECaLS images)
# GZ2 cutouts (424 px) are scaled to each galaxy's size: arcsec/px per arcsec of the true half-light radius.
GZ2_R50_SCALE = 0.030
GZ2_MIN_PIXSCALE = 0.1  # arcsec/px at 424 px: the finest scale, for the smallest galaxies
GALAXY10_SIZE = 256  # px, fixed by the Galaxy10 DECaLS format


@dataclass(frozen=True)
class SkyConfig:
    """Size and shape of a mock survey (the `sky` params of one profile)."""

    seed: int = 42
    n_califa: int = 400
    gz2_footprint_fraction: float = 0.26  # real: ~231 of ~900 eCALIFA galaxies are in GZ2
    n_gz2_field: int = 2400
    n_galaxy10: int = 800
    cutout_size: int = 424  # px, SDSS cutouts of CALIFA galaxies and GZ2 images
    cube_n_wave: int = 1877  # channels from 3749 Å in 2 Å steps
    cube_nx: int = 36  # spaxels (1 arcsec)
    cube_ny: int = 36
    workers: int = 2
    # Positive control (issue 16): 0 = the cubes follow the real sample; > 0 = a ripple across each
    # cube's spectra names the galaxy's class, which the images do not show (`cube.class_tag`).
    spectral_information: float = 0.0
    # Whose cubes (`ingest.survey`): califa (n_califa eCALIFA cubes), manga (n_manga MaNGA LOGCUBEs and a
    # DRPall table) or both. MaNGA cubes are built on manga_spaxels x manga_spaxels 1″ spaxels (0.5″ in
    # the file), which crops the larger bundles: a full 127-fibre cube would be ~5x the disk and time.
    survey: str = "califa"
    n_manga: int = 0
    manga_spaxels: int = 16

    def __post_init__(self) -> None:
        if self.survey not in SURVEY_CHOICES:
            raise ParamsError(f"params.yaml: ingest.survey = {self.survey!r}; expected {' | '.join(SURVEY_CHOICES)}")
        if self.survey != "califa" and self.n_manga < 1:
            raise ParamsError(f"params.yaml: ingest.survey = {self.survey} needs sky.<profile>.n_manga >= 1")
        if not 0.0 <= self.spectral_information <= 1.0:
            raise ParamsError("params.yaml: sky.spectral_information must be in [0, 1], "
                              f"got {self.spectral_information}")


def _rng(seed: int, kind: int, index: int) -> np.random.Generator:
    """A generator for one product of one galaxy, independent of processing order."""
    return np.random.default_rng([seed, kind, index])


def gz2_pixscale(g: GalaxyTruth, size: int) -> float:
    """GZ2 image scale (arcsec/px) at `size` px: Galaxy Zoo scaled each cutout to the galaxy's petroR90.

    The factor is set so that mock galaxies span as many pixels as in the real Kaggle GZ2 cutouts
    (about 110-140 px across at 424 px, measured on ../shared/data/sdss_examples).
    """
    r50 = half_light(g)
    return max(GZ2_R50_SCALE * r50, GZ2_MIN_PIXSCALE) * 424 / size


def _render_task(task: tuple) -> np.ndarray | int:
    """Renders one product in a worker; writes files itself, returns Galaxy10 images to the caller."""
    kind, g, seed, index, path, cfg = task
    rng = _rng(seed, kind, index)
    if kind == 0:  # eCALIFA cube
        flux, error, badpix = cube.build_cube(g, cfg.cube_n_wave, cfg.cube_nx, cfg.cube_ny, rng=rng,
                                              spectral_information=cfg.spectral_information)
        cube.write_cube(path, g, flux, error, badpix)
        return 0
    if kind == 4:  # MaNGA LOGCUBE, built as an eCALIFA cube and re-sampled into MaNGA's format
        flux, error, badpix = cube.build_cube(g.truth, cfg.cube_n_wave, cfg.manga_spaxels, cfg.manga_spaxels,
                                              rng=rng, spectral_information=cfg.spectral_information,
                                              bad_windows=())
        manga.write_logcube(path, g.truth, manga.logcube_from_califa(flux, error, badpix, g.bundle),
                            g.truth.id_str, g.mangaid)
        return 0
    if kind == 3:  # Galaxy10 DECaLS image
        return observe.render_cutout(g, GALAXY10_SIZE, DECALS_PIXSCALE, rng=rng)
    scale = SDSS_PIXSCALE * 424 / cfg.cutout_size if kind == 1 else gz2_pixscale(g, cfg.cutout_size)
    _write_bytes(path, observe.encode_jpeg(observe.render_cutout(g, cfg.cutout_size, scale, rng=rng)))
    return 0


def _write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through `atomic_file`."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def _run(tasks: list[tuple], workers: int, desc: str) -> Iterator:
    """Runs render tasks in order, in `workers` processes, with a progress bar."""
    if workers <= 1:
        yield from tqdm(map(_render_task, tasks), total=len(tasks), desc=desc, unit="gal")
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from tqdm(pool.map(_render_task, tasks, chunksize=4), total=len(tasks), desc=desc, unit="gal")


def generate_survey(out_dir: Path, cfg: SkyConfig) -> dict:
    """Writes the whole mock survey under `out_dir`, replacing it only once everything is written.

    Args:
        out_dir: The survey directory (e.g. data/raw); see LAYOUT for what goes where.
        cfg: Survey size and shape.

    Returns:
        Counts of what was written (also saved as `manifest.json`).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as work:
        paths = {k: work / v for k, v in LAYOUT.items()} | {"drpall_path": work / DRPALL_PATH}
        for key in ("cube_dir", "cutout_dir", "gz2_image_dir", "truth_dir"):
            paths[key].mkdir(parents=True)
        for key in ("morphology_path", "cutout_index_path", "gz2_catalog_path", "galaxy10_path"):
            paths[key].parent.mkdir(parents=True, exist_ok=True)
        summary = _write_all(paths, cfg)
        config = asdict(cfg)
        if cfg.survey == "califa":  # an eCALIFA-only survey's manifest is what it was before MaNGA existed
            config = {k: v for k, v in config.items() if k not in ("survey", "n_manga", "manga_spaxels")}
        (work / "manifest.json").write_text(json.dumps({"config": config, **summary}, indent=2))
    log.info("mock survey written to %s: %s", out_dir, summary)
    return summary


def _write_all(paths: dict[str, Path], cfg: SkyConfig) -> dict:
    pop_rng = np.random.default_rng([cfg.seed, 99])
    califa = califa_sample(pop_rng, cfg.n_califa)
    gz2 = gz2_sample(pop_rng, califa, cfg.n_gz2_field, cfg.gz2_footprint_fraction)
    g10 = galaxy10_sample(pop_rng, cfg.n_galaxy10, gz2)

    if cfg.survey == "manga":
        # No eCALIFA galaxy; the MaNGA galaxies (GZ2 galaxies themselves) take the place of as many field
        # galaxies, so the GZ2 catalogue keeps its eCALIFA size and training costs what it costs there.
        # The field is drawn i.i.d., so its first galaxies are a random subset of it.
        califa, gz2 = [], [e for e in gz2 if not e.califa_name][:max(len(gz2) - cfg.n_manga, 0)]
    mangas = _write_manga(paths, cfg, {e.dr7objid for e in gz2})
    gz2 = gz2 + mangas[1]
    ifs = califa + [m.truth for m in mangas[0]]  # every galaxy with a cube

    write_table(with_survey(catalogs.morphology_table(ifs), ["califa"] * len(califa) + ["manga"] * len(mangas[0])),
                paths["morphology_path"])
    cube_tasks = [(0, g, cfg.seed, i, paths["cube_dir"] / f"{g.id_str}{CUBE_SUFFIX}", cfg)
                  for i, g in enumerate(califa)]
    for _ in _run(cube_tasks, cfg.workers, "eCALIFA cubes"):
        pass
    cutout_tasks = [(1, g, cfg.seed, i, paths["cutout_dir"] / f"{g.id_str}.jpg", cfg)
                    for i, g in enumerate(ifs)]
    for _ in _run(cutout_tasks, cfg.workers, "SDSS cutouts"):
        pass
    index = [{"name": g.id_str, "ra": g.ra, "dec": g.dec, "file": f"cutouts/{g.id_str}.jpg"} for g in ifs]
    write_table(catalogs.cutout_index(index), paths["cutout_index_path"])

    vote_rng = np.random.default_rng([cfg.seed, 98])
    rows = [{"dr7objid": e.dr7objid, "ra": e.truth.ra, "dec": e.truth.dec, **votes.draw_votes(e.truth, vote_rng)}
            for e in gz2]
    write_table(catalogs.gz2_table(rows), paths["gz2_catalog_path"])
    gz2_tasks = [(2, e.truth, cfg.seed, i, paths["gz2_image_dir"] / f"{e.dr7objid}.jpg", cfg)
                 for i, e in enumerate(gz2)]
    for _ in _run(gz2_tasks, cfg.workers, "GZ2 images"):
        pass

    g10_tasks = [(3, g, cfg.seed, i, None, cfg) for i, g in enumerate(g10)]
    with catalogs.Galaxy10Writer(paths["galaxy10_path"], len(g10)) as writer:
        for i, image in enumerate(_run(g10_tasks, cfg.workers, "Galaxy10 images")):
            g = g10[i]
            writer.write(i, image, g.galaxy10, g.ra, g.dec, g.redshift)

    _write_truth(paths["truth_dir"], ifs, gz2, g10)
    summary = {"n_califa": len(califa), "n_gz2": len(gz2), "n_gz2_califa": sum(bool(e.califa_name) for e in gz2),
               "n_galaxy10": len(g10)}
    return summary | ({"n_manga": len(mangas[0])} if mangas[0] else {})


def _write_manga(paths: dict[str, Path], cfg: SkyConfig, taken: set[int]
                 ) -> tuple[list[manga.MangaGalaxy], list[Gz2Entry]]:
    """The MaNGA sample (survey manga or both): its DRPall table and LOGCUBEs, and its GZ2 rows.

    Drawn from its own random stream, so the eCALIFA, GZ2 field and Galaxy10 samples are the same with
    or without it. Returns nothing for survey califa.
    """
    if cfg.survey == "califa":
        return [], []
    rng = np.random.default_rng([cfg.seed, 97])
    sample = manga.manga_sample(rng, cfg.n_manga, cfg.gz2_footprint_fraction)
    paths["drpall_path"].parent.mkdir(parents=True, exist_ok=True)
    manga.write_drpall(paths["drpall_path"], manga.drpall_rows(rng, sample))
    tasks = [(4, m, cfg.seed, i, paths["cube_dir"] / cube_file(m.truth.id_str, "manga"), cfg)
             for i, m in enumerate(sample)]
    for _ in _run(tasks, cfg.workers, "MaNGA cubes"):
        pass
    return sample, manga.gz2_entries(rng, sample, taken)


def _write_truth(truth_dir: Path, califa: list[GalaxyTruth], gz2: list[Gz2Entry],
                 g10: list[GalaxyTruth]) -> None:
    """Mock-only ground truth, for tests and for judging the pipeline against what is known."""
    write_table(pd.DataFrame([g.to_row() for g in califa]), truth_dir / "califa.csv")
    gz2_rows = [{"dr7objid": e.dr7objid, "galaxy_id": e.galaxy_id, "califa_name": e.califa_name,
                 "shred": e.shred, **e.truth.to_row()} for e in gz2]
    write_table(pd.DataFrame(gz2_rows), truth_dir / "gz2.csv")
    g10_rows = [{"index": i, **g.to_row()} for i, g in enumerate(g10)]
    write_table(pd.DataFrame(g10_rows), truth_dir / "galaxy10.csv")
