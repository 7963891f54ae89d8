"""Stage `pca_rf`: Random Forest on the PCA spectral features → CALIFA coarse Hubble classes."""

import numpy as np

from specmorph.catalog.labels import CALIFA_COARSE, califa_coarse
from specmorph.evaluation.plots import write_confusion_csv
from specmorph.evaluation.report import aggregate_seeds
from specmorph.io.catalogs import read_morphology
from specmorph.io.hdf5 import read_product
from specmorph.params import build, typed
from specmorph.sections import EvaluateSection, PcaRfSection
from specmorph.spectral.baseline import drop_rare_classes, rf_baseline
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--features", "PCA features (spectra stage)"),
                      ("--morphology", "CALIFA morphology table"), ("--metrics", "metrics JSON"),
                      ("--plot", "confusion CSV"))
    params, section = params_of(args.params, "pca_rf")
    p = build(PcaRfSection, section, "pca_rf")
    arrays, names, _ = read_product(args.features, ["features"])
    morph = read_morphology(args.morphology).set_index("id_str")
    coarse = np.array([califa_coarse(morph.loc[n, "hubtyp"] or "U") for n in names])
    known = np.flatnonzero(coarse != "U")
    frequent, dropped = drop_rare_classes(coarse[known], p.min_class_size)
    keep = known[frequent]
    classes = [c for c in CALIFA_COARSE if c in set(coarse[keep])]
    seeds = list(typed(params, "evaluate", EvaluateSection).seeds)
    runs = rf_baseline(arrays["features"][keep], coarse[keep], classes, p.test_frac, seeds, p.n_estimators)
    write_confusion_csv([t for r in runs for t in r["y_true"]], [q for r in runs for q in r["y_pred"]], classes,
                        args.plot)
    summary = aggregate_seeds([{k: r[k] for k in ("accuracy", "macro_f1")} for r in runs])
    write_metrics({"classes": classes, "n_galaxies": len(keep), "seeds": seeds, **summary,
                   "dropped_classes": dropped}, args.metrics)


if __name__ == "__main__":
    main()
