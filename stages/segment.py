"""Stage `segment`: isolate each galaxy by triangle thresholding; masked images and masks to HDF5."""

import os

from specmorph.executor import executor_params
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.sharded import segment_all
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash
from specmorph.params import build
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table (labels stage)"), ("--out", "HDF5 product"),
                      ("--metrics", "metrics JSON"))
    params, p = params_of(args.params, "segment")
    table = read_table(args.images, ["id_str", "path"], dtype={"id_str": str})
    rows = [(i, os.path.abspath(path)) for i, path in zip(table["id_str"], table["path"], strict=True)]
    metrics = segment_all(rows, build(SegmentParams, p, "segment"), args.out, executor_params(params), params_hash(p))
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
