"""Class probabilities of a trained classifier: its softmax, by default averaged over the image's 8 orientations.

A galaxy's class does not depend on how the image is turned or mirrored, so the training augments with
random elements of the square's symmetry group D4 (`training.engine.augment_d4`). At test time the
same network is shown all 8 elements (4 quarter turns of the image and of its mirror) and its softmax
probabilities are averaged (test-time augmentation): one answer per galaxy whatever its orientation,
at 8 forward passes per image (what it changes on the default run: README, Measured).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def d4_views(x: torch.Tensor) -> Iterator[torch.Tensor]:
    """The D4 images of a (B, C, H, W) batch: 4 quarter turns of it, then of its mirror (8 in all).

    On an H ≠ W grid only the half turns keep the shape: 4 views (identity, half turn, and their mirrors).
    The first view is `x` itself.
    """
    turns = (0, 1, 2, 3) if x.shape[-1] == x.shape[-2] else (0, 2)
    for image in (x, x.flip(-1)):
        for k in turns:
            yield torch.rot90(image, k, dims=(-2, -1)) if k else image


@torch.no_grad()
def class_probabilities(model: nn.Module, x: torch.Tensor, *inputs: torch.Tensor | None,
                        tta: bool = True) -> torch.Tensor:
    """Softmax probabilities of `model(x, *inputs)`, with `tta` the mean over `d4_views(x)`.

    Args:
        model: a classifier returning logits (B, C); the caller sets eval mode.
        x: (B, 3, S, S) images.
        inputs: further model inputs (spectra, their mask), the same for every view.
        tta: average over the 8 orientations; False: the image as given.

    Returns:
        (B, C) float64 probabilities on x's device.
    """
    views = list(d4_views(x)) if tta else [x]
    return sum(torch.softmax(model(view, *inputs).double(), dim=1) for view in views) / len(views)
