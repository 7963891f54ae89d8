"""Stage `ingest`: data/raw/ from the mock survey (synthetic), your own files (local) or the real archives (remote)."""

import logging
from dataclasses import asdict
from pathlib import Path

from specmorph.catalog.selection import REQUIRED_COLUMNS
from specmorph.io.layout import SURVEY_CHOICES
from specmorph.io.local import LocalSources, ingest_local
from specmorph.params import ParamsError, build, load_params, profile_block, section, shared, typed
from specmorph.remote.plan import format_plan
from specmorph.remote.sources import RemoteSources
from specmorph.remote.survey import RemoteOptions, ingest_remote, survey_sources
from specmorph.sections import CrossmatchSection
from specmorph.sky.survey import SkyConfig, generate_survey
from specmorph.stage_utils import stage_args

log = logging.getLogger("ingest")
SOURCES = ("synthetic", "local", "remote")


def _synthetic(params: dict, out_dir: Path) -> dict:
    sky, where = profile_block(params, "sky")
    dials = {k: v for k, v in section(params, "sky").items() if not isinstance(v, dict)}  # sky.<key>: every profile
    survey = section(params, "ingest").get("survey", "califa")
    cfg = build(SkyConfig, {"seed": shared(params).seed, "survey": survey, **dials, **sky}, where)
    return generate_survey(out_dir, cfg)


def _local(ingest: dict, out_dir: Path) -> dict:
    local = ingest.get("local")
    if not isinstance(local, dict):
        raise ParamsError("params.yaml: ingest.local is missing or not a mapping; source: local needs its paths")
    src = build(LocalSources, {k: "" if v is None else v for k, v in local.items()}, "ingest.local")
    empty = [f"ingest.local.{k}" for k, v in asdict(src).items() if not str(v).strip()]
    if empty:
        raise ParamsError(f"params.yaml: {', '.join(empty)} empty; source: local needs a path for each")
    return ingest_local(src, out_dir, link=str(ingest.get("link", "hardlink")), gz2_columns=REQUIRED_COLUMNS)


def _remote(params: dict, ingest: dict, survey: str, out_dir: Path) -> dict:
    remote = dict(ingest.get("remote") or {})
    sources = build(RemoteSources, remote.pop("sources", None) or {}, "ingest.remote.sources")
    options = build(RemoteOptions, remote, "ingest.remote")
    if survey == "manga" and options.hubble_types:
        raise ParamsError("params.yaml: ingest.remote.hubble_types selects CALIFA types, which MaNGA's DRPall "
                          "table does not have; leave it [] with ingest.survey: manga (with both, it selects "
                          "among the eCALIFA galaxies only)")
    radius = typed(params, "crossmatch", CrossmatchSection).radius_arcsec  # the crossmatch stage's, so all match
    result = ingest_remote(survey_sources(sources, survey), options, out_dir, seed=shared(params).seed,
                           radius_arcsec=radius, link=str(ingest.get("link", "hardlink")), gz2_columns=REQUIRED_COLUMNS)
    if options.dry_run:
        print(format_plan(result))
        return {"dry_run": True, "bytes_to_fetch": result["bytes_to_fetch"]}
    return {k: result[k] for k in ("totals", "selected", "placed")} | {"dropped": len(result["dropped"])}


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--out-dir", "survey directory to (re)write, e.g. data/raw"))
    params = load_params(args.params)
    ingest = section(params, "ingest")
    source = ingest.get("source")
    if source not in SOURCES:
        raise ParamsError(f"params.yaml: ingest.source = {source!r}; expected one of {' | '.join(SOURCES)}")
    out_dir = Path(args.out_dir)
    survey = ingest.get("survey", "califa")
    if survey not in SURVEY_CHOICES:
        raise ParamsError(f"params.yaml: ingest.survey = {survey!r}; expected {' | '.join(SURVEY_CHOICES)}")
    if source == "remote":
        summary = _remote(params, ingest, survey, out_dir)
    else:
        summary = _synthetic(params, out_dir) if source == "synthetic" else _local(ingest, out_dir)
    log.info("ingest done: %s", summary)


if __name__ == "__main__":
    main()
