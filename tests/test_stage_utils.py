"""Helpers shared by the stage scripts."""

import json
import os
import subprocess
import sys

from specmorph.stage_utils import relative_paths, without_timing, write_metrics


def test_relative_paths_equal_os_relpath_for_every_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = ["a/b/c.jpg", "a/b/d.jpg", "x.jpg", "./y.jpg", "a/../z.jpg", str(tmp_path / "a/b/e.jpg"),
             str(tmp_path.parent / "elsewhere/f.jpg"), "/", "a/b/", "a/..", "../up.jpg", tmp_path / "p.jpg"]
    assert relative_paths(paths) == [os.path.relpath(p) for p in paths]
    assert relative_paths(paths)[:3] == [os.path.join("a", "b", "c.jpg"), os.path.join("a", "b", "d.jpg"), "x.jpg"]


def test_without_timing_drops_only_the_wall_clock_figures():
    history = [{"epoch": 1, "train_loss": 0.5, "seconds": 1.2, "rows_per_s": 800.0, "val_acc": 0.4}]
    assert without_timing(history) == [{"epoch": 1, "train_loss": 0.5, "val_acc": 0.4}]
    assert history[0]["seconds"] == 1.2  # the input is left alone


def test_write_metrics_writes_indented_json_with_a_final_newline(tmp_path):
    path = tmp_path / "metrics" / "m.json"
    write_metrics({"acc": 0.5, "n": 3}, path)
    assert path.read_text() == '{\n  "acc": 0.5,\n  "n": 3\n}\n'
    assert json.loads(path.read_text()) == {"acc": 0.5, "n": 3}


def test_stage_utils_does_not_import_evaluation():
    code = ("import sys, specmorph.stage_utils; "
            "print(sorted(m for m in sys.modules if m.startswith('specmorph.evaluation')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bad_params_value_names_the_stage_and_the_key(tmp_path, pytestconfig):
    """Run as DVC runs it, a stage stops with one line naming itself and the dotted key, status 1."""
    params = tmp_path / "params.yaml"
    params.write_text("crossmatch:\n  radius_arcsec: -1.0\n")
    script = pytestconfig.rootpath / "stages" / "crossmatch.py"
    run = subprocess.run([sys.executable, str(script), "--params", str(params), "--morphology", "m.csv",
                          "--gz2", "g.csv", "--out", str(tmp_path / "o.csv"), "--duplicates", str(tmp_path / "d.csv"),
                          "--metrics", str(tmp_path / "m.json")], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(pytestconfig.rootpath / "src")})
    assert run.returncode == 1
    assert "stage crossmatch: params.yaml: crossmatch.radius_arcsec = -1.0 out of range" in run.stderr
    assert "Traceback" not in run.stderr
