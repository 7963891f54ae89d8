"""Stage `train`: the RGB-only baseline and the `model` choice (concat, kd, gated) on the same split, seeds, budget.

Data parallel with `torchrun --nproc_per_node=N stages/train.py <the same arguments>`: every rank
trains (`training.distributed`), rank 0 alone writes, and all finish together.
"""

import argparse
from functools import partial
from pathlib import Path

import numpy as np
from dvclive import Live

from specmorph.catalog.splits import grouped_split
from specmorph.executor import map_items
from specmorph.io.atomic import atomic_dir
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash, read_product
from specmorph.models.checkpoint import save_checkpoint
from specmorph.params import build, profile_block, shared, typed
from specmorph.sections import EvaluateSection
from specmorph.stage_utils import params_of, stage_args, without_timing, write_metrics
from specmorph.taxonomy import CLASSES
from specmorph.training import distributed
from specmorph.training.budget import Budget, TrainSection
from specmorph.training.dataset import build_set
from specmorph.training.guided import chains, plan, train_chains
from specmorph.training.loop import network_executor
from specmorph.training.objectives import LossParams
from specmorph.training.recipe import base_config, train_recipe


def log_to_dvclive(live_dir: Path, name: str, seed: int, epochs: list[dict]) -> None:
    """Writes one network's per-epoch metrics (as its epoch callback saw them) under <live_dir>/<name>_seed<seed>."""
    live = Live(dir=str(live_dir / f"{name}_seed{seed}"), save_dvc_exp=False, dvcyaml=None)
    for metrics in epochs:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1"):
            live.log_metric(key, float(metrics[key]))
        live.next_step()
    live.end()


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table"), ("--segmented", "segment product"),
                      ("--features", "spectral embeddings (embed stage)"), ("--models-dir", "checkpoints"),
                      ("--live-dir", "dvclive directory"), ("--metrics", "metrics JSON"))
    params, section = params_of(args.params, "train")
    p = build(TrainSection, section, "train")
    distributed.setup(p.device, p.backend)  # train_model trains on the device chosen here
    try:
        run(args, params, p, section)
        distributed.barrier()
    finally:
        distributed.destroy()


def run(args: argparse.Namespace, params: dict, p: TrainSection, section: dict) -> None:
    """Trains every job for every seed; rank 0 writes the checkpoints, dvclive logs and metrics."""
    main_rank = distributed.is_main()
    top = shared(params)
    jobs = plan(top.model, p.rgb_inference)
    table = read_table(args.images, ["id_str", "galaxy_id", "label", "split", "califa_name"],
                       dtype={"id_str": str, "galaxy_id": str, "califa_name": str})
    seg, seg_ids, _ = read_product(args.segmented, ["images"])
    feats, feat_ids, _ = read_product(args.features, ["embedding"])
    rows = table[table["split"] == "train"].reset_index(drop=True)
    fit_idx, val_idx = grouped_split(rows["label"].to_numpy(), rows["galaxy_id"].to_numpy(), p.val_frac,
                                     top.seed, class_names=CLASSES)
    budget = build(Budget, *profile_block(params, "train.budget"))
    size, crop = budget.image_size, p.crop_fraction
    fit = build_set(rows.iloc[fit_idx], seg["images"], seg_ids, feats["embedding"], feat_ids, size, crop)
    val = build_set(rows.iloc[val_idx], seg["images"], seg_ids, feats["embedding"], feat_ids, size, crop)
    base = base_config(params, p, budget, spec_dim=int(feats["embedding"].shape[1]))
    losses = build(LossParams, p.losses, "train.losses")
    executor, threads = network_executor(p.workers, p.device)
    recipe = train_recipe(p, budget, threads)
    where = ("device", "backend", "workers")  # how it runs, not what it trains: not in the checkpoints' hash
    p_hash = params_hash({k: v for k, v in section.items() if k not in where})
    seeds = typed(params, "evaluate", EvaluateSection).seeds
    task = partial(train_chains, base=base, params=recipe, losses=losses, train=fit.data, val=val.data,
                   teacher_spectra=p.teacher_spectra)
    done = map_items(task, [(seed, chain) for seed in seeds for chain in chains(jobs)], executor, "train",
                     unit="network group")
    if not main_rank:
        return
    summary = {}
    # saved into a work directory, renamed to --models-dir only once every model is saved
    with atomic_dir(args.models_dir) as work_dir:
        for r in done:
            seed = r["seed"]
            for name, t in r["trained"].items():
                log_to_dvclive(Path(args.live_dir), name, seed, r["epochs"][name])
                save_checkpoint(work_dir / f"{name}_seed{seed}.pt", t.model, t.cfg,
                                {"seed": seed, "model": top.model, "history": without_timing(t.history),
                                 "params_hash": p_hash, "n_train": len(fit.table), "n_val": len(val.table)})
                kept = next(h for h in t.history if h["best"])  # the returned weights' epoch
                summary[f"{name}_seed{seed}"] = {"epoch": kept["epoch"], "epochs_run": len(t.history),
                                                 **{k: kept[k] for k in ("train_acc", "val_acc", "val_macro_f1")}}
    write_metrics({"model": top.model, "rgb_inference": p.rgb_inference,
                   "teacher_spectra": p.teacher_spectra, "n_train": len(fit.table),
                   "n_val": len(val.table), "n_train_with_spectra": int(np.asarray(fit.data.has_spec).sum()),
                   "final": summary}, args.metrics)


if __name__ == "__main__":
    main()
