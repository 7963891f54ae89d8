"""Backbones and fusion networks (plain torch); `build_model` turns a `ModelConfig` into a network."""

from __future__ import annotations

from torch import nn

from specmorph.models.config import ModelConfig
from specmorph.models.cvt import CvTClassifier
from specmorph.models.fusion import ConcatFusion, GatedFusion, RgbClassifier

__all__ = ["ConcatFusion", "CvTClassifier", "GatedFusion", "ModelConfig", "RgbClassifier", "build_model"]


def build_model(cfg: ModelConfig) -> nn.Module:
    """Builds a freshly initialised network for `cfg` (uses torch's global RNG for the weights).

    Args:
        cfg: model hyper-parameters.

    Returns:
        A module called as `model(x, spec=None, has_spec=None)` with x (B, 3, S, S) float32 in
        [0, 1], spec (B, spec_dim) float32 and has_spec (B,) bool; it returns logits (B, n_classes).
        Its `cam_layer` attribute is the module whose (B, C, h, w) output Grad-CAM reads.
    """
    if cfg.kind == "rgb":
        return RgbClassifier(cfg)
    if cfg.kind == "concat":
        return ConcatFusion(cfg)
    if cfg.kind == "gated":
        return GatedFusion(cfg)
    if cfg.kind == "cvt":
        return CvTClassifier(cfg.cvt_dims, cfg.cvt_depths, cfg.cvt_heads, cfg.n_classes)
    raise ValueError(f"unknown model kind {cfg.kind!r}")
