"""`cutout_method: frames`: SDSS g, r, i frames found by an SQL search, fetched and composited (Lupton et al. 2004)."""

import bz2
import io
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import fake_archive as fake  # tests/remote, on pytest's pythonpath
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from specmorph.errors import InputError
from specmorph.io.catalogs import read_cutout_index, read_morphology
from specmorph.io.images import read_image
from specmorph.io.layout import LAYOUT
from specmorph.remote import frames
from specmorph.remote.files import MANIFEST_NAME
from specmorph.remote.http import RetryPolicy, fetch
from specmorph.remote.jobs import Cache, run_jobs
from specmorph.remote.sources import SDSS_DR10_FRAME_URL, SDSS_DR10_SQL_URL, SDSS_PIXSCALE, RemoteSources
from specmorph.remote.survey import SUMMARY_NAME, RemoteOptions, ingest_remote, make_validator

REPO = Path(__file__).resolve().parents[2]
NGC5947 = (232.65232, 42.71725)  # deg, a CALIFA galaxy in the SDSS footprint
SCALE_DEG = SDSS_PIXSCALE / 3600
SKY = {"g": 0.1, "r": 0.2, "i": 0.3}  # nanomaggies: flat per-band levels with a known Lupton colour
SQL_PATH = "sql/{ra:.6f}_{dec:.6f}.csv"  # the test server routes on the path only, so the position goes there
FRAME_PATH = "sas/frames/{rerun}/{run}/{camcol}/frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"




def frame_wcs(ra0: float, dec0: float, at: tuple[float, float], angle_deg: float = 100.0) -> WCS:
    """A TAN WCS at 0.396"/px putting (ra0, dec0) at pixel `at` = (row, col), rotated like a drift-scan frame."""
    t = np.deg2rad(angle_deg)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [at[1] + 1, at[0] + 1]
    w.wcs.cd = SCALE_DEG * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return w


def make_frame(band: str, field: dict, w: WCS, sources: list[tuple[float, float, float, float]],
               shape: tuple[int, int] = (120, 160)) -> bytes:
    """A small SDSS corrected frame (.fits.bz2): float32 nanomaggies, the frame header keywords, calib and sky HDUs.

    `sources` are (ra, dec, peak in nanomaggies, sigma in px) Gaussians on top of the flat SKY[band].
    """
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    data = np.full(shape, SKY[band], np.float64)
    for ra, dec, peak, sigma in sources:
        x, y = w.world_to_pixel_values(ra, dec)
        data += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    header = w.to_header()
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2"):
        header.remove(key, ignore_missing=True)
    for (i, j), v in np.ndenumerate(w.wcs.cd):
        header[f"CD{i + 1}_{j + 1}"] = v
    header["RADECSYS"] = "ICRS"  # as the real frames write it (deprecated spelling)
    cards = {"ORIGIN": "SDSS", "TELESCOP": "2.5m", "TIMESYS": "TAI", "RUN": field["run"], "FRAME": field["field"],
             "CAMCOL": field["camcol"], "FILTER": band, "RERUN": str(field["rerun"]), "FLAVOR": "science",
             "EXPTIME": 53.907456, "SYSTEM": "FK5", "EQUINOX": 2000.0, "BUNIT": "nanomaggies", "NMGY": 0.0052,
             "SOFTBIAS": 1000}
    primary = fits.PrimaryHDU(data.astype(np.float32))
    primary.header.update(cards)
    primary.header.update(header)
    calib = fits.ImageHDU(np.full(shape[1], 0.0052, np.float32))
    sky = fits.BinTableHDU.from_columns([
        fits.Column("ALLSKY", "192E", dim="(16,12)", array=np.zeros((1, 12, 16), np.float32)),
        fits.Column("XINTERP", f"{shape[0]}E", array=np.zeros((1, shape[0]), np.float32)),
        fits.Column("YINTERP", f"{shape[1]}E", array=np.zeros((1, shape[1]), np.float32))])
    buf = io.BytesIO()
    fits.HDUList([primary, calib, sky]).writeto(buf)
    return bz2.compress(buf.getvalue())


def sql_answer(rows: list[dict]) -> bytes:
    """A SkyServer SQL-search CSV answer: '#Table1', the header, one line per detection."""
    cols = ["objid", "run", "rerun", "camcol", "field", "rowc_r", "colc_r", "distance"]
    lines = ["#Table1", ",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def detection(field: dict, row: float, col: float, distance: float = 0.001) -> dict:
    return {"objid": 1237648720693755918 + field["field"], **field, "rowc_r": row, "colc_r": col, "distance": distance}


def publish_galaxy(server, ra: float, dec: float, field: dict, *, at=(55.0, 85.0), missing=(), broken=(),
                   extra=()) -> None:
    """Serves the SQL answer and g, r, i frames of one galaxy (a Gaussian at ra, dec, on frame pixel `at`)."""
    server.add(SQL_PATH.format(ra=ra, dec=dec), sql_answer([detection(field, *at)]), "text/plain")
    for band in frames.BANDS:
        path = FRAME_PATH.format(band=band, **field)
        if band in missing:
            continue
        w = frame_wcs(ra, dec, (at[0] + 0.3 * "gri".index(band), at[1] - 0.2))  # bands a little apart, as in SDSS
        body = make_frame(band, field, w, [(ra, dec, {"g": 2.0, "r": 4.0, "i": 5.0}[band], 3.0), *extra])
        server.add(path, body[:len(body) // 2] if band in broken else body, "application/x-bzip2")


def sources_for(server, size: int = 48, **kw) -> RemoteSources:
    return RemoteSources(sdss_sql_url_template=server.url(SQL_PATH + "?cmd={cmd}&format=csv"),
                         sdss_frame_url_template=server.url(FRAME_PATH), cutout_size=size, **kw)


def lupton(i: float, r: float, g: float, stretch: float = 0.5, q: float = 10.0) -> np.ndarray:
    """Lupton et al. (2004) as astropy normalises it: f(I) = asinh(Q I / stretch) * 0.1 / asinh(0.1 Q), I = mean."""
    mean = (i + r + g) / 3
    rgb = np.array([i, r, g]) * np.arcsinh(q * mean / stretch) * 0.1 / np.arcsinh(0.1 * q) / mean
    return np.floor(255 * rgb / max(1.0, rgb.max()))


def _cutouts(server, tmp_path, califa, sources, **options):
    cache = Cache(tmp_path / "cache")
    opts = RemoteOptions(cutout_method="frames", workers=2, tries=2, **options)
    validate = make_validator([sources], ())
    policy = RetryPolicy(tries=2, backoff_s=0.0)
    queried = run_jobs(frames.field_jobs(sources, califa), cache, policy, validate, 2)
    out = frames.frame_cutouts(sources, opts, califa, queried, cache, policy, validate)
    return {o.job.key: o for o in out if o.job.kind == "cutout"}, out, cache


def test_sql_answers_are_parsed_and_the_frame_most_covering_the_stamp_is_chosen(tmp_path):
    a = {"run": 1739, "rerun": 301, "camcol": 3, "field": 315}
    b = {"run": 1904, "rerun": 301, "camcol": 3, "field": 163}
    path = tmp_path / "answer.csv"
    path.write_bytes(sql_answer([detection(a, row=40.0, col=1000.0, distance=0.0005),  # near the frame's top edge
                                 detection(b, row=700.0, col=1200.0, distance=0.002)]))
    rows = frames.read_fields(path)
    assert rows[["run", "field"]].values.tolist() == [[1739, 315], [1904, 163]]
    assert frames.best_field(rows, 600) == b  # the stamp lies wholly on field 163; 40 px from field 315's edge
    assert frames.best_field(rows, 50) == a  # both cover a small stamp: the nearer detection wins
    assert frames.off_frame_fraction(40.0, 1000.0, 600) == pytest.approx(1 - 340 / 600)
    path.write_bytes(b"#Table1\nobjid,run,rerun,camcol,field,rowc_r,colc_r,distance\n")
    assert frames.best_field(frames.read_fields(path), 600) is None  # outside the footprint
    path.write_bytes(b'[{"error_message": "Incorrect syntax near fGetNearbyObjEq"}]')
    with pytest.raises(InputError, match="answered with an error"):
        frames.read_fields(path)
    path.write_bytes(b"#Table1\nobjid,ra,dec\n1,2,3\n")
    with pytest.raises(InputError, match="rowc_r"):
        frames.read_fields(path)


def test_urls_follow_the_dr10_layout_that_astroquery_builds():
    from astroquery.sdss import SDSS
    from astroquery.sdss import conf as sdss_conf

    src = RemoteSources()
    want = SDSS.IMAGING_URL_SUFFIX.format(base="https://data.sdss.org/sas", dr=10, instrument="boss", rerun=301,
                                          run=2505, camcol=3, band="r", field=38)
    assert src.frame_url("r", run=2505, rerun=301, camcol=3, field=38) == want
    assert want.endswith("/sas/dr10/boss/photoObj/frames/301/2505/3/frame-r-002505-3-0038.fits.bz2")
    url = frames.field_query_url(src, *NGC5947)
    assert url.split("?")[0] == sdss_conf.skyserver_baseurl + SDSS.QUERY_URL_SUFFIX_DR_10.format(dr=10)
    query = parse_qs(urlsplit(url).query)
    assert query["format"] == ["csv"] and "dbo.fGetNearbyObjEq(232.652320, 42.717250, 0.1)" in query["cmd"][0]
    assert " ".join(src.field_sql(*NGC5947).split()) == unquote(query["cmd"][0])
    with pytest.raises(ValueError, match="sdss_frame_url_template"):
        RemoteSources(sdss_frame_url_template="https://x/frame-{band}-{run}.fits.bz2")
    with pytest.raises(ValueError, match="sdss_sql_url_template"):
        RemoteSources(sdss_sql_url_template="https://x/?sql={query}")
    for bad in ({"cutout_method": "fits"}, {"lupton_stretch": 0.0}, {"frame_max_pad": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RemoteOptions(**bad)


def test_composite_is_north_up_centred_and_has_lupton_colours(http_server, tmp_path):
    ra, dec = 150.0, 2.0
    north = (ra, dec + 12 * SCALE_DEG, 3.0, 1.5)  # 12 px north of the galaxy
    east = (ra + 8 * SCALE_DEG / np.cos(np.deg2rad(dec)), dec, 3.0, 1.5)  # 8 px east
    field = {"run": 2505, "rerun": 301, "camcol": 3, "field": 38}
    publish_galaxy(http_server, ra, dec, field, at=(62.0, 71.0), extra=(north, east))
    src = sources_for(http_server)
    califa = pd.DataFrame({"name": ["NGC0001"], "ra": [ra], "dec": [dec]})
    cutouts, out, _ = _cutouts(http_server, tmp_path, califa, src)
    got = cutouts["NGC0001"]
    assert got.status == "fetched" and got.detail == ""
    assert got.job.url.split() == [src.frame_url(b, **field) for b in "gri"]  # the MANIFEST source of the JPEG

    fits_paths = [frames.frame_fits(o.fetched.path) for o in out if o.job.kind == "frame"]
    rgb, off = frames.compose(fits_paths, ra, dec, 48, SDSS_PIXSCALE, stretch=0.5, q=10.0)
    assert off == 0.0 and rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[2, 2], lupton(SKY["i"], SKY["r"], SKY["g"]), atol=1)  # the flat sky: [90, 60, 30]
    lum = rgb.astype(float).sum(axis=2)
    peak = np.unravel_index(np.argmax(lum), lum.shape)
    assert abs(peak[0] - 23.5) <= 1 and abs(peak[1] - 23.5) <= 1  # the galaxy at the stamp centre
    assert lum[round(23.5 - 12), 24] > lum[round(23.5 + 12), 24] + 100  # north is up ...
    assert lum[24, round(23.5 - 8)] > lum[24, round(23.5 + 8)] + 100  # ... and east to the left

    jpeg = read_image(got.fetched.path)  # what the pipeline reads
    assert jpeg.shape == (48, 48, 3) and np.abs(jpeg.astype(int) - rgb.astype(int)).max() <= 12
    np.testing.assert_allclose(jpeg[2:8, 2:8].reshape(-1, 3).mean(axis=0), [90, 60, 30], atol=2)


def test_a_galaxy_at_the_frame_edge_is_padded_or_skipped(http_server, tmp_path):
    ra, dec = 151.0, 3.0
    field = {"run": 3000, "rerun": 301, "camcol": 2, "field": 77}
    publish_galaxy(http_server, ra, dec, field, at=(10.0, 80.0))  # 10 px from the frame's first row
    src = sources_for(http_server)
    califa = pd.DataFrame({"name": ["EDGE"], "ra": [ra], "dec": [dec]})
    cutouts, out, _ = _cutouts(http_server, tmp_path / "a", califa, src, frame_max_pad=0.5)
    got = cutouts["EDGE"]
    assert got.status == "fetched" and got.detail.startswith("padded")
    assert frames.padded(out) == [{"key": "EDGE", "detail": got.detail}]
    jpeg = read_image(got.fetched.path)
    assert (jpeg.sum(axis=2) < 10).mean() == pytest.approx(float(got.detail.split()[1].rstrip("%")) / 100, abs=0.05)

    cutouts, out, _ = _cutouts(http_server, tmp_path / "b", califa, src, frame_max_pad=0.1)
    assert cutouts["EDGE"].status == "skipped" and "lies off its frames" in cutouts["EDGE"].detail
    assert frames.padded(out) == []


def test_a_missing_or_corrupt_frame_skips_that_galaxy_and_reports_it(http_server, tmp_path):
    fields = [{"run": 4000 + k, "rerun": 301, "camcol": 1 + k, "field": 11} for k in range(3)]
    pos = [(152.0, 4.0), (152.5, 4.5), (153.0, 5.0)]
    publish_galaxy(http_server, *pos[0], fields[0], missing=("i",))
    publish_galaxy(http_server, *pos[1], fields[1], broken=("g",))
    publish_galaxy(http_server, *pos[2], fields[2])
    califa = pd.DataFrame({"name": ["MISS", "BROKEN", "FINE"], "ra": [p[0] for p in pos], "dec": [p[1] for p in pos]})
    cutouts, _, cache = _cutouts(http_server, tmp_path, califa, sources_for(http_server))
    assert {k: o.status for k, o in cutouts.items()} == {"MISS": "skipped", "BROKEN": "skipped", "FINE": "fetched"}
    assert "frame i-4000-1-11 skipped" in cutouts["MISS"].detail and "404" in cutouts["MISS"].detail
    assert "frame g-4001-2-11 quarantined" in cutouts["BROKEN"].detail
    assert "bz2" in cutouts["BROKEN"].detail.lower() or "compressed" in cutouts["BROKEN"].detail.lower()
    quarantined = list((cache.root / "quarantine").rglob("*.reason.txt"))
    assert [q.name for q in quarantined] == ["frame-g-004001-2-0011.fits.bz2.reason.txt"]
    assert not list((cache.root / "sdss/frames").rglob("frame-g-004001-2-0011.fits"))  # no half-decompressed frame


def _params(tmp_path: Path, archive, server, **remote) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["source"] = "remote"
    params["ingest"]["remote"].update({"cache_dir": str(tmp_path / "cache"), "max_galaxies": 4, "max_gz2_images": -1,
                                       "galaxy10": False, "workers": 2, "tries": 2, "cutout_method": "frames",
                                       **remote})
    params["ingest"]["remote"]["sources"] = archive.params(
        sdss_sql_url_template=server.url(SQL_PATH + "?cmd={cmd}&format=csv"),
        sdss_frame_url_template=server.url(FRAME_PATH))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_ingest_with_frames_lays_out_cutouts_that_the_labels_stage_accepts(stage, http_server, tmp_path):
    archive = fake.Archive(http_server, fake.build_mock(tmp_path)).publish()
    for k, (ra, dec) in enumerate(zip(archive.morph["ra"], archive.morph["dec"], strict=True)):
        publish_galaxy(http_server, ra, dec, {"run": 5000 + k, "rerun": 301, "camcol": 1 + k % 6, "field": 20 + k})
    params, raw = _params(tmp_path, archive, http_server), tmp_path / "raw"
    stage("ingest").main(["--params", str(params), "--out-dir", str(raw)])

    morph = read_morphology(raw / LAYOUT["morphology_path"])
    index = read_cutout_index(raw / LAYOUT["cutout_index_path"])
    assert len(morph) == 4 and index["id_str"].tolist() == morph["id_str"].tolist()
    assert not any(r[1].startswith("/sdss/") for r in http_server.requests)  # no SkyServer JPEG was asked for
    for name in morph["id_str"]:
        image = read_image(raw / LAYOUT["cutout_dir"] / f"{name}.jpg")
        assert image.shape == (48, 48, 3)
        lum = image.astype(float).sum(axis=2)
        assert lum[20:28, 20:28].mean() > lum[:6].mean() + 100  # the galaxy in the middle
    summary = yaml.safe_load((raw / SUMMARY_NAME).read_text())
    assert summary["by_kind"]["sdss_field"]["fetched"] == 4 and summary["by_kind"]["frame"]["fetched"] == 12
    assert summary["by_kind"]["cutout"]["fetched"] == 4 and summary["padded"] == []
    manifest = pd.read_csv(raw / MANIFEST_NAME).set_index("path")
    source = manifest.loc[f"{LAYOUT['cutout_dir']}/{morph['id_str'].iloc[0]}.jpg", "source_url"].split()
    assert len(source) == 3 and all("/sas/frames/301/" in u for u in source)

    cat = fake.crossmatch_and_label(stage, params, raw, tmp_path)
    images = pd.read_csv(cat / "images.csv", dtype={"id_str": str})
    sdss = images[images["source"] == "sdss"]
    assert sorted(sdss["galaxy_id"]) == sorted(morph["id_str"])  # every composite is a labelled image
    assert all(Path(p).name == f"{g}.jpg" for p, g in zip(sdss["path"], sdss["galaxy_id"], strict=True))

    seen = len(http_server.requests)
    stage("ingest").main(["--params", str(params), "--out-dir", str(raw)])
    assert len(http_server.requests) == seen  # frames, answers and composites all came from the cache
    again = yaml.safe_load((raw / SUMMARY_NAME).read_text())
    assert again["by_kind"]["cutout"] == {**summary["by_kind"]["cutout"], "fetched": 0, "cached": 4}

    plan = ingest_remote(RemoteSources(**yaml.safe_load(params.read_text())["ingest"]["remote"]["sources"]),
                         RemoteOptions(cache_dir=str(tmp_path / "empty"), dry_run=True, max_galaxies=4,
                                       cutout_method="frames"), raw)
    assert plan["by_kind"]["frame"]["objects"] == 12 and "cutout" not in plan["by_kind"]


# Live archive (run with --remote-data): one real frame, and the SQL search for one CALIFA galaxy.


@pytest.mark.remote_data
def test_live_sdss_frame(tmp_path):
    url = RemoteSources().frame_url("r", run=2505, rerun=301, camcol=3, field=38)
    got = fetch(url, tmp_path / "frame-r-002505-3-0038.fits.bz2", name="SDSS frame", policy=RetryPolicy(tries=3))
    frames.check_frame(got.path)
    header = fits.getheader(frames.frame_fits(got.path))
    assert (header["NAXIS2"], header["NAXIS1"]) == frames.FRAME_SHAPE
    assert header["FILTER"].strip() == "r" and header["BUNIT"].strip().lower() == "nanomaggies"


@pytest.mark.remote_data
def test_live_sql_search_finds_the_field_of_a_califa_galaxy(tmp_path):
    src = RemoteSources()
    got = fetch(frames.field_query_url(src, *NGC5947), tmp_path / "NGC5947.csv", name="SQL search",
                policy=RetryPolicy(tries=3))
    field = frames.best_field(frames.read_fields(got.path), 424 * np.sqrt(2))
    assert field is not None and field["rerun"] == 301
    assert SDSS_DR10_SQL_URL.split("?")[0] in got.url and SDSS_DR10_FRAME_URL.startswith("https://data.sdss.org")
