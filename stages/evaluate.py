"""Stage `evaluate`: RGB-only test on held-out GZ2 galaxies and Galaxy10, baseline vs fusion over seeds."""

from pathlib import Path

import numpy as np

from specmorph.evaluation.crossdataset import galaxy10_holdout, galaxy10_inputs, score
from specmorph.evaluation.plots import write_confusion_csv
from specmorph.evaluation.report import aggregate_seeds, compare
from specmorph.imaging.transforms import PreprocessConfig
from specmorph.io.catalogs import read_table
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.hdf5 import read_product
from specmorph.models.checkpoint import load_checkpoint
from specmorph.stage_utils import params_of, stage_args, write_metrics
from specmorph.taxonomy import CLASSES
from specmorph.training.dataset import build_set

KINDS = ("rgb", "concat")
KEYS = ["accuracy", "macro_precision", "macro_recall", "macro_f1"]


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table"), ("--segmented", "segment product"),
                      ("--models-dir", "checkpoints"), ("--galaxy10", "Galaxy10 DECaLS file"),
                      ("--metrics", "metrics JSON"), ("--plot-dir", "confusion CSVs"))
    params, p = params_of(args.params, "evaluate")
    seeds = [int(s) for s in p["seeds"]]
    table = read_table(args.images, ["id_str", "galaxy_id", "source", "label", "split", "ra", "dec"],
                       dtype={"id_str": str, "galaxy_id": str, "califa_name": str})
    seg, seg_ids, _ = read_product(args.segmented, ["images"])
    test_rows = table[(table["split"] == "test") & (table["source"] == "gz2")]
    g10 = open_galaxy10(args.galaxy10)
    seen = table[table["galaxy_id"].isin(set(table.loc[table["split"] == "train", "galaxy_id"]))]
    g10_rows, n_seen = galaxy10_holdout(g10, seen, float(params["crossmatch"]["radius_arcsec"]))
    results: dict[str, dict] = {kind: {} for kind in KINDS}
    results10: dict[str, dict] = {kind: {} for kind in KINDS}
    test_set, g10_inputs = None, None
    for kind in KINDS:
        for seed in seeds:
            model, cfg, _ = load_checkpoint(Path(args.models_dir) / f"{kind}_seed{seed}.pt")
            pre = PreprocessConfig.from_dict(cfg.preprocess)
            if test_set is None:
                test_set = build_set(test_rows, seg["images"], seg_ids, np.zeros((0, 1), np.float32), [],
                                     pre.size, pre.crop_fraction)
                g10_inputs = galaxy10_inputs(g10, g10_rows, pre)
            results[kind][seed] = score(model, test_set.data.images.numpy(), test_set.data.labels.numpy())
            results10[kind][seed] = score(model, *g10_inputs)
    g10.close()
    plot_dir = Path(args.plot_dir)
    for kind in KINDS:
        runs = list(results[kind].values())
        write_confusion_csv([t for r in runs for t in r["y_true"]], [q for r in runs for q in r["y_pred"]],
                            list(CLASSES), plot_dir / f"confusion_{kind}.csv")
    per_class = [f"per_class.{c}.f1" for c in CLASSES]
    report = {
        "seeds": seeds, "n_test_images": len(test_rows), "n_test_galaxies": int(test_rows["galaxy_id"].nunique()),
        "n_galaxy10": len(g10_rows), "n_galaxy10_seen_in_training_dropped": n_seen,
        "gz2_test": {kind: aggregate_seeds(list(results[kind].values()), KEYS + per_class) for kind in KINDS},
        "gz2_test_concat_minus_rgb": compare(results["rgb"], results["concat"], KEYS)["metrics"],
        "galaxy10": {kind: aggregate_seeds(list(results10[kind].values()), KEYS) for kind in KINDS},
        "galaxy10_concat_minus_rgb": compare(results10["rgb"], results10["concat"], KEYS)["metrics"],
    }
    write_metrics(report, args.metrics)


if __name__ == "__main__":
    main()
