"""Test-time augmentation: the 8 orientations of an image and the mean of a network's softmax over them."""

import numpy as np
import pytest
import torch
from torch import nn

from specmorph.models.inference import class_probabilities, d4_views
from specmorph.training.loop import predict_proba


def _orientations(a: np.ndarray) -> list[np.ndarray]:
    """The D4 images of (..., H, W) arrays, made by numpy (another code path than torch.rot90)."""
    return [np.rot90(v, k, axes=(-2, -1)) for v in (a, a[..., ::-1]) for k in range(4)]


def test_d4_views_are_the_eight_orientations_identity_first():
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    views = list(d4_views(x))
    assert len(views) == 8 and views[0] is x
    expected = _orientations(x.numpy())
    assert all(np.array_equal(v.numpy(), e) for v, e in zip(views, expected, strict=True))
    assert len({v.numpy().tobytes() for v in views}) == 8  # a generic image: 8 different inputs


def test_a_non_square_grid_has_the_four_shape_keeping_views():
    x = torch.randn(1, 3, 4, 6, generator=torch.Generator().manual_seed(1))
    views = list(d4_views(x))
    assert len(views) == 4 and all(v.shape == x.shape for v in views)
    assert len({v.numpy().tobytes() for v in views}) == 4


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()  # 8x8 in


def test_the_mean_is_over_the_orientations_and_does_not_depend_on_the_input_orientation():
    net, x = _net(), torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    by_hand = np.mean([torch.softmax(net(torch.from_numpy(v.copy())).double(), 1).detach().numpy()
                       for v in _orientations(x.numpy())], axis=0)
    p = class_probabilities(net, x)
    assert p.dtype == torch.float64 and p.shape == (3, 5)
    np.testing.assert_allclose(p.numpy(), by_hand, rtol=0, atol=1e-12)
    for turned in _orientations(x.numpy()):
        np.testing.assert_allclose(class_probabilities(net, torch.from_numpy(turned.copy())).numpy(), by_hand,
                                   rtol=0, atol=1e-6)
    plain = class_probabilities(net, x, tta=False)
    np.testing.assert_allclose(plain.numpy(), torch.softmax(net(x).double(), 1).detach().numpy(), rtol=0, atol=1e-12)
    assert (plain - p).abs().max() > 1e-3  # the network is not orientation-invariant: the mean matters


class WithSpec(nn.Module):
    """The project's network signature: model(x, spec=None, has_spec=None); the spectra shift the logits."""

    def __init__(self):
        super().__init__()
        self.image = _net()

    def forward(self, x, spec=None, has_spec=None):
        return self.image(x) + (0 if spec is None else spec)


def test_predict_proba_passes_tta_and_other_inputs_through():
    net, x = WithSpec(), torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    spec = torch.arange(20, dtype=torch.float32).reshape(4, 5) / 10
    with_tta = predict_proba(net, x, spec, batch_size=3)
    assert with_tta.dtype == np.float32 and with_tta.shape == (4, 5)
    np.testing.assert_allclose(with_tta, class_probabilities(net, x, spec, None).numpy(), atol=1e-6)
    np.testing.assert_allclose(predict_proba(net, x, spec, tta=False),
                               class_probabilities(net, x, spec, None, tta=False).numpy(), atol=1e-6)
    assert np.abs(predict_proba(net, x) - with_tta).max() > 1e-3  # the spectra were used


@pytest.mark.parametrize("training", [True, False])
def test_predict_proba_restores_the_mode(training):
    net = WithSpec().train(training)
    predict_proba(net, torch.rand(2, 3, 8, 8))
    assert net.training is training
