"""Tests for the self-describing HDF5 product writer/reader and the params hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from specmorph.errors import InputError
from specmorph.io.hdf5 import compressed_layout, params_hash, read_product, write_product


def _product(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "predictions": rng.random((3, 8)).astype(np.float32),  # (N, C)
        "labels": np.array([0, 7, 3], dtype=np.int64),
        "embedding/pca": rng.normal(size=(3, 12)),
        "label_cols": ["barred_spiral", "cigar_smooth"],
    }
    attrs = {"units": "Å", "label_cols": ["barred_spiral", "cigar_smooth", "edge_on_with_bulge"], "n_classes": 8,
             "pixscale": 0.396, "window": (3800.0, 7000.0)}
    return write_product(path, arrays, ["NGC5947", "UGC00005", "MOCK0001ü"], attrs, stage="embed",
                         params_hash="0123456789ab")


def test_round_trip(tmp_path):
    path = _product(tmp_path / "out" / "product.h5")
    arrays, ids, attrs = read_product(path)
    assert ids == ["NGC5947", "UGC00005", "MOCK0001ü"]
    assert set(arrays) == {"predictions", "labels", "embedding/pca", "label_cols"}
    assert arrays["predictions"].dtype == np.float32 and arrays["predictions"].shape == (3, 8)
    np.testing.assert_array_equal(arrays["labels"], [0, 7, 3])
    assert arrays["label_cols"].tolist() == ["barred_spiral", "cigar_smooth"]
    assert attrs["units"] == "Å" and attrs["n_classes"] == 8 and attrs["pixscale"] == 0.396
    assert attrs["label_cols"] == ["barred_spiral", "cigar_smooth", "edge_on_with_bulge"]
    np.testing.assert_array_equal(attrs["window"], [3800.0, 7000.0])
    assert attrs["stage"] == "embed" and attrs["params_hash"] == "0123456789ab"
    with h5py.File(path) as f:
        assert h5py.check_string_dtype(f["id_str"].dtype).encoding == "utf-8"
        assert h5py.check_string_dtype(f["id_str"].dtype).length is None  # variable length
    sub, _, _ = read_product(path, names=["labels"])
    assert list(sub) == ["labels"]


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "p.h5"
    with pytest.raises(TypeError, match="'bad'"):
        write_product(path, {"x": np.zeros(3), "bad": np.zeros(2, complex)}, ["a", "b", "c"], {}, "s", "h")
    assert list(tmp_path.iterdir()) == []
    _product(path)
    with pytest.raises(TypeError, match="dict not supported"):
        write_product(path, {"x": np.ones(3)}, ["a", "b", "c"], {"config": {"lr": 1}}, "s", "h")
    assert list(tmp_path.iterdir()) == [path]
    assert read_product(path)[2]["stage"] == "embed"


def test_read_errors_name_the_file(tmp_path):
    path = _product(tmp_path / "p.h5")
    with pytest.raises(InputError, match=r"p\.h5: dataset\(s\) nope missing"):
        read_product(path, names=["nope"])
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match=r"junk\.h5: not a readable HDF5"):
        read_product(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(InputError, match="no 'id_str'"):
        read_product(tmp_path / "foreign.h5")


def test_id_str_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        write_product(tmp_path / "p.h5", {"id_str": np.zeros(1)}, ["a"], {}, "s", "h")


def test_params_hash_is_canonical():
    assert params_hash({"b": [1, 2], "a": 1}) == hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:12]
    assert params_hash({"a": 1, "b": (1, 2)}) == params_hash({"b": [np.int64(1), 2], "a": np.int64(1)})
    assert params_hash({"a": 1}) != params_hash({"a": 2})
    assert params_hash({"path": Path("x/y")}) == params_hash({"path": "x/y"})
    assert len(params_hash({})) == 12 and all(c in "0123456789abcdef" for c in params_hash({}))


def test_large_per_object_arrays_are_chunked_by_whole_rows(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (300, 40, 40, 3), dtype=np.uint8)  # 1.44 MB, 4800 B/row
    small = np.arange(300, dtype=np.float32)
    path = write_product(tmp_path / "p.h5", {"images": images, "small": small}, [str(i) for i in range(300)], {},
                         stage="t", params_hash="0")
    with h5py.File(path) as f:
        assert f["images"].chunks == (218, 40, 40, 3)  # 1 MiB // 4800 B rows, whole images per chunk
        assert f["images"].compression == "gzip"
        assert f["small"].chunks is None and f["small"].compression is None
    assert np.array_equal(read_product(path, ["images"])[0]["images"], images)
    assert compressed_layout((10, 4), 8) == {}
    assert compressed_layout((3, 1024, 1024), 4) == {"compression": "gzip", "chunks": (1, 1024, 1024)}
