"""A Galaxy Zoo DESI vote table (and its images) as the GZ2 table and image folder that `ingest.local` reads.

Writes a Hart+16-layout CSV (`catalog.gz_desi.gz_desi_as_gz2`: dr7objid, ra, dec, gz2_class, the 5-class
vote columns, dr8_id) and, with --image-dir, links each row's GZ DESI image `<dr8_id>.jpg` (flat, or in
`<brickid>/` folders as the GZ DESI release lays them out) to `<out-image-dir>/<dr7objid>.jpg`. Point
`ingest.local.gz2_catalog_path` and `gz2_image_dir` at the two outputs.

Usage: python tools/gz_desi_to_gz2.py GZ_DESI_TABLE OUT_CSV [--image-dir DIR --out-image-dir DIR]
(GZ_DESI_TABLE: CSV or Parquet with `catalog.gz_desi.REQUIRED_COLUMNS`.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specmorph.catalog.gz_desi import REQUIRED_COLUMNS, gz_desi_as_gz2
from specmorph.catalog.labels import map_catalog
from specmorph.errors import InputError
from specmorph.io.catalogs import read_table, write_table
from specmorph.remote.jobs import link_or_copy
from specmorph.taxonomy import CLASSES


def link_images(table, image_dir: Path, out_dir: Path) -> list[str]:
    """Links `<dr8_id>.jpg` (flat or under `<brickid>/`) to `<dr7objid>.jpg`; returns the dr8_ids without one."""
    missing = []
    for dr8_id, objid in zip(table["dr8_id"], table["dr7objid"], strict=True):
        found = [p for p in (image_dir / f"{dr8_id}.jpg", image_dir / dr8_id.split("_")[0] / f"{dr8_id}.jpg")
                 if p.is_file()]
        if found:
            link_or_copy(found[0], out_dir / f"{objid}.jpg")
        else:
            missing.append(dr8_id)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--image-dir", type=Path)
    parser.add_argument("--out-image-dir", type=Path)
    args = parser.parse_args(argv)
    if (args.image_dir is None) != (args.out_image_dir is None):
        parser.error("--image-dir and --out-image-dir go together")
    try:
        table = gz_desi_as_gz2(read_table(args.table, REQUIRED_COLUMNS, dtype={"dr8_id": str}))
    except InputError as err:
        print(f"gz_desi_to_gz2: {args.table}: {err}", file=sys.stderr)
        return 1
    missing = link_images(table, args.image_dir, args.out_image_dir) if args.image_dir else []
    if missing:
        print(f"gz_desi_to_gz2: {args.image_dir}: {len(missing)} of {len(table)} rows have no image, e.g. "
              f"{', '.join(missing[:5])}; their rows are left out", file=sys.stderr)
        table = table[~table["dr8_id"].isin(set(missing))]
    write_table(table, args.out)
    labels, excluded = map_catalog(table)
    counts = labels[labels >= 0].map(lambda i: CLASSES[i]).value_counts().to_dict()
    print(f"{len(table)} rows -> {args.out}: {counts}; left out of the 8 classes: {excluded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
