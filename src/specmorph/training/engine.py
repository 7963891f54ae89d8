"""The one training engine: every network of the project (classifiers, fusion models, spectral embedders) trains here.

What the engine owns, so that every model family gets it the same way:
- the optimiser and schedule (`torchutil.one_cycle_adamw`: AdamW, decay on weights only, one-cycle);
- the seeded data order and the one rotate/flip augmentation (`augment_d4`), each from its own
  `torch.Generator`, so two models trained under one seed see the same batches and the same views;
- early stopping on a validation score, with the best epoch's weights restored;
- the BatchNorm statistics recompute on the final weights (`recompute_bn`);
- DDP wrapping of the step in a process group (`training.distributed`): each rank takes its shard of
  the seeded global order, and epoch sums are reduced over the ranks.

What a model family supplies is a `Task`: how a batch of rows is made (and augmented), the loss of a
batch with its logged sums, a forward pass for the BatchNorm recompute and, optionally, a validation.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from tqdm import tqdm

from specmorph.torchutil import batch_indices, one_cycle_adamw, torch_settings
from specmorph.training import distributed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """How a network is optimised: the same object for every model compared in one study.

    Attributes:
        epochs: most passes over the training rows (fewer with early stopping).
        batch_size: rows per optimiser step (the global batch in a process group).
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW decoupled weight decay (weight matrices and kernels only).
        seed: torch seed of the initial weights, the data order, the augmentation and dropout.
        augment: give each training row a random D4 element (`augment_d4`); tasks without a grid ignore it.
        patience: early stopping: stop after this many epochs without a better validation score and
            restore the best epoch's weights; 0 trains every epoch and keeps the last weights.
        pct_start: fraction of the steps spent warming up the learning rate.
        num_threads: torch CPU threads (results are reproducible for a fixed value).
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True
    patience: int = 0
    pct_start: float = 0.25
    num_threads: int = 2

    def __post_init__(self) -> None:
        bad = {
            "epochs": self.epochs < 1,
            "batch_size": self.batch_size < 2,
            "lr": self.lr <= 0,
            "weight_decay": self.weight_decay < 0,
            "patience": self.patience < 0,
            "pct_start": not 0.0 < self.pct_start < 1.0,
            "num_threads": self.num_threads < 1,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"Recipe out of range: {names}")


class Task(Protocol):
    """What one model family supplies to `fit`.

    `objective(model, *tensors)` is called with the tensors `batch` returned, moved to the device
    (through DDP in a process group); it returns the scalar loss and the batch's *sums* of whatever
    should be logged per row (e.g. {"correct": 17.0}); the engine reports them as means over the epoch.
    """

    n_rows: int
    monitor: str  # validation key to early-stop on ("" when `validate` returns nothing); lower is better

    def batch(self, idx: torch.Tensor, aug_gen: torch.Generator | None, rank: int, world: int) -> tuple: ...

    def objective(self, model: nn.Module, *tensors: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]: ...

    def forward(self, model: nn.Module, idx: torch.Tensor) -> None: ...

    def validate(self, model: nn.Module) -> dict[str, float]: ...


def augment_d4(x: torch.Tensor, gen: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Gives each map of a (B, C, H, W) batch its own random D4 element: k quarter turns, then a mirror half the time.

    Morphology does not depend on orientation or handedness, so all 8 elements are valid copies of a
    galaxy (of its image or its spectral cube). On an H ≠ W grid only the half turn and the mirrors
    keep the shape: k is then made even (4 elements). Returns a new tensor. With `world` > 1 the draws
    are made for the global batch of B·world rows, of which this rank's rows are rank, rank + world, ...
    (`distributed.shard`): every rank advances `gen` alike.
    """
    k = torch.randint(4, (x.shape[0] * world,), generator=gen)[rank::world]  # (B,) quarter turns
    flip = torch.randint(2, (x.shape[0] * world,), generator=gen)[rank::world].bool()  # (B,)
    if x.shape[2] != x.shape[3]:
        k = k - k % 2
    out = x.clone()
    for turns in (1, 2, 3):
        sel = k == turns
        if sel.any():
            out[sel] = torch.rot90(x[sel], turns, dims=(2, 3))
    if flip.any():
        out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def recompute_bn(model: nn.Module, forward: Callable[[torch.Tensor], None], n_rows: int, batch_size: int) -> None:
    """Replaces BatchNorm running statistics by exact averages of per-batch statistics over all rows.

    The exponential running averages lag behind the weights, which matters for short schedules
    (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"). `forward(idx)` runs the model on rows
    `idx`; norms it never reaches (a decoder's, a branch without input) keep their statistics. The
    model is left in eval mode. In a process group every rank passes over all rows, so all agree.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [({k: v.clone() for k, v in m.state_dict().items()}, m.momentum) for m in norms]
    used: set[int] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, _: used.add(id(mod))) for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    try:
        for idx in batch_indices(torch.arange(n_rows), batch_size):
            forward(idx)
    finally:
        for h in hooks:
            h.remove()
        for m, (state, momentum) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if id(m) not in used:
                m.load_state_dict(state)
        model.eval()


def fit(model_factory: Callable[[], nn.Module], task: Task, recipe: Recipe, name: str,
        on_epoch: Callable[[int, dict], None] | None = None, device: torch.device | None = None,
        find_unused: bool = False) -> tuple[nn.Module, list[dict]]:
    """Trains a fresh `model_factory()` on `task` with `recipe`.

    Args:
        model_factory: builds the untrained network; called after seeding, so a seed fixes its weights.
        task: the model family's batches, loss, BatchNorm forward and validation.
        recipe: optimisation settings.
        name: for the progress bar and the log.
        on_epoch: called as on_epoch(epoch, metrics) after each epoch (1-based), e.g. to log to dvclive.
        device: where to train (batches are moved there); None: `distributed.current_device()`.
        find_unused: DDP: the loss may leave some parameters out of a step.

    Returns:
        (model in eval mode on the CPU, history): one dict per epoch with epoch, lr (at the epoch's
        end), train_loss (mean over rows), the task's logged means, seconds, rows_per_s and the
        validation scores; the kept weights are those of the epoch marked "best": True (the
        last epoch without `patience`), whose validation scores are those of the returned model
        (after the BatchNorm recompute).
    """
    if task.n_rows < 2:
        raise ValueError(f"{name}: need at least 2 training rows, got {task.n_rows}")
    device = distributed.current_device() if device is None else device
    rank, world = distributed.rank(), distributed.world_size()
    local_batch = distributed.local_batch_size(recipe.batch_size, world)
    history: list[dict] = []
    with torch_settings(recipe.num_threads):
        torch.manual_seed(recipe.seed)
        order_gen = torch.Generator().manual_seed(recipe.seed)
        aug_gen = torch.Generator().manual_seed(recipe.seed + 1) if recipe.augment else None
        model = model_factory()
        if rank:
            torch.manual_seed(recipe.seed + 100_003 * rank)  # this rank's own dropout draws
        model.to(device)
        step = distributed.wrap_step(model, task.objective, device, find_unused=find_unused)
        steps = len(batch_indices(distributed.shard(torch.arange(task.n_rows), rank, world), local_batch))
        opt, sched = one_cycle_adamw(model, recipe.lr, recipe.weight_decay, recipe.epochs * steps, recipe.pct_start)
        best_score, best_state, best_epoch = float("inf"), None, 0
        for epoch in tqdm(range(1, recipe.epochs + 1), desc=f"train {name}", disable=None, leave=False):
            t0 = time.perf_counter()
            model.train()
            sums: dict[str, float] = {"train_loss": 0.0}
            order = distributed.shard(torch.randperm(task.n_rows, generator=order_gen), rank, world)
            for idx in batch_indices(order, local_batch):
                loss, logged = step(*distributed.to_device(device, *task.batch(idx, aug_gen, rank, world)))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                for k, v in {"train_loss": loss.item() * len(idx), **logged}.items():
                    sums[k] = sums.get(k, 0.0) + v
            totals = distributed.all_reduce_sum([*sums.values(), float(len(order))], device)
            distributed.sync_buffers(model)
            seconds = time.perf_counter() - t0
            metrics = {"epoch": epoch, "lr": float(sched.get_last_lr()[0]),
                       **{k: v / totals[-1] for k, v in zip(sums, totals, strict=False)},
                       "seconds": seconds, "rows_per_s": task.n_rows / seconds}
            metrics.update(task.validate(model))
            history.append(metrics)
            logger.info("%s epoch %d: %s", name, epoch, {k: round(v, 4) for k, v in metrics.items()})
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if recipe.patience and task.monitor:
                if metrics[task.monitor] < best_score:
                    best_score, best_epoch = metrics[task.monitor], epoch
                    best_state = copy.deepcopy(model.state_dict())
                elif epoch - best_epoch >= recipe.patience:
                    logger.info("%s: early stop at epoch %d, best %s at epoch %d", name, epoch, task.monitor,
                                best_epoch)
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        kept = best_epoch if best_state is not None else len(history)  # epochs run 1, 2, ...
        recompute_bn(model, lambda idx: task.forward(model, idx), task.n_rows, recipe.batch_size)
        for h in history:
            h["best"] = h["epoch"] == kept
        history[kept - 1].update(task.validate(model))  # the returned weights, with their exact BatchNorm statistics
    model.eval()
    return model.cpu(), history
