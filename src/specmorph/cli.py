"""The `specmorph` command: user-facing tools around the pipeline."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from specmorph.errors import InputError
from specmorph.imaging.quality import CENTRE_FRACTION, DETECT_SIGMA, MAX_UPSAMPLE, SKY_GRID


def _contact_sheet(args: argparse.Namespace) -> None:
    from specmorph.sky.contact_sheet import render_contact_sheet

    render_contact_sheet(Path(args.survey_dir), Path(args.out))


def _predict(args: argparse.Namespace) -> None:
    from specmorph.executor import ExecutorParams
    from specmorph.predict import FLAG_COLUMN, rejects_path_for, run_predict, summarize_flags, summarize_skipped

    executor = ExecutorParams(kind=args.executor, address=args.scheduler, workers=args.workers,
                              shard_size=args.shard_size)
    table, skipped = run_predict(args.model, args.inputs, args.out, batch_size=args.batch_size, device=args.device,
                                 executor=executor, strict=args.strict, tta=args.tta)
    if skipped:
        print(f"{summarize_skipped(skipped)}; listed in {rejects_path_for(args.out)}", file=sys.stderr)
    n_flagged = int((table[FLAG_COLUMN] != "").sum())
    if n_flagged:
        print(summarize_flags(table[FLAG_COLUMN].tolist()), file=sys.stderr)
    rows = f" and {n_flagged} flagged row(s)" if n_flagged else ""
    print(f"wrote {len(table) - n_flagged} prediction(s){rows} to {args.out}", file=sys.stderr)


def _report(args: argparse.Namespace) -> None:
    from specmorph.evaluation.html_report import write_report

    report = write_report(args.out, args.metrics_dir, args.plots_dir, args.docs_dir)
    missing = f"; missing inputs, named in the page: {', '.join(report.missing)}" if report.missing else ""
    print(f"wrote {args.out} ({len(report.figures)} figures){missing}", file=sys.stderr)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `specmorph` console script; returns the exit status (2 on bad input)."""
    parser = argparse.ArgumentParser(prog="specmorph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sheet = sub.add_parser("contact-sheet", help="PNG of one galaxy per class: RGB, cube white light, spectrum")
    sheet.add_argument("survey_dir", help="a survey directory, e.g. data/raw")
    sheet.add_argument("--out", default="docs/contact_sheet.png", help="PNG to write")
    sheet.set_defaults(func=_contact_sheet)
    pred = sub.add_parser(
        "predict",
        help="class probabilities for images from a trained checkpoint",
        description="Class probabilities for JPEG/PNG/FITS images, preprocessed exactly as in training. "
        "INPUTS are image files, or one CSV with a 'path' (or 'file') column, relative to the CSV, "
        "and an optional 'id_str' column. Unreadable files are named on stderr, skipped and listed in "
        "<out>.rejects.csv. Each image is "
        "checked first; a flagged image keeps its row with empty probabilities, predicted and confidence, and "
        "the reason in the 'flag' column (empty for classified rows): all_nan (a FITS image without a finite "
        "pixel), constant (one colour in every pixel), too_small (the central crop the network sees would be "
        "enlarged more than "
        f"{MAX_UPSAMPLE:g} times per side), no_central_source (nothing within {CENTRE_FRACTION:.0%} of the short "
        f"side from the centre stands {DETECT_SIGMA:g} sigma above the sky measured in the image's outer "
        f"1/{SKY_GRID}). stderr counts the flagged rows per reason.",
    )
    pred.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, or one CSV file list")
    pred.add_argument("--model", required=True, help="checkpoint (.pt) written by training")
    pred.add_argument("--out", default="predictions.csv", help="CSV to write (default: %(default)s)")
    pred.add_argument("--batch-size", type=_positive_int, default=64, help="images per batch (default: %(default)s)")
    pred.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    pred.add_argument("--executor", choices=("local", "dask"), default="local",
                      help="local: this process; dask: shards of images on Dask workers (default: %(default)s)")
    pred.add_argument("--scheduler", metavar="ADDRESS", default=None,
                      help="with --executor dask: scheduler address, e.g. tcp://host:8786; workers must see the "
                      "model and images at the same paths (default: start a LocalCluster here)")
    pred.add_argument("--workers", type=_positive_int, default=2,
                      help="with --executor dask, no --scheduler: LocalCluster worker processes (default: %(default)s)")
    pred.add_argument("--shard-size", type=_positive_int, default=256,
                      help="images per task, rounded up to whole batches (default: %(default)s)")
    pred.add_argument("--strict", action="store_true",
                      help="a flagged image is an error: name the first flagged files, write nothing, exit 2")
    pred.add_argument("--no-tta", dest="tta", action="store_false",
                      help="classify each image as given, not on the mean of the probabilities over its 8 "
                      "orientations (90° turns and mirrors: the default, as the README's figures are measured); "
                      "8 times less network work")
    pred.set_defaults(func=_predict)
    rep = sub.add_parser("report", help="one self-contained HTML page of a run's metrics and figures",
                         description="One HTML page from metrics/ and plots/ (and docs/): results with spreads, "
                         "the ablation with its intervals and MDE, confusion matrices, learning curves, realism "
                         "figures, Grad-CAM galleries, segmentation examples. Figures are embedded, so the page "
                         "opens in a browser with no server; a missing input is named in the page.")
    rep.add_argument("--metrics-dir", default="metrics", help="(default: %(default)s)")
    rep.add_argument("--plots-dir", default="plots", help="(default: %(default)s)")
    rep.add_argument("--docs-dir", default="docs", help="segmentation examples (default: %(default)s)")
    rep.add_argument("--out", default="report/index.html", help="HTML to write (default: %(default)s)")
    rep.set_defaults(func=_report)
    args = parser.parse_args(argv)
    if getattr(args, "scheduler", None) is not None and args.executor != "dask":
        parser.error("--scheduler needs --executor dask")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
