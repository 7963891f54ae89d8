"""The `specmorph` command: user-facing tools around the pipeline."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def _contact_sheet(args: argparse.Namespace) -> None:
    from specmorph.sky.contact_sheet import render_contact_sheet

    render_contact_sheet(Path(args.survey_dir), Path(args.out))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `specmorph` console script."""
    parser = argparse.ArgumentParser(prog="specmorph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sheet = sub.add_parser("contact-sheet", help="PNG of one galaxy per class: RGB, cube white light, spectrum")
    sheet.add_argument("survey_dir", help="a survey directory, e.g. data/raw")
    sheet.add_argument("--out", default="docs/contact_sheet.png", help="PNG to write")
    sheet.set_defaults(func=_contact_sheet)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
