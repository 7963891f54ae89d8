"""End-to-end tests of the mock survey: the `ingest` stage on the tiny profile, read like real files."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from specmorph.sky import survey
from specmorph.sky.survey import CUBE_SUFFIX, LAYOUT, SkyConfig, generate_survey
from specmorph.taxonomy import CALIFA_TYPES, CLASSES

REPO = Path(__file__).resolve().parents[2]
TINY = SkyConfig(seed=5, n_califa=8, gz2_footprint_fraction=0.5, n_gz2_field=12, n_galaxy10=10, cutout_size=96,
                 cube_n_wave=1877, cube_nx=12, cube_ny=12, workers=1)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("sky") / "raw"
    generate_survey(out, TINY)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_stage_writes_the_tiny_profile(tmp_path, stage):
    main = stage("ingest").main
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "tiny"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["--params", str(tmp_path / "params.yaml"), "--out-dir", str(tmp_path / "raw")])
    manifest = json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert manifest["n_califa"] == params["sky"]["tiny"]["n_califa"]
    assert not list(tmp_path.glob(".*partial*"))


def test_catalogues_have_the_real_columns(raw):
    morph = pd.read_csv(raw / LAYOUT["morphology_path"])
    assert list(morph.columns) == ["name", "ra", "dec", "redshift", "hubtyp"]
    assert set(morph["hubtyp"]) <= set(CALIFA_TYPES)
    index = pd.read_csv(raw / LAYOUT["cutout_index_path"])
    assert list(index.columns) == ["name", "ra", "dec", "file"]
    for f in index["file"]:
        image = Image.open(raw / "sdss" / f)
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (96, 96)
    gz2 = pd.read_csv(raw / LAYOUT["gz2_catalog_path"])
    assert list(gz2.columns[:9]) == ["dr7objid", "ra", "dec", "rastring", "decstring", "sample", "gz2_class",
                                     "total_classifications", "total_votes"]
    assert "t01_smooth_or_features_a02_features_or_disk_debiased" in gz2.columns
    assert gz2["dr7objid"].dtype == np.int64
    for objid in gz2["dr7objid"]:
        assert (raw / LAYOUT["gz2_image_dir"] / f"{objid}.jpg").is_file()


def test_cubes_open_like_ecalifa(raw):
    morph = pd.read_csv(raw / LAYOUT["morphology_path"])
    for _, row in morph.iterrows():
        with fits.open(raw / LAYOUT["cube_dir"] / f"{row['name']}{CUBE_SUFFIX}") as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "ERROR", "BADPIX"]
            h = hdul[0].header
            assert hdul[0].data.shape == (1877, 12, 12) and h["BITPIX"] == -32  # float32
            assert (h["CRVAL3"], h["CDELT3"], h["CRPIX3"]) == (3749, 2, 1)
            assert h["OBJECT"] == row["name"]
            assert h["MED_VEL"] == pytest.approx(row["redshift"] * 299792.458, rel=1e-4)
            centre = WCS(h).celestial.pixel_to_world((12 - 1) / 2, (12 - 1) / 2)
            offset = centre.separation(SkyCoord(row["ra"], row["dec"], unit="deg")).arcsec
            assert offset < 0.75  # within one spaxel of the cube centre (even size: half-spaxel off)


def test_galaxy10_has_the_real_layout(raw):
    with h5py.File(raw / LAYOUT["galaxy10_path"]) as f:
        assert f["images"].shape == (10, 256, 256, 3) and f["images"].dtype == np.uint8
        assert f["ans"].dtype == np.uint8 and f["ans"][:].max() <= 9
        for key in ("ra", "dec", "redshift"):
            assert f[key].shape == (10,) and f[key].dtype == np.float64


def test_gz2_contains_califa_galaxies_at_their_positions(raw):
    truth = pd.read_csv(raw / "truth" / "gz2.csv")
    morph = pd.read_csv(raw / LAYOUT["morphology_path"]).set_index("name")
    matched = truth[truth["califa_name"].notna() & (truth["califa_name"] != "")]
    assert len(matched) > 0
    for _, row in matched.iterrows():
        c = morph.loc[row["califa_name"]]
        sep = SkyCoord(c["ra"], c["dec"], unit="deg").separation(SkyCoord(row["ra"], row["dec"], unit="deg"))
        assert sep.arcsec < 3.0
    assert set(truth["label"]) <= set(range(len(CLASSES)))


def test_same_seed_gives_byte_identical_catalogues(raw, tmp_path):
    again = tmp_path / "raw"
    generate_survey(again, TINY)
    for key in ("morphology_path", "cutout_index_path", "gz2_catalog_path"):
        assert _digest(raw / LAYOUT[key]) == _digest(again / LAYOUT[key])
    name = pd.read_csv(raw / LAYOUT["morphology_path"])["name"].iloc[0]
    cube = Path(LAYOUT["cube_dir"]) / f"{name}{CUBE_SUFFIX}"
    assert _digest(raw / cube) == _digest(again / cube)


def test_failure_leaves_no_partial_directory(tmp_path, monkeypatch):
    out = tmp_path / "raw"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(survey.catalogs, "gz2_table", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_survey(out, TINY)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_positions_are_the_same_bits_on_every_numpy_simd_path():
    """Declinations come out bit for bit alike with numpy's AVX-512 kernels on and off (they print in full)."""
    code = ("import sys, numpy as np; from specmorph.sky.samples import random_positions; "
            "ra, dec = random_positions(np.random.default_rng(0), 2000, (100.0, 260.0), (-5.0, 60.0)); "
            "sys.stdout.write(ra.tobytes().hex() + dec.tobytes().hex())")
    outs = []
    for disabled in ("", "X86_V4 AVX512F AVX512_SKX"):
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disabled}
        outs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                   check=True).stdout)
    assert outs[0] == outs[1] and len(outs[0]) == 2 * 2 * 2000 * 8
