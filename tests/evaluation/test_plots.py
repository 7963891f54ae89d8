"""Tests for DVC plot data: confusion rows and per-epoch curve CSVs."""

import csv

import pytest

from specmorph.evaluation.plots import confusion_rows, curve_rows, write_confusion_csv, write_curves_csv

LABELS = ["a", "b", "c"]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_confusion_rows_and_csv(tmp_path):
    rows = confusion_rows([0, 2, 1], ["a", "b", "b"], LABELS)
    assert rows == [{"actual": "a", "predicted": "a"}, {"actual": "c", "predicted": "b"},
                    {"actual": "b", "predicted": "b"}]
    path = write_confusion_csv([0, 2, 1], [0, 1, 1], LABELS, tmp_path / "plots" / "confusion.csv")
    assert _read(path) == rows
    assert path.read_text().splitlines()[0] == "actual,predicted"
    with pytest.raises(ValueError, match="unknown class 'z'"):
        confusion_rows(["a"], ["z"], LABELS)


def test_curves_csv(tmp_path):
    rows = curve_rows({"train_loss": [1.0, 0.5], "val_loss": [1.2, 0.9]})
    assert rows == [{"step": 0, "train_loss": 1.0, "val_loss": 1.2}, {"step": 1, "train_loss": 0.5, "val_loss": 0.9}]
    path = write_curves_csv({"val_acc": [0.25, 0.5, 0.75]}, tmp_path / "acc.csv", steps=[1, 2, 3])
    assert _read(path) == [{"step": "1", "val_acc": "0.25"}, {"step": "2", "val_acc": "0.5"},
                           {"step": "3", "val_acc": "0.75"}]
    with pytest.raises(ValueError, match="different lengths"):
        curve_rows({"a": [1.0], "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="2 steps for curves of length 1"):
        curve_rows({"a": [1.0]}, steps=[0, 1])
