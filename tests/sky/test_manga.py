"""Tests of the mock's MaNGA-format cubes: the bundle footprint, and a round trip through `io.manga.read_logcube`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from specmorph.io.catalogs import product_surveys, read_gz2, read_morphology
from specmorph.io.cubes import read_cube
from specmorph.io.hdf5 import read_product
from specmorph.io.layout import DRPALL_PATH, LAYOUT, cube_file
from specmorph.io.manga import CRITICAL, DONOTUSE, read_drpall, read_logcube, select_drpall, vacuum_to_air
from specmorph.params import ParamsError
from specmorph.sky import cube
from specmorph.sky.manga import (
    BUNDLES,
    NOCOV,
    bundle_for,
    hexagon,
    logcube_from_califa,
    manga_wave,
    write_drpall,
    write_logcube,
)
from specmorph.sky.render import half_light
from specmorph.sky.samples import califa_sample
from specmorph.sky.survey import SkyConfig, generate_survey
from tests.sky.test_cube import SPIRAL


@pytest.mark.parametrize("fibres", sorted(BUNDLES))
def test_the_bundle_footprint_is_a_hexagon_of_the_real_size(fibres):
    d = BUNDLES[fibres]
    inside = hexagon(160, 160, d, scale=0.25)
    area = inside.sum() * 0.25**2  # arcsec²
    assert area == pytest.approx(np.sqrt(3) / 2 * d**2, rel=0.02)  # a hexagon's area from its flat width
    assert inside[80, 80] and inside[80, 80 + int(0.49 * d / 0.25)] and not inside[80 + int(0.51 * d / 0.25), 80]


def _linear_cube(ny: int = 16, nx: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wave = cube.CRVAL3 + cube.CDELT3 * np.arange(1877)
    scale = 1.0 + np.arange(ny * nx, dtype=np.float64).reshape(ny, nx) / 100
    flux = ((3.0 + 1e-3 * wave)[:, None, None] * scale).astype(np.float32)
    return flux, np.full(flux.shape, 0.2, np.float32), np.zeros(flux.shape, np.uint8)


def test_a_califa_cube_goes_through_the_manga_format_and_back(tmp_path):
    """A spectrum linear in wavelength survives both interpolations exactly: the 2x2 sums of the read 0.5″
    spaxels inside the bundle give back the 1″ flux on every channel MaNGA covers; outside it, NaN."""
    flux, error, badpix = _linear_cube()
    arrays = logcube_from_califa(flux, error, badpix, bundle=19)
    assert arrays["FLUX"].shape == (4563, 32, 32) and np.array_equal(arrays["WAVE"], manga_wave())
    path = tmp_path / "manga-7443-1901-LOGCUBE.fits.gz"
    write_logcube(path, SPIRAL, arrays, "7443-1901", "1-1234")
    with fits.open(path) as hdul:
        assert hdul["FLUX"].header["BUNIT"] == "1E-17 erg/s/cm^2/Ang/spaxel"
        assert hdul[0].header["PLATEIFU"] == "7443-1901"
    back = read_logcube(path)
    assert back.name == "7443-1901" and back.flux.shape == (1877, 32, 32)
    summed = back.flux.reshape(1877, 16, 2, 16, 2).sum(axis=(2, 4))  # (1877, 16, 16), NaN if any part is
    inside = hexagon(32, 32, BUNDLES[19]).reshape(16, 2, 16, 2).all(axis=(1, 3))
    seen = np.isfinite(summed[:, inside])
    # the first and last channels draw on MaNGA pixels beyond the mock's range (3749-7501 Å): NaN
    assert seen[1:-1].all() and not seen[0].any() and not seen[-1].any()
    np.testing.assert_allclose(summed[1:-1, inside], flux[1:-1, inside], rtol=1e-5)
    outside = ~hexagon(32, 32, BUNDLES[19])
    assert np.isnan(back.flux[:, outside]).all()
    assert (arrays["MASK"][:, outside] == NOCOV | DONOTUSE).all()


def test_bad_califa_channels_and_the_range_beyond_the_mock_are_donotuse():
    flux, error, badpix = _linear_cube(4, 4)
    badpix[1000] = 1  # one bad eCALIFA channel (5749 Å)
    arrays = logcube_from_califa(flux, error, badpix, bundle=127)
    air = vacuum_to_air(manga_wave())
    beyond = (air < 3749.0) | (air > 7501.0)  # outside the mock's range
    assert (arrays["MASK"][beyond] & DONOTUSE).all() and (arrays["IVAR"][beyond] == 0).all()
    near = np.abs(air - 5749.0) < 2.0  # MaNGA pixels drawn from the bad channel
    assert (arrays["MASK"][near] & DONOTUSE).all()
    assert not (arrays["MASK"][~near & ~beyond] & DONOTUSE).any()
    with pytest.raises(ValueError, match="bundles have"):
        logcube_from_califa(flux, error, badpix, bundle=20)


def test_a_mock_galaxy_keeps_its_integrated_spectrum_in_the_manga_format(tmp_path):
    """A built mock cube (lines, kinematics, noise, bad channels) written as a LOGCUBE and read back:
    the integrated spectrum agrees with the eCALIFA one to well under a per cent in the median channel
    (two linear interpolations smooth the lines a little)."""
    flux, error, badpix = cube.build_cube(SPIRAL, 1877, 12, 12, rng=np.random.default_rng(0))
    path = tmp_path / "manga-1-127-LOGCUBE.fits.gz"
    write_logcube(path, SPIRAL, logcube_from_califa(flux, error, badpix, bundle=127), "1-127", "1-1")
    back = read_logcube(path)
    spaxels = (badpix == 0).mean(axis=0) > 0.9  # (12, 12) inside eCALIFA's own footprint
    read = back.flux.reshape(1877, 12, 2, 12, 2).sum(axis=(2, 4))[:, spaxels]  # (1877, K) back at 1″
    ok = np.isfinite(read).all(axis=1) & (badpix[:, spaxels] == 0).all(axis=1)  # channels good in both
    assert spaxels.sum() > 50 and ok.mean() > 0.9
    califa, manga = flux[:, spaxels][ok].sum(axis=1), read[ok].sum(axis=1)
    assert np.median(np.abs(manga / califa - 1)) < 0.005


def test_the_mock_drpall_table_reads_back_as_a_real_one(tmp_path):
    rows = pd.DataFrame({"plateifu": ["10001-1901", "10001-3701", "10002-1902"], "mangaid": ["1-1", "1-2", "1-1"],
                         "objra": [10.5, 11.0, 10.5], "objdec": [-1.0, 2.0, -1.0], "nsa_z": [0.03, 0.05, 0.03],
                         "drp3qual": [0, CRITICAL, 0], "ifudesignsize": [19, 37, 19], "redsn2": [5.0, 9.0, 7.5]})
    path = tmp_path / "drpall-v3_1_1.fits"
    write_drpall(path, rows)
    assert fits.getheader(path, 1)["EXTNAME"] == "MANGA" and not list(tmp_path.glob(".*.tmp"))
    back = read_drpall(path)
    assert list(back["plateifu"]) == list(rows["plateifu"]) and list(back["ifudesignsize"]) == [19, 37, 19]
    kept, dropped = select_drpall(back)
    assert list(kept["plateifu"]) == ["10002-1902"] and len(dropped) == 2
    with pytest.raises(ValueError, match="nsa_z"):
        write_drpall(tmp_path / "bad.fits", rows.drop(columns=["nsa_z"]))


@pytest.fixture(scope="module")
def both_surveys(tmp_path_factory):
    """Tiny mock surveys with and without MaNGA (same seed)."""
    root = tmp_path_factory.mktemp("manga_survey")
    common = dict(seed=3, n_califa=5, gz2_footprint_fraction=0.5, n_gz2_field=12, n_galaxy10=2, cutout_size=48,
                  cube_nx=6, cube_ny=6, workers=1, manga_spaxels=6)
    generate_survey(root / "both", SkyConfig(**common, survey="both", n_manga=8))
    generate_survey(root / "califa", SkyConfig(**common, survey="califa", n_manga=8))
    generate_survey(root / "manga", SkyConfig(**common, survey="manga", n_manga=8))
    return root


def test_the_mock_manga_survey_lays_out_drpall_cubes_and_rows_the_stages_read(both_surveys):
    raw = both_surveys / "both"
    morphology = read_morphology(raw / LAYOUT["morphology_path"])
    assert morphology["survey"].value_counts().to_dict() == {"manga": 8, "califa": 5}
    kept, dropped = select_drpall(read_drpall(raw / DRPALL_PATH))
    manga_rows = morphology[morphology["survey"] == "manga"]
    assert sorted(kept["plateifu"]) == sorted(manga_rows["id_str"])  # one kept observation per galaxy
    assert set(dropped["mangaid"]) <= set(kept["mangaid"])
    for name in manga_rows["id_str"]:
        c = read_cube(raw / LAYOUT["cube_dir"] / cube_file(name, "manga"))
        assert c.name == name and c.flux.shape == (1877, 12, 12) and np.isfinite(c.flux).any()
        # eCALIFA's [OI]5577 window is not flagged in MaNGA's cubes: the spectral stages keep those channels
        near_5577 = (c.wave > 5570) & (c.wave < 5585)
        assert np.isfinite(c.flux[near_5577]).any(axis=(1, 2)).all()
    gz2 = read_gz2(raw / LAYOUT["gz2_catalog_path"])
    assert len(gz2) == len(read_gz2(both_surveys / "califa" / LAYOUT["gz2_catalog_path"])) + 8
    assert (raw / LAYOUT["cutout_dir"] / f"{manga_rows['id_str'].iloc[0]}.jpg").is_file()


def test_a_manga_survey_keeps_the_gz2_catalogue_size_with_manga_galaxies_in_place_of_field_ones(both_surveys):
    califa = read_gz2(both_surveys / "califa" / LAYOUT["gz2_catalog_path"])
    manga = read_gz2(both_surveys / "manga" / LAYOUT["gz2_catalog_path"])
    morphology = read_morphology(both_surveys / "manga" / LAYOUT["morphology_path"])
    assert set(morphology["survey"]) == {"manga"} and len(morphology) == 8
    assert len(manga) == len(califa)
    truth = pd.read_csv(both_surveys / "califa" / "truth" / "gz2.csv")
    field = set(truth.loc[truth["califa_name"].isna(), "dr7objid"])
    kept = set(manga["dr7objid"]) & set(califa["dr7objid"])
    assert kept < field and len(kept) == len(califa) - 8  # every eCALIFA row gone, field rows kept in place


def test_adding_manga_leaves_the_califa_survey_as_it_was(both_surveys):
    both, califa = both_surveys / "both", both_surveys / "califa"
    assert not (califa / "manga").exists()
    assert "n_manga" not in (califa / "manifest.json").read_text()
    assert '"n_manga": 8' in (both / "manifest.json").read_text()
    assert "survey" not in (califa / LAYOUT["morphology_path"]).read_text().splitlines()[0]
    old = (califa / LAYOUT["morphology_path"]).read_text().splitlines()
    new = (both / LAYOUT["morphology_path"]).read_text().splitlines()
    assert [line + ",califa" for line in old[1:]] == new[1:len(old)]
    for cutout in sorted((califa / LAYOUT["cutout_dir"]).iterdir()):
        assert (both / LAYOUT["cutout_dir"] / cutout.name).read_bytes() == cutout.read_bytes()
    for image in sorted((califa / LAYOUT["gz2_image_dir"]).iterdir()):
        assert (both / LAYOUT["gz2_image_dir"] / image.name).read_bytes() == image.read_bytes()


def test_the_cube_products_record_each_galaxys_survey(both_surveys, stage, tmp_path):
    """prepare_cubes and spectra store `survey` per galaxy where any is MaNGA; an eCALIFA-only product has none."""
    for name in ("both", "califa"):
        raw = both_surveys / name
        args = ["--params", "params.yaml", "--morphology", str(raw / LAYOUT["morphology_path"]),
                "--cube-dir", str(raw / LAYOUT["cube_dir"])]
        stage("prepare_cubes").main([*args, "--out", str(tmp_path / name / "cubes.h5")])
        arrays, ids, _ = read_product(tmp_path / name / "cubes.h5", None)
        morphology = read_morphology(raw / LAYOUT["morphology_path"]).set_index("id_str")
        assert list(product_surveys(arrays, len(ids))) == list(morphology.loc[ids, "survey"])
        assert ("survey" in arrays) == (name == "both")
    raw = both_surveys / "both"
    images = tmp_path / "images.csv"
    pd.DataFrame({"galaxy_id": ["8485-1901"], "split": ["test"]}).to_csv(images, index=False)
    stage("spectra").main([*args[:2], "--morphology", str(raw / LAYOUT["morphology_path"]), "--cube-dir",
                           str(raw / LAYOUT["cube_dir"]), "--images", str(images), "--out", str(tmp_path / "pca.h5"),
                           "--plot", str(tmp_path / "pca.csv"), "--metrics", str(tmp_path / "spectra.json")])
    arrays, ids, _ = read_product(tmp_path / "pca.h5", ["features", "survey"])
    assert sorted(set(arrays["survey"])) == ["califa", "manga"] and len(arrays["survey"]) == len(ids) == 13


def test_a_bundle_spans_three_half_light_radii():
    for g in califa_sample(np.random.default_rng(0), 30):
        fibres = bundle_for(g)
        assert BUNDLES[fibres] >= 3 * half_light(g) or fibres == max(BUNDLES)
        smaller = [n for n in BUNDLES if n < fibres]
        assert not smaller or BUNDLES[max(smaller)] < 3 * half_light(g)


def test_the_survey_choice_is_checked():
    with pytest.raises(ParamsError, match=r"ingest\.survey = 'sdss'"):
        SkyConfig(survey="sdss")
    with pytest.raises(ParamsError, match="n_manga >= 1"):
        SkyConfig(survey="manga", n_manga=0)
    assert cube_file("8485-1901", "manga") == "manga-8485-1901-LOGCUBE.fits.gz"
    assert cube_file("NGC0001") == "NGC0001.V500.rscube.fits.gz"
    with pytest.raises(ValueError, match="unknown survey 'sami'"):
        cube_file("x", "sami")
