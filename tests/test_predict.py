"""Tests for `specmorph predict`: mixed good/bad inputs, CSV file lists, training preprocessing, errors, Dask, flags."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits
from PIL import Image

from specmorph.cli import main
from specmorph.errors import InputError
from specmorph.executor import ExecutorParams
from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig, apply
from specmorph.io.images import read_image
from specmorph.models import ModelConfig, build_model
from specmorph.models.checkpoint import load_checkpoint, save_checkpoint
from specmorph.predict import STRICT_NAMED, predict_many, predict_paths, read_path_list
from specmorph.sky.observe import SDSS_PIXSCALE, encode_jpeg, observe_sdss, render_cutout, sdss_rgb
from specmorph.sky.population import draw_galaxy
from specmorph.sky.survey import gz2_pixscale

LABELS = ("ellipse", "spiral", "edge_on")
PREP = PreprocessConfig(size=16, crop_fraction=0.7)
PREP64 = PreprocessConfig(size=64, crop_fraction=0.5)  # the shipped models' input: a side under 31 px is too small


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


@pytest.fixture
def odd_images(tmp_path):
    """{path: the flag it should get under PREP64}: all-NaN FITS, constant PNG, 5x5 JPEG, blank sky, a mock galaxy."""
    d = tmp_path / "odd"
    d.mkdir()
    rng = np.random.default_rng(11)
    fits.PrimaryHDU(np.full((60, 80), np.nan, np.float32)).writeto(d / "nan.fits")
    Image.fromarray(np.full((60, 80, 3), (40, 60, 90), np.uint8)).save(d / "flat.png")
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(d / "tiny.jpg", quality=95)
    sky = observe_sdss(np.zeros((3, 128, 128), np.float32), SDSS_PIXSCALE, rng, n_stars_per_arcmin2=0.0,
                       n_galaxies_per_arcmin2=0.0, neighbour_prob=0.0, bright_star_prob=0.0)
    (d / "sky.jpg").write_bytes(encode_jpeg(sdss_rgb(sky)))
    g = draw_galaxy(rng, "M1", 180.0, 10.0, None, label_name="unbarred_loose_spiral", field=True)
    (d / "mock.jpg").write_bytes(encode_jpeg(render_cutout(g, 128, gz2_pixscale(g, 128), rng=rng)))
    return {d / "nan.fits": "all_nan", d / "flat.png": "constant", d / "tiny.jpg": "too_small",
            d / "sky.jpg": "no_central_source", d / "mock.jpg": ""}


def _by_hand(model, paths, prep, tta=True):
    """Probabilities computed here: with tta, the mean softmax over the 8 orientations made by numpy."""
    x = np.stack([apply(read_image(p), prep) for p in paths])  # (N, 3, S, S)
    views = [np.rot90(v, k, axes=(2, 3)) for v in (x, x[..., ::-1]) for k in range(4)] if tta else [x]
    with torch.no_grad():
        return np.mean([torch.softmax(model(torch.from_numpy(v.copy())).double(), dim=1).numpy() for v in views], 0)


def test_cli_mixed_inputs_skips_bad_files_by_name(make_checkpoint, images, tmp_path, capsys, caplog):
    ckpt, _ = make_checkpoint()
    good, bad = images
    out = tmp_path / "out" / "pred.csv"
    files = [str(good[0]), str(bad[0]), *map(str, good[1:]), str(bad[1])]
    assert main(["predict", "--model", str(ckpt), "--out", str(out), "--batch-size", "2", *files]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["id_str", "path", *LABELS, "predicted", "confidence", "flag"]
    assert df["id_str"].tolist() == ["g0", "g1", "g2", "g3"]
    assert df["path"].tolist() == [str(p) for p in good]
    probs = df[list(LABELS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert df["predicted"].tolist() == [LABELS[k] for k in probs.argmax(axis=1)]
    np.testing.assert_allclose(df["confidence"], probs.max(axis=1))
    err = capsys.readouterr().err
    assert "skipped 2 unreadable file(s): " in err
    assert f"{bad[0]} (cannot read image: OpenCV cannot decode it (truncated, corrupt" in err
    assert f"{bad[1]} (cannot read image: OpenCV cannot decode it" in err
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "trunc.jpg" in warned and "notes.jpg" in warned
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.csv", "pred.rejects.csv"]  # no temporary left
    rejects = pd.read_csv(out.parent / "pred.rejects.csv")
    assert rejects["path"].tolist() == [str(bad[0]), str(bad[1])]
    assert rejects["reason"].str.startswith("cannot read image").all()
    assert main(["predict", "--model", str(ckpt), "--out", str(out), *map(str, good)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.csv"]  # the stale list goes with a clean run


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
    # without test-time augmentation: the one forward of the image as given, which differs from the mean
    plain = predict_paths(ckpt, good, batch_size=3, tta=False)[0][list(LABELS)].to_numpy()
    np.testing.assert_allclose(plain, _by_hand(model, good, prep, tta=False), rtol=0, atol=1e-6)
    assert np.abs(plain - expected).max() > 1e-5  # float noise is under 1e-6


def test_predictions_do_not_depend_on_the_orientation_of_the_file(make_checkpoint, tmp_path):
    """With the default test-time augmentation a galaxy turned by 90° or mirrored gets the same probabilities."""
    ckpt, _ = make_checkpoint(PreprocessConfig(size=16, crop_fraction=0.8))
    rgb = _galaxy(np.random.default_rng(3), 60, 60)
    paths = []
    for name, image in (("as_is", rgb), ("turned", np.rot90(rgb)), ("mirrored", rgb[:, ::-1]),
                        ("both", np.rot90(rgb[::-1], 3))):
        paths.append(tmp_path / f"{name}.png")  # lossless: the same pixels, moved
        Image.fromarray(np.ascontiguousarray(image)).save(paths[-1])
    for tta in (True, False):
        p = predict_paths(ckpt, paths, tta=tta)[0][list(LABELS)].to_numpy()  # (4, 3)
        spread = np.abs(p - p[0]).max()
        assert spread < 1e-6 if tta else spread > 1e-3  # without it the network sees different inputs


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


def test_flagged_images_keep_their_row_unclassified(make_checkpoint, images, odd_images):
    ckpt, model = make_checkpoint(PREP64)
    good, _ = images
    odd = list(odd_images)
    files = [good[0], odd[0], good[1], *odd[1:4], good[2], odd[4], good[3]]
    expected = ["" if f in good else odd_images[f] for f in files]
    df, skipped = predict_paths(ckpt, files, batch_size=3)
    assert skipped == [] and df["path"].tolist() == [str(f) for f in files]
    assert df["flag"].tolist() == expected
    flagged = df["flag"] != ""
    assert df.loc[flagged, [*LABELS, "confidence"]].isna().all().all()
    assert (df.loc[flagged, "predicted"] == "").all()
    probs = df.loc[~flagged, list(LABELS)].to_numpy()
    classified = [f for f, e in zip(files, expected, strict=True) if not e]
    np.testing.assert_allclose(probs, _by_hand(model, classified, PREP64), rtol=0, atol=1e-6)
    assert df.loc[~flagged, "predicted"].tolist() == [LABELS[k] for k in probs.argmax(axis=1)]
    np.testing.assert_array_equal(df.loc[~flagged, "confidence"], probs.max(axis=1))
    # before the checks every readable file was classified (an all-NaN FITS is now unreadable to read_image):
    # the classified rows keep those numbers
    readable = [f for f, e in zip(files, expected, strict=True) if e != "all_nan"]
    everything = _by_hand(model, readable, PREP64)
    kept = [not odd_images.get(f, "") for f in readable]
    np.testing.assert_allclose(probs, everything[kept], rtol=0, atol=1e-6)


def test_a_flagged_image_leaves_its_batch_without_changing_the_others(make_checkpoint, images, odd_images):
    ckpt, _ = make_checkpoint(PREP64)
    good, _ = images
    nan = next(iter(odd_images))
    with_flagged, _ = predict_paths(ckpt, [good[0], nan, good[1]], batch_size=3)  # one batch: g0, g1 classified
    without, _ = predict_paths(ckpt, [good[0], good[1]], batch_size=3)  # the same batch of two
    assert with_flagged["flag"].tolist() == ["all_nan" if p == str(nan) else "" for p in with_flagged["path"]]
    kept = with_flagged[with_flagged["flag"] == ""].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, without, check_exact=True)


def test_cli_counts_flags_on_stderr_and_writes_empty_cells(make_checkpoint, images, odd_images, tmp_path, capsys):
    ckpt, _ = make_checkpoint(PREP64)
    good, _ = images
    files = [*map(str, odd_images), *map(str, good)]
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(ckpt), "--out", str(out), *files]) == 0
    err = capsys.readouterr().err
    n_flagged = sum(1 for f in odd_images.values() if f)
    assert f"flagged {n_flagged} of {len(files)} image(s), not classified: 1 all_nan, 1 constant, 1 too_small, " \
           "1 no_central_source\n" in err
    assert f"wrote {len(files) - n_flagged} prediction(s) and {n_flagged} flagged row(s) to {out}" in err
    raw = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert raw["flag"].tolist() == [*odd_images.values(), *[""] * len(good)]
    cells = raw.loc[raw["flag"] != "", [*LABELS, "predicted", "confidence"]]
    assert (cells == "").all().all() and len(cells) == n_flagged
    assert (raw.loc[raw["flag"] == "", "predicted"] != "").all()


def test_strict_turns_flags_into_an_error_and_writes_nothing(make_checkpoint, images, odd_images, tmp_path, capsys):
    ckpt, _ = make_checkpoint(PREP64)
    good, _ = images
    odd = [p for p, f in odd_images.items() if f]
    out = tmp_path / "strict.csv"
    args = ["predict", "--model", str(ckpt), "--out", str(out), "--strict"]
    assert main([*args, str(good[0]), str(odd[2]), str(good[1])]) == 2
    err = capsys.readouterr().err
    assert f"specmorph: error: 1 input file(s) flagged, not classified (--strict): {odd[2]} (too_small)\n" in err
    assert not out.exists() and "Traceback" not in err
    many = odd * 2  # more flagged files than the error names
    with pytest.raises(InputError) as info:
        predict_paths(ckpt, [*good, *many], strict=True)
    named = ", ".join(f"{p} ({odd_images[p]})" for p in many[:STRICT_NAMED])
    assert str(info.value) == (f"{len(many)} input file(s) flagged, not classified (--strict): {named} "
                               f"and {len(many) - STRICT_NAMED} more")
    assert main([*args, *map(str, good)]) == 0  # nothing flagged: --strict writes the table
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert written["path"].tolist() == [str(p) for p in good] and (written["flag"] == "").all()


def test_dask_workers_run_the_checks(make_checkpoint, images, odd_images, dask_ex):
    ckpt, _ = make_checkpoint(PREP64)
    good, bad = images
    files = [*good, *odd_images, bad[0], *list(odd_images)[::-1], *good]
    local, skipped = predict_paths(ckpt, files, batch_size=2)
    assert local["flag"].tolist() == [odd_images.get(f, "") for f in files if f != bad[0]]
    df, sk = predict_paths(ckpt, files, batch_size=2, executor=replace(dask_ex, shard_size=3))  # shards of 4 files
    pd.testing.assert_frame_equal(df, local, check_exact=True)
    assert sk == skipped and [p for p, _ in sk] == [str(bad[0])]


def test_only_flagged_inputs_give_a_table_of_flags(make_checkpoint, odd_images):
    ckpt, _ = make_checkpoint(PREP64)
    odd = [p for p, f in odd_images.items() if f]
    df, skipped = predict_paths(ckpt, odd, batch_size=2)
    assert skipped == [] and df["flag"].tolist() == [odd_images[p] for p in odd]
    assert df[[*LABELS, "confidence"]].isna().all().all() and (df["predicted"] == "").all()


def test_predict_many_gives_each_checkpoint_its_own_predict_paths_table(make_checkpoint, images, odd_images):
    rgb, _ = make_checkpoint(PREP64, "rgb")
    gated, _ = make_checkpoint(PREP64, "gated")
    files = [*images[0], *images[1], *odd_images]
    tables, skipped = predict_many([rgb, gated], files, batch_size=3)
    for ckpt, table in zip([rgb, gated], tables, strict=True):
        alone, alone_skipped = predict_paths(ckpt, files, batch_size=3)
        pd.testing.assert_frame_equal(table, alone)
        assert skipped == alone_skipped
    assert not np.allclose(tables[0][list(LABELS)].fillna(0), tables[1][list(LABELS)].fillna(0))


def test_predict_many_refuses_checkpoints_with_different_preprocessing(make_checkpoint, images):
    a, _ = make_checkpoint(PREP, "rgb")
    b, _ = make_checkpoint(PREP64, "gated")
    with pytest.raises(InputError, match="different preprocessing"):
        predict_many([a, b], images[0])


def test_a_killed_predict_resumes_from_its_finished_shards(make_checkpoint, images, tmp_path, monkeypatch):
    """run_predict keeps finished shards until the CSV is written: after a failure mid-run, only the rest is redone."""
    import specmorph.predict as predict_mod

    ckpt, _ = make_checkpoint()
    good, _ = images
    files = [str(p) for p in good] * 3  # 12 images, shards of 2
    executor = ExecutorParams(shard_size=2)
    whole, _ = predict_mod.run_predict(ckpt, files, tmp_path / "one.csv", batch_size=2, executor=executor)
    real, calls, first_pass = predict_mod._predict_shard, [], [True]

    def dies_at_shard_3(*args):
        calls.append(args[-2])  # the shard index
        if args[-2] == 3 and first_pass[0]:
            raise MemoryError("killed")  # as a kill part-way (not an input error: the shards are kept)
        return real(*args)

    monkeypatch.setattr(predict_mod, "_predict_shard", dies_at_shard_3)
    out = tmp_path / "two.csv"
    with pytest.raises(MemoryError):
        predict_mod.run_predict(ckpt, files, out, batch_size=2, executor=executor)
    parts = predict_mod.resume_dir_for(out)
    kept = sorted(p.name[:12] for p in parts.glob("*"))
    assert not out.exists() and kept == ["shard_000000", "shard_000001", "shard_000002"], kept  # atomically
    calls.clear()
    first_pass[0] = False
    again, _ = predict_mod.run_predict(ckpt, files, out, batch_size=2, executor=executor)
    assert calls == [3, 4, 5]  # only the unfinished shards
    pd.testing.assert_frame_equal(again, whole)
    assert not parts.exists()  # cleaned once the CSV is written


def test_two_predict_processes_with_different_outputs_do_not_interfere(make_checkpoint, images, tmp_path):
    import subprocess
    import sys

    ckpt, _ = make_checkpoint()
    good, _ = images
    files = [str(p) for p in good] * 4
    outs = [tmp_path / "a" / "pred.csv", tmp_path / "b" / "pred.csv"]
    procs = [subprocess.Popen([sys.executable, "-m", "specmorph.cli", "predict", "--model", str(ckpt), "--out", str(o),
                               "--batch-size", "2", "--shard-size", "2", *files], stderr=subprocess.PIPE)
             for o in outs]
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [p.stderr.read().decode()[-500:] for p in procs]
    one, _ = predict_paths(ckpt, files, batch_size=2)
    for o in outs:
        pd.testing.assert_frame_equal(pd.read_csv(o, dtype={"id_str": str}, keep_default_na=False),
                                      pd.read_csv(_write_csv(one, tmp_path / "ref.csv"), dtype={"id_str": str},
                                                  keep_default_na=False))
        assert sorted(p.name for p in o.parent.iterdir()) == ["pred.csv"]  # no parts or temporaries left


def _write_csv(df: pd.DataFrame, path) -> str:
    from specmorph.io.catalogs import write_table

    write_table(df, path)
    return str(path)
