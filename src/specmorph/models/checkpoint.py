"""Saves and loads model checkpoints: weights plus the `ModelConfig` that rebuilds the network (nanoGPT-style)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from specmorph.errors import InputError
from specmorph.models import build_model
from specmorph.models.config import ModelConfig
from specmorph.torchutil import plain_value, save_torch_atomic

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = frozenset({"config", "state_dict", "extra"})


def save_checkpoint(path: str | Path, model: nn.Module, cfg: ModelConfig, extra: dict[str, Any]) -> None:
    """Writes `{"config": cfg.to_dict(), "state_dict": ..., "extra": extra}` atomically (temp file + rename).

    Args:
        path: destination `.pt` file; its directory must exist.
        model: the network built from `cfg`.
        cfg: its configuration.
        extra: plain (JSON-like) values, e.g. train seed, metrics, params hash; numpy values are
            converted to builtins, anything else raises TypeError naming the key.
    """
    path = Path(path)
    payload = {
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "extra": plain_value(extra, "checkpoint extra"),
    }
    save_torch_atomic(payload, path)
    logger.info("saved %s checkpoint to %s", cfg.kind, path)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuilds the network from the checkpoint's own config (never params.yaml) and loads its weights.

    Args:
        path: a file written by `save_checkpoint`.
        map_location: device for the weights.

    Returns:
        (model in eval mode, its ModelConfig, the `extra` dict).

    Raises:
        InputError: naming the file, if it is missing or not a specmorph checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a specmorph checkpoint (torch.load failed: {exc})") from exc
    if not isinstance(payload, dict) or not CHECKPOINT_KEYS <= set(payload):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"{path}: not a specmorph checkpoint (expected keys {sorted(CHECKPOINT_KEYS)}, got {keys})")
    try:
        cfg = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad model config in checkpoint: {exc}") from exc
    model = build_model(cfg)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: weights do not match the checkpoint's {cfg.kind} config: {exc}") from exc
    model.to(map_location).eval()
    return model, cfg, dict(payload["extra"])
