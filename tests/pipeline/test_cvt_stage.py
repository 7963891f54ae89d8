"""The `cvt` stage on the tiny profile: the upstream stages' main() in tmp_path, then CvT vs ResNet, 1 epoch."""

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from specmorph.catalog.selection import FIVE_CLASSES
from specmorph.errors import InputError
from specmorph.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = ("ingest", "crossmatch", "labels", "segment")  # the stages that make cvt's two inputs
SEEDS = [0, 1]
pytestmark = pytest.mark.timeout(120)


def _params(work: Path) -> Path:
    """A tiny-profile params.yaml in `work`: 2 seeds, 1 epoch, tiny CvT and ResNet."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "tiny"
    params["train"].update(feature_dim=16, head_hidden=0)
    params["evaluate"]["seeds"] = SEEDS
    params["cvt"].update(batch_size=8)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work / "params.yaml"


def _argv(params_path: Path, images: str = "data/catalog/images.csv") -> list[str]:
    return ["--params", str(params_path), "--images", images, "--segmented", "data/segment/images.h5",
            "--models-dir", "data/cvt", "--metrics", "metrics/cvt.json", "--plot", "plots/confusion_cvt.csv",
            "--gradcam-dir", "plots/gradcam_cvt"]


def test_cvt_stage_trains_both_models_on_the_five_class_subset(tmp_path, monkeypatch, stage):
    monkeypatch.chdir(tmp_path)
    params_path = _params(tmp_path)
    commands = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name in UPSTREAM:
        stage(name).main(shlex.split(commands[name]["cmd"])[2:])
    stage("cvt").main(_argv(params_path))

    table = pd.read_csv("data/catalog/images.csv", dtype={"galaxy_id": str, "class5": str})
    subset = table[(table["source"] == "gz2") & table["class5"].isin(FIVE_CLASSES)]
    train, test = subset[subset["split"] == "train"], subset[subset["split"] == "test"]
    assert not set(train["galaxy_id"]) & set(test["galaxy_id"])
    metrics = json.loads(Path("metrics/cvt.json").read_text())
    assert metrics["seeds"] == SEEDS
    assert (metrics["n_train"], metrics["n_test"]) == (len(train), len(test))
    assert metrics["class_counts"]["train"] == {c: int((train["class5"] == c).sum()) for c in FIVE_CLASSES}
    assert sum(metrics["class_counts"]["test"].values()) == len(test)
    for name in ("cvt", "resnet"):
        acc = metrics[name]["accuracy"]
        assert acc["n"] == len(SEEDS) and 0.0 <= acc["min"] <= acc["mean"] <= acc["max"] <= 1.0
        assert set(metrics[name]) >= {"macro_f1", "per_class.spiral.f1"}
    diff = metrics["cvt_minus_resnet"]["accuracy"]
    assert diff["n"] == len(SEEDS)
    means = {name: metrics[name]["accuracy"]["mean"] for name in ("cvt", "resnet")}
    assert diff["paired_mean"] == pytest.approx(means["cvt"] - means["resnet"])

    confusion = pd.read_csv("plots/confusion_cvt.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == len(SEEDS) * len(test)
    assert sorted(confusion["actual"].unique()) == sorted(test["class5"].unique())
    assert sorted(p.name for p in Path("data/cvt").iterdir()) == [f"{m}_seed{s}.pt" for m in ("cvt", "resnet")
                                                                 for s in SEEDS]
    assert not Path("data/.cvt.partial").exists()
    assert sorted(p.name for p in Path("plots/gradcam_cvt").glob("*.png")) == sorted(f"{c}.png" for c in FIVE_CLASSES)
    model, cfg, extra = load_checkpoint("data/cvt/cvt_seed1.pt")
    assert (cfg.kind, cfg.label_cols, cfg.cvt_dims, cfg.image_size) == ("cvt", FIVE_CLASSES, (8, 16, 32), 32)
    assert extra["seed"] == 1 and extra["n_train"] == len(train)
    assert extra["test_accuracy"] == pytest.approx(
        np.mean(confusion["actual"].to_numpy()[len(test):] == confusion["predicted"].to_numpy()[len(test):]))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, len(FIVE_CLASSES))
    _, cfg, _ = load_checkpoint("data/cvt/resnet_seed0.pt")
    assert (cfg.kind, cfg.width, cfg.feature_dim) == ("rgb", 8, 16)


def test_a_class_without_training_images_is_named(tmp_path, stage):
    rows = [{"id_str": str(i), "galaxy_id": f"G{i}", "source": "gz2", "class5": c, "split": s, "califa_name": ""}
            for i, (c, s) in enumerate((c, s) for c in FIVE_CLASSES for s in ("train", "test"))]
    table = pd.DataFrame(rows)
    table = table[~((table["class5"] == "cigar") & (table["split"] == "train"))]
    table.to_csv(tmp_path / "images.csv", index=False)
    with pytest.raises(InputError, match="no GZ2 training image of the 5-class subset in class\\(es\\) cigar"):
        stage("cvt").main(_argv(_params(tmp_path), str(tmp_path / "images.csv")))
