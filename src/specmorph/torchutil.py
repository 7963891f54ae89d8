"""Small torch helpers shared by the classifier and the spectral embedders: settings and checkpoint values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


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
