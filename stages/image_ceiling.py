"""Stage `image_ceiling`: how much of the mock's true classes the images show, for the `train` stage's network.

The label ceiling (`evaluate`) is how often the volunteers' labels agree with the truth: what a classifier
that recovered every galaxy's true class would score against them. Whether the images show the truth is
another question. Here the `train` stage's RGB-only network, on the same training images, split, budget,
recipe and seeds, is trained on the galaxies' *true* classes instead of their labels and scored on the
GZ2 test images against the truth and against the labels: the second is what the RGB-only baseline
could reach with noise-free training labels. Without a truth table (real data) it writes "skipped".
"""

from functools import partial

import numpy as np

from specmorph.catalog.splits import grouped_split
from specmorph.evaluation.report import IMAGE_CEILING_KEY, aggregate_seeds
from specmorph.evaluation.study import TRUTH_TABLE, true_classes
from specmorph.executor import map_items
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import read_product
from specmorph.params import build, profile_block, shared, typed
from specmorph.sections import EvaluateSection
from specmorph.stage_utils import params_of, stage_args, write_metrics
from specmorph.taxonomy import CLASSES
from specmorph.training.budget import Budget, TrainSection
from specmorph.training.dataset import build_set
from specmorph.training.loop import network_executor, train_and_predict
from specmorph.training.recipe import base_config, train_recipe


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table"), ("--segmented", "segment product"),
                      ("--truth-dir", "mock truth tables (absent for real data: skipped)"),
                      ("--metrics", "metrics JSON"))
    params, section = params_of(args.params, "train")
    p, top = build(TrainSection, section, "train"), shared(params)
    ev = typed(params, "evaluate", EvaluateSection)
    table = read_table(args.images, ["id_str", "galaxy_id", "source", "label", "split", "califa_name"],
                       dtype={"id_str": str, "galaxy_id": str, "califa_name": str})
    truth = true_classes(args.truth_dir, table["galaxy_id"], by="galaxy_id")
    if truth is None:
        write_metrics({"skipped": f"no mock truth at {args.truth_dir}/{TRUTH_TABLE}"}, args.metrics)
        return
    table["truth"] = truth
    rows = table[table["split"] == "train"].reset_index(drop=True)
    fit_idx, _ = grouped_split(rows["label"].to_numpy(), rows["galaxy_id"].to_numpy(), p.val_frac, top.seed,
                               class_names=CLASSES)  # the train stage's training rows
    fit_rows = rows.iloc[fit_idx]
    fit_rows = fit_rows[fit_rows["truth"] >= 0].assign(label=lambda d: d["truth"])
    test_rows = table[(table["split"] == "test") & (table["source"] == "gz2") & (table["truth"] >= 0)]
    budget = build(Budget, *profile_block(params, "train.budget"))
    seg, seg_ids, _ = read_product(args.segmented, ["images"])
    no_spec = np.zeros((0, 1), np.float32)
    fit, test = (build_set(r, seg["images"], seg_ids, no_spec, [], budget.image_size, p.crop_fraction)
                 for r in (fit_rows, test_rows))
    executor, threads = network_executor(p.workers, p.device)
    cfg = base_config(params, p, budget, spec_dim=1)  # an RGB network: the spectral width is never used
    task = partial(train_and_predict, cfgs={IMAGE_CEILING_KEY: cfg},
                   recipe=train_recipe(p, budget, threads), train=fit.data, test_images=test.data.images, tta=ev.tta)
    done = map_items(task, [(seed, IMAGE_CEILING_KEY) for seed in ev.seeds], executor, "image_ceiling",
                     unit="network")
    labels, true = test.table["label"].to_numpy(), test.table["truth"].to_numpy()
    per_seed = [{"accuracy_vs_labels": float((pred == labels).mean()),
                 "accuracy_vs_truth": float((pred == true).mean())} for _, _, _, _, pred in done]
    write_metrics({"seeds": list(ev.seeds), "tta": ev.tta, "n_train": len(fit.table), "n_test": len(test.table),
                   IMAGE_CEILING_KEY: aggregate_seeds(per_seed, ["accuracy_vs_labels", "accuracy_vs_truth"])},
                  args.metrics)


if __name__ == "__main__":
    main()
