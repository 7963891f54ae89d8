"""Tests for the executor: params, shards in order, local vs a Dask LocalCluster, failures, sharded embeddings."""

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from functools import partial

import cloudpickle
import numpy as np
import pytest
import torch

from specmorph import executor
from specmorph.errors import InputError
from specmorph.executor import ExecutorParams, executor_params, map_items, map_shards, shards
from specmorph.params import ParamsError
from specmorph.spectral.cubeprep import CubePrep, open_prepared
from specmorph.spectral.embedder_io import build_embedder, save_embedder
from specmorph.spectral.embedding import embed_all, embed_prepared
from specmorph.spectral.encoders import EmbedderConfig

pytestmark = pytest.mark.timeout(120)
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


def _tagged(index: int, items: list) -> tuple[int, list, int]:
    return index, [x * 10 for x in items], os.getpid()


def _fails_on_7(index: int, items: list) -> list:
    if 7 in items:
        raise ValueError(f"cannot handle item 7 (shard {index})")
    return items


def _square_shard(index: int, items: list) -> list:
    return [x * x for x in items]


def _missing_file(index: int, items: list) -> None:
    raise InputError(f"/nowhere/{items[0]}.fits: no such file")


def test_executor_params_from_params_name_the_bad_key():
    assert executor_params({}) == ExecutorParams()
    ex = executor_params({"executor": "dask", "dask": {"address": None, "workers": 3, "shard_size": 10}})
    assert ex == ExecutorParams(kind="dask", address=None, workers=3, shard_size=10)
    with pytest.raises(ParamsError, match=r"executor = 'spark'"):
        executor_params({"executor": "spark"})
    with pytest.raises(ParamsError, match=r"dask\.threads"):
        executor_params({"dask": {"threads": 2}})
    with pytest.raises(ParamsError, match=r"dask\.kind"):
        executor_params({"dask": {"kind": "dask"}})
    with pytest.raises(ParamsError, match=r"dask\.workers = '2'"):
        executor_params({"dask": {"workers": "2"}})
    with pytest.raises(ParamsError, match=r"dask: shard_size=0"):
        executor_params({"dask": {"shard_size": 0}})
    with pytest.raises(ParamsError, match=r"dask: address=8786"):
        executor_params({"dask": {"address": 8786}})


def test_shards_cut_in_order():
    assert shards(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert shards(list(range(5)), 1) == [[i] for i in range(5)]
    assert shards(list(range(5)), 9) == [[0, 1, 2, 3, 4]]
    assert shards([], 3) == []


def _squares(index: int, items: list[int]) -> list[int]:
    return [x * x for x in items]


def test_map_items_gives_one_result_per_item_in_order():
    assert map_items(_squares, range(7), ExecutorParams(shard_size=3), "test", disable=True) == [
        x * x for x in range(7)]


@pytest.mark.parametrize("size", [1, 3, 10, 25])
def test_local_and_dask_give_the_same_shards_in_order(dask_ex, size):
    items = list(range(10))
    local = map_shards(_tagged, iter(items), ExecutorParams(shard_size=size), desc="t")
    dask = map_shards(_tagged, items, replace(dask_ex, shard_size=size), desc="t")
    expected = [(i, [x * 10 for x in part], None) for i, part in enumerate(shards(items, size))]
    assert [(i, out, None) for i, out, _ in local] == expected
    assert [(i, out, None) for i, out, _ in dask] == expected
    assert {pid for *_, pid in local} == {os.getpid()}
    assert os.getpid() not in {pid for *_, pid in dask}  # ran on the workers
    assert map_shards(_tagged, [], replace(dask_ex, shard_size=size), desc="t") == []


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_failing_shard_raises_its_error_naming_its_items(dask_ex, kind):
    ex = replace(dask_ex, shard_size=3) if kind == "dask" else ExecutorParams(shard_size=3)
    with pytest.raises(ValueError, match="cannot handle item 7") as info:
        map_shards(_fails_on_7, range(10), ex, desc="job")
    assert "job: shard 3 of 4 failed; its item(s): [6, 7, 8]" in info.value.__notes__
    with pytest.raises(InputError, match="no such file") as info:
        map_shards(_missing_file, ["a", "b"], replace(ex, shard_size=1), desc="job")
    notes = "\n".join(info.value.__notes__)
    assert "its item(s): [a]" in notes or "its item(s): [b]" in notes
    assert ("shared filesystem" in notes) == (kind == "dask")


def test_a_local_cluster_of_its_own_and_a_cheap_import():
    ex = ExecutorParams(kind="dask", workers=1, shard_size=4)
    assert [out for _, out, _ in map_shards(_tagged, range(6), ex, desc="own")] == [[0, 10, 20, 30], [40, 50]]
    code = "import sys, specmorph.executor; print('distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _prepared(path, n: int, c: int = 4, grid: tuple[int, int] = (6, 6)) -> np.ndarray:
    """A minimal prepared-cube product of n random cubes, as `open_prepared` reads it."""
    import h5py

    cubes = np.random.default_rng(0).random((n, c, *grid), dtype=np.float32)
    with h5py.File(path, "w") as f:
        f["cubes"] = cubes
        f["id_str"] = np.array([f"G{i}" for i in range(n)], dtype=h5py.string_dtype())
        f.attrs["cube_prep"] = json.dumps(CubePrep(grid=grid, n_channels=c).to_dict())
    return cubes


@pytest.mark.parametrize("kind", ["siamese", "sae"])
def test_sharded_embeddings_equal_the_in_memory_call(tmp_path, dask_ex, kind):
    torch.manual_seed(0)
    cubes = _prepared(tmp_path / "cubes.h5", 150, grid=(8, 8))
    cfg = EmbedderConfig(kind=kind, in_channels=4, grid=(8, 8), embed_dim=8, width=4,
                         n_classes=0 if kind == "siamese" else 3)
    model = build_embedder(cfg)
    save_embedder(tmp_path / "m.pt", model, cfg, {})
    expected = embed_all(model, cubes)
    with open_prepared(tmp_path / "cubes.h5") as (data, ids, _):
        assert len(data) == 150 and ids[-1] == "G149"
    for ex in (ExecutorParams(), ExecutorParams(shard_size=1), replace(dask_ex, shard_size=100)):
        got = embed_prepared(tmp_path / "m.pt", tmp_path / "cubes.h5", ex)
        assert got.dtype == np.float32 and got.shape == (150, 8)
        np.testing.assert_array_equal(got, expected)


def test_map_shards_passes_partials(dask_ex):
    fn = partial(_scaled, 3)
    assert map_shards(fn, range(5), replace(dask_ex, shard_size=2), desc="p") == [[0, 3], [6, 9], [12]]


def _scaled(factor: int, index: int, items: list) -> list:
    return [factor * x for x in items]


@pytest.mark.parametrize("disable", [None, True])
def test_a_hidden_bar_logs_its_progress_only_for_want_of_a_terminal(caplog, monkeypatch, disable):
    """Under pytest stderr is no terminal, so disable=None hides the bar: the progress goes to the log
    (every shard here, LOG_EVERY_S = 0), ending at the total; disable=True (asked for) logs nothing."""
    monkeypatch.setattr(executor, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="specmorph.executor"):
        out = map_shards(_square_shard, list(range(10)), ExecutorParams(kind="local", shard_size=4), "squares",
                         unit="n", disable=disable)
    assert out == [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]]
    lines = [r.getMessage() for r in caplog.records if r.name == "specmorph.executor"]
    assert lines == ([] if disable else ["squares: 4/10 n (40%)", "squares: 8/10 n (80%)", "squares: 10/10 n (100%)"])
