"""Siamese / contrastive spectral embedder: a shared CNN encoder trained with SimCLR's NT-Xent loss, no labels.

Each cube is seen as two views that differ only by what should not matter for its physics: the
observing conditions (Gaussian noise at a random S/N, a Gaussian blur as from a worse PSF), the
orientation on the sky (rot90 and flips; only 180° turns on a non-square grid) and the centring
(small spatial shifts). The encoder learns to map the two views of a cube close together and away
from the other cubes of the batch (Chen et al. 2020, "A Simple Framework for Contrastive Learning
of Visual Representations"). The kept embedding is the encoder output; the projection head is
used only for the loss, as in SimCLR, where the representation before it transfers better.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from specmorph.spectral.embedder_io import register
from specmorph.spectral.encoders import ConvEncoder, CubeTask, Embedder, EmbedderConfig
from specmorph.training.engine import Recipe, augment_d4, fit

PROJ_DEFAULTS = {"proj_hidden": 256, "proj_dim": 128}  # SimCLR-style head, embed_dim -> 256 -> 128


@register("siamese")
class SiameseEmbedder(Embedder):
    """ConvEncoder (the embedding) plus an MLP projection head (embed_dim → proj_hidden → proj_dim) for the loss.

    Args:
        cfg: kind "siamese"; `cfg.extra` may set "proj_hidden" and "proj_dim" (defaults 256, 128).
    """

    def __init__(self, cfg: EmbedderConfig) -> None:
        super().__init__(cfg)
        if cfg.kind != "siamese":
            raise ValueError(f"SiameseEmbedder needs kind 'siamese', got {cfg.kind!r}")
        unknown = sorted(set(cfg.extra) - set(PROJ_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown siamese config extra keys: {', '.join(unknown)}")
        proj = {**PROJ_DEFAULTS, **cfg.extra}
        self.encoder = ConvEncoder(cfg.in_channels, cfg.width, cfg.embed_dim)
        self.projection = nn.Sequential(
            nn.Linear(cfg.embed_dim, proj["proj_hidden"]),
            nn.ReLU(inplace=True),
            nn.Linear(proj["proj_hidden"], proj["proj_dim"]),
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, embed_dim) encoder output."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, proj_dim) projection, the input of the contrastive loss."""
        return self.projection(self.encoder(x))


@dataclass(frozen=True)
class SiameseParams(Recipe):
    """The contrastive recipe: `engine.Recipe` (with its defaults) plus the loss and view settings.

    `augment` is not used: the two views always get their own geometry, blur and noise (`augment`).

    Attributes:
        tau: NT-Xent temperature.
        snr_range: (low, high) S/N of the added noise, relative to each cube's std, drawn uniformly.
        blur_sigma_max: largest Gaussian blur σ, pixels (σ is drawn uniformly from [0, max]).
        max_shift: largest spatial shift, pixels, per axis.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    pct_start: float = 0.1
    tau: float = 0.2
    snr_range: tuple[float, float] = (5.0, 50.0)
    blur_sigma_max: float = 1.5
    max_shift: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "snr_range", tuple(float(s) for s in self.snr_range))
        bad = {
            "tau": self.tau <= 0,
            "snr_range": len(self.snr_range) != 2 or not 0 < self.snr_range[0] <= self.snr_range[1],
            "blur_sigma_max": self.blur_sigma_max < 0,
            "max_shift": self.max_shift < 0,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"SiameseParams out of range: {names}")


def _geometry(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """A random grid symmetry (`engine.augment_d4`), then a roll by (dy, dx) in [-max_shift, max_shift] px per cube."""
    out = augment_d4(x, gen)
    d = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2), generator=gen)  # (B, 2) pixels
    for i in range(x.shape[0]):
        out[i] = out[i].roll((int(d[i, 0]), int(d[i, 1])), dims=(1, 2))
    return out


def _blur_matrix(sigma: torch.Tensor, n: int, radius: int) -> torch.Tensor:
    """(B, n, n) matrices that blur a length-n axis with a Gaussian of σ (B,) pixels, edges replicated."""
    t = torch.arange(-radius, radius + 1)  # (K,) pixels
    kern = torch.exp(-0.5 * (t[None, :].to(sigma.dtype) / sigma.clamp_min(1e-3)[:, None]) ** 2)  # (B, K)
    kern = kern / kern.sum(1, keepdim=True)  # σ→0 is a delta
    cols = (torch.arange(n)[:, None] + t[None, :]).clamp(0, n - 1)  # (n, K) source pixel, replicated at edges
    b = len(sigma)
    mat = torch.zeros(b, n, n, dtype=sigma.dtype)
    return mat.scatter_add_(2, cols.expand(b, n, -1), kern[:, None, :].expand(b, n, -1))


def _blur(x: torch.Tensor, sigma: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Separable Gaussian blur of each cube with its own σ (B,) pixels, truncated at 3·sigma_max; edges replicated."""
    r = math.ceil(3.0 * sigma_max)
    if r == 0:
        return x
    rows = _blur_matrix(sigma.to(x.dtype), x.shape[2], r)  # (B, H, H)
    cols = _blur_matrix(sigma.to(x.dtype), x.shape[3], r)  # (B, W, W)
    return rows[:, None] @ x @ cols[:, None].transpose(-1, -2)


def augment(
    x: torch.Tensor,
    gen: torch.Generator,
    snr_range: tuple[float, float] = (5.0, 50.0),
    blur_sigma_max: float = 1.5,
    max_shift: int = 2,
) -> torch.Tensor:
    """One random view of each cube: rot90/flip, spatial shift, Gaussian blur, then Gaussian noise.

    Args:
        x: (B, C, H, W) prepared cubes.
        gen: the source of all randomness (same state, same view).
        snr_range: (low, high); each cube gets noise of std = std(cube) / S/N, S/N uniform in the range.
        blur_sigma_max: each cube is blurred with σ uniform in [0, blur_sigma_max] pixels.
        max_shift: each cube is rolled by up to this many pixels along each spatial axis.

    Returns:
        A new (B, C, H, W) tensor.
    """
    b = x.shape[0]
    out = _geometry(x, gen, max_shift)
    sigma = blur_sigma_max * torch.rand(b, generator=gen, dtype=x.dtype)  # (B,) pixels
    out = _blur(out, sigma, blur_sigma_max)
    lo, hi = snr_range
    snr = lo + (hi - lo) * torch.rand(b, generator=gen, dtype=x.dtype)  # (B,)
    noise_std = x.flatten(1).std(dim=1) / snr  # (B,) in the cube's units
    return out + noise_std[:, None, None, None] * torch.randn(x.shape, generator=gen, dtype=x.dtype)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy over the 2N views of N pairs.

    Each of the 2N L2-normalised vectors is classified among the 2N − 1 others by cosine
    similarity / τ; the right answer is the other view of the same cube. The mean over all 2N
    anchors is returned.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views, row i paired with row i of z1.
        tau: temperature.

    Returns:
        Scalar loss.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    sim = z @ z.T / tau  # (2N, 2N)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # (2N,) index of the positive
    return F.cross_entropy(sim, target)


@dataclass
class SiameseTask(CubeTask):
    """`engine.Task` of the contrastive embedder: two augmented views per cube and NT-Xent."""

    params: SiameseParams

    def batch(self, idx: torch.Tensor, aug_gen: torch.Generator | None, rank: int, world: int) -> tuple:
        assert aug_gen is not None, "train_siamese always augments"
        gen, p = aug_gen, self.params
        aug = {"snr_range": p.snr_range, "blur_sigma_max": p.blur_sigma_max, "max_shift": p.max_shift}
        x = self.x[idx]
        return (torch.cat([augment(x, gen, **aug), augment(x, gen, **aug)]),)  # (2B, C, H, W)

    def objective(self, model: SiameseEmbedder, views: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        z = model(views)  # (2B, proj_dim)
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.params.tau), {"pos_top1": _positive_top1(z.detach()) / 2}


def train_siamese(
    cfg: EmbedderConfig,
    cubes: np.ndarray | torch.Tensor,
    params: SiameseParams,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> tuple[SiameseEmbedder, list[dict]]:
    """Trains a fresh `SiameseEmbedder(cfg)` contrastively on unlabelled cubes (`engine.fit`); last-epoch weights.

    Args:
        cfg: kind "siamese" configuration; its (C, H, W) must match the cubes.
        cubes: (N, C, H, W) float32 prepared cubes, all finite.
        params: optimisation and augmentation settings.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.

    Returns:
        (model in eval mode, history): `engine.fit`'s, with train_loss (NT-Xent) and pos_top1 (fraction
        of views whose most similar other view is their pair).
    """
    x_all = torch.as_tensor(cubes, dtype=torch.float32)
    if x_all.ndim != 4 or tuple(x_all.shape[1:]) != cfg.input_shape:
        raise ValueError(f"train_siamese: cubes {tuple(x_all.shape)} do not match (N, *{cfg.input_shape})")
    if len(x_all) < 2:
        raise ValueError(f"train_siamese: need at least 2 cubes, got {len(x_all)}")
    if not torch.isfinite(x_all).all():
        raise ValueError("train_siamese: cubes contain NaN or inf (mask them in cube preparation)")
    params = dataclasses.replace(params, augment=True)  # the views are the method
    return fit(lambda: SiameseEmbedder(cfg), SiameseTask(x_all, params), params, "siamese", on_epoch,
               torch.device("cpu"))


def _positive_top1(z: torch.Tensor) -> int:
    """How many of the 2N views (z is (2N, D), halves paired row by row) have their pair as nearest other view."""
    n = z.shape[0] // 2
    zn = F.normalize(z, dim=1)
    sim = (zn @ zn.T).fill_diagonal_(float("-inf"))  # (2N, 2N)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return int((sim.argmax(1) == target).sum())
