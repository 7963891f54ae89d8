"""Tests for the training loop: learning, determinism, augmentation, metrics and prediction."""

import dataclasses

import numpy as np
import pytest
import torch

from specmorph.evaluation.metrics import classification_metrics
from specmorph.models import ModelConfig
from specmorph.training.engine import augment_d4
from specmorph.training.loop import (
    TensorData,
    TrainParams,
    class_weights,
    predict_proba,
    train_model,
)

COLOURS = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]], np.float32)  # one RGB per class
CFG = ModelConfig(kind="rgb", n_classes=3, label_cols=("r", "g", "b"), image_size=32, depth=(1, 1), width=8, spec_dim=4)
FAST = TrainParams(epochs=5, batch_size=10, lr=1e-2, num_threads=1)


def _blobs(n: int = 60, seed: int = 0) -> TensorData:
    """n 32×32 images of a Gaussian blob whose colour is the class, at random position and size, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.empty((n, 3, 32, 32), np.float32)
    for i, c in enumerate(labels):
        cy, cx = rng.uniform(10, 22, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(3, 6) ** 2))
        images[i] = COLOURS[c][:, None, None] * blob + 0.05 * rng.standard_normal((3, 32, 32))
    spec = rng.standard_normal((n, 4)).astype(np.float32) + labels[:, None]
    spec[::4] = np.nan  # a quarter without a spectrum
    return TensorData(np.clip(images, 0, 1), labels, spec)


def test_learns_a_separable_problem():
    data = _blobs()
    seen = []
    model, history = train_model(CFG, FAST, data, data, on_epoch=lambda e, m: seen.append(e))
    assert seen == [1, 2, 3, 4, 5] and [h["epoch"] for h in history] == seen
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr"} <= set(history[-1])
    assert not model.training
    pred = predict_proba(model, data.images).argmax(1)
    acc = (pred == data.labels.numpy()).mean()
    assert acc > 0.9 and history[-1]["val_acc"] == pytest.approx(acc)
    # the one metrics module's macro-F1, not a second definition
    assert history[-1]["val_macro_f1"] == pytest.approx(
        classification_metrics(data.labels.numpy(), pred, ["0", "1", "2"])["macro_f1"])
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_concat_model_trains_with_partial_nan_spectra():
    data = _blobs(40)
    cfg = dataclasses.replace(CFG, kind="concat")
    model, history = train_model(cfg, dataclasses.replace(FAST, epochs=2), data, None)
    assert np.isfinite([h["train_loss"] for h in history]).all() and "val_loss" not in history[0]
    spec = data.spec.clone()
    has = data.has_spec
    assert torch.allclose(model.spectral.spec_mean, spec[has].mean(0))  # standardisation from rows with a spectrum
    p = predict_proba(model, data.images, spec, has)
    assert p.shape == (40, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.array_equal(
        predict_proba(model, data.images), predict_proba(model, data.images, spec, torch.zeros(40, dtype=torch.bool))
    )


def test_same_seed_same_weights_different_seed_differs():
    data = _blobs(24)
    params = dataclasses.replace(FAST, epochs=1, batch_size=8)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    a, _ = train_model(CFG, params, data, None)
    b, _ = train_model(CFG, params, data, None)
    c, _ = train_model(CFG, dataclasses.replace(params, seed=1), data, None)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, det)  # restored


def test_augment_d4_gives_dihedral_copies_of_square_and_oblong_grids():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    out = augment_d4(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(0))  # (100, 3, 5, 5)
    turns = [torch.rot90(x[0], k, dims=(1, 2)) for k in range(4)]
    allowed = {t.numpy().tobytes() for t in turns} | {t.flip(-1).numpy().tobytes() for t in turns}
    assert len(allowed) == 8  # the group D4, written out
    assert {a.tobytes() for a in out[0::2].numpy()} == allowed  # each output is one of the 8, and all 8 occur
    assert torch.equal(out, augment_d4(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(0)))
    rect = augment_d4(torch.arange(12.0).view(1, 1, 3, 4).expand(200, 1, 3, 4), torch.Generator().manual_seed(0))
    assert rect.shape == (200, 1, 3, 4) and len({tuple(o.flatten().tolist()) for o in rect}) == 4


def test_class_weights_known_answers():
    w = class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(w, torch.tensor([4 / 6, 4 / 2, 0.0]))


def test_bad_inputs_are_named():
    data = _blobs(8)
    with pytest.raises(ValueError, match="image_size 64"):
        train_model(dataclasses.replace(CFG, image_size=64), FAST, data, None)
    with pytest.raises(ValueError, match="spec"):
        TensorData(data.images, data.labels, np.zeros((7, 4), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        TrainParams(batch_size=1)


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8, 580])
def test_one_cycle_schedule_survives_very_short_runs(total_steps):
    from specmorph.torchutil import one_cycle_adamw

    model = torch.nn.Linear(3, 2)
    opt, sched = one_cycle_adamw(model, 1e-2, 1e-4, total_steps)
    lrs = []
    for _ in range(total_steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert all(np.isfinite(lrs)) and max(lrs) <= 1e-2 + 1e-12
    if total_steps == 580:  # long runs keep the requested 25% warm-up
        assert sched.total_steps == 580 and abs(sched._schedule_phases[0]["end_step"] - 144.0) < 1e-9
