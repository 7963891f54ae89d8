"""Stage `segment`: isolate each galaxy by triangle thresholding; masked images and masks to HDF5."""

import numpy as np
from tqdm import tqdm

from specmorph.imaging.segment import SegmentParams, segment
from specmorph.io.catalogs import read_table
from specmorph.io.hdf5 import params_hash, write_product
from specmorph.io.images import read_image
from specmorph.params import build
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table (labels stage)"), ("--out", "HDF5 product"),
                      ("--metrics", "metrics JSON"))
    _, p = params_of(args.params, "segment")
    sp = build(SegmentParams, p, "segment")
    if sp.out_size is None:
        raise ValueError("params.yaml: segment.out_size must be set (all images share one size in the product)")
    table = read_table(args.images, ["id_str", "path"], dtype={"id_str": str})
    n, s = len(table), sp.out_size
    images = np.zeros((n, s, s, 3), np.uint8)
    masks = np.zeros((n, s, s), bool)
    degenerate = np.zeros(n, bool)
    thresholds = np.zeros(n, np.float32)
    for i, path in enumerate(tqdm(table["path"], desc="segment", unit="img", mininterval=2)):
        result = segment(read_image(path), sp)
        images[i], masks[i] = result.image, result.mask
        degenerate[i], thresholds[i] = result.degenerate, result.threshold
    write_product(args.out, {"images": images, "masks": masks, "degenerate": degenerate, "threshold": thresholds},
                  table["id_str"].tolist(), {"image_units": "uint8 RGB, masked", "out_size": s},
                  stage="segment", params_hash=params_hash(p))
    empty = masks.reshape(n, -1).sum(axis=1) == 0
    write_metrics({"n_images": n, "degenerate_fraction": float(degenerate.mean()),
                   "empty_fraction": float(empty.mean()),
                   "mean_mask_fraction": float(masks.mean())}, args.metrics)


if __name__ == "__main__":
    main()
