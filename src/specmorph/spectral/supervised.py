"""The supervised spectral embedders ("sae", "dsca") on the one engine (`training.engine`): their task.

Training split only. `train_supervised` sees labels, so the caller passes only the cubes of the
training split; embeddings of held-out galaxies then come from the trained encoder (`embed_array`),
never from a model that saw their labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from specmorph.spectral.embedder_io import build_embedder
from specmorph.spectral.encoders import CubeTask, Embedder, EmbedderConfig
from specmorph.training.engine import Recipe, augment_d4, fit

SUPERVISED_KINDS: tuple[str, ...] = ("sae", "dsca")


@dataclass(frozen=True)
class SupervisedParams(Recipe):
    """The supervised embedders' recipe: `engine.Recipe` (with their defaults) plus the loss weight.

    Attributes:
        ce_weight: weight of the cross-entropy term of the "sae" loss (MSE + ce_weight · CE); "dsca"
            trains on cross-entropy alone and ignores it.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    ce_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ce_weight < 0:
            raise ValueError(f"SupervisedParams out of range: ce_weight={self.ce_weight}")


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


@dataclass
class SupervisedTask(CubeTask):
    """`engine.Task` of "sae" and "dsca": D4-augmented labelled cubes and the model's own `loss`."""

    y: torch.Tensor  # (N,) class indices
    ce_weight: float

    def batch(self, idx: torch.Tensor, aug_gen: torch.Generator | None, rank: int, world: int) -> tuple:
        return (self.x[idx] if aug_gen is None else augment_d4(self.x[idx], aug_gen, rank, world)), self.y[idx]

    def objective(self, model: Embedder, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss, parts = model.loss(x, y, ce_weight=self.ce_weight)
        return loss, {k: v * len(x) for k, v in parts.items()}


def train_supervised(
    cfg: EmbedderConfig,
    cubes: np.ndarray,
    labels: np.ndarray,
    params: SupervisedParams,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> tuple[Embedder, list[dict]]:
    """Trains a fresh "sae" or "dsca" embedder on labelled cubes of the training split only (`engine.fit`).

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
        (model in eval mode, history): `engine.fit`'s, with the model's loss parts averaged over the
        cubes (e.g. mse, ce, acc; acc is running, in train mode).
    """
    x = torch.as_tensor(cubes, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    _check_inputs(cfg, x, y)
    return fit(lambda: build_embedder(cfg), SupervisedTask(x, y, params.ce_weight), params, cfg.kind, on_epoch,
               torch.device("cpu"))
