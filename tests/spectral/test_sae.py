"""Tests for the supervised autoencoder and the supervised training loop: shapes, gradients, reconstruction, kNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from specmorph.spectral.embedder_io import build_embedder, load_embedder, save_embedder
from specmorph.spectral.encoders import EmbedderConfig, embed_array
from specmorph.spectral.sae import SupervisedAE
from specmorph.spectral.supervised import SupervisedParams, train_supervised

C, S = 8, 16  # channels, grid side of the tiny test cubes


def _cfg(grid: tuple[int, int] = (S, S), **kw) -> EmbedderConfig:
    return EmbedderConfig(kind="sae", in_channels=C, grid=grid, width=8, n_classes=3, **kw)


def synthetic_cubes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, C, S, S) cubes of 3 classes that differ only in their channel profile, and labels (n,).

    Every cube is an exponential disc (random centre, scale length 1.5-5 px and amplitude, shared by
    all classes) times its class's spectrum (rising, falling, or with a central bump), plus Gaussian
    noise of 0.1, normalised to unit mean.
    """
    rng = np.random.default_rng(seed)
    lam = np.linspace(-1.0, 1.0, C)
    profiles = np.stack([1 + 0.3 * lam, 1 - 0.3 * lam, 0.85 + 0.4 * np.exp(-0.5 * (lam / 0.3) ** 2)])  # (3, C)
    y = np.arange(n) % 3
    yy, xx = np.mgrid[:S, :S] - (S - 1) / 2
    cx, cy = rng.uniform(-2.0, 2.0, (2, n, 1, 1))
    scale, amp = rng.uniform(1.5, 5.0, (n, 1, 1)), rng.uniform(0.5, 2.0, (n, 1, 1))
    disc = amp * np.exp(-np.hypot(xx - cx, yy - cy) / scale)  # (n, S, S)
    cube = profiles[y][:, :, None, None] * disc[:, None] + 0.1 * rng.normal(size=(n, C, S, S))
    cube /= cube.mean(axis=(1, 2, 3), keepdims=True)
    return cube.astype(np.float32), y


@pytest.mark.parametrize("grid", [(16, 16), (18, 18), (18, 21)])
def test_shapes_and_gradients_reach_the_first_conv(grid):
    torch.manual_seed(0)
    model = SupervisedAE(_cfg(grid))
    x = torch.randn(4, C, *grid)
    recon, z, logits = model(x)
    assert recon.shape == x.shape and z.shape == (4, 512) and logits.shape == (4, 3)
    assert model.embed(x).shape == (4, 512)
    loss, parts = model.loss(x, torch.tensor([0, 1, 2, 0]), ce_weight=0.5)
    assert loss.item() == pytest.approx(parts["mse"] + 0.5 * parts["ce"], rel=1e-5)
    loss.backward()
    grad = model.encoder[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expects"):
        model.embed(torch.randn(2, C, 16, 17))


def test_config_errors():
    with pytest.raises(ValueError, match="n_classes >= 2"):
        SupervisedAE(EmbedderConfig(kind="sae", in_channels=C, grid=(S, S)))
    with pytest.raises(ValueError, match="ce_weight"):
        SupervisedAE(_cfg(extra={"ce_weight": 1.0}))


def test_reconstructs_constant_cubes():
    # Each cube is one constant level in [0.5, 1.5]: predicting the mean level would leave MSE 1/12 ≈ 0.083.
    rng = np.random.default_rng(1)
    levels = rng.uniform(0.5, 1.5, 40).astype(np.float32)
    cubes = np.broadcast_to(levels[:, None, None, None], (40, C, S, S)).copy()
    params = SupervisedParams(epochs=40, batch_size=8, lr=1e-2, ce_weight=0.0, num_threads=1)  # 200 steps
    model, history = train_supervised(_cfg(), cubes, np.zeros(40, dtype=int), params)
    assert len(history) == 40 and history[-1]["ce"] > 0  # computed and logged, but not trained
    test = torch.linspace(0.55, 1.45, 8)[:, None, None, None].expand(8, C, S, S)
    with torch.no_grad():
        recon = model.decode(model.embed(test))
    assert torch.mean((recon - test) ** 2).item() < 0.01  # 12% of the level variance


def test_knn_on_held_out_cubes_beats_chance():
    # Chance is 1/3; the threshold 0.8 leaves a margin of 0.47 (seeds 0-3 gave 0.97-1.0).
    x, y = synthetic_cubes(60, seed=0)
    params = SupervisedParams(epochs=20, batch_size=10, lr=1e-2, num_threads=1)
    model, _ = train_supervised(_cfg(), x[:30], y[:30], params)  # the training half only
    emb = embed_array(model, x)  # (60, 512)
    knn = KNeighborsClassifier(n_neighbors=3).fit(emb[:30], y[:30])
    assert knn.score(emb[30:], y[30:]) >= 0.8


def test_training_is_deterministic_for_a_seed():
    x, y = synthetic_cubes(12, seed=2)
    params = SupervisedParams(epochs=2, batch_size=4, num_threads=1)
    a, hist_a = train_supervised(_cfg(), x, y, params)
    b, hist_b = train_supervised(_cfg(), x, y, params)
    c, _ = train_supervised(_cfg(), x, y, SupervisedParams(epochs=2, batch_size=4, num_threads=1, seed=1))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert hist_a[-1]["train_loss"] == hist_b[-1]["train_loss"]
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path):
    torch.manual_seed(0)
    model = build_embedder(_cfg())
    x = torch.randn(3, C, S, S)
    save_embedder(tmp_path / "sae.pt", model, _cfg(), {"seed": 0})
    loaded, cfg, extra = load_embedder(tmp_path / "sae.pt")
    assert isinstance(loaded, SupervisedAE) and cfg == _cfg() and extra == {"seed": 0}
    np.testing.assert_array_equal(embed_array(loaded, x), embed_array(model, x))


def test_train_supervised_rejects_bad_inputs():
    x, y = synthetic_cubes(6, seed=0)
    params = SupervisedParams(epochs=1, num_threads=1)
    with pytest.raises(ValueError, match="labels must be in"):
        train_supervised(_cfg(), x, y + 1, params)
    with pytest.raises(ValueError, match="do not match"):
        train_supervised(_cfg(grid=(18, 18)), x, y, params)
    with pytest.raises(ValueError, match="kind must be one of"):
        train_supervised(EmbedderConfig(kind="siamese", in_channels=C, grid=(S, S)), x, y, params)
    with pytest.raises(ValueError, match="ce_weight"):
        SupervisedParams(ce_weight=-1.0)
