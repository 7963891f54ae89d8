"""Stage `spectra`: integrated cube spectra (streamed), PCA fitted on non-test galaxies, 12-d features."""

import numpy as np

from specmorph.evaluation.plots import write_curves_csv
from specmorph.io.catalogs import cube_paths, read_morphology, read_table, survey_dataset
from specmorph.io.cubes import iter_spectra
from specmorph.io.hdf5 import params_hash, write_product
from specmorph.params import build
from specmorph.sections import SpectraSection
from specmorph.spectral.pca import fit_pca
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--morphology", "CALIFA morphology table"), ("--cube-dir", "cube directory"),
                      ("--images", "image table (for the test split)"), ("--out", "HDF5 features"),
                      ("--plot", "explained-variance CSV"), ("--metrics", "metrics JSON"))
    _, section = params_of(args.params, "spectra")
    p = build(SpectraSection, section, "spectra")
    morphology = read_morphology(args.morphology)
    names, paths = morphology["id_str"].tolist(), cube_paths(morphology, args.cube_dir)
    window = p.window or None  # () and null: the whole range
    rows = list(iter_spectra(paths, window, p.bin_factor, p.aperture))
    wave = rows[0][1]
    spectra = np.stack([spec for _, _, spec in rows])  # (N, n_wave), normalised
    table = read_table(args.images, ["galaxy_id", "split"], dtype={"galaxy_id": str})
    test = set(table.loc[table["split"] == "test", "galaxy_id"])
    fit_rows = np.array([n not in test for n in names])
    model = fit_pca(spectra[fit_rows], p.n_components, wave=wave)
    features = model.transform(spectra).astype(np.float32)  # (N, k)
    # float32, as the features: float64 results that differ by a few ulps between BLAS builds agree there
    evr = np.asarray(model.explained_variance_ratio, np.float32)
    attrs = {"units": "PCA coefficients of median-normalised spectra", "n_fit": int(fit_rows.sum()),
             "fit_on": "galaxies not in the test split"}
    arrays = {"features": features, "explained_variance_ratio": evr, "wave": wave,
              **survey_dataset(morphology["survey"])}
    write_product(args.out, arrays, names, attrs, stage="spectra", params_hash=params_hash(section))
    write_curves_csv({"explained_variance_ratio": evr.tolist(), "cumulative": np.cumsum(evr).tolist()},
                     args.plot, steps=list(range(1, len(evr) + 1)))
    write_metrics({"n_galaxies": len(names), "n_fit": int(fit_rows.sum()), "n_channels": len(wave),
                   "explained_variance_cumulative": float(evr.sum(dtype=np.float32))}, args.metrics)


if __name__ == "__main__":
    main()
