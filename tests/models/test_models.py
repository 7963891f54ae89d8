"""Tests for the model config, the backbone/fusion networks and checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch

from specmorph.errors import InputError
from specmorph.models import ConcatFusion, ModelConfig, build_model
from specmorph.models.checkpoint import load_checkpoint, save_checkpoint

LABELS = ("a", "b", "c")
BASE = ModelConfig(kind="concat", n_classes=3, label_cols=LABELS, image_size=32, depth=(1, 1), width=8, spec_dim=5)


def _model(kind: str = "concat", seed: int = 0, **kw) -> tuple[torch.nn.Module, ModelConfig]:
    cfg = dataclasses.replace(BASE, kind=kind, **kw)
    torch.manual_seed(seed)
    return build_model(cfg).eval(), cfg


def _inputs(b: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 32, 32, generator=g), torch.randn(b, 5, generator=g)


@pytest.mark.parametrize("kind", ["rgb", "concat", "gated"])
def test_output_shapes(kind):
    model, _ = _model(kind)
    x, spec = _inputs(4)
    assert model(x).shape == (4, 3)
    assert model(x, spec, torch.ones(4, dtype=torch.bool)).shape == (4, 3)


def test_rgb_model_ignores_spec():
    model, _ = _model("rgb")
    x, spec = _inputs()
    assert torch.equal(model(x), model(x, spec, torch.ones(4, dtype=torch.bool)))


def test_concat_without_spectra_does_not_depend_on_spec():
    model, _ = _model()
    x, spec = _inputs()
    none = torch.zeros(4, dtype=torch.bool)
    ref = model(x)
    assert torch.equal(model(x, spec, none), ref)
    assert torch.equal(model(x, 100 * spec, none), ref)
    assert torch.equal(model(x, torch.full_like(spec, float("nan")), none), ref)  # NaN placeholders are harmless


def test_concat_with_spectra_depends_on_spec_row_by_row():
    model, _ = _model()
    x, spec = _inputs()
    has = torch.tensor([True, True, False, False])
    spec2 = spec.clone()
    spec2[[0, 2]] += 3.0
    out1, out2 = model(x, spec, has), model(x, spec2, has)
    assert not torch.allclose(out1[0], out2[0])  # has a spectrum: changed
    assert torch.equal(out1[1:], out2[1:])  # unchanged spectrum, or no spectrum
    # has_spec=None means "rows whose spec is finite".
    spec_nan = spec.clone()
    spec_nan[2:] = float("nan")
    assert torch.equal(model(x, spec_nan), out1)


def test_spectral_dropout_rate_and_nan_safe_gradients():
    model, _ = _model(spec_dropout=0.5)
    assert isinstance(model, ConcatFusion)
    model.train()
    torch.manual_seed(3)
    spec = torch.randn(2000, 5)
    emb = model.spectral_embedding(spec, torch.ones(2000, dtype=torch.bool), 2000)
    dropped = (emb == model.absent).all(dim=1).float().mean().item()
    assert 0.45 < dropped < 0.55
    always, _ = _model(spec_dropout=1.0)
    always.train()
    assert torch.equal(always.spectral_embedding(spec[:8], None, 8), always.absent.expand(8, -1))
    # Training with NaN rows marked absent gives finite gradients everywhere.
    x, spec = _inputs()
    spec[1] = float("nan")
    model(x, spec, torch.tensor([True, False, True, True])).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("kind", ["concat", "gated"])
def test_same_seed_gives_same_rgb_trunk_as_the_baseline(kind):
    rgb, _ = _model("rgb", seed=5)
    fused, _ = _model(kind, seed=5)
    for (k, a), (_, b) in zip(rgb.trunk.state_dict().items(), fused.trunk.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    if kind == "gated":  # its head is built right after the trunk too
        assert all(torch.equal(a, b) for a, b in zip(rgb.head.parameters(), fused.head.parameters(), strict=True))


def test_config_round_trip_and_validation():
    cfg = dataclasses.replace(BASE, preprocess={"size": 32, "crop_fraction": 0.5})
    d = cfg.to_dict()
    assert d["depth"] == [1, 1] and d["label_cols"] == list(LABELS)
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig keys: widht"):
        ModelConfig.from_dict({**d, "widht": 4})
    with pytest.raises(ValueError, match="kind"):
        dataclasses.replace(BASE, kind="film")
    with pytest.raises(ValueError, match="label_cols"):
        dataclasses.replace(BASE, n_classes=4)
    with pytest.raises(ValueError, match="preprocess size 64"):
        dataclasses.replace(BASE, preprocess={"size": 64})


@pytest.mark.parametrize("kind", ["rgb", "concat", "gated"])
def test_checkpoint_round_trip(tmp_path, kind):
    model, cfg = _model(kind)
    if isinstance(model, ConcatFusion):
        model.spectral.set_normalisation(torch.randn(50, 5) * 3 + 1)
    x, spec = _inputs()
    has = torch.tensor([True, False, True, False])
    path = tmp_path / "model.pt"
    extra = {"seed": 7, "metrics": {"val_acc": np.float32(0.5)}, "hash": "abc", "hist": [1, 2]}
    save_checkpoint(path, model, cfg, extra)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    loaded, cfg2, extra2 = load_checkpoint(path)
    assert cfg2 == cfg and not loaded.training
    assert extra2 == {"seed": 7, "metrics": {"val_acc": 0.5}, "hash": "abc", "hist": [1, 2]}
    assert torch.equal(loaded(x, spec, has), model(x, spec, has))
    assert torch.equal(loaded(x), model(x))


def test_checkpoint_save_failure_leaves_no_file(tmp_path, monkeypatch):
    model, cfg = _model()
    with pytest.raises(TypeError, match=r"extra\.bad"):
        save_checkpoint(tmp_path / "m.pt", model, cfg, {"bad": object()})
    assert list(tmp_path.iterdir()) == []

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "m.pt", model, cfg, {})
    assert list(tmp_path.iterdir()) == []


def test_load_checkpoint_rejects_foreign_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"junk\.pt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(InputError, match=r"other\.pt: not a specmorph checkpoint"):
        load_checkpoint(other)
    with pytest.raises(InputError, match=r"missing\.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    model, cfg = _model()
    bad = tmp_path / "bad.pt"
    torch.save({"config": {**cfg.to_dict(), "width": 4}, "state_dict": model.state_dict(), "extra": {}}, bad)
    with pytest.raises(InputError, match=r"bad\.pt: weights do not match"):
        load_checkpoint(bad)


def test_backbone_backward_survives_odd_batches_on_two_threads():
    """Regression: channels-last made torch 2.13's CPU backward segfault (batch 33, 2 threads)."""
    import subprocess
    import sys

    code = ("import torch\nfrom specmorph.models.backbone import ResNetBackbone\ntorch.set_num_threads(2)\n"
            "ResNetBackbone((1, 1), 8)(torch.rand(33, 3, 64, 64)).sum().backward()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-500:]
