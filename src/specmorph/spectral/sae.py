"""The supervised autoencoder: a convolutional encoder to a 512-d latent, a transposed-conv decoder and a class head.

Architecture (width w, grid H × W, C channels):

- encoder: 1×1 conv C → w (a learned spectral projection, 9× cheaper than a 3×3 over all channels for
  long spectra), 3×3 conv w → w, then three stride-2 3×3 convs w → 2w → 4w → 8w, leaving an
  (8w, ⌈H/8⌉, ⌈W/8⌉) map; it is average-pooled to at most 4 × 4 (so the bottleneck does not grow
  with the grid: 192 × 184 cubes pool 24 × 23 → 4 × 4), flattened and projected to the latent;
- decoder: linear latent → (8w, b_h, b_w), resized to (⌈H/8⌉, ⌈W/8⌉) when the encoder pooled, three
  stride-2 transposed convs (with ReLU, no BatchNorm) 8w → 4w → 2w → w to (8⌈H/8⌉, 8⌈W/8⌉), a crop
  to H × W (the stride-2 convs align pixels top-left, so the crop keeps the top-left H × W) and a
  1×1 conv w → C;
- head: a linear classifier on the latent.

Loss = MSE(reconstruction, x) + ce_weight · CE(head(latent), y). `embed(x)` is the latent.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from specmorph.spectral.embedder_io import register
from specmorph.spectral.encoders import Embedder, EmbedderConfig, conv_bn_relu

logger = logging.getLogger(__name__)

MAX_BOTTLENECK = 4  # pixels per side of the pooled map that feeds the latent


def _down(n: int) -> int:
    """Side after three stride-2, padding-1, 3×3 convolutions: ⌈n/8⌉."""
    for _ in range(3):
        n = (n + 1) // 2
    return n


def _up_relu(c_in: int, c_out: int) -> nn.Sequential:
    """4×4 transposed convolution with stride 2 (exactly doubles H and W) and ReLU.

    No BatchNorm in the decoder: it trains faster without (a constant cube is reconstructed in half
    the steps), and its eval-mode output then does not depend on running statistics off the `embed`
    path, which `engine.recompute_bn` does not refresh.
    """
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True))


@register("sae")
class SupervisedAE(Embedder):
    """Convolutional autoencoder with a classification head on its latent (kind "sae").

    Args:
        cfg: `in_channels`, `grid`, `width`, `embed_dim` (the latent) and `n_classes` (>= 2) are used;
            `extra` must be empty (the cross-entropy weight is a training setting, `SupervisedParams`).
    """

    def __init__(self, cfg: EmbedderConfig) -> None:
        super().__init__(cfg)
        if cfg.n_classes < 2:
            raise ValueError(f"SupervisedAE needs n_classes >= 2 for its head, got {cfg.n_classes}")
        if cfg.extra:
            raise ValueError(f"SupervisedAE takes no extra hyper-parameters, got {', '.join(sorted(cfg.extra))}")
        c, (h, w), wd = cfg.in_channels, cfg.grid, cfg.width
        self.map_shape = (_down(h), _down(w))  # (⌈H/8⌉, ⌈W/8⌉)
        self.bottleneck = (min(self.map_shape[0], MAX_BOTTLENECK), min(self.map_shape[1], MAX_BOTTLENECK))
        flat = 8 * wd * self.bottleneck[0] * self.bottleneck[1]
        self.encoder = nn.Sequential(
            nn.Conv2d(c, wd, 1, bias=False),
            nn.BatchNorm2d(wd),
            nn.ReLU(inplace=True),
            conv_bn_relu(wd, wd),
            conv_bn_relu(wd, 2 * wd, stride=2),
            conv_bn_relu(2 * wd, 4 * wd, stride=2),
            conv_bn_relu(4 * wd, 8 * wd, stride=2),
            nn.AdaptiveAvgPool2d(self.bottleneck),
            nn.Flatten(),
            nn.Linear(flat, cfg.embed_dim),
        )
        self.from_latent = nn.Sequential(nn.Linear(cfg.embed_dim, flat), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(_up_relu(8 * wd, 4 * wd), _up_relu(4 * wd, 2 * wd), _up_relu(2 * wd, wd))
        self.to_cube = nn.Conv2d(wd, c, 1)
        self.head = nn.Linear(cfg.embed_dim, cfg.n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, embed_dim) latent."""
        self.check_input(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim) latent → (B, C, H, W) reconstruction."""
        m = self.from_latent(z).view(len(z), 8 * self.cfg.width, *self.bottleneck)  # (B, 8w, b_h, b_w)
        if self.bottleneck != self.map_shape:
            m = F.interpolate(m, size=self.map_shape, mode="bilinear", align_corners=False)  # (B, 8w, ⌈H/8⌉, ⌈W/8⌉)
        h, w = self.cfg.grid
        m = self.decoder(m)[:, :, :h, :w]  # (B, w, H, W), cropped from (8⌈H/8⌉, 8⌈W/8⌉)
        return self.to_cube(m)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) → (reconstruction (B, C, H, W), latent (B, embed_dim), logits (B, n_classes))."""
        z = self.embed(x)
        return self.decode(z), z, self.head(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor, ce_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE(reconstruction, x) + ce_weight · CE(head(latent), y).

        Args:
            x: (B, C, H, W) prepared cubes.
            y: (B,) int64 class indices.
            ce_weight: weight of the cross-entropy term (0 trains a plain autoencoder).

        Returns:
            (scalar loss with gradient, {"mse", "ce", "acc"} as floats for logging; acc is the batch accuracy).
        """
        recon, _, logits = self(x)
        mse = F.mse_loss(recon, x)
        ce = F.cross_entropy(logits, y)
        total = mse + ce_weight * ce
        acc = (logits.argmax(1) == y).float().mean().item()
        return total, {"mse": mse.item(), "ce": ce.item(), "acc": acc}
