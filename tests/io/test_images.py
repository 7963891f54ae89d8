"""Tests for read_image: JPEG, PNG (gray, RGBA, 16-bit), FITS (2-D, 3-D) and broken files."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from specmorph.errors import InputError, NoDataError
from specmorph.io.images import asinh_stretch, read_image

SDSS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_examples"


def _smooth_rgb(h: int = 40, w: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4, yy * 6, np.full((h, w), 128)], axis=-1).astype(np.uint8)


def test_jpeg_round_trip(tmp_path):
    rgb = _smooth_rgb()
    path = tmp_path / "a.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    out = read_image(path)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.abs(out.astype(int) - rgb).mean() < 3


def test_png_gray_rgba_and_16bit(tmp_path):
    rgb = _smooth_rgb()
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png"), np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.concatenate([rgb, np.full((40, 60, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)  # alpha dropped, colours untouched
    Image.fromarray(gray.astype(np.uint16) * 256 + 255).save(tmp_path / "w.png")
    assert np.array_equal(read_image(tmp_path / "w.png"), np.repeat(gray[:, :, None], 3, axis=2))


def test_fits_2d_stretch_replicated_and_flipped(tmp_path):
    data = np.zeros((30, 40), np.float32)
    data[0, 5] = 1000.0  # FITS row 0 is the bottom of the displayed image
    data[10:20, 10:30] = np.linspace(0, 50, 20, dtype=np.float32)
    data[29, 39] = np.nan
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(data).writeto(path)
    out = read_image(path)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out[-1, 5, 0] == 255 and out[0, 5, 0] == 0
    assert out[0, 39, 0] == 0  # NaN
    ramp = out[::-1][15, 10:30, 0].astype(int)
    assert (np.diff(ramp) >= 0).all() and ramp[-1] > ramp[0]
    # asinh lifts the faint end above a linear stretch
    assert asinh_stretch(np.linspace(0, 1, 1001))[100] > 0.1 * 255


def test_fits_3d_channels_first_and_last_gz(tmp_path):
    cube = np.zeros((3, 20, 24), np.float32)
    for k, (y, x) in enumerate([(2, 3), (10, 12), (17, 20)]):
        cube[k, y, x] = 10.0 * (k + 1)
    fits.PrimaryHDU(cube).writeto(tmp_path / "first.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.moveaxis(cube, 0, -1))]).writeto(tmp_path / "last.fits.gz")
    for name in ("first.fits", "last.fits.gz"):
        out = read_image(tmp_path / name)
        assert out.shape == (20, 24, 3)
        for k, (y, x) in enumerate([(2, 3), (10, 12), (17, 20)]):
            assert out[19 - y, x, k] == 255  # each channel stretched on its own; rows flipped
            assert out[..., k].sum() == 255


def test_fits_wrong_shape(tmp_path):
    fits.PrimaryHDU(np.zeros((5, 8, 8), np.float32)).writeto(tmp_path / "cube.fits")
    with pytest.raises(InputError, match=r"cube\.fits.*\(5, 8, 8\)"):
        read_image(tmp_path / "cube.fits")
    fits.PrimaryHDU(np.zeros(8, np.float32)).writeto(tmp_path / "spec.fits")
    with pytest.raises(InputError, match=r"spec\.fits.*no HDU"):
        read_image(tmp_path / "spec.fits")


def test_truncated_and_corrupt_files_raise_input_error(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    full = tmp_path / "full.jpg"
    Image.fromarray(noisy).save(full, quality=90)
    half = tmp_path / "half.jpg"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match=r"half\.jpg.*truncated"):
        read_image(half)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match=r"junk\.png"):
        read_image(junk)
    fpath = tmp_path / "t.fits"
    fits.PrimaryHDU(np.ones((100, 100), np.float32)).writeto(fpath)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(fpath.read_bytes()[:20000])
    with pytest.raises(InputError, match=r"cut\.fits"):
        read_image(cut)
    with pytest.raises(InputError, match=r"missing\.jpg.*no such file"):
        read_image(tmp_path / "missing.jpg")


@pytest.mark.skipif(not SDSS_DIR.is_dir(), reason="real SDSS cutouts (../shared/data) not present")
def test_real_sdss_jpeg():
    path = sorted(SDSS_DIR.glob("*.jpg"))[0]
    out = read_image(path)
    assert out.shape == (424, 424, 3) and out.dtype == np.uint8
    assert out[212, 212].sum() > out[:20, :20].mean(axis=(0, 1)).sum()  # galaxy brighter than the sky corner


def test_a_fits_image_without_a_finite_pixel_is_no_data(tmp_path):
    path = tmp_path / "blank.fits"
    fits.PrimaryHDU(np.full((3, 20, 30), np.nan, np.float32)).writeto(path)
    with pytest.raises(NoDataError, match=r"blank\.fits: no finite pixel \(all NaN or inf\)"):
        read_image(path)
    assert issubclass(NoDataError, InputError)  # callers that only know InputError still see a clear error
