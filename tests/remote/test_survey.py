"""Faults in a remote ingest: HTML instead of FITS, truncated gzip, retries exhausted, bad cache files, checksums."""

import gzip
import json
import threading
import time
from pathlib import Path

import fake_archive as fake  # tests/remote, on pytest's pythonpath
import h5py
import numpy as np
import pandas as pd
import pytest

from specmorph.catalog.selection import REQUIRED_COLUMNS
from specmorph.io.catalogs import read_morphology
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT
from specmorph.remote.files import MANIFEST_NAME
from specmorph.remote.http import RetryPolicy
from specmorph.remote.jobs import LEDGER_NAME, Cache, IncompleteDownload, Job, run_jobs
from specmorph.remote.survey import SUMMARY_NAME, RemoteOptions, ingest_remote


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    return fake.build_mock(tmp_path_factory.mktemp("survey_mock"))


def _options(tmp_path: Path, **kw) -> RemoteOptions:
    values = {"cache_dir": str(tmp_path / "cache"), "max_galaxies": -1, "require_gz2_match": False,
              "max_gz2_images": 4, "galaxy10": False, "workers": 3, "tries": 2, **kw}
    return RemoteOptions(**values)


def _run(archive, tmp_path: Path, sources=None, **kw) -> dict:
    return ingest_remote(sources or archive.sources(), _options(tmp_path, **kw), tmp_path / "raw", seed=7,
                         gz2_columns=REQUIRED_COLUMNS)


def _names(tmp_path: Path) -> list[str]:
    return read_morphology(tmp_path / "raw" / LAYOUT["morphology_path"])["id_str"].tolist()


def test_html_instead_of_a_cube_is_quarantined_and_a_rerun_fetches_it(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    bad = archive.names[2]
    http_server.fail(archive.cube_path(bad), ["html"])
    summary = _run(archive, tmp_path)
    problem, = summary["problems"]
    assert (problem["kind"], problem["key"], problem["status"]) == ("cube", bad, "quarantined")
    assert "HTML" in problem["detail"] and problem["url"] == http_server.url(archive.cube_path(bad))
    note = tmp_path / "cache" / "quarantine" / "califa" / "cubes" / f"{bad}{CUBE_SUFFIX}.reason.txt"
    assert "HTML" in note.read_text() and archive.cube_path(bad) in note.read_text()
    assert bad not in _names(tmp_path) and len(_names(tmp_path)) == len(archive.names) - 1

    seen = len(http_server.requests)
    summary = _run(archive, tmp_path)
    new = http_server.requests[seen:]
    assert [r[1] for r in new] == ["/" + archive.cube_path(bad)]  # only the quarantined cube is fetched again
    assert summary["totals"]["fetched"] == 1 and summary["problems"] == []
    assert bad in _names(tmp_path)


def test_a_truncated_gzip_cube_is_quarantined_with_the_reason(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    bad = archive.names[0]
    whole = (mock / LAYOUT["cube_dir"] / f"{bad}{CUBE_SUFFIX}").read_bytes()
    http_server.add(archive.cube_path(bad), whole[: len(whole) // 2], "application/fits")  # complete HTTP, cut gzip
    summary = _run(archive, tmp_path)
    problem, = summary["problems"]
    assert (problem["key"], problem["status"]) == (bad, "quarantined") and "gzip" in problem["detail"]
    moved = tmp_path / "cache" / "quarantine" / "califa" / "cubes" / f"{bad}{CUBE_SUFFIX}"
    assert moved.read_bytes() == whole[: len(whole) // 2]
    assert not (tmp_path / "cache" / "califa" / "cubes" / f"{bad}{CUBE_SUFFIX}").exists()
    assert f"califa/cubes/{bad}{CUBE_SUFFIX}" not in json.loads((tmp_path / "cache" / LEDGER_NAME).read_text())
    assert bad not in _names(tmp_path)
    assert not (tmp_path / "raw" / LAYOUT["cube_dir"] / f"{bad}{CUBE_SUFFIX}").exists()


def test_retries_exhausted_stop_the_run_naming_the_object_and_a_rerun_resumes(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    bad = archive.names[3]
    http_server.fail(archive.cube_path(bad), [503, 503])
    with pytest.raises(IncompleteDownload, match=rf"(?s)1 download\(s\) failed.*cube {bad}.*{archive.cube_path(bad)}"):
        _run(archive, tmp_path)
    assert not (tmp_path / "raw").exists()  # nothing half-made in data/raw
    summary = json.loads((tmp_path / "cache" / SUMMARY_NAME).read_text())
    assert summary["totals"]["failed"] == 1 and summary["totals"]["fetched"] > 1

    seen = len(http_server.requests)
    _run(archive, tmp_path)
    assert [r[1] for r in http_server.requests[seen:]] == ["/" + archive.cube_path(bad)]
    assert (tmp_path / "raw" / MANIFEST_NAME).is_file() and bad in _names(tmp_path)


def test_a_bad_file_left_in_the_cache_is_quarantined_and_fetched_afresh(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    name = archive.names[1]
    junk = tmp_path / "cache" / "sdss" / "cutouts" / f"{name}.jpg"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # e.g. a run killed before validation
    summary = _run(archive, tmp_path)
    assert summary["problems"] == [] and name in _names(tmp_path)
    assert (tmp_path / "cache" / "quarantine" / "sdss" / "cutouts" / f"{name}.jpg.reason.txt").is_file()
    assert (tmp_path / "raw" / LAYOUT["cutout_dir"] / f"{name}.jpg").read_bytes() == \
        (mock / LAYOUT["cutout_dir"] / f"{name}.jpg").read_bytes()


def test_a_changed_url_is_fetched_again(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    _run(archive, tmp_path, max_gz2_images=0)
    for name in archive.names:
        http_server.add(f"v2/{name}{CUBE_SUFFIX}", (mock / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}").read_bytes())
    seen = len(http_server.requests)
    _run(archive, tmp_path, sources=archive.sources(cube_url_template=http_server.url("v2/{name}" + CUBE_SUFFIX)),
         max_gz2_images=0)
    paths = [r[1] for r in http_server.requests[seen:]]
    assert sorted(paths) == sorted(f"/v2/{n}{CUBE_SUFFIX}" for n in archive.names)


def test_galaxy10_is_verified_by_sha256_and_subset_by_slices(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    _run(archive, tmp_path, galaxy10=True, galaxy10_max_images=3, max_gz2_images=0)
    src = h5py.File(mock / LAYOUT["galaxy10_path"], "r")
    g10 = open_galaxy10(tmp_path / "raw" / LAYOUT["galaxy10_path"])
    rows = [int(np.flatnonzero((src["ra"][:] == ra) & (src["dec"][:] == dec))[0]) for ra, dec in zip(g10.ra, g10.dec,
                                                                                                     strict=True)]
    assert len(rows) == 3 and rows == sorted(rows)
    np.testing.assert_array_equal(g10.images[:], src["images"][rows])
    np.testing.assert_array_equal(g10.ans, src["ans"][rows])
    g10.close()
    src.close()
    manifest = pd.read_csv(tmp_path / "raw" / MANIFEST_NAME).set_index("path")
    assert manifest.loc[LAYOUT["galaxy10_path"], "source_url"] == http_server.url("g10/Galaxy10_DECals.h5")

    other = tmp_path / "wrong"
    with pytest.raises(IncompleteDownload, match="Galaxy10 was asked for"):
        _run(archive, other, sources=archive.sources(galaxy10_sha256="0" * 64), galaxy10=True, max_gz2_images=0)
    reason = other / "cache" / "quarantine" / "galaxy10" / "Galaxy10_DECals.h5.reason.txt"
    assert "sha256" in reason.read_text()


def test_a_sample_table_with_the_wrong_checksum_stops_the_run(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    with pytest.raises(IncompleteDownload, match=r"(?s)sample tables are needed.*califa_table sample quarantined"):
        _run(archive, tmp_path, sources=archive.sources(califa_table_sha256="f" * 64))
    assert [r[1] for r in http_server.requests if r[1].startswith("/cubes")] == []


def test_local_gz2_images_with_the_zenodo_mapping_are_used_instead_of_cutouts(mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    images = tmp_path / "images_gz2"
    images.mkdir()
    ids = archive.gz2["dr7objid"].tolist()
    for k, objid in enumerate(ids):  # official file names are asset ids, mapped in gz2_filename_mapping.csv
        (images / f"{1000 + k}.jpg").write_bytes((mock / LAYOUT["gz2_image_dir"] / f"{objid}.jpg").read_bytes())
    mapping = tmp_path / "gz2_filename_mapping.csv"
    pd.DataFrame({"objid": ids, "sample": "original", "asset_id": range(1000, 1000 + len(ids))}).to_csv(mapping,
                                                                                                      index=False)
    summary = _run(archive, tmp_path, sources=archive.sources(gz2_image_dir=str(images),
                                                              gz2_mapping_path=str(mapping)))
    assert not [r for r in http_server.requests if r[1].startswith("/gz2img")]
    assert summary["by_kind"]["gz2_image"]["cached"] == summary["selected"]["n_gz2"]
    placed = pd.read_csv(tmp_path / "raw" / LAYOUT["gz2_catalog_path"], dtype={"dr7objid": str})["dr7objid"]
    for objid in placed:
        assert (tmp_path / "raw" / LAYOUT["gz2_image_dir"] / f"{objid}.jpg").read_bytes() == \
            (mock / LAYOUT["gz2_image_dir"] / f"{objid}.jpg").read_bytes()


def test_run_jobs_keeps_at_most_workers_downloads_in_flight(http_server, tmp_path):
    active, peak, lock = [0], [0], threading.Lock()

    def validate(job, path):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    jobs = [Job("cutout", str(i), http_server.add(f"f/{i}.jpg", bytes([i]) * 100), f"f/{i}.jpg", 100)
            for i in range(8)]
    cache = Cache(tmp_path / "cache")
    outcomes = run_jobs(jobs, cache, RetryPolicy(tries=1), validate, workers=3)
    assert [o.status for o in outcomes] == ["fetched"] * 8 and [o.job for o in outcomes] == jobs
    assert 1 < peak[0] <= 3
    assert run_jobs(jobs, Cache(tmp_path / "cache"), RetryPolicy(tries=1), validate, workers=3)[0].status == "cached"
    assert len(http_server.requests) == 8


def test_gzip_fixture_is_really_truncated():
    whole = gzip.compress(b"x" * 10_000)
    with pytest.raises(EOFError):
        gzip.decompress(whole[: len(whole) // 2])
