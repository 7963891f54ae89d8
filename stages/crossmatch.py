"""Stage `crossmatch`: eCALIFA × Galaxy Zoo 2 by RA/Dec, one-to-one, nearest wins."""

from pathlib import Path

from specmorph.catalog.crossmatch import crossmatch, match_stats, require_matches
from specmorph.io.catalogs import read_gz2, read_morphology, write_table
from specmorph.params import build
from specmorph.sections import CrossmatchSection
from specmorph.stage_utils import params_of, stage_args, write_metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--morphology", "CALIFA morphology table"),
                      ("--gz2", "GZ2 catalogue"), ("--out", "matched table (CSV)"),
                      ("--duplicates", "unaccepted pairs within the radius (CSV)"), ("--metrics", "metrics JSON"))
    _, p = params_of(args.params, "crossmatch")
    radius = build(CrossmatchSection, p, "crossmatch").radius_arcsec
    califa = read_morphology(args.morphology).rename(columns={"id_str": "califa"})
    gz2 = read_gz2(args.gz2, columns=[]).rename(columns={"id_str": "gz2"})
    matched, duplicates = crossmatch(califa, gz2, radius, left_id="califa", right_id="gz2",
                                     left_name=Path(args.morphology).name, right_name=Path(args.gz2).name)
    require_matches(matched, Path(args.morphology).name, Path(args.gz2).name, radius)
    write_table(matched, args.out)
    write_table(duplicates, args.duplicates)
    write_metrics({**match_stats(matched, duplicates), "n_califa": len(califa), "radius_arcsec": radius},
                  args.metrics)


if __name__ == "__main__":
    main()
