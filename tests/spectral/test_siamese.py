"""Tests of the contrastive spectral embedder: NT-Xent, augmentations, gradients, training and embedding quality."""

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from specmorph.spectral.encoders import EmbedderConfig, embed_array
from specmorph.spectral.siamese import (
    SiameseEmbedder,
    SiameseParams,
    _blur,
    _geometry,
    augment,
    nt_xent,
    train_siamese,
)

C, S = 8, 16  # tiny cubes: channels, grid side


def tiny_cfg(**kw) -> EmbedderConfig:
    base = {"kind": "siamese", "in_channels": C, "grid": (S, S), "embed_dim": 32, "width": 8}
    return EmbedderConfig(**{**base, **kw})


def two_class_cubes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubes whose class is the sign of the continuum slope across channels; everything else is nuisance.

    Each cube is a spectrum ⊗ an elliptical-ish Gaussian blob, plus noise, divided by its mean (as
    cube preparation normalises per galaxy). Slope: ±0.3 with scatter 0.15 per channel span; the
    nuisances, shared by both classes, are an emission line of random strength in one channel, blob
    position (±3 px), size (1.5-4 px), and S/N 10-30.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    t = np.linspace(-1.0, 1.0, C)  # channel position
    yy, xx = np.mgrid[:S, :S] - (S - 1) / 2
    cubes = np.empty((n, C, S, S), np.float32)
    for i, lab in enumerate(labels):
        slope = (0.3 if lab else -0.3) + 0.15 * rng.normal()
        spec = 1.0 + slope * t
        spec[C // 2] += rng.uniform(0.0, 1.0)  # emission line
        cy, cx = rng.uniform(-3, 3, 2)
        sy, sx = rng.uniform(1.5, 4.0, 2)
        blob = np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
        cube = spec[:, None, None] * blob[None]
        cube += rng.normal(0.0, cube.max() / rng.uniform(10, 30), cube.shape)
        cubes[i] = cube / cube.mean()
    return cubes, labels


def test_nt_xent_equals_hand_computation():
    z1 = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    z2 = np.array([[2.0, 0.5], [-1.0, 1.0], [3.0, 1.0]])
    tau = 0.5
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    losses = []
    for i in range(n2):
        pos = (i + 3) % n2  # the other view of the same pair
        num = np.exp(z[i] @ z[pos] / tau)
        den = sum(np.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
        losses.append(-np.log(num / den))
    expected = np.mean(losses)
    got = nt_xent(torch.tensor(z1, dtype=torch.float64), torch.tensor(z2, dtype=torch.float64), tau)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    swapped = nt_xent(torch.tensor(z2), torch.tensor(z1), tau)
    assert float(swapped) == pytest.approx(expected, rel=1e-12)
    scaled = nt_xent(7.0 * torch.tensor(z1), 0.1 * torch.tensor(z2), tau)  # cosine similarity ignores scale
    assert float(scaled) == pytest.approx(expected, rel=1e-12)


def test_nt_xent_single_pair_is_zero():
    # With one pair, the only candidate of each anchor is its positive.
    assert float(nt_xent(torch.tensor([[1.0, 2.0]]), torch.tensor([[-3.0, 0.5]]), 0.2)) == pytest.approx(0.0, abs=1e-7)


def test_shapes_and_gradients_reach_first_conv():
    torch.manual_seed(0)
    model = SiameseEmbedder(tiny_cfg())
    x = torch.randn(4, C, S, S)
    assert model.embed(x).shape == (4, 32)
    assert model(x).shape == (4, 128)
    gen = torch.Generator().manual_seed(0)
    loss = nt_xent(model(augment(x, gen)), model(augment(x, gen)), 0.2)
    loss.backward()
    grad = model.encoder.stem[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert embed_array(model, x.numpy(), batch_size=3).shape == (4, 32)


def test_config_extra_unknown_key_is_rejected():
    with pytest.raises(ValueError, match="proj_dims"):
        SiameseEmbedder(tiny_cfg(extra={"proj_dims": 64}))
    assert SiameseEmbedder(tiny_cfg(extra={"proj_dim": 16}))(torch.randn(2, C, S, S)).shape == (2, 16)


def test_augment_shape_values_and_determinism():
    x = torch.as_tensor(two_class_cubes(4, seed=0)[0])
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert not torch.allclose(a, x, atol=1e-3)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)
    rect = torch.randn(3, C, 12, 16)  # non-square grid: only 180° turns keep the shape
    assert augment(rect, torch.Generator().manual_seed(0)).shape == rect.shape


def test_augment_noise_has_the_drawn_signal_to_noise():
    # A spatially flat cube is unchanged by turns, flips, shifts and blur, so what is left is the noise.
    spec = torch.linspace(1.0, 3.0, C)
    x = spec[None, :, None, None].expand(4, C, S, S).contiguous()
    out = augment(x, torch.Generator().manual_seed(0), snr_range=(10.0, 10.0))
    expected = float(x[0].std()) / 10.0
    for i in range(4):
        assert float((out[i] - x[i]).std()) == pytest.approx(expected, rel=0.06)


def test_geometry_is_a_grid_symmetry_then_a_roll_within_range():
    x = torch.randn(8, 2, 9, 9)
    out = _geometry(x, torch.Generator().manual_seed(1), max_shift=2)
    for i in range(8):
        matches = [
            (k, flip, dy, dx)
            for k in range(4)
            for flip in (False, True)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out[i], _moved(x[i], k, flip, dy, dx))
        ]
        assert len(matches) == 1
    rect = torch.randn(8, 2, 9, 11)
    out = _geometry(rect, torch.Generator().manual_seed(1), max_shift=0)
    for i in range(8):  # only 180° turns keep a non-square grid
        assert any(torch.equal(out[i], _moved(rect[i], k, flip, 0, 0)) for k in (0, 2) for flip in (False, True))


def _moved(cube: torch.Tensor, k: int, flip: bool, dy: int, dx: int) -> torch.Tensor:
    turned = torch.rot90(cube, k, dims=(1, 2))
    return (turned.flip(-1) if flip else turned).roll((dy, dx), dims=(1, 2))


def test_blur_of_a_point_source_has_the_given_sigma_and_keeps_flux():
    x = torch.zeros(2, 1, 21, 21, dtype=torch.float64)
    x[:, :, 10, 10] = 1.0
    out = _blur(x, torch.tensor([1.0, 0.0], dtype=torch.float64), sigma_max=1.5)
    t = torch.arange(-10, 11, dtype=torch.float64)
    prof = out[0, 0].sum(0)  # (W,) marginal along x
    assert float(out[0].sum()) == pytest.approx(1.0, rel=1e-12)
    assert float((prof * t**2).sum()) == pytest.approx(1.0, abs=0.01)  # variance σ² = 1 px²
    assert torch.allclose(out[1], x[1])  # σ = 0 leaves the image unchanged


def test_training_lowers_the_loss_and_is_deterministic():
    cubes, _ = two_class_cubes(24, seed=1)
    params = SiameseParams(epochs=3, batch_size=8, lr=3e-3, seed=0)
    model, hist = train_siamese(tiny_cfg(), cubes, params)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert not model.training
    again, _ = train_siamese(tiny_cfg(), cubes, params)
    assert np.array_equal(embed_array(model, cubes), embed_array(again, cubes))


def test_train_rejects_mismatched_or_nonfinite_cubes():
    with pytest.raises(ValueError, match="do not match"):
        train_siamese(tiny_cfg(), np.zeros((4, C + 1, S, S), np.float32), SiameseParams(epochs=1))
    bad = np.zeros((4, C, S, S), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_siamese(tiny_cfg(), bad, SiameseParams(epochs=1))
    with pytest.raises(ValueError, match="tau"):
        SiameseParams(tau=0.0)


def test_embeddings_separate_spectrally_different_classes():
    # Chance is 0.5; the margin asserted is 0.25 (accuracy >= 0.75), on galaxies never trained on.
    cubes, labels = two_class_cubes(96, seed=2)
    train, test = np.arange(48), np.arange(48, 96)  # labels alternate, so 24 of each class per half
    model, _ = train_siamese(tiny_cfg(), cubes[train], SiameseParams(epochs=10, batch_size=16, seed=0))
    emb = embed_array(model, cubes)
    knn = KNeighborsClassifier(n_neighbors=5).fit(emb[train], labels[train])
    acc = knn.score(emb[test], labels[test])
    assert acc >= 0.75, f"kNN accuracy {acc:.3f}"
    assert math.isfinite(float(emb.std()))
