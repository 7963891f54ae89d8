"""Tests for the dual-shuffle channel attention embedder: channel shuffle, shapes, gradients, kNN, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from specmorph.spectral.dsca import ChannelAttention, DscaNet, DualShuffleBlock, channel_shuffle
from specmorph.spectral.embedder_io import load_embedder, save_embedder
from specmorph.spectral.encoders import EmbedderConfig, embed_array
from specmorph.spectral.supervised import SupervisedParams, train_supervised

C, S = 8, 16  # channels, grid side of the tiny test cubes


def _cfg(**kw) -> EmbedderConfig:
    return EmbedderConfig(kind="dsca", in_channels=C, grid=(S, S), width=8, n_classes=3, **kw)


def synthetic_cubes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, C, S, S) cubes of 3 classes that differ only in their channel profile, and labels (n,).

    The same construction as in test_sae.py: an exponential disc (random centre, scale length and
    amplitude) times a rising, falling or bumped spectrum, plus Gaussian noise of 0.1, unit mean.
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


def test_channel_shuffle_interleaves_two_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert channel_shuffle(x, 3).flatten().tolist() == [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 12])
def test_channel_shuffle_is_a_permutation_undone_by_the_transposed_grouping(groups):
    x = torch.randn(2, 12, 3, 5)
    y = channel_shuffle(x, groups)
    assert y.shape == x.shape
    assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    assert torch.equal(channel_shuffle(y, 12 // groups), x)
    for j in range(12):  # each output channel is one whole input channel
        assert any(torch.equal(y[:, j], x[:, i]) for i in range(12))
    with pytest.raises(ValueError, match="does not divide"):
        channel_shuffle(x, 5)


def test_blocks_keep_shape_and_attention_gates_in_unit_interval():
    torch.manual_seed(0)
    x = torch.randn(4, 16, 9, 7)
    out = DualShuffleBlock(16)(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 6  # ReLU6
    att = ChannelAttention(16, reduction=4)
    pos = x.abs() + 0.5
    ratio = att(pos) / pos  # the gate, constant over each (cube, channel) map
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert ratio.min() > 0 and ratio.max() < 1
    with pytest.raises(ValueError, match="even"):
        DualShuffleBlock(7)


@pytest.mark.parametrize("grid", [(16, 16), (18, 21)])
def test_shapes_and_gradients_reach_the_first_conv(grid):
    torch.manual_seed(0)
    cfg = EmbedderConfig(kind="dsca", in_channels=C, grid=grid, width=8, n_classes=3)
    model = DscaNet(cfg)
    x = torch.randn(4, C, *grid)
    assert model.embed(x).shape == (4, 512) and model(x).shape == (4, 3)
    loss, parts = model.loss(x, torch.tensor([0, 1, 2, 0]))
    assert loss.item() == pytest.approx(parts["ce"])
    loss.backward()
    grad = model.features[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert model.head[1].weight.grad is not None


def test_embedding_does_not_depend_on_the_head():
    torch.manual_seed(0)
    model = DscaNet(_cfg()).eval()
    x = torch.randn(3, C, S, S)
    before = model.embed(x)
    with torch.no_grad():
        model.head[1].weight.add_(1.0)
    assert torch.equal(model.embed(x), before)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown dsca extra keys: blocks"):
        DscaNet(_cfg(extra={"blocks": [1]}))
    with pytest.raises(ValueError, match="n_classes >= 2"):
        DscaNet(EmbedderConfig(kind="dsca", in_channels=C, grid=(S, S), width=8))
    with pytest.raises(ValueError, match="must be even"):
        DscaNet(EmbedderConfig(kind="dsca", in_channels=C, grid=(S, S), width=7, n_classes=3))
    deeper = DscaNet(_cfg(extra={"depth": [2, 1], "reduction": 2}))
    assert sum(isinstance(m, DualShuffleBlock) for m in deeper.modules()) == 3
    assert deeper.feature.in_features == 16


def test_knn_on_held_out_cubes_beats_chance():
    # Chance is 1/3; the threshold 0.8 leaves a margin of 0.47 (training seeds 0-3 gave 0.93-1.0).
    x, y = synthetic_cubes(60, seed=0)
    params = SupervisedParams(epochs=20, batch_size=10, lr=1e-2, num_threads=1)
    model, history = train_supervised(_cfg(), x[:30], y[:30], params)  # the training half only
    assert set(history[-1]) >= {"epoch", "lr", "train_loss", "ce", "acc", "seconds", "rows_per_s"}
    emb = embed_array(model, x)  # (60, 512)
    knn = KNeighborsClassifier(n_neighbors=3).fit(emb[:30], y[:30])
    assert knn.score(emb[30:], y[30:]) >= 0.8


def test_training_is_deterministic_for_a_seed(tmp_path):
    x, y = synthetic_cubes(12, seed=2)
    params = SupervisedParams(epochs=2, batch_size=4, num_threads=1)
    a, _ = train_supervised(_cfg(), x, y, params)
    b, _ = train_supervised(_cfg(), x, y, params)
    c, _ = train_supervised(_cfg(), x, y, SupervisedParams(epochs=2, batch_size=4, num_threads=1, seed=1))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    save_embedder(tmp_path / "dsca.pt", a, _cfg(), {})
    loaded, cfg, _ = load_embedder(tmp_path / "dsca.pt")
    assert isinstance(loaded, DscaNet) and cfg == _cfg()
    np.testing.assert_array_equal(embed_array(loaded, x), embed_array(a, x))
