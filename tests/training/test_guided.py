"""Tests for the training plan of each `model` choice and for training its jobs in order."""

import numpy as np
import pytest
import torch

from specmorph.models import ModelConfig
from specmorph.params import ParamsError
from specmorph.training import guided
from specmorph.training.guided import Job, plan, train_jobs
from specmorph.training.loop import TensorData, TrainParams
from specmorph.training.objectives import LossParams

BASE = ModelConfig(kind="rgb", n_classes=3, label_cols=("a", "b", "c"), image_size=32, depth=(1, 1), width=8,
                   feature_dim=16, head_hidden=8, spec_dim=5, spec_hidden=8)
RGB = Job("rgb_only", "rgb")
# Every row of the table in guided.py's module docstring.
TABLE = [
    *[("rgb_only", r, [RGB]) for r in ("drop", "hallucinate", "distil")],
    ("concat", "drop", [RGB, Job("concat", "concat", rgb_inference="drop")]),
    ("gated", "drop", [RGB, Job("gated", "gated", rgb_inference="drop")]),
    ("gated", "hallucinate", [RGB, Job("gated", "gated", rgb_inference="hallucinate")]),
    ("concat", "distil", [RGB, Job("concat_teacher", "concat"), Job("concat", "rgb", teacher="concat_teacher")]),
    ("gated", "distil", [RGB, Job("gated_teacher", "gated"), Job("gated", "rgb", teacher="gated_teacher")]),
    *[("kd", r, [RGB, Job("kd_teacher", "concat"), Job("kd", "rgb", teacher="kd_teacher")])
      for r in ("drop", "hallucinate", "distil")],
]


@pytest.mark.parametrize(("model", "rgb_inference", "expected"), TABLE)
def test_plan_follows_the_table(model, rgb_inference, expected):
    jobs = plan(model, rgb_inference)
    assert jobs == expected
    assert jobs[0] == RGB and jobs[-1].name == model  # the baseline first, the user's network last
    for job in jobs:  # every job builds a valid config
        assert ModelConfig.from_dict({**BASE.to_dict(), "kind": job.kind, "rgb_inference": job.rgb_inference})


@pytest.mark.parametrize(("model", "rgb_inference", "needles"), [
    ("gated", "dream", ["rgb_inference must be one of", "'dream'"]),
    ("concat", "hallucinate", ["'hallucinate'", "not concat"]),
])
def test_plan_rejects_bad_choices(model, rgb_inference, needles):
    with pytest.raises(ParamsError) as err:
        plan(model, rgb_inference)
    assert all(n in str(err.value) for n in needles), str(err.value)


def _data(n: int = 12, seed: int = 0) -> TensorData:
    rng = np.random.default_rng(seed)
    spec = rng.standard_normal((n, 5)).astype(np.float32)
    spec[::3] = np.nan
    return TensorData(rng.uniform(0, 1, (n, 3, 32, 32)).astype(np.float32), np.arange(n) % 3, spec)


class FakeTrain:
    """Stands in for `train_model`: records each call and returns a fresh object as the model."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, cfg, params, train, val, on_epoch=None, teacher=None, losses=None):
        model = object()
        self.calls.append({"cfg": cfg, "params": params, "teacher": teacher, "losses": losses, "on_epoch": on_epoch,
                           "model": model, "train": train, "val": val})
        return model, [{"epoch": 1}]


def test_train_jobs_passes_the_trained_teacher_to_the_student(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(guided, "train_model", fake)
    params, losses, data = TrainParams(epochs=1, seed=3), LossParams(kd_alpha=0.7), _data()
    callbacks = {}

    def on_epoch_for(name):
        callbacks[name] = lambda epoch, metrics: None
        return callbacks[name]

    done = train_jobs(plan("gated", "distil"), BASE, params, losses, data, None, on_epoch_for)
    assert list(done) == ["rgb_only", "gated_teacher", "gated"]
    assert [(c["cfg"].kind, c["cfg"].rgb_inference) for c in fake.calls] == [("rgb", "drop"), ("gated", "drop"),
                                                                              ("rgb", "drop")]
    assert fake.calls[0]["teacher"] is None and fake.calls[1]["teacher"] is None
    assert fake.calls[2]["teacher"] is fake.calls[1]["model"] is done["gated_teacher"].model
    assert all(c["params"] is params and c["losses"] is losses and c["train"] is data for c in fake.calls)
    assert [c["on_epoch"] for c in fake.calls] == [callbacks[n] for n in done]
    assert done["gated"].cfg.kind == "rgb" and done["gated"].history == [{"epoch": 1}]
    assert done["gated"].cfg.spec_dim == BASE.spec_dim  # everything else comes from the base config


def test_train_jobs_control_hides_spectra_from_teacher_and_student_only(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(guided, "train_model", fake)
    data = _data()
    assert data.spec is not None
    train_jobs(plan("kd", "drop"), BASE, TrainParams(), LossParams(), data, None, teacher_spectra=False)
    baseline, teacher, student = fake.calls
    assert baseline["train"] is data  # the baseline is unchanged (it ignores spectra anyway)
    for call in (teacher, student):
        assert call["train"].spec is None and call["train"].has_spec is None
        assert torch.equal(call["train"].images, data.images) and torch.equal(call["train"].labels, data.labels)


def test_train_jobs_hallucinate_config(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(guided, "train_model", fake)
    done = train_jobs(plan("gated", "hallucinate"), BASE, TrainParams(), LossParams(), _data(), None)
    assert done["gated"].cfg.rgb_inference == "hallucinate" and done["rgb_only"].cfg.rgb_inference == "drop"
    assert fake.calls[0]["on_epoch"] is None


def test_train_jobs_teacher_must_come_first(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(guided, "train_model", fake)
    jobs = [RGB, Job("kd", "rgb", teacher="kd_teacher"), Job("kd_teacher", "concat")]
    with pytest.raises(ValueError, match="kd distils from kd_teacher"):
        train_jobs(jobs, BASE, TrainParams(), LossParams(), _data(), None)
    assert len(fake.calls) == 1  # only the baseline ran


def test_train_jobs_really_trains_a_distilled_student():
    data = _data()
    params = TrainParams(epochs=1, batch_size=6, num_threads=1, augment=False)
    done = train_jobs(plan("kd", "drop"), BASE, params, LossParams(), data, _data(6, seed=1))
    assert list(done) == ["rgb_only", "kd_teacher", "kd"]
    assert type(done["kd_teacher"].model).__name__ == "ConcatFusion"
    assert type(done["kd"].model).__name__ == "RgbClassifier"
    for trained in done.values():
        assert len(trained.history) == 1 and np.isfinite(trained.history[0]["train_loss"])
        assert "val_acc" in trained.history[0] and not trained.model.training


@pytest.mark.parametrize(("model", "rgb_inference", "expected"), TABLE)
def test_chains_keep_a_student_with_its_teacher_and_nothing_else_together(model, rgb_inference, expected):
    groups = guided.chains(plan(model, rgb_inference))
    assert [job for group in groups for job in group] == expected  # the plan's order, every job once
    assert all(len(g) == 1 or (len(g) == 2 and g[1].teacher == g[0].name) for g in groups)
    with pytest.raises(ValueError, match="kd distils from kd_teacher"):
        guided.chains([RGB, Job("kd", "rgb", teacher="kd_teacher")])


def test_networks_trained_side_by_side_equal_those_trained_here():
    """Two Dask workers (one thread each) return the weights and epoch logs that one process, one after another,
    returns: the checkpoints do not depend on train.workers (two code paths, one run)."""
    from functools import partial

    from specmorph.executor import map_shards
    from specmorph.stage_utils import without_timing
    from specmorph.training.loop import network_executor

    data, val = _data(), _data(6, seed=1)
    items = [(seed, group) for seed in (0, 1) for group in guided.chains(plan("kd", "drop"))]
    runs = {}
    for workers in (1, 2):
        executor, threads = network_executor(workers)
        assert executor.kind == ("dask" if workers > 1 else "local") and threads == 1
        params = TrainParams(epochs=1, batch_size=6, num_threads=threads, augment=True)
        task = partial(guided.train_chains, base=BASE, params=params, losses=LossParams(), train=data, val=val)
        runs[workers] = [r for shard in map_shards(task, items, executor, "test", disable=True) for r in shard]
    assert network_executor(4, "cuda")[0].kind == "local"  # a GPU trains its networks one after another
    here, there = runs[1], runs[2]
    assert [(r["seed"], list(r["trained"])) for r in here] == [(0, ["rgb_only"]), (0, ["kd_teacher", "kd"]),
                                                                (1, ["rgb_only"]), (1, ["kd_teacher", "kd"])]
    for a, b in zip(here, there, strict=True):
        assert list(a["epochs"]) == list(a["trained"])
        assert {k: without_timing(v) for k, v in a["epochs"].items()} == {
            k: without_timing(v) for k, v in b["epochs"].items()}
        for name in a["trained"]:
            sa, sb = a["trained"][name].model.state_dict(), b["trained"][name].model.state_dict()
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    w0, w1 = (here[i]["trained"]["rgb_only"].model.state_dict() for i in (0, 2))
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)  # each item trains under its own seed
