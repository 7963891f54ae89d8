"""Stage `evaluate`: RGB-only tests of the baseline and the guided model over seeds; the ablation; Grad-CAM.

One more set, `gz2_test_matched_spectra`, gives a guided network that takes spectra (concat, gated)
the test galaxies' spectral features as well: what spectra add where a cube exists (the positive
control of README "Does spectral guidance help" is judged there).
"""

from pathlib import Path

import numpy as np

from specmorph.evaluation.crossdataset import galaxy10_holdout, galaxy10_inputs
from specmorph.evaluation.plots import write_confusion_csv
from specmorph.evaluation.study import (
    TestSet,
    ablations,
    gradcam_galleries,
    label_ceiling,
    predict_all,
    scores,
)
from specmorph.imaging.transforms import PreprocessConfig
from specmorph.io.catalogs import read_table
from specmorph.io.galaxy10 import open_galaxy10
from specmorph.io.hdf5 import read_product
from specmorph.models.checkpoint import load_checkpoint
from specmorph.models.config import SPECTRAL_KINDS
from specmorph.params import build, shared, typed
from specmorph.sections import CrossmatchSection, EvaluateSection
from specmorph.stage_utils import params_of, stage_args, write_metrics
from specmorph.taxonomy import CLASSES
from specmorph.training.budget import TrainSection
from specmorph.training.dataset import build_set
from specmorph.training.guided import BASELINE, plan


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table"), ("--segmented", "segment product"),
                      ("--models-dir", "checkpoints"), ("--features", "spectral embeddings (embed stage)"),
                      ("--galaxy10", "Galaxy10 DECaLS file"),
                      ("--metrics", "metrics JSON"), ("--ablation", "ablation JSON"), ("--plot-dir", "plots"),
                      ("--truth-dir", "mock truth tables (absent for real data/raw: no label ceiling)"))
    params, section = params_of(args.params, "evaluate")
    p = build(EvaluateSection, section, "evaluate")
    top = shared(params)
    seeds, model = list(p.seeds), top.model
    train = typed(params, "train", TrainSection)
    jobs = plan(model, train.rgb_inference)
    names = [job.name for job in jobs]
    table = read_table(args.images, ["id_str", "galaxy_id", "source", "label", "split", "ra", "dec", "califa_name"],
                       dtype={"id_str": str, "galaxy_id": str, "califa_name": str})
    seg, seg_ids, _ = read_product(args.segmented, ["images"])
    test_rows = table[(table["split"] == "test") & (table["source"] == "gz2")]
    _, cfg, _ = load_checkpoint(Path(args.models_dir) / f"{BASELINE}_seed{seeds[0]}.pt")
    pre = PreprocessConfig.from_dict(cfg.preprocess)
    feats, feat_ids, _ = read_product(args.features, ["embedding"])
    gz2 = build_set(test_rows, seg["images"], seg_ids, feats["embedding"], feat_ids, pre.size, pre.crop_fraction)
    matched = np.asarray(gz2.data.has_spec)  # held-out galaxies with an eCALIFA cube (the seed's test)
    g10 = open_galaxy10(args.galaxy10)
    seen = table[table["galaxy_id"].isin(set(table.loc[table["split"] == "train", "galaxy_id"]))]
    g10_rows, n_seen = galaxy10_holdout(g10, seen, typed(params, "crossmatch", CrossmatchSection).radius_arcsec)
    g10_images, g10_labels = galaxy10_inputs(g10, g10_rows, pre)
    g10.close()
    images, labels, groups = gz2.data.images.numpy(), gz2.data.labels.numpy(), gz2.table["galaxy_id"].to_numpy()
    sets = [TestSet("gz2_test", images, labels, groups),
            TestSet("gz2_test_matched", images[matched], labels[matched], groups[matched]),
            TestSet("gz2_test_matched_spectra", images[matched], labels[matched], groups[matched],
                    gz2.data.spec.numpy()[matched]),
            TestSet("galaxy10", g10_images, g10_labels, np.array([f"g10_{i}" for i in g10_rows]))]
    if jobs[-1].kind not in SPECTRAL_KINDS:  # a guided network that never sees spectra: nothing to add
        sets = [t for t in sets if t.spec is None]
    preds = predict_all(args.models_dir, names, seeds, sets, p.tta)
    guided = names[-1]
    plot_dir = Path(args.plot_dir)
    for role, name in (("rgb_only", BASELINE), ("guided", guided)):
        runs = preds[name]["gz2_test"].values()
        write_confusion_csv(np.concatenate([labels] * len(seeds)), np.concatenate(list(runs)), list(CLASSES),
                            plot_dir / f"confusion_{role}.csv")
        gradcam_galleries(Path(args.models_dir) / f"{name}_seed{seeds[0]}.pt", sets[0], plot_dir / "gradcam" / role,
                          p.gradcam_per_row)
    ceiling = label_ceiling(args.truth_dir, gz2.table["id_str"], labels, {n: preds[n]["gz2_test"] for n in names})
    write_metrics({"model": model, "guided": guided, "seeds": seeds, "tta": p.tta,
                   "n_galaxy10_seen_in_training_dropped": n_seen,
                   "label_ceiling": ceiling,
                   **{t.name: {n: scores(preds[n][t.name], t.labels) for n in names} for t in sets}}, args.metrics)
    write_metrics({"model": model, "embedder": top.embedder, "rgb_inference": train.rgb_inference,
                   "teacher_spectra": train.teacher_spectra, "baseline": BASELINE, "guided": guided,
                   "label_ceiling": ceiling,
                   **ablations(preds, BASELINE, guided, sets, p.bootstrap, top.seed)}, args.ablation)


if __name__ == "__main__":
    main()
