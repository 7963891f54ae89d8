"""Shared pieces of the learned spectral embedders: their config, a small CNN encoder, the base class and helpers.

Tensor contract. A prepared cube is float32 (C, H, W): C spectral channels (binned or cropped), an
H × W spatial grid; a batch is (B, C, H, W). Every embedder maps a batch to (B, embed_dim) through
`embed(x)`. The config below is saved with the weights (`spectral.embedder_io`), so a trained
embedder is rebuilt from its own checkpoint, never from params.yaml.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("siamese", "sae", "dsca")  # contrastive; supervised autoencoder; dual-shuffle attention
MIN_GRID = 8  # three stride-2 halvings leave at least one pixel


@dataclass(frozen=True)
class EmbedderConfig:
    """Everything needed to rebuild an embedder network; the registry in `embedder_io` builds it from this.

    Attributes:
        kind: "siamese", "sae" or "dsca".
        in_channels: C, spectral channels of the prepared cubes.
        grid: (H, W) spatial grid of the prepared cubes, pixels.
        embed_dim: length of the embedding returned by `embed`.
        width: channels of the first convolution (the encoder doubles them at each downsampling).
        n_classes: classes of a supervised head (0 for the unsupervised "siamese").
        extra: kind-specific hyper-parameters as plain (JSON-like) values.
    """

    kind: str
    in_channels: int
    grid: tuple[int, int]
    embed_dim: int = 512
    width: int = 32
    n_classes: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists (from YAML/JSON/checkpoints) become tuples so that equality is by value.
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "extra", dict(self.extra))
        if self.kind not in KINDS:
            raise ValueError(f"EmbedderConfig.kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.grid) != 2 or min(self.grid) < MIN_GRID:
            raise ValueError(f"EmbedderConfig.grid must be (H, W) with both >= {MIN_GRID}, got {self.grid}")
        bad = {
            "in_channels": self.in_channels < 1,
            "embed_dim": self.embed_dim < 1,
            "width": self.width < 1,
            "n_classes": self.n_classes < 0 or self.n_classes == 1,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"EmbedderConfig out of range: {names}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one prepared cube."""
        return (self.in_channels, *self.grid)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (grid as a list), safe for `torch.load(weights_only=True)` and JSON."""
        d = dataclasses.asdict(self)
        d["grid"] = list(d["grid"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbedderConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown EmbedderConfig keys: {', '.join(unknown)}")
        return cls(**d)


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution (no bias), BatchNorm, ReLU; `stride` 2 halves H and W (rounding up)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ConvEncoder(nn.Module):
    """A small 2-D CNN over cubes: conv3x3-BN-ReLU stem, three stride-2 stages, global average pool, linear.

    Channels go width → 2·width → 4·width → 8·width while the grid halves three times, so an H × W
    input leaves an (8·width, ⌈H/8⌉, ⌈W/8⌉) feature map (`features`); `forward` pools and projects it.

    Args:
        in_channels: C, spectral channels.
        width: channels of the stem.
        embed_dim: output length.
    """

    def __init__(self, in_channels: int, width: int, embed_dim: int) -> None:
        super().__init__()
        self.out_channels = 8 * width
        self.stem = conv_bn_relu(in_channels, width)
        self.stages = nn.Sequential(
            conv_bn_relu(width, 2 * width, stride=2),
            conv_bn_relu(2 * width, 4 * width, stride=2),
            conv_bn_relu(4 * width, 8 * width, stride=2),
        )
        self.fc = nn.Linear(self.out_channels, embed_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 8·width, ⌈H/8⌉, ⌈W/8⌉) feature map."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, embed_dim)."""
        return self.fc(self.features(x).mean(dim=(2, 3)))


class Embedder(nn.Module):
    """Base class of the learned embedders: holds the config and defines `embed`.

    Subclasses implement `embed(x)`: (B, C, H, W) → (B, embed_dim), the representation that is
    kept; heads used only for training (projection, classifier, decoder) live beside it.
    """

    def __init__(self, cfg: EmbedderConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, embed_dim) embedding."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed()")

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ValueError unless `x` is (B, C, H, W) with the config's C, H and W."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.cfg.input_shape:
            raise ValueError(
                f"{self.cfg.kind} embedder expects (B, {', '.join(map(str, self.cfg.input_shape))}), "
                f"got {tuple(x.shape)}"
            )


def embed_array(model: Embedder, x: np.ndarray | torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Embeddings of a whole set in eval mode without gradients; the model's train/eval mode is restored after.

    Args:
        model: a trained embedder.
        x: (N, C, H, W) prepared cubes.
        batch_size: cubes per forward pass.

    Returns:
        (N, embed_dim) float32 embeddings, in input order.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    model.check_input(x)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for chunk in x.split(batch_size):
                out.append(model.embed(chunk))  # (b, embed_dim)
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, model.cfg.embed_dim), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


@dataclass
class CubeTask:
    """What the embedders' `engine.Task`s share: the rows are prepared cubes (N, C, H, W), the BatchNorm
    recompute runs `embed` over them, and there is no validation (so no early stopping)."""

    x: torch.Tensor  # (N, C, H, W)
    monitor: ClassVar[str] = ""

    @property
    def n_rows(self) -> int:
        return len(self.x)

    def forward(self, model: Embedder, idx: torch.Tensor) -> None:
        model.embed(self.x[idx])

    def validate(self, model: Embedder) -> dict[str, float]:
        return {}
