"""The `specmorph` command: user-facing tools around the pipeline."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from specmorph.errors import InputError


def _contact_sheet(args: argparse.Namespace) -> None:
    from specmorph.sky.contact_sheet import render_contact_sheet

    render_contact_sheet(Path(args.survey_dir), Path(args.out))


def _predict(args: argparse.Namespace) -> None:
    from specmorph.predict import run_predict, summarize_skipped

    table, skipped = run_predict(args.model, args.inputs, args.out, batch_size=args.batch_size, device=args.device)
    if skipped:
        print(summarize_skipped(skipped), file=sys.stderr)
    print(f"wrote {len(table)} prediction(s) to {args.out}", file=sys.stderr)


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
        "and an optional 'id_str' column. Unreadable files are named on stderr and skipped.",
    )
    pred.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, or one CSV file list")
    pred.add_argument("--model", required=True, help="checkpoint (.pt) written by training")
    pred.add_argument("--out", default="predictions.csv", help="CSV to write (default: %(default)s)")
    pred.add_argument("--batch-size", type=_positive_int, default=64, help="images per batch (default: %(default)s)")
    pred.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    pred.set_defaults(func=_predict)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
