"""Saves and loads trained spectral embedders: weights plus the `EmbedderConfig` that rebuilds the network.

Each embedder module (`spectral.siamese`, `spectral.sae`, `spectral.dsca`) registers a builder for
its kind with `@register(kind)`. `build_embedder` imports `specmorph.spectral.<kind>` on first use,
so loading a checkpoint needs no import by the caller, and a kind whose module is missing fails
with a message naming it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from specmorph.errors import InputError
from specmorph.spectral.encoders import Embedder, EmbedderConfig
from specmorph.torchutil import load_weights_into, read_weights, save_weights

logger = logging.getLogger(__name__)

BUILDERS: dict[str, Callable[[EmbedderConfig], Embedder]] = {}

B = TypeVar("B", bound=Callable[[EmbedderConfig], Embedder])


def register(kind: str) -> Callable[[B], B]:
    """Decorator that records a builder (an `Embedder` subclass or a function of the config) for `kind`.

    Args:
        kind: an `EmbedderConfig.kind`.

    Returns:
        The decorator; it returns the builder unchanged.
    """

    def deco(builder: B) -> B:
        if kind in BUILDERS and BUILDERS[kind] is not builder:
            raise ValueError(f"embedder kind {kind!r} is already registered to {BUILDERS[kind]!r}")
        BUILDERS[kind] = builder
        return builder

    return deco


def build_embedder(cfg: EmbedderConfig) -> Embedder:
    """A fresh, untrained embedder of `cfg.kind`, importing `specmorph.spectral.<kind>` if needed.

    Raises:
        ValueError: if the module is missing or registers no builder for the kind.
    """
    if cfg.kind not in BUILDERS:
        module = f"specmorph.spectral.{cfg.kind}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise ValueError(f"embedder kind {cfg.kind!r}: module {module} not found") from exc
        if cfg.kind not in BUILDERS:
            raise ValueError(f"embedder kind {cfg.kind!r}: {module} registers no builder")
    return BUILDERS[cfg.kind](cfg)


def save_embedder(path: str | Path, model: Embedder, cfg: EmbedderConfig, extra: dict[str, Any]) -> None:
    """Writes the embedder and its config in the one checkpoint format (`torchutil.save_weights`), atomically.

    Args:
        path: destination `.pt` file; its directory must exist.
        model: the embedder built from `cfg` (training heads included; they are rebuilt on load).
        cfg: its configuration.
        extra: plain (JSON-like) values, e.g. seed, training history, params hash; numpy values are
            converted to builtins, anything else raises TypeError naming the key.
    """
    save_weights(path, model, cfg.to_dict(), extra, "embedder checkpoint")
    logger.info("saved %s embedder to %s", cfg.kind, path)


def load_embedder(path: str | Path) -> tuple[Embedder, EmbedderConfig, dict[str, Any]]:
    """Rebuilds the embedder from the checkpoint's own config (never params.yaml) and loads its weights, on CPU.

    Args:
        path: a file written by `save_embedder`.

    Returns:
        (model in eval mode, its EmbedderConfig, the `extra` dict).

    Raises:
        InputError: naming the file, if it is missing, not an embedder checkpoint, of an unknown
            kind, or its weights do not fit its config.
    """
    payload = read_weights(path, "embedder checkpoint")
    try:
        cfg = EmbedderConfig.from_dict(payload["config"])
        model = build_embedder(cfg)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad embedder config in checkpoint: {exc}") from exc
    load_weights_into(path, model, payload, cfg.kind)
    model.eval()
    return model, cfg, dict(payload["extra"])
