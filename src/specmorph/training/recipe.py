"""The `train` stage's networks as params.yaml sets them: the base network config and the training recipe.

One place for both, so that every study trained on the `train` section (the RGB-only baseline and the
guided models in `stages/train.py`, the true-class reference in `stages/image_ceiling.py`) gets the same
network and recipe.
"""

from __future__ import annotations

from typing import Any

from specmorph.imaging.segment import SegmentParams
from specmorph.imaging.transforms import PreprocessConfig
from specmorph.models.config import ModelConfig
from specmorph.params import typed
from specmorph.taxonomy import CLASSES
from specmorph.training.budget import Budget, TrainSection
from specmorph.training.loop import TrainParams


def base_config(params: dict[str, Any], p: TrainSection, budget: Budget, spec_dim: int) -> ModelConfig:
    """The RGB network of the `train` section and budget (8 classes; `kind` "rgb", the fusion models replace it),
    with the preprocessing a user's image gets (`segment` params, the budget's size, `crop_fraction`)."""
    preprocess = PreprocessConfig(size=budget.image_size, crop_fraction=p.crop_fraction, segment=True,
                                  segment_params=typed(params, "segment", SegmentParams)).to_dict()
    return ModelConfig(kind="rgb", n_classes=len(CLASSES), label_cols=CLASSES, image_size=budget.image_size,
                       depth=budget.depth, width=budget.width, feature_dim=p.feature_dim, head_hidden=p.head_hidden,
                       spec_dim=spec_dim, spec_hidden=p.spec_hidden, spec_dropout=p.spec_dropout, gate=p.gate,
                       preprocess=preprocess)


def train_recipe(p: TrainSection, budget: Budget, threads: int) -> TrainParams:
    """The `train` section's recipe on `threads` CPU threads per network; seed 0 (each network gets its own)."""
    return TrainParams(epochs=budget.epochs, patience=budget.patience, batch_size=p.batch_size, lr=p.lr,
                       weight_decay=p.weight_decay, seed=0, num_threads=threads)
