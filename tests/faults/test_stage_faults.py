"""Fault injection through the stage scripts, run as DVC runs them: one bad input each, on a tiny mock survey.

Each case breaks one input of one stage and checks what issue 17 asks of a stage: exit status 1, a line
on stderr naming the stage and the file (and row or column; `ingest` of local files then lists every
problem it found, one per line), no traceback, and no output left behind.
The pipeline stages stop at the first bad input rather than skip it, so that a product never silently
holds fewer objects than its inputs list; `specmorph predict` is the one place that skips and lists
(test_faults.py). The outcomes join the tally that `make test` prints.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from specmorph.sky.survey import SkyConfig, generate_survey

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """A tiny mock survey (12 cubes of 6 x 6 spaxels, 36 GZ2 images of 64 px) and its catalog stages' outputs."""
    root = tmp_path_factory.mktemp("survey")
    generate_survey(root / "raw", SkyConfig(seed=1, n_califa=12, gz2_footprint_fraction=0.5, n_gz2_field=30,
                                            n_galaxy10=4, cutout_size=64, cube_nx=6, cube_ny=6, workers=1))
    for stage in ("crossmatch", "labels"):
        run = _run(root, stage, root / "raw", root / "catalog")
        assert run.returncode == 0, run.stderr[-2000:]
    return root


def _args(stage: str, raw: Path, out: Path) -> list[str]:
    """The stage's command line (as in dvc.yaml) on the survey `raw`, writing under `out`."""
    m, gz2, cat = raw / "califa/morphology.csv", raw / "gz2/gz2_hart16.csv", out.parent / "catalog"
    return {
        "crossmatch": ["--morphology", m, "--gz2", gz2, "--out", out / "matched.csv", "--duplicates",
                       out / "duplicates.csv", "--metrics", out / "crossmatch.json"],
        "labels": ["--morphology", m, "--cutout-index", raw / "sdss/index.csv", "--gz2", gz2, "--gz2-image-dir",
                   raw / "gz2/images", "--matched", cat / "matched.csv", "--duplicates", cat / "duplicates.csv",
                   "--out", out / "images.csv", "--metrics", out / "labels.json"],
        "segment": ["--images", out / "images.csv", "--out", out / "images.h5", "--metrics", out / "segment.json"],
        "prepare_cubes": ["--morphology", m, "--cube-dir", raw / "califa/cubes", "--out", out / "cubes.h5"],
        "spectra": ["--morphology", m, "--cube-dir", raw / "califa/cubes", "--images", cat / "images.csv",
                    "--out", out / "pca.h5", "--plot", out / "pca_variance.csv", "--metrics", out / "spectra.json"],
        "ingest": ["--out-dir", out / "raw"],
    }[stage]


def _run(root: Path, stage: str, raw: Path, out: Path, params: Path | None = None) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    if params is None:
        params = root / "params.yaml"
        if not params.exists():
            doc = yaml.safe_load((REPO / "params.yaml").read_text())
            doc["segment_check"]["real_dir"] = str(root / "no_real_set")  # the stage's real-cutout check skips
            params.write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py"), "--params", str(params),
           *map(str, _args(stage, raw, out))]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=300)


def _edit_csv(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    edit(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


def _truncate_first_cube(raw: Path) -> str:
    cube = sorted((raw / "califa/cubes").iterdir())[0]
    cube.write_bytes(cube.read_bytes()[:3000])
    return cube.name


def _empty_first_image(raw: Path, out: Path) -> str:
    """Empties the first GZ2 image, and points the stage's image table at this copy of the survey."""
    table = pd.read_csv(out.parent / "catalog/images.csv", dtype=str)
    table["path"] = [str(raw / Path(p).relative_to("raw")) if not Path(p).is_absolute() else p
                     for p in table["path"]]
    first = Path(table["path"].iloc[0])
    first.write_bytes(b"")
    table.to_csv(out / "images.csv", index=False)
    return first.name


def _local_params(root: Path, raw: Path, survey: str = "califa", source: str = "local",
                  remote: dict | None = None) -> Path:
    """params.yaml for `ingest.source: local` on the survey's own files (and `ingest.survey`, `source`, `remote`)."""
    doc = yaml.safe_load((root / "params.yaml").read_text())
    doc["ingest"] = {"source": source, "link": "copy", "survey": survey, "remote": remote or {}, "local": {
        "morphology_path": str(raw / "califa/morphology.csv"), "cube_dir": str(raw / "califa/cubes"),
        "cutout_index_path": str(raw / "sdss/index.csv"), "gz2_catalog_path": str(raw / "gz2/gz2_hart16.csv"),
        "gz2_image_dir": str(raw / "gz2/images"), "galaxy10_path": str(raw / "galaxy10/Galaxy10_DECals.h5")}}
    path = root / "params_local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@dataclass
class StageCase:
    name: str
    stage: str
    breaks: Callable[[Path, Path], str]  # (the survey copy, the stage's output dir) -> text the error must name
    survey: str = "califa"  # ingest cases: the params' ingest.survey, ingest.source and ingest.remote
    source: str = "local"
    remote: dict | None = None


def _nan_dec(raw: Path, out: Path) -> str:
    _edit_csv(raw / "califa/morphology.csv", lambda d: d.assign(dec=["nan", *d["dec"].iloc[1:]]))
    return "morphology.csv: row 1"


def _no_ra_column(raw: Path, out: Path) -> str:
    _edit_csv(raw / "gz2/gz2_hart16.csv", lambda d: d.drop(columns="ra"))
    return "gz2_hart16.csv"


def _no_file_column(raw: Path, out: Path) -> str:
    _edit_csv(raw / "sdss/index.csv", lambda d: d.drop(columns="file"))
    return "index.csv"


def _missing_cube(raw: Path, out: Path) -> str:
    cube = sorted((raw / "califa/cubes").iterdir())[0]
    cube.unlink()
    return cube.name.split(".")[0]


CASES = [
    StageCase("crossmatch: NaN declination in the CALIFA table", "crossmatch", _nan_dec),
    StageCase("crossmatch: GZ2 table without its ra column", "crossmatch", _no_ra_column),
    StageCase("labels: cutout index without its file column", "labels", _no_file_column),
    StageCase("segment: a zero-byte JPEG among the images", "segment", _empty_first_image),
    StageCase("prepare_cubes: a truncated cube", "prepare_cubes", lambda raw, out: _truncate_first_cube(raw)),
    StageCase("spectra: a truncated cube", "spectra", lambda raw, out: _truncate_first_cube(raw)),
    StageCase("ingest (local): a galaxy's cube missing", "ingest", _missing_cube),
    StageCase("ingest (remote): a survey that is not one of califa, manga, both", "ingest",
              lambda raw, out: "ingest.survey = 'sami'", survey="sami", source="remote"),
    StageCase("ingest (remote): CALIFA types asked of MaNGA", "ingest",
              lambda raw, out: "ingest.remote.hubble_types", survey="manga", source="remote",
              remote={"hubble_types": ["E"]}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_stage_stops_on_a_bad_input_with_one_line_and_no_output(case, survey, tmp_path, fault_tally):
    raw, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(survey / "raw", raw)
    shutil.copytree(survey / "catalog", tmp_path / "catalog")
    out.mkdir()
    names = case.breaks(raw, out)
    before = set(out.rglob("*"))
    params = _local_params(survey, raw, case.survey, case.source, case.remote) if case.stage == "ingest" else None
    run = _run(survey, case.stage, raw, out, params)
    head = f"stage {case.stage}: "
    error = run.stderr[run.stderr.find(head):] if head in run.stderr else ""  # a list of problems may follow
    left = sorted(str(p.relative_to(out)) for p in set(out.rglob("*")) - before)
    if run.returncode != 1:
        got = f"exit status {run.returncode}"
    elif "Traceback" in run.stderr or not error or names not in error:
        got = f"unclear error: {run.stderr.strip()[-300:]}"
    elif left:
        got = f"error, output left: {left}"
    else:
        got = "error"
    fault_tally.append((f"stage {case.name}", "error", got))
    assert got == "error", run.stderr[-3000:]


def test_the_tiny_survey_is_read_cleanly_by_the_same_commands(survey, tmp_path):
    """The control: unbroken, each stage above exits 0 on the same survey and writes its outputs."""
    for stage in ("segment", "prepare_cubes"):
        out = tmp_path / stage
        out.mkdir()
        if stage == "segment":
            table = pd.read_csv(survey / "catalog/images.csv", dtype=str)
            table["path"] = [str(survey / p) for p in table["path"]]
            table.to_csv(out / "images.csv", index=False)
        run = _run(survey, stage, survey / "raw", out)
        assert run.returncode == 0, run.stderr[-2000:]
        assert (out / ("images.h5" if stage == "segment" else "cubes.h5")).is_file()
    assert gzip.decompress((next((survey / "raw/califa/cubes").iterdir())).read_bytes())[:6] == b"SIMPLE"
