"""Tests for the PCA of normalised spectra: known components, incremental fitting, NaNs, HDF5 round trip."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from specmorph.errors import InputError
from specmorph.io.hdf5 import write_product
from specmorph.spectral.pca import PcaModel, fit_pca

N, N_WAVE = 600, 300
WAVE = np.linspace(3800.0, 7000.0, N_WAVE)  # Å


def _basis() -> np.ndarray:
    """Three known eigenspectra (3, n_wave), orthonormalised: a slope, a 4000 Å break, an emission line."""
    x = (WAVE - WAVE.mean()) / np.ptp(WAVE)
    raw = np.stack([x, np.tanh((WAVE - 4000.0) / 50.0), np.exp(-0.5 * ((WAVE - 6563.0) / 10.0) ** 2)])
    q, _ = np.linalg.qr(raw.T)
    return q.T


def _spectra(seed: int = 0, noise: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coeff = rng.normal(size=(N, 3)) * np.array([3.0, 2.0, 1.0])  # (N, 3)
    mean = 1.0 + 0.2 * np.sin(WAVE / 300.0)
    return mean + coeff @ _basis() + noise * rng.normal(size=(N, N_WAVE))  # (N, n_wave)


def test_three_known_components_are_recovered():
    model = fit_pca(_spectra(), n_components=6, wave=WAVE)
    assert model.explained_variance_ratio[:3].sum() > 0.95
    assert model.explained_variance_ratio[3] < 1e-3
    assert np.degrees(subspace_angles(_basis().T, model.components[:3].T)).max() < 1.0
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(6), atol=1e-8)
    assert model.n_samples == N and model.n_components == 6


def test_incremental_matches_batch():
    x = _spectra()
    batch = fit_pca(x, n_components=3, incremental=False)
    stream = fit_pca((x[i:i + 7] for i in range(0, N, 7)), n_components=3)  # batches smaller than k+… buffered
    assert stream.n_samples == N
    assert np.degrees(subspace_angles(batch.components.T, stream.components.T)).max() < 0.5
    np.testing.assert_allclose(stream.explained_variance_ratio, batch.explained_variance_ratio, rtol=1e-2)
    np.testing.assert_allclose(stream.mean, batch.mean, atol=1e-10)


def test_transform_and_reconstruction():
    x = _spectra(noise=0.0)
    model = fit_pca(x, n_components=3)
    coeff = model.transform(x)
    assert coeff.shape == (N, 3) and model.transform(x[0]).shape == (3,)
    np.testing.assert_allclose(model.inverse_transform(coeff), x, atol=1e-8)
    assert np.var(coeff[:, 0]) > np.var(coeff[:, 1]) > np.var(coeff[:, 2])


def test_nans_are_filled_with_the_channel_mean(caplog):
    x = _spectra()
    rng = np.random.default_rng(1)
    holes = rng.random(x.shape) < 0.01
    x_nan = np.where(holes, np.nan, x)
    with caplog.at_level(logging.INFO, logger="specmorph.spectral.pca"):
        model = fit_pca(x_nan, n_components=3)
    assert f"replaced {holes.sum()} NaN values" in caplog.text
    assert np.degrees(subspace_angles(_basis().T, model.components.T)).max() < 2.0
    coeff = model.transform(x_nan)
    assert np.isfinite(coeff).all()
    np.testing.assert_allclose(model.transform(np.full(N_WAVE, np.nan)), 0.0)  # all-NaN = the mean spectrum
    stream = fit_pca(iter(np.array_split(x_nan, 20)), n_components=3)
    assert np.degrees(subspace_angles(model.components.T, stream.components.T)).max() < 2.0


def test_bad_inputs():
    x = _spectra()
    x[:, 5] = np.nan
    with pytest.raises(InputError, match="no finite value"):
        fit_pca(x, n_components=3, incremental=False)
    with pytest.raises(InputError, match="too few"):
        fit_pca(_spectra()[:2], n_components=3)
    with pytest.raises(InputError, match="too few"):
        fit_pca(iter([_spectra()[:2]]), n_components=3)
    with pytest.raises(InputError, match="channels"):
        fit_pca(iter([_spectra()[:20], _spectra()[:20, :10]]), n_components=3, batch_size=5)


def test_save_load_round_trip(tmp_path):
    x = _spectra()
    model = fit_pca(x, n_components=4, wave=WAVE)
    path = model.save(tmp_path / "pca.h5", stage="pca", params_hash="abcdef012345")
    loaded = PcaModel.load(path)
    np.testing.assert_array_equal(loaded.components, model.components)
    np.testing.assert_array_equal(loaded.wave, WAVE)
    np.testing.assert_array_equal(loaded.transform(x[:5]), model.transform(x[:5]))
    assert loaded.n_samples == N
    write_product(tmp_path / "other.h5", {"x": np.zeros(2)}, [], {"kind": "something"}, "s", "h")
    with pytest.raises(InputError, match=r"expected 'specmorph\.PcaModel'"):
        PcaModel.load(tmp_path / "other.h5")
