"""SDSS colour cutouts made from the g, r, i corrected frames (`cutout_method: frames`): Lupton et al. composites."""

from __future__ import annotations

import bz2
import io
import json
import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D, NoOverlapError
from astropy.visualization import make_lupton_rgb
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image
from scipy.ndimage import map_coordinates
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file
from specmorph.remote.files import sha256_of
from specmorph.remote.http import Fetched, RetryPolicy
from specmorph.remote.jobs import Cache, Job, Outcome, run_jobs, utc_now, write_json
from specmorph.remote.options import RemoteOptions
from specmorph.remote.sources import EST_BYTES, SDSS_PIXSCALE, RemoteSources, url_basename

log = logging.getLogger(__name__)

BANDS = ("g", "r", "i")  # composited as blue, green, red
FRAME_SHAPE = (1489, 2048)  # (rows, columns) of an SDSS corrected frame
FIELD_COLUMNS = ("run", "rerun", "camcol", "field", "rowc_r", "colc_r")
JPEG_QUALITY = 95
COMPOSITE_DIR = "sdss/lupton"  # in the cache, apart from the SkyServer JPEGs of `cutout_method: jpeg`
_OK = ("fetched", "cached")


def field_query_url(sources: RemoteSources, ra: float, dec: float) -> str:
    """The SkyServer SQL-search URL listing the detections near (ra, dec) in degrees, with their frames.

    The `cmd` is the one astroquery's SDSS.query_sql would send (comments and newlines removed); astroquery
    only builds it here (no request), the request itself goes through specmorph.remote.http.fetch.
    """
    from astroquery.sdss import SDSS  # ~0.5 s to import: only when frames are asked for

    cmd = SDSS.query_sql(sources.field_sql(ra, dec), data_release=10, get_query_payload=True)["cmd"].strip()
    return sources.sdss_sql_url_template.format(cmd=quote(cmd, safe=""), ra=float(ra), dec=float(dec))


def field_jobs(sources: RemoteSources, califa: pd.DataFrame) -> list[Job]:
    """One SQL search per CALIFA galaxy: the SDSS detections within 6" and the frames they lie on."""
    return [Job("sdss_field", n, field_query_url(sources, ra, dec), f"sdss/fields/{n}.csv", EST_BYTES["sdss_field"])
            for n, ra, dec in zip(califa["name"], califa["ra"], califa["dec"], strict=True)]


def read_fields(path: Path) -> pd.DataFrame:
    """A SkyServer CSV answer ('#Table1', then the header and rows) as a table with FIELD_COLUMNS (maybe empty)."""
    text = Path(path).read_text(errors="replace")
    if "error_message" in text or text.lstrip().lower().startswith(("<!doctype", "<html")):
        raise InputError(f"{path}: the SQL search answered with an error: {text.strip()[:300]!r}")
    table = text.split("#Table")[1 if text.startswith("#Table") else 0]  # the first table of the answer
    lines = table.splitlines()[1 if text.startswith("#Table") else 0:]
    if not any(line.strip() for line in lines):
        return pd.DataFrame(columns=list(FIELD_COLUMNS))
    rows = pd.read_csv(io.StringIO("\n".join(lines)))
    rows.columns = [str(c).strip().lower() for c in rows.columns]
    missing = [c for c in FIELD_COLUMNS if c not in rows.columns]
    if missing:
        raise InputError(f"{path}: SQL answer without the column(s) {', '.join(missing)}; has {list(rows.columns)}")
    return rows


def off_frame_fraction(row: float, col: float, span: float, shape: tuple[int, int] = FRAME_SHAPE) -> float:
    """Fraction of a span×span px box centred on frame pixel (row, col) that lies off a frame of `shape`."""
    def inside(c: float, n: int) -> float:
        return max(0.0, min(c + span / 2, n) - max(c - span / 2, 0.0)) / span
    return 1.0 - inside(row, shape[0]) * inside(col, shape[1])


def best_field(rows: pd.DataFrame, span: float) -> dict[str, int] | None:
    """The frame on which a span-px stamp around the detection lies most completely (then the nearest detection)."""
    if rows.empty:
        return None
    off = [off_frame_fraction(r, c, span) for r, c in zip(rows["rowc_r"], rows["colc_r"], strict=True)]
    dist = rows["distance"].tolist() if "distance" in rows else [0.0] * len(rows)
    best = rows.iloc[min(range(len(rows)), key=lambda i: (round(off[i], 3), dist[i]))]
    return {k: int(best[k]) for k in ("run", "rerun", "camcol", "field")}


def frame_jobs(sources: RemoteSources, field: dict[str, int]) -> list[Job]:
    """The g, r, i frames of one field."""
    run, camcol, fld = field["run"], field["camcol"], field["field"]
    urls = [sources.frame_url(band, **field) for band in BANDS]
    return [Job("frame", f"{band}-{run}-{camcol}-{fld}", url, f"sdss/frames/{field['rerun']}/{run}/{camcol}/"
                f"{url_basename(url, f'frame-{band}-{run:06d}-{camcol}-{fld:04d}.fits.bz2')}", EST_BYTES["frame"])
            for band, url in zip(BANDS, urls, strict=True)]


def frame_fits(path: Path, *, force: bool = False) -> Path:
    """The FITS file of a frame: a `.bz2` download is decompressed beside itself (atomically) when needed."""
    if not path.name.endswith(".bz2"):
        return path
    out = path.with_name(path.name[:-4])
    if force or not out.is_file():
        with atomic_file(out) as tmp, bz2.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    return out


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # RADECSYS and friends in SDSS headers
        return WCS(header)


def check_frame(path: Path) -> None:
    """A corrected frame: intact bzip2 (decompressed now), a 2-D image HDU with a celestial WCS."""
    fits_path = frame_fits(path, force=True)
    try:
        with fits.open(fits_path) as hdul:
            hdu = hdul[0]
            if hdu.header.get("NAXIS") != 2 or min(hdu.shape) < 16:
                raise InputError(f"{path}: not an image frame (NAXIS={hdu.header.get('NAXIS')}, shape {hdu.shape})")
            if not _wcs(hdu.header).has_celestial:
                raise InputError(f"{path}: frame without a celestial WCS (CTYPE1={hdu.header.get('CTYPE1')!r})")
    except BaseException:
        if fits_path != path:
            fits_path.unlink(missing_ok=True)
        raise


CHECKS = {"sdss_field": read_fields, "frame": check_frame}  # on-arrival checks by job kind


def stamp(fits_path: Path, centre: SkyCoord, extent_deg: float, world: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One band: a Cutout2D `extent_deg` wide around `centre`, resampled (bilinear) at the (ra, dec) `world` arrays.

    Returns float32 shaped like `world[0]`, nanomaggies per native (0.396") pixel; NaN off the frame.
    """
    with fits.open(fits_path, memmap=True) as hdul:
        wcs, data = _wcs(hdul[0].header), hdul[0].data
        if data.dtype.kind != "f":
            data = data.astype(np.float32)
        span = int(np.ceil(extent_deg / proj_plane_pixel_scales(wcs.celestial).mean())) + 4  # px
        cut = Cutout2D(data, centre, (span, span), wcs=wcs, mode="partial", fill_value=np.nan)
        x, y = cut.wcs.world_to_pixel_values(*world)
        local = np.array(cut.data, dtype=np.float32)  # a copy: the memory map closes with the file
    return map_coordinates(local, [y, x], order=1, mode="constant", cval=np.nan).astype(np.float32)


def compose(fits_paths: Sequence[Path], ra: float, dec: float, size: int, scale: float, *, stretch: float,
            q: float) -> tuple[np.ndarray, float]:
    """The north-up, east-left colour stamp of a galaxy: make_lupton_rgb(i, r, g, stretch, Q) of its frames.

    Args:
        fits_paths: The g, r, i frames (FITS).
        ra, dec: Stamp centre, deg.
        size, scale: Stamp side (px) and arcsec/px (the frames' own 0.396" by default).
        stretch, q: Lupton et al. (2004) linear stretch (nanomaggies) and asinh softening.

    Returns:
        (size, size, 3) uint8 RGB with row 0 at the north edge, and the fraction of the stamp off the frames
        (filled with 0 before the stretch).
    """
    target = WCS(naxis=2)
    target.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    target.wcs.crval = [ra, dec]
    target.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    target.wcs.cdelt = [-scale / 3600, scale / 3600]  # deg/px; x grows to the west, y to the north
    yy, xx = np.mgrid[0:size, 0:size]
    world = target.pixel_to_world_values(xx, yy)
    extent = size * scale / 3600 * np.sqrt(2)  # deg: the stamp's diagonal, whatever the frame's rotation
    g, r, i = (stamp(p, SkyCoord(ra, dec, unit="deg"), extent, world) for p in fits_paths)
    off = ~(np.isfinite(g) & np.isfinite(r) & np.isfinite(i))
    g, r, i = (np.where(off, 0.0, b) for b in (g, r, i))
    with np.errstate(invalid="ignore", divide="ignore"):  # I = 0 where padded
        rgb = make_lupton_rgb(i, r, g, stretch=stretch, Q=q)  # (size, size, 3) uint8, row 0 south
    return np.ascontiguousarray(rgb[::-1]), float(off.mean())


def _composite(name: str, ra: float, dec: float, frames: list[Outcome], sources: RemoteSources,
               options: RemoteOptions, cache: Cache) -> Outcome:
    """The cutout of one galaxy from its three frame outcomes; re-used when made from the same frames and params."""
    job = Job("cutout", name, " ".join(o.job.url for o in frames), f"{COMPOSITE_DIR}/{name}.jpg", 0)
    bad = [o for o in frames if o.status not in _OK]
    if bad:
        return Outcome(job, "skipped", "; ".join(f"{o.job.name} {o.status}: {o.detail}" for o in bad))
    dest, note = cache.path(job.rel), cache.path(job.rel + ".json")
    recipe = {"frames": [o.fetched.sha256 for o in frames], "ra": float(ra), "dec": float(dec),
              "size": sources.cutout_size, "scale": sources.cutout_scale, "stretch": options.lupton_stretch,
              "q": options.lupton_q}
    made = json.loads(note.read_text()) if note.is_file() and dest.is_file() else {}
    if made.get("recipe") == recipe:
        off = made["off"]
    else:
        try:
            rgb, off = compose([frame_fits(o.fetched.path) for o in frames], ra, dec, sources.cutout_size,
                               sources.cutout_scale, stretch=options.lupton_stretch, q=options.lupton_q)
        except NoOverlapError:
            rgb, off = None, 1.0
    if off > options.frame_max_pad:
        return Outcome(job, "skipped", f"{off:.0%} of the stamp lies off its frames "
                       f"({', '.join(o.job.key for o in frames)}; frame_max_pad {options.frame_max_pad:.0%})")
    detail = f"padded: {off:.1%} of the stamp off the frame, filled with 0" if off > 0 else ""
    if made.get("recipe") == recipe:
        return Outcome(job, "cached", detail, Fetched(job.url, dest, dest.stat().st_size, made["sha256"],
                                                      made["made_at"], False, True))
    note.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(dest) as tmp:  # quality JPEG_QUALITY, no chroma subsampling
        Image.fromarray(rgb, "RGB").save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    fetched = Fetched(job.url, dest, dest.stat().st_size, sha256_of(dest), utc_now(), False, False)
    write_json({"recipe": recipe, "off": off, "sha256": fetched.sha256, "made_at": fetched.fetched_at}, note)
    return Outcome(job, "fetched", detail, fetched)


def _native_span(sources: RemoteSources) -> float:
    """Frame pixels (0.396") a stamp may cover along a frame axis, whatever its rotation."""
    return sources.cutout_size * sources.cutout_scale / SDSS_PIXSCALE * np.sqrt(2)


def frame_cutouts(sources: RemoteSources, options: RemoteOptions, califa: pd.DataFrame, outcomes: Sequence[Outcome],
                  cache: Cache, policy: RetryPolicy, validate) -> list[Outcome]:
    """Picks each galaxy's field from its SQL answer, fetches the g, r, i frames and writes the composites.

    Args:
        sources: URL templates, cutout size and scale.
        options: lupton_stretch, lupton_q, frame_max_pad and workers.
        califa: The selected galaxies (name, ra, dec).
        outcomes: The run so far, with one `sdss_field` outcome per galaxy.
        cache, policy, validate: As for run_jobs (`validate` runs CHECKS["frame"] on frames).

    Returns:
        The frame outcomes, then one `cutout` outcome per galaxy: fetched (made now), cached (made earlier
        from the same frames and params) or skipped with the reason (no detection, frame missing, off the frame).
    """
    queried = {o.job.key: o for o in outcomes if o.job.kind == "sdss_field"}
    fields: dict[str, list[Job]] = {}
    skipped: dict[str, str] = {}
    for name in califa["name"]:
        q = queried.get(name)
        if q is None or q.status not in _OK:
            skipped[name] = f"no SDSS field: the SQL search was {q.status if q else 'not run'}"
            continue
        field = best_field(read_fields(q.fetched.path), _native_span(sources))
        if field is None:
            skipped[name] = "no SDSS detection within 6\" (outside the imaging footprint?)"
            continue
        fields[name] = frame_jobs(sources, field)
    unique = list({j.rel: j for jobs in fields.values() for j in jobs}.values())
    result = run_jobs(unique, cache, policy, validate, options.workers, "frames")
    by_rel = {o.job.rel: o for o in result}
    rows = califa.set_index("name")
    for name in tqdm(califa["name"], desc="composites", unit="galaxy", disable=len(califa) < 20):
        if name in skipped:
            result.append(Outcome(Job("cutout", name, "", f"{COMPOSITE_DIR}/{name}.jpg", 0), "skipped",
                                  skipped[name]))
            continue
        result.append(_composite(name, rows.at[name, "ra"], rows.at[name, "dec"],
                                 [by_rel[j.rel] for j in fields[name]], sources, options, cache))
    if edge := padded(result):
        log.warning("%d composite(s) padded with black past their frame's edge: %s", len(edge),
                    ", ".join(e["key"] for e in edge))
    return result


def padded(outcomes: Sequence[Outcome]) -> list[dict]:
    """The composites that reach past their frame (kept, padded with 0), for the run summary."""
    return [{"key": o.job.key, "detail": o.detail} for o in outcomes
            if o.job.kind == "cutout" and o.status in _OK and o.detail.startswith("padded")]


def planned_frames(sources: RemoteSources, options: RemoteOptions, califa: pd.DataFrame, cache: Cache) -> list[Job]:
    """Dry run (frames only): each galaxy's frames where its SQL answer is cached, else placeholders of EST size."""
    jobs: dict[str, Job] = {}
    for name in califa["name"] if options.cutout_method == "frames" else []:
        answer = f"sdss/fields/{name}.csv"  # read only once validated (in the ledger)
        known = answer in cache.ledger and cache.path(answer).is_file()
        field = best_field(read_fields(cache.path(answer)), _native_span(sources)) if known else None
        planned = frame_jobs(sources, field) if field else [Job(
            "frame", f"{b} of {name}", "(after the SQL search)", f"sdss/frames/pending/{name}-{b}", EST_BYTES["frame"])
            for b in BANDS]
        jobs.update({j.rel: j for j in planned})
    return list(jobs.values())


def estimate_counts(options: RemoteOptions, rows: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Dry-run (kind, objects, bytes each) rows before the tables are cached; with frames, an SQL search and
    three frames in place of each cutout."""
    if options.cutout_method != "frames":
        return rows
    n = sum(count for kind, count, _ in rows if kind == "cutout")
    return [r for r in rows if r[0] != "cutout"] + [("sdss_field", n, EST_BYTES["sdss_field"]),
                                                     ("frame", 3 * n, EST_BYTES["frame"])]
