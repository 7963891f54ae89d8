"""Stage `prepare_cubes`: every cube masked, resampled to a fixed grid, channel-selected, normalised → HDF5."""

from pathlib import Path

from specmorph.executor import executor_params
from specmorph.io.catalogs import read_morphology
from specmorph.io.hdf5 import params_hash
from specmorph.io.layout import cube_file
from specmorph.spectral.cubeprep import CubePrep, prepare_all
from specmorph.stage_utils import params_of, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--morphology", "CALIFA morphology table"), ("--cube-dir", "cube directory"),
                      ("--out", "prepared cubes (HDF5)"))
    params, p = params_of(args.params, "prepare_cubes")
    prep = CubePrep.from_dict(p)
    executor = executor_params(params)
    morphology = read_morphology(args.morphology)
    names = morphology["id_str"].tolist()
    paths = [Path(args.cube_dir) / cube_file(n, s) for n, s in zip(names, morphology["survey"], strict=True)]
    prepare_all(paths, prep, args.out, stage="prepare_cubes", params_hash=params_hash(p), executor=executor)


if __name__ == "__main__":
    main()
