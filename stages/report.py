"""Stage `report`: one self-contained HTML page of the run (the same page as `specmorph report`)."""

from specmorph.evaluation.html_report import write_report
from specmorph.stage_utils import stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--metrics-dir", "metrics directory"), ("--plots-dir", "plots directory"),
                      ("--docs-dir", "docs (segmentation examples)"), ("--out", "HTML page"))
    write_report(args.out, args.metrics_dir, args.plots_dir, args.docs_dir)


if __name__ == "__main__":
    main()
