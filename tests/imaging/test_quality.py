"""Tests for the input checks: constant images, the too-small rule, the central detection and its sky mesh."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from specmorph.imaging.quality import (
    CONSTANT,
    DETECT_SIGMA,
    MAX_UPSAMPLE,
    NO_CENTRAL_SOURCE,
    SIGMA_FLOOR,
    SMOOTH_SIGMA,
    TOO_SMALL,
    central_snr,
    crop_side,
    input_flag,
    mesh_sky,
)
from specmorph.imaging.transforms import PreprocessConfig, preprocess
from specmorph.io.images import read_image
from specmorph.sky.observe import SDSS_PIXSCALE, encode_jpeg, observe_sdss, render_cutout, sdss_rgb
from specmorph.sky.population import draw_galaxy
from specmorph.sky.survey import gz2_pixscale

SDSS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_examples"
PREP = PreprocessConfig(size=64, crop_fraction=0.5)  # the shipped models' input (params.yaml train/cvt)


def _gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _blob(size: int, amp: float, width: float) -> np.ndarray:
    """(size, size) Gaussian of peak `amp` and std `width` px on the centre pixel (size odd)."""
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    return amp * np.exp(-0.5 * (yy**2 + xx**2) / width**2)


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encode_jpeg(rgb))).convert("RGB"))


def _mock_galaxy(seed: int, label: str, size: int = 424) -> np.ndarray:
    """A GZ2-like mock cutout, rendered as the mock survey renders it, through JPEG."""
    rng = np.random.default_rng(seed)
    g = draw_galaxy(rng, f"M{seed}", 180.0, 10.0, None, label_name=label, field=True)
    return _jpeg(render_cutout(g, size, gz2_pixscale(g, size), rng=rng))


def _blank_sky(seed: int, size: int = 424) -> np.ndarray:
    """Mock SDSS sky noise only: no galaxy, no field stars or galaxies, through JPEG."""
    scale = SDSS_PIXSCALE * 424 / size
    gri = observe_sdss(np.zeros((3, size, size), np.float32), scale, np.random.default_rng(seed),
                       n_stars_per_arcmin2=0.0, n_galaxies_per_arcmin2=0.0, neighbour_prob=0.0, bright_star_prob=0.0)
    return _jpeg(sdss_rgb(gri, scale))


@pytest.mark.parametrize("value", [0, 17, 255])
def test_constant_images_and_constant_fits(tmp_path, value):
    assert input_flag(np.full((50, 70, 3), value, np.uint8), PREP) == CONSTANT
    assert input_flag(np.full((50, 70, 3), (value, 255 - value, 128), np.uint8), PREP) == CONSTANT  # one colour
    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.full((3, 50, 70), float(value), np.float32)).writeto(flat)
    assert input_flag(read_image(flat), PREP) == CONSTANT
    one_pixel = np.full((50, 70, 3), value, np.uint8)
    one_pixel[3, 5, 1] ^= 1  # a single differing value is not constant (and no source at the centre)
    assert input_flag(one_pixel, PREP) == NO_CENTRAL_SOURCE


@pytest.mark.parametrize(("size", "crop_fraction"), [(64, 0.5), (16, 0.7), (224, 1.0)])
def test_too_small_means_the_network_crop_is_enlarged_more_than_max_upsample_times(size, crop_fraction):
    prep = PreprocessConfig(size=size, crop_fraction=crop_fraction)
    rng = np.random.default_rng(0)
    least = math.ceil(size / MAX_UPSAMPLE / crop_fraction)  # about the least image side that passes
    for n in range(max(2, least - 4), least + 5):
        x = rng.integers(1, 255, (n + 9, n, 3), dtype=np.uint8)  # noise: never constant
        side = crop_side(n + 9, n, crop_fraction)
        assert (input_flag(x, prep) == TOO_SMALL) == (side * MAX_UPSAMPLE < size), n
        # `crop_side` is the side of the crop `preprocess` takes: at that size it is not resized
        y0, x0 = (n + 9 - side) // 2, (n - side) // 2
        crop = x[y0 : y0 + side, x0 : x0 + side].transpose(2, 0, 1) / np.float32(255.0)
        np.testing.assert_array_equal(preprocess(x, side, crop_fraction), crop)


def test_too_small_known_cases():
    assert input_flag(np.arange(75, dtype=np.uint8).reshape(5, 5, 3), PREP) == TOO_SMALL  # crop 2 px -> 64 px
    assert input_flag(np.arange(30 * 30 * 3).reshape(30, 30, 3).astype(np.uint8), PREP) == TOO_SMALL  # 15 px
    assert input_flag(_gray_rgb(_blob(33, 200.0, 3.0).astype(np.uint8)[:32, :32]), PREP) == ""  # 16 px: 4 times


def test_central_snr_on_a_flat_sky_is_the_blurred_peak_over_the_floor():
    size, amp, width = 129, 40.0, 3.0
    rgb = _gray_rgb(20.0 + _blob(size, amp, width))  # float image: no quantisation, sky std 0
    # a Gaussian of std w blurred by one of std s peaks at amp * w² / (w² + s²)
    expected = amp * width**2 / (width**2 + SMOOTH_SIGMA**2) / SIGMA_FLOOR
    assert central_snr(rgb) == pytest.approx(expected, rel=0.01)


def test_central_snr_is_invariant_to_sky_level_and_contrast():
    rng = np.random.default_rng(4)
    size = 201
    gray = _blob(size, 12.0, 4.0) + rng.normal(0.0, 6.0, (size, size))  # noise far above the floor
    base = central_snr(_gray_rgb(30.0 + gray))
    assert DETECT_SIGMA < base
    assert central_snr(_gray_rgb(90.0 + 2.5 * gray)) == pytest.approx(base, rel=1e-4)
    assert central_snr(_gray_rgb(30.0 + gray[:, ::-1].T)) == pytest.approx(base, rel=0.05)
    noise_only = central_snr(_gray_rgb(30.0 + gray - _blob(size, 12.0, 4.0)))
    assert noise_only < DETECT_SIGMA < base


def test_a_gradient_and_a_corner_star_do_not_count_as_sky_noise():
    rng = np.random.default_rng(5)
    size = 201
    gray = 30.0 + _blob(size, 10.0, 4.0) + rng.normal(0.0, 5.0, (size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    ramp = 40.0 * xx / (size - 1)  # scattered light: 40 gray levels across the image
    star = 1000.0 * np.exp(-np.hypot(yy - 10, xx - 190) / 10.0)  # fills the top-right cells of the sky mesh
    base = central_snr(_gray_rgb(gray))
    assert DETECT_SIGMA < base
    for extra in (ramp, star, ramp + star):
        assert central_snr(_gray_rgb(gray + extra)) == pytest.approx(base, rel=0.1)


def test_mesh_sky_of_gaussian_noise_on_a_ramp():
    rng = np.random.default_rng(6)
    size, level, sigma = 400, 50.0, 4.0
    noise = rng.normal(0.0, sigma, (size, size))
    ramp = np.linspace(-20.0, 20.0, size)[None, :]  # symmetric about the centre
    clipped = sigma * 0.9866  # std of a normal distribution clipped at 3 sigma
    for image in (level + noise, level + noise + ramp, level + noise + ramp.T):
        got_level, got_noise = mesh_sky(image)
        assert got_level == pytest.approx(level, abs=3 * sigma / math.sqrt(size))
        assert got_noise == pytest.approx(clipped, rel=0.03)
    assert mesh_sky(np.full((64, 64), 7.0)) == pytest.approx((7.0, SIGMA_FLOOR))


def test_images_too_small_for_a_sky_are_not_tested():
    rgb = np.zeros((12, 40, 3), np.uint8)
    rgb[5, 7] = 9
    assert math.isnan(central_snr(rgb))
    assert input_flag(rgb, PreprocessConfig(size=8)) == ""


def test_mock_galaxies_pass_and_mock_blank_sky_is_flagged():
    labels = ["round_smooth", "cigar_smooth", "edge_on_without_bulge", "unbarred_tight_spiral", "barred_spiral"]
    for k, label in enumerate(labels):
        assert input_flag(_mock_galaxy(k, label), PREP) == "", label
        assert input_flag(_mock_galaxy(k, label, size=64), PREP) == "", label
    for seed in range(4):
        for size in (424, 64):
            sky = _blank_sky(seed, size)
            assert sky.max() > sky.min()  # noise, not a constant image
            assert input_flag(sky, PREP) == NO_CENTRAL_SOURCE


@pytest.mark.skipif(not SDSS_DIR.is_dir(), reason="shared reference cutouts not available")
def test_real_sdss_cutouts_are_not_flagged():
    files = sorted(SDSS_DIR.glob("*.jpg"))
    assert files
    flagged = {f.name: input_flag(read_image(f), PREP) for f in files}
    assert {name: flag for name, flag in flagged.items() if flag} == {}
