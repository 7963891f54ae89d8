"""Remote ingest: selects the sample, fetches it into the download cache, lays out data/raw as `source: local` does."""

from __future__ import annotations

import logging
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from specmorph.errors import InputError
from specmorph.io.catalogs import with_survey, write_table
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT, SURVEY_CHOICES, cube_file
from specmorph.io.local import PLAIN_CUBE_SUFFIX, LocalSources, ingest_local
from specmorph.remote import files, frames
from specmorph.remote.http import Fetched, RetryPolicy
from specmorph.remote.jobs import (
    Cache,
    IncompleteDownload,
    Job,
    Outcome,
    link_or_copy,
    raise_failures,
    run_jobs,
    summarise,
    utc_now,
    write_json,
)
from specmorph.remote.options import RemoteOptions
from specmorph.remote.plan import dry_run, estimate_counts
from specmorph.remote.select import (
    check_gz2_columns,
    near,
    read_califa_table,
    read_gz2_positions,
    read_gz2_rows,
    select_califa,
    select_gz2,
)
from specmorph.remote.sources import EST_BYTES, RemoteSources, url_basename
from specmorph.sections import CrossmatchSection

log = logging.getLogger(__name__)

SUMMARY_NAME = "remote_summary.json"
LOCAL_DIR = "local"  # in the cache: the `source: local` inputs built from the downloads
_OK = ("fetched", "cached")


def survey_sources(sources: RemoteSources, survey: str) -> list[RemoteSources]:
    """The sample tables a run reads, one RemoteSources each: eCALIFA's, MaNGA's DRPall (`for_manga`), or both.

    Args:
        sources: The `ingest.remote.sources` params.
        survey: `ingest.survey`: califa, manga or both.
    """
    if survey not in SURVEY_CHOICES:
        raise ValueError(f"survey={survey!r}; expected one of {', '.join(SURVEY_CHOICES)}")
    return {"califa": [sources], "manga": [sources.for_manga()], "both": [sources, sources.for_manga()]}[survey]


def _sample_key(sample: RemoteSources) -> str:
    """The job key of a sample table: `sample` for eCALIFA's (as always), `sample_manga` for MaNGA's DRPall."""
    return "sample" if sample.survey == "califa" else "sample_manga"


def table_jobs(samples: Sequence[RemoteSources]) -> list[Job]:
    """Each survey's sample table, then the GZ2 table (last): fetched first, since the selection reads them."""
    jobs = [Job("califa_table", _sample_key(s), s.califa_table_url,
                f"califa/{url_basename(s.califa_table_url, 'califa_table.csv')}",
                EST_BYTES["drpall" if s.survey == "manga" else "califa_table"], s.califa_table_sha256 or None)
            for s in samples]
    s = samples[0]
    gz2 = Job("gz2_table", "gz2_hart16", s.gz2_table_url, f"gz2/{url_basename(s.gz2_table_url, 'gz2_hart16.csv.gz')}",
              EST_BYTES["gz2_table"], s.gz2_table_sha256 or None)
    return [*jobs, gz2]


def object_jobs(samples: Sequence[RemoteSources], options: RemoteOptions, califa: pd.DataFrame,
                gz2: pd.DataFrame) -> list[Job]:
    """One job per cube (from its survey's archive), SDSS cutout and GZ2 image of the selection, and Galaxy10."""
    by_survey = {s.survey: s for s in samples}
    sources = samples[0]
    jobs = []
    for name, survey in zip(califa["name"], califa["survey"], strict=True):
        url = by_survey[survey].cube_url(name)
        if survey == "manga":
            jobs.append(Job("cube", name, url, f"califa/cubes/{cube_file(name, survey)}", EST_BYTES["manga_cube"]))
            continue
        suffix = CUBE_SUFFIX if url.split("?")[0].endswith(".gz") else PLAIN_CUBE_SUFFIX
        jobs.append(Job("cube", name, url, f"califa/cubes/{name}{suffix}", EST_BYTES["cube"]))
    jobs += [Job("cutout", n, sources.cutout_url(ra, dec), f"sdss/cutouts/{n}.jpg", EST_BYTES["cutout"])
             for n, ra, dec in zip(califa["name"], califa["ra"], califa["dec"], strict=True)
             ] if options.cutout_method == "jpeg" else frames.field_jobs(sources, califa)
    if not sources.gz2_image_dir:
        jobs += [Job("gz2_image", i, sources.gz2_image_url(ra, dec), f"gz2/images/{i}.jpg", EST_BYTES["gz2_image"])
                 for i, ra, dec in zip(gz2["dr7objid"], gz2["ra"], gz2["dec"], strict=True)]
    if options.galaxy10:
        jobs.append(Job("galaxy10", "Galaxy10_DECals", sources.galaxy10_url,
                        f"galaxy10/{url_basename(sources.galaxy10_url, 'Galaxy10_DECals.h5')}",
                        EST_BYTES["galaxy10"], sources.galaxy10_sha256 or None))
    return jobs


def make_validator(samples: Sequence[RemoteSources], gz2_columns: Sequence[str]):
    """The on-arrival check of each kind of file; raises InputError (the file is then quarantined)."""
    def gz2_table(path: Path) -> None:
        if path.name.endswith(".gz"):
            files.check_gzip(path)
        check_gz2_columns(path, gz2_columns)

    formats = {_sample_key(s): s.califa_table_format for s in samples}
    checks = {"cube": files.check_cube, "cutout": files.check_image, "gz2_image": files.check_image,
              "gz2_table": gz2_table, "galaxy10": files.check_galaxy10, **frames.CHECKS}

    def validate(job: Job, path: Path) -> None:
        try:
            if job.kind == "califa_table":
                read_califa_table(path, formats[job.key])
            else:
                checks[job.kind](path)
        except InputError:
            raise
        except (OSError, EOFError, ValueError, zlib.error, pd.errors.ParserError) as err:
            raise InputError(f"{path}: not a valid {job.kind} ({type(err).__name__}: {err})") from err

    return validate


def _select(options: RemoteOptions, tables: Sequence[tuple[RemoteSources, pd.DataFrame]], gz2_pos: pd.DataFrame,
            seed: int, radius_arcsec: float) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[dict]]:
    """The galaxies with cubes (each survey's table selected on its own, `max_galaxies` each) and the GZ2 rows.

    With both surveys, a MaNGA galaxy within `radius_arcsec` of a selected eCALIFA galaxy is the same
    galaxy observed twice: it is left out (eCALIFA's cube kept) before MaNGA's selection, so that no
    galaxy enters the splits twice, and listed in the returned drops with the reason.

    Returns:
        The selected cube galaxies (with `survey`), the GZ2 rows, the mask of GZ2-matched rows, and drops.
    """
    chosen, dropped = [], []
    for sample, table in tables:
        if chosen and len(table):
            twice, _ = near(table, pd.concat(chosen), radius_arcsec)
            reason = f"also observed by eCALIFA (a selected galaxy within {radius_arcsec}\")"
            dropped += [{"kind": "califa", "key": n, "reason": reason} for n in table.loc[twice, "name"]]
            table = table[~twice].reset_index(drop=True)
        chosen.append(select_califa(table, max_galaxies=options.max_galaxies, seed=seed,
                                    hubble_types=options.hubble_types if sample.survey == "califa" else (),
                                    radius_arcsec=radius_arcsec,
                                    gz2=gz2_pos if options.require_gz2_match else None).assign(survey=sample.survey))
    califa = pd.concat(chosen, ignore_index=True)
    rows, matched = select_gz2(gz2_pos, califa, radius_arcsec=radius_arcsec,
                               max_field=options.max_gz2_images, seed=seed)
    return califa, gz2_pos.iloc[rows].reset_index(drop=True), matched, dropped


def _read_tables(samples: Sequence[RemoteSources], paths: Sequence[Path]) -> list[tuple[RemoteSources, pd.DataFrame]]:
    return [(s, read_califa_table(p, s.califa_table_format)) for s, p in zip(samples, paths, strict=True)]


def local_gz2_images(sources: RemoteSources, cache: Cache, ids: Sequence[str], validate) -> list[Outcome]:
    """GZ2 images from the user's unzipped official set, linked into the cache as <dr7objid>.jpg."""
    src_dir = Path(sources.gz2_image_dir).expanduser()
    if not src_dir.is_dir():
        raise InputError(f"{src_dir}: gz2_image_dir not found")
    names = {i: f"{i}.jpg" for i in ids}
    if sources.gz2_mapping_path:
        mapping = pd.read_csv(Path(sources.gz2_mapping_path).expanduser(), dtype=str)
        if not {"objid", "asset_id"} <= set(mapping.columns):
            raise InputError(f"{sources.gz2_mapping_path}: needs the columns objid and asset_id")
        asset = dict(zip(mapping["objid"].str.strip(), mapping["asset_id"].str.strip(), strict=True))
        names = {i: f"{asset.get(i, i)}.jpg" for i in ids}
    outcomes = []
    for i in ids:
        src = src_dir / names[i]
        job = Job("gz2_image", i, src.resolve().as_uri(), f"gz2/images/{i}.jpg", 0)
        if not src.is_file():
            outcomes.append(Outcome(job, "skipped", f"{src}: no such image"))
            continue
        dest = cache.path(job.rel)
        link_or_copy(src, dest)
        try:
            validate(job, dest)
        except InputError as err:
            cache.quarantine(job, str(err))
            outcomes.append(Outcome(job, "quarantined", str(err)))
            continue
        size = dest.stat().st_size
        got = Fetched(job.url, dest, size, files.sha256_of(dest), utc_now(), False, True)
        outcomes.append(Outcome(job, "cached", fetched=got))
    return outcomes


def _fill_redshifts(califa: pd.DataFrame, cubes: dict[str, Path], dropped: list[dict]) -> pd.DataFrame:
    """Redshifts missing from the table (DR3) from each cube's MED_VEL; galaxies without one are dropped."""
    keep = []
    for i, (name, z) in enumerate(zip(califa["name"], califa["redshift"], strict=True)):
        if not np.isfinite(z):
            z = files.cube_redshift(cubes[name])
            if z is None:
                dropped.append({"kind": "califa", "key": name, "reason": "no redshift: not in the table and no "
                                "MED_VEL in the cube header"})
                continue
            califa.loc[i, "redshift"] = z
        keep.append(i)
    return califa.iloc[keep].reset_index(drop=True)


def _galaxy10(options: RemoteOptions, ok: dict, cache: Cache, local: Path, seed: int) -> tuple[Path, bool]:
    """The Galaxy10 file for ingest_local and whether it is the download itself (not a subset or empty)."""
    if not options.galaxy10:
        path = local / "Galaxy10_empty.h5"
        files.write_empty_galaxy10(path)
        log.warning("ingest.remote.galaxy10 is false: data/raw gets a Galaxy10 file with no images")
        return path, False
    got = ok.get(("galaxy10", "Galaxy10_DECals"))
    if got is None:
        raise IncompleteDownload("Galaxy10 was asked for (ingest.remote.galaxy10: true) but did not arrive; "
                                 f"see {cache.root / SUMMARY_NAME}")
    g10 = files.open_galaxy10(got.path)
    n = len(g10.ans)
    g10.close()
    if options.galaxy10_max_images < 0 or options.galaxy10_max_images >= n:
        return got.path, True
    rows = np.sort(np.random.default_rng([seed, 3]).permutation(n)[:options.galaxy10_max_images])
    path = local / f"Galaxy10_subset_{len(rows)}.h5"
    files.write_galaxy10_subset(got.path, path, rows)
    return path, False


def ingest_remote(sources: RemoteSources | Sequence[RemoteSources], options: RemoteOptions, out_dir: Path, *,
                  seed: int = 42, radius_arcsec: float = CrossmatchSection.radius_arcsec, link: str = "hardlink",
                  gz2_columns: Sequence[str] = ()) -> dict:
    """Fetches the selected part of the real surveys into the cache and lays it out in `out_dir`.

    Order: the sample tables and the GZ2 table; the selection; cubes, cutouts, GZ2 images (and Galaxy10)
    with `options.workers` threads, each validated on arrival or quarantined; objects that were not found
    (404) or quarantined are dropped with their galaxy; a download that failed after all retries stops the
    run after the others (a re-run resumes). Then the `source: local` inputs are written under
    `<cache>/local`, ingest_local links them into `out_dir`, and remote_summary.json and MANIFEST.csv are
    written last.

    Args:
        sources: URLs and templates; a list (`survey_sources`) fetches each survey's sample table and cubes,
            the first one's GZ2, cutout and Galaxy10 sources serving all.
        options: Selection, cache and concurrency.
        out_dir: The survey directory (data/raw); replaced only when everything is in place.
        seed: Seed of the random selections.
        radius_arcsec: Cube galaxy-GZ2 match radius of the selection: the crossmatch stage's `radius_arcsec`, so
            that every selected galaxy is matched there.
        link: ingest_local link mode.
        gz2_columns: GZ2 columns later stages need, checked on arrival.

    Returns:
        The summary (or, with `options.dry_run`, the plan; nothing is fetched or written to `out_dir`).
    """
    samples = [sources] if isinstance(sources, RemoteSources) else list(sources)
    sources = samples[0]
    cache = Cache(options.cache_dir)
    validate = make_validator(samples, gz2_columns)
    tables = table_jobs(samples)
    if options.dry_run:
        def objects() -> list[Job]:
            read = _read_tables(samples, [cache.path(t.rel) for t in tables[:-1]])
            califa, gz2 = _select(options, read, read_gz2_positions(cache.path(tables[-1].rel)), seed,
                                  radius_arcsec)[:2]
            return object_jobs(samples, options, califa, gz2) + frames.planned_frames(sources, options, califa, cache)

        return dry_run(cache, tables, objects, lambda: frames.estimate_counts(options, estimate_counts(
            samples, options.max_galaxies, options.max_gz2_images, options.galaxy10)))
    policy = RetryPolicy(tries=options.tries, timeout_s=options.timeout_s)
    outcomes = run_jobs(tables, cache, policy, validate, options.workers, "tables")
    missing = [o for o in outcomes if o.status not in _OK]
    if missing:
        write_json(summarise(outcomes), cache.root / SUMMARY_NAME)
        raise IncompleteDownload("the sample tables are needed before anything else:\n  " + "\n  ".join(
            f"{o.job.name} {o.status}: {o.detail}" for o in missing))
    *sample_tables, gz2_table = (o.fetched.path for o in outcomes)  # table_jobs' order: the GZ2 table last
    califa, gz2, matched, dropped = _select(options, _read_tables(samples, sample_tables),
                                            read_gz2_positions(gz2_table), seed, radius_arcsec)
    outcomes += run_jobs(object_jobs(samples, options, califa, gz2), cache, policy, validate, options.workers,
                         "objects")
    if options.cutout_method == "frames":
        outcomes += frames.frame_cutouts(sources, options, califa, outcomes, cache, policy, validate)
    if sources.gz2_image_dir:
        outcomes += local_gz2_images(sources, cache, gz2["dr7objid"].tolist(), validate)
    ok = {(o.job.kind, o.job.key): o.fetched for o in outcomes if o.status in _OK}
    counts = califa["survey"].value_counts()
    summary = {**summarise(outcomes), "selected": {"n_califa": len(califa), "n_gz2": len(gz2),
                                                   "n_gz2_matched": int(matched.sum()),
                                                   "by_survey": {k: int(counts.get(k, 0)) for k in
                                                                 (s.survey for s in samples)}},
               "padded": frames.padded(outcomes), "options": asdict(options),
               "sources": asdict(sources), "surveys": [s.survey for s in samples], "seed": seed,
               "finished_at": utc_now()}
    write_json(summary, cache.root / SUMMARY_NAME)
    raise_failures(outcomes)

    for name in califa["name"]:
        lost = [k for k in ("cube", "cutout") if (k, name) not in ok]
        if lost:
            dropped.append({"kind": "califa", "key": name, "reason": f"no {' and no '.join(lost)}"})
    lost_names = {d["key"] for d in dropped}
    califa = califa[~califa["name"].isin(lost_names)].reset_index(drop=True)
    califa = _fill_redshifts(califa, {n: ok[("cube", n)].path for n in califa["name"]}, dropped)
    gz2_ids = [i for i in gz2["dr7objid"] if ("gz2_image", i) in ok]
    dropped += [{"kind": "gz2", "key": i, "reason": "no image"} for i in gz2["dr7objid"] if ("gz2_image", i) not in ok]
    if califa.empty:
        raise InputError(f"no galaxy with a cube arrived complete (cube, cutout, redshift); see "
                         f"{cache.root / SUMMARY_NAME}")

    local = cache.path(LOCAL_DIR)
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    write_table(with_survey(califa[["name", "ra", "dec", "redshift", "hubtyp"]], califa["survey"].tolist()),
                local / "morphology.csv")
    cutouts = [ok[("cutout", n)].path for n in califa["name"]]
    write_table(pd.DataFrame({"name": califa["name"], "ra": califa["ra"], "dec": califa["dec"],
                              "file": [Path("..", p.relative_to(cache.root)).as_posix() for p in cutouts]}),
                local / "sdss_index.csv")
    write_table(read_gz2_rows(gz2_table, set(gz2_ids)), local / "gz2_hart16.csv")
    g10_path, g10_is_download = _galaxy10(options, ok, cache, local, seed)
    src = LocalSources(local / "morphology.csv", cache.path("califa/cubes"), local / "sdss_index.csv",
                       local / "gz2_hart16.csv", cache.path("gz2/images"), g10_path)
    cache.path("califa/cubes").mkdir(parents=True, exist_ok=True)
    cache.path("gz2/images").mkdir(parents=True, exist_ok=True)
    placed = ingest_local(src, Path(out_dir), link=link, gz2_columns=gz2_columns)

    summary.update(dropped=dropped, placed=placed, finished_at=utc_now())
    write_json(summary, cache.root / SUMMARY_NAME)
    write_json(summary, Path(out_dir) / SUMMARY_NAME)
    known = {f"{LAYOUT['cube_dir']}/{cube_file(n, v)}": ok[("cube", n)]
             for n, v in zip(califa["name"], califa["survey"], strict=True)}
    known.update({f"{LAYOUT['cutout_dir']}/{n}.jpg": ok[("cutout", n)] for n in califa["name"]})
    known.update({f"{LAYOUT['gz2_image_dir']}/{i}.jpg": ok[("gz2_image", i)] for i in gz2_ids})
    derived = {LAYOUT["morphology_path"]: " ".join(s.califa_table_url for s in samples),
               LAYOUT["gz2_catalog_path"]: sources.gz2_table_url,
               LAYOUT["galaxy10_path"]: sources.galaxy10_url if options.galaxy10 else ""}
    if g10_is_download:
        known[LAYOUT["galaxy10_path"]] = ok[("galaxy10", "Galaxy10_DECals")]
    files.write_manifest(Path(out_dir), known, derived)
    log.info("remote ingest: %s; %d galaxies with cubes (%s), %d GZ2 rows in %s (%d dropped)", summary["totals"],
             len(califa), summary["selected"]["by_survey"], len(gz2_ids), out_dir, len(dropped))
    return summary
