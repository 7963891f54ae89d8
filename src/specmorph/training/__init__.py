"""Training: the supervised loop shared by every model kind, with identical budgets across kinds."""

from specmorph.training.loop import TensorData, TrainParams, predict_proba, train_model

__all__ = ["TensorData", "TrainParams", "predict_proba", "train_model"]
