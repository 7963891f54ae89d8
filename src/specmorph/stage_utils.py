"""Small helpers shared by the stage scripts: logging set-up, params sections, metrics files."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from specmorph.errors import InputError
from specmorph.io.atomic import write_json_atomic
from specmorph.params import ParamsError, load_params, section


def stage_args(description: str, argv: list[str] | None, *arguments: tuple[str, str]) -> argparse.Namespace:
    """Parses `--params` plus the stage's own required path options, and configures logging.

    Run as a script (argv None), a bad params value or a bad input ends the stage with one line naming the
    stage and the dotted key, or the file and row (`stage train: params.yaml: train.budget.default.epochs =
    'x' ...`, `stage prepare_cubes: data/raw/califa/cubes/X.V500.rscube.fits.gz: truncated ...`), exit
    status 1, not a traceback.

    Args:
        description: The stage's docstring.
        argv: Command-line arguments (None: sys.argv).
        *arguments: (option, help) pairs, e.g. ("--raw-dir", "survey directory").

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file")
    for option, help_text in arguments:
        parser.add_argument(option, required=True, help=help_text)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv is None:
        _name_the_stage_in_errors(Path(sys.argv[0]).stem)
    return args


def _name_the_stage_in_errors(stage: str) -> None:
    """Makes an uncaught ParamsError or InputError print `stage <stage>: <message>` (exit status 1)."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        if isinstance(value, ParamsError | InputError):
            print(f"stage {stage}: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    sys.excepthook = hook


def params_of(params_path: str | Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (the whole params mapping, its section `name`)."""
    params = load_params(params_path)
    return params, section(params, name)


def write_metrics(metrics: dict, path: str | Path) -> None:
    """Writes a metrics JSON atomically (DVC reads it with `dvc metrics show`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(metrics, path)


TIMING_KEYS = ("seconds", "rows_per_s")  # per-epoch wall-clock figures of a training history


def without_timing(history: list[dict]) -> list[dict]:
    """A training history without its wall-clock figures, so that a checkpoint's bytes depend on the data only.

    Saved in checkpoints, timings would give every re-run new file hashes and make DVC re-run every
    stage after `train` even when the weights are bit-identical; they stay in the logs and dvclive.
    """
    return [{k: v for k, v in epoch.items() if k not in TIMING_KEYS} for epoch in history]


def relative_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """`os.path.relpath` of each path (to the working directory), computed once per parent directory.

    The same strings as calling it on every path, at a fraction of the cost for a catalogue of
    hundreds of thousands of images sharing a few directories.
    """
    rel_dirs: dict[str, str] = {}
    out = []
    for path in map(os.fspath, paths):
        head, tail = os.path.split(path)
        if not tail or tail in (".", ".."):
            out.append(os.path.relpath(path))
            continue
        if head not in rel_dirs:
            rel_dirs[head] = os.path.relpath(head or os.curdir)
        rel = rel_dirs[head]
        out.append(tail if rel == os.curdir else os.path.join(rel, tail))
    return out
