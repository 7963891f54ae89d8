"""The RGB and fusion classifiers on the one engine (`training.engine`): their task, data and class weights.

Identical budgets. Every model trained with the same `TrainParams` (RGB-only baseline, concat or
gated fusion, a distilled student) sees the same epochs, batch size, optimiser, schedule and seed; the
data order and the augmentations come from their own `torch.Generator`s seeded by `seed`, so they are
identical too, and under the same seed every RGB trunk starts from the same weights (it is built
first). Only the spectral branch, its dropout draws, the head and the loss (`objectives`) differ.

Data parallel. In a process group of W > 1 processes (torchrun, `training.distributed`) the engine
wraps the step in DDP and `batch_size` is the global batch: each rank takes its shard of the same seeded
order, batch_size / W rows a step, so the steps, schedule and each step's rows and augmentations are a
single process's. BatchNorm normalises each rank's rows; epoch sums, buffers and the final BatchNorm
statistics are made to agree, so every rank returns the same weights and history.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from specmorph.evaluation.metrics import classification_metrics
from specmorph.executor import ExecutorParams
from specmorph.models import build_model
from specmorph.models.config import SPECTRAL_KINDS, ModelConfig
from specmorph.models.inference import class_probabilities
from specmorph.torchutil import torch_settings
from specmorph.training import distributed
from specmorph.training.engine import Recipe, augment_d4, fit
from specmorph.training.objectives import LossParams, Objective, make_objective

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class TrainParams(Recipe):
    """The classifiers' recipe (the `train` section of params.yaml): `engine.Recipe` plus the loss settings.

    Attributes:
        label_smoothing: cross-entropy label smoothing in [0, 1).
        class_weighting: weight the loss by inverse class frequency in the training set.
    """

    label_smoothing: float = 0.0
    class_weighting: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainParams out of range: label_smoothing={self.label_smoothing}")


def network_executor(workers: int, device: str = "cpu") -> tuple[ExecutorParams, int]:
    """Where the networks of a stage train (`executor.map_shards`, one network or chain per shard) and on how many
    CPU threads each.

    On the CPU in one process, every network trains on one thread, `workers` of them side by side in
    single-threaded processes (a Dask LocalCluster; 1: here, one after another). On 2 cores the `train`
    stage's ResNets, two at a time on one thread each, took 0.66 of the time they took one after another on
    two threads; the CvT, whose attention uses two threads well, gained nothing (README, Beyond one machine).
    A network's weights do not depend on `workers` or on the machine's core count. On a GPU or under torchrun
    (every rank must take the same steps together) they train here in turn, on the node's cores shared
    between its ranks.

    Returns:
        (executor settings, threads per network).
    """
    if device == "cpu" and distributed.world_size() == 1:
        return ExecutorParams(kind="dask" if workers > 1 else "local", workers=workers, shard_size=1), 1
    return ExecutorParams(kind="local", shard_size=1), max(1, TrainParams.num_threads // distributed.local_world_size())


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


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights N / (K · n_c) over the K classes present; 0 for absent classes. (n_classes,)."""
    counts = torch.bincount(labels, minlength=n_classes).to(torch.float32)  # (C,)
    present = counts > 0
    w = torch.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


@torch.no_grad()
def _per_batch(model: nn.Module, data: TensorData, batch_size: int,
               fn: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor]) -> torch.Tensor:
    """`fn(x, spec, has_spec)` (B, C) of a whole set, per batch on the model's device: (N, C) in order, on the CPU."""
    device = next(model.parameters()).device
    out = []
    for idx in torch.arange(len(data)).split(batch_size):
        x, _, spec, has_spec = distributed.to_device(device, *data.batch(idx))
        out.append(fn(x, spec, has_spec).cpu())  # (B, C)
    return torch.cat(out)


def _logits(model: nn.Module, data: TensorData, batch_size: int, rgb_only: bool = False) -> torch.Tensor:
    """Eval-mode logits (N, C) of a whole set, in order, on the CPU; with `rgb_only` the spectra are not given."""
    return _per_batch(model, data, batch_size, lambda x, spec, has: model(x) if rgb_only else model(x, spec, has))


@dataclass
class ClassifierTask:
    """`engine.Task` of the RGB and fusion classifiers: D4-augmented images, their spectra, the `objectives` loss.

    Validation is RGB-only (no spectra, as at test time): unweighted cross-entropy, accuracy and
    macro-F1 (`evaluation.metrics.classification_metrics`, over the classes present in the labels).
    """

    train: TensorData
    val: TensorData | None
    batch_size: int
    objective_fn: Objective | None = None  # set once the model exists (`make_objective` looks at its type)

    @property
    def n_rows(self) -> int:
        return len(self.train)

    @property
    def monitor(self) -> str:
        """Early stopping on the validation loss, when there is a validation set."""
        return "val_loss" if self.val is not None else ""

    def batch(self, idx: torch.Tensor, aug_gen: torch.Generator | None, rank: int, world: int) -> tuple:
        x, y, spec, has_spec = self.train.batch(idx)
        return (x if aug_gen is None else augment_d4(x, aug_gen, rank, world)), y, spec, has_spec

    def objective(self, model: nn.Module, x, y, spec, has_spec) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.objective_fn is not None, "ClassifierTask.objective_fn is set by train_model"
        loss, logits = self.objective_fn(model, x, y, spec, has_spec)  # (), (B, C)
        return loss, {"train_acc": float((logits.argmax(1) == y).sum())}

    def forward(self, model: nn.Module, idx: torch.Tensor) -> None:
        x, _, spec, has_spec = distributed.to_device(next(model.parameters()).device, *self.train.batch(idx))
        model(x, spec, has_spec)

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.val is None:
            return {}
        model.eval()
        logits = _logits(model, self.val, self.batch_size, rgb_only=True)  # (N, C)
        pred = logits.argmax(1)
        names = [str(c) for c in range(logits.shape[1])]  # class indices; macro over the classes in the labels
        return {
            "val_loss": float(F.cross_entropy(logits, self.val.labels)),
            "val_acc": float((pred == self.val.labels).float().mean()),
            "val_macro_f1": classification_metrics(self.val.labels.numpy(), pred.numpy(), names)["macro_f1"],
        }


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
    """Trains a fresh `build_model(cfg)` with the one engine (`engine.fit`).

    Args:
        cfg: model configuration.
        params: the recipe; with `patience` > 0 and `val`, early stopping on the validation loss.
        train: training set (its spectra feed fusion models and a teacher; an "rgb" model ignores them).
        val: validation set, evaluated RGB-only (no spectra, as at test time) after every epoch, or None.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.
        teacher: a trained model to distil into this one (`objectives.kd_loss`), or None.
        losses: distillation and gated-fusion loss weights (defaults: `LossParams()`).
        device: where to train (the data stay on the CPU; each batch is moved); None: the device
            `distributed.setup` chose, the CPU without it.

    Returns:
        (model in eval mode on the CPU, history): `engine.fit`'s, with train_acc (running, in train
        mode) and, with `val`, val_loss (unweighted cross-entropy), val_acc and val_macro_f1.
    """
    if len(train) < 2:
        raise ValueError(f"train_model: need at least 2 training images, got {len(train)}")
    if train.images.shape[-1] != cfg.image_size or train.images.shape[-2] != cfg.image_size:
        raise ValueError(f"train_model: images {tuple(train.images.shape)} do not match image_size {cfg.image_size}")
    if int(train.labels.max()) >= cfg.n_classes or int(train.labels.min()) < 0:
        raise ValueError(f"train_model: labels must be in [0, {cfg.n_classes}), got {train.labels.unique().tolist()}")
    device = distributed.current_device() if device is None else torch.device(device)
    if teacher is not None and device.type != "cpu":
        teacher = copy.deepcopy(teacher).to(device)
    weight = class_weights(train.labels, cfg.n_classes).to(device) if params.class_weighting else None
    task = ClassifierTask(train, val, params.batch_size)

    def build() -> nn.Module:
        model = build_model(cfg)
        spectral = getattr(model, "spectral", None)
        if spectral is not None and train.spec is not None and train.has_spec is not None:
            spectral.set_normalisation(train.spec[train.has_spec])
        task.objective_fn = make_objective(model, teacher, losses or LossParams(), weight, params.label_smoothing)
        return model

    return fit(build, task, params, cfg.kind, on_epoch, device, find_unused=cfg.kind in SPECTRAL_KINDS)


def predict_proba(
    model: nn.Module,
    images: ArrayLike,
    spec: ArrayLike | None = None,
    has_spec: ArrayLike | None = None,
    batch_size: int = 256,
    tta: bool = True,
) -> np.ndarray:
    """Class probabilities in eval mode without gradients; the model's train/eval mode is restored after.

    Args:
        model: a network from `build_model` / `load_checkpoint`.
        images: (N, 3, S, S) float32 in [0, 1].
        spec: (N, spec_dim) spectral features or None (RGB-only inference).
        has_spec: (N,) bool, or None ("rows whose spec is all finite").
        batch_size: images per forward pass.
        tta: the mean over the image's 8 orientations (`models.inference.class_probabilities`); False: as given.

    Returns:
        (N, C) float32 softmax probabilities.
    """
    data = TensorData(images, torch.zeros(len(images), dtype=torch.int64), spec, has_spec)
    was_training = model.training
    model.eval()
    try:
        probs = _per_batch(model, data, batch_size, lambda x, s, h: class_probabilities(model, x, s, h, tta=tta))
    finally:
        model.train(was_training)
    return probs.numpy().astype(np.float32)


def train_and_predict(index: int, items: list[tuple[int, str]], cfgs: dict[str, ModelConfig], recipe: TrainParams,
                      train: TensorData, test_images: torch.Tensor, tta: bool) -> list[tuple]:
    """An `executor.map_items` task: per (seed, model name) item, the trained network and its test predictions.

    Each network is `train_model(cfgs[name], recipe with the item's seed, train)`, without a validation set
    (the recipe's schedule runs to its end); the predictions are RGB only.

    Returns:
        Per item (seed, name, model, history, (n_test,) predicted classes).
    """
    out = []
    for seed, name in items:
        model, history = train_model(cfgs[name], dataclasses.replace(recipe, seed=seed), train, None)
        with torch_settings(recipe.num_threads):
            out.append((seed, name, model, history, predict_proba(model, test_images, tta=tta).argmax(axis=1)))
    return out
