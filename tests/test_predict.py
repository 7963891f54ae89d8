"""Tests for `specmorph predict`: mixed good/bad inputs, CSV file lists, training preprocessing, errors, Dask."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from specmorph.cli import main
from specmorph.errors import InputError
from specmorph.executor import ExecutorParams
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig, apply
from specmorph.io.images import read_image
from specmorph.models import ModelConfig, build_model
from specmorph.models.checkpoint import load_checkpoint, save_checkpoint
from specmorph.predict import predict_paths, read_path_list

LABELS = ("ellipse", "spiral", "edge_on")
PREP = PreprocessConfig(size=16, crop_fraction=0.7)


@pytest.fixture
def make_checkpoint(tmp_path):
    """Writes a tiny checkpoint with the given preprocessing; returns (path, the model as loaded back)."""

    def make(prep: PreprocessConfig = PREP, kind: str = "rgb"):
        torch.manual_seed(0)
        path = tmp_path / f"model_{kind}.pt"
        cfg = ModelConfig(kind=kind, n_classes=3, label_cols=LABELS, image_size=prep.size, depth=(1,), width=4,
                          feature_dim=8, head_hidden=0, spec_hidden=8, preprocess=prep.to_dict())
        model = build_model(cfg)
        for p in model.parameters():  # spread the logits so that the probabilities differ visibly
            torch.nn.init.normal_(p, std=0.5)
        save_checkpoint(path, model, cfg, {"seed": 0})
        return path, load_checkpoint(path)[0]

    return make


def _galaxy(rng: np.random.Generator, h: int = 60, w: int = 80) -> np.ndarray:
    """(h, w, 3) uint8: a central elliptical blob, an off-centre companion of another colour, noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    q, r = rng.uniform(0.3, 1.0), rng.uniform(4, 10)
    central = np.exp(-0.5 * (((xx - w / 2) / r) ** 2 + ((yy - h / 2) / (q * r)) ** 2))
    companion = np.exp(-0.5 * ((xx - w * 0.85) ** 2 + (yy - h * 0.2) ** 2) / 9.0)
    colour = rng.uniform(0.4, 1.0, 3)
    img = 220 * central[..., None] * colour + 200 * companion[..., None] * np.array([0.2, 0.4, 1.0])
    return np.clip(img + rng.normal(5, 2, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def images(tmp_path):
    """3 JPEGs + 1 PNG (good), a truncated JPEG and a text file named .jpg (bad)."""
    rng = np.random.default_rng(7)
    d = tmp_path / "imgs"
    d.mkdir()
    good = []
    for k in range(3):
        good.append(d / f"g{k}.jpg")
        Image.fromarray(_galaxy(rng)).save(good[-1], quality=95)
    good.append(d / "g3.png")
    Image.fromarray(_galaxy(rng)).save(good[-1])
    truncated = d / "trunc.jpg"
    Image.fromarray(_galaxy(rng)).save(truncated, quality=95)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 3 // 4])  # cut inside the scan data
    text = d / "notes.jpg"
    text.write_text("this is not an image\n")
    return good, [truncated, text]


def _by_hand(model, paths, prep):
    x = torch.from_numpy(np.stack([apply(read_image(p), prep) for p in paths]))
    with torch.no_grad():
        return torch.softmax(model(x).double(), dim=1).numpy()


def test_cli_mixed_inputs_skips_bad_files_by_name(make_checkpoint, images, tmp_path, capsys, caplog):
    ckpt, _ = make_checkpoint()
    good, bad = images
    out = tmp_path / "out" / "pred.csv"
    files = [str(good[0]), str(bad[0]), *map(str, good[1:]), str(bad[1])]
    assert main(["predict", "--model", str(ckpt), "--out", str(out), "--batch-size", "2", *files]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["id_str", "path", *LABELS, "predicted", "confidence"]
    assert df["id_str"].tolist() == ["g0", "g1", "g2", "g3"]
    assert df["path"].tolist() == [str(p) for p in good]
    probs = df[list(LABELS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert df["predicted"].tolist() == [LABELS[k] for k in probs.argmax(axis=1)]
    np.testing.assert_allclose(df["confidence"], probs.max(axis=1))
    err = capsys.readouterr().err
    assert "skipped 2 unreadable file(s): " in err
    assert f"{bad[0]} (cannot read image: image file is truncated" in err
    assert f"{bad[1]} (cannot read image: cannot identify image file)" in err
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "trunc.jpg" in warned and "notes.jpg" in warned
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.csv"]  # atomic: no temporary left


@pytest.mark.parametrize("kind", ["rgb", "concat"])
def test_probabilities_are_model_of_training_preprocessing(make_checkpoint, images, kind):
    prep = PreprocessConfig(size=16, crop_fraction=0.8, segment=True, segment_params=SegmentParams(sigma=1.0))
    ckpt, model = make_checkpoint(prep, kind)
    good, _ = images
    df, skipped = predict_paths(ckpt, good, batch_size=3)
    assert skipped == []
    expected = _by_hand(model, good, prep)  # (4, 3)
    np.testing.assert_allclose(df[list(LABELS)].to_numpy(), expected, rtol=0, atol=1e-6)
    # the check can fail: dropping the segmentation or the crop gives visibly different probabilities
    for other in (PreprocessConfig(size=16, crop_fraction=0.8), PreprocessConfig(size=16, segment=True)):
        assert np.abs(_by_hand(model, good, other) - expected).max() > 1e-4


def test_csv_file_list_with_relative_paths(make_checkpoint, images, tmp_path, monkeypatch):
    ckpt, model = make_checkpoint()
    good, _ = images
    lists = tmp_path / "lists"
    lists.mkdir()
    pd.DataFrame({"id_str": ["G2", "G0"], "path": ["../imgs/g2.jpg", str(good[0])]}).to_csv(
        lists / "todo.csv", index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths resolve against the CSV, not the working directory
    assert main(["predict", "--model", str(ckpt), str(lists / "todo.csv")]) == 0
    df = pd.read_csv(elsewhere / "predictions.csv")
    assert df["id_str"].tolist() == ["G2", "G0"]
    np.testing.assert_allclose(df[list(LABELS)].to_numpy(), _by_hand(model, [good[2], good[0]], PREP), atol=1e-6)
    pd.DataFrame({"file": ["a.jpg"]}).to_csv(lists / "files.csv", index=False)
    paths, ids = read_path_list(lists / "files.csv")
    assert paths == [lists / "a.jpg"] and ids is None
    pd.DataFrame({"name": ["a.jpg"]}).to_csv(lists / "bad.csv", index=False)
    with pytest.raises(InputError, match=r"bad\.csv: no path column; expected one of \('path', 'file'\)"):
        read_path_list(lists / "bad.csv")


def test_cli_errors_exit_2_without_traceback(make_checkpoint, images, tmp_path, capsys):
    good, bad = images
    missing = tmp_path / "nope.pt"
    assert main(["predict", "--model", str(missing), str(good[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specmorph: error: ") and "nope.pt" in err and "Traceback" not in err
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert main(["predict", "--model", str(junk), str(good[0])]) == 2
    assert "specmorph: error: " in capsys.readouterr().err
    bare = tmp_path / "bare.pt"  # a checkpoint without its preprocessing settings cannot be used
    bare_cfg = ModelConfig("rgb", 3, LABELS, image_size=16, depth=(1,), width=4)  # preprocess left empty
    save_checkpoint(bare, build_model(bare_cfg), bare_cfg, {})
    assert main(["predict", "--model", str(bare), str(good[0])]) == 2
    assert "bare.pt: checkpoint config has no preprocessing settings" in capsys.readouterr().err
    ckpt, _ = make_checkpoint()
    out = tmp_path / "none.csv"
    assert main(["predict", "--model", str(ckpt), "--out", str(out), *map(str, bad)]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 input file(s) could be read" in err and "notes.jpg" in err
    assert not out.exists()


def test_dask_and_any_shard_size_give_the_local_predictions(make_checkpoint, images, dask_ex):
    ckpt, model = make_checkpoint()
    good, bad = images
    files = [*good, bad[0], *good[::-1], bad[1], *good]  # 14 files, 2 unreadable
    local, skipped = predict_paths(ckpt, files, batch_size=3)
    np.testing.assert_allclose(local[list(LABELS)].to_numpy(), _by_hand(model, [f for f in files if f not in bad],
                                                                         PREP), rtol=0, atol=1e-6)
    for ex in (ExecutorParams(shard_size=1), replace(dask_ex, shard_size=4), replace(dask_ex, shard_size=100)):
        df, sk = predict_paths(ckpt, files, batch_size=3, executor=ex)  # shards of 3, 6 and 102 files
        pd.testing.assert_frame_equal(df, local, check_exact=True)
        assert sk == skipped and [p for p, _ in sk] == [str(b) for b in bad]


def test_cli_on_a_dask_scheduler_writes_the_local_csv(make_checkpoint, images, tmp_path, dask_ex, capsys):
    ckpt, _ = make_checkpoint()
    good, bad = images
    files = [str(f) for f in (*good, *bad, *good)]
    args = ["predict", "--model", str(ckpt), "--batch-size", "2", *files]
    assert main([*args, "--out", str(tmp_path / "local.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "dask.csv"), "--executor", "dask", "--scheduler", dask_ex.address,
                 "--shard-size", "3"]) == 0
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert "skipped 2 unreadable file(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*args, "--scheduler", dask_ex.address])
    assert info.value.code == 2 and "--scheduler needs --executor dask" in capsys.readouterr().err
