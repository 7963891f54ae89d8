"""Model hyper-parameters: a frozen dataclass saved inside every checkpoint (never read from params.yaml)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

KINDS: tuple[str, ...] = ("rgb", "concat")  # RGB-only; RGB ⊕ PCA-spectrum concat fusion


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; `build_model(cfg)` then `load_state_dict` restores it.

    Attributes:
        kind: "rgb" (RGB-only) or "concat" (concat fusion with the spectral branch).
        n_classes: number of output classes.
        label_cols: class names; index order is the output order.
        image_size: input side, pixels (inputs are (3, S, S) float32 in [0, 1]).
        depth: residual blocks per stage of the ResNet-style backbone.
        width: channels of the first stage (doubles per stage).
        spec_dim: spectral feature dimension (PCA components).
        spec_hidden: widths of the spectral MLP, spec_dim -> h1 -> h2.
        spec_dropout: training-time probability of replacing a sample's spectral embedding by the
            learned "absent" embedding.
        preprocess: `imaging.transforms.PreprocessConfig.to_dict()` used to make the inputs.
    """

    kind: str
    n_classes: int
    label_cols: tuple[str, ...]
    image_size: int = 64
    depth: tuple[int, ...] = (1, 1, 1)
    width: int = 16
    spec_dim: int = 12
    spec_hidden: tuple[int, int] = (64, 256)
    spec_dropout: float = 0.5
    preprocess: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists (from YAML/JSON/checkpoints) become tuples so that equality is by value.
        for name in ("label_cols", "depth", "spec_hidden"):
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
        if self.spec_dim < 1 or len(self.spec_hidden) != 2 or min(self.spec_hidden) < 1:
            raise ValueError(f"ModelConfig: bad spec_dim {self.spec_dim} / spec_hidden {self.spec_hidden}")
        if not 0.0 <= self.spec_dropout <= 1.0:
            raise ValueError(f"ModelConfig.spec_dropout must be in [0, 1], got {self.spec_dropout}")
        size = self.preprocess.get("size")
        if size is not None and size != self.image_size:
            raise ValueError(f"ModelConfig: preprocess size {size} differs from image_size {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (tuples as lists), safe for `torch.load(weights_only=True)` and JSON."""
        d = dataclasses.asdict(self)
        for name in ("label_cols", "depth", "spec_hidden"):
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
