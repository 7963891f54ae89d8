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

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from specmorph.spectral.embedder_io import register
from specmorph.spectral.encoders import (
    ConvEncoder,
    Embedder,
    EmbedderConfig,
    recompute_bn_stats,
)
from specmorph.torchutil import batch_indices, one_cycle_adamw, torch_settings

logger = logging.getLogger(__name__)

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
class SiameseParams:
    """Optimisation and augmentation settings of the contrastive training.

    Attributes:
        epochs: passes over the cubes.
        batch_size: cubes per step (each gives two views, so 2·batch_size forward passes).
        lr: peak learning rate of the one-cycle schedule (AdamW).
        tau: NT-Xent temperature.
        seed: torch seed for initial weights, data order and augmentations.
        num_threads: torch CPU threads (results are reproducible for a fixed value).
        weight_decay: AdamW decoupled weight decay on weight matrices and kernels.
        snr_range: (low, high) S/N of the added noise, relative to each cube's std, drawn uniformly.
        blur_sigma_max: largest Gaussian blur σ, pixels (σ is drawn uniformly from [0, max]).
        max_shift: largest spatial shift, pixels, per axis.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    tau: float = 0.2
    seed: int = 0
    num_threads: int = 2
    weight_decay: float = 1e-4
    snr_range: tuple[float, float] = (5.0, 50.0)
    blur_sigma_max: float = 1.5
    max_shift: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "snr_range", tuple(float(s) for s in self.snr_range))
        bad = {
            "epochs": self.epochs < 1,
            "batch_size": self.batch_size < 2,
            "lr": self.lr <= 0,
            "tau": self.tau <= 0,
            "num_threads": self.num_threads < 1,
            "weight_decay": self.weight_decay < 0,
            "snr_range": len(self.snr_range) != 2 or not 0 < self.snr_range[0] <= self.snr_range[1],
            "blur_sigma_max": self.blur_sigma_max < 0,
            "max_shift": self.max_shift < 0,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"SiameseParams out of range: {names}")


def _geometry(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """A random grid symmetry then a random roll per cube, done as one gather.

    The symmetry is k·90° then a mirror half the time (k even on a non-square grid, where a quarter
    turn would change the shape); the roll is (dy, dx) in [-max_shift, max_shift] pixels, wrapping.
    The moves are applied to an image of pixel indices, which then picks the output pixels.
    """
    b, c, h, w = x.shape
    k = torch.randint(4, (b,), generator=gen)  # (B,) quarter turns
    if h != w:
        k = k - k % 2
    flip = torch.randint(2, (b,), generator=gen).bool()  # (B,)
    d = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=gen)  # (B, 2) pixels
    pix = torch.arange(h * w).view(h, w)  # source index of each pixel
    src = []
    for i in range(b):
        moved = torch.rot90(pix, int(k[i]))
        if flip[i]:
            moved = moved.flip(-1)
        src.append(moved.roll((int(d[i, 0]), int(d[i, 1])), dims=(0, 1)).reshape(-1))
    index = torch.stack(src)[:, None, :].expand(b, c, h * w)  # (B, C, H·W)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, h, w)


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


def train_siamese(
    cfg: EmbedderConfig,
    cubes: np.ndarray | torch.Tensor,
    params: SiameseParams,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> tuple[SiameseEmbedder, list[dict]]:
    """Trains a fresh `SiameseEmbedder(cfg)` contrastively on unlabelled cubes; the last-epoch weights are returned.

    Args:
        cfg: kind "siamese" configuration; its (C, H, W) must match the cubes.
        cubes: (N, C, H, W) float32 prepared cubes, all finite.
        params: optimisation and augmentation settings.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.

    Returns:
        (model in eval mode, history): one dict per epoch with epoch, lr (at the epoch's end),
        train_loss (NT-Xent, mean over steps weighted by batch size), pos_top1 (fraction of views
        whose most similar other view is their pair), seconds and cubes_per_s.
    """
    x_all = torch.as_tensor(cubes, dtype=torch.float32)
    if x_all.ndim != 4 or tuple(x_all.shape[1:]) != cfg.input_shape:
        raise ValueError(f"train_siamese: cubes {tuple(x_all.shape)} do not match (N, *{cfg.input_shape})")
    if len(x_all) < 2:
        raise ValueError(f"train_siamese: need at least 2 cubes, got {len(x_all)}")
    if not torch.isfinite(x_all).all():
        raise ValueError("train_siamese: cubes contain NaN or inf (mask them in cube preparation)")
    aug = {"snr_range": params.snr_range, "blur_sigma_max": params.blur_sigma_max, "max_shift": params.max_shift}
    history: list[dict] = []
    with torch_settings(params.num_threads):
        torch.manual_seed(params.seed)
        order_gen = torch.Generator().manual_seed(params.seed)
        aug_gen = torch.Generator().manual_seed(params.seed + 1)
        model = SiameseEmbedder(cfg)
        steps = len(batch_indices(torch.arange(len(x_all)), params.batch_size))
        opt, sched = one_cycle_adamw(model, params.lr, params.weight_decay, params.epochs * steps, pct_start=0.1)
        for epoch in tqdm(range(1, params.epochs + 1), desc="train siamese", disable=None, leave=False):
            t0 = time.perf_counter()
            model.train()
            loss_sum, top1 = 0.0, 0
            for idx in batch_indices(torch.randperm(len(x_all), generator=order_gen), params.batch_size):
                x = x_all[idx]
                views = torch.cat([augment(x, aug_gen, **aug), augment(x, aug_gen, **aug)])  # (2B, C, H, W)
                z = model(views)  # (2B, proj_dim)
                z1, z2 = z.chunk(2)
                loss = nt_xent(z1, z2, params.tau)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * len(idx)
                top1 += _positive_top1(z.detach())
            if epoch == params.epochs:
                recompute_bn_stats(model, x_all, params.batch_size)
            seconds = time.perf_counter() - t0
            metrics = {
                "epoch": epoch,
                "lr": float(sched.get_last_lr()[0]),
                "train_loss": loss_sum / len(x_all),
                "pos_top1": top1 / (2 * len(x_all)),
                "seconds": seconds,
                "cubes_per_s": len(x_all) / seconds,
            }
            history.append(metrics)
            logger.info("siamese epoch %d: %s", epoch, {k: round(v, 4) for k, v in metrics.items()})
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    model.eval()
    return model, history


def _positive_top1(z: torch.Tensor) -> int:
    """How many of the 2N views (z is (2N, D), halves paired row by row) have their pair as nearest other view."""
    n = z.shape[0] // 2
    zn = F.normalize(z, dim=1)
    sim = (zn @ zn.T).fill_diagonal_(float("-inf"))  # (2N, 2N)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return int((sim.argmax(1) == target).sum())
