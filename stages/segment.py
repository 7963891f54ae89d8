"""Stage `segment`: isolate each galaxy (triangle threshold, deblending); masked images and masks to HDF5.

Its metrics also judge the deblending on real cutouts (`segment_check.real_dir`, a param, not a DVC dep:
after changing its files, re-run with `dvc repro -f -s segment`).
"""

import os

from specmorph.executor import executor_params
from specmorph.imaging.deblend_check import changed_on_real, check_labels
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.sharded import segment_all
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash
from specmorph.params import build, typed
from specmorph.sections import SegmentCheckSection
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table (labels stage)"), ("--out", "HDF5 product"),
                      ("--metrics", "metrics JSON"))
    params, p = params_of(args.params, "segment")
    table = read_table(args.images, ["id_str", "path"], dtype={"id_str": str})
    rows = [(i, os.path.abspath(path)) for i, path in zip(table["id_str"], table["path"], strict=True)]
    sp, executor = build(SegmentParams, p, "segment"), executor_params(params)
    metrics = segment_all(rows, sp, args.out, executor, params_hash(p))
    real_dir = typed(params, "segment_check", SegmentCheckSection).real_dir
    metrics["real_dev"] = {"hand_labels": check_labels(real_dir, sp),
                           "all_images": changed_on_real(real_dir, sp, executor)}
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
