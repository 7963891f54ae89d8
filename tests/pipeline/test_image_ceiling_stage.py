"""The `image_ceiling` stage on the tiny profile: the RGB-only network trained on the mock's true classes."""

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import load_stage

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = ("ingest", "crossmatch", "labels", "segment")  # the stages that make its inputs
SEEDS = [0, 1]
TRUTH = "data/raw/truth/gz2.csv"
pytestmark = pytest.mark.timeout(120)


def _params(work: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "tiny"
    params["train"].update(feature_dim=16, head_hidden=0, workers=1)
    params["evaluate"]["seeds"] = SEEDS
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work / "params.yaml"


def _argv(params_path: Path, truth_dir: str = "data/raw/truth") -> list[str]:
    return ["--params", str(params_path), "--images", "data/catalog/images.csv", "--segmented",
            "data/segment/images.h5", "--truth-dir", truth_dir, "--metrics", "metrics/image_ceiling.json"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The upstream stages run once in a work directory (restored after)."""
    work = tmp_path_factory.mktemp("image_ceiling")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        _params(work)
        commands = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
        for name in UPSTREAM:
            load_stage(name).main(shlex.split(commands[name]["cmd"])[2:])
    return work


def test_with_truth_equal_to_the_labels_both_accuracies_agree(upstream, monkeypatch, stage):
    """A truth table whose true classes are the labels: the network learns the labels, and its accuracy
    against the truth equals its accuracy against the labels on every seed (rows matched by galaxy)."""
    monkeypatch.chdir(upstream)
    images = pd.read_csv("data/catalog/images.csv", dtype={"galaxy_id": str, "id_str": str})
    labelled = images[images["split"] != "unlabelled"]
    one_label = labelled.groupby("galaxy_id")["label"].transform("nunique") == 1  # not a shred labelled otherwise
    labelled = labelled[one_label].drop_duplicates("galaxy_id")
    Path("truth_as_labels").mkdir(exist_ok=True)
    labelled.assign(dr7objid=labelled["id_str"])[["dr7objid", "galaxy_id", "label"]].to_csv(
        "truth_as_labels/gz2.csv", index=False)
    stage("image_ceiling").main(_argv(_params(upstream), "truth_as_labels"))

    m = json.loads(Path("metrics/image_ceiling.json").read_text())
    n_test = int(((images["split"] == "test") & (images["source"] == "gz2")
                  & images["galaxy_id"].isin(labelled["galaxy_id"])).sum())
    assert m["seeds"] == SEEDS and m["n_test"] == n_test > 0
    assert 0 < m["n_train"] < int((images["split"] == "train").sum())  # the train stage's rows, less validation
    scores = m["rgb_only_on_truth"]
    for key in ("accuracy_vs_labels", "accuracy_vs_truth"):
        assert scores[key]["n"] == len(SEEDS) and 0.0 <= scores[key]["min"] <= scores[key]["max"] <= 1.0
    assert scores["accuracy_vs_truth"] == scores["accuracy_vs_labels"]


def test_rows_without_a_true_class_are_left_out(upstream, monkeypatch, stage):
    """Galaxies missing from the truth table are not trained or scored on: n_train and n_test drop by their images."""
    monkeypatch.chdir(upstream)
    truth = pd.read_csv(TRUTH, dtype={"dr7objid": str, "galaxy_id": str})
    images = pd.read_csv("data/catalog/images.csv", dtype={"galaxy_id": str, "id_str": str})
    test = images[(images["split"] == "test") & (images["source"] == "gz2")]
    stage("image_ceiling").main(_argv(_params(upstream)))
    full = json.loads(Path("metrics/image_ceiling.json").read_text())
    assert full["n_test"] == len(test)

    dropped = set(test["galaxy_id"].iloc[:3])
    Path("truth_less").mkdir(exist_ok=True)
    truth[~truth["galaxy_id"].isin(dropped)].to_csv("truth_less/gz2.csv", index=False)
    stage("image_ceiling").main(_argv(_params(upstream), "truth_less"))
    m = json.loads(Path("metrics/image_ceiling.json").read_text())
    assert m["n_test"] == len(test) - int(test["galaxy_id"].isin(dropped).sum())
    assert m["n_train"] == full["n_train"]  # test galaxies are in no training row


def test_without_a_truth_table_it_writes_skipped(upstream, monkeypatch, stage):
    monkeypatch.chdir(upstream)
    stage("image_ceiling").main(_argv(_params(upstream), "no_truth_here"))
    m = json.loads(Path("metrics/image_ceiling.json").read_text())
    assert m == {"skipped": "no mock truth at no_truth_here/gz2.csv"}
