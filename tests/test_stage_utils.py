"""Helpers shared by the stage scripts."""

import os

from specmorph.stage_utils import relative_paths, without_timing


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
