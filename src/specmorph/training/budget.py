"""The `train` and `cvt` params sections, typed, and what `profile` sets in them: network size, training length.

`train.budget.<profile>` and `cvt.budget.<profile>` in params.yaml; every model compared in one study
(the RGB-only baseline and each guided model; the CvT and its ResNet baseline) gets the same budget.
The stages build these with `params.build`, which rejects unknown keys and wrong types by dotted name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _check(name: str, bad: dict[str, bool], obj: object) -> None:
    if any(bad.values()):
        names = ", ".join(f"{k}={getattr(obj, k)}" for k, v in bad.items() if v)
        raise ValueError(f"{name} out of range: {names}")


@dataclass(frozen=True)
class Budget:
    """The ResNet classifiers' budget (`train.budget.<profile>`).

    Attributes:
        image_size: network input side, px.
        depth: residual blocks per stage.
        width: channels of the first stage (doubling per stage).
        epochs: most passes over the training images.
        patience: early stopping on the validation loss after this many epochs without improvement,
            best weights restored (0: every epoch, last weights).
    """

    image_size: int = 64
    depth: tuple[int, ...] = (1, 1, 1)
    width: int = 16
    epochs: int = 20
    patience: int = 0

    def __post_init__(self) -> None:
        _check("Budget", {"image_size": self.image_size < 8, "depth": not self.depth or min(self.depth) < 1,
                          "width": self.width < 1, "epochs": self.epochs < 1, "patience": self.patience < 0}, self)


@dataclass(frozen=True)
class CvtBudget:
    """The CvT study's budget (`cvt.budget.<profile>`); its ResNet baseline takes `train`'s depth and width.

    Attributes:
        image_size: network input side, px (divided by 4, 2, 2 by the CvT stages).
        dims: embedding width per stage.
        depths: transformer blocks per stage.
        heads: attention heads per stage.
        epochs: passes over the training images (both models).
    """

    image_size: int = 64
    dims: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 2)
    heads: tuple[int, ...] = (1, 2, 4)
    epochs: int = 10

    def __post_init__(self) -> None:
        lengths = {len(self.dims), len(self.depths), len(self.heads)}
        _check("CvtBudget", {"image_size": self.image_size < 8, "dims": len(lengths) != 1,
                             "epochs": self.epochs < 1}, self)


@dataclass(frozen=True)
class TrainSection:
    """The `train` section (its `budget` and `losses` blocks are built on their own: `Budget`, `LossParams`).

    The meaning of each key is documented beside it in params.yaml and in the README's params table.
    """

    budget: dict = field(default_factory=dict)
    crop_fraction: float = 0.5
    feature_dim: int = 256
    head_hidden: int = 128
    spec_hidden: int = 256
    spec_dropout: float = 0.5
    gate: str = "residual"
    rgb_inference: str = "drop"
    teacher_spectra: bool = True
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_frac: float = 0.1
    device: str = "cpu"
    backend: str = "auto"
    workers: int = 2
    losses: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check("train", {"crop_fraction": not 0 < self.crop_fraction <= 1, "feature_dim": self.feature_dim < 1,
                         "head_hidden": self.head_hidden < 0, "spec_hidden": self.spec_hidden < 1,
                         "spec_dropout": not 0 <= self.spec_dropout <= 1, "batch_size": self.batch_size < 2,
                         "lr": self.lr <= 0, "weight_decay": self.weight_decay < 0,
                         "val_frac": not 0 < self.val_frac < 1, "workers": self.workers < 1}, self)


@dataclass(frozen=True)
class CvtSection:
    """The `cvt` section (its `budget` block is built on its own: `CvtBudget`)."""

    budget: dict = field(default_factory=dict)
    crop_fraction: float = 0.5
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        _check("cvt", {"crop_fraction": not 0 < self.crop_fraction <= 1, "batch_size": self.batch_size < 2,
                       "lr": self.lr <= 0, "weight_decay": self.weight_decay < 0}, self)
