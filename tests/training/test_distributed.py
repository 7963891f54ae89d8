"""Data-parallel training on 2 CPU processes (gloo): DDP gradients, identical ranks, rank-0-only writes.

The fixture launches this file twice as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the
environment); each process runs `_worker`, which saves what it computed for the tests to compare.
"""

import dataclasses
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch.nn import functional as F

from specmorph.io.hdf5 import write_product
from specmorph.models import ModelConfig, build_model
from specmorph.torchutil import batch_indices, one_cycle_adamw, torch_settings
from specmorph.training import distributed
from specmorph.training.engine import augment_d4, recompute_bn
from specmorph.training.loop import TensorData, TrainParams, class_weights, train_model
from specmorph.training.objectives import LossParams, make_objective

REPO = Path(__file__).resolve().parents[2]
GATED = ModelConfig(kind="gated", n_classes=3, label_cols=("a", "b", "c"), image_size=16, depth=(1,), width=4,
                    feature_dim=16, head_hidden=8, spec_dim=5, spec_hidden=8)
PARAMS = TrainParams(epochs=2, batch_size=8, lr=5e-3, num_threads=1)
STEP_ROWS = torch.arange(8)  # one global batch; rank r takes rows r::2 (rank 1's rows have no spectrum)
TIMING = ("seconds", "rows_per_s")


@pytest.fixture(autouse=True)
def one_thread():
    """The ranks run one torch thread each; single-process references must too (same reduction order)."""
    with torch_settings(1):
        yield


def _data(n: int, seed: int) -> TensorData:
    """n random 16×16 images of 3 classes; rows 0, 2, 4, ... have a spectrum."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    spec = rng.standard_normal((n, 5)).astype(np.float32) + labels[:, None]
    spec[1::2] = np.nan
    return TensorData(rng.random((n, 3, 16, 16), dtype=np.float32), labels, spec)


TRAIN, VAL = _data(30, 0), _data(10, 1)


def _fresh_gated() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(GATED)
    model.spectral.set_normalisation(TRAIN.spec[TRAIN.has_spec])
    return model


def _shard_step(model: torch.nn.Module, step, rank: int) -> torch.Tensor:
    """Forward and backward of rank `rank`'s half of STEP_ROWS, with that rank's dropout seed."""
    torch.manual_seed(1000 + rank)
    loss, _ = step(*TRAIN.batch(STEP_ROWS[rank::2]))
    loss.backward()
    return loss


def _ddp_step() -> dict:
    """One DistributedDataParallel step of the gated model: gradients, then the weights after AdamW."""
    model = _fresh_gated()
    step = distributed.wrap_step(model, make_objective(model, None, LossParams(), None), torch.device("cpu"))
    _shard_step(model, step, distributed.rank())
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()
    return {"grads": grads, "weights": {n: p.detach().clone() for n, p in model.named_parameters()}}


def _train_teacher_and_student() -> dict:
    """`train_model` in the process group: a gated teacher (2 epochs), then an RGB student distilled from it."""
    teacher, t_hist = train_model(GATED, PARAMS, TRAIN, VAL)
    student, s_hist = train_model(dataclasses.replace(GATED, kind="rgb"), dataclasses.replace(PARAMS, epochs=1),
                                  TRAIN, VAL, teacher=teacher)
    return {"teacher": teacher.state_dict(), "student": student.state_dict(), "histories": [t_hist, s_hist]}


def _stage_inputs(work: Path) -> list[str]:
    """A tiny image table, segment product, embedding and params.yaml for stages/train.py; returns its argv."""
    rng = np.random.default_rng(0)
    n = 24
    califa = [f"C{i}" if i % 2 == 0 else "" for i in range(n)]
    pd.DataFrame({"id_str": [f"g{i}" for i in range(n)], "galaxy_id": [f"G{i}" for i in range(n)],
                  "label": np.arange(n) % 3, "split": "train", "califa_name": califa}).to_csv(work / "images.csv",
                                                                                            index=False)
    ids = [f"g{i}" for i in range(n)]
    write_product(work / "seg.h5", {"images": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)}, ids, {},
                  "segment", "")
    names = [c for c in califa if c]
    write_product(work / "emb.h5", {"embedding": rng.standard_normal((len(names), 5)).astype(np.float32)}, names,
                  {}, "embed", "")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"] = "gated"
    params["train"]["budget"][params["profile"]] = {"image_size": 16, "depth": [1], "width": 4, "epochs": 1,
                                                    "patience": 0}
    params["train"].update(feature_dim=16, head_hidden=8, spec_hidden=8, batch_size=8, device="cpu", backend="gloo")
    params["evaluate"]["seeds"] = [0]
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return ["--params", str(work / "params.yaml"), "--images", str(work / "images.csv"), "--segmented",
            str(work / "seg.h5"), "--features", str(work / "emb.h5"), "--models-dir", str(work / "models"),
            "--live-dir", str(work / "live"), "--metrics", str(work / "train.json")]


def _run_stage(argv: list[str]) -> list[str]:
    """Runs stages/train.py's main() (it leaves and destroys the process group); returns what this rank wrote."""
    spec = importlib.util.spec_from_file_location("stage_train", REPO / "stages" / "train.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    writes: list[str] = []

    def recorded(fn, what):
        def call(*args, **kwargs):
            writes.append(what)
            return fn(*args, **kwargs)
        return call

    stage.save_checkpoint = recorded(stage.save_checkpoint, "checkpoint")
    stage.write_metrics = recorded(stage.write_metrics, "metrics")
    stage.Live = recorded(stage.Live, "dvclive")
    stage.main(argv)
    return writes


def _worker(work: Path) -> None:
    """One rank: joins the group from the environment, then the DDP step, `train_model` and the stage."""
    torch.set_num_threads(1)
    distributed.setup("cpu", "gloo")
    rank = distributed.rank()
    torch.save(_ddp_step(), work / f"step_rank{rank}.pt")
    torch.save(_train_teacher_and_student(), work / f"train_rank{rank}.pt")
    writes = _run_stage(json.loads((work / "argv.json").read_text()))
    (work / f"writes_rank{rank}.json").write_text(json.dumps({"writes": writes, "active": distributed.active()}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> Path:
    """Runs `_worker` in 2 processes (gloo, CPU) and returns their output directory."""
    work = tmp_path_factory.mktemp("ddp")
    (work / "argv.json").write_text(json.dumps(_stage_inputs(work)))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
           "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    procs = []
    for r in range(2):
        log = (work / f"rank{r}.log").open("w")
        procs.append(subprocess.Popen([sys.executable, __file__, str(work)], cwd=work, stdout=log,
                                      stderr=subprocess.STDOUT, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}))
    codes = [p.wait(timeout=180) for p in procs]
    logs = "\n".join((work / f"rank{r}.log").read_text()[-3000:] for r in range(2))
    assert codes == [0, 0], logs
    return work


def test_ddp_gradients_are_the_mean_of_the_ranks_shard_gradients(ranks):
    # Reference in one process: each rank's shard separately (BatchNorm uses each rank's own rows; SyncBatchNorm
    # refuses CPU tensors), gradients averaged; a parameter unused on a shard counts zero there (DDP).
    per_shard = []
    for r in range(2):
        model = _fresh_gated()
        _shard_step(model, lambda *b, m=model: make_objective(m, None, LossParams(), None)(m, *b), r)
        per_shard.append({n: p.grad for n, p in model.named_parameters()})
    unused_on_rank1 = [n for n, g in per_shard[1].items() if g is None]
    assert any(n.startswith("aux") for n in unused_on_rank1)  # the gated auxiliary head: no spectrum on rank 1
    ref = _fresh_gated()
    for n, p in ref.named_parameters():
        g0, g1 = (torch.zeros_like(p) if s[n] is None else s[n] for s in per_shard)
        p.grad = (g0 + g1) / 2
    torch.optim.AdamW(ref.parameters(), lr=1e-2).step()
    for r in range(2):
        got = torch.load(ranks / f"step_rank{r}.pt")
        for n, p in ref.named_parameters():
            torch.testing.assert_close(got["grads"][n], p.grad, rtol=1e-6, atol=1e-9, msg=f"rank {r} grad {n}")
            torch.testing.assert_close(got["weights"][n], p.detach(), rtol=1e-6, atol=1e-9, msg=f"rank {r} {n}")
    assert not torch.equal(per_shard[0]["trunk.proj.0.weight"], per_shard[1]["trunk.proj.0.weight"])


def test_train_model_gives_every_rank_the_same_weights_and_history(ranks):
    a, b = (torch.load(ranks / f"train_rank{r}.pt") for r in range(2))
    for name in ("teacher", "student"):
        assert a[name].keys() == b[name].keys()
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
    for ha, hb in zip(a["histories"], b["histories"], strict=True):
        assert [{k: v for k, v in e.items() if k not in TIMING} for e in ha] == \
               [{k: v for k, v in e.items() if k not in TIMING} for e in hb]
    assert [len(h) for h in a["histories"]] == [2, 1] and np.isfinite(a["histories"][0][-1]["val_loss"])
    # 30 rows: one process takes 4 steps of 8 rows an epoch; 2 ranks take 4 of 4 (15 rows each): the same schedule.
    opt, sched = one_cycle_adamw(torch.nn.Linear(1, 1), PARAMS.lr, PARAMS.weight_decay, 2 * 4)
    lrs = []
    for _ in range(8):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert [e["lr"] for e in a["histories"][0]] == lrs[3::4]


def test_only_rank_0_writes_and_the_group_is_left(ranks):
    logs = [json.loads((ranks / f"writes_rank{r}.json").read_text()) for r in range(2)]
    assert logs[0]["writes"] == ["dvclive", "checkpoint", "dvclive", "checkpoint", "metrics"]
    assert logs[1]["writes"] == []
    assert not logs[0]["active"] and not logs[1]["active"]
    assert sorted(p.name for p in (ranks / "models").iterdir()) == ["gated_seed0.pt", "rgb_only_seed0.pt"]
    assert not (ranks / ".models.partial").exists()
    assert json.loads((ranks / "train.json").read_text())["model"] == "gated"


def test_shard_is_distributed_samplers_split_of_each_global_batch():
    order = torch.tensor([5, 3, 1, 0, 2])
    assert distributed.shard(order, 0, 2).tolist() == [5, 1, 2]  # padded with the order's head, as DistributedSampler
    assert distributed.shard(order, 1, 2).tolist() == [3, 0, 5]
    assert distributed.shard(order, 0, 1) is order
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    for r in range(3):
        local = batch_indices(distributed.shard(perm, r, 3), 2)
        assert [b.tolist() for b in local] == [b[r::3].tolist() for b in batch_indices(perm, 6)]
    assert distributed.local_batch_size(64, 2) == 32
    with pytest.raises(ValueError, match="batch_size 9 is the global batch"):
        distributed.local_batch_size(9, 2)


def test_augmentation_shards_are_the_rows_of_the_global_batch():
    x = torch.rand(8, 3, 5, 5)
    whole = augment_d4(x, torch.Generator().manual_seed(3))
    for r in range(2):
        assert torch.equal(augment_d4(x[r::2], torch.Generator().manual_seed(3), r, 2), whole[r::2])


def test_one_process_is_untouched():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_sum([1.5, 2], torch.device("cpu")) == [1.5, 2]
    model = torch.nn.Linear(2, 2)
    step = distributed.wrap_step(model, lambda m, x, y, s, h: (m(x).sum(), m(x)), torch.device("cpu"))
    assert not isinstance(step, torch.nn.parallel.DistributedDataParallel)
    with pytest.raises(ValueError, match=r"train\.device must be one of cpu, cuda"):
        distributed.setup("tpu")


def _reference_loop(cfg: ModelConfig, params: TrainParams, train: TensorData, val: TensorData) -> tuple:
    """The single-process recipe written out without any of `training.distributed`: the loop before DDP.

    Seeds, model, spectral normalisation, class weights, AdamW one-cycle, the seeded order in batches,
    D4 augmentation, the objective, the exact BatchNorm statistics after the last epoch and the RGB-only
    validation.
    """
    torch.manual_seed(params.seed)
    order_gen = torch.Generator().manual_seed(params.seed)
    aug_gen = torch.Generator().manual_seed(params.seed + 1)
    model = build_model(cfg)
    if getattr(model, "spectral", None) is not None:
        model.spectral.set_normalisation(train.spec[train.has_spec])
    objective = make_objective(model, None, LossParams(), class_weights(train.labels, cfg.n_classes), 0.0)
    steps = len(batch_indices(torch.arange(len(train)), params.batch_size))
    opt, sched = one_cycle_adamw(model, params.lr, params.weight_decay, params.epochs * steps)
    train_loss, val_loss = [], []
    for epoch in range(params.epochs):
        model.train()
        total = 0.0
        for idx in batch_indices(torch.randperm(len(train), generator=order_gen), params.batch_size):
            x, y, spec, has_spec = train.batch(idx)
            loss, _ = objective(model, augment_d4(x, aug_gen), y, spec, has_spec)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        train_loss.append(total / len(train))
        if epoch == params.epochs - 1:
            recompute_bn(model, lambda idx: model(*[train.batch(idx)[i] for i in (0, 2, 3)]), len(train),
                         params.batch_size)
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(val.images[idx]) for idx in torch.arange(len(val)).split(params.batch_size)])
            val_loss.append(float(F.cross_entropy(logits, val.labels)))
    return model, train_loss, val_loss


@pytest.mark.parametrize(("kind", "seed"), [("rgb", 0), ("gated", 1)])
def test_one_process_matches_the_loop_before_ddp(kind, seed):
    # Two code paths in one run, so the comparison holds on any CPU and BLAS (no recorded numbers): `train_model`
    # in one process must be the plain loop, bit for bit; the data-parallel plumbing is the identity at W = 1.
    rng = np.random.default_rng(0)
    labels = np.arange(45) % 3
    spec = rng.standard_normal((45, 5)).astype(np.float32) + labels[:, None]
    spec[::3] = np.nan
    train = TensorData(rng.random((45, 3, 16, 16), dtype=np.float32), labels, spec)
    val = TensorData(np.random.default_rng(1).random((20, 3, 16, 16), dtype=np.float32), np.arange(20) % 3)
    cfg = dataclasses.replace(GATED, kind=kind, depth=(1, 1))
    params = TrainParams(epochs=3, batch_size=8, lr=5e-3, seed=seed, num_threads=1)
    model, history = train_model(cfg, params, train, val)
    ref, train_loss, val_loss = _reference_loop(cfg, params, train, val)
    assert [e["train_loss"] for e in history] == train_loss
    assert [e["val_loss"] for e in history] == val_loss
    assert len(set(train_loss)) == 3  # it trained: the losses moved
    got, want = model.state_dict(), ref.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in got)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
