"""Tests for galaxy segmentation: triangle threshold, component choice, closing, recentring, degeneracy."""

import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage
from skimage.filters import threshold_triangle

from specmorph.errors import InputError
from specmorph.imaging.segment import SegmentParams, segment, segment_batch, to_gray
from specmorph.io.hdf5 import params_hash, write_product
from specmorph.io.images import read_image

SDSS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_examples"
SIZE = 424
YY, XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
CENTRE = (SIZE - 1) / 2


def _noisy_sky(seed: int = 0, level: float = 20.0, noise: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level + noise * rng.standard_normal((SIZE, SIZE))


def _to_rgb(gray: np.ndarray) -> np.ndarray:
    g = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def _exp_blob(y0: float, x0: float, amp: float, scale: float) -> np.ndarray:
    return amp * np.exp(-np.hypot(YY - y0, XX - x0) / scale)


def _disc_img(y0: float, x0: float, radius: float, amp: float) -> np.ndarray:
    return amp * (np.hypot(YY - y0, XX - x0) <= radius)


def _luma_centroid(rgb: np.ndarray) -> tuple[float, float]:
    return ndimage.center_of_mass(to_gray(rgb))


def _sdss_images() -> list[np.ndarray]:
    files = sorted(SDSS_DIR.glob("*.jpg"))[:8]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


# --- triangle threshold -------------------------------------------------------------------------


def _blurred(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def test_threshold_is_the_triangle_bin_of_zack_et_al_as_in_skimage():
    """OpenCV's THRESH_TRIANGLE level is one above the triangle's bin; segment reports and applies the bin."""
    rng = np.random.default_rng(3)
    for gray in (_noisy_sky() + _disc_img(212, 212, 40, 90), _noisy_sky(1) + _exp_blob(200, 220, 120, 15),
                 255.0 - rng.exponential(10.0, (SIZE, SIZE))):  # the last: long left tail, the flipped branch
        rgb = _to_rgb(gray)
        res = segment(rgb, SegmentParams(recentre=False, closing_radius=0))
        blurred = _blurred(rgb)
        assert res.threshold == threshold_triangle(blurred)
        assert res.mask.sum() <= (blurred > res.threshold).sum()  # the central part of the pixels above it


@pytest.mark.skipif(not SDSS_DIR.is_dir(), reason="real SDSS cutouts (../shared/data) not present")
def test_threshold_is_the_triangle_bin_on_real_sdss():
    images = _sdss_images()
    assert images
    for rgb in images:
        assert segment(rgb).threshold == threshold_triangle(_blurred(rgb))


# --- component choice ---------------------------------------------------------------------------


def test_faint_central_galaxy_beats_larger_brighter_star():
    galaxy = _exp_blob(CENTRE, CENTRE, 40, 12)
    star = _exp_blob(70, 350, 230, 25) + _disc_img(70, 350, 6, 255)  # saturated core + wide halo
    rgb = _to_rgb(_noisy_sky() + galaxy + star)
    res = segment(rgb, SegmentParams(recentre=False))
    # premise: the star's thresholded region is larger than the galaxy's
    labels = cv2.connectedComponents((_blurred(rgb) > res.threshold).astype(np.uint8), connectivity=8)[1]
    star_area = (labels == labels[70, 350]).sum()
    assert labels[70, 350] != labels[212, 212] and star_area > 2 * res.mask.sum()
    assert res.mask[212, 212] and res.mask[200:224, 200:224].all()
    assert not res.mask[50:90, 330:370].any()
    assert (res.image[50:90, 330:370] == 0).all()
    assert not res.degenerate


def test_centre_on_background_picks_component_with_nearest_pixel():
    # A: small, centre 70 px away, nearest pixel ~62 px; B: large, centre 100 px away but nearest pixel ~45 px
    a = _disc_img(CENTRE, CENTRE + 70, 8, 120)
    b = _disc_img(CENTRE - 100, CENTRE, 55, 60)
    rgb = _to_rgb(_noisy_sky(5) + a + b)
    res = segment(rgb, SegmentParams(recentre=False, closing_radius=0))
    assert not res.mask[212, 212]
    assert res.mask[int(CENTRE - 100), int(CENTRE)]
    assert not res.mask[int(CENTRE), int(CENTRE + 70)]


# --- closing ------------------------------------------------------------------------------------


def test_closing_fills_one_pixel_slit_and_hole():
    img = _noisy_sky(6, noise=1.0) + _disc_img(CENTRE, CENTRE, 50, 150)
    img[212, 180:230] = 20.0  # 1-px slit from inside the disc ...
    img[150:212, 230] = 20.0  # ... joined to a 1-px radial cut reaching the disc edge
    img[230, 230] = 20.0  # 1-px hole
    rgb = _to_rgb(img)
    open_ = segment(rgb, SegmentParams(sigma=0.0, closing_radius=0, recentre=False))
    closed = segment(rgb, SegmentParams(sigma=0.0, closing_radius=3, recentre=False))
    gap = np.zeros((SIZE, SIZE), bool)
    gap[212, 180:230], gap[170:212, 230], gap[230, 230] = True, True, True
    assert not open_.mask[gap].any()
    assert closed.mask[gap].all()
    assert closed.mask.sum() - open_.mask.sum() < 2 * gap.sum()  # closing adds the gap, not a ring


def test_closing_keeps_a_mask_that_touches_the_edge():
    img = _noisy_sky(6, noise=1.0) + _disc_img(CENTRE, 20, 60, 150)  # cut by the left edge
    rgb = _to_rgb(img)
    open_ = segment(rgb, SegmentParams(sigma=0.0, closing_radius=0, recentre=False))
    closed = segment(rgb, SegmentParams(sigma=0.0, closing_radius=5, recentre=False))
    assert open_.mask[:, 0].any() and not (open_.mask & ~closed.mask).any()  # nothing eroded at the edge
    assert closed.mask.sum() - open_.mask.sum() < 0.02 * open_.mask.sum()  # nor grown


# --- deblending -----------------------------------------------------------------------------------


def test_a_touching_neighbour_is_split_off_and_reported():
    """Two exponential galaxies whose isophotes merge at the threshold: the target keeps its own side."""
    target, neighbour = _exp_blob(CENTRE, CENTRE, 120, 14), _exp_blob(CENTRE, CENTRE + 60, 90, 12)
    rgb = _to_rgb(_noisy_sky(8) + target + neighbour)
    merged = segment(rgb, SegmentParams(recentre=False, deblend=False))
    split = segment(rgb, SegmentParams(recentre=False))
    assert merged.mask[212, 212 + 60] and merged.n_removed == 0  # premise: one component holds both
    assert split.mask[212, 212] and not split.mask[212, 212 + 60]
    assert split.n_removed == 1 and 0.2 < split.flux_removed < 0.6 and not split.ambiguous
    cols = np.flatnonzero(split.mask[212])
    assert abs(cols.max() - (212 + 30)) <= 6  # the cut runs along the valley between them, halfway


def test_knots_below_the_contrast_stay_with_their_galaxy():
    """Star-forming knots (a few % of the light each) are not sources: nothing is removed."""
    galaxy = _exp_blob(CENTRE, CENTRE, 120, 18)
    knots = sum(_exp_blob(CENTRE + dy, CENTRE + dx, 25, 1.5) for dy, dx in ((20, 5), (-15, 18), (5, -22)))
    res = segment(_to_rgb(_noisy_sky(9) + galaxy + knots), SegmentParams(recentre=False))
    assert res.n_removed == 0 and res.flux_removed == 0.0
    assert np.array_equal(res.mask, segment(_to_rgb(_noisy_sky(9) + galaxy + knots),
                                            SegmentParams(recentre=False, deblend=False)).mask)


def test_an_equal_pair_at_the_centre_is_ambiguous():
    pair = _exp_blob(CENTRE, CENTRE - 12, 110, 8) + _exp_blob(CENTRE, CENTRE + 12, 110, 8)
    res = segment(_to_rgb(_noisy_sky(10) + pair), SegmentParams(recentre=False))
    assert res.n_removed == 1 and res.ambiguous


def test_deblend_params_are_checked():
    with pytest.raises(ValueError, match="deblend_contrast"):
        SegmentParams(deblend_contrast=0.0)


# --- recentring, output size, degeneracy ---------------------------------------------------------


def test_recentring_moves_centroid_to_middle():
    rgb = _to_rgb(_noisy_sky(8) + _exp_blob(150.3, 270.8, 150, 8))
    res = segment(rgb)
    cy, cx = _luma_centroid(res.image)
    assert abs(cy - CENTRE) <= 1.0 and abs(cx - CENTRE) <= 1.0
    off = segment(rgb, SegmentParams(recentre=False))
    cy0, cx0 = _luma_centroid(off.image)
    assert abs(cy0 - 150.3) < 2 and abs(cx0 - 270.8) < 2
    assert res.mask.sum() == off.mask.sum()


def test_out_size_shapes():
    rgb = _to_rgb(_noisy_sky() + _exp_blob(CENTRE, CENTRE, 100, 10))
    res = segment(rgb, SegmentParams(out_size=128))
    assert res.image.shape == (128, 128, 3) and res.image.dtype == np.uint8
    assert res.mask.shape == (128, 128) and res.mask.dtype == bool
    assert res.mask[64, 64] and not res.mask[0, 0] and res.image[0, 0].sum() == 0


@pytest.mark.parametrize(
    "gray",
    [
        np.zeros((SIZE, SIZE)),  # blank
        np.full((SIZE, SIZE), 255.0),  # all bright, constant
        np.pad(np.full((SIZE - 8, SIZE - 8), 200.0), 4) + _noisy_sky(9, 0, 1),  # bright on 96% of the image
    ],
    ids=["blank", "constant-bright", "bright-95pct"],
)
def test_degenerate_images_are_flagged_and_returned_unmasked(gray):
    rgb = _to_rgb(gray)
    res = segment(rgb)
    assert res.degenerate
    assert np.array_equal(res.image, rgb)


def test_tiny_mask_is_degenerate():
    img = np.zeros((64, 64))
    img[31:33, 31:33] = 200  # 4 pixels
    res = segment(_to_rgb(img), SegmentParams(sigma=0.0, closing_radius=0))
    assert res.mask.sum() == 4 and res.degenerate


def test_segment_batch_and_input_checks():
    imgs = [_to_rgb(_noisy_sky(s) + _exp_blob(CENTRE, CENTRE, 80, 10)) for s in range(3)]
    batch = list(segment_batch(iter(imgs), SegmentParams(out_size=64)))
    assert len(batch) == 3
    for rgb, res in zip(imgs, batch, strict=True):
        assert np.array_equal(res.image, segment(rgb, SegmentParams(out_size=64)).image)
    with pytest.raises(ValueError, match="uint8"):
        segment(imgs[0].astype(np.float32))


@pytest.mark.skipif(not SDSS_DIR.is_dir(), reason="real SDSS cutouts (../shared/data) not present")
def test_real_sdss_galaxies_segment_to_a_central_blob():
    for rgb in _sdss_images():
        res = segment(rgb)
        assert not res.degenerate
        assert 0.005 < res.mask.mean() < 0.5
        assert res.mask[SIZE // 2, SIZE // 2]


# --- the stage, sharded through the executor ----------------------------------------------------

SEGMENT = {"sigma": 2.0, "closing_radius": 3, "recentre": True, "out_size": 32}


@pytest.fixture
def image_table(tmp_path):
    """7 mock-survey JPEG cutouts (64 px) and a blank one (degenerate), listed in an image table."""
    from specmorph.sky.observe import encode_jpeg, render_cutout
    from specmorph.sky.population import draw_galaxy

    rng = np.random.default_rng(3)
    (tmp_path / "img").mkdir()
    rows = []
    labels = ("round_smooth", "barred_spiral", "edge_on_with_bulge", "unbarred_loose_spiral", "cigar_smooth",
              "unbarred_tight_spiral", "edge_on_without_bulge")
    for i, label in enumerate(labels):
        g = draw_galaxy(rng, f"OBJ{i}", 150.0, 2.0, None, label_name=label, field=True)
        path = tmp_path / "img" / f"OBJ{i}.jpg"
        path.write_bytes(encode_jpeg(render_cutout(g, 64, rng=rng)))
        rows.append((f"OBJ{i}", str(path)))
    (tmp_path / "img" / "blank.jpg").write_bytes(encode_jpeg(np.full((64, 64, 3), 30, np.uint8)))
    rows.append(("BLANK", str(tmp_path / "img" / "blank.jpg")))
    table = pd.DataFrame(rows, columns=["id_str", "path"])
    table.to_csv(tmp_path / "images.csv", index=False)
    return table


def _run_segment(stage, tmp_path, name: str, executor: str, dask: dict) -> tuple[str, dict]:
    params = {"executor": executor, "dask": dask, "segment": SEGMENT, "segment_check": {"real_dir": "/nowhere"}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(params))
    out, metrics = tmp_path / "out" / f"{name}.h5", tmp_path / "out" / f"{name}.json"
    stage("segment").main(["--params", str(tmp_path / f"{name}.yaml"), "--images", str(tmp_path / "images.csv"),
                           "--out", str(out), "--metrics", str(metrics)])
    return hashlib.sha256(out.read_bytes()).hexdigest(), json.loads(metrics.read_text())


def test_segment_stage_same_bytes_for_local_dask_any_shard_size_and_the_unsharded_product(
        tmp_path, stage, dask_ex, image_table):
    runs = {"local": ("local", {}), "local1": ("local", {"shard_size": 1}),
            "dask3": ("dask", {"address": dask_ex.address, "shard_size": 3})}
    results = {name: _run_segment(stage, tmp_path, name, *run) for name, run in runs.items()}
    # the product as the stage wrote it before the executor: every array in memory, one write_product
    sp = SegmentParams(**SEGMENT)
    res = [segment(read_image(p), sp) for p in image_table["path"]]
    masks = np.stack([r.mask for r in res])
    write_product(tmp_path / "ref.h5", {"images": np.stack([r.image for r in res]), "masks": masks,
                                        "degenerate": np.array([r.degenerate for r in res]),
                                        "threshold": np.array([r.threshold for r in res], np.float32),
                                        "n_removed": np.array([r.n_removed for r in res], np.int32),
                                        "flux_removed": np.array([r.flux_removed for r in res], np.float32),
                                        "ambiguous": np.array([r.ambiguous for r in res])},
                  image_table["id_str"].tolist(), {"image_units": "uint8 RGB, masked", "out_size": 32},
                  stage="segment", params_hash=params_hash(SEGMENT))
    ref = hashlib.sha256((tmp_path / "ref.h5").read_bytes()).hexdigest()
    assert {sha for sha, _ in results.values()} == {ref}
    expected = {"n_images": 8, "degenerate_fraction": float(np.mean([r.degenerate for r in res])),
                "empty_fraction": float((masks.reshape(8, -1).sum(axis=1) == 0).mean()),
                "mean_mask_fraction": float(masks.mean()), "deblend": sp.deblend,
                "deblended_fraction": float(np.mean([r.n_removed > 0 for r in res])),
                "mean_flux_removed": math.fsum(r.flux_removed for r in res) / 8,
                "ambiguous_fraction": float(np.mean([r.ambiguous for r in res])),
                "real_dev": {"hand_labels": {"skipped": "no real set at /nowhere"},
                             "all_images": {"skipped": "no real set at /nowhere"}}}
    assert all(metrics == expected for _, metrics in results.values())
    assert expected["degenerate_fraction"] == 1 / 8
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.{ext}" for n in runs for ext in ("h5", "json"))


def test_segment_stage_failure_names_the_shard_and_leaves_nothing(tmp_path, stage, dask_ex, image_table):
    image_table.loc[4, "path"] = str(tmp_path / "img" / "lost.jpg")
    image_table.to_csv(tmp_path / "images.csv", index=False)
    with pytest.raises(InputError, match=r"lost\.jpg: cannot read image: no such file") as info:
        _run_segment(stage, tmp_path, "dask", "dask", {"address": dask_ex.address, "shard_size": 3})
    notes = "\n".join(info.value.__notes__)
    assert "segment: shard 2 of 3 failed; its item(s): [('OBJ3'," in notes and "shared filesystem" in notes
    assert list((tmp_path / "out").iterdir()) == []
