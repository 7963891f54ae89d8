"""The supervised training loop: AdamW + one-cycle schedule, D4 augmentation, deterministic on CPU for a seed.

Identical budgets. Every model trained with the same `TrainParams` (RGB-only baseline, concat or
gated fusion, a distilled student) sees the same epochs, batch size, optimiser, schedule and seed; the
data order and the augmentations come from their own `torch.Generator`s seeded by `seed`, so they are
identical too, and under the same seed every RGB trunk starts from the same weights (it is built
first). Only the spectral branch, its dropout draws, the head and the loss (`objectives`) differ.

Data parallel. In a process group of W > 1 processes (torchrun, `training.distributed`) the model is
wrapped in DDP and `batch_size` is the global batch: each rank takes its shard of the same seeded order,
batch_size / W rows a step, so the steps, schedule and each step's rows and augmentations are a single
process's. BatchNorm normalises each rank's rows; epoch sums, buffers and the final BatchNorm statistics
are made to agree, so every rank returns the same weights and history.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from specmorph.evaluation.metrics import classification_metrics
from specmorph.models import build_model
from specmorph.models.config import ModelConfig
from specmorph.torchutil import batch_indices, one_cycle_adamw, torch_settings
from specmorph.training import distributed
from specmorph.training.objectives import LossParams, make_objective

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class TrainParams:
    """Optimisation settings (the `train` section of params.yaml).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW decoupled weight decay (not applied to biases and norm weights).
        seed: torch seed for initial weights, data order, augmentation and dropout.
        augment: random rotation by k·90° and mirror of each training image (D4 symmetry).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        class_weighting: weight the loss by inverse class frequency in the training set.
        num_threads: torch CPU threads (results are reproducible for a fixed value).
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True
    label_smoothing: float = 0.0
    class_weighting: bool = True
    num_threads: int = 2

    def __post_init__(self) -> None:
        bad = {
            "epochs": self.epochs < 1,
            "batch_size": self.batch_size < 2,
            "num_threads": self.num_threads < 1,
            "lr": self.lr <= 0,
            "weight_decay": self.weight_decay < 0,
            "label_smoothing": not 0.0 <= self.label_smoothing < 1.0,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"TrainParams out of range: {names}")


@dataclass
class TensorData:
    """A labelled set in memory; numpy inputs are wrapped as torch tensors (without a copy where possible).

    Attributes:
        images: (N, 3, S, S) float32 in [0, 1].
        labels: (N,) int64 class indices.
        spec: (N, spec_dim) float32 spectral features, or None; rows without a spectrum may be NaN.
        has_spec: (N,) bool; None with a `spec` means "rows whose spec is all finite".
    """

    images: ArrayLike
    labels: ArrayLike
    spec: ArrayLike | None = None
    has_spec: ArrayLike | None = None

    def __post_init__(self) -> None:
        self.images = torch.as_tensor(self.images, dtype=torch.float32)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.images.shape[1] != 3 or self.labels.shape != (n,):
            raise ValueError(
                f"TensorData: expected images (N, 3, S, S) and labels (N,), got "
                f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}"
            )
        if self.spec is None:
            self.has_spec = None
            return
        self.spec = torch.as_tensor(self.spec, dtype=torch.float32)
        if self.spec.ndim != 2 or self.spec.shape[0] != n:
            raise ValueError(f"TensorData: expected spec ({n}, spec_dim), got {tuple(self.spec.shape)}")
        if self.has_spec is None:
            self.has_spec = torch.isfinite(self.spec).all(dim=1)
        self.has_spec = torch.as_tensor(self.has_spec, dtype=torch.bool)
        if self.has_spec.shape != (n,):
            raise ValueError(f"TensorData: expected has_spec ({n},), got {tuple(self.has_spec.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(images, labels, spec, has_spec) of the rows `idx`."""
        spec = None if self.spec is None else self.spec[idx]
        has_spec = None if self.has_spec is None else self.has_spec[idx]
        return self.images[idx], self.labels[idx], spec, has_spec


def augment_d4(x: torch.Tensor, gen: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Gives each image of a (B, C, S, S) batch its own random D4 element (k·90°, then a mirror half the time).

    The batch equivalent of `imaging.transforms.random_flip_rot90`; returns a new tensor. With
    `world` > 1 the draws are made for the global batch of B·world rows, of which this rank's rows
    are rank, rank + world, ... (`distributed.shard`): every rank advances `gen` alike.
    """
    k = torch.randint(4, (x.shape[0] * world,), generator=gen)[rank::world]  # (B,) quarter turns
    flip = torch.randint(2, (x.shape[0] * world,), generator=gen)[rank::world].bool()  # (B,)
    out = x.clone()
    for turns in (1, 2, 3):
        sel = k == turns
        if sel.any():
            out[sel] = torch.rot90(x[sel], turns, dims=(2, 3))
    if flip.any():
        out[flip] = out[flip].flip(-1)
    return out


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights N / (K · n_c) over the K classes present; 0 for absent classes. (n_classes,)."""
    counts = torch.bincount(labels, minlength=n_classes).to(torch.float32)  # (C,)
    present = counts > 0
    w = torch.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


@torch.no_grad()
def _logits(model: nn.Module, data: TensorData, batch_size: int, rgb_only: bool = False) -> torch.Tensor:
    """Eval-mode logits (N, C) of a whole set, in order, on the CPU; with `rgb_only` the spectra are not given."""
    device = next(model.parameters()).device
    out = []
    for idx in torch.arange(len(data)).split(batch_size):
        x, _, spec, has_spec = distributed.to_device(device, *data.batch(idx))
        out.append((model(x) if rgb_only else model(x, spec, has_spec)).cpu())  # (B, C)
    return torch.cat(out)


def train_model(
    cfg: ModelConfig,
    params: TrainParams,
    train: TensorData,
    val: TensorData | None,
    on_epoch: Callable[[int, dict], None] | None = None,
    teacher: nn.Module | None = None,
    losses: LossParams | None = None,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Trains a fresh `build_model(cfg)`; the final (last-epoch) weights are returned, no early stopping.

    Args:
        cfg: model configuration.
        params: optimisation settings.
        train: training set (its spectra feed fusion models and a teacher; an "rgb" model ignores them).
        val: validation set, evaluated RGB-only (no spectra, as at test time) after every epoch, or None.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.
        teacher: a trained model to distil into this one (`objectives.kd_loss`), or None.
        losses: distillation and gated-fusion loss weights (defaults: `LossParams()`).
        device: where to train (the data stay on the CPU; each batch is moved); None: the device
            `distributed.setup` chose, the CPU without it.

    Returns:
        (model in eval mode on the CPU, history): one dict per epoch with epoch, lr (at the epoch's end),
        train_loss (training objective, running mean), train_acc (running, in train mode), seconds,
        images_per_s and, with `val`, val_loss (unweighted cross-entropy), val_acc, val_macro_f1
        (`evaluation.metrics.classification_metrics`: averaged over the classes present in the labels).
    """
    if len(train) < 2:
        raise ValueError(f"train_model: need at least 2 training images, got {len(train)}")
    if train.images.shape[-1] != cfg.image_size or train.images.shape[-2] != cfg.image_size:
        raise ValueError(f"train_model: images {tuple(train.images.shape)} do not match image_size {cfg.image_size}")
    if int(train.labels.max()) >= cfg.n_classes or int(train.labels.min()) < 0:
        raise ValueError(f"train_model: labels must be in [0, {cfg.n_classes}), got {train.labels.unique().tolist()}")
    device = distributed.current_device() if device is None else torch.device(device)
    rank, world = distributed.rank(), distributed.world_size()
    local_batch = distributed.local_batch_size(params.batch_size, world)
    history: list[dict] = []
    with torch_settings(params.num_threads):
        torch.manual_seed(params.seed)
        order_gen = torch.Generator().manual_seed(params.seed)
        aug_gen = torch.Generator().manual_seed(params.seed + 1)
        model = build_model(cfg)
        spectral = getattr(model, "spectral", None)
        if spectral is not None and train.spec is not None and train.has_spec is not None:
            spectral.set_normalisation(train.spec[train.has_spec])
        if rank:
            torch.manual_seed(params.seed + 100_003 * rank)  # this rank's own dropout draws
        model.to(device)
        if teacher is not None and device.type != "cpu":
            teacher = copy.deepcopy(teacher).to(device)
        weight = class_weights(train.labels, cfg.n_classes).to(device) if params.class_weighting else None
        objective = make_objective(model, teacher, losses or LossParams(), weight, params.label_smoothing)
        step = distributed.wrap_step(model, objective, device, find_unused=spectral is not None)
        steps = len(batch_indices(distributed.shard(torch.arange(len(train)), rank, world), local_batch))
        opt, sched = one_cycle_adamw(model, params.lr, params.weight_decay, params.epochs * steps)
        for epoch in tqdm(range(1, params.epochs + 1), desc=f"train {cfg.kind}", disable=None, leave=False):
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            order = distributed.shard(torch.randperm(len(train), generator=order_gen), rank, world)
            for idx in batch_indices(order, local_batch):
                x, y, spec, has_spec = train.batch(idx)
                if params.augment:
                    x = augment_d4(x, aug_gen, rank, world)
                loss, logits = step(*distributed.to_device(device, x, y, spec, has_spec))  # (), (B, C)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * len(idx)
                correct += int((logits.argmax(1).cpu() == y).sum())
                seen += len(idx)
            loss_sum, correct, seen = distributed.all_reduce_sum([loss_sum, correct, seen], device)
            distributed.sync_buffers(model)
            if epoch == params.epochs:
                _recompute_bn_stats(model, train, params.batch_size)
            seconds = time.perf_counter() - t0
            metrics = {
                "epoch": epoch,
                "lr": float(sched.get_last_lr()[0]),
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "seconds": seconds,
                "images_per_s": len(train) / seconds,
            }
            if val is not None:
                metrics.update(_evaluate(model, val, params.batch_size))
            history.append(metrics)
            logger.info("%s epoch %d: %s", cfg.kind, epoch, {k: round(v, 4) for k, v in metrics.items()})
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    model.eval()
    return model.cpu(), history


@torch.no_grad()
def _recompute_bn_stats(model: nn.Module, data: TensorData, batch_size: int) -> None:
    """Replaces BatchNorm running statistics by exact averages over `data` with the final weights.

    The exponential running averages lag behind the weights, which matters for short schedules
    (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"); this costs one forward pass (over the
    whole set on every rank of a process group, which gives every rank the same statistics).
    """
    device = next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    for idx in batch_indices(torch.arange(len(data)), batch_size):
        x, _, spec, has_spec = distributed.to_device(device, *data.batch(idx))
        model(x, spec, has_spec)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def _evaluate(model: nn.Module, data: TensorData, batch_size: int) -> dict[str, float]:
    """RGB-only validation loss (unweighted cross-entropy), accuracy and macro-F1, in eval mode."""
    model.eval()
    logits = _logits(model, data, batch_size, rgb_only=True)  # (N, C)
    pred = logits.argmax(1)
    names = [str(c) for c in range(logits.shape[1])]  # class indices; macro over the classes in the labels
    return {
        "val_loss": float(F.cross_entropy(logits, data.labels)),
        "val_acc": float((pred == data.labels).float().mean()),
        "val_macro_f1": classification_metrics(data.labels.numpy(), pred.numpy(), names)["macro_f1"],
    }


def predict_proba(
    model: nn.Module,
    images: ArrayLike,
    spec: ArrayLike | None = None,
    has_spec: ArrayLike | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Class probabilities in eval mode without gradients; the model's train/eval mode is restored after.

    Args:
        model: a network from `build_model` / `load_checkpoint`.
        images: (N, 3, S, S) float32 in [0, 1].
        spec: (N, spec_dim) spectral features or None (RGB-only inference).
        has_spec: (N,) bool, or None ("rows whose spec is all finite").
        batch_size: images per forward pass.

    Returns:
        (N, C) float32 softmax probabilities.
    """
    data = TensorData(images, torch.zeros(len(images), dtype=torch.int64), spec, has_spec)
    was_training = model.training
    model.eval()
    try:
        probs = torch.softmax(_logits(model, data, batch_size), dim=1)
    finally:
        model.train(was_training)
    return probs.numpy().astype(np.float32)
