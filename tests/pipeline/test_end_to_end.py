"""The whole DAG on the tiny profile: every stage's main() with the exact arguments of dvc.yaml."""

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml
from astropy.table import Table

from specmorph.predict import predict_paths
from specmorph.realism.spectra import QUANTITIES
from specmorph.realism.stats import STAT_NAMES
from specmorph.taxonomy import CLASSES

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def _stage_commands() -> list[tuple[str, list[str]]]:
    """(stage name, argv) in dvc.yaml order, parsed from each stage's `cmd`."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = []
    for name, spec in stages.items():
        words = shlex.split(spec["cmd"])
        assert words[:2] == ["python", f"stages/{name}.py"], f"{name}: cmd must run its own script"
        out.append((name, words[2:]))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "tiny"
    params["evaluate"]["seeds"] = [0, 1]
    params["pca_rf"]["n_estimators"] = 20
    params["embed"].update(epochs=1, folds=2, knn_k=1, width=8, embed_dim=16)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work


def test_every_stage_runs_and_writes_its_outputs(run_dir, monkeypatch, stage):
    monkeypatch.chdir(run_dir)
    for name, argv in _stage_commands():
        stage(name).main(argv)
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, spec in stages.items():
        for out in spec.get("outs", []) + [next(iter(m)) for m in spec.get("metrics", [])]:
            assert (run_dir / out).exists(), f"{name} did not write {out}"
    evaluation = json.loads((run_dir / "metrics/evaluate.json").read_text())
    assert evaluation["seeds"] == [0, 1]
    for name in ("rgb_only", evaluation["guided"]):
        acc = evaluation["gz2_test"][name]["accuracy"]
        assert acc["n"] == 2 and 0.0 <= acc["min"] <= acc["mean"] <= acc["max"] <= 1.0
    ablation = json.loads((run_dir / "metrics/ablation.json").read_text())  # gated: also fed the test spectra
    assert ablation["gz2_test_matched_spectra"]["n_images"] == ablation["gz2_test_matched"]["n_images"] > 0
    table = pd.read_csv(run_dir / "data/catalog/images.csv", dtype={"galaxy_id": str})
    train_galaxies = set(table.loc[table["split"] == "train", "galaxy_id"])
    test_galaxies = set(table.loc[table["split"] == "test", "galaxy_id"])
    assert train_galaxies and test_galaxies and not train_galaxies & test_galaxies


def test_predict_classifies_raw_images_with_a_trained_model(run_dir, monkeypatch):
    monkeypatch.chdir(run_dir)
    images = sorted((run_dir / "data/raw/gz2/images").glob("*.jpg"))[:5]
    df, skipped = predict_paths(run_dir / "data/models/rgb_only_seed0.pt", images, batch_size=2)
    assert skipped == [] and len(df) == 5
    assert list(df.columns[2:2 + len(CLASSES)]) == list(CLASSES)
    assert df[list(CLASSES)].sum(axis=1).round(6).eq(1).all()


def test_training_inputs_equal_predict_preprocessing(run_dir, monkeypatch):
    """The segment stage + preprocess (training) and `apply` on the raw file (predict) agree exactly."""
    import numpy as np

    from specmorph.imaging.transforms import PreprocessConfig, apply, preprocess
    from specmorph.io.hdf5 import read_product
    from specmorph.io.images import read_image
    from specmorph.models.checkpoint import load_checkpoint

    monkeypatch.chdir(run_dir)
    _, cfg, _ = load_checkpoint(run_dir / "data/models/gated_seed1.pt")
    pre = PreprocessConfig.from_dict(cfg.preprocess)
    arrays, ids, _ = read_product(run_dir / "data/segment/images.h5", ["images"])
    table = pd.read_csv(run_dir / "data/catalog/images.csv", dtype={"id_str": str}).set_index("id_str")
    for i in (0, len(ids) - 1):
        training = preprocess(arrays["images"][i], pre.size, pre.crop_fraction)
        predicting = apply(read_image(table.loc[ids[i], "path"]), pre)
        np.testing.assert_array_equal(training, predicting)


@pytest.mark.parametrize("embedder", ["siamese", "sae", "dsca"])
def test_learned_embedders_run_as_the_embed_stage(run_dir, monkeypatch, stage, embedder, tmp_path):
    """`dvc exp run -S embedder=...` re-runs `embed`: each learned embedder on the tiny survey."""
    monkeypatch.chdir(run_dir)
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["embedder"] = embedder
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = dict(_stage_commands())["embed"]
    argv[argv.index("params.yaml")] = str(tmp_path / "params.yaml")
    for flag, name in (("--out", "embedding.h5"), ("--model-dir", "embedder"), ("--projection", "proj.csv"),
                       ("--metrics", "embed.json")):
        argv[argv.index(flag) + 1] = str(tmp_path / name)
    stage("embed").main(argv)
    metrics = json.loads((tmp_path / "embed.json").read_text())
    assert metrics["embedder"] == embedder and metrics["n_held_out"] > 0
    assert 0.0 <= metrics["knn_accuracy_mean"] <= 1.0
    assert 0.0 <= metrics["standardised"]["knn_accuracy_mean"] <= 1.0  # the same folds, standardised
    assert (tmp_path / "embedder" / f"{embedder}.pt").is_file()


@pytest.mark.parametrize(("model", "rgb_inference"), [("rgb_only", "drop"), ("concat", "drop"), ("kd", "drop"),
                                                      ("gated", "hallucinate"), ("gated", "distil")])
def test_each_model_choice_trains_and_evaluates(run_dir, monkeypatch, stage, tmp_path, model, rgb_inference):
    """`dvc exp run -S model=... -S train.rgb_inference=...` re-runs `train` and `evaluate` (gated/drop: above)."""
    monkeypatch.chdir(run_dir)
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["model"] = model
    params["train"]["rgb_inference"] = rgb_inference
    params["evaluate"]["bootstrap"] = 50
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    commands = dict(_stage_commands())
    redirect = {"--models-dir": "models", "--live-dir": "live", "--metrics": None, "--ablation": "ablation.json",
                "--plot-dir": "plots"}
    for name in ("train", "evaluate"):
        argv = commands[name]
        argv[argv.index("params.yaml")] = str(tmp_path / "params.yaml")
        for flag, target in redirect.items():
            if flag in argv:
                argv[argv.index(flag) + 1] = str(tmp_path / (target or f"{name}.json"))
        stage(name).main(argv)
    guided = "rgb_only" if model == "rgb_only" else model
    expected = {"rgb_only", guided}
    if model == "kd" or rgb_inference == "distil":
        expected.add(f"{model}_teacher")
    saved = {p.name.rsplit("_seed", 1)[0] for p in (tmp_path / "models").glob("*.pt")}
    assert saved == expected
    ablation = json.loads((tmp_path / "ablation.json").read_text())
    assert ablation["guided"] == guided and ablation["model"] == model
    f1 = ablation["gz2_test"]["macro_f1"]
    assert len(f1["per_seed_diff"]) == 2 and f1["ci95"][0] <= f1["diff_mean"] + 1e-9
    if model == "rgb_only":
        assert f1["per_seed_diff"] == [0.0, 0.0]
    assert f1["mde"]["combined"] >= f1["mde"]["galaxies"] >= 0 and len(ablation["gz2_test"]["mcnemar"]) == 2
    if model not in ("concat", "gated") or rgb_inference == "distil":  # no network that takes spectra at test
        assert "gz2_test_matched_spectra" not in ablation
    evaluation = json.loads((tmp_path / "evaluate.json").read_text())
    assert set(evaluation["gz2_test"]) == expected
    assert sorted(p.name for p in (tmp_path / "plots" / "gradcam" / "guided").glob("*.png")) == \
        sorted(f"{c}.png" for c in CLASSES)


def test_realism_on_a_real_set_made_of_the_mock_images(run_dir, monkeypatch, stage, tmp_path):
    """The realism stage on a "real" set that is the mock's own GZ2 images with their true classes.

    The mock and real samples of smooth and edge-on galaxies are then the same images (max_images above
    every class's count; barred spirals are left out of the real set only), so their KS distances are 0
    and the medians agree; the scores equal those computed here from `predict_paths`.
    """
    import numpy as np

    from specmorph.realism.sim_to_real import membership

    monkeypatch.chdir(run_dir)
    truth = pd.read_csv(run_dir / "data/raw/truth/gz2.csv", dtype={"dr7objid": str})
    ids = truth["dr7objid"].tolist()
    names = [CLASSES[i] for i in truth["label"]]
    pd.DataFrame({"objid": ids, "cls": names}).to_csv(tmp_path / "labels.csv", index=False)
    coarse = {c: ("smooth" if "smooth" in c else "edge_on" if c.startswith("edge_on") else "spiral") for c in CLASSES}
    coarse["barred_spiral"] = None  # left out, counted
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["realism"].update(max_images=1000, real_sets={"mockreal": {
        "image_dir": "data/raw/gz2/images", "labels_path": str(tmp_path / "labels.csv"), "id_column": "objid",
        "label_column": "cls", "file_pattern": "{id}.jpg", "scheme": "smooth/spiral/edge_on", "classes": coarse}},
        califa_table=str(tmp_path / "ecalifa.csv"))
    rng = np.random.default_rng(0)
    Table({"Name": [f"G{i}" for i in range(40)], "type": ["E2"] * 10 + ["S0"] * 10 + ["Sb"] * 20,
           "g-r": rng.uniform(0.4, 0.8, 40), "EW_Ha_Re": -rng.uniform(0.1, 30, 40),
           "log_NII_Ha_Re": rng.uniform(-0.6, 0.0, 40), "Age_LW_Re_fit": rng.uniform(8.5, 10.0, 40),
           "vel_disp_ssp_cen": rng.uniform(50, 250, 40)}).write(tmp_path / "ecalifa.csv", format="ascii.ecsv")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = dict(_stage_commands())["realism"]
    argv[argv.index("params.yaml")] = str(tmp_path / "params.yaml")
    argv[argv.index("--metrics") + 1] = str(tmp_path / "realism.json")
    argv[argv.index("--plot-dir") + 1] = str(tmp_path / "plots")
    stage("realism").main(argv)
    report = json.loads((tmp_path / "realism.json").read_text())["sets"]["mockreal"]
    kept = [i for i, n in zip(ids, names, strict=True) if n != "barred_spiral"]
    assert report["n_images"] == len(kept) and report["excluded"] == {"barred_spiral": names.count("barred_spiral")}
    table, _ = predict_paths(run_dir / "data/models/gated_seed1.pt",
                             [run_dir / "data/raw/gz2/images" / f"{i}.jpg" for i in kept])
    probs = table[list(CLASSES)].to_numpy()
    scored = ~np.isnan(probs).any(axis=1)  # flagged images are not scored
    true = np.array([coarse[n] for n in names if n != "barred_spiral"])[scored]
    pred = np.array(["smooth", "spiral", "edge_on"])[(probs[scored]
                                                      @ membership(CLASSES, "smooth/spiral/edge_on")).argmax(axis=1)]
    recalls = [np.mean(pred[true == c] == c) for c in ("smooth", "spiral", "edge_on") if (true == c).any()]
    seed1 = report["guided"]["per_seed"]["seed1"]
    assert seed1["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert seed1["accuracy"] == pytest.approx(np.mean(pred == true))
    assert (seed1["n_scored"], seed1["n_flagged"]) == (scored.sum(), (~scored).sum())
    assert report["guided"]["checkpoint"] == "gated" and report["rgb_only"]["balanced_accuracy"]["n"] == 2
    assert np.sum(report["rgb_only"]["confusion_matrix"]) == 2 * report["rgb_only"]["n_scored"]
    confusion = pd.read_csv(tmp_path / "plots/confusion/mockreal_rgb_only.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 2 * report["rgb_only"]["n_scored"]
    stats = report["image_statistics"]
    assert 0.0 <= stats["spiral"]["half_light_radius"]["ks"] <= 1.0
    for c in ("smooth", "edge_on"):
        for name in ("half_light_radius", "sky_noise", "n_sources"):
            assert stats[c][name]["ks"] == 0.0 and stats[c][name]["median_mock"] == stats[c][name]["median_real"]
    assert len(list((tmp_path / "plots/histograms").glob("*.png"))) == len(STAT_NAMES)
    spectra = json.loads((tmp_path / "realism.json").read_text())["spectra"]
    assert spectra["real"] == str(tmp_path / "ecalifa.csv") and set(spectra["separability"]) == {"E/S", "E/S0/S"}
    assert spectra["quantities"]["S"]["n_real"] == 20 and spectra["quantities"]["S"]["n_mock"] > 0
    assert sorted(p.stem for p in (tmp_path / "plots/spectra").glob("*.png")) == sorted(QUANTITIES)
