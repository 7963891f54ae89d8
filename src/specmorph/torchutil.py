"""Small torch helpers shared by the classifiers and the spectral embedders: settings and the one checkpoint format."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file


@contextmanager
def torch_settings(num_threads: int) -> Iterator[None]:
    """Sets the thread count and deterministic algorithms for the block, then restores them."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


def plain_value(value: Any, where: str) -> Any:
    """`value` as builtins only (numpy scalars/arrays converted), so that `weights_only` loading accepts it.

    Args:
        value: A config or `extra` value of a checkpoint.
        where: Its location for error messages, e.g. "checkpoint extra".

    Returns:
        The same value built from None, bool, int, float, str, lists and str-keyed dicts.
    """
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: dict keys must be strings")
        return {k: plain_value(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: {type(value).__name__} is not a plain (JSON-like) value")


def batch_indices(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Splits an index order into batches; a final batch of one (BatchNorm cannot train on it) joins the previous."""
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def one_cycle_adamw(model: torch.nn.Module, lr: float, weight_decay: float, total_steps: int,
                    pct_start: float = 0.25) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with decay on weight matrices and conv kernels only (not biases or norm weights), one-cycle schedule.

    Args:
        model: The network to optimise.
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay of the ≥2-D parameters.
        total_steps: Optimiser steps of the whole run.
        pct_start: Fraction of the steps spent warming up. torch's OneCycleLR divides by zero when the
            warm-up ends at step 0 (pct_start · total_steps = 1, e.g. 0.25 of 4 steps) or runs into the last
            step, so for very short runs it is moved to end half a step inside the run; long runs are unchanged.

    Returns:
        The optimiser and its scheduler (step it once per optimiser step).
    """
    warm_end = pct_start * total_steps - 1  # the step at which the warm-up ends
    if total_steps >= 2 and not 0.5 <= warm_end <= total_steps - 1.5:
        pct_start = (min(max(warm_end, 0.5), total_steps - 1.5) + 1) / total_steps
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=total_steps, pct_start=pct_start)


CHECKPOINT_KEYS = frozenset({"config", "state_dict", "extra"})


def save_weights(path: str | Path, model: torch.nn.Module, config: dict[str, Any], extra: dict[str, Any],
                 what: str = "checkpoint") -> None:
    """The one checkpoint format: `{"config", "state_dict", "extra"}` written atomically (`io.atomic.atomic_file`).

    Args:
        path: destination `.pt` file; its directory must exist.
        model: the network (its CPU, contiguous weights are saved).
        config: the typed config's plain dict (`ModelConfig.to_dict()`, `EmbedderConfig.to_dict()`).
        extra: plain (JSON-like) values, e.g. seed, training history, params hash; numpy values are
            converted to builtins, anything else raises TypeError naming the key.
        what: the kind of checkpoint, for error messages.
    """
    payload = {
        "config": plain_value(config, f"{what} config"),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "extra": plain_value(extra, f"{what} extra"),
    }
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)  # to a file object, so the archive's internal name does not depend on the file name


def read_weights(path: str | Path, what: str = "checkpoint", map_location: str | torch.device = "cpu"
                 ) -> dict[str, Any]:
    """Reads a file written by `save_weights` (weights only, no pickled code): its config, state_dict and extra.

    Raises:
        InputError: naming the file, if it is missing or not a specmorph `what`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a specmorph {what} (torch.load failed: {exc})") from exc
    if not isinstance(payload, dict) or not CHECKPOINT_KEYS <= set(payload):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"{path}: not a specmorph {what} (expected keys {sorted(CHECKPOINT_KEYS)}, got {keys})")
    return payload


def load_weights_into(path: str | Path, model: torch.nn.Module, payload: dict[str, Any], kind: str) -> None:
    """Loads `payload`'s state_dict into `model`, failing by file name when the weights do not fit its config."""
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: weights do not match the checkpoint's {kind} config: {exc}") from exc
