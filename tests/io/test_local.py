"""Tests of `ingest.source: local`: a user's files in another layout are validated and laid out as data/raw."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits

from specmorph.catalog.selection import COL_SMOOTH, REQUIRED_COLUMNS
from specmorph.errors import InputError
from specmorph.io import local
from specmorph.io.catalogs import read_cutout_index, read_gz2, read_morphology
from specmorph.io.cubes import read_cube
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT, cube_file
from specmorph.io.local import LocalSources, ingest_local
from specmorph.params import ParamsError
from specmorph.sky.survey import SkyConfig, generate_survey
from specmorph.taxonomy import CALIFA_TYPES

REPO = Path(__file__).resolve().parents[2]
MOCK = SkyConfig(n_califa=4, n_gz2_field=6, n_galaxy10=4, cutout_size=48, cube_nx=8, cube_ny=8, workers=1,
                 gz2_footprint_fraction=1.0)


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "mock"
    generate_survey(out, MOCK)
    return out


@pytest.fixture
def user(mock, tmp_path):
    """The mock survey rearranged as a user might keep it: other names, DR3 integer hubtyp codes, one plain cube."""
    root = tmp_path / "archive"
    morph = pd.read_csv(mock / LAYOUT["morphology_path"])
    morph["hubtyp"] = [CALIFA_TYPES.index(t) for t in morph["hubtyp"]]
    morph["califa_id"] = range(1, len(morph) + 1)
    (root / "tables").mkdir(parents=True)
    morph.to_csv(root / "tables" / "califa_dr3.csv", index=False)
    shutil.copytree(mock / LAYOUT["cube_dir"], root / "v500")
    plain = root / "v500" / f"{morph['name'].iloc[0]}{CUBE_SUFFIX}"
    plain.with_suffix("").write_bytes(gzip.decompress(plain.read_bytes()))  # <name>.V500.rscube.fits
    plain.unlink()
    index = pd.read_csv(mock / LAYOUT["cutout_index_path"])
    (root / "sdss" / "jpeg").mkdir(parents=True)
    for name in index["name"]:
        shutil.copy(mock / LAYOUT["cutout_dir"] / f"{name}.jpg", root / "sdss" / "jpeg" / f"{name}_dr10.jpg")
    index["file"] = [f"jpeg/{n}_dr10.jpg" for n in index["name"]]
    index.to_csv(root / "sdss" / "cutouts_dr10.csv", index=False)
    (root / "gz2").mkdir()
    shutil.copy(mock / LAYOUT["gz2_catalog_path"], root / "gz2" / "hart16.csv")
    shutil.copytree(mock / LAYOUT["gz2_image_dir"], root / "gz2" / "jpg")
    shutil.copy(mock / LAYOUT["galaxy10_path"], root / "g10.h5")
    return LocalSources(root / "tables" / "califa_dr3.csv", root / "v500", root / "sdss" / "cutouts_dr10.csv",
                        root / "gz2" / "hart16.csv", root / "gz2" / "jpg", root / "g10.h5")


def _left_nothing(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial*"))


@pytest.mark.parametrize("link", ["hardlink", "copy", "symlink"])
def test_local_files_become_a_tree_the_readers_accept(mock, user, tmp_path, link):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    summary = ingest_local(user, out, link=link, gz2_columns=REQUIRED_COLUMNS)

    want = pd.read_csv(mock / LAYOUT["morphology_path"])
    morph = read_morphology(out / LAYOUT["morphology_path"])
    assert morph["id_str"].tolist() == want["name"].tolist()
    assert morph["hubtyp"].tolist() == want["hubtyp"].tolist()  # DR3 codes written back as type strings
    np.testing.assert_allclose(morph["redshift"], want["redshift"])
    assert list(pd.read_csv(out / LAYOUT["morphology_path"]).columns) == ["name", "ra", "dec", "redshift", "hubtyp"]
    index = read_cutout_index(out / LAYOUT["cutout_index_path"])
    assert index["file"].tolist() == [f"cutouts/{n}.jpg" for n in want["name"]]
    gz2 = read_gz2(out / LAYOUT["gz2_catalog_path"], columns=list(REQUIRED_COLUMNS))
    assert len(gz2) == len(pd.read_csv(mock / LAYOUT["gz2_catalog_path"]))
    assert all((out / LAYOUT["gz2_image_dir"] / f"{i}.jpg").is_file() for i in gz2["id_str"])
    g10 = open_galaxy10(out / LAYOUT["galaxy10_path"])
    assert len(g10.ans) == MOCK.n_galaxy10
    g10.close()
    for name in want["name"]:  # the plain cube was gzipped under the standard name, with the same data
        got = read_cube(out / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}")
        ref = read_cube(mock / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}")
        np.testing.assert_array_equal(got.flux, ref.flux)
        np.testing.assert_array_equal(got.wave, ref.wave)

    assert summary == {"n_califa": 4, "n_cutouts": 4, "n_gz2": len(gz2), "n_galaxy10": 4}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "local" and manifest["n_gz2"] == len(gz2)
    assert manifest["placed"]["gzip"] == 1
    assert manifest["sources"]["cube_dir"] == str(Path(user.cube_dir).resolve())
    assert not (out / "stale.txt").exists() and not (out / "truth").exists()
    assert not list(tmp_path.glob(".raw.partial*"))
    placed = out / LAYOUT["cutout_dir"] / f"{want['name'].iloc[0]}.jpg"
    original = Path(user.cutout_index_path).parent / "jpeg" / f"{want['name'].iloc[0]}_dr10.jpg"
    assert placed.is_symlink() == (link == "symlink")
    assert placed.samefile(original) == (link != "copy")  # hard link: same inode; copy: a new file


def test_missing_cubes_are_all_named(user, tmp_path):
    names = pd.read_csv(user.morphology_path)["name"].tolist()
    for name in names[2:]:
        (Path(user.cube_dir) / f"{name}{CUBE_SUFFIX}").unlink()
    out = tmp_path / "raw"
    with pytest.raises(InputError, match=r"no cube for 2 of 4 galaxies") as err:
        ingest_local(user, out)
    assert all(name in str(err.value) for name in names[2:])
    _left_nothing(out)


def test_cube_header_without_crval3_is_named(user, tmp_path):
    name = pd.read_csv(user.morphology_path)["name"].iloc[1]
    path = Path(user.cube_dir) / f"{name}{CUBE_SUFFIX}"
    with fits.open(path) as hdul:
        del hdul[0].header["CRVAL3"]
        hdul.writeto(path, overwrite=True)
    out = tmp_path / "raw"
    with pytest.raises(InputError, match=rf"{name}\.V500\.rscube\.fits\.gz: no wavelength axis: header lacks CRVAL3"):
        ingest_local(user, out)
    _left_nothing(out)


def test_gz2_row_without_image_is_an_error(user, tmp_path):
    objid = str(pd.read_csv(user.gz2_catalog_path, dtype={"dr7objid": str})["dr7objid"].iloc[3])
    (Path(user.gz2_image_dir) / f"{objid}.jpg").unlink()
    out = tmp_path / "raw"
    with pytest.raises(InputError, match=rf"1 of \d+ GZ2 rows .* have no image <dr7objid>\.jpg, e\.g\. {objid}\.jpg"):
        ingest_local(user, out)
    _left_nothing(out)


def test_gz2_catalogue_without_a_needed_column_is_an_error(user, tmp_path):
    gz2 = pd.read_csv(user.gz2_catalog_path, dtype={"dr7objid": str})
    gz2.drop(columns=[COL_SMOOTH]).to_csv(user.gz2_catalog_path, index=False)
    out = tmp_path / "raw"
    with pytest.raises(InputError, match=rf"column\(s\) '{COL_SMOOTH}' missing in .*hart16\.csv"):
        ingest_local(user, out, gz2_columns=REQUIRED_COLUMNS)
    _left_nothing(out)


def test_failure_while_placing_files_leaves_the_old_tree(user, tmp_path, monkeypatch):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    calls = []

    def failing_place(src, dst, link):
        calls.append(src)
        if len(calls) == 3:
            raise OSError("disk full")
        return "copy"

    monkeypatch.setattr(local, "_place", failing_place)
    with pytest.raises(OSError, match="disk full"):
        ingest_local(user, out)
    assert (out / "keep.txt").read_text() == "old"
    assert not list(tmp_path.glob(".raw.partial*"))


def test_sources_inside_the_output_directory_are_refused(user, tmp_path):
    out = Path(user.cube_dir).parent
    with pytest.raises(InputError, match=r"lies inside .* which ingest replaces"):
        ingest_local(user, out)
    assert Path(user.cube_dir).is_dir()


def _params(tmp_path: Path, source: str, paths: dict) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["source"] = source
    params["ingest"]["local"] = {k: str(v) for k, v in paths.items()}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_stage_ingests_local_sources(user, tmp_path, stage):
    main = stage("ingest").main
    paths = {k: str(v) for k, v in vars(user).items()}
    main(["--params", str(_params(tmp_path, "local", paths)), "--out-dir", str(tmp_path / "raw")])
    assert json.loads((tmp_path / "raw" / "manifest.json").read_text())["n_califa"] == 4

    paths["cube_dir"] = ""
    with pytest.raises(ParamsError, match=r"ingest\.local\.cube_dir empty"):
        main(["--params", str(_params(tmp_path, "local", paths)), "--out-dir", str(tmp_path / "raw2")])
    with pytest.raises(ParamsError, match=r"ingest\.source = 'ftp'; expected one of synthetic \| local \| remote"):
        main(["--params", str(_params(tmp_path, "ftp", paths)), "--out-dir", str(tmp_path / "raw2")])
    assert not (tmp_path / "raw2").exists()


def test_local_manga_logcubes_join_the_tree_with_their_survey(tmp_path):
    """A user's MaNGA LOGCUBEs (one plain, one gzipped) and eCALIFA cubes in one directory, the table saying whose."""
    mock = tmp_path / "mock"
    generate_survey(mock, SkyConfig(n_califa=3, n_gz2_field=4, n_galaxy10=2, cutout_size=48, cube_nx=6, cube_ny=6,
                                    workers=1, gz2_footprint_fraction=1.0, survey="both", n_manga=2,
                                    manga_spaxels=6))
    morph = pd.read_csv(mock / LAYOUT["morphology_path"], dtype={"name": str})
    first_manga = mock / LAYOUT["cube_dir"] / cube_file(morph.loc[morph["survey"] == "manga", "name"].iloc[0], "manga")
    first_manga.with_suffix("").write_bytes(gzip.decompress(first_manga.read_bytes()))  # manga-...-LOGCUBE.fits
    first_manga.unlink()
    src = LocalSources(*(mock / LAYOUT[k] for k in ("morphology_path", "cube_dir", "cutout_index_path",
                                                    "gz2_catalog_path", "gz2_image_dir", "galaxy10_path")))
    out = tmp_path / "raw"
    ingest_local(src, out, link="copy")
    placed = read_morphology(out / LAYOUT["morphology_path"])
    assert placed["survey"].tolist() == ["califa"] * 3 + ["manga"] * 2
    for name, survey in zip(placed["id_str"], placed["survey"], strict=True):
        cube = read_cube(out / LAYOUT["cube_dir"] / cube_file(name, survey))
        assert cube.name == name and np.isfinite(cube.flux).any()
    (mock / LAYOUT["cube_dir"] / cube_file(placed["id_str"].iloc[4], "manga")).unlink()
    with pytest.raises(InputError, match=r"no cube for 1 of 5 galaxies .* for survey manga\): 1000[12]-"):
        ingest_local(src, tmp_path / "raw2", link="copy")
