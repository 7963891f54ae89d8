"""Tests of the shared embedder pieces: EmbedderConfig, ConvEncoder, embed_array, BN statistics, save/load."""

import numpy as np
import pytest
import torch
from torch import nn

from specmorph.errors import InputError
from specmorph.spectral import encoders
from specmorph.spectral.embedder_io import BUILDERS, build_embedder, load_embedder, register, save_embedder
from specmorph.spectral.encoders import ConvEncoder, Embedder, EmbedderConfig, embed_array
from specmorph.training.engine import recompute_bn

C, S = 8, 16


def siamese_cfg(**kw) -> EmbedderConfig:
    base = {"kind": "siamese", "in_channels": C, "grid": (S, S), "embed_dim": 24, "width": 4}
    return EmbedderConfig(**{**base, **kw})


def fresh_model(cfg: EmbedderConfig, seed: int = 0) -> Embedder:
    """An untrained embedder with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build_embedder(cfg)
    x = torch.randn(10, *cfg.input_shape) * 2.0 + 1.0
    recompute_bn(model, lambda idx: model.embed(x[idx]), len(x), 4)
    return model


def test_config_round_trip_and_validation():
    cfg = siamese_cfg(n_classes=0, extra={"proj_dim": 16})
    d = cfg.to_dict()
    assert d["grid"] == [S, S]
    assert EmbedderConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown EmbedderConfig keys: colour, depth"):
        EmbedderConfig.from_dict({**d, "depth": 3, "colour": "red"})
    with pytest.raises(ValueError, match="kind"):
        siamese_cfg(kind="vae")
    with pytest.raises(ValueError, match="grid"):
        siamese_cfg(grid=(4, 16))
    with pytest.raises(ValueError, match="n_classes=1"):
        siamese_cfg(n_classes=1)
    assert siamese_cfg(grid=[12, 20]).input_shape == (C, 12, 20)


def test_conv_encoder_shapes_on_a_non_square_grid():
    enc = ConvEncoder(C, 4, 10)
    x = torch.randn(3, C, 12, 20)
    assert enc.features(x).shape == (3, 32, 2, 3)  # 8·width channels, ⌈12/8⌉ × ⌈20/8⌉
    assert enc(x).shape == (3, 10)


def test_embed_array_is_batch_independent_and_restores_mode():
    model = fresh_model(siamese_cfg())
    model.train()
    x = np.random.default_rng(0).normal(size=(7, C, S, S)).astype(np.float32)
    a = embed_array(model, x, batch_size=3)
    b = embed_array(model, x, batch_size=64)
    assert a.shape == (7, 24) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert model.training
    with pytest.raises(ValueError, match=r"expects \(B, 8, 16, 16\)"):
        embed_array(model, x[:, :4])


class _WithDecoder(Embedder):
    """An encoder BN on the embed path and a decoder BN off it."""

    def __init__(self, cfg: EmbedderConfig) -> None:
        super().__init__(cfg)
        self.enc = nn.BatchNorm2d(cfg.in_channels)
        self.dec = nn.BatchNorm2d(cfg.in_channels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x).mean(dim=(2, 3))


def test_recompute_bn_is_exact_and_spares_norms_the_forward_does_not_reach():
    model = _WithDecoder(siamese_cfg())
    model.dec.running_mean.fill_(5.0)
    x = torch.randn(8, C, S, S, dtype=torch.float32) + torch.arange(C)[None, :, None, None]
    recompute_bn(model, lambda idx: model.embed(x[idx]), len(x), 4)  # equal batches: mean of batch means = mean
    torch.testing.assert_close(model.enc.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    assert torch.equal(model.dec.running_mean, torch.full((C,), 5.0))
    assert model.enc.momentum == 0.1 and not model.training


def test_save_load_round_trip_gives_identical_embeddings(tmp_path):
    cfg = siamese_cfg(extra={"proj_hidden": 32})
    model = fresh_model(cfg)
    path = tmp_path / "emb.pt"
    save_embedder(path, model, cfg, {"seed": np.int64(3), "history": [{"loss": np.float32(0.5)}]})
    loaded, cfg2, extra = load_embedder(path)
    assert cfg2 == cfg and type(loaded) is type(model) and not loaded.training
    assert extra == {"seed": 3, "history": [{"loss": 0.5}]}
    x = torch.randn(5, C, S, S)
    assert np.array_equal(embed_array(model, x), embed_array(loaded, x))
    assert [p.name for p in tmp_path.iterdir()] == ["emb.pt"]  # no temporary file left


def test_save_rejects_non_plain_extra_and_leaves_no_file(tmp_path):
    cfg = siamese_cfg()
    with pytest.raises(TypeError, match=r"extra\.when"):
        save_embedder(tmp_path / "e.pt", fresh_model(cfg), cfg, {"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_load_bad_files_raise_input_error_naming_them(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"notes.pt: not a specmorph embedder checkpoint"):
        load_embedder(text)
    with pytest.raises(InputError, match=r"missing.pt: embedder checkpoint file not found"):
        load_embedder(tmp_path / "missing.pt")
    wrong_keys = tmp_path / "wrong_keys.pt"
    torch.save({"weights": {}}, wrong_keys)
    with pytest.raises(InputError, match=r"wrong_keys.pt: .*expected keys"):
        load_embedder(wrong_keys)
    cfg = siamese_cfg()
    good = tmp_path / "good.pt"
    save_embedder(good, fresh_model(cfg), cfg, {})
    payload = torch.load(good, weights_only=True)
    torch.save({**payload, "config": {**payload["config"], "depth": 2}}, tmp_path / "bad_cfg.pt")
    with pytest.raises(InputError, match=r"bad_cfg.pt: bad embedder config.*depth"):
        load_embedder(tmp_path / "bad_cfg.pt")
    torch.save({**payload, "config": {**payload["config"], "width": 8}}, tmp_path / "bad_weights.pt")
    with pytest.raises(InputError, match=r"bad_weights.pt: weights do not match"):
        load_embedder(tmp_path / "bad_weights.pt")


def test_missing_module_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "KINDS", (*encoders.KINDS, "nosuch"))
    cfg = siamese_cfg(kind="nosuch")
    with pytest.raises(ValueError, match=r"module specmorph.spectral.nosuch not found"):
        build_embedder(cfg)
    path = tmp_path / "nosuch.pt"
    torch.save({"config": cfg.to_dict(), "state_dict": {}, "extra": {}}, path)
    with pytest.raises(InputError, match=r"nosuch.pt: bad embedder config.*not found"):
        load_embedder(path)


def test_register_refuses_a_second_builder_for_a_kind():
    build_embedder(siamese_cfg())  # imports and registers the siamese module
    assert "siamese" in BUILDERS
    with pytest.raises(ValueError, match="already registered"):
        register("siamese")(_WithDecoder)
