"""Model hyper-parameters: a frozen dataclass saved inside every checkpoint (never read from params.yaml)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# RGB-only ResNet; RGB ⊕ spectrum concat fusion; gated fusion; convolutional vision transformer (RGB only).
KINDS: tuple[str, ...] = ("rgb", "concat", "gated", "cvt")
SPECTRAL_KINDS: tuple[str, ...] = ("concat", "gated")  # kinds whose forward takes spectral features
GATES: tuple[str, ...] = ("residual", "convex")  # F = F_rgb + G⊙F_spec | F = G⊙F_rgb + (1−G)⊙F_spec
RGB_INFERENCE: tuple[str, ...] = ("drop", "hallucinate")  # what a fusion model uses when there is no spectrum
_TUPLES = ("label_cols", "depth", "cvt_dims", "cvt_depths", "cvt_heads")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; `build_model(cfg)` then `load_state_dict` restores it.

    Every ResNet-based kind shares one RGB path, backbone → F_rgb (Linear to `feature_dim`, BatchNorm,
    ReLU, dropout) → head (`feature_dim` → `head_hidden` → C), so that an RGB-only baseline and a fusion
    model that receives no spectrum run the same kind of network.

    Attributes:
        kind: "rgb", "concat", "gated" or "cvt" (see `KINDS`).
        n_classes: number of output classes.
        label_cols: class names; index order is the output order.
        image_size: input side, pixels (inputs are (3, S, S) float32 in [0, 1]).
        depth: residual blocks per stage of the ResNet-style backbone.
        width: channels of the first stage (doubles per stage).
        feature_dim: width of F_rgb, of the spectral embedding F_spec and of the fused feature.
        head_hidden: hidden width of the classification head (0: a single linear layer).
        spec_dim: spectral feature dimension (PCA components or learned embedding size).
        spec_hidden: hidden width of the spectral MLP, spec_dim → spec_hidden → feature_dim.
        spec_dropout: training-time probability of treating a sample that has a spectrum as if it had none.
        gate: gated fusion rule, "residual" or "convex" (the original GFN formulation).
        rgb_inference: what "concat"/"gated" use in place of a missing spectrum: "drop" (the learned
            "absent" embedding for concat, zero for gated) or "hallucinate" (gated only: a head that
            predicts F_spec from F_rgb, trained against the real F_spec).
        cvt_dims: CvT embedding width per stage.
        cvt_depths: CvT transformer blocks per stage.
        cvt_heads: CvT attention heads per stage.
        preprocess: `imaging.transforms.PreprocessConfig.to_dict()` used to make the inputs.
    """

    kind: str
    n_classes: int
    label_cols: tuple[str, ...]
    image_size: int = 64
    depth: tuple[int, ...] = (1, 1, 1)
    width: int = 16
    feature_dim: int = 256
    head_hidden: int = 128
    spec_dim: int = 12
    spec_hidden: int = 256
    spec_dropout: float = 0.5
    gate: str = "residual"
    rgb_inference: str = "drop"
    cvt_dims: tuple[int, ...] = (64, 128, 256)
    cvt_depths: tuple[int, ...] = (1, 2, 10)
    cvt_heads: tuple[int, ...] = (1, 2, 4)
    preprocess: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists (from YAML/JSON/checkpoints) become tuples so that equality is by value.
        for name in _TUPLES:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "preprocess", dict(self.preprocess))
        if self.kind not in KINDS:
            raise ValueError(f"ModelConfig.kind must be one of {KINDS}, got {self.kind!r}")
        if self.n_classes < 2 or len(self.label_cols) != self.n_classes:
            raise ValueError(
                f"ModelConfig: n_classes={self.n_classes} needs >= 2 classes and as many label_cols, "
                f"got {len(self.label_cols)}"
            )
        if not self.depth or min(self.depth) < 1 or self.width < 1 or self.image_size < 8:
            raise ValueError(
                f"ModelConfig: depth {self.depth} needs >= 1 block per stage, width {self.width} >= 1, "
                f"image_size {self.image_size} >= 8"
            )
        if self.feature_dim < 1 or self.head_hidden < 0 or self.spec_dim < 1 or self.spec_hidden < 1:
            raise ValueError(
                f"ModelConfig: feature_dim {self.feature_dim}, spec_dim {self.spec_dim} and spec_hidden "
                f"{self.spec_hidden} must be >= 1, head_hidden {self.head_hidden} >= 0"
            )
        if not 0.0 <= self.spec_dropout <= 1.0:
            raise ValueError(f"ModelConfig.spec_dropout must be in [0, 1], got {self.spec_dropout}")
        if self.gate not in GATES:
            raise ValueError(f"ModelConfig.gate must be one of {GATES}, got {self.gate!r}")
        if self.rgb_inference not in RGB_INFERENCE:
            raise ValueError(f"ModelConfig.rgb_inference must be one of {RGB_INFERENCE}, got {self.rgb_inference!r}")
        if self.rgb_inference == "hallucinate" and self.kind != "gated":
            raise ValueError(f"ModelConfig: rgb_inference 'hallucinate' is implemented for kind 'gated', "
                             f"not {self.kind!r}")
        n_stages = len(self.cvt_dims)
        if not n_stages or len(self.cvt_depths) != n_stages or len(self.cvt_heads) != n_stages:
            raise ValueError(
                f"ModelConfig: cvt_dims {self.cvt_dims}, cvt_depths {self.cvt_depths} and cvt_heads "
                f"{self.cvt_heads} need one entry per stage"
            )
        if min(self.cvt_depths) < 1 or any(d % h for d, h in zip(self.cvt_dims, self.cvt_heads, strict=True)):
            raise ValueError(
                f"ModelConfig: each CvT stage needs >= 1 block and a width divisible by its heads, got dims "
                f"{self.cvt_dims}, depths {self.cvt_depths}, heads {self.cvt_heads}"
            )
        size = self.preprocess.get("size")
        if size is not None and size != self.image_size:
            raise ValueError(f"ModelConfig: preprocess size {size} differs from image_size {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (tuples as lists), safe for `torch.load(weights_only=True)` and JSON."""
        d = dataclasses.asdict(self)
        for name in _TUPLES:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {', '.join(unknown)}")
        return cls(**d)
