"""Class probabilities for image files from a trained checkpoint, with the checkpoint's own preprocessing."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specmorph.errors import InputError, NoDataError
from specmorph.executor import ExecutorParams, map_shards
from specmorph.imaging.quality import ALL_NAN, FLAGS, input_flag
from specmorph.imaging.transforms import PreprocessConfig, apply
from specmorph.io.atomic import atomic_file
from specmorph.io.catalogs import write_table
from specmorph.io.images import FITS_SUFFIXES, read_image
from specmorph.models.checkpoint import load_checkpoint
from specmorph.models.config import ModelConfig
from specmorph.models.inference import class_probabilities

logger = logging.getLogger(__name__)

PATH_COLUMNS = ("path", "file")  # accepted names of the path column of a CSV list, in order of preference
ID_COLUMN = "id_str"
FLAG_COLUMN = "flag"  # "" for classified rows, else why the image was not classified (`imaging.quality.FLAGS`)
STRICT_NAMED = 5  # flagged files named in the --strict error


def image_id(path: str | os.PathLike) -> str:
    """File name without its image suffix ("x.fits.gz" -> "x", "dir/MOCK1.jpg" -> "MOCK1")."""
    name = Path(path).name
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_path_list(csv_path: str | os.PathLike) -> tuple[list[Path], list[str] | None]:
    """Image paths (and optional ids) from a CSV with a `path` or `file` column.

    Relative paths are resolved against the CSV's directory, so a list travels with its images.

    Args:
        csv_path: CSV with a column `path` (or `file`) and optionally `id_str`.

    Returns:
        (paths, ids): ids is None when the CSV has no `id_str` column.

    Raises:
        InputError: the CSV is missing, unreadable, empty, has no path column or an empty cell
            (the message names the file, column and row).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such file list")
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{csv_path}: cannot read CSV: {exc}") from exc
    column = next((c for c in PATH_COLUMNS if c in df.columns), None)
    if column is None:
        raise InputError(f"{csv_path}: no path column; expected one of {PATH_COLUMNS}, found {list(df.columns)}")
    if df.empty:
        raise InputError(f"{csv_path}: the file list has no rows")
    for col in (column, ID_COLUMN) if ID_COLUMN in df.columns else (column,):
        empty = np.flatnonzero(df[col].str.strip() == "")
        if empty.size:
            raise InputError(f"{csv_path}: row {int(empty[0]) + 1}: empty '{col}'")
    base = csv_path.parent
    paths = [p if p.is_absolute() else base / p for p in map(Path, df[column].str.strip())]
    ids = df[ID_COLUMN].str.strip().tolist() if ID_COLUMN in df.columns else None
    return paths, ids


def resolve_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str] | None]:
    """Turns command-line INPUTS into image paths: image files, or one CSV file list.

    Args:
        inputs: image paths, or a single CSV (see `read_path_list`).

    Returns:
        (paths, ids or None).

    Raises:
        InputError: no inputs, or a CSV mixed with other inputs.
    """
    if not inputs:
        raise InputError("no input images given")
    csvs = [p for p in inputs if str(p).lower().endswith(".csv")]
    if csvs and len(inputs) > 1:
        raise InputError(f"a CSV file list must be the only input; got {csvs[0]} among {len(inputs)} inputs")
    if csvs:
        return read_path_list(csvs[0])
    return [Path(p) for p in inputs], None


def load_model(model_path: str | os.PathLike) -> tuple[torch.nn.Module, ModelConfig, PreprocessConfig]:
    """Loads a checkpoint and the preprocessing it was trained with.

    Args:
        model_path: a checkpoint written by `models.checkpoint.save_checkpoint`.

    Returns:
        (model in eval mode, its ModelConfig, its PreprocessConfig).

    Raises:
        InputError: the file is missing or not a usable specmorph checkpoint; the message names it.
    """
    model_path = Path(model_path)
    model, cfg, _extra = load_checkpoint(model_path, map_location="cpu")
    if not cfg.preprocess:
        raise InputError(f"{model_path}: checkpoint config has no preprocessing settings ('preprocess' is empty)")
    try:
        prep = PreprocessConfig.from_dict(cfg.preprocess)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{model_path}: checkpoint has invalid preprocessing settings: {exc}") from exc
    return model, cfg, prep


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def _reason(exc: InputError, path: Path) -> str:
    """The error message without its leading "<path>: " or a quoted repeat of the path (Pillow adds one)."""
    msg = str(exc)
    prefix = f"{path}: "
    msg = msg[len(prefix):] if msg.startswith(prefix) else msg
    return msg.replace(f" '{path}'", "")


@lru_cache(maxsize=16)  # the checkpoints of one call (`predict_many`)
def _cached_model(model_path: str, device: str, stamp: tuple[int, int] | None
                  ) -> tuple[torch.nn.Module, ModelConfig, PreprocessConfig]:
    """`load_model` on `device` in eval mode, once per process while the file's (mtime, size) `stamp` holds."""
    model, cfg, prep = load_model(model_path)
    return model.to(device).eval(), cfg, prep


def _model_on(model_path: str, device: str) -> tuple[torch.nn.Module, ModelConfig, PreprocessConfig]:
    st = os.stat(model_path) if os.path.isfile(model_path) else None
    return _cached_model(model_path, device, None if st is None else (st.st_mtime_ns, st.st_size))


def _predict_shard(model_paths: tuple[str, ...], batch_size: int, device: str, tta: bool, index: int,
                   items: list[tuple[int, str]]
                   ) -> tuple[list[int], list[np.ndarray], list[tuple[int, str]], list[tuple[int, str]]]:
    """An executor task: read, check (`input_flag`), preprocess and classify (row, path) items in batches.

    Each image is read and prepared once, then classified by every checkpoint (they share one
    preprocessing). Flagged images leave their batch like unreadable ones, so the other images'
    batches are unchanged. With `tta` each image's probabilities are the mean over its 8 orientations
    (`models.inference.class_probabilities`), as the pipeline scores its networks.

    Returns:
        The rows classified, per checkpoint their (n, C) float64 probabilities, [(row, reason)] for the
        unreadable files and [(row, flag)] for the flagged ones.
    """
    models = [_model_on(p, device) for p in model_paths]
    prep = models[0][2]
    kept: list[int] = []
    probs = [[np.zeros((0, cfg.n_classes))] for _, cfg, _ in models]
    skipped: list[tuple[int, str]] = []
    flagged: list[tuple[int, str]] = []
    for batch in _batches(len(items), batch_size):
        images, rows = [], []
        for row, path in (items[k] for k in batch):
            try:
                rgb = read_image(path)  # (H, W, 3) uint8
            except NoDataError:
                flagged.append((row, ALL_NAN))
                continue
            except InputError as exc:
                skipped.append((row, _reason(exc, Path(path))))
                continue
            flag = input_flag(rgb, prep)
            if flag:
                flagged.append((row, flag))
            else:
                images.append(apply(rgb, prep))  # (3, S, S) float32 in [0, 1]
                rows.append(row)
        if images:
            x = torch.from_numpy(np.stack(images)).to(device)  # (B, 3, S, S)
            for (model, _, _), out in zip(models, probs, strict=True):
                with torch.inference_mode():
                    out.append(class_probabilities(model, x, tta=tta).cpu().numpy())  # (B, C)
            kept.extend(rows)
    return kept, [np.concatenate(p) for p in probs], skipped, flagged


def _resumable_shard(fn, directory: str, key: str, index: int, items: list) -> object:
    """`fn(index, items)`, kept in `directory` once done: a run killed part-way redoes only the shards not kept.

    The file name carries a hash of `key` (checkpoints, batching) and of the shard's items, so a kept
    result is reused only for the same work; it is written atomically, so a kill never leaves half a shard.
    """
    digest = hashlib.sha256(pickle.dumps((key, items))).hexdigest()[:16]
    path = Path(directory) / f"shard_{index:06d}_{digest}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    result = fn(index, items)
    with atomic_file(path) as tmp:
        tmp.write_bytes(pickle.dumps(result))
    return result


def predict_paths(model_path: str | os.PathLike, paths: Sequence[str | os.PathLike], batch_size: int = 64,
                  ids: Sequence[str] | None = None, device: str = "cpu", executor: ExecutorParams | None = None,
                  strict: bool = False, tta: bool = True) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Class probabilities for image files (RGB only: the spectral branch is absent at predict time).

    Each image is read with `io.images.read_image`, checked by `imaging.quality.input_flag` and, unless
    flagged, prepared by `imaging.transforms.apply` with the checkpoint's own `PreprocessConfig`,
    exactly as in training. Unreadable files are logged as warnings and returned in `skipped`; flagged
    ones are logged as warnings and keep their row, unclassified: nothing is dropped silently. The
    files go in shards through the executor (each task loads the checkpoint once per process and runs
    the checks); shards are rounded up to whole batches, so every executor and shard size gives the
    batches, and the numbers, of one pass. A flagged image leaves its batch like an unreadable one.

    Args:
        model_path: checkpoint file.
        paths: (N,) image files (JPEG, PNG, FITS).
        batch_size: images per forward pass.
        ids: (N,) identifiers; None: the file names without suffix (`image_id`).
        device: torch device for the forward pass.
        executor: where the shards run (None: locally); Dask workers must see the checkpoint and images.
        strict: raise instead of returning flagged rows (after the whole pass).
        tta: probabilities averaged over the image's 8 orientations (rotations by 90° and mirrors), as the
            pipeline's metrics are measured; False: the image as given (8 times faster in the network).

    Returns:
        (table, skipped): one row per readable image in input order, columns id_str, path, one
        probability per class (named by the checkpoint's label_cols, summing to 1), predicted (class
        name), confidence (its probability), flag ("" or one of `imaging.quality.FLAGS`); a flagged
        row has NaN probabilities and confidence and predicted "" (all empty cells in the CSV).
        skipped is [(path, reason)] in input order.

    Raises:
        InputError: bad checkpoint, no image could be read, or (strict) some image was flagged; the
            message names the first STRICT_NAMED flagged files and their flags.
        ValueError: batch_size < 1 or ids of the wrong length.
    """
    tables, skipped = predict_many([model_path], paths, batch_size, ids, device, executor, strict, tta=tta)
    return tables[0], skipped


def predict_many(model_paths: Sequence[str | os.PathLike], paths: Sequence[str | os.PathLike], batch_size: int = 64,
                 ids: Sequence[str] | None = None, device: str = "cpu", executor: ExecutorParams | None = None,
                 strict: bool = False, resume_dir: str | os.PathLike | None = None, tta: bool = True
                 ) -> tuple[list[pd.DataFrame], list[tuple[str, str]]]:
    """`predict_paths` for several checkpoints in one pass: each image is read, checked and prepared once.

    Every table is the one `predict_paths` gives for that checkpoint alone (the same batches).

    Args:
        model_paths: checkpoints that share one `PreprocessConfig` (e.g. the seeds of one training).
        paths, batch_size, ids, device, executor, strict, tta: as for `predict_paths`.
        resume_dir: keep each finished shard's results here (`_resumable_shard`); a second call with the
            same inputs after a kill redoes only the shards that were not finished. None: keep nothing.

    Returns:
        (tables, skipped): one table per checkpoint, in order; skipped as for `predict_paths`.

    Raises:
        InputError: as for `predict_paths`, or checkpoints with different preprocessing.
        ValueError: as for `predict_paths`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    paths = [Path(p) for p in paths]
    ids = [image_id(p) for p in paths] if ids is None else [str(i) for i in ids]
    if len(ids) != len(paths):
        raise ValueError(f"{len(ids)} ids for {len(paths)} paths")
    model_paths = tuple(os.path.abspath(p) for p in model_paths)
    loaded = [_model_on(p, device) for p in model_paths]  # a bad checkpoint fails here, by name
    if any(prep != loaded[0][2] for _, _, prep in loaded):
        raise InputError(f"checkpoints with different preprocessing cannot share a pass: {', '.join(model_paths)}")
    executor = executor or ExecutorParams()
    size = -(-executor.shard_size // batch_size) * batch_size
    items = [(i, os.path.abspath(p)) for i, p in enumerate(paths)]
    try:
        shard_fn = partial(_predict_shard, model_paths, batch_size, device, tta)
        if resume_dir is not None:
            Path(resume_dir).mkdir(parents=True, exist_ok=True)
            stamp = [(p, st.st_size, st.st_mtime_ns) for p, st in zip(model_paths, map(os.stat, model_paths),
                                                                         strict=True)]
            shard_fn = partial(_resumable_shard, shard_fn, os.path.abspath(resume_dir), repr((stamp, batch_size, tta)))
        parts = map_shards(shard_fn, items, replace(executor, shard_size=size), desc="predict", unit="img",
                           disable=None)
    finally:
        _cached_model.cache_clear()
    kept = [i for part in parts for i in part[0]]
    skipped = [(str(paths[i]), reason) for part in parts for i, reason in part[2]]
    flags = {i: flag for part in parts for i, flag in part[3]}
    for path, reason in skipped:
        logger.warning("skipping unreadable file %s: %s", path, reason)
    if not kept and not flags:
        raise InputError(f"none of the {len(paths)} input file(s) could be read: {summarize_skipped(skipped)}")
    if strict and flags:
        named = ", ".join(f"{paths[i]} ({flags[i]})" for i in sorted(flags)[:STRICT_NAMED])
        more = f" and {len(flags) - STRICT_NAMED} more" if len(flags) > STRICT_NAMED else ""
        raise InputError(f"{len(flags)} input file(s) flagged, not classified (--strict): {named}{more}")
    for i in sorted(flags):
        logger.warning("not classifying %s: %s", paths[i], flags[i])
    rows = sorted([*kept, *flags])
    at = np.searchsorted(rows, kept)  # table positions of the classified rows
    tables = []
    for m, (_, cfg, _) in enumerate(loaded):
        labels = list(cfg.label_cols)
        p = np.full((len(rows), len(labels)), np.nan)  # (N_read, C): flagged rows stay NaN
        p[at] = np.concatenate([part[1][m] for part in parts])
        best = np.full(len(rows), -1)
        best[at] = p[at].argmax(axis=1)
        tables.append(pd.DataFrame({
            ID_COLUMN: [ids[i] for i in rows], "path": [str(paths[i]) for i in rows],
            **dict(zip(labels, p.T, strict=True)),
            "predicted": [labels[k] if k >= 0 else "" for k in best],
            "confidence": p[np.arange(len(rows)), best],  # NaN on flagged rows
            FLAG_COLUMN: [flags.get(i, "") for i in rows]}))
    duplicated = tables[0][ID_COLUMN][tables[0][ID_COLUMN].duplicated()].unique().tolist()
    if duplicated:
        logger.warning("duplicate id_str in predictions (tell rows apart by path): %s", duplicated[:10])
    return tables, skipped


def summarize_skipped(skipped: Sequence[tuple[str, str]]) -> str:
    """One line naming every skipped file and why, e.g. "skipped 1 unreadable file(s): a.jpg (truncated)"."""
    return f"skipped {len(skipped)} unreadable file(s): " + ", ".join(f"{p} ({r})" for p, r in skipped)


def summarize_flags(flags: Sequence[str]) -> str:
    """One line counting a flag column's rows per flag, e.g. "flagged 2 of 9 image(s), not classified: 2 too_small"."""
    counts = Counter(f for f in flags if f)
    return f"flagged {counts.total()} of {len(flags)} image(s), not classified: " + ", ".join(
        f"{counts[f]} {f}" for f in sorted(counts, key=FLAGS.index))


def run_predict(model_path: str | os.PathLike, inputs: Sequence[str | os.PathLike], out_path: str | os.PathLike,
                batch_size: int = 64, device: str = "cpu", executor: ExecutorParams | None = None,
                strict: bool = False, tta: bool = True) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`specmorph predict`: resolve INPUTS, predict, write the CSV atomically (nothing written on an error).

    Unreadable files are skipped and listed with their reason in `rejects_path_for(out_path)`.

    Resumable: finished shards are kept in `resume_dir_for(out_path)` until the CSV is written, so the
    same command after a kill (or a failure) redoes only the rest. Two runs with different `out_path`s
    share nothing.

    Args:
        model_path: checkpoint file.
        inputs: image files, or a single CSV file list.
        out_path: predictions CSV to write.
        batch_size: images per forward pass.
        device: torch device.
        executor: where the shards of images run (None: locally).
        strict: a flagged image is an InputError (see `predict_paths`).
        tta: average over the 8 orientations (see `predict_paths`).

    Returns:
        (table, skipped) as from `predict_paths`.
    """
    paths, ids = resolve_inputs(inputs)
    parts = resume_dir_for(out_path)
    if parts.is_dir():
        logger.info("resuming: finished shards of an interrupted run are in %s", parts)
    try:
        tables, skipped = predict_many([model_path], paths, batch_size=batch_size, ids=ids, device=device,
                                       executor=executor, strict=strict, resume_dir=parts, tta=tta)
    except InputError:  # bad input fails the same way again: nothing worth keeping
        shutil.rmtree(parts, ignore_errors=True)
        raise
    rejects = rejects_path_for(out_path)
    if skipped:
        write_table(pd.DataFrame(skipped, columns=["path", "reason"]), rejects)
    else:
        rejects.unlink(missing_ok=True)  # a list left by an earlier run of the same command is stale now
    write_table(tables[0], out_path)
    shutil.rmtree(parts, ignore_errors=True)
    logger.info("wrote %d row(s) to %s", len(tables[0]), out_path)
    return tables[0], skipped


def rejects_path_for(out_path: str | os.PathLike) -> Path:
    """Where `run_predict` lists the files it skipped (path, reason): `<name>.rejects.csv` beside the output."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.rejects.csv")


def resume_dir_for(out_path: str | os.PathLike) -> Path:
    """Where `run_predict` keeps finished shards until the CSV is written: `.<name>.parts` beside it."""
    out_path = Path(out_path)
    return out_path.parent / f".{out_path.name}.parts"
