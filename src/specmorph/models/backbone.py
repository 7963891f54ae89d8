"""A small ResNet-style image backbone (plain torch): stem, stages of basic residual blocks, global pooling."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 projection) shortcut (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H/stride, W/stride)."""
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """Stem conv 3×3 (stride 2) -> stages of `BasicBlock`s (widths width·2^k, stride 2 between) -> mean pool.

    The stride-2 stem halves a 64-px cutout to 32 px before the first stage: it quarters the cost of
    every later layer (CPU training budget) and loses little, since galaxy cutouts are smooth on the
    scale of a pixel. A 64-px input with depth (1, 1, 1) is seen at 32, 16 and 8 px by the stages.

    Args:
        depth: residual blocks per stage.
        width: channels of the first stage.
        in_channels: input channels (3 for RGB).
    """

    def __init__(self, depth: tuple[int, ...], width: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = width
        for k, n_blocks in enumerate(depth):
            c_out = width * 2**k
            for j in range(n_blocks):
                blocks.append(BasicBlock(c_in, c_out, stride=2 if (k > 0 and j == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.out_dim = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in blocks:
            # Zero-init the last BN of each residual branch: every block starts as the identity.
            nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, out_dim) features."""
        # NCHW on purpose: channels-last was ~1.4× faster but torch 2.13's CPU backward segfaults with it
        # on 2 threads for odd batch sizes (reproduced: batch 33, depth (1, 1), width 8).
        return self.stages(self.stem(x)).mean(dim=(2, 3))
