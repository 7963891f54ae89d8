"""Classifiers on the ResNet backbone: RGB-only, concat fusion and gated fusion with a spectral branch.

One RGB path for all. `RgbTrunk` (backbone → Linear → BatchNorm → ReLU → dropout) gives F_rgb, and
a head `feature_dim → head_hidden → C` classifies; the RGB-only baseline is exactly that, and a
knowledge-distillation student is an RGB-only network trained with another loss.

The spectrum is privileged information: it exists for the few galaxies with an IFS cube and never
at predict time. A sample "has a spectrum" where `has_spec` is True (or, with `has_spec=None`, where
its `spec` row is all finite); in training mode each such sample is also treated as having none with
probability `spec_dropout` (modality dropout). Without a spectrum:

- `ConcatFusion` uses a learned "absent" embedding in place of the spectral embedding;
- `GatedFusion` uses F_spec = 0 (so F = F_rgb for the residual gate) with `rgb_inference="drop"`, or
  a hallucinated F_spec predicted from F_rgb with `rgb_inference="hallucinate"` (Hoffman et al. 2016).

Rows without a spectrum are zeroed before the spectral MLP, so NaN placeholders never reach the
network or its gradients, and an eval-mode output never depends on those rows' `spec` values.
"""

from __future__ import annotations

import torch
from torch import nn

from specmorph.models.backbone import ResNetBackbone
from specmorph.models.config import ModelConfig

HEAD_DROPOUT = 0.2  # dropout on F_rgb and inside the head


def mlp_head(d_in: int, hidden: int, n_classes: int) -> nn.Module:
    """d_in → hidden (ReLU, dropout) → n_classes, or a single linear layer when `hidden` is 0."""
    if hidden == 0:
        return nn.Linear(d_in, n_classes)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(HEAD_DROPOUT), nn.Linear(hidden, n_classes))


class RgbTrunk(nn.Module):
    """Image → F_rgb: ResNet backbone, then Linear(out_dim → feature_dim), BatchNorm, ReLU, dropout."""

    def __init__(self, depth: tuple[int, ...], width: int, feature_dim: int) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(depth, width)
        self.proj = nn.Sequential(
            nn.Linear(self.backbone.out_dim, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(),
            nn.Dropout(HEAD_DROPOUT),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, feature_dim)."""
        return self.proj(self.backbone(x))


class SpectralBranch(nn.Module):
    """Spectral features → F_spec: standardisation, then MLP spec_dim → hidden → feature_dim (ReLU after each).

    The per-feature standardisation is set from the training spectra by the training loop and saved
    with the weights, so callers always pass raw features (PCA coefficients or learned embeddings).
    """

    def __init__(self, spec_dim: int, hidden: int, feature_dim: int) -> None:
        super().__init__()
        self.spec_dim, self.feature_dim = spec_dim, feature_dim
        self.register_buffer("spec_mean", torch.zeros(spec_dim))  # (spec_dim,)
        self.register_buffer("spec_scale", torch.ones(spec_dim))  # (spec_dim,)
        self.mlp = nn.Sequential(nn.Linear(spec_dim, hidden), nn.ReLU(), nn.Linear(hidden, feature_dim), nn.ReLU())

    @torch.no_grad()
    def set_normalisation(self, spec: torch.Tensor) -> None:
        """Sets the standardisation from (N, spec_dim) training spectra (rows with a spectrum only)."""
        spec = spec.to(self.spec_mean.dtype)
        if spec.ndim != 2 or spec.shape[1] != self.spec_dim:
            raise ValueError(f"spec must have shape (N, {self.spec_dim}), got {tuple(spec.shape)}")
        if spec.shape[0] < 2:
            return
        self.spec_mean.copy_(spec.mean(dim=0))
        self.spec_scale.copy_(spec.std(dim=0).clamp_min(1e-6))

    def forward(
        self, spec: torch.Tensor | None, has_spec: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (F_spec (B, feature_dim), zero where the row has no spectrum; has (B,) bool)."""
        device = self.spec_mean.device
        if spec is None:
            has = torch.zeros(batch, dtype=torch.bool, device=device)
            return torch.zeros(batch, self.feature_dim, device=device), has
        if spec.shape != (batch, self.spec_dim):
            raise ValueError(f"spec must have shape ({batch}, {self.spec_dim}), got {tuple(spec.shape)}")
        spec = spec.to(self.spec_mean.dtype)
        has = torch.isfinite(spec).all(dim=1) if has_spec is None else has_spec.to(torch.bool)  # (B,)
        z = torch.where(has[:, None], (spec - self.spec_mean) / self.spec_scale, torch.zeros_like(spec))
        return torch.where(has[:, None], self.mlp(z), torch.zeros(())), has


def _modality_dropout(module: nn.Module, has: torch.Tensor, p: float) -> torch.Tensor:
    """`has`, with each True row turned False with probability p in training mode. (B,) bool."""
    if module.training and p > 0:
        return has & (torch.rand(has.shape[0], device=has.device) >= p)
    return has


class RgbClassifier(nn.Module):
    """RGB-only: `RgbTrunk` → head; ignores `spec` and `has_spec`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.trunk = RgbTrunk(cfg.depth, cfg.width, cfg.feature_dim)
        self.head = mlp_head(cfg.feature_dim, cfg.head_hidden, cfg.n_classes)

    @property
    def cam_layer(self) -> nn.Module:
        """The backbone's residual stages: their output is the (B, C, h, w) map Grad-CAM reads."""
        return self.trunk.backbone.stages

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, n_classes)."""
        return self.head(self.trunk(x))


class ConcatFusion(RgbClassifier):
    """[F_rgb ; F_spec or the learned "absent" embedding] → head (2·feature_dim → head_hidden → C)."""

    def __init__(self, cfg: ModelConfig) -> None:
        nn.Module.__init__(self)
        # The trunk is built first, so that under the same torch seed it starts as RgbClassifier's does.
        self.trunk = RgbTrunk(cfg.depth, cfg.width, cfg.feature_dim)
        self.spectral = SpectralBranch(cfg.spec_dim, cfg.spec_hidden, cfg.feature_dim)
        self.absent = nn.Parameter(torch.zeros(cfg.feature_dim))  # (F,) embedding used without a spectrum
        self.head = mlp_head(2 * cfg.feature_dim, cfg.head_hidden, cfg.n_classes)
        self.spec_dropout = cfg.spec_dropout

    def spectral_embedding(self, spec: torch.Tensor | None, has_spec: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, spec_dim) spectra -> (B, F) embeddings, "absent" where unused (see the module docstring)."""
        f_spec, has = self.spectral(spec, has_spec, batch)
        keep = _modality_dropout(self, has, self.spec_dropout)
        return torch.where(keep[:, None], f_spec, self.absent.expand(batch, -1))

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S), (B, spec_dim) | None, (B,) bool | None -> logits (B, n_classes)."""
        emb = self.spectral_embedding(spec, has_spec, x.shape[0])  # (B, F)
        return self.head(torch.cat([self.trunk(x), emb], dim=1))


class GatedFusion(RgbClassifier):
    """Gated fusion F = F_rgb + G⊙F_spec (or G⊙F_rgb + (1−G)⊙F_spec), G = σ(W[F_rgb; F_spec]).

    Besides the logits, `parts()` returns what the training objective needs: an auxiliary classifier's
    logits on F_spec, F_rgb and F_spec for the alignment and contrastive terms, and the hallucinated
    F_spec for its regression loss.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        nn.Module.__init__(self)
        # Trunk and head first: under the same seed the RGB path starts as RgbClassifier's does.
        self.trunk = RgbTrunk(cfg.depth, cfg.width, cfg.feature_dim)
        self.head = mlp_head(cfg.feature_dim, cfg.head_hidden, cfg.n_classes)
        self.spectral = SpectralBranch(cfg.spec_dim, cfg.spec_hidden, cfg.feature_dim)
        self.gate = nn.Linear(2 * cfg.feature_dim, cfg.feature_dim)
        self.aux_head = nn.Linear(cfg.feature_dim, cfg.n_classes)
        self.hallucinator: nn.Module | None = None
        if cfg.rgb_inference == "hallucinate":
            f = cfg.feature_dim
            self.hallucinator = nn.Sequential(nn.Linear(f, f), nn.ReLU(), nn.Linear(f, f), nn.ReLU())
        self.gate_rule = cfg.gate
        self.spec_dropout = cfg.spec_dropout

    @staticmethod
    def fuse(f_rgb: torch.Tensor, f_spec: torch.Tensor, g: torch.Tensor, rule: str) -> torch.Tensor:
        """F = f_rgb + g⊙f_spec ("residual") or g⊙f_rgb + (1−g)⊙f_spec ("convex"); all (B, F)."""
        if rule == "residual":
            return f_rgb + g * f_spec
        if rule == "convex":
            return g * f_rgb + (1.0 - g) * f_spec
        raise ValueError(f"unknown gate rule {rule!r}")

    def parts(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        """Logits and intermediate features.

        Returns:
            logits (B, C); aux_logits (B, C) of the auxiliary head on F_spec; f_rgb, f_spec (B, F),
            f_spec zero where `has` is False; has (B,) bool, rows with a real spectrum (before modality
            dropout); f_hall (B, F) hallucinated F_spec, or None; gate (B, F) in (0, 1).
        """
        f_rgb = self.trunk(x)  # (B, F)
        f_spec, has = self.spectral(spec, has_spec, x.shape[0])  # (B, F), (B,)
        keep = _modality_dropout(self, has, self.spec_dropout)
        f_hall = None if self.hallucinator is None else self.hallucinator(f_rgb)  # (B, F)
        stand_in = torch.zeros_like(f_spec) if f_hall is None else f_hall
        f_in = torch.where(keep[:, None], f_spec, stand_in)
        g = torch.sigmoid(self.gate(torch.cat([f_rgb, f_in], dim=1)))  # (B, F)
        fused = self.fuse(f_rgb, f_in, g, self.gate_rule)
        return {"logits": self.head(fused), "aux_logits": self.aux_head(f_spec), "f_rgb": f_rgb, "f_spec": f_spec,
                "has": has, "f_hall": f_hall, "gate": g}

    def forward(
        self, x: torch.Tensor, spec: torch.Tensor | None = None, has_spec: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S), (B, spec_dim) | None, (B,) bool | None -> logits (B, n_classes)."""
        return self.parts(x, spec, has_spec)["logits"]
