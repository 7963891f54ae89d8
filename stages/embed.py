"""Stage `embed`: spectral embeddings by the top-level `embedder` (pca | siamese | sae | dsca), and their quality."""

from pathlib import Path

import numpy as np

from specmorph.catalog.labels import califa_coarse
from specmorph.executor import executor_params
from specmorph.io.catalogs import read_morphology, read_table, survey_dataset, write_table
from specmorph.io.hdf5 import params_hash, read_product, write_product
from specmorph.params import build, shared
from specmorph.spectral.cubeprep import load_prepared
from specmorph.spectral.embedder_io import save_embedder
from specmorph.spectral.embedding import EmbedParams, embed_prepared, fit_embedder, holdout_mask
from specmorph.spectral.quality import embedding_quality, projection_2d
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--cubes", "prepared cubes"), ("--pca", "PCA features"),
                      ("--morphology", "CALIFA morphology table"), ("--images", "image table (test split)"),
                      ("--out", "embeddings (HDF5)"), ("--model-dir", "trained embedder"),
                      ("--projection", "2-D projection CSV"), ("--metrics", "metrics JSON"))
    params, section = params_of(args.params, "embed")
    top = shared(params)
    kind, seed = top.embedder, top.seed
    p = build(EmbedParams, section, "embed")
    executor = executor_params(params)
    morph = read_morphology(args.morphology).set_index("id_str")
    table = read_table(args.images, ["galaxy_id", "split"], dtype={"galaxy_id": str})
    test_galaxies = set(table.loc[table["split"] == "test", "galaxy_id"])
    cubes, names, _ = load_prepared(args.cubes)
    coarse = np.array([califa_coarse(morph.loc[n, "hubtyp"] or "U") for n in names])
    classes = sorted(set(coarse))
    labels = np.array([classes.index(c) for c in coarse])
    held = holdout_mask(names, labels, test_galaxies, p.holdout_frac, seed)
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if kind == "pca":
        feats, ids, _ = read_product(args.pca, ["features"])
        order = {n: i for i, n in enumerate(ids)}
        emb = feats["features"][[order[n] for n in names]]
        (model_dir / "README.txt").write_text("embedder: pca (the spectra stage's PCA features); no network\n")
        history = []
    else:
        train = np.asarray(cubes[~held])
        model, cfg, history = fit_embedder(kind, train, labels[~held], len(classes), p, seed)
        save_embedder(model_dir / f"{kind}.pt", model, cfg, {"seed": seed, "classes": classes,
                                                               "n_train": int((~held).sum())})
        emb = embed_prepared(model_dir / f"{kind}.pt", args.cubes, executor)  # the saved model, in shards
    arrays = {"embedding": emb, "held_out": held, **survey_dataset(morph.loc[list(names), "survey"])}
    write_product(args.out, arrays, list(names),
                  {"embedder": kind, "classes": classes, "label_source": "CALIFA coarse Hubble class"},
                  stage="embed", params_hash=params_hash({"embedder": kind, **section}))
    scored = (emb[held], coarse[held], np.asarray(names)[held])
    quality = embedding_quality(*scored, k=p.knn_k, folds=p.folds, seed=seed)
    quality.pop("per_fold", None)
    # The same folds with every dimension standardised (the training part's mean and std, per fold).
    scaled = embedding_quality(*scored, k=p.knn_k, folds=p.folds, seed=seed, standardise=True)
    quality["standardised"] = {k: v for k, v in scaled.items() if k.endswith(("_mean", "_std"))}
    write_table(projection_2d(emb[held], coarse[held], ids=np.asarray(names)[held].tolist()), args.projection)
    write_metrics({"embedder": kind, "n_galaxies": len(names), "n_held_out": int(held.sum()),
                   "n_train": int((~held).sum()), "final_epoch": history[-1] if history else {},
                   **quality}, args.metrics)


if __name__ == "__main__":
    main()
