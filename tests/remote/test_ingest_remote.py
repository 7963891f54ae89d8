"""`ingest.source: remote` end to end through stages/ingest.py against the local fault-injecting server."""

from pathlib import Path

import fake_archive as fake  # tests/remote, on pytest's pythonpath
import numpy as np
import pandas as pd
import pytest
import yaml

from specmorph.io.catalogs import read_cutout_index, read_gz2, read_morphology
from specmorph.io.cubes import read_cube
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT
from specmorph.remote.files import MANIFEST_COLUMNS, MANIFEST_NAME, sha256_of
from specmorph.remote.survey import SUMMARY_NAME

REPO = Path(__file__).resolve().parents[2]




@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    return fake.build_mock(tmp_path_factory.mktemp("remote_mock"))


def _params(tmp_path: Path, archive, **remote) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["source"] = "remote"
    params["ingest"]["remote"].update({"cache_dir": str(tmp_path / "cache"), "max_galaxies": 4, "max_gz2_images": 6,
                                       "galaxy10": True, "workers": 3, "tries": 2, **remote})
    params["ingest"]["remote"]["sources"] = archive.params()
    path = tmp_path / "params.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _ingest(stage, params: Path, raw: Path) -> None:
    stage("ingest").main(["--params", str(params), "--out-dir", str(raw)])


def test_remote_ingest_feeds_crossmatch_and_labels_and_a_rerun_fetches_nothing(stage, mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    params, raw = _params(tmp_path, archive, max_gz2_images=-1), tmp_path / "raw"  # labels needs every class twice
    _ingest(stage, params, raw)

    morph = read_morphology(raw / LAYOUT["morphology_path"])
    assert len(morph) == 4 and set(morph["id_str"]) <= set(archive.names)
    want = archive.morph.set_index("name").loc[morph["id_str"]]
    np.testing.assert_allclose(morph["redshift"], want["redshift"])
    assert morph["hubtyp"].tolist() == want["hubtyp"].tolist()
    index = read_cutout_index(raw / LAYOUT["cutout_index_path"])
    assert index["id_str"].tolist() == morph["id_str"].tolist()
    for name in morph["id_str"]:  # byte-identical to what the archive served
        got = raw / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}"
        assert got.read_bytes() == (mock / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}").read_bytes()
        assert read_cube(got).flux.shape == (1877, 8, 8)
    gz2 = read_gz2(raw / LAYOUT["gz2_catalog_path"], columns=None)
    assert list(gz2.columns[1:]) == list(archive.gz2.columns)  # the real column names, all kept
    summary = yaml.safe_load((raw / SUMMARY_NAME).read_text())
    assert len(gz2) == summary["selected"]["n_gz2"] == len(archive.gz2)
    assert all((raw / LAYOUT["gz2_image_dir"] / f"{i}.jpg").is_file() for i in gz2["id_str"])
    g10 = open_galaxy10(raw / LAYOUT["galaxy10_path"])
    assert len(g10.ans) == fake.MOCK.n_galaxy10
    g10.close()
    assert summary["totals"] == {"fetched": 2 + 4 + 4 + len(gz2) + 1, "cached": 0, "skipped": 0, "failed": 0,
                                 "quarantined": 0}

    manifest = pd.read_csv(raw / MANIFEST_NAME)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    assert manifest["path"].tolist() == files
    for row in manifest.itertuples():
        assert row.sha256 == sha256_of(raw / row.path) and row.bytes == (raw / row.path).stat().st_size
    cube_row = manifest[manifest["path"] == f"{LAYOUT['cube_dir']}/{morph['id_str'].iloc[0]}{CUBE_SUFFIX}"].iloc[0]
    assert cube_row.source_url == http_server.url(archive.cube_path(morph["id_str"].iloc[0]))
    assert cube_row.fetched_at.endswith("Z")
    assert (raw / MANIFEST_NAME).stat().st_mtime >= max((raw / f).stat().st_mtime for f in files)
    assert not (raw / LAYOUT["cube_dir"]).with_name("cubes.partial").exists()

    cat = fake.crossmatch_and_label(stage, params, raw, tmp_path)
    assert len(pd.read_csv(cat / "matched.csv")) == 4  # every selected galaxy has its GZ2 counterpart
    assert len(pd.read_csv(cat / "images.csv")) > 0

    seen = len(http_server.requests)
    _ingest(stage, params, raw)
    assert len(http_server.requests) == seen  # everything came from the cache
    again = yaml.safe_load((raw / SUMMARY_NAME).read_text())
    assert again["totals"]["cached"] == summary["totals"]["fetched"] and again["totals"]["fetched"] == 0
    rerun = pd.read_csv(raw / MANIFEST_NAME)
    data = rerun["path"] != SUMMARY_NAME  # the summary says "cached" now; every data file is the same
    assert rerun[data].drop(columns="fetched_at").equals(manifest[data].drop(columns="fetched_at"))


def test_galaxies_selected_2_to_4_arcsec_off_their_gz2_rows_all_reach_the_labels(stage, mock, http_server, tmp_path):
    """Real GZ2 (SDSS) centres lie ~2.7" off the eCALIFA positions: the selection and the crossmatch share
    crossmatch.radius_arcsec, so no galaxy is fetched only to be dropped unmatched."""
    archive = fake.Archive(http_server, mock, gz2_offset_arcsec=(2.0, 4.0)).publish()
    params, raw = _params(tmp_path, archive, max_gz2_images=-1), tmp_path / "raw"
    _ingest(stage, params, raw)
    selected = set(read_morphology(raw / LAYOUT["morphology_path"])["id_str"])
    assert len(selected) == 4
    cat = fake.crossmatch_and_label(stage, params, raw, tmp_path)
    matched = pd.read_csv(cat / "matched.csv")
    assert len(matched) == 4 and yaml.safe_load((tmp_path / "cm.json").read_text())["median_sep_arcsec"] > 2.0
    images = pd.read_csv(cat / "images.csv", dtype={"califa_name": str})
    assert selected <= set(images["califa_name"].dropna())  # every selected galaxy is labelled


def test_a_missing_cube_is_skipped_and_reported_and_the_run_completes(stage, mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock)
    gone = archive.names[1]
    archive.publish(skip_cubes=(gone,))
    raw = tmp_path / "raw"
    _ingest(stage, _params(tmp_path, archive, max_galaxies=-1, require_gz2_match=False, galaxy10=False), raw)
    summary = yaml.safe_load((raw / SUMMARY_NAME).read_text())
    assert summary["totals"]["skipped"] == 1
    assert [(p["kind"], p["key"], p["status"]) for p in summary["problems"]] == [("cube", gone, "skipped")]
    assert "404" in summary["problems"][0]["detail"]
    assert {"kind": "califa", "key": gone, "reason": "no cube"} in summary["dropped"]
    assert read_morphology(raw / LAYOUT["morphology_path"])["id_str"].tolist() == \
        sorted(n for n in archive.names if n != gone)
    g10 = open_galaxy10(raw / LAYOUT["galaxy10_path"])
    assert len(g10.ans) == 0  # galaxy10: false writes the layout with no images
    g10.close()


def test_max_galaxies_and_hubble_types_bound_what_is_fetched(stage, mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock).publish()
    params = _params(tmp_path, archive, max_galaxies=2, max_gz2_images=0, galaxy10=False, require_gz2_match=False)
    _ingest(stage, params, tmp_path / "raw")
    cubes = [r for r in http_server.requests if r[1].startswith("/cubes/")]
    assert len(cubes) == 2
    morph = read_morphology(tmp_path / "raw" / LAYOUT["morphology_path"])
    assert len(morph) == 2
    summary = yaml.safe_load((tmp_path / "raw" / SUMMARY_NAME).read_text())
    assert summary["selected"]["n_gz2"] == summary["selected"]["n_gz2_matched"]  # no field galaxies

    spirals = [t for t in archive.morph["hubtyp"] if isinstance(t, str) and t.startswith("S") and t != "S0"]
    params = _params(tmp_path / "typed", archive, max_galaxies=-1, galaxy10=False, require_gz2_match=False,
                     hubble_types=sorted(set(spirals)))
    _ingest(stage, params, tmp_path / "typed_raw")
    assert sorted(read_morphology(tmp_path / "typed_raw" / LAYOUT["morphology_path"])["hubtyp"]) == sorted(spirals)


def test_dry_run_fetches_nothing_and_prints_the_plan(stage, mock, http_server, tmp_path, capsys):
    archive = fake.Archive(http_server, mock).publish()
    raw = tmp_path / "raw"
    _ingest(stage, _params(tmp_path, archive, dry_run=True), raw)
    assert http_server.requests == [] and not raw.exists()
    out = capsys.readouterr().out
    assert "estimated" in out and "nothing was fetched" in out and "galaxy10" in out

    _ingest(stage, _params(tmp_path, archive), raw)  # a real run fills the cache ...
    seen = len(http_server.requests)
    _ingest(stage, _params(tmp_path, archive, dry_run=True, max_galaxies=-1), raw)  # ... then a bigger plan
    assert len(http_server.requests) == seen
    out = capsys.readouterr().out
    assert "exact selection" in out
    plan = pd.read_csv(tmp_path / "cache" / "dry_run.csv")
    cubes = plan[plan["kind"] == "cube"]
    assert cubes["cached"].sum() == 4 and len(cubes) > 4  # the 4 already fetched, the rest still to come


def test_dr3_table_takes_redshifts_from_the_cubes(stage, mock, http_server, tmp_path):
    archive = fake.Archive(http_server, mock, table_format="dr3").publish()
    raw = tmp_path / "raw"
    _ingest(stage, _params(tmp_path, archive, galaxy10=False), raw)
    morph = read_morphology(raw / LAYOUT["morphology_path"])
    want = archive.morph.set_index("name").loc[morph["id_str"]]
    np.testing.assert_allclose(morph["redshift"], want["redshift"], rtol=1e-9)  # MED_VEL / c
    assert morph["hubtyp"].tolist() == want["hubtyp"].tolist()  # DR3 integer codes back to types
