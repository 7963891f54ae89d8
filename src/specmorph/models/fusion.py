"""Classifiers on the backbone: RGB-only, and concat fusion of image features with a spectral MLP embedding.

Spectral dropout (`ConcatFusion`). The spectral branch is privileged information: it exists for the
few galaxies with an IFS cube and never at predict time. Each sample's spectral embedding is
therefore one of two things:

- `spectral_mlp(spec)` where the sample has a spectrum (`has_spec` True) and, in training mode, it
  was not dropped: each sample is dropped independently with probability `spec_dropout`;
- a learned "absent" embedding otherwise: always where `has_spec` is False or `spec` is None.

Training on both lets the same head classify with and without a spectrum, so RGB-only inference
(`spec=None`) is always valid, and an eval-mode output never depends on the `spec` values of rows
whose `has_spec` is False (they are zeroed before the MLP, so NaN placeholders are harmless too).
"""

from __future__ import annotations

import torch
from torch import nn

from specmorph.models.backbone import ResNetBackbone

HEAD_DROPOUT = 0.2  # dropout on the features entering the linear head


class RgbClassifier(nn.Module):
    """Backbone -> dropout -> linear head; ignores `spec` and `has_spec`.

    Args:
        depth: residual blocks per backbone stage.
        width: channels of the first backbone stage.
        n_classes: number of output classes.
    """

    def __init__(self, depth: tuple[int, ...], width: int, n_classes: int) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(depth, width)
        self.dropout = nn.Dropout(HEAD_DROPOUT)
        self.head = nn.Linear(self.backbone.out_dim, n_classes)

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, n_classes)."""
        return self.head(self.dropout(self.backbone(x)))


class ConcatFusion(nn.Module):
    """Backbone features ⊕ spectral embedding (or the learned "absent" embedding) -> dropout -> linear head.

    Args:
        depth: residual blocks per backbone stage.
        width: channels of the first backbone stage.
        n_classes: number of output classes.
        spec_dim: spectral feature dimension (PCA components).
        spec_hidden: MLP widths (h1, h2): spec_dim -> h1 -> h2, ReLU, then LayerNorm.
        spec_dropout: training-time probability of replacing a sample's embedding by "absent".
    """

    def __init__(
        self,
        depth: tuple[int, ...],
        width: int,
        n_classes: int,
        spec_dim: int,
        spec_hidden: tuple[int, int],
        spec_dropout: float,
    ) -> None:
        super().__init__()
        # Built first, so that under the same torch seed its initial weights equal RgbClassifier's.
        self.backbone = ResNetBackbone(depth, width)
        h1, h2 = spec_hidden
        self.spec_dim = spec_dim
        self.spec_dropout = spec_dropout
        # Per-feature standardisation of `spec`, set from the training set by the training loop and
        # saved with the weights, so callers always pass raw PCA coefficients.
        self.register_buffer("spec_mean", torch.zeros(spec_dim))  # (spec_dim,)
        self.register_buffer("spec_scale", torch.ones(spec_dim))  # (spec_dim,)
        self.spectral_mlp = nn.Sequential(
            nn.Linear(spec_dim, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.LayerNorm(h2)
        )
        self.absent = nn.Parameter(torch.zeros(h2))  # (h2,) embedding used when there is no spectrum
        self.dropout = nn.Dropout(HEAD_DROPOUT)
        self.head = nn.Linear(self.backbone.out_dim + h2, n_classes)

    @torch.no_grad()
    def set_spec_normalisation(self, spec: torch.Tensor) -> None:
        """Sets the input standardisation from (N, spec_dim) training spectra (rows with a spectrum only)."""
        spec = spec.to(self.spec_mean.dtype)
        if spec.ndim != 2 or spec.shape[1] != self.spec_dim:
            raise ValueError(f"spec must have shape (N, {self.spec_dim}), got {tuple(spec.shape)}")
        if spec.shape[0] < 2:
            return
        self.spec_mean.copy_(spec.mean(dim=0))
        self.spec_scale.copy_(spec.std(dim=0).clamp_min(1e-6))

    def spectral_embedding(self, spec: torch.Tensor | None, has_spec: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, spec_dim) spectra -> (B, h2) embeddings, "absent" where unused (see the module docstring).

        `has_spec=None` with a `spec` means every row whose values are all finite has a spectrum.
        """
        absent = self.absent.expand(batch, -1)  # (B, h2)
        if spec is None:
            return absent
        if spec.shape != (batch, self.spec_dim):
            raise ValueError(f"spec must have shape ({batch}, {self.spec_dim}), got {tuple(spec.shape)}")
        spec = spec.to(self.absent.dtype)
        use = torch.isfinite(spec).all(dim=1) if has_spec is None else has_spec.to(torch.bool)  # (B,)
        if self.training and self.spec_dropout > 0:
            use = use & (torch.rand(batch, device=spec.device) >= self.spec_dropout)
        spec = (spec - self.spec_mean) / self.spec_scale
        spec = torch.where(use[:, None], spec, torch.zeros_like(spec))  # no NaN reaches the MLP or its grads
        return torch.where(use[:, None], self.spectral_mlp(spec), absent)

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S), (B, spec_dim) | None, (B,) bool | None -> logits (B, n_classes)."""
        feats = self.backbone(x)  # (B, out_dim)
        emb = self.spectral_embedding(spec, has_spec, x.shape[0])  # (B, h2)
        return self.head(self.dropout(torch.cat([feats, emb], dim=1)))
