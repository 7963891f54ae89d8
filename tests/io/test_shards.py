"""Tests for shard files and their merge: byte-identical to write_product for any sharding, atomic, streaming."""

import hashlib

import h5py
import numpy as np
import pytest

from specmorph.errors import InputError
from specmorph.io import shards
from specmorph.io.hdf5 import read_product, write_product
from specmorph.io.shards import ShardWriter, merge_shards, shard_dir, shard_ids, shard_path

N = 60


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"images": rng.integers(0, 255, (N, 80, 80, 3), dtype=np.uint8),  # 1.2 MB: gzip, chunked
            "masks": rng.random((N, 80, 80)) > 0.8,  # 0.4 MB: contiguous
            "degenerate": rng.random(N) > 0.9, "threshold": rng.random(N).astype(np.float32)}


def _write_shards(directory, arrays, ids, size) -> list:
    paths = []
    for k, a in enumerate(range(0, len(ids), size)):
        with ShardWriter(shard_path(directory, k)) as w:
            for i in range(a, min(a + size, len(ids))):
                w.append(ids[i], {name: v[i] for name, v in arrays.items()})
        paths.append(shard_path(directory, k))
    return paths


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("size", [1, 7, N, 1000])
def test_merge_is_byte_identical_to_write_product_for_any_shard_size(tmp_path, size):
    arrays, ids = _arrays(), [f"G{i:04d}" for i in range(N)]
    attrs = {"out_size": 80, "units": "uint8"}
    ref = write_product(tmp_path / "ref.h5", arrays, ids, attrs, stage="segment", params_hash="abc")
    (tmp_path / "s").mkdir()
    paths = _write_shards(tmp_path / "s", arrays, ids, size)
    assert shard_ids(paths[-1]) == ids[(len(paths) - 1) * size:]
    out = merge_shards(paths, tmp_path / "out" / "m.h5", attrs, stage="segment", params_hash="abc")
    with h5py.File(out) as f:
        assert f["images"].compression == "gzip" and 1 < f["images"].chunks[0] < N and f["masks"].chunks is None
    assert _sha(out) == _sha(ref)
    got, got_ids, got_attrs = read_product(out)
    assert got_ids == ids and got_attrs["out_size"] == 80
    for name, value in arrays.items():
        np.testing.assert_array_equal(got[name], value)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.h5"]


def test_rows_layout_one_gzip_chunk_per_row_ids_last_same_bytes_for_any_sharding(tmp_path):
    x = np.random.default_rng(1).random((9, 4, 5, 5), dtype=np.float32)
    ids = [f"C{i}" for i in range(9)]
    hashes = set()
    for size in (1, 4, 9):
        d = tmp_path / f"s{size}"
        d.mkdir()
        out = merge_shards(_write_shards(d, {"cubes": x}, ids, size), tmp_path / f"m{size}.h5", {"wave": [1.0, 2.0]},
                           stage="s", params_hash="h", layout="rows")
        hashes.add(_sha(out))
    with h5py.File(out) as f:
        assert list(f) == ["cubes", "id_str"] and f["cubes"].chunks == (1, 4, 5, 5)
        assert f["cubes"].compression == "gzip" and f["cubes"].maxshape == (None, 4, 5, 5)
        np.testing.assert_array_equal(f["cubes"][()], x)
        assert list(f.attrs) == ["wave", "stage", "params_hash"]
    assert len(hashes) == 1
    with pytest.raises(ValueError, match="layout='columns'"):
        merge_shards([], tmp_path / "x.h5", {}, stage="s", params_hash="h", layout="columns")


def test_caller_arrays_are_written_after_the_shards_and_checked_for_length(tmp_path):
    x = np.zeros((3, 2), np.float32)
    ids = ["a", "b", "c"]
    paths = _write_shards(tmp_path, {"cubes": x}, ids, 2)
    plain = merge_shards(paths, tmp_path / "plain.h5", {}, stage="s", params_hash="h", layout="rows", arrays={})
    assert _sha(plain) == _sha(merge_shards(paths, tmp_path / "none.h5", {}, stage="s", params_hash="h", layout="rows"))
    out = merge_shards(paths, tmp_path / "m.h5", {}, stage="s", params_hash="h", layout="rows",
                       arrays={"survey": np.array(["califa", "manga", "manga"])})
    with h5py.File(out) as f:
        assert list(f) == ["cubes", "id_str", "survey"]
    assert list(read_product(out)[0]["survey"]) == ["califa", "manga", "manga"]
    with pytest.raises(ValueError, match="'survey' has 2 rows for 3 objects"):
        merge_shards(paths, tmp_path / "bad.h5", {}, stage="s", params_hash="h",
                     arrays={"survey": np.array(["a", "b"])})
    assert not (tmp_path / "bad.h5").exists()


def test_blocks_recut_rows_exactly_across_shards(tmp_path):
    x = np.arange(23, dtype=np.int64)
    paths = _write_shards(tmp_path, {"v": x}, [str(i) for i in range(23)], 5)
    blocks = list(shards._blocks(paths, "v", 4))
    assert [len(b) for b in blocks] == [4] * 5 + [3]
    np.testing.assert_array_equal(np.concatenate(blocks), x)


def test_writer_leaves_nothing_on_error_and_never_creates_its_directory(tmp_path):
    path = shard_path(tmp_path, 0)
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(path) as w:
        w.append("a", {"v": np.zeros(3)})
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"row 1 has datasets \['w'\]"), ShardWriter(path) as w:
        w.append("a", {"v": np.zeros(3)})
        w.append("b", {"w": np.zeros(3)})
    with pytest.raises(TypeError, match="dtype <U1"), ShardWriter(path) as w:
        w.append("a", {"v": np.array("x")})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match=r"shard directory not found.*shared filesystem"):
        ShardWriter(tmp_path / "gone" / "part-00000.h5").__enter__()
    assert not (tmp_path / "gone").exists()


def test_shard_dir_is_fresh_hidden_and_removed_even_on_failure(tmp_path):
    out = tmp_path / "data" / "images.h5"
    stale = tmp_path / "data" / ".images.h5.shards"
    stale.mkdir(parents=True)
    (stale / "part-00000.h5").write_text("left by a killed run")
    with shard_dir(out) as d:
        assert d == stale and d.is_absolute() and list(d.iterdir()) == []
    assert not stale.exists()
    with pytest.raises(KeyError), shard_dir(out) as d:
        _write_shards(d, {"v": np.zeros(4)}, list("abcd"), 2)
        raise KeyError("merge failed")
    assert list((tmp_path / "data").iterdir()) == []


def test_merge_of_a_missing_shard_fails_by_name_and_leaves_no_file(tmp_path):
    paths = _write_shards(tmp_path, {"v": np.zeros(4)}, list("abcd"), 2)
    paths[1].unlink()
    with pytest.raises(InputError, match=r"part-00001\.h5: shard file not found.*shared filesystem"):
        merge_shards(paths, tmp_path / "out.h5", {}, stage="s", params_hash="h")
    assert not (tmp_path / "out.h5").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.h5"]
