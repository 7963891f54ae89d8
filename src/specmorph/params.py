"""Reads params.yaml for the stages: one section at a time, unknown or mistyped keys fail loudly."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ParamsError(ValueError):
    """A params.yaml key is missing, unknown or of the wrong type."""


PROFILES = ("tiny", "default", "full")
EMBEDDERS = ("pca", "siamese", "sae", "dsca")
MODELS = ("rgb_only", "concat", "kd", "gated")
EXECUTORS = ("local", "dask")
# The top-level mappings of params.yaml, each read by its stage(s) with `section` or `profile_block`.
SECTIONS = ("dask", "ingest", "sky", "crossmatch", "labels", "segment", "segment_check", "spectra", "prepare_cubes",
            "embed", "pca_rf", "train", "evaluate", "cvt", "realism")


@dataclass(frozen=True)
class Shared:
    """The top-level keys of params.yaml, read by several stages; the one place their names are checked.

    Attributes:
        seed: Master seed (mock survey, splits, training seeds are offsets of the stage's own list).
        profile: Size profile (one of PROFILES): picks sky.<profile>, train.budget.<profile>, cvt.budget.<profile>.
        embedder: Spectral features of the fusion models (one of EMBEDDERS).
        model: Spectrally guided classifier trained beside the RGB-only baseline (one of MODELS).
        executor: Where per-object stages run (one of EXECUTORS).
    """

    seed: int = 42
    profile: str = "default"
    embedder: str = "pca"
    model: str = "gated"
    executor: str = "local"

    def __post_init__(self) -> None:
        for key, allowed in (("profile", PROFILES), ("embedder", EMBEDDERS), ("model", MODELS),
                             ("executor", EXECUTORS)):
            if getattr(self, key) not in allowed:
                raise ParamsError(f"params.yaml: {key} = {getattr(self, key)!r}; expected one of {' | '.join(allowed)}")


def shared(params: dict[str, Any]) -> Shared:
    """The top-level keys of `params` as a `Shared`, absent ones at their defaults.

    Raises:
        ParamsError: naming the key, on a wrong type, a name outside its choices, or a top-level key
            that is neither one of Shared's nor one of SECTIONS (a typo would otherwise be ignored).
    """
    keys = {f.name for f in fields(Shared)}
    unknown = sorted(set(params) - keys - set(SECTIONS))
    if unknown:
        raise ParamsError(f"params.yaml: unknown top-level key(s) {', '.join(unknown)}; "
                          f"known: {', '.join([*keys, *SECTIONS])}")
    return build(Shared, {k: v for k, v in params.items() if k in keys}, "")


def load_params(params_path: str | Path = "params.yaml") -> dict[str, Any]:
    """Returns the whole params file as a dict.

    Args:
        params_path: Path of params.yaml.

    Returns:
        The parsed YAML mapping.
    """
    path = Path(params_path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return data


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Returns the section `name`, failing with its name when it is absent."""
    if name not in params or not isinstance(params[name], dict):
        raise ParamsError(f"params.yaml: section '{name}' is missing or not a mapping")
    return params[name]


def typed(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """The section `name` of `params` built as `cls` (`section`, then `build`): for a stage reading another's."""
    return build(cls, section(params, name), name)


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Builds dataclass `cls` from `values`, rejecting unknown keys and wrong types by name.

    Args:
        cls: A dataclass whose fields have defaults or are given in `values`.
        values: The params mapping.
        where: Dotted location for error messages, e.g. "sky.tiny".

    Returns:
        The dataclass instance.
    """
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(f"params.yaml: unknown key(s) {', '.join(_dotted(where, k) for k in unknown)}; "
                          f"known: {', '.join(known)}")
    kwargs = {}
    defaults = cls() if _has_defaults(cls) else None
    for key, value in values.items():
        default = getattr(defaults, key, None)
        expected = None if default is None else type(default)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is not None and not isinstance(value, expected):
            raise ParamsError(f"params.yaml: {_dotted(where, key)} = {value!r} should be of type {expected.__name__}")
        kwargs[key] = value
    return cls(**kwargs)


def profile_block(params: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The block at dotted `path` (e.g. "sky", "train.budget") for the chosen `profile`, and its dotted name.

    Raises:
        ParamsError: naming the path when a section on it is missing or has no block for the profile.
    """
    profile = shared(params).profile
    node: Any = params
    for depth, part in enumerate(path.split(".")):
        node = section(node, part) if depth == 0 else node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ParamsError(f"params.yaml: '{path}' is missing or not a mapping")
    if not isinstance(node.get(profile), dict):
        raise ParamsError(f"params.yaml: profile {profile!r} has no block {path}.{profile}; have {', '.join(node)}")
    return node[profile], f"{path}.{profile}"


def _dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _has_defaults(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True
