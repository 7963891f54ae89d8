"""Tests for cube preparation: channel modes, scale invariance, bad values, resampling, streaming HDF5 product."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from specmorph.errors import InputError
from specmorph.executor import ExecutorParams
from specmorph.io.cubes import Cube
from specmorph.io.hdf5 import read_product
from specmorph.spectral import cubeprep
from specmorph.spectral.cubeprep import (
    CubePrep,
    load_prepared,
    open_prepared,
    prepare_all,
    prepare_cube,
    resample_matrix,
    select_channels,
)

CRVAL, CDELT, N_WAVE = 3749.0, 10.0, 376  # Å; a coarse V500-like grid, 3749-7499 Å
WAVE = CRVAL + CDELT * np.arange(N_WAVE)
NY, NX = 12, 10


def _flux(seed: int = 0) -> np.ndarray:
    """(n_wave, ny, nx) float32: an exponential disc whose continuum reddens outwards, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:NY, :NX]
    r = np.hypot(yy - 5.5, xx - 4.0)  # spaxels
    slope = 1.0 + 0.05 * r  # redder outside
    spec = (WAVE[:, None, None] / 5500.0) ** slope  # (n_wave, ny, nx)
    flux = 3.0 * np.exp(-r / 3.0) * spec + 0.01 * rng.normal(size=spec.shape)
    return flux.astype(np.float32)


def _cube(flux: np.ndarray | None = None, name: str = "NGC0001") -> Cube:
    flux = _flux() if flux is None else flux
    return Cube(name, WAVE.copy(), flux, None, fits.Header(), float("nan"), float("nan"))


def _write_fits(path, flux: np.ndarray, crval: float = CRVAL) -> None:
    """A minimal eCALIFA-style cube: primary flux with a linear AWAV axis, and a BADPIX extension."""
    hdr = fits.Header()
    for key, value in (("CTYPE3", "AWAV"), ("CUNIT3", "Angstrom"), ("CRPIX3", 1.0), ("CRVAL3", crval),
                       ("CDELT3", CDELT)):
        hdr[key] = value
    bad = ~np.isfinite(flux)
    fits.HDUList([fits.PrimaryHDU(np.nan_to_num(flux), header=hdr),
                  fits.ImageHDU(bad.astype(np.uint8), name="BADPIX")]).writeto(path)


@pytest.mark.parametrize(("mode", "n_expected"), [("full", 340), ("central", 16), ("binned", 16)])
def test_shapes_of_each_channel_mode(mode, n_expected):
    # The window 3800-7200 Å holds the channels 3809, 3819, ..., 7199 Å: 340 of the 10 Å grid.
    prep = CubePrep(grid=(8, 6), channels=mode, n_channels=16)
    x = prepare_cube(_cube(), prep)
    assert x.shape == (n_expected, 8, 6) and x.dtype == np.float32
    wave, _ = select_channels(_cube(), prep)
    assert len(wave) == n_expected and 3800.0 <= wave.min() and wave.max() <= 7200.0


def test_scaled_cube_gives_the_same_tensor():
    prep = CubePrep(grid=(8, 8), n_channels=16)
    flux = _flux()
    np.testing.assert_allclose(prepare_cube(_cube(flux * 10), prep), prepare_cube(_cube(flux), prep), rtol=1e-6)


def test_median_normalisation_sets_the_positive_white_light_median_to_one():
    prep = CubePrep(grid=(NY, NX), n_channels=16)
    x = prepare_cube(_cube(), prep)
    white = x.mean(axis=0)
    assert np.median(white[white > 0]) == pytest.approx(1.0, rel=1e-5)


def test_nan_spaxels_become_zero_and_partial_nan_bins_keep_their_mean():
    flux = np.ones((N_WAVE, NY, NX), dtype=np.float32)
    flux[:, 3, 4] = np.nan  # a whole bad spaxel
    flux[100:103, 7, 2] = np.nan  # three bad channels inside one bin of another spaxel
    x = prepare_cube(_cube(flux), CubePrep(grid=(NY, NX), n_channels=16))
    assert np.all(x[:, 3, 4] == 0.0)
    np.testing.assert_allclose(np.delete(x.reshape(16, -1), 3 * NX + 4, axis=1), 1.0, rtol=1e-6)


def test_binned_channels_are_bin_means_with_monotonic_centres_in_the_window():
    flux = np.broadcast_to(WAVE[:, None, None], (N_WAVE, NY, NX)).astype(np.float32)  # flux = λ
    prep = CubePrep(grid=(4, 4), n_channels=10, normalise="none")
    wave, _ = select_channels(_cube(flux), prep)
    assert np.all(np.diff(wave) > 0) and wave[0] > 3800.0 and wave[-1] < 7200.0
    np.testing.assert_allclose(np.diff(wave), 340.0)  # (7200 - 3800) / 10 Å
    x = prepare_cube(_cube(flux), prep)
    np.testing.assert_allclose(x[:, 0, 0], wave, atol=CDELT / 2)  # mean λ of a bin ≈ its centre


def test_central_mode_keeps_the_middle_channels():
    prep = CubePrep(grid=(4, 4), channels="central", n_channels=5, window=None)
    wave, _ = select_channels(_cube(), prep)
    np.testing.assert_array_equal(wave, WAVE[185:190])  # (376 - 5) // 2 = 185


def test_checkerboard_resampled_keeps_its_mean_and_constant_stays_constant():
    yy, xx = np.mgrid[:16, :16]
    board = (((yy // 2 + xx // 2) % 2) * 2.0 + 1.0).astype(np.float32)  # 2×2 blocks of 1 and 3
    flux = np.broadcast_to(board, (N_WAVE, 16, 16)).astype(np.float32)
    for grid in [(8, 8), (5, 7), (24, 20)]:
        x = prepare_cube(_cube(flux), CubePrep(grid=grid, n_channels=4))
        assert x.mean() == pytest.approx(1.0, abs=1e-5)  # the median of {1, 3} is 2, so the mean is 1
    flat = prepare_cube(_cube(np.ones((N_WAVE, 16, 16), np.float32)), CubePrep(grid=(5, 7), n_channels=4))
    np.testing.assert_allclose(flat, 1.0, rtol=1e-6)


def test_spatial_axes_are_y_then_x():
    flux = np.broadcast_to(1.0 + np.arange(NX, dtype=np.float32), (N_WAVE, NY, NX)).copy()  # varies along x
    x = prepare_cube(_cube(flux), CubePrep(grid=(6, 5), n_channels=4))
    assert np.ptp(x, axis=1).max() < 1e-6  # constant along y (H)
    assert np.all(np.diff(x, axis=2) > 0)  # increasing along x (W)


def test_resample_matrix_matches_torch_antialiased_bilinear():
    torch = pytest.importorskip("torch")
    img = np.random.default_rng(1).random((2, 19, 23)).astype(np.float32)
    for h, w in [(7, 5), (32, 40), (19, 11)]:
        ours = resample_matrix(19, h) @ img @ resample_matrix(23, w).T
        ref = torch.nn.functional.interpolate(torch.from_numpy(img)[None], size=(h, w), mode="bilinear",
                                              antialias=True, align_corners=False)[0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_all_zero_cube_is_an_input_error_naming_it():
    with pytest.raises(InputError, match=r"UGC99999.*positive white-light"):
        prepare_cube(_cube(np.zeros((N_WAVE, NY, NX), np.float32), name="UGC99999"), CubePrep())


def test_too_few_channels_and_empty_window_are_input_errors():
    with pytest.raises(InputError, match=r"NGC0001.*n_channels=400"):
        prepare_cube(_cube(), CubePrep(channels="central", n_channels=400))
    with pytest.raises(InputError, match="no channel in the window 8000-9000 Å"):
        prepare_cube(_cube(), CubePrep(window=(8000.0, 9000.0)))
    with pytest.raises(InputError, match=r"bin 3000\.0-3262\.5 Å holds no channel"):
        prepare_cube(_cube(), CubePrep(window=(3000.0, 7200.0), n_channels=16))  # cube starts at 3749 Å


def test_cubeprep_validates_and_round_trips():
    prep = CubePrep(grid=(16, 12), channels="central", n_channels=8, window=(4000, 7000))
    d = json.loads(json.dumps(prep.to_dict()))
    assert CubePrep.from_dict(d) == prep and CubePrep.from_dict(CubePrep(window=None).to_dict()).window is None
    with pytest.raises(ValueError, match="channels='all'"):
        CubePrep(channels="all")
    with pytest.raises(ValueError, match="grid"):
        CubePrep(grid=(0, 4))
    with pytest.raises(ValueError, match="window"):
        CubePrep(window=(7000.0, 4000.0))
    with pytest.raises(ValueError, match=r"unknown key.*n_chan"):
        CubePrep.from_dict({"n_chan": 3})


def test_prepare_all_reads_each_cube_once_in_order_and_round_trips(tmp_path, monkeypatch):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"GAL{i}.V500.rscube.fits")
        flux = _flux(seed=i) * (i + 1)
        flux[:, 0, 0] = np.nan
        _write_fits(paths[-1], flux)
    reads = []
    real_read = cubeprep.read_cube
    monkeypatch.setattr(cubeprep, "read_cube", lambda p, **kw: reads.append(p) or real_read(p, **kw))

    prep = CubePrep(grid=(8, 8), n_channels=16)
    out = prepare_all(iter(paths), prep, tmp_path / "out" / "cubes.h5", stage="prepare", params_hash="abc123")
    assert [Path(r) for r in reads] == paths  # each once, in order (as absolute paths, for any worker)
    cubes, ids, attrs = load_prepared(out)
    assert cubes.shape == (3, 16, 8, 8) and cubes.dtype == np.float32 and ids == ["GAL0", "GAL1", "GAL2"]
    assert attrs["cube_prep"] == prep and attrs["stage"] == "prepare" and attrs["params_hash"] == "abc123"
    np.testing.assert_allclose(attrs["wave"], select_channels(_cube(), prep)[0])
    np.testing.assert_allclose(cubes[1], prepare_cube(real_read(paths[1]), prep), rtol=1e-6)
    with open_prepared(out) as (data, ids2, _):
        assert data.shape == cubes.shape and ids2 == ids
        np.testing.assert_array_equal(data[2], cubes[2])
    arrays, ids3, attrs3 = read_product(out)  # also a valid generic product
    assert ids3 == ids and arrays["cubes"].shape == cubes.shape and json.loads(attrs3["cube_prep"])["n_channels"] == 16
    assert sorted(p.name for p in out.parent.iterdir()) == ["cubes.h5"]


def test_prepare_all_leaves_no_file_after_a_failure(tmp_path):
    good, bad = tmp_path / "A.fits", tmp_path / "B.fits"
    _write_fits(good, _flux())
    _write_fits(bad, np.zeros((N_WAVE, NY, NX), np.float32))
    out = tmp_path / "out" / "cubes.h5"

    def failing_paths():
        yield good
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        prepare_all(failing_paths(), CubePrep(grid=(4, 4), n_channels=8), out, stage="s", params_hash="h")
    with pytest.raises(InputError, match="B"):
        prepare_all([good, bad], CubePrep(grid=(4, 4), n_channels=8), out, stage="s", params_hash="h")
    with pytest.raises(InputError, match="duplicate cube name 'A'"):
        prepare_all([good, good], CubePrep(grid=(4, 4), n_channels=8), out, stage="s", params_hash="h")
    with pytest.raises(InputError, match="no cubes"):
        prepare_all([], CubePrep(), out, stage="s", params_hash="h")
    assert list(out.parent.iterdir()) == []


# --- sharded through the executor ---------------------------------------------------------------


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_all_same_bytes_for_local_dask_and_any_shard_size(tmp_path, dask_ex):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"GAL{i}.fits")
        _write_fits(paths[-1], _flux(seed=i))
    prep, out = CubePrep(grid=(6, 6), n_channels=8), tmp_path / "out"
    runs = {"local": ExecutorParams(), "local1": ExecutorParams(shard_size=1),
            "local2": ExecutorParams(shard_size=2), "dask2": replace(dask_ex, shard_size=2)}
    for name, ex in runs.items():
        prepare_all(paths, prep, out / f"{name}.h5", stage="s", params_hash="h", executor=ex)
    assert len({_sha(out / f"{name}.h5") for name in runs}) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.h5" for name in runs)
    cubes, ids, _ = load_prepared(out / "dask2.h5")
    assert ids == [f"GAL{i}" for i in range(5)]
    np.testing.assert_allclose(cubes[3], prepare_cube(_cube(_flux(seed=3)), prep), rtol=1e-6)


def test_prepare_all_checks_hold_across_shards(tmp_path, dask_ex):
    a, b, shifted, bad = (tmp_path / f"{n}.fits" for n in ("A", "B", "S", "Z"))
    _write_fits(a, _flux())
    _write_fits(b, _flux(seed=1))
    _write_fits(shifted, _flux(), crval=CRVAL + 2.0)
    _write_fits(bad, np.zeros((N_WAVE, NY, NX), np.float32))
    out, full = tmp_path / "out" / "cubes.h5", CubePrep(grid=(4, 4), channels="full", window=None)
    one = replace(dask_ex, shard_size=1)
    with pytest.raises(InputError, match=r"B\.fits: duplicate cube name 'B'"):
        prepare_all([a, b, shifted, b], full, out, stage="s", params_hash="h", executor=one)
    with pytest.raises(InputError, match=r"S\.fits: channel centres differ"):
        prepare_all([a, b, shifted], full, out, stage="s", params_hash="h", executor=one)
    with pytest.raises(InputError, match="Z: no spaxel has positive") as info:
        prepare_all([a, b, bad], CubePrep(grid=(4, 4), n_channels=8), out, stage="s", params_hash="h",
                    executor=replace(dask_ex, shard_size=2))
    assert any("shard 2 of 2 failed" in note and "Z.fits" in note for note in info.value.__notes__)
    assert list(out.parent.iterdir()) == []


def test_prepare_cubes_stage_on_dask_writes_the_local_product(tmp_path, stage, dask_ex):
    from specmorph.io.catalogs import write_table
    from specmorph.sky.catalogs import morphology_table
    from specmorph.sky.cube import build_cube, write_cube
    from specmorph.sky.population import draw_galaxy

    rng = np.random.default_rng(5)
    types = ("E1", "Sb", "Sc")
    truths = [draw_galaxy(rng, f"MOCK{i:03d}", 150.0 + i, 2.0, None, hubtyp=t) for i, t in enumerate(types)]
    (tmp_path / "cubes").mkdir()
    for g in truths:
        write_cube(tmp_path / "cubes" / f"{g.id_str}.V500.rscube.fits.gz", g, *build_cube(g, 1877, 8, 8, rng=rng))
    write_table(morphology_table(truths), tmp_path / "morphology.csv")
    section = {"grid": [4, 4], "channels": "binned", "n_channels": 16, "window": [3800.0, 7200.0],
               "normalise": "median"}
    for kind in ("local", "dask"):
        params = {"executor": kind, "dask": {"address": dask_ex.address, "workers": 2, "shard_size": 2},
                  "prepare_cubes": section}
        (tmp_path / f"{kind}.yaml").write_text(yaml.safe_dump(params))
        stage("prepare_cubes").main(["--params", str(tmp_path / f"{kind}.yaml"), "--morphology",
                                     str(tmp_path / "morphology.csv"), "--cube-dir", str(tmp_path / "cubes"),
                                     "--out", str(tmp_path / "out" / f"{kind}.h5")])
    assert _sha(tmp_path / "out" / "local.h5") == _sha(tmp_path / "out" / "dask.h5")
    cubes, ids, attrs = load_prepared(tmp_path / "out" / "dask.h5")
    assert cubes.shape == (3, 16, 4, 4) and ids == ["MOCK000", "MOCK001", "MOCK002"]
    assert attrs["stage"] == "prepare_cubes" and np.isfinite(cubes).all()
