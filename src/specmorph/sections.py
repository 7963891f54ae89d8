"""Typed params sections of the stages whose settings have no library config of their own.

Each is built by its stage with `params.build(<Section>, section, "<name>")` (or `params.typed` when a stage
reads another's section), which rejects unknown keys and wrong types by dotted name (`ParamsError`);
out-of-range values fail here, also by name. The top-level keys (seed, profile, embedder, model, executor)
are `params.Shared`.
The sections with a library config of their own: `sky` (`sky.survey.SkyConfig`), `segment`
(`imaging.segment.SegmentParams`), `embed` (`spectral.embedding.EmbedParams`), `train` and `cvt`
(`training.budget`).
"""

from __future__ import annotations

from dataclasses import dataclass

from specmorph.params import ParamsError


def _check(name: str, bad: dict[str, bool], obj: object) -> None:
    if any(bad.values()):
        raise ParamsError(f"params.yaml: {', '.join(f'{name}.{k} = {getattr(obj, k)!r}' for k, v in bad.items() if v)}"
                          " out of range")


@dataclass(frozen=True)
class CrossmatchSection:
    """`crossmatch`: radius_arcsec, the largest eCALIFA–GZ2 separation accepted as a match (also the remote
    selection's: real eCALIFA and GZ2 positions differ by ~2.7")."""

    radius_arcsec: float = 5.0

    def __post_init__(self) -> None:
        _check("crossmatch", {"radius_arcsec": not self.radius_arcsec > 0}, self)


@dataclass(frozen=True)
class SegmentCheckSection:
    """`segment_check`: real_dir, the real cutouts (../shared/data/real_dev layout) the deblending is judged on."""

    real_dir: str = "../shared/data/real_dev"


@dataclass(frozen=True)
class LabelsSection:
    """`labels`: test_frac of the grouped split; high_confidence thresholds (`catalog.selection.HighConfidence`)."""

    test_frac: float = 0.2
    high_confidence: dict | None = None

    def __post_init__(self) -> None:
        _check("labels", {"test_frac": not 0 < self.test_frac < 1}, self)


@dataclass(frozen=True)
class SpectraSection:
    """`spectra`: observed window (Å, or null for all), channels per bin, aperture, PCA components."""

    window: tuple[float, ...] | None = None
    bin_factor: int = 4
    aperture: str = "integrated"
    n_components: int = 12

    def __post_init__(self) -> None:
        if isinstance(self.window, list):
            object.__setattr__(self, "window", tuple(self.window))
        _check("spectra", {"window": self.window is not None and len(self.window) not in (0, 2),
                           "bin_factor": self.bin_factor < 1, "n_components": self.n_components < 1,
                           "aperture": self.aperture not in ("integrated", "central")}, self)


@dataclass(frozen=True)
class PcaRfSection:
    """`pca_rf`: test fraction of the stratified split, trees, smallest coarse class kept."""

    test_frac: float = 0.2
    n_estimators: int = 300
    min_class_size: int = 5

    def __post_init__(self) -> None:
        _check("pca_rf", {"test_frac": not 0 < self.test_frac < 1, "n_estimators": self.n_estimators < 1,
                          "min_class_size": self.min_class_size < 2}, self)


@dataclass(frozen=True)
class EvaluateSection:
    """`evaluate`: training seeds, bootstrap resamples of the ablation, Grad-CAM examples per row, and whether
    every network is scored on the mean of its softmax over the image's 8 orientations (`tta`; also read by
    the `cvt` and `realism` stages, as `specmorph predict` does by default)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    bootstrap: int = 2000
    gradcam_per_row: int = 4
    tta: bool = True

    def __post_init__(self) -> None:
        _check("evaluate", {"seeds": not self.seeds or len(set(self.seeds)) != len(self.seeds),
                            "bootstrap": self.bootstrap < 1, "gradcam_per_row": self.gradcam_per_row < 1}, self)
