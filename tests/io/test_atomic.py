"""Tests of the atomic-write helper: files and directories appear whole or not at all."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specmorph.io.atomic import atomic_dir, atomic_file, partial_dir, temp_path, write_json_atomic


def test_temporary_names_are_hidden_siblings(tmp_path):
    assert temp_path(tmp_path / "a.csv") == tmp_path / f".a.csv.{os.getpid()}.tmp"
    assert partial_dir(tmp_path / "models") == tmp_path / ".models.partial"


def test_atomic_file_writes_on_success(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_file(path) as tmp:
        assert tmp == temp_path(path)
        tmp.write_text("new")
        assert not path.exists()  # nothing at the destination until the block ends
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_file_replaces_an_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_file(path) as tmp:
        tmp.write_bytes(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("old", [None, "old"])
def test_atomic_file_keeps_the_destination_on_error(tmp_path, old):
    path = tmp_path / "out.txt"
    if old is not None:
        path.write_text(old)
    with pytest.raises(RuntimeError, match="boom"), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert (path.read_text() if path.exists() else None) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if old is None else ["out.txt"])  # no temporary left


def test_atomic_file_does_not_create_the_parent(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_file(tmp_path / "missing" / "out.txt") as tmp:
        tmp.write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_builds_then_replaces(tmp_path):
    path = tmp_path / "plots"
    path.mkdir()
    (path / "stale.png").write_text("old")
    stale_work = partial_dir(path)
    stale_work.mkdir()
    (stale_work / "left_by_a_killed_run").write_text("x")
    with atomic_dir(path) as work:
        assert work == stale_work and list(work.iterdir()) == []  # emptied first
        (work / "a.csv").write_text("1")
        (work / "sub").mkdir()
        (work / "sub" / "b.csv").write_text("2")
        assert (path / "stale.png").exists()  # the old directory stays until the block ends
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) == ["a.csv", "sub", "sub/b.csv"]
    assert (path / "sub" / "b.csv").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]


def test_atomic_dir_creates_missing_parents(tmp_path):
    path = tmp_path / "a" / "b" / "models"
    with atomic_dir(path) as work:
        (work / "m.pt").write_bytes(b"w")
    assert [p.name for p in path.iterdir()] == ["m.pt"]


@pytest.mark.parametrize("old", [False, True])
def test_atomic_dir_keeps_the_destination_on_error(tmp_path, old):
    path = tmp_path / "models"
    if old:
        path.mkdir()
        (path / "m.pt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(path) as work:
        (work / "m.pt").write_text("half")
        raise KeyboardInterrupt
    if old:
        assert [p.name for p in path.iterdir()] == ["m.pt"] and (path / "m.pt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["models"] if old else [])  # no .partial left


def test_write_json_atomic_bytes(tmp_path):
    path = tmp_path / "metrics" / "eval.json"  # the parent is created
    obj = {"acc": np.float32(0.5), "n": np.int64(3), "cm": np.eye(2, dtype=int), "path": Path("a/b"), "name": "é",
           "nested": {"xs": [1, 2.5, None, True]}}
    write_json_atomic(obj, path)
    plain = {"acc": 0.5, "n": 3, "cm": [[1, 0], [0, 1]], "path": "a/b", "name": "é",
             "nested": {"xs": [1, 2.5, None, True]}}
    assert path.read_bytes() == (json.dumps(plain, indent=2) + "\n").encode("utf-8")
    assert path.read_text(encoding="utf-8").startswith('{\n  "acc": 0.5,\n  "n": 3,\n  "cm": [\n    [\n')


def test_write_json_atomic_refuses_nan_and_unknown_types_leaving_the_old_file(tmp_path):
    path = tmp_path / "eval.json"
    write_json_atomic({"n": 3}, path)
    with pytest.raises(ValueError):
        write_json_atomic({"acc": float("nan")}, path)
    with pytest.raises(TypeError, match="cannot write set to JSON"):
        write_json_atomic({"s": {1}}, path)
    assert json.loads(path.read_text()) == {"n": 3}  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temporary left behind


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "metrics.json"
    stale = tmp_path / f".metrics.json.{dead.pid}.tmp"  # what a SIGKILLed writer leaves
    stale.write_text("half")
    live = tmp_path / f".metrics.json.{os.getppid()}.tmp"  # a running writer's: kept
    live.write_text("busy")
    other = tmp_path / f".other.json.{dead.pid}.tmp"  # another file's: not ours to touch
    other.write_text("x")
    with atomic_file(out) as tmp:
        tmp.write_text("done")
    assert out.read_text() == "done"
    assert not stale.exists()
    assert live.exists() and other.exists()
