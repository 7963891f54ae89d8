"""A remote ingest of MaNGA (`ingest.survey: manga`): the DRPall table and LOGCUBEs from the fault-injecting server."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import fake_archive as fake  # tests/remote, on pytest's pythonpath
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from specmorph.catalog.selection import REQUIRED_COLUMNS
from specmorph.io.catalogs import read_morphology
from specmorph.io.cubes import read_cube
from specmorph.io.layout import DRPALL_PATH, LAYOUT, cube_file
from specmorph.io.manga import read_drpall
from specmorph.remote.survey import RemoteOptions, ingest_remote, survey_sources
from specmorph.sky.survey import SkyConfig, generate_survey


@pytest.fixture(scope="module")
def mock(tmp_path_factory) -> Path:
    """A mock MaNGA survey whose DRPall also lists a repeat observation of its first galaxy."""
    out = tmp_path_factory.mktemp("manga_mock") / "mock"
    generate_survey(out, SkyConfig(n_califa=2, n_gz2_field=10, n_galaxy10=2, cutout_size=48, cube_nx=6, cube_ny=6,
                                   workers=1, gz2_footprint_fraction=1.0, survey="manga", n_manga=4,
                                   manga_spaxels=6))
    table = Table.read(out / DRPALL_PATH, hdu="MANGA")
    repeat = {c: table[c][0] for c in table.colnames} | {"plateifu": "29999-1901", "redsn2": 0.5}
    table.add_row([repeat[c] for c in table.colnames])
    hdu = fits.table_to_hdu(table)
    hdu.name = "MANGA"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out / DRPALL_PATH, overwrite=True)
    return out


def _archive(mock: Path, server) -> fake.Archive:
    return fake.Archive(server, mock, table_format="drpall")


def _run(archive: fake.Archive, tmp_path: Path, **kw) -> dict:
    options = RemoteOptions(cache_dir=str(tmp_path / "cache"), max_galaxies=-1, require_gz2_match=True,
                            max_gz2_images=4, galaxy10=False, workers=2, tries=2, **kw)
    return ingest_remote(archive.sources().for_manga(), options, tmp_path / "raw", seed=7,
                         gz2_columns=REQUIRED_COLUMNS)


def test_manga_arrives_as_one_cube_per_galaxy_in_the_layout_the_stages_read(mock, http_server, tmp_path):
    archive = _archive(mock, http_server).publish()
    summary = _run(archive, tmp_path)
    raw = tmp_path / "raw"
    morphology = read_morphology(raw / LAYOUT["morphology_path"])
    kept = read_morphology(mock / LAYOUT["morphology_path"])["id_str"]
    assert sorted(morphology["id_str"]) == sorted(kept)  # the repeat plate-IFU folded into its galaxy
    assert set(morphology["survey"]) == {"manga"} and morphology["hubtyp"].isna().all()
    for name in morphology["id_str"]:
        cube = read_cube(raw / LAYOUT["cube_dir"] / cube_file(name, "manga"))
        assert cube.name == name and np.isfinite(cube.flux).any()
    assert summary["selected"]["n_califa"] == len(kept)
    served = read_drpall(mock / DRPALL_PATH)  # the mock's rows (with any repeat or critical ones it drew) + the repeat
    assert len(served) >= len(kept) + 1
    assert len(read_drpall(next((tmp_path / "cache").rglob("drpall-v3_1_1.fits")))) == len(served)


@pytest.mark.parametrize("fault", ["truncated gzip", "MASK of another shape"])
def test_a_broken_logcube_is_quarantined_its_galaxy_dropped_and_a_rerun_fetches_it(mock, http_server, tmp_path, fault):
    archive = _archive(mock, http_server).publish()
    name = archive.names[0]
    good = archive.cube_bytes(name)
    if fault == "truncated gzip":
        bad = good[: len(good) // 2]
    else:
        with fits.open(io.BytesIO(gzip.decompress(good))) as hdul:
            hdul["MASK"].data = hdul["MASK"].data[:, :-1, :]
            buf = io.BytesIO()
            hdul.writeto(buf)
        bad = gzip.compress(buf.getvalue(), mtime=0)
    http_server.add(archive.cube_path(name), bad, "application/fits")
    summary = _run(archive, tmp_path)
    reason = next((tmp_path / "cache" / "quarantine").rglob(f"{cube_file(name, 'manga')}.reason.txt")).read_text()
    assert ("truncated gzip" if fault == "truncated gzip" else "MASK has shape") in reason
    assert {"kind": "califa", "key": name, "reason": "no cube"} in summary["dropped"]
    assert name not in read_morphology(tmp_path / "raw" / LAYOUT["morphology_path"])["id_str"].tolist()
    http_server.add(archive.cube_path(name), good, "application/fits")  # the archive mends it: a re-run fetches it
    _run(archive, tmp_path)
    assert name in read_morphology(tmp_path / "raw" / LAYOUT["morphology_path"])["id_str"].tolist()


def test_a_manga_dry_run_estimates_from_dr17s_size(mock, http_server, tmp_path):
    archive = _archive(mock, http_server).publish()
    plan = _run(archive, tmp_path, dry_run=True)
    assert not plan["exact"] and plan["by_kind"]["cube"]["objects"] == 10_010  # no cap: all of DR17
    assert plan["by_kind"]["cube"]["bytes_to_fetch"] == 10_010 * 150_000_000
    assert not (tmp_path / "raw").exists()


@pytest.fixture(scope="module")
def mock_both(tmp_path_factory) -> Path:
    """A mock survey of both surveys whose DRPall also lists a MaNGA observation of its first eCALIFA galaxy."""
    out = tmp_path_factory.mktemp("both_mock") / "mock"
    generate_survey(out, SkyConfig(n_califa=3, n_gz2_field=10, n_galaxy10=2, cutout_size=48, cube_nx=6, cube_ny=6,
                                   workers=1, gz2_footprint_fraction=1.0, survey="both", n_manga=3, manga_spaxels=6))
    first = read_morphology(out / LAYOUT["morphology_path"]).iloc[0]
    assert first["survey"] == "califa"
    table = Table.read(out / DRPALL_PATH, hdu="MANGA")
    twice = {c: table[c][0] for c in table.colnames} | {"plateifu": "29998-1902", "mangaid": "1-999999",
                                                          "objra": first["ra"], "objdec": first["dec"]}
    table.add_row([twice[c] for c in table.colnames])
    hdu = fits.table_to_hdu(table)
    hdu.name = "MANGA"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out / DRPALL_PATH, overwrite=True)
    return out


def test_both_surveys_arrive_together_and_a_galaxy_observed_by_both_counts_once(mock_both, http_server, tmp_path):
    archive = fake.Archive(http_server, mock_both).publish()
    options = RemoteOptions(cache_dir=str(tmp_path / "cache"), max_galaxies=-1, require_gz2_match=False,
                            max_gz2_images=4, galaxy10=False, workers=2, tries=2)
    summary = ingest_remote(survey_sources(archive.sources(), "both"), options, tmp_path / "raw", seed=7,
                            gz2_columns=REQUIRED_COLUMNS)
    raw = tmp_path / "raw"
    got = read_morphology(raw / LAYOUT["morphology_path"])
    expected = read_morphology(mock_both / LAYOUT["morphology_path"])
    assert sorted(zip(got["id_str"], got["survey"], strict=True)) == sorted(
        zip(expected["id_str"], expected["survey"], strict=True))
    for name, survey in zip(got["id_str"], got["survey"], strict=True):
        assert read_cube(raw / LAYOUT["cube_dir"] / cube_file(name, survey)).name == name
    assert summary["selected"]["by_survey"] == {"califa": 3, "manga": 3} and summary["surveys"] == ["califa", "manga"]
    twice = [d for d in summary["dropped"] if d["key"] == "29998-1902"]
    assert len(twice) == 1 and "also observed by eCALIFA" in twice[0]["reason"]
    manifest = (raw / "MANIFEST.csv").read_text()
    assert "califa/table.csv manga/drpall-v3_1_1.fits" in manifest.replace(http_server.url(""), "")


def test_a_dry_run_of_both_surveys_adds_their_sizes(mock_both, http_server, tmp_path):
    archive = fake.Archive(http_server, mock_both).publish()
    options = RemoteOptions(cache_dir=str(tmp_path / "cache"), max_galaxies=-1, galaxy10=False, dry_run=True)
    plan = ingest_remote(survey_sources(archive.sources(), "both"), options, tmp_path / "raw")
    assert not plan["exact"] and plan["by_kind"]["cube"]["objects"] == 895 + 10_010
    assert plan["by_kind"]["cube"]["bytes_to_fetch"] == 895 * 45_000_000 + 10_010 * 150_000_000
    assert plan["by_kind"]["cutout"]["objects"] == 895 + 10_010
    with pytest.raises(ValueError, match="survey='sami'"):
        survey_sources(archive.sources(), "sami")
