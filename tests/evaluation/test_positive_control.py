"""The positive control end to end on small synthetic sets: train rgb_only and gated, test with spectra, ablate.

Images carry the class weakly (a faint class-dependent colour); spectral features carry it strongly when
the dial is on (class centroids, as `sky.spectral_information` writes into the cubes, test_spectral_information)
and not at all when it is off. The ablation must find the gain when on and an interval covering 0 when off.
"""

import numpy as np
import pytest
import torch

from specmorph.evaluation.ablation import ablation
from specmorph.models.config import ModelConfig
from specmorph.training.loop import TensorData, TrainParams, predict_proba, train_model

C, SIZE, SPEC_DIM = 4, 16, 12


def _set(n: int, dial: float, rng: np.random.Generator) -> TensorData:
    y = rng.integers(0, C, n)
    images = rng.uniform(0.2, 0.8, (n, 3, SIZE, SIZE)).astype(np.float32)
    images[:, 0] += 0.01 * (y[:, None, None] - 1.5)  # a faint red cue: RGB alone is barely better than chance
    centroids = np.random.default_rng(0).normal(size=(C, SPEC_DIM))
    spec = (dial * 2.0 * centroids[y] + rng.normal(size=(n, SPEC_DIM))).astype(np.float32)
    return TensorData(np.clip(images, 0, 1), y, spec, np.ones(n, bool))


def _cfg(kind: str) -> ModelConfig:
    return ModelConfig(kind=kind, n_classes=C, label_cols=[str(c) for c in range(C)], image_size=SIZE, depth=(1,),
                       width=4, feature_dim=16, head_hidden=0, spec_dim=SPEC_DIM, spec_hidden=16, spec_dropout=0.3)


@pytest.mark.parametrize("dial, detected", [(1.0, True), (0.0, False)])
def test_the_ablation_finds_the_gain_of_informative_spectra_and_none_without(dial, detected):
    rng = np.random.default_rng(5)
    fit, val, test = _set(400, dial, rng), _set(100, dial, rng), _set(300, dial, rng)
    preds: dict[str, dict[int, np.ndarray]] = {"rgb": {}, "gated": {}}
    torch.set_num_threads(1)
    for seed in (0, 1):
        tp = TrainParams(epochs=10, patience=0, batch_size=32, lr=0.005, seed=seed, num_threads=1, augment=False)
        for kind in preds:
            model, _ = train_model(_cfg(kind), tp, fit, val)
            spec = test.spec if kind == "gated" else None
            preds[kind][seed] = predict_proba(model, test.images, spec).argmax(axis=1)
    r = ablation(test.labels.numpy(), preds["rgb"], preds["gated"], np.arange(len(test)), C, n_boot=500, seed=0)
    acc = r["accuracy"]
    assert acc["detected"] is detected, acc
    if detected:
        assert acc["diff_mean"] > acc["mde"]["combined"]
