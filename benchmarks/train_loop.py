"""Benchmark: images/s of the train stage's path for one model against a bare torch loop on tensors in memory.

Ours, one pass, as `stages/train.py` does for one network: read the image table (CSV), the segment
product and the spectral embeddings (HDF5, `io.hdf5.read_product`), `grouped_split`, `build_set` for
the fit and validation sets (preprocess to the budget's image_size), then `training.loop.train_model` with
the params.yaml `train` settings (AdamW one-cycle, D4 augmentation, class weights, per-epoch validation,
BatchNorm recompute) for `--epochs` epochs (default: the stage's own `train.budget.<profile>.epochs`).
Not included: dvclive logging and checkpoint writing.

Baseline, one pass: the same network (`build_model` of the same config, same seed and thread count),
plain AdamW (constant lr), the same batch size and reshuffling per epoch, the model's own loss
(class-weighted cross-entropy for "rgb"; `gated_loss` on `parts()` for "gated") on the fit set already
preprocessed in memory. No reading, no preprocessing, no augmentation, no validation, no BatchNorm
recompute, no bookkeeping, no deterministic-algorithms mode: the unavoidable work.

Ratio = (our images/s) / (baseline images/s), images = fit images × epochs; measured for "rgb" with and
without augmentation and for the default guided model ("gated", with spectra). A one-off instrumented pass
gives the time breakdown of ours, from which the ratio at the params.yaml epoch count is projected.
Inputs are generated in a temporary directory. Run from the repository root:
`.venv/bin/python benchmarks/train_loop.py [--quick]` → benchmarks/results/train_loop[.quick].json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import harness  # benchmarks/harness.py (a script's own directory is on sys.path)
import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from specmorph.catalog.splits import grouped_split
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import read_product, write_product
from specmorph.models import build_model
from specmorph.models.config import ModelConfig
from specmorph.params import build, load_params, profile_block
from specmorph.taxonomy import CLASSES
from specmorph.training import engine, loop
from specmorph.training.budget import Budget
from specmorph.training.dataset import build_set
from specmorph.training.loop import TensorData, TrainParams, class_weights, train_model
from specmorph.training.objectives import LossParams, gated_loss

NAME = "train_loop"
TARGET = 0.9
PARAMS_PATH = Path(__file__).resolve().parents[1] / "params.yaml"
CLASS_FREQ = np.array([437, 112, 205, 108, 457, 382, 337, 478], float)  # default-profile labels per class
SPEC_FRAC = 0.075  # share of training images whose galaxy has a cube (default profile: 138 of 1813)
OTHER_FRAC = 0.44  # test + unlabelled rows per training row, also in the product (default: 890 / 2014)


def make_inputs(tmp: Path, n_train: int, out_size: int, spec_dim: int, seed: int = 0) -> dict[str, Path]:
    """Writes an image table (CSV), a segment product and an embedding product like the pipeline's; returns paths."""
    rng = np.random.default_rng(seed)
    n = n_train + round(OTHER_FRAC * n_train)
    yy, xx = np.mgrid[0:out_size, 0:out_size].astype(np.float32) - (out_size - 1) / 2  # px from the centre
    images = np.zeros((n, out_size, out_size, 3), np.uint8)
    masks = np.zeros((n, out_size, out_size), bool)
    for i in range(n):  # masked, recentred elliptical galaxies: what `segment` writes
        a, q, th = rng.uniform(6, 20), rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        u, v = xx * np.cos(th) + yy * np.sin(th), -xx * np.sin(th) + yy * np.cos(th)
        r2 = (u / a) ** 2 + (v / (q * a)) ** 2
        masks[i] = r2 < 6.0
        flux = 230 * np.exp(-0.5 * r2)[..., None] * rng.uniform(0.5, 1.0, 3) + rng.normal(8, 3, (out_size, out_size, 3))
        images[i] = np.clip(flux, 0, 255).astype(np.uint8) * masks[i][..., None]
    ids = [f"{587700000000000000 + i}" for i in range(n)]
    split = np.array(["train"] * n_train + ["test"] * (n - n_train))
    label = rng.choice(len(CLASSES), n, p=CLASS_FREQ / CLASS_FREQ.sum())
    with_spec = rng.uniform(size=n) < SPEC_FRAC
    califa = np.where(with_spec, [f"MOCK{i:05d}" for i in range(n)], "")
    table = pd.DataFrame({"id_str": ids, "galaxy_id": [f"G{i:05d}" for i in range(n)], "label": label,
                          "split": split, "califa_name": califa})
    paths = {"images": tmp / "images.csv", "segmented": tmp / "images.h5", "features": tmp / "embedding.h5"}
    table.to_csv(paths["images"], index=False)
    write_product(paths["segmented"], {"images": images, "masks": masks, "degenerate": np.zeros(n, bool),
                                       "threshold": np.full(n, 20.0, np.float32)}, ids,
                  {"image_units": "uint8 RGB, masked", "out_size": out_size}, stage="segment", params_hash="bench")
    names = califa[with_spec].tolist()
    write_product(paths["features"], {"embedding": rng.normal(size=(len(names), spec_dim)).astype(np.float32),
                                      "held_out": np.zeros(len(names), bool)}, names, {"embedder": "pca"},
                  stage="embed", params_hash="bench")
    return paths


def model_config(params: dict, kind: str, spec_dim: int) -> ModelConfig:
    """The network config `stages/train.py` builds from params.yaml for `kind`."""
    p, b = params["train"], build(Budget, *profile_block(params, "train.budget"))
    prep = PreprocessConfig(size=b.image_size, crop_fraction=float(p["crop_fraction"]), segment=True,
                            segment_params=build(SegmentParams, params["segment"], "segment"))
    return ModelConfig(kind=kind, n_classes=len(CLASSES), label_cols=CLASSES, image_size=b.image_size,
                       depth=b.depth, width=b.width, feature_dim=int(p["feature_dim"]),
                       head_hidden=int(p["head_hidden"]), spec_dim=spec_dim, spec_hidden=int(p["spec_hidden"]),
                       spec_dropout=float(p["spec_dropout"]), gate=str(p["gate"]), preprocess=prep.to_dict())


def read_inputs(paths: dict[str, Path]) -> tuple:
    """The train stage's reads: (image table, segmented images, their ids, embeddings, their CALIFA names)."""
    table = read_table(paths["images"], ["id_str", "galaxy_id", "label", "split", "califa_name"],
                       dtype={"id_str": str, "galaxy_id": str, "califa_name": str})
    seg, seg_ids, _ = read_product(paths["segmented"], ["images"])
    feats, feat_ids, _ = read_product(paths["features"], ["embedding"])
    return table, seg["images"], seg_ids, feats["embedding"], feat_ids


def make_sets(params: dict, table, seg_images, seg_ids, features, feature_ids) -> tuple[TensorData, TensorData]:
    """The train stage's grouped fit/validation split of the training rows and `build_set` of each."""
    p, b = params["train"], build(Budget, *profile_block(params, "train.budget"))
    rows = table[table["split"] == "train"].reset_index(drop=True)
    fit_idx, val_idx = grouped_split(rows["label"].to_numpy(), rows["galaxy_id"].to_numpy(), float(p["val_frac"]),
                                     int(params["seed"]), class_names=CLASSES)
    size, crop = b.image_size, float(p["crop_fraction"])
    return tuple(build_set(rows.iloc[idx], seg_images, seg_ids, features, feature_ids, size, crop).data
                 for idx in (fit_idx, val_idx))


def stage_pass(paths: dict[str, Path], params: dict, cfg: ModelConfig, tp: TrainParams, losses: LossParams,
               clock: dict[str, float] | None = None) -> list[dict]:
    """Ours: the train stage's reading, set building and `train_model` for one network; returns its history."""
    t0 = time.perf_counter()
    inputs = read_inputs(paths)
    t1 = time.perf_counter()
    fit, val = make_sets(params, *inputs)
    t2 = time.perf_counter()
    _, history = train_model(cfg, tp, fit, val, losses=losses)
    if clock is not None:
        clock.update(read_s=t1 - t0, build_set_s=t2 - t1, train_model_s=time.perf_counter() - t2,
                     n_fit=len(fit), n_val=len(val))
    return history


def bare_pass(cfg: ModelConfig, data: TensorData, tp: TrainParams, losses: LossParams) -> None:
    """Baseline: the same network and loss, plain AdamW, on the preprocessed fit set in memory."""
    torch.manual_seed(tp.seed)
    model = build_model(cfg)
    model.train()
    gated = cfg.kind == "gated"
    if gated:
        model.spectral.set_normalisation(data.spec[data.has_spec])
    weight = class_weights(data.labels, cfg.n_classes)  # (C,)
    opt = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    gen = torch.Generator().manual_seed(tp.seed)
    for _ in range(tp.epochs):
        for idx in torch.randperm(len(data), generator=gen).split(tp.batch_size):
            if len(idx) < 2:  # BatchNorm cannot train on one image
                continue
            x, y = data.images[idx], data.labels[idx]
            if gated:
                loss = gated_loss(model.parts(x, data.spec[idx], data.has_spec[idx]), y, losses, weight)[0]
            else:
                loss = F.cross_entropy(model(x), y, weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


@contextmanager
def timing_loop_parts(acc: dict[str, float]):
    """Patches the engine's augmentation, BatchNorm recompute and the classifiers' validation with timers in `acc`."""
    targets = [(loop, "augment_d4"), (engine, "recompute_bn"), (loop.ClassifierTask, "validate")]
    saved = []
    for owner, name in targets:
        fn = getattr(owner, name)
        saved.append((owner, name, fn))
        acc[f"{name}_s"] = 0.0

        def timed(*args, _fn=fn, _key=f"{name}_s", **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                acc[_key] += time.perf_counter() - t0

        setattr(owner, name, timed)
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def breakdown(paths, params, cfg, tp, losses) -> dict:
    """One instrumented pass of ours: seconds in reading, set building, per-epoch loop, BN recompute, validation."""
    clock: dict[str, float] = {}
    parts: dict[str, float] = {}
    with timing_loop_parts(parts):
        history = stage_pass(paths, params, cfg, tp, losses, clock)
    bn = parts["recompute_bn_s"]
    val = parts["validate_s"]
    epochs_s = sum(h["seconds"] for h in history)  # per-epoch loops (validation and the BN recompute are outside)
    loop_s = epochs_s
    out = {"hdf5_and_csv_read_s": clock["read_s"], "split_and_build_set_s": clock["build_set_s"],
           "train_model_s": clock["train_model_s"], "epoch_loops_s": loop_s,
           "epoch_loop_s_per_epoch": loop_s / tp.epochs, "augment_s": parts["augment_d4_s"],
           "bn_recompute_s": bn, "validation_s": val,
           "train_model_setup_s": clock["train_model_s"] - epochs_s - val - bn,
           "n_fit": clock["n_fit"], "n_val": clock["n_val"]}
    out["loop_s_per_image_per_epoch"] = loop_s / tp.epochs / clock["n_fit"]
    return out


def projected_ratio(bd: dict, bare_s_per_epoch: float, measured_epochs: int, epochs: int) -> float:
    """Ratio at `epochs` epochs from a breakdown of `measured_epochs`: fixed costs once, the rest per epoch."""
    fixed = bd["hdf5_and_csv_read_s"] + bd["split_and_build_set_s"] + bd["train_model_setup_s"] + bd["bn_recompute_s"]
    per_epoch = bd["epoch_loop_s_per_epoch"] + bd["validation_s"] / measured_epochs
    return epochs * bare_s_per_epoch / (fixed + epochs * per_epoch)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~200 images, 1 epoch, 3 pairs (smoke run, seconds)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per pass (default: the budget's; quick 1)")
    ap.add_argument("--n-train", type=int, default=None, help="training-split images (default 600; quick 200)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of both sides (default 2: TrainParams')")
    args = ap.parse_args(argv)
    n_train = args.n_train or (200 if args.quick else 600)
    repeat, repeat_extra = (3, 3) if args.quick else (5, 3)
    params = load_params(PARAMS_PATH)
    p, b = params["train"], build(Budget, *profile_block(params, "train.budget"))
    epochs = args.epochs or (1 if args.quick else b.epochs)
    spec_dim = int(params.get("spectra", {}).get("n_components", 12))  # PCA embedding width
    tp = TrainParams(epochs=epochs, batch_size=int(p["batch_size"]), lr=float(p["lr"]),
                     weight_decay=float(p["weight_decay"]), seed=0, num_threads=args.threads)
    losses = build(LossParams, p["losses"], "train.losses")
    torch.set_num_threads(tp.num_threads)  # the baseline's threads = train_model's
    result: dict = {"compares": __doc__.split("\n\n")[1:3], "n_train_split": n_train, "epochs": epochs,
                    "params_epochs": b.epochs, "batch_size": tp.batch_size, "threads": tp.num_threads,
                    "image_size": b.image_size, "segment_out_size": int(params["segment"]["out_size"])}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        t0 = time.perf_counter()
        paths = make_inputs(Path(tmp), n_train, int(params["segment"]["out_size"]), spec_dim)
        result["input_generation_s"] = time.perf_counter() - t0
        result["segment_product_mb"] = paths["segmented"].stat().st_size / 1e6
        fit, _ = make_sets(params, *read_inputs(paths))  # the baseline's preloaded tensors
        items = len(fit) * epochs
        for kind, augment, rep in (("rgb", True, repeat), ("rgb", False, repeat_extra), ("gated", True, repeat_extra)):
            key = f"{kind}_{'aug' if augment else 'noaug'}"
            cfg = model_config(params, kind, spec_dim)
            tpk = dataclasses.replace(tp, augment=augment)
            stage_pass(paths, params, cfg, dataclasses.replace(tpk, epochs=1), losses)  # one-epoch warm-ups
            bare_pass(cfg, fit, dataclasses.replace(tpk, epochs=1), losses)
            res = harness.paired(lambda cfg=cfg, tpk=tpk: stage_pass(paths, params, cfg, tpk, losses),
                                 lambda cfg=cfg, tpk=tpk: bare_pass(cfg, fit, tpk, losses),
                                 items=items, repeat=rep, warmup=0)
            bd = breakdown(paths, params, cfg, tpk, losses)
            bare_epoch = statistics.median(res["baseline"]["wall_s"]) / epochs  # s
            res["breakdown_ours"] = bd
            res["bare_s_per_image_per_epoch"] = bare_epoch / len(fit)
            res["epoch_ratio"] = bare_epoch / (bd["epoch_loop_s_per_epoch"] + bd["validation_s"] / epochs)
            res[f"projected_ratio_at_{b.epochs}_epochs"] = projected_ratio(bd, bare_epoch, epochs,
                                                                               b.epochs)
            result[key] = res
            print(f"{key}: ratio {res['ratio']:.3f}, ours {res['ours']['items_per_s']:.0f} img/s, "
                  f"bare {res['baseline']['items_per_s']:.0f} img/s", file=sys.stderr)
    result["per_image_costs"] = {  # for a cost table: ours, seconds per training image
        **{f"{k}_loop_s_per_image_per_epoch": result[k]["breakdown_ours"]["loop_s_per_image_per_epoch"]
           for k in ("rgb_aug", "gated_aug")},
        "read_and_build_set_s_per_image": sum(result["rgb_aug"]["breakdown_ours"][k] for k in (
            "hdf5_and_csv_read_s", "split_and_build_set_s")) / result["rgb_aug"]["breakdown_ours"]["n_fit"]}
    name = f"{NAME}.quick" if args.quick else NAME
    harness.finish(name, result, result["rgb_aug"]["ratio"], TARGET)


if __name__ == "__main__":
    main()
