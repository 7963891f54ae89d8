"""Tests for the fusion networks: gradients of every kind, the gate, modality dropout and the hallucination head."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from specmorph.models import ConcatFusion, GatedFusion, ModelConfig, RgbClassifier, build_model
from specmorph.models.fusion import SpectralBranch
from specmorph.torchutil import torch_settings

B, S, SPEC_DIM, FEAT = 4, 32, 5, 16
BASE = ModelConfig(kind="rgb", n_classes=3, label_cols=("a", "b", "c"), image_size=S, depth=(1, 1), width=8,
                   feature_dim=FEAT, head_hidden=8, spec_dim=SPEC_DIM, spec_hidden=8, spec_dropout=0.0)
KINDS = {  # name -> (kind, gate, rgb_inference)
    "rgb": ("rgb", "residual", "drop"),
    "concat": ("concat", "residual", "drop"),
    "gated_residual": ("gated", "residual", "drop"),
    "gated_convex": ("gated", "convex", "drop"),
    "gated_hallucinate": ("gated", "residual", "hallucinate"),
}
FUSION = [k for k in KINDS if k != "rgb"]
GATED = [k for k in KINDS if k.startswith("gated")]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny 2-thread convolutions are ~300× slower on a busy 2-core machine."""
    with torch_settings(1):
        yield


def _model(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    kind, gate, rgb_inference = KINDS[name]
    torch.manual_seed(seed)
    return build_model(dataclasses.replace(BASE, kind=kind, gate=gate, rgb_inference=rgb_inference, **kw))


def _inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, spectra whose last two rows are NaN placeholders, and has_spec marking the first two."""
    g = torch.Generator().manual_seed(seed)
    x, spec = torch.rand(B, 3, S, S, generator=g), torch.randn(B, SPEC_DIM, generator=g)
    spec[2:] = float("nan")
    return x, spec, torch.tensor([True, True, False, False])


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in module.parameters()]


def test_builds_the_right_classes():
    assert type(_model("rgb")) is RgbClassifier
    assert type(_model("concat")) is ConcatFusion
    assert type(_model("gated_residual")) is GatedFusion
    assert _model("gated_residual").hallucinator is None
    assert _model("gated_hallucinate").hallucinator is not None


@pytest.mark.parametrize("name", list(KINDS))
def test_forward_backward_reaches_trunk_and_spectral_branch(name):
    model = _model(name).train()
    x, spec, has = _inputs()
    logits = model(x, spec, has)
    assert logits.shape == (B, 3) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    trunk = _grads(model.trunk)
    assert all(g is not None and torch.isfinite(g).all() for g in trunk)
    assert any(g.abs().sum() > 0 for g in trunk)
    assert model.trunk.backbone.stem[0].weight.grad.abs().sum() > 0  # the first conv: through the whole trunk
    if name != "rgb":
        spectral = _grads(model.spectral.mlp)
        assert all(g is not None and torch.isfinite(g).all() for g in spectral)
        assert model.spectral.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", FUSION)
def test_nan_spectra_without_has_spec_give_finite_gradients(name):
    model = _model(name).train()
    x, spec, _ = _inputs()
    spec[:] = float("nan")
    none = torch.zeros(B, dtype=torch.bool)
    logits = model(x, spec, none)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    for p in model.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    assert all(g is None or not g.any() for g in _grads(model.spectral))  # no spectrum: nothing reaches the branch
    assert model.trunk.backbone.stem[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", GATED)
def test_gate_in_open_unit_interval_and_parts_shapes(name):
    model = _model(name).eval()
    x, spec, has = _inputs()
    parts = model.parts(x, spec, has)
    g = parts["gate"]
    assert g.shape == (B, FEAT) and ((g > 0) & (g < 1)).all()
    assert parts["logits"].shape == parts["aux_logits"].shape == (B, 3)
    assert parts["f_rgb"].shape == parts["f_spec"].shape == (B, FEAT)
    assert torch.equal(parts["has"], has)
    assert not parts["f_spec"][2:].any() and parts["f_spec"][:2].any()  # zero without a spectrum
    assert torch.equal(parts["logits"], model(x, spec, has))


def test_fuse_rules_known_answers():
    g = torch.Generator().manual_seed(0)
    f_rgb, f_spec = torch.randn(3, FEAT, generator=g), torch.randn(3, FEAT, generator=g)
    zero, one, half = torch.zeros(3, FEAT), torch.ones(3, FEAT), torch.full((3, FEAT), 0.5)
    assert torch.equal(GatedFusion.fuse(f_rgb, f_spec, zero, "residual"), f_rgb)
    assert torch.allclose(GatedFusion.fuse(f_rgb, f_spec, half, "residual"), f_rgb + 0.5 * f_spec)
    assert torch.equal(GatedFusion.fuse(f_rgb, f_spec, one, "convex"), f_rgb)
    assert torch.equal(GatedFusion.fuse(f_rgb, f_spec, zero, "convex"), f_spec)
    assert torch.allclose(GatedFusion.fuse(f_rgb, f_spec, half, "convex"), 0.5 * (f_rgb + f_spec))
    with pytest.raises(ValueError, match="'sum'"):
        GatedFusion.fuse(f_rgb, f_spec, half, "sum")


def test_residual_drop_without_spectrum_is_the_rgb_path():
    model = _model("gated_residual").eval()
    x, spec, _ = _inputs()
    with torch.no_grad():
        ref = model.head(model.trunk(x))
        assert torch.equal(model(x), ref)
        assert torch.equal(model(x, spec, torch.zeros(B, dtype=torch.bool)), ref)
        assert torch.equal(model(x, 100 * spec.nan_to_num(1.0), torch.zeros(B, dtype=torch.bool)), ref)
        # With a spectrum the fused feature changes.
        assert not torch.allclose(model(x, spec.nan_to_num(1.0), torch.ones(B, dtype=torch.bool)), ref)


def test_convex_drop_without_spectrum_scales_f_rgb_by_the_gate():
    model = _model("gated_convex").eval()
    x = _inputs()[0]
    with torch.no_grad():
        f_rgb = model.trunk(x)
        g = torch.sigmoid(model.gate(torch.cat([f_rgb, torch.zeros_like(f_rgb)], dim=1)))
        assert torch.allclose(model(x), model.head(g * f_rgb))


def test_hallucinated_f_spec_is_used_without_spectrum():
    model = _model("gated_hallucinate").eval()
    x, spec, has = _inputs()
    with torch.no_grad():
        parts = model.parts(x)
        assert parts["f_hall"].shape == parts["f_spec"].shape == (B, FEAT)
        assert not parts["has"].any() and parts["f_hall"].abs().sum() > 0
        f_rgb = model.trunk(x)
        f_hall = model.hallucinator(f_rgb)
        g = torch.sigmoid(model.gate(torch.cat([f_rgb, f_hall], dim=1)))
        assert torch.allclose(parts["logits"], model.head(f_rgb + g * f_hall))
        zero_path = model.head(f_rgb)  # what rgb_inference "drop" gives (F_spec = 0, residual gate)
        assert not torch.allclose(parts["logits"], zero_path, atol=1e-4)
        # Rows with a spectrum use the real F_spec, the others the hallucinated one.
        with_spec = model.parts(x, spec, has)
        assert torch.allclose(with_spec["logits"][2:], parts["logits"][2:])
        assert not torch.allclose(with_spec["logits"][:2], parts["logits"][:2], atol=1e-4)


def test_gated_modality_dropout_one_equals_no_spectrum_in_training():
    model = _model("gated_residual", spec_dropout=1.0).train()
    x, spec, _ = _inputs()
    spec = spec.nan_to_num(0.5)
    torch.manual_seed(7)
    parts = model.parts(x, spec, torch.ones(B, dtype=torch.bool))
    torch.manual_seed(7)
    ref = model(x)
    assert torch.equal(parts["logits"], ref)
    assert parts["has"].all() and parts["f_spec"].abs().sum() > 0  # `has` is before modality dropout


def test_gated_modality_dropout_rate():
    model = _model("gated_residual", spec_dropout=0.5).train()
    torch.manual_seed(3)
    with torch.no_grad():
        parts = model.parts(torch.rand(400, 3, S, S), torch.randn(400, SPEC_DIM), torch.ones(400, dtype=torch.bool))
        # Dropped rows have F_in = 0, so the gate sees [F_rgb; 0]; compare with the gate on that input.
        g0 = torch.sigmoid(model.gate(torch.cat([parts["f_rgb"], torch.zeros(400, FEAT)], dim=1)))
    dropped = torch.isclose(parts["gate"], g0).all(dim=1).float().mean().item()
    assert 0.4 < dropped < 0.6


def test_has_spec_none_means_finite_rows():
    model = _model("gated_residual").eval()
    x, spec, has = _inputs()
    parts = model.parts(x, spec)
    assert torch.equal(parts["has"], has)
    assert torch.equal(parts["logits"], model(x, spec, has))


def test_spectral_branch_normalisation_and_shape_check():
    branch = SpectralBranch(SPEC_DIM, 8, FEAT)
    g = torch.Generator().manual_seed(0)
    train = 3.0 + 2.0 * torch.randn(50, SPEC_DIM, generator=g)
    branch.set_normalisation(train)
    assert torch.allclose(branch.spec_mean, train.mean(0)) and torch.allclose(branch.spec_scale, train.std(0))
    spec = torch.randn(B, SPEC_DIM, generator=g)
    f, has = branch(spec, None, B)
    z = (spec - train.mean(0)) / train.std(0)
    assert has.all() and torch.allclose(f, branch.mlp(z))
    f0, has0 = branch(None, None, B)
    assert f0.shape == (B, FEAT) and not f0.any() and not has0.any()
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        branch(spec[:, :3], None, B)
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        branch.set_normalisation(train[:, :2])


def test_gated_cam_layer_gives_a_feature_map():
    model = _model("gated_hallucinate").eval()
    seen = []
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        model(_inputs()[0])
    finally:
        handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][0] == B
