"""Stage `segment`: isolate each galaxy by triangle thresholding; masked images and masks to HDF5."""

import os
from functools import partial

import numpy as np

from specmorph.executor import executor_params, map_shards
from specmorph.imaging.segment import SegmentParams, segment
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash
from specmorph.io.images import read_image
from specmorph.io.shards import ShardWriter, merge_shards, shard_dir, shard_path
from specmorph.params import build
from specmorph.stage_utils import params_of, stage_args, write_metrics


def segment_shard(sp: SegmentParams, directory: str, index: int, rows: list[tuple[str, str]]) -> tuple[str, list[int]]:
    """An executor task: (id_str, path) rows segmented into shard `index`; returns it, [degenerate, empty, pixels]."""
    counts = [0, 0, 0]
    with ShardWriter(shard_path(directory, index)) as writer:
        for id_str, path in rows:
            r = segment(read_image(path), sp)
            writer.append(id_str, {"images": np.asarray(r.image, np.uint8), "masks": np.asarray(r.mask, bool),
                                   "degenerate": np.bool_(r.degenerate), "threshold": np.float32(r.threshold)})
            pixels = int(np.count_nonzero(r.mask))
            counts = [counts[0] + bool(r.degenerate), counts[1] + (pixels == 0), counts[2] + pixels]
    return str(writer.path), counts


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table (labels stage)"), ("--out", "HDF5 product"),
                      ("--metrics", "metrics JSON"))
    params, p = params_of(args.params, "segment")
    sp = build(SegmentParams, p, "segment")
    if sp.out_size is None:
        raise ValueError("params.yaml: segment.out_size must be set (all images share one size in the product)")
    executor = executor_params(params)
    table = read_table(args.images, ["id_str", "path"], dtype={"id_str": str})
    rows = [(i, os.path.abspath(path)) for i, path in zip(table["id_str"], table["path"], strict=True)]
    with shard_dir(args.out) as directory:
        parts = map_shards(partial(segment_shard, sp, str(directory)), rows, executor, desc="segment", unit="img")
        attrs = {"image_units": "uint8 RGB, masked", "out_size": sp.out_size}
        merge_shards([path for path, _ in parts], args.out, attrs, stage="segment", params_hash=params_hash(p))
    n, pixels = len(rows), len(rows) * sp.out_size**2
    degenerate, empty, masked = (sum(counts[k] for _, counts in parts) for k in range(3))
    write_metrics({"n_images": n, "degenerate_fraction": degenerate / n, "empty_fraction": empty / n,
                   "mean_mask_fraction": masked / pixels}, args.metrics)


if __name__ == "__main__":
    main()
