"""The training loop of the supervised spectral embedders ("sae", "dsca"): AdamW, one-cycle, D4 augmentation, seeded.

Training split only. `train_supervised` sees labels, so the caller passes only the cubes of the
training split; embeddings of held-out galaxies then come from the trained encoder (`embed_array`),
never from a model that saw their labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from specmorph.spectral.embedder_io import build_embedder
from specmorph.spectral.encoders import Embedder, EmbedderConfig, recompute_bn_stats
from specmorph.torchutil import batch_indices, one_cycle_adamw, torch_settings

logger = logging.getLogger(__name__)

SUPERVISED_KINDS: tuple[str, ...] = ("sae", "dsca")


@dataclass(frozen=True)
class SupervisedParams:
    """Optimisation settings of a supervised embedder.

    Attributes:
        epochs: passes over the training cubes.
        batch_size: cubes per step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW decoupled weight decay (not applied to biases and norm weights).
        ce_weight: weight of the cross-entropy term of the "sae" loss (MSE + ce_weight · CE); "dsca"
            trains on cross-entropy alone and ignores it.
        seed: torch seed for initial weights, data order and augmentation.
        num_threads: torch CPU threads (results are reproducible for a fixed value).
        augment: give each training cube a random D4 element (quarter turns and mirrors of the grid;
            only the half turn and mirrors when H ≠ W).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    ce_weight: float = 1.0
    seed: int = 0
    num_threads: int = 2
    augment: bool = True

    def __post_init__(self) -> None:
        bad = {
            "epochs": self.epochs < 1,
            "batch_size": self.batch_size < 2,
            "lr": self.lr <= 0,
            "weight_decay": self.weight_decay < 0,
            "ce_weight": self.ce_weight < 0,
            "num_threads": self.num_threads < 1,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"SupervisedParams out of range: {names}")


def random_d4(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each cube of a (B, C, H, W) batch mirrored in H, in W and (square grids only) transposed, each half the time.

    On a square grid the three independent coin flips give the 8 elements of D4 (quarter turns and
    mirrors) with equal probability; on an H ≠ W grid, the 4 that keep its shape. Returns a new tensor.
    """
    b, _, h, w = x.shape
    flips = torch.randint(2, (3, b), generator=gen).bool()  # (3, B): mirror H, mirror W, transpose
    out = x.clone()
    out[flips[0]] = out[flips[0]].flip(2)
    out[flips[1]] = out[flips[1]].flip(3)
    if h == w:
        out[flips[2]] = out[flips[2]].transpose(2, 3)
    return out


def _check_inputs(cfg: EmbedderConfig, x: torch.Tensor, y: torch.Tensor) -> None:
    """Raises ValueError unless the kind is supervised and the cubes and labels fit `cfg`."""
    if cfg.kind not in SUPERVISED_KINDS:
        raise ValueError(f"train_supervised: kind must be one of {SUPERVISED_KINDS}, got {cfg.kind!r}")
    if x.ndim != 4 or tuple(x.shape[1:]) != cfg.input_shape:
        raise ValueError(f"train_supervised: cubes {tuple(x.shape)} do not match (N, {cfg.input_shape})")
    if y.shape != (len(x),) or len(x) < 2:
        raise ValueError(f"train_supervised: need >= 2 cubes and labels (N,), got {tuple(x.shape)}, {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= cfg.n_classes:
        raise ValueError(f"train_supervised: labels must be in [0, {cfg.n_classes}), got {y.unique().tolist()}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("train_supervised: cubes contain NaN or inf (prepare them first)")


def train_supervised(
    cfg: EmbedderConfig,
    cubes: np.ndarray,
    labels: np.ndarray,
    params: SupervisedParams,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> tuple[Embedder, list[dict]]:
    """Trains a fresh "sae" or "dsca" embedder on labelled cubes of the training split only.

    The caller must pass the training split alone: the model sees these labels, so embeddings of
    held-out galaxies are only honest if they were not among `cubes`. The final (last-epoch) weights
    are returned, with BatchNorm statistics of the embedding path recomputed over `cubes`.

    Args:
        cfg: embedder configuration, kind "sae" or "dsca", with `n_classes` > every label.
        cubes: (N, C, H, W) float32 prepared cubes of the training galaxies (finite).
        labels: (N,) int class indices.
        params: optimisation settings.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.

    Returns:
        (model in eval mode, history): one dict per epoch with epoch, lr (at the epoch's end),
        train_loss (training objective, mean over cubes), the model's loss parts averaged the same way
        (e.g. mse, ce, acc; acc is running, in train mode), seconds and cubes_per_s.
    """
    x = torch.as_tensor(cubes, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    _check_inputs(cfg, x, y)
    history: list[dict] = []
    with torch_settings(params.num_threads):
        torch.manual_seed(params.seed)
        order_gen = torch.Generator().manual_seed(params.seed)
        aug_gen = torch.Generator().manual_seed(params.seed + 1)
        model = build_embedder(cfg)
        steps = len(batch_indices(torch.arange(len(x)), params.batch_size))
        opt, sched = one_cycle_adamw(model, params.lr, params.weight_decay, params.epochs * steps)
        for epoch in tqdm(range(1, params.epochs + 1), desc=f"train {cfg.kind}", disable=None, leave=False):
            t0 = time.perf_counter()
            model.train()
            sums: dict[str, float] = {}
            for idx in batch_indices(torch.randperm(len(x), generator=order_gen), params.batch_size):
                xb = random_d4(x[idx], aug_gen) if params.augment else x[idx]
                loss, parts = model.loss(xb, y[idx], ce_weight=params.ce_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                for k, v in {"train_loss": loss.item(), **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
            if epoch == params.epochs:
                recompute_bn_stats(model, x, params.batch_size)
            seconds = time.perf_counter() - t0
            metrics = {"epoch": epoch, "lr": float(sched.get_last_lr()[0])}
            metrics.update({k: v / len(x) for k, v in sums.items()})
            metrics.update({"seconds": seconds, "cubes_per_s": len(x) / seconds})
            history.append(metrics)
            logger.info("%s epoch %d: %s", cfg.kind, epoch, {k: round(v, 4) for k, v in metrics.items()})
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    model.eval()
    return model, history
