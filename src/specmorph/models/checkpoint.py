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
from specmorph.torchutil import load_weights_into, read_weights, save_weights

logger = logging.getLogger(__name__)

def save_checkpoint(path: str | Path, model: nn.Module, cfg: ModelConfig, extra: dict[str, Any]) -> None:
    """Writes the network and its config in the one checkpoint format (`torchutil.save_weights`), atomically.

    Args:
        path: destination `.pt` file; its directory must exist.
        model: the network built from `cfg`.
        cfg: its configuration.
        extra: plain (JSON-like) values, e.g. train seed, metrics, params hash; numpy values are
            converted to builtins, anything else raises TypeError naming the key.
    """
    save_weights(path, model, cfg.to_dict(), extra)
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
    payload = read_weights(path, "checkpoint", map_location)
    try:
        cfg = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad model config in checkpoint: {exc}") from exc
    model = build_model(cfg)
    load_weights_into(path, model, payload, cfg.kind)
    model.to(map_location).eval()
    return model, cfg, dict(payload["extra"])
