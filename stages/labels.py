"""Stage `labels`: 8-class labels from gz2_class, high-confidence 5-class subset, grouped train/test split."""

from specmorph.catalog.sample import attach_gz2_images, build_image_table
from specmorph.catalog.selection import REQUIRED_COLUMNS, HighConfidence
from specmorph.io.catalogs import read_cutout_index, read_gz2, read_morphology, read_table, write_table
from specmorph.params import build, shared
from specmorph.sections import LabelsSection
from specmorph.stage_utils import params_of, relative_paths, stage_args, write_metrics

ID_COLUMNS = ["califa", "gz2"]
ID_TYPES = {"califa": str, "gz2": str}


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--morphology", "CALIFA morphology table"),
                      ("--cutout-index", "SDSS cutout index"), ("--gz2", "GZ2 catalogue"),
                      ("--gz2-image-dir", "GZ2 images"), ("--matched", "crossmatch table"),
                      ("--duplicates", "crossmatch duplicates"), ("--out", "image table (CSV)"),
                      ("--metrics", "metrics JSON"))
    params, section = params_of(args.params, "labels")
    p = build(LabelsSection, section, "labels")
    thresholds = build(HighConfidence, p.high_confidence or {}, "labels.high_confidence")
    gz2 = attach_gz2_images(read_gz2(args.gz2, columns=list(REQUIRED_COLUMNS)), args.gz2_image_dir)
    matched = read_table(args.matched, ID_COLUMNS, dtype=ID_TYPES)
    duplicates = read_table(args.duplicates, ID_COLUMNS, dtype=ID_TYPES, allow_empty=True)
    table, report = build_image_table(read_morphology(args.morphology), read_cutout_index(args.cutout_index), gz2,
                                      matched, duplicates, thresholds, p.test_frac, shared(params).seed)
    table["path"] = relative_paths(table["path"])  # portable across clones
    write_table(table, args.out)
    write_metrics(report, args.metrics)


if __name__ == "__main__":
    main()
