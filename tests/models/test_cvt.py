"""Tests for the CvT classifier: shapes, token-map sizes, gradients, determinism and checkpoints."""

import dataclasses

import pytest
import torch

from specmorph.evaluation.gradcam import gradcam_with_probs
from specmorph.models import CvTClassifier, ModelConfig, build_model
from specmorph.models.checkpoint import load_checkpoint, save_checkpoint
from specmorph.models.cvt import ConvAttention
from specmorph.training.loop import TensorData, TrainParams, train_model

CFG = ModelConfig(kind="cvt", n_classes=5, label_cols=tuple("abcde"), image_size=32, cvt_dims=(8, 16, 32),
                  cvt_depths=(1, 1, 1), cvt_heads=(1, 2, 4))


def _model(seed: int = 0, cfg: ModelConfig = CFG) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg)


def _images(b: int = 4, size: int = 32) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_build_model_gives_a_cvt_with_logits_of_the_right_shape():
    model = _model().eval()
    assert isinstance(model, CvTClassifier)
    x = _images()
    assert model(x).shape == (4, 5)
    assert torch.equal(model(x), model(x, torch.randn(4, 3), torch.ones(4, dtype=torch.bool)))  # spec ignored


@pytest.mark.parametrize(("size", "maps"), [(32, [8, 4, 2]), (64, [16, 8, 4]), (40, [10, 5, 3])])
def test_stages_shrink_the_token_map_by_4_then_2(size, maps):
    model = _model().eval()
    x = _images(2, size)
    for stage, (dim, side) in zip(model.stages, zip(CFG.cvt_dims, maps, strict=True), strict=True):
        x = stage(x)
        assert x.shape == (2, dim, side, side)


def test_cam_layer_outputs_the_last_stage_map_and_gradients_reach_every_parameter():
    model = _model().train()
    seen = []
    handle = model.cam_layer.register_forward_hook(lambda m, i, out: seen.append(out))
    logits = model(_images())
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (4, 32, 2, 2)
    assert not any(k.startswith("cam_layer") for k in model.state_dict())  # an alias, not a second copy
    logits.logsumexp(dim=1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_squeezed_key_value_projections_have_stride_2():
    attn = ConvAttention(16, 4)
    x = torch.rand(2, 16, 8, 8)
    assert attn.q(x).shape == (2, 64, 16)
    assert attn.k(x).shape == attn.v(x).shape == (2, 16, 16)
    assert attn(attn.q(x), 8, 8).shape == (2, 64, 16)
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        ConvAttention(16, 3)


def test_same_seed_same_weights_and_outputs():
    x = _images()
    a, b, c = _model(0).eval(), _model(0).eval(), _model(1).eval()
    assert torch.equal(a(x), b(x))
    assert not torch.allclose(a(x), c(x))


def test_config_rejects_mismatched_stages_and_heads():
    with pytest.raises(ValueError, match="one entry per stage"):
        dataclasses.replace(CFG, cvt_depths=(1, 1))
    with pytest.raises(ValueError, match="divisible by its heads"):
        dataclasses.replace(CFG, cvt_heads=(1, 3, 4))


def test_checkpoint_roundtrip(tmp_path):
    model = _model(3)
    model.train()
    model(_images(8))  # moves the BatchNorm running statistics away from their initial values
    model.eval()
    save_checkpoint(tmp_path / "cvt.pt", model, CFG, {"seed": 3})
    loaded, cfg, extra = load_checkpoint(tmp_path / "cvt.pt")
    assert cfg == CFG and extra == {"seed": 3} and isinstance(loaded, CvTClassifier)
    x = _images()
    assert torch.equal(loaded(x), model(x))


def test_training_a_cvt_is_deterministic_for_a_seed():
    data = TensorData(_images(12), torch.arange(12) % 5)
    tp = TrainParams(epochs=1, batch_size=4, seed=5)
    (a, _), (b, _) = train_model(CFG, tp, data, None), train_model(CFG, tp, data, None)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["head.weight"], _model(5).state_dict()["head.weight"])  # it did train


def test_gradcam_reads_the_cvt_cam_layer():
    cam = gradcam_with_probs(_model().eval(), _images(3))
    assert cam.cams.shape == (3, 32, 32) and float(cam.cams.min()) >= 0.0 and float(cam.cams.max()) <= 1.0
    assert cam.probs.shape == (3, 5)
