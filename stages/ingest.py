"""Stage `ingest`: materialise data/raw/ from the mock survey (source: synthetic)."""

import argparse
import logging
from pathlib import Path

from specmorph.params import ParamsError, build, load_params, section
from specmorph.sky.survey import SkyConfig, generate_survey

log = logging.getLogger("ingest")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--out-dir", required=True, help="survey directory to (re)write, e.g. data/raw")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    params = load_params(args.params)
    source = section(params, "ingest").get("source")
    if source != "synthetic":
        raise ParamsError(f"params.yaml: ingest.source = {source!r}; this version supports 'synthetic'")
    profile = params.get("profile", "default")
    sky = section(params, "sky")
    if profile not in sky:
        raise ParamsError(f"params.yaml: profile {profile!r} has no block sky.{profile}; have {', '.join(sky)}")
    cfg = build(SkyConfig, {"seed": params.get("seed", 42), **sky[profile]}, f"sky.{profile}")
    summary = generate_survey(Path(args.out_dir), cfg)
    log.info("ingest done: %s", summary)


if __name__ == "__main__":
    main()
