"""Convolutional vision transformer (CvT, Wu et al. 2021) classifier for RGB cutouts (plain torch).

Each stage starts with a convolutional token embedding, an overlapping strided convolution
(kernel 7 stride 4 in stage 1, kernel 3 stride 2 after) followed by LayerNorm, so that the
token map shrinks and widens stage by stage like a CNN's. Its transformer blocks replace the
linear Q/K/V projections of ViT by depthwise-separable convolutions on the 2-D token map
(depthwise 3×3 conv + BatchNorm, then a linear layer); K and V use stride 2, CvT's "squeezed"
projection, which quarters the attention cost. Blocks are pre-norm with residuals and an MLP of
ratio 4. Tokens are reshaped back to (B, C, H, W) between stages; there is no position
embedding (the convolutions carry position) and no class token: the last stage's tokens go
through a final LayerNorm, a global average pool and a linear head.

A 64-px input is seen as 16×16, 8×8 and 4×4 token maps by a 3-stage CvT.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MLP_RATIO = 4
KV_STRIDE = 2  # stride of the squeezed K/V projections


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H·W, C)."""
    return x.flatten(2).transpose(1, 2)


def _map(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H·W, C) -> (B, C, H, W)."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


class ConvEmbedding(nn.Module):
    """Overlapping strided convolution, then LayerNorm over channels: (B, c_in, H, W) -> (B, dim, H', W').

    Args:
        c_in: input channels.
        dim: embedding width.
        kernel: conv kernel side (7 in stage 1, 3 after).
        stride: conv stride (4 in stage 1, 2 after).
    """

    def __init__(self, c_in: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, dim, ⌊(H + 2⌊k/2⌋ − k)/s⌋ + 1, same for W)."""
        y = self.proj(x)  # (B, dim, H', W')
        h, w = y.shape[-2:]
        return _map(self.norm(_tokens(y)), h, w)


class ConvProjection(nn.Module):
    """Depthwise-separable projection of a token map: depthwise 3×3 conv (stride s) + BatchNorm, then linear.

    Args:
        dim: token width (in and out).
        stride: depthwise conv stride (1 for Q, `KV_STRIDE` for K and V).
    """

    def __init__(self, dim: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim, bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.pointwise = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim, H, W) map -> (B, H'·W', dim) tokens, H' = ⌈H / stride⌉."""
        return self.pointwise(_tokens(self.bn(self.depthwise(x))))


class ConvAttention(nn.Module):
    """Multi-head self-attention whose Q/K/V come from `ConvProjection`s of the token map.

    Args:
        dim: token width; divisible by `heads`.
        heads: attention heads.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ConvAttention: width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = ConvProjection(dim, 1)
        self.k = ConvProjection(dim, KV_STRIDE)
        self.v = ConvProjection(dim, KV_STRIDE)
        self.out = nn.Linear(dim, dim)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) -> (B, heads, N, dim / heads)."""
        b, n, d = t.shape
        return t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H·W, dim) tokens of an H×W map -> (B, H·W, dim)."""
        x = _map(t, h, w)  # (B, dim, H, W)
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))  # (B, heads, N | N', dh)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, H·W, dh)
        return self.out(y.transpose(1, 2).reshape(t.shape))


class Block(nn.Module):
    """Pre-norm transformer block: t + attention(LN(t)), then t + MLP(LN(t)) with MLP ratio 4 and GELU.

    Args:
        dim: token width.
        heads: attention heads.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, MLP_RATIO * dim), nn.GELU(), nn.Linear(MLP_RATIO * dim, dim))

    def forward(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H·W, dim) -> (B, H·W, dim)."""
        t = t + self.attn(self.norm1(t), h, w)
        return t + self.mlp(self.norm2(t))


class Stage(nn.Module):
    """Convolutional token embedding, then `depth` blocks; map in, map out: (B, c_in, H, W) -> (B, dim, H', W').

    Args:
        c_in: input channels (3, or the previous stage's width).
        dim: this stage's width.
        depth: transformer blocks.
        heads: attention heads.
        kernel: embedding conv kernel.
        stride: embedding conv stride.
    """

    def __init__(self, c_in: int, dim: int, depth: int, heads: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.embed = ConvEmbedding(c_in, dim, kernel, stride)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, dim, H', W')."""
        x = self.embed(x)
        h, w = x.shape[-2:]
        t = _tokens(x)  # (B, H'·W', dim)
        for block in self.blocks:
            t = block(t, h, w)
        return _map(t, h, w)


class CvTClassifier(nn.Module):
    """CvT stages -> final LayerNorm -> global average pool -> linear head; ignores `spec` and `has_spec`.

    `cam_layer` is the last stage: its output is the (B, dims[-1], h, w) token map Grad-CAM reads.

    Args:
        dims: embedding width per stage, e.g. (64, 128, 256).
        depths: transformer blocks per stage, e.g. (1, 2, 10).
        heads: attention heads per stage, e.g. (1, 2, 4); each divides its stage's width.
        n_classes: number of output classes.
        in_channels: input channels (3 for RGB).
    """

    def __init__(self, dims: tuple[int, ...], depths: tuple[int, ...], heads: tuple[int, ...], n_classes: int,
                 in_channels: int = 3) -> None:
        super().__init__()
        if not dims or not len(dims) == len(depths) == len(heads):
            raise ValueError(f"CvTClassifier: dims {dims}, depths {depths} and heads {heads} need one entry per stage")
        stages = []
        c_in = in_channels
        for k, (dim, depth, n_heads) in enumerate(zip(dims, depths, heads, strict=True)):
            kernel, stride = (7, 4) if k == 0 else (3, 2)
            stages.append(Stage(c_in, dim, depth, n_heads, kernel, stride))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(c_in)
        self.head = nn.Linear(c_in, n_classes)
        self.apply(_init_weights)

    @property
    def cam_layer(self) -> nn.Module:
        """The last stage, whose (B, dims[-1], h, w) output map Grad-CAM reads (not registered twice)."""
        return self.stages[-1]

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] -> logits (B, n_classes)."""
        fmap = self.stages(x)  # (B, dims[-1], h, w)
        return self.head(self.norm(_tokens(fmap)).mean(dim=1))  # (B, n_classes)


def _init_weights(m: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights and zero biases, as in CvT/ViT; norms at (1, 0)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm | nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
