"""Stage `prepare_cubes`: every cube masked, resampled to a fixed grid, channel-selected, normalised → HDF5."""

from specmorph.executor import executor_params
from specmorph.io.catalogs import cube_paths, read_morphology, survey_dataset
from specmorph.io.hdf5 import params_hash
from specmorph.spectral.cubeprep import CubePrep, prepare_all
from specmorph.stage_utils import params_of, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--morphology", "CALIFA morphology table"), ("--cube-dir", "cube directory"),
                      ("--out", "prepared cubes (HDF5)"))
    params, p = params_of(args.params, "prepare_cubes")
    prep = CubePrep.from_dict(p)
    executor = executor_params(params)
    morphology = read_morphology(args.morphology)
    prepare_all(cube_paths(morphology, args.cube_dir), prep, args.out, stage="prepare_cubes",
                params_hash=params_hash(p), executor=executor, arrays=survey_dataset(morphology["survey"]))


if __name__ == "__main__":
    main()
