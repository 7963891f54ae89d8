"""Principal components of normalised galaxy spectra: the compact spectral description used as privileged information.

What the components are. Each input is a galaxy spectrum divided by its median continuum flux at
5450-5550 Å (`specmorph.io.cubes.galaxy_spectrum`), so the PCA sees spectral shape, not distance or
luminosity. The mean spectrum is subtracted and the components are the orthonormal eigenspectra of
the channel-by-channel covariance, ordered by the variance they explain. For galaxy spectra the
leading eigenspectra are physically interpretable (Connolly et al. 1995; Yip et al. 2004, who found
that the first few capture most of the variance of SDSS galaxy spectra):

- PC1: the continuum slope and 4000 Å break, i.e. the young-blue to old-red sequence that tracks
  the Hubble type from late spirals to ellipticals;
- PC2-PC3: nebular emission (Hα+[N II], Hβ, [O III], [O II]) against Balmer absorption, i.e. current
  against recent star formation, plus dust reddening;
- later PCs: metallicity-sensitive absorption (Mg b, Fe, Na D), line ratios (AGN vs star-forming),
  line shifts and widths from the observed-frame redshift (z ≲ 0.03 moves Hα by up to ~200 Å) and
  velocity dispersion, and eventually noise and calibration residuals.

Twelve components (the default) keep essentially all the astrophysical variance of V500 spectra
while staying small enough to be a distillation target; `explained_variance_ratio` shows the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA

from specmorph.errors import InputError
from specmorph.io.hdf5 import read_product, write_product

log = logging.getLogger(__name__)

MODEL_KIND = "specmorph.PcaModel"
# Above this many values (N × n_wave) an in-memory array is also fitted incrementally (~400 MB float64).
INCREMENTAL_ABOVE = 50_000_000
DEFAULT_BATCH = 512  # spectra per IncrementalPCA.partial_fit call


@dataclass
class PcaModel:
    """A fitted PCA of spectra; NaN channels are filled with `mean` (no contribution) in `transform`."""

    components: np.ndarray  # (k, n_wave) orthonormal eigenspectra
    mean: np.ndarray  # (n_wave,) mean normalised spectrum
    explained_variance: np.ndarray  # (k,) variance along each component
    explained_variance_ratio: np.ndarray  # (k,) fraction of the total variance
    wave: np.ndarray | None = None  # (n_wave,) Å
    n_samples: int = 0

    @property
    def n_components(self) -> int:
        """Number of components k."""
        return int(self.components.shape[0])

    def transform(self, spectra: np.ndarray) -> np.ndarray:
        """Projects spectra onto the components.

        Args:
            spectra: (N, n_wave) or (n_wave,) normalised spectra; NaN channels count as the mean.

        Returns:
            (N, k) or (k,) coefficients.
        """
        x = np.asarray(spectra, dtype=np.float64)
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"spectra have {x.shape[-1]} channels; the model has {self.mean.shape[0]}")
        centred = np.where(np.isfinite(x), x - self.mean, 0.0)
        return centred @ self.components.T

    def inverse_transform(self, coefficients: np.ndarray) -> np.ndarray:
        """Spectra (…, n_wave) reconstructed from coefficients (…, k)."""
        return np.asarray(coefficients, dtype=np.float64) @ self.components + self.mean

    def save(self, path: str | Path, stage: str = "", params_hash: str = "") -> Path:
        """Writes the model as a self-describing HDF5 product.

        Args:
            path: Destination file.
            stage: Producing stage, stored as an attribute.
            params_hash: Hash of that stage's params.

        Returns:
            `path`.
        """
        arrays = {
            "components": self.components,
            "mean": self.mean,
            "explained_variance": self.explained_variance,
            "explained_variance_ratio": self.explained_variance_ratio,
        }
        if self.wave is not None:
            arrays["wave"] = self.wave
        attrs = {"kind": MODEL_KIND, "n_components": self.n_components, "n_samples": self.n_samples,
                 "wave_unit": "Angstrom", "flux_unit": "normalised to the 5450-5550 Å median"}
        return write_product(path, arrays, [], attrs, stage=stage, params_hash=params_hash)

    @classmethod
    def load(cls, path: str | Path) -> PcaModel:
        """Reads a model written by `save`."""
        arrays, _, attrs = read_product(path)
        if attrs.get("kind") != MODEL_KIND:
            raise InputError(f"{path}: kind={attrs.get('kind')!r}; expected {MODEL_KIND!r}")
        return cls(arrays["components"], arrays["mean"], arrays["explained_variance"],
                   arrays["explained_variance_ratio"], arrays.get("wave"), int(attrs["n_samples"]))


def _fill_nan(x: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, int]:
    """Copy of `x` (N, n_wave) with NaNs replaced by `fill` (n_wave,), and how many were replaced."""
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad:
        x = np.where(bad, fill, x)
    return x, n_bad


def _fit_batch(x: np.ndarray, n_components: int) -> PCA:
    """Exact PCA of an in-memory (N, n_wave) array with NaNs replaced by the per-channel mean."""
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(x).sum(axis=0)
        fill = np.where(np.isfinite(x), x, 0.0).sum(axis=0) / np.maximum(counts, 1)  # per-channel mean
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise InputError(f"{empty.size} channel(s) have no finite value in any spectrum (first: index {empty[0]})")
    x, n_bad = _fill_nan(x, fill)
    if n_bad:
        log.info("replaced %d NaN values (%.2g%%) by the per-channel mean", n_bad, 100 * n_bad / x.size)
    return PCA(n_components=n_components, svd_solver="full").fit(x)


def _batches(spectra: np.ndarray | Iterable[np.ndarray], batch_size: int) -> Iterable[np.ndarray]:
    """(b, n_wave) float64 batches from an array or an iterable of arrays/spectra."""
    if isinstance(spectra, np.ndarray):
        for start in range(0, len(spectra), batch_size):
            yield np.asarray(spectra[start:start + batch_size], dtype=np.float64)
        return
    for batch in spectra:
        yield np.atleast_2d(np.asarray(batch, dtype=np.float64))


def _fit_incremental(spectra: np.ndarray | Iterable[np.ndarray], n_components: int, batch_size: int) -> IncrementalPCA:
    """IncrementalPCA over batches; NaNs replaced by the running per-channel mean of the data seen so far."""
    ipca = IncrementalPCA(n_components=n_components)
    target = max(batch_size, n_components)
    pending: list[np.ndarray] = []
    n_pending = n_fitted = n_bad = 0
    total = counts = None

    def flush(rows: np.ndarray) -> None:
        nonlocal n_bad, n_fitted
        fill = np.where(counts > 0, total / np.maximum(counts, 1), 0.0)
        rows, bad = _fill_nan(rows, fill)
        n_bad += bad
        ipca.partial_fit(rows)
        n_fitted += len(rows)

    for batch in _batches(spectra, batch_size):
        if total is None:
            total, counts = np.zeros(batch.shape[1]), np.zeros(batch.shape[1])
        elif batch.shape[1] != total.shape[0]:
            raise InputError(f"batch has {batch.shape[1]} channels; earlier batches had {total.shape[0]}")
        ok = np.isfinite(batch)
        total += np.where(ok, batch, 0.0).sum(axis=0)
        counts += ok.sum(axis=0)
        pending.append(batch)
        n_pending += len(batch)
        # Keep at least n_components rows back so that the last partial_fit call has enough samples.
        if n_pending >= target + n_components:
            rows = np.concatenate(pending)
            flush(rows[:target])
            pending, n_pending = [rows[target:]], len(rows) - target
    if n_pending:
        if n_pending < n_components:
            raise InputError(f"{n_fitted + n_pending} spectra are too few for {n_components} components")
        flush(np.concatenate(pending))
    if n_fitted == 0:
        raise InputError("no spectra to fit")
    if n_bad:
        log.info("replaced %d NaN values by the running per-channel mean", n_bad)
    return ipca


def fit_pca(
    spectra: np.ndarray | Iterable[np.ndarray],
    n_components: int = 12,
    incremental: bool | None = None,
    wave: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> PcaModel:
    """Fits the principal components of normalised spectra.

    Args:
        spectra: (N, n_wave) array, or an iterable of (b, n_wave) batches (e.g. built from
            `iter_spectra`) that is read once, one batch at a time.
        n_components: Number of components k.
        incremental: Use IncrementalPCA (bounded memory, approximate); None chooses it for
            iterables and for arrays larger than `INCREMENTAL_ABOVE` values.
        wave: (n_wave,) wavelengths in Å, stored with the model.
        batch_size: Spectra per partial fit in incremental mode.

    Returns:
        The fitted model.
    """
    is_array = isinstance(spectra, np.ndarray)
    if incremental is None:
        incremental = not is_array or spectra.size > INCREMENTAL_ABOVE
    if is_array:
        if spectra.ndim != 2:
            raise ValueError(f"spectra have shape {spectra.shape}; expected (N, n_wave)")
        if len(spectra) < n_components:
            raise InputError(f"{len(spectra)} spectra are too few for {n_components} components")
    if incremental:
        fitted = _fit_incremental(spectra, n_components, batch_size)
        n_samples = int(fitted.n_samples_seen_)
    else:
        fitted = _fit_batch(np.asarray(spectra, dtype=np.float64), n_components)
        n_samples = len(spectra)
    model = PcaModel(fitted.components_, fitted.mean_, fitted.explained_variance_,
                     fitted.explained_variance_ratio_, None if wave is None else np.asarray(wave, float), n_samples)
    if model.wave is not None and model.wave.shape != model.mean.shape:
        raise ValueError(f"wave has shape {model.wave.shape}; spectra have {model.mean.shape[0]} channels")
    log.info("PCA on %d spectra: %d components explain %.1f%% of the variance", n_samples, n_components,
             100 * model.explained_variance_ratio.sum())
    return model
