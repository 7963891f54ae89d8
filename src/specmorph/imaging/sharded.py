"""The segment stage's per-image work: shards of (id, path) rows segmented on an executor, merged into one product."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np

from specmorph.executor import ExecutorParams, map_shards
from specmorph.imaging.segment import SegmentParams, segment
from specmorph.io.images import read_image
from specmorph.io.shards import ShardWriter, merge_shards, shard_dir, shard_path
from specmorph.params import ParamsError


def segment_shard(sp: SegmentParams, directory: str, index: int, rows: list[tuple[str, str]]
                  ) -> tuple[str, tuple[list[int], list[float]]]:
    """An executor task: (id_str, path) rows segmented into shard `index`; returns it and its counts:
    [degenerate, empty, mask pixels, deblended (a source removed), ambiguous] and each image's flux removed."""
    counts, fluxes = [0] * 5, []
    with ShardWriter(shard_path(directory, index)) as writer:
        for id_str, path in rows:
            r = segment(read_image(path), sp)
            writer.append(id_str, {"images": np.asarray(r.image, np.uint8), "masks": np.asarray(r.mask, bool),
                                   "degenerate": np.bool_(r.degenerate), "threshold": np.float32(r.threshold),
                                   "n_removed": np.int32(r.n_removed), "flux_removed": np.float32(r.flux_removed),
                                   "ambiguous": np.bool_(r.ambiguous)})
            pixels = int(np.count_nonzero(r.mask))
            row = [r.degenerate, pixels == 0, pixels, r.n_removed > 0, r.ambiguous]
            counts = [c + int(v) for c, v in zip(counts, row, strict=True)]
            fluxes.append(r.flux_removed)
    return str(writer.path), (counts, fluxes)


def segment_all(rows: list[tuple[str, str]], sp: SegmentParams, out_path: str | Path, executor: ExecutorParams,
                params_hash: str) -> dict[str, float]:
    """Segments every (id_str, absolute path) row into the HDF5 product `out_path` (images, masks, flags).

    The product is the same for every executor and shard size. Returns the stage's metrics: n_images,
    degenerate_fraction, empty_fraction, mean_mask_fraction, and of deblending (`SegmentParams.deblend`):
    deblended_fraction (masks from which another source was removed), mean_flux_removed (its share of the
    component's flux, over all images) and ambiguous_fraction (targets with a comparable source at the centre).
    """
    if sp.out_size is None:
        raise ParamsError("params.yaml: segment.out_size must be set (all images share one size in the product)")
    with shard_dir(out_path) as directory:
        parts = map_shards(partial(segment_shard, sp, str(directory)), rows, executor, desc="segment", unit="img")
        attrs = {"image_units": "uint8 RGB, masked", "out_size": sp.out_size}
        merge_shards([path for path, _ in parts], out_path, attrs, stage="segment", params_hash=params_hash)
    n, pixels = len(rows), len(rows) * sp.out_size**2
    degenerate, empty, masked, deblended, ambiguous = (sum(c[k] for _, (c, _) in parts) for k in range(5))
    flux = math.fsum(f for _, (_, fluxes) in parts for f in fluxes)  # exact: the same for any shard size
    return {"n_images": n, "degenerate_fraction": degenerate / n, "empty_fraction": empty / n,
            "mean_mask_fraction": masked / pixels, "deblend": sp.deblend, "deblended_fraction": deblended / n,
            "mean_flux_removed": flux / n, "ambiguous_fraction": ambiguous / n}
