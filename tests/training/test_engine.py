"""The one training engine: early stopping with the best weights restored, the kept epoch, the recipe's checks."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from specmorph.training.engine import Recipe, fit


@dataclass
class ScriptedTask:
    """A linear regression whose validation "loss" is read from a script, one value per epoch.

    `snapshots` records the weight after each epoch, so a test can check which epoch's weights came back.
    """

    val_script: list[float]
    monitor: str = "val_loss"
    n_rows: int = 16
    snapshots: list[torch.Tensor] = field(default_factory=list)
    x: torch.Tensor = field(default_factory=lambda: torch.linspace(-1, 1, 16)[:, None])

    def batch(self, idx, aug_gen, rank, world):
        return self.x[idx], 3.0 * self.x[idx]

    def objective(self, model, x, y):
        return ((model(x) - y) ** 2).mean(), {"rows": float(len(x))}

    def forward(self, model, idx):
        model(self.x[idx])

    def validate(self, model):
        self.snapshots.append(model.weight.detach().clone())
        return {"val_loss": self.val_script[len(self.snapshots) - 1]} if len(self.snapshots) <= len(
            self.val_script) else {"val_loss": -1.0}  # the final re-validation of the kept weights


def _linear() -> nn.Module:
    return nn.Linear(1, 1, bias=False)


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    task = ScriptedTask([5.0, 3.0, 4.0, 2.5, 2.6, 2.7, 2.8])
    model, history = fit(_linear, task, Recipe(epochs=8, batch_size=4, lr=0.05, patience=3, num_threads=1), "t")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6, 7]  # 3 epochs without a better score after 4
    assert [h["best"] for h in history] == [False, False, False, True, False, False, False]
    assert torch.equal(model.weight, task.snapshots[3])  # epoch 4's weights
    assert not torch.equal(task.snapshots[3], task.snapshots[6])  # and they differ from the last epoch's
    assert history[3]["val_loss"] == -1.0  # the kept epoch carries the returned weights' validation
    assert all(h["rows"] == 1.0 for h in history)  # logged sums become means over the epoch's rows


def test_without_patience_every_epoch_runs_and_the_last_weights_are_kept():
    task = ScriptedTask([5.0, 1.0, 4.0])
    model, history = fit(_linear, task, Recipe(epochs=3, batch_size=4, lr=0.05, patience=0, num_threads=1), "t")
    assert [h["best"] for h in history] == [False, False, True]
    assert torch.equal(model.weight, task.snapshots[2])


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not():
    def run(seed):
        return fit(_linear, ScriptedTask([1.0] * 3), Recipe(epochs=3, batch_size=4, seed=seed, num_threads=1), "t")[0]
    assert torch.equal(run(0).weight, run(0).weight)
    assert not torch.equal(run(0).weight, run(1).weight)


def test_recipe_rejects_out_of_range_values_by_name():
    with pytest.raises(ValueError, match=r"Recipe out of range: patience=-1, pct_start=1\.0"):
        Recipe(patience=-1, pct_start=1.0)
    with pytest.raises(ValueError, match="need at least 2 training rows"):
        fit(_linear, ScriptedTask([1.0], n_rows=1), Recipe(epochs=1), "t")
