"""The dual-shuffle channel attention (DSCA) network: a light 2-D CNN over cubes whose 512-d feature is the embedding.

Architecture (width w, C channels):

- stem: 1×1 conv C → w, BatchNorm, ReLU6 (a learned spectral projection of every spaxel);
- three stages of widths w, 2w, 4w, each `depth[i]` `DualShuffleBlock`s; stages 2 and 3 start with a
  stride-2 3×3 depth-wise conv, BN, 1×1 conv to the new width, BN, ReLU6 (MobileNet-style);
- a `ChannelAttention` gate on the last map (GAP → compress by `reduction` → ReLU → expand → sigmoid,
  multiplied back);
- global average pool → linear → the embed_dim-d feature (`embed`);
- a classification head (ReLU → linear) used only for training: `embed` never goes through it.

Kind-specific hyper-parameters in `EmbedderConfig.extra`: "depth" (blocks per stage, default [1, 1, 1])
and "reduction" (channel-attention compression ratio r, default 8).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from specmorph.spectral.embedder_io import register
from specmorph.spectral.encoders import Embedder, EmbedderConfig

logger = logging.getLogger(__name__)

DEFAULT_EXTRA: dict = {"depth": (1, 1, 1), "reduction": 8}  # read-only


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: (B, C, H, W) with C = g·n viewed as (g, n), transposed to (n, g), flattened.

    Output channel j·g + i is input channel i·n + j, so for groups=2 the two halves interleave
    (0, n, 1, n+1, …). `channel_shuffle(channel_shuffle(x, g), C // g)` is `x`.

    Args:
        x: (B, C, H, W) tensor.
        groups: g, a divisor of C.

    Returns:
        (B, C, H, W) tensor with permuted channels.
    """
    b, c, h, w = x.shape
    if groups < 1 or c % groups:
        raise ValueError(f"channel_shuffle: groups={groups} does not divide {c} channels")
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _branch(ch: int, kernel: int) -> nn.Sequential:
    """Depth-wise kernel×kernel conv, BN, 1×1 conv, BN: the residual function of one shuffle branch."""
    return nn.Sequential(
        nn.Conv2d(ch, ch, kernel, padding=kernel // 2, groups=ch, bias=False),
        nn.BatchNorm2d(ch),
        nn.Conv2d(ch, ch, 1, bias=False),
        nn.BatchNorm2d(ch),
    )


class DualShuffleBlock(nn.Module):
    """Channel shuffle, split into two halves, x + dw3×3 branch on one and x + dw5×5 branch on the other, concat, ReLU6.

    Args:
        channels: even number of input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2 or channels % 2:
            raise ValueError(f"DualShuffleBlock needs an even number of channels, got {channels}")
        self.branch3 = _branch(channels // 2, 3)
        self.branch5 = _branch(channels // 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ch, H, W) → (B, ch, H, W)."""
        a, b = channel_shuffle(x, 2).chunk(2, dim=1)  # (B, ch/2, H, W) each, each mixing both previous halves
        return F.relu6(torch.cat([a + self.branch3(a), b + self.branch5(b)], dim=1))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: GAP → 1×1 conv ch → ch/r → ReLU → 1×1 conv → sigmoid, multiplied back.

    Args:
        channels: ch, input and output channels.
        reduction: compression ratio r (the hidden width is max(ch // r, 1)).
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ch, H, W) → (B, ch, H, W), each channel scaled by its gate in (0, 1)."""
        return x * self.gate(x)  # (B, ch, 1, 1) broadcast


def _transition(c_in: int, c_out: int) -> nn.Sequential:
    """Stride-2 depth-wise 3×3, BN, 1×1 conv c_in → c_out, BN, ReLU6: halves H and W (rounding up)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride=2, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


@register("dsca")
class DscaNet(Embedder):
    """Dual-shuffle channel attention network (kind "dsca"); the head is for training only.

    Args:
        cfg: `in_channels`, `width` (even), `embed_dim`, `n_classes` (>= 2) and `extra` ("depth",
            "reduction"; other keys raise ValueError) are used.
    """

    def __init__(self, cfg: EmbedderConfig) -> None:
        super().__init__(cfg)
        unknown = sorted(set(cfg.extra) - set(DEFAULT_EXTRA))
        if unknown:
            raise ValueError(f"unknown dsca extra keys: {', '.join(unknown)} (known: {', '.join(DEFAULT_EXTRA)})")
        extra = {**DEFAULT_EXTRA, **cfg.extra}
        depth, reduction = [int(d) for d in extra["depth"]], int(extra["reduction"])
        if cfg.n_classes < 2:
            raise ValueError(f"DscaNet needs n_classes >= 2 for its training head, got {cfg.n_classes}")
        if cfg.width % 2 or not depth or min(depth) < 1 or reduction < 1:
            raise ValueError(f"DscaNet: width {cfg.width} must be even, depth {depth} >= 1 each, reduction >= 1")
        widths = [cfg.width * 2**i for i in range(len(depth))]
        layers: list[nn.Module] = [
            nn.Conv2d(cfg.in_channels, cfg.width, 1, bias=False),
            nn.BatchNorm2d(cfg.width),
            nn.ReLU6(inplace=True),
        ]
        for i, (ch, n_blocks) in enumerate(zip(widths, depth, strict=True)):
            if i:
                layers.append(_transition(widths[i - 1], ch))
            layers.extend(DualShuffleBlock(ch) for _ in range(n_blocks))
        layers.append(ChannelAttention(widths[-1], reduction))
        self.features = nn.Sequential(*layers)
        self.feature = nn.Linear(widths[-1], cfg.embed_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(cfg.embed_dim, cfg.n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, embed_dim) feature (before the training head)."""
        self.check_input(x)
        return self.feature(self.features(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, n_classes) logits of the training head."""
        return self.head(self.embed(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor, ce_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the training head.

        Args:
            x: (B, C, H, W) prepared cubes.
            y: (B,) int64 class indices.
            ce_weight: accepted for the signature shared with `SupervisedAE.loss`; cross-entropy is the
                only objective here, so it is not weighted.

        Returns:
            (scalar loss with gradient, {"ce", "acc"} as floats for logging; acc is the batch accuracy).
        """
        logits = self(x)
        ce = F.cross_entropy(logits, y)
        return ce, {"ce": ce.item(), "acc": (logits.argmax(1) == y).float().mean().item()}
