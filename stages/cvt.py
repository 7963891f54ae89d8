"""Stage `cvt`: a CvT and a ResNet baseline on the high-confidence 5-class GZ2 subset, same split, budget and seeds."""

from functools import partial
from pathlib import Path

import numpy as np

from specmorph.catalog.selection import FIVE_CLASSES
from specmorph.errors import InputError
from specmorph.evaluation.metrics import classification_metrics
from specmorph.evaluation.plots import write_confusion_csv
from specmorph.evaluation.report import aggregate_seeds, compare
from specmorph.evaluation.study import TestSet, gradcam_galleries
from specmorph.executor import map_items
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig
from specmorph.io.atomic import atomic_dir
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash, read_product
from specmorph.models.checkpoint import save_checkpoint
from specmorph.models.config import ModelConfig
from specmorph.params import build, profile_block, typed
from specmorph.sections import EvaluateSection
from specmorph.stage_utils import params_of, stage_args, without_timing, write_metrics
from specmorph.training.budget import Budget, CvtBudget, CvtSection, TrainSection
from specmorph.training.dataset import build_set
from specmorph.training.loop import TrainParams, network_executor, train_and_predict

MODELS = {"cvt": "cvt", "resnet": "rgb"}  # name in metrics and checkpoints -> ModelConfig kind
KEYS = ["accuracy", "macro_precision", "macro_recall", "macro_f1"] + [f"per_class.{c}.f1" for c in FIVE_CLASSES]


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table"), ("--segmented", "segment product"),
                      ("--models-dir", "checkpoints"), ("--metrics", "metrics JSON"), ("--plot", "CvT confusion CSV"),
                      ("--gradcam-dir", "CvT Grad-CAM gallery"))
    params, section = params_of(args.params, "cvt")
    p, t = build(CvtSection, section, "cvt"), typed(params, "train", TrainSection)
    ev = typed(params, "evaluate", EvaluateSection)
    seeds = list(ev.seeds)
    table = read_table(args.images, ["id_str", "galaxy_id", "source", "class5", "split", "califa_name"],
                       dtype={"id_str": str, "galaxy_id": str, "class5": str, "califa_name": str})
    rows = table[(table["source"] == "gz2") & table["class5"].isin(FIVE_CLASSES)].copy()
    rows["label"] = rows["class5"].map(FIVE_CLASSES.index)  # build_set reads `label`: 5-class indices here
    counts = {split: {c: int((rows.loc[rows["split"] == split, "class5"] == c).sum()) for c in FIVE_CLASSES}
              for split in ("train", "test")}
    if missing := [c for c, n in counts["train"].items() if n == 0]:
        raise InputError(
            f"{args.images}: no GZ2 training image of the 5-class subset in class(es) {', '.join(missing)}"
        )
    seg, seg_ids, _ = read_product(args.segmented, ["images"])
    budget, resnet = build(CvtBudget, *profile_block(params, "cvt.budget")), build(Budget, *profile_block(
        params, "train.budget"))
    size, crop = budget.image_size, p.crop_fraction
    train, test = (build_set(rows[rows["split"] == split], seg["images"], seg_ids, np.zeros((0, 1), np.float32), [],
                             size, crop) for split in ("train", "test"))
    preprocess = PreprocessConfig(size=size, crop_fraction=crop, segment=True,
                                  segment_params=typed(params, "segment", SegmentParams)).to_dict()
    cfgs = {name: ModelConfig(kind=kind, n_classes=len(FIVE_CLASSES), label_cols=FIVE_CLASSES, image_size=size,
                              depth=resnet.depth, width=resnet.width, feature_dim=t.feature_dim,
                              head_hidden=t.head_hidden, cvt_dims=budget.dims, cvt_depths=budget.depths,
                              cvt_heads=budget.heads, preprocess=preprocess) for name, kind in MODELS.items()}
    executor, threads = network_executor(t.workers)
    recipe = TrainParams(epochs=budget.epochs, batch_size=p.batch_size, lr=p.lr, weight_decay=p.weight_decay,
                         seed=0, num_threads=threads)  # seed: each item's own
    task = partial(train_and_predict, cfgs=cfgs, recipe=recipe, train=train.data, test_images=test.data.images,
                   tta=ev.tta)
    done = map_items(task, [(seed, name) for seed in seeds for name in MODELS], executor, "cvt", unit="network")
    models_dir = Path(args.models_dir)
    results: dict[str, dict] = {name: {} for name in MODELS}
    cvt_pred = []  # per seed, (n_test,) class indices, pooled into the confusion CSV
    with atomic_dir(models_dir) as work_dir:  # renamed to models_dir only once every model is saved
        for seed, name, model, history, pred in done:
            results[name][seed] = classification_metrics(test.data.labels.numpy(), pred, FIVE_CLASSES)
            if name == "cvt":
                cvt_pred.append(pred)
            save_checkpoint(work_dir / f"{name}_seed{seed}.pt", model, cfgs[name],
                            {"seed": seed, "history": without_timing(history), "params_hash": params_hash(section),
                             "n_train": len(train.table), "test_accuracy": results[name][seed]["accuracy"]})
    gradcam_galleries(models_dir / f"cvt_seed{seeds[0]}.pt", TestSet("test", test.data.images.numpy(),
                      test.data.labels.numpy(), test.table["galaxy_id"].to_numpy()), args.gradcam_dir, 4)
    write_confusion_csv(np.tile(test.data.labels.numpy(), len(seeds)), np.concatenate(cvt_pred), list(FIVE_CLASSES),
                        args.plot)
    write_metrics({"seeds": seeds, "tta": ev.tta, "n_train": len(train.table), "n_test": len(test.table),
                   "n_train_galaxies": int(train.table["galaxy_id"].nunique()),
                   "n_test_galaxies": int(test.table["galaxy_id"].nunique()), "class_counts": counts,
                   **{name: aggregate_seeds(list(results[name].values()), KEYS) for name in MODELS},
                   "cvt_minus_resnet": compare(results["resnet"], results["cvt"], KEYS)["metrics"]}, args.metrics)


if __name__ == "__main__":
    main()
