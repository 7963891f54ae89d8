"""Tests for the shared preprocessing path and the training augmentation."""

import numpy as np
import pytest

from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig, apply, preprocess


def _galaxy_and_star(size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    img = 20 + 2 * rng.standard_normal((size, size))
    img += 120 * np.exp(-np.hypot(yy - c, xx - c) / 8)
    img += 230 * np.exp(-np.hypot(yy - 25, xx - 170) / 6)  # star near a corner
    g = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def test_preprocess_shape_dtype_range_and_determinism():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (424, 424, 3), dtype=np.uint8)
    x = preprocess(rgb, 96)
    assert x.shape == (3, 96, 96) and x.dtype == np.float32 and x.flags.c_contiguous
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.array_equal(x, preprocess(rgb, 96))


def test_preprocess_known_values_and_channel_order():
    rgb = np.zeros((50, 50, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51
    x = preprocess(rgb, 20)
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], 0.0) and np.allclose(x[2], 0.2)
    same = preprocess(rgb, 50)  # no resize: exact scaling
    assert np.array_equal(same[2], np.full((50, 50), np.float32(51) / np.float32(255)))


def test_preprocess_centre_crops_non_square_and_crop_fraction():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, 50:150] = 255  # the central square is white, the side bands black
    assert np.allclose(preprocess(rgb, 100), 1.0)
    square = np.zeros((100, 100, 3), np.uint8)
    square[25:75, 25:75] = 200
    assert np.allclose(preprocess(square, 10, crop_fraction=0.5), 200 / 255)
    assert preprocess(square, 10).min() == 0.0


def test_preprocess_downsampling_is_antialiased():
    checker = ((np.indices((200, 200)).sum(axis=0) % 2) * 255).astype(np.uint8)
    x = preprocess(np.repeat(checker[:, :, None], 3, axis=2), 50)
    assert np.allclose(x, 0.5, atol=0.02)  # a 1-px checkerboard averages to grey, not aliased stripes


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((10, 10, 3), np.float32), 8)
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros((10, 10), np.uint8), 8)


def test_apply_with_and_without_segmentation():
    rgb = _galaxy_and_star()
    plain = PreprocessConfig(size=64)
    seg = PreprocessConfig(size=64, segment=True, segment_params=SegmentParams(sigma=1.5))
    assert np.array_equal(apply(rgb, plain), preprocess(rgb, 64))
    x = apply(rgb, seg)
    assert x.shape == (3, 64, 64)
    assert np.array_equal(x, apply(rgb, seg))
    assert x[:, 32, 32].min() > 0.3  # galaxy kept
    assert x[:, :16, 48:].max() == 0.0  # star and sky masked
    assert apply(rgb, plain)[:, :16, 48:].max() > 0.5


def test_config_round_trip_and_validation():
    cfg = PreprocessConfig(size=128, crop_fraction=0.8, segment=True, segment_params=SegmentParams(sigma=1.0))
    d = cfg.to_dict()
    assert d["segment_params"]["sigma"] == 1.0
    assert PreprocessConfig.from_dict(d) == cfg and cfg.segment_params.deblend  # deblending: the default now
    old = {**d, "segment_params": {k: v for k, v in d["segment_params"].items() if not k.startswith("deblend")}}
    assert not PreprocessConfig.from_dict(old).segment_params.deblend  # a checkpoint from before: as trained
    with pytest.raises(ValueError, match=r"segment_params\.sigmaa"):
        PreprocessConfig.from_dict({"size": 8, "segment_params": {"sigmaa": 1.0}})
    with pytest.raises(ValueError, match="colour"):
        PreprocessConfig.from_dict({"size": 8, "colour": True})
    with pytest.raises(ValueError, match="crop_fraction"):
        PreprocessConfig(size=8, crop_fraction=0.0)
