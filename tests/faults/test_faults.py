"""Fault injection: broken inputs for each reader and stage, and a simulated full disk.

Every case feeds one fault and checks the documented outcome:
- "error": an exception whose one-line message names the file, row, column or key (the `names` text)
  and nothing partial is left in the case's directory beyond the inputs it made;
- "handled": the reader accepts the input and applies its documented rule (checked by the case);
- "skip": one bad object among many is skipped, counted and listed, and the rest goes on.
A case that raises anything else, or an error that does not name what is wrong, is a crash.
`make test` prints the tally (`fault_tally`, conftest.py here) under "fault injection".
"""

from __future__ import annotations

import errno
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits

from specmorph.errors import InputError
from specmorph.io import atomic
from specmorph.io.atomic import write_json_atomic
from specmorph.io.catalogs import read_gz2, read_morphology, write_table
from specmorph.io.cubes import read_cube
from specmorph.io.images import read_image
from specmorph.params import ParamsError, build, load_params, shared
from specmorph.sky import cube as mock_cube
from specmorph.sky.samples import califa_sample
from specmorph.sky.survey import SkyConfig
from specmorph.sky.votes import GZ2_COLUMNS

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    name: str
    expect: str  # error | handled | skip
    run: Callable[[Path], object]  # given a fresh directory; returns the check's value for handled/skip cases
    names: str = ""  # error: text the message must contain (a file name, row, column or key)


def _cube(tmp: Path, **edit) -> Path:
    """A small real-format mock cube (8 x 6 x 6), optionally edited: drop=EXT, naxis3=N, nan_plane=k."""
    g = califa_sample(np.random.default_rng(0), 1)[0]
    flux, error, badpix = mock_cube.build_cube(g, 40, 6, 6)
    path = tmp / f"{g.id_str}.V500.rscube.fits.gz"
    mock_cube.write_cube(path, g, flux, error, badpix)
    if not edit:
        return path
    with fits.open(io.BytesIO(gzip.decompress(path.read_bytes()))) as hdul:
        hdus = [h.copy() for h in hdul if h.name != edit.get("drop")]
    if "nan_plane" in edit:
        hdus[0].data[edit["nan_plane"]] = np.nan
        hdus[0].data[edit["nan_plane"] + 1] = np.inf
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf, output_verify="ignore")
    raw = buf.getvalue()
    if "naxis3" in edit:  # in the bytes: astropy rewrites NAXISn from the data on writing
        card = fits.Card("NAXIS3", hdus[0].data.shape[0]).image.encode()
        raw = raw.replace(card, fits.Card("NAXIS3", edit["naxis3"]).image.encode(), 1)
    path.write_bytes(gzip.compress(raw))
    return path


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _jpeg(tmp: Path, name: str = "g.jpg") -> Path:
    rng = np.random.default_rng(1)
    path = tmp / name
    path.write_bytes(cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes())
    return path


def _morphology(tmp: Path, edit: Callable[[pd.DataFrame], pd.DataFrame] = lambda d: d) -> Path:
    df = pd.DataFrame({"name": ["NGC0001", "NGC0002", "NGC0003"], "ra": [1.0, 2.0, 3.0], "dec": [10.0, 11.0, 12.0],
                       "redshift": [0.01, 0.02, 0.03], "hubtyp": ["E1", "Sb", "Sc"]})
    path = tmp / "morphology.csv"
    edit(df).to_csv(path, index=False)
    return path


def _gz2(tmp: Path, edit: Callable[[pd.DataFrame], pd.DataFrame] = lambda d: d) -> Path:
    df = pd.DataFrame({"dr7objid": ["587722981742084144", "587722981742149658"], "ra": [150.1, 150.2],
                       "dec": [2.1, 2.2], "gz2_class": ["Ei", "Sb"]})
    for col in GZ2_COLUMNS[4:6]:
        df[col] = ["x", "y"] if col == "rastring" else [""] * 2
    path = tmp / "gz2_hart16.csv"
    edit(df).to_csv(path, index=False)
    return path


def _params(tmp: Path, edit: Callable[[dict], None]) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(params)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_params(path)


def _full_disk(monkeypatch) -> None:
    """Every os.replace raises ENOSPC, as a full disk does at the final write (after the data went out)."""
    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "replace", no_space)


def _nan_cube_is_masked(tmp: Path) -> bool:
    c = read_cube(_cube(tmp, nan_plane=3))
    return bool(np.isnan(c.flux[3]).all() and np.isnan(c.flux[4]).all() and np.isfinite(c.flux[10]).any())


def _missing_error_ext_reads_without_errors(tmp: Path) -> bool:
    return read_cube(_cube(tmp, drop="ERROR")).error is None


def _missing_badpix_masks_non_finite(tmp: Path) -> bool:
    return bool(np.isfinite(read_cube(_cube(tmp, drop="BADPIX")).flux).any())


def _png16_keeps_top_bits(tmp: Path) -> bool:
    img = np.full((32, 32, 3), 0xAB00, np.uint16)
    path = tmp / "deep.png"
    path.write_bytes(cv2.imencode(".png", img)[1].tobytes())
    out = read_image(path)
    return out.dtype == np.uint8 and out.shape == (32, 32, 3) and int(out[0, 0, 0]) == 0xAB


def _gray_png_expands(tmp: Path) -> bool:
    path = tmp / "gray.png"
    path.write_bytes(cv2.imencode(".png", np.full((16, 16), 77, np.uint8))[1].tobytes())
    out = read_image(path)
    return out.shape == (16, 16, 3) and bool((out == 77).all())


CASES = [
    Case("cube: truncated gzip", "error", lambda t: read_cube(_truncate(_cube(t), 0.5)), "rscube.fits.gz"),
    Case("cube: not FITS at all", "error",
         lambda t: read_cube(_write(t / "x.V500.rscube.fits", b"SIMPLE? no" * 100)), "x.V500.rscube.fits"),
    Case("cube: header NAXIS3 disagrees with the data", "error", lambda t: read_cube(_cube(t, naxis3=99)),
         "rscube.fits.gz"),
    Case("cube: NaN and inf planes are masked", "handled", _nan_cube_is_masked),
    Case("cube: no ERROR extension (error left None)", "handled", _missing_error_ext_reads_without_errors),
    Case("cube: no BADPIX extension (non-finite flux masked)", "handled", _missing_badpix_masks_non_finite),
    Case("cube: missing file", "error", lambda t: read_cube(t / "none.V500.rscube.fits.gz"), "none.V500"),
    Case("image: zero-byte JPEG", "error", lambda t: read_image(_write(t / "empty.jpg", b"")), "empty.jpg"),
    Case("image: JPEG cut to its header", "error", lambda t: read_image(_truncate(_jpeg(t, "cut.jpg"), 0.05)),
         "cut.jpg"),
    Case("image: text named .jpg", "error", lambda t: read_image(_write(t / "note.jpg", b"not an image\n" * 9)),
         "note.jpg"),
    Case("image: 16-bit PNG keeps its top 8 bits", "handled", _png16_keeps_top_bits),
    Case("image: grey PNG becomes three equal channels", "handled", _gray_png_expands),
    Case("catalogue: missing column", "error", lambda t: read_morphology(_morphology(t, lambda d: d.drop(
        columns="dec"))), "dec"),
    Case("catalogue: wrong type in a numeric column", "error", lambda t: read_morphology(_morphology(
        t, lambda d: d.assign(ra=["1.0", "abc", "3.0"]))), "NGC0002"),
    Case("catalogue: duplicate ids", "error", lambda t: read_morphology(_morphology(
        t, lambda d: d.assign(name=["NGC0001", "NGC0001", "NGC0003"]))), "NGC0001"),
    Case("catalogue: NaN coordinates", "error", lambda t: read_morphology(_morphology(
        t, lambda d: d.assign(dec=[10.0, np.nan, 12.0]))), "NGC0002"),
    Case("catalogue: RA out of range", "error", lambda t: read_morphology(_morphology(
        t, lambda d: d.assign(ra=[1.0, 2.0, 400.0]))), "NGC0003"),
    Case("catalogue: unknown Hubble type", "error", lambda t: read_morphology(_morphology(
        t, lambda d: d.assign(hubtyp=["E1", "Zz9", "Sc"]))), "NGC0002"),
    Case("GZ2 table: missing gz2_class column", "error", lambda t: read_gz2(_gz2(t, lambda d: d.drop(
        columns="gz2_class"))), "gz2_class"),
    Case("GZ2 table: non-integer dr7objid", "error", lambda t: read_gz2(_gz2(t, lambda d: d.assign(
        dr7objid=["587722981742084144", "abc"]))), "abc"),
    Case("params: unknown top-level key", "error", lambda t: shared(_params(t, lambda p: p.update(sede=1))),
         "sede"),
    Case("params: wrong type in a section", "error", lambda t: build(SkyConfig, _params(
        t, lambda p: p["sky"]["tiny"].update(n_califa="many"))["sky"]["tiny"], "sky.tiny"), "sky.tiny.n_califa"),
    Case("params: dial out of range", "error", lambda t: SkyConfig(spectral_information=2.0),
         "sky.spectral_information"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _outcome(case: Case, tmp: Path) -> str:
    before = set(tmp.rglob("*"))
    try:
        value = case.run(tmp)
    except (InputError, ParamsError, ValueError, OSError) as err:
        message = str(err)
        if "\n" in message.strip() or (case.names and case.names not in message):
            return f"unclear error: {message[:200]}"
        leftovers = [p for p in set(tmp.rglob("*")) - before if p.name.endswith(".tmp") or ".partial" in p.name]
        return "error" if not leftovers else f"error, partial output left: {leftovers}"
    except Exception as err:  # anything else is what this suite exists to find
        return f"crash: {type(err).__name__}: {err}"
    return "handled" if value is True else f"accepted, check failed ({value!r})"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case, tmp_path, fault_tally):
    got = _outcome(case, tmp_path)
    fault_tally.append((case.name, case.expect, got))
    assert got == case.expect


@pytest.mark.parametrize("writer", ["write_table", "write_json_atomic", "write_cube"])
def test_a_full_disk_leaves_no_partial_file(writer, tmp_path, monkeypatch, fault_tally):
    _full_disk(monkeypatch)
    target = {"write_table": tmp_path / "t.csv", "write_json_atomic": tmp_path / "m.json",
              "write_cube": tmp_path / "c.V500.rscube.fits.gz"}[writer]
    g = califa_sample(np.random.default_rng(0), 1)[0]
    write = {"write_table": lambda: write_table(pd.DataFrame({"a": [1]}), target),
             "write_json_atomic": lambda: write_json_atomic({"a": 1}, target),
             "write_cube": lambda: mock_cube.write_cube(target, g, *mock_cube.build_cube(g, 10, 4, 4))}[writer]
    try:
        write()
        got = "no error"
    except OSError as err:
        left = list(tmp_path.iterdir())
        got = "error" if err.errno == errno.ENOSPC and not left else f"left {left}"
    fault_tally.append((f"full disk: {writer}", "error", got))
    assert got == "error"


def _tiny_checkpoint(tmp: Path) -> Path:
    import torch

    from specmorph.imaging.transforms import PreprocessConfig
    from specmorph.models import ModelConfig, build_model
    from specmorph.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(kind="rgb", n_classes=2, label_cols=("a", "b"), image_size=16, depth=(1,), width=4,
                      feature_dim=8, head_hidden=0, preprocess=PreprocessConfig(size=16, crop_fraction=0.7).to_dict())
    save_checkpoint(tmp / "tiny.pt", build_model(cfg), cfg, {"seed": 0})
    return tmp / "tiny.pt"


def test_one_unreadable_image_among_many_is_skipped_counted_and_listed(tmp_path, capsys, fault_tally):
    """predict: a bad file is named on stderr and left out; the others are classified."""
    from specmorph.cli import main as cli_main

    good = [_jpeg(tmp_path, f"g{i}.jpg") for i in range(3)]
    bad = _write(tmp_path / "bad.jpg", b"")
    out = tmp_path / "p.csv"
    code = cli_main(["predict", "--model", str(_tiny_checkpoint(tmp_path)), "--out", str(out),
                     *map(str, [good[0], bad, *good[1:]])])
    err = capsys.readouterr().err
    rows = len(pd.read_csv(out)) if out.exists() else 0
    rejects = tmp_path / "p.rejects.csv"
    listed = pd.read_csv(rejects)["path"].tolist() if rejects.exists() else []
    named = "skipped 1 unreadable file(s)" in err and "bad.jpg" in err and "p.rejects.csv" in err
    got = "skip" if code == 0 and rows == 3 and named and listed == [str(bad)] \
        else f"exit {code}, {rows} rows, listed {listed}: {err[-300:]}"
    fault_tally.append(("predict: one unreadable image among four", "skip", got))
    assert got == "skip"


def test_predict_refuses_a_checkpoint_that_is_not_ours(tmp_path, capsys, fault_tally):
    from specmorph.cli import main as cli_main

    fake = _write(tmp_path / "model.pt", json.dumps({"weights": [1, 2]}).encode())
    code = cli_main(["predict", str(_jpeg(tmp_path)), "--model", str(fake), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    got = "error" if code == 2 and "model.pt" in err and not (tmp_path / "p.csv").exists() else f"exit {code}: {err}"
    fault_tally.append(("predict: a checkpoint that is not ours", "error", got))
    assert got == "error"


def test_evaluate_refuses_a_checkpoint_built_for_other_classes(tmp_path, fault_tally):
    import torch

    from specmorph.evaluation.study import TestSet, predict_all
    from specmorph.models import ModelConfig, build_model
    from specmorph.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(kind="rgb", n_classes=5, label_cols=("a", "b", "c", "d", "e"), image_size=16, depth=(1,),
                      width=4, feature_dim=8, head_hidden=0)
    save_checkpoint(tmp_path / "rgb_only_seed0.pt", build_model(cfg), cfg, {"seed": 0})
    test = TestSet("t", np.zeros((2, 3, 16, 16), np.float32), np.zeros(2, np.int64), np.arange(2))
    try:
        predict_all(tmp_path, ["rgb_only"], [0], [test])
        got = "no error"
    except InputError as err:
        got = "error" if "rgb_only_seed0.pt" in str(err) and "taxonomy.CLASSES" in str(err) else f"unclear: {err}"
    fault_tally.append(("evaluate: a checkpoint built for other classes", "error", got))
    assert got == "error"
