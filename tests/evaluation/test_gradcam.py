"""Tests for Grad-CAM maps and the per-class gallery PNGs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from specmorph.evaluation.gradcam import _class_figure, gradcam, gradcam_with_probs, write_gallery
from specmorph.models import ModelConfig, build_model

S = 32


class Halves(nn.Module):
    """(B, 3, S, S) -> (B, 2, 8, 8): brightness pooled to 8×8; channel 0 keeps the left half, channel 1 the right."""

    def forward(self, x):
        a = F.avg_pool2d(x.mean(dim=1, keepdim=True), x.shape[-1] // 8)  # (B, 1, 8, 8)
        left = torch.zeros_like(a)
        left[..., :4] = 1.0
        return torch.cat([a * left, a * (1 - left)], dim=1)


class HalvesNet(nn.Module):
    """Logit 0 reads only the left half of the image, logit 1 only the right half, logit 2 is constant."""

    def __init__(self):
        super().__init__()
        self.cam_layer = Halves()
        self.scale = nn.Parameter(torch.tensor([1.0, 2.0]))
        self.bias = nn.Parameter(torch.zeros(3))
        self.dropout = nn.Dropout(0.5)

    def forward(self, x, spec=None, has_spec=None):
        a = self.cam_layer(x).mean(dim=(2, 3)) * self.scale  # (B, 2)
        return self.dropout(torch.cat([a, torch.zeros_like(a[:, :1])], dim=1)) + self.bias


class ConvNet(nn.Module):
    """conv-BN-ReLU ×2 (cam_layer is the second, with an in-place ReLU after it) -> mean pool -> linear."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.cam_layer = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, n_classes)

    def forward(self, x, spec=None, has_spec=None):
        return self.head(F.relu(self.cam_layer(self.stem(x)), inplace=True).mean(dim=(2, 3)))


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 3, S, S), dtype=np.float32)


def test_gradcam_known_answer_left_and_right_half():
    model = HalvesNet()
    x = _images(3)
    cams = gradcam(model, x, target=[0, 0, 0])
    assert cams.shape == (3, S, S) and cams.dtype == np.float32
    # Only channel 0 has a gradient: the map is its activation, upsampled and scaled to max 1.
    a0 = model.cam_layer(torch.from_numpy(x))[:, :1]
    want = F.interpolate(a0, size=(S, S), mode="bilinear", align_corners=False)[:, 0]
    want = (want / want.amax(dim=(1, 2), keepdim=True)).numpy()
    np.testing.assert_allclose(cams, want, atol=1e-6)
    left, right = cams[..., : S // 2 - 2].sum(), cams[..., S // 2 + 2:].sum()
    assert left > 0 and right == 0.0
    # The target changes the map: logit 1 reads the right half only.
    cams_right = gradcam(model, x, target=np.array([1, 1, 1]))
    assert cams_right[..., : S // 2 - 2].sum() == 0.0 and cams_right[..., S // 2 + 2:].sum() > 0
    assert cams_right.max() == pytest.approx(1.0)


def test_gradcam_default_target_is_prediction_and_zero_maps_stay_zero():
    model = HalvesNet()
    with torch.no_grad():
        model.bias.copy_(torch.tensor([0.0, 0.0, 10.0]))  # predicts class 2, whose logit has no image gradient
    x = _images(2)
    res = gradcam_with_probs(model, x)
    np.testing.assert_array_equal(res.target, [2, 2])
    np.testing.assert_array_equal(res.y_pred, [2, 2])
    np.testing.assert_array_equal(res.cams, 0.0)
    assert res.probs.shape == (2, 3) and np.allclose(res.probs.sum(axis=1), 1.0)
    black = gradcam(model, np.zeros((1, 3, S, S), np.float32), target=[0])
    assert np.isfinite(black).all() and black.max() == 0.0


def test_gradcam_restores_modes_and_leaves_no_gradients_or_hooks():
    torch.manual_seed(0)
    model = ConvNet()
    model.train()
    model.stem.eval()  # a mixed mode is restored module by module
    x = _images(5)
    cams = gradcam(model, x, batch_size=2)
    assert cams.shape == (5, S, S) and cams.min() >= 0.0 and cams.max() <= 1.0
    np.testing.assert_allclose(cams.max(axis=(1, 2)), 1.0, atol=1e-6)
    # Eval mode (BatchNorm running stats, no dropout): batching does not change a map.
    np.testing.assert_allclose(gradcam(model, torch.from_numpy(x), batch_size=64), cams, atol=1e-5)
    assert model.training and model.cam_layer.training and not model.stem.training
    assert all(p.grad is None for p in model.parameters())
    assert len(model.cam_layer._forward_hooks) == 0
    assert all(len(m._backward_hooks) == 0 for m in model.modules())


def test_gradcam_errors_remove_the_hook():
    model = ConvNet()
    with pytest.raises(ValueError, match="has no `cam_layer`"):
        gradcam(nn.Linear(3, 2), _images(1))
    with pytest.raises(ValueError, match=r"\(N, 3, S, S\)"):
        gradcam(model, np.zeros((2, 1, S, S), np.float32))
    with pytest.raises(ValueError, match="2 non-negative class indices"):
        gradcam(model, _images(2), target=[0])
    with pytest.raises(ValueError, match=r"target class 7 outside 0\.\.2"):
        gradcam(model, _images(2), target=[0, 7])
    assert len(model.cam_layer._forward_hooks) == 0

    flat = ConvNet()
    flat.cam_layer = nn.Flatten()  # (B, 8, 16, 16) -> (B, 2048)
    with pytest.raises(ValueError, match=r"\(B, C, h, w\) tensor, got \(2, 2048\)"):
        gradcam(flat, _images(2))
    assert len(flat.cam_layer._forward_hooks) == 0

    class Broken(ConvNet):
        def forward(self, x, spec=None, has_spec=None):
            self.cam_layer(self.stem(x))
            raise RuntimeError("boom")

    broken = Broken()
    broken.train()
    with pytest.raises(RuntimeError, match="boom"):
        gradcam(broken, _images(2))
    assert len(broken.cam_layer._forward_hooks) == 0 and broken.training


@pytest.mark.parametrize("kind", ["rgb", "gated", "cvt"])
def test_gradcam_on_built_models(kind):
    torch.manual_seed(0)
    extra = {"cvt_dims": (8, 16), "cvt_depths": (1, 1), "cvt_heads": (1, 2)} if kind == "cvt" else {}
    cfg = ModelConfig(kind=kind, n_classes=3, label_cols=("a", "b", "c"), image_size=S, depth=(1, 1), width=8,
                      feature_dim=16, head_hidden=8, **extra)
    model = build_model(cfg)
    model.train()
    x = _images(4)
    res = gradcam_with_probs(model, x, batch_size=3)
    assert res.cams.shape == (4, S, S) and res.cams.min() >= 0.0 and res.cams.max() <= 1.0
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(res.probs, probs, atol=1e-5)
    np.testing.assert_array_equal(res.target, probs.argmax(axis=1))
    other = gradcam(model, x, target=(res.target + 1) % 3)
    assert not np.allclose(other, res.cams)
    assert all(p.grad is None for p in model.parameters())
    assert len(model.cam_layer._forward_hooks) == 0


def _gallery_inputs():
    # Class a: 5 correct, 2 called b; class b: none correct, 3 called a; class c: no images.
    y_true = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    images = _images(len(y_true))
    cams = np.random.default_rng(1).random((len(y_true), S, S), dtype=np.float32)
    return images, cams, y_true, y_pred


def test_write_gallery_one_png_per_class(tmp_path):
    images, cams, y_true, y_pred = _gallery_inputs()
    open_before = plt.get_fignums()
    out_dir = tmp_path / "plots" / "gradcam"
    paths = write_gallery(images, cams, y_true, y_pred, ["a", "b", "c"], out_dir, title_prefix="rgb: ")
    assert paths == [out_dir / "a.png", out_dir / "b.png", out_dir / "c.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.png", "b.png", "c.png"]  # no temporary files left
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size == (480, 280)
        assert 0 < p.stat().st_size <= 150_000
    assert plt.get_fignums() == open_before
    # Deterministic bytes (DVC tracks the images); names work as labels too.
    first = paths[0].read_bytes()
    write_gallery(images, cams, [["a", "b"][i] for i in y_true], [["a", "b"][i] for i in y_pred],
                  ["a", "b", "c"], out_dir, title_prefix="rgb: ")
    assert paths[0].read_bytes() == first


def test_gallery_panels_captions_and_none():
    images, cams, _, y_pred = _gallery_inputs()
    rgb = images.transpose(0, 2, 3, 1)
    rows = (np.array([0, 2, 3, 5]), np.array([1, 6]))
    fig = _class_figure(rgb, cams, rows, y_pred, ["a", "b", "c"], 4, "a")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["#0", "#2", "#3", "#5", "#1 → b", "#6 → a", "", ""]
    assert all(len(ax.images) == 2 for ax in fig.axes[:6])  # RGB + heat map
    fig = _class_figure(rgb, cams, (np.array([], int), np.array([7, 8, 9])), y_pred, ["a", "b", "c"], 4, "b")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["correct:\nnone"] and [ax.get_title() for ax in fig.axes[4:7]] == ["#7 → a", "#8 → a", "#9 → a"]


def test_write_gallery_selection_and_errors(tmp_path):
    images, cams, y_true, y_pred = _gallery_inputs()
    a1 = write_gallery(images, cams, y_true, y_pred, ["a", "b", "c"], tmp_path / "s1", n_per_row=2, seed=3)[0]
    a2 = write_gallery(images, cams, y_true, y_pred, ["a", "b", "c"], tmp_path / "s2", n_per_row=2, seed=3)[0]
    assert a1.read_bytes() == a2.read_bytes()
    with pytest.raises(ValueError, match="cams shape"):
        write_gallery(images, cams[:, :8, :8], y_true, y_pred, ["a", "b", "c"], tmp_path)
    with pytest.raises(ValueError, match="not a plain file name"):
        write_gallery(images, cams, y_true, y_pred, ["a", "b/c", "d"], tmp_path)
    with pytest.raises(ValueError, match="unknown class 'z'"):
        write_gallery(images, cams, y_true, ["z"] * 10, ["a", "b", "c"], tmp_path)
