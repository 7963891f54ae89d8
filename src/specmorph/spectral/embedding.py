"""One spectral embedder chosen by name (pca | siamese | sae | dsca): held-out split, training, embeddings."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from specmorph.catalog.splits import grouped_split
from specmorph.errors import InputError
from specmorph.executor import ExecutorParams, map_shards
from specmorph.spectral.cubeprep import open_prepared
from specmorph.spectral.embedder_io import build_embedder, load_embedder
from specmorph.spectral.encoders import Embedder, EmbedderConfig, embed_array

log = logging.getLogger(__name__)

EMBED_BATCH = 64  # cubes per forward pass


@dataclass(frozen=True)
class EmbedParams:
    """Settings of the `embed` stage shared by the learned embedders."""

    holdout_frac: float = 0.2  # of the galaxies outside the pipeline's test split, also held out
    knn_k: int = 5
    folds: int = 5
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.001
    width: int = 32
    embed_dim: int = 512
    tau: float = 0.2  # siamese: NT-Xent temperature
    ce_weight: float = 1.0  # sae: weight of the classification loss


def holdout_mask(names: list[str], labels: np.ndarray, forced: set[str], frac: float, seed: int) -> np.ndarray:
    """Galaxies whose labels no embedder may see: the pipeline's test galaxies plus a stratified share.

    Args:
        names: Galaxy names (one cube each).
        labels: (N,) class of each galaxy.
        forced: Names that must be held out (the classifier's test galaxies).
        frac: Fraction of the remaining galaxies also held out, stratified by class.
        seed: Split seed.

    Returns:
        (N,) bool, True where held out.
    """
    held = np.array([n in forced for n in names])
    rest = np.flatnonzero(~held)
    values, counts = np.unique(labels[rest], return_counts=True)
    rare = set(values[counts < 2].tolist())
    if rare:
        log.warning("classes %s have fewer than 2 galaxies outside the test split: all kept for training", rare)
    rest = rest[~np.isin(labels[rest], list(rare))]
    _, test_idx = grouped_split(labels[rest], np.asarray(names)[rest], frac, seed)
    held[rest[test_idx]] = True
    return held


def fit_embedder(kind: str, cubes: np.ndarray, labels: np.ndarray, n_classes: int, p: EmbedParams,
                 seed: int) -> tuple[Embedder, EmbedderConfig, list[dict]]:
    """Trains a learned embedder on the training galaxies' cubes (and, if supervised, their labels).

    Args:
        kind: 'siamese', 'sae' or 'dsca'.
        cubes: (N, C, H, W) prepared cubes of the training galaxies only.
        labels: (N,) int class indices (ignored by 'siamese').
        n_classes: Number of classes of the supervised head.
        p: Stage settings.
        seed: Training seed.

    Returns:
        The trained embedder, its config and the per-epoch history.
    """
    from specmorph.spectral.siamese import SiameseParams, train_siamese
    from specmorph.spectral.supervised import SupervisedParams, train_supervised

    if kind == "pca":  # other names are checked by params.shared; build_embedder's registry names a bad one
        raise InputError("embedder 'pca' is not a learned embedder (its features come from the spectra stage)")
    _, c, h, w = cubes.shape
    cfg = EmbedderConfig(kind=kind, in_channels=c, grid=(h, w), embed_dim=p.embed_dim, width=p.width,
                         n_classes=n_classes if kind != "siamese" else 0)
    build_embedder(cfg)  # fails early, by name, on a bad config
    if kind == "siamese":
        sp = SiameseParams(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, tau=p.tau, seed=seed)
        model, history = train_siamese(cfg, cubes, sp)
    else:
        sp = SupervisedParams(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, ce_weight=p.ce_weight, seed=seed)
        model, history = train_supervised(cfg, cubes, labels, sp)
    return model, cfg, history


def embed_all(model: Embedder, cubes: np.ndarray) -> np.ndarray:
    """(N, embed_dim) float32 embeddings of every cube, in order."""
    return embed_array(model, cubes, batch_size=EMBED_BATCH).astype(np.float32)


@lru_cache(maxsize=1)
def _cached_embedder(path: str, mtime_ns: int, size: int) -> Embedder:
    """The embedder saved at `path`, loaded once per process while the file is unchanged."""
    return load_embedder(path)[0]


def _embed_rows(model_path: str, cubes_path: str, index: int, rows: list[int]) -> np.ndarray:
    """An executor task: (n, embed_dim) embeddings of the prepared cubes at `rows` (consecutive)."""
    stat = os.stat(model_path)
    model = _cached_embedder(model_path, stat.st_mtime_ns, stat.st_size)
    with open_prepared(cubes_path) as (data, _, _):
        return embed_all(model, data[rows[0]:rows[-1] + 1])  # (n, C, H, W) read per shard


def embed_prepared(model_path: str | Path, cubes_path: str | Path,
                   executor: ExecutorParams | None = None) -> np.ndarray:
    """Embeddings of every cube of a prepared-cube product by a saved embedder, in shards through the executor.

    Each task loads the embedder from `model_path` (once per worker process) and reads only its shard's
    rows from `cubes_path`. Shards are rounded up to whole batches of EMBED_BATCH cubes, so the forward
    passes, and the result, are those of `embed_all(model, cubes)` on the whole array.

    Args:
        model_path: An embedder written by `embedder_io.save_embedder`.
        cubes_path: A `cubeprep.prepare_all` product.
        executor: Where the shards run (None: locally).

    Returns:
        (N, embed_dim) float32, in the product's row order.
    """
    model_path, cubes_path = os.path.abspath(model_path), os.path.abspath(cubes_path)
    with open_prepared(cubes_path) as (data, _, _):
        n = len(data)
    executor = executor or ExecutorParams()
    size = -(-executor.shard_size // EMBED_BATCH) * EMBED_BATCH
    parts = map_shards(partial(_embed_rows, model_path, cubes_path), range(n), replace(executor, shard_size=size),
                       desc="embed", unit="cube")
    if not parts:
        return np.zeros((0, load_embedder(model_path)[1].embed_dim), np.float32)
    return np.concatenate(parts)
