"""Cube-to-tensor preparation shared by the spectral embedders: window, channels, per-galaxy scale, fixed grid.

A prepared cube is float32 (C, H, W): C spectral channels, then the spatial axes in FITS/numpy order
(y, x), i.e. H rows along the cube's second axis (NAXIS2) and W columns along its third (NAXIS1).
The steps, in order:

1. window: keep the channels whose observed wavelength lies in `window` (inclusive);
2. channels: 'full' keeps them all, 'central' the middle `n_channels`, 'binned' averages them into
   `n_channels` equal-width wavelength bins spanning the window (mean over finite values);
3. normalise: 'median' divides by the median of the positive white-light values (the per-spaxel
   mean over the chosen channels), so the tensor is independent of distance and luminosity;
4. bad values (BADPIX, NaN, bins without a finite value) become 0, i.e. count as no flux: in CALIFA
   they are mostly the spaxels outside the hexagonal field of view, where the galaxy is faint;
5. resample every channel to `grid` with anti-aliased bilinear weights (the triangle filter widened
   by the shrink factor when downsampling, as PIL and torch's `antialias=True` do), which keeps
   the mean of an image and a constant image constant.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import h5py
import numpy as np

from specmorph.errors import InputError
from specmorph.executor import ExecutorParams, map_shards
from specmorph.io.cubes import Cube, read_cube
from specmorph.io.hdf5 import ID_DATASET
from specmorph.io.shards import ShardWriter, merge_shards, shard_dir, shard_path

log = logging.getLogger(__name__)

CHANNEL_MODES = ("full", "central", "binned")
NORMALISATIONS = ("median", "none")
DATASET = "cubes"
PREP_ATTR = "cube_prep"


@dataclass(frozen=True)
class CubePrep:
    """How a cube becomes a (C, H, W) tensor; saved with every prepared product and embedder."""

    grid: tuple[int, int] = (32, 32)  # (H, W) output spaxels along (y, x)
    channels: str = "binned"  # 'full' | 'central' | 'binned'
    n_channels: int = 64  # channels kept by 'central' and 'binned'; ignored by 'full'
    window: tuple[float, float] | None = (3800.0, 7200.0)  # observed Å, inclusive; None keeps all
    normalise: str = "median"  # 'median' (of positive white-light values) | 'none'

    def __post_init__(self) -> None:
        grid = tuple(self.grid)
        if len(grid) != 2 or not all(isinstance(n, int | np.integer) and n >= 1 for n in grid):
            raise ValueError(f"grid={self.grid!r}; expected two positive integers (H, W)")
        object.__setattr__(self, "grid", (int(grid[0]), int(grid[1])))
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"channels={self.channels!r}; expected one of {CHANNEL_MODES}")
        if not isinstance(self.n_channels, int | np.integer) or self.n_channels < 1:
            raise ValueError(f"n_channels={self.n_channels!r}; expected a positive integer")
        if self.window is not None:
            lo, hi = (float(v) for v in self.window)
            if not lo < hi:
                raise ValueError(f"window={self.window!r}; expected (low, high) in Å with low < high")
            object.__setattr__(self, "window", (lo, hi))
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise={self.normalise!r}; expected one of {NORMALISATIONS}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (tuples as lists)."""
        d = asdict(self)
        d["grid"] = list(self.grid)
        d["window"] = None if self.window is None else list(self.window)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> CubePrep:
        """Inverse of `to_dict`; an unknown key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CubePrep: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        d = dict(d)
        if "grid" in d:
            d["grid"] = tuple(d["grid"])
        if d.get("window") is not None:
            d["window"] = tuple(d["window"])
        return cls(**d)


def _windowed(cube: Cube, prep: CubePrep) -> tuple[np.ndarray, np.ndarray]:
    """The cube's channels inside the window, in increasing wavelength: wave (n,) Å, flux (n, ny, nx)."""
    wave, flux = np.asarray(cube.wave, dtype=np.float64), cube.flux
    if len(wave) > 1 and wave[1] < wave[0]:
        wave, flux = wave[::-1], flux[::-1]
    if prep.window is None:
        return wave, flux
    lo, hi = prep.window
    a, b = np.searchsorted(wave, lo, side="left"), np.searchsorted(wave, hi, side="right")
    if b <= a:
        raise InputError(f"{cube.name}: no channel in the window {lo:g}-{hi:g} Å "
                         f"(cube covers {wave[0]:g}-{wave[-1]:g} Å)")
    return wave[a:b], flux[a:b]


def _bin_edges(wave: np.ndarray, prep: CubePrep) -> np.ndarray:
    """(n_channels + 1,) Å: equal-width bins over the window (or the cube's range without one)."""
    lo, hi = prep.window if prep.window is not None else (wave[0], wave[-1])
    return np.linspace(lo, hi, prep.n_channels + 1)


def _nanmean_bins(flux: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Mean over finite values of flux[start:stop] for each bin: (n_bins, ny, nx) float32, NaN if none."""
    out = np.empty((len(starts), *flux.shape[1:]), dtype=np.float32)
    for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
        block = flux[a:b]  # (n_i, ny, nx); one bin at a time keeps the temporaries small
        ok = np.isfinite(block)
        count = ok.sum(axis=0)
        total = np.where(ok, block, 0.0).sum(axis=0, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(count > 0, total / count, np.nan)
    return out


def select_channels(cube: Cube, prep: CubePrep) -> tuple[np.ndarray, np.ndarray]:
    """Window and channel selection (steps 1-2), before normalisation and resampling.

    Args:
        cube: A cube from `read_cube` (flux NaN where bad).
        prep: The preparation settings.

    Returns:
        Channel centres (C,) in Å (for 'binned' the bin mid-points, the same for every cube) and
        flux (C, ny, nx) float32 with NaN where a channel or bin has no finite value.
    """
    wave, flux = _windowed(cube, prep)
    if prep.channels == "full":
        return wave, np.asarray(flux, dtype=np.float32)
    if len(wave) < prep.n_channels:
        raise InputError(f"{cube.name}: {len(wave)} channel(s) in the window; "
                         f"channels={prep.channels!r} needs n_channels={prep.n_channels}")
    if prep.channels == "central":
        a = (len(wave) - prep.n_channels) // 2
        return wave[a:a + prep.n_channels], np.asarray(flux[a:a + prep.n_channels], dtype=np.float32)
    edges = _bin_edges(wave, prep)
    starts = np.searchsorted(wave, edges[:-1], side="left")
    stops = np.append(starts[1:], np.searchsorted(wave, edges[-1], side="right"))
    empty = np.flatnonzero(stops <= starts)
    if empty.size:
        i = int(empty[0])
        raise InputError(f"{cube.name}: wavelength bin {edges[i]:.1f}-{edges[i + 1]:.1f} Å holds no channel "
                         f"(cube covers {wave[0]:g}-{wave[-1]:g} Å in {len(wave)} channels)")
    return 0.5 * (edges[:-1] + edges[1:]), _nanmean_bins(flux, starts, stops)


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) anti-aliased bilinear weights along one axis, rows summing to 1.

    Pixel centres sit at i + 0.5 on both grids (torch's align_corners=False); the triangle kernel
    is widened by n_in / n_out when shrinking, so every input pixel contributes to the output.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale  # (n_out,) in input pixel units
    dist = np.abs(np.arange(n_in)[None, :] + 0.5 - centre[:, None]) / support  # (n_out, n_in)
    w = np.clip(1.0 - dist, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def _resample(flux: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(C, ny, nx) -> (C, H, W) float64 with separable anti-aliased bilinear weights.

    In float64: BLAS kernels sum in an order that depends on the CPU's vector unit, and float64
    differences of a few ulps almost never survive the final rounding to float32.
    """
    ny, nx = flux.shape[1:]
    if (ny, nx) == grid:
        return flux
    wy, wx = resample_matrix(ny, grid[0]), resample_matrix(nx, grid[1])  # (H, ny), (W, nx)
    return np.matmul(wy, np.matmul(flux.astype(np.float64), wx.T))  # (C, H, W)


def _prepare(cube: Cube, prep: CubePrep) -> tuple[np.ndarray, np.ndarray]:
    """Channel centres (C,) Å and the prepared tensor (C, H, W) float32."""
    wave, flux = select_channels(cube, prep)  # (C,), (C, ny, nx)
    if prep.normalise == "median":
        ok = np.isfinite(flux)
        count = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            white = np.where(ok, flux, 0.0).sum(axis=0, dtype=np.float64) / count  # (ny, nx), NaN if no data
        positive = white[np.isfinite(white) & (white > 0)]
        if positive.size == 0:
            raise InputError(f"{cube.name}: no spaxel has positive white-light flux in the chosen channels "
                             "(all bad, zero or negative); cannot normalise")
        flux = flux / np.float32(np.median(positive))  # dimensionless
    flux = np.nan_to_num(flux, nan=0.0, posinf=0.0, neginf=0.0)
    return wave, np.ascontiguousarray(_resample(flux, prep.grid), dtype=np.float32)


def prepare_cube(cube: Cube, prep: CubePrep) -> np.ndarray:
    """Turns one cube into the (C, H, W) float32 tensor described in the module docstring.

    Args:
        cube: A cube from `read_cube` (flux (n_wave, ny, nx), NaN where bad).
        prep: The preparation settings.

    Returns:
        (C, H, W) float32, axes (channel, y, x); dimensionless when normalised, bad values 0.

    Raises:
        InputError: naming the cube, when the window or bins hold no channel or, with
            normalise='median', no spaxel has a positive white-light value.
    """
    return _prepare(cube, prep)[1]


def _prepare_shard(prep: CubePrep, directory: str, index: int,
                   items: list[tuple[int, str]]) -> tuple[str, list[str], list[tuple[int, np.ndarray]]]:
    """An executor task: prepares (row, path) cubes one at a time into shard file `index`.

    Returns:
        The shard file, the cube names in order, and each distinct array of channel centres (C,) Å
        with the first row that had it.
    """
    names: list[str] = []
    waves: list[tuple[int, np.ndarray]] = []
    with ShardWriter(shard_path(directory, index)) as writer:
        for row, path in items:
            cube = read_cube(path, error=False)  # the ERROR extension is not used here
            wave, x = _prepare(cube, prep)  # (C,), (C, H, W)
            if not any(np.array_equal(wave, w) for _, w in waves):
                waves.append((row, wave))
            writer.append(cube.name, {DATASET: x})
            names.append(cube.name)
            del cube, x
    return str(writer.path), names, waves


def _check_shards(parts: list[tuple[str, list[str], list[tuple[int, np.ndarray]]]], paths: list[Path]) -> np.ndarray:
    """Fails on a duplicate cube name or channel centres unlike the first cube's; returns those (C,) Å."""
    seen: set[str] = set()
    for path, name in zip(paths, (n for _, names, _ in parts for n in names), strict=True):
        if name in seen:
            raise InputError(f"{path}: duplicate cube name {name!r}")
        seen.add(name)
    waves = [w for _, _, ws in parts for w in ws]
    wave0 = waves[0][1]
    for row, wave in waves[1:]:
        if wave.shape != wave0.shape or not np.allclose(wave, wave0, rtol=0, atol=1e-3):
            raise InputError(f"{paths[row]}: channel centres differ from the first cube's "
                             f"({len(wave)} vs {len(wave0)} channels); cubes need a common wavelength grid")
    return wave0


def prepare_all(paths: Iterable[str | Path], prep: CubePrep, out_path: str | Path, stage: str, params_hash: str,
                executor: ExecutorParams | None = None, arrays: Mapping[str, np.ndarray] | None = None) -> Path:
    """Prepares cubes in shards through the executor and merges them into one HDF5 product (atomic).

    Each shard task streams its cubes one at a time into a shard file beside `out_path`; the merge
    copies them in order a few cubes at a time, so memory holds a few cubes whatever the number of
    cubes, executor or shard size, and the product is byte-identical for all of them. The product has
    datasets `cubes` (N, C, H, W) float32 (chunked one cube per chunk, gzip) and `id_str` (the cube
    names), and attributes `cube_prep` (JSON of `prep.to_dict()`), `wave` (C,) channel centres,
    units, `stage` and `params_hash`; `read_product` and `load_prepared` read it.

    Args:
        paths: Cube files, in order (listed first; each is read once).
        prep: The preparation settings.
        out_path: Destination `.h5` file; nothing is left there, nor any shard, if any cube fails.
        stage: Producing stage name.
        params_hash: Hash of the stage's params.
        executor: Where the shards run (None: locally, in shards of 256 cubes).
        arrays: Per-cube datasets to store beside the cubes, one row per path (e.g. the `survey` of
            `io.catalogs.survey_dataset`); None: none.

    Returns:
        `out_path`.

    Raises:
        InputError: on an unreadable cube, duplicate names, channel centres that differ between
            cubes, or no cubes at all.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(f"{out_path}: no cubes to prepare")
    with shard_dir(out_path) as directory:
        items = [(i, os.path.abspath(p)) for i, p in enumerate(paths)]  # workers may run elsewhere
        parts = map_shards(partial(_prepare_shard, prep, str(directory)), items, executor or ExecutorParams(),
                           desc="prepare cubes", unit="cube")
        wave0 = _check_shards(parts, paths)
        attrs = {PREP_ATTR: json.dumps(prep.to_dict()), "wave": wave0, "wave_unit": "Angstrom",
                 "flux_unit": "flux / median positive white-light flux" if prep.normalise == "median"
                 else "1e-16 erg/s/cm2/Angstrom", "axes": "N, C, H, W (channel, y, x)"}
        merge_shards([p for p, _, _ in parts], out_path, attrs, stage, params_hash, layout="rows", arrays=arrays)
    log.info("prepared %d cubes -> %s", len(paths), out_path)
    return out_path


def _attrs(f: h5py.File, path: Path) -> dict[str, object]:
    """File attributes with `cube_prep` decoded to a CubePrep; checks the product's layout."""
    if DATASET not in f or ID_DATASET not in f or PREP_ATTR not in f.attrs:
        raise InputError(f"{path}: not a prepared-cube product (needs '{DATASET}', '{ID_DATASET}', '{PREP_ATTR}')")
    attrs = {k: (v.decode("utf-8") if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    attrs[PREP_ATTR] = CubePrep.from_dict(json.loads(attrs[PREP_ATTR]))
    return attrs


def load_prepared(path: str | Path) -> tuple[np.ndarray, list[str], dict[str, object]]:
    """Reads a `prepare_all` product into memory.

    Args:
        path: The product file.

    Returns:
        cubes (N, C, H, W) float32, the N cube names, and attrs (`cube_prep` as a CubePrep,
        `wave` (C,) Å, units, `stage`, `params_hash`).
    """
    with open_prepared(path) as (data, ids, attrs):
        return data[()], ids, attrs


@contextmanager
def open_prepared(path: str | Path) -> Iterator[tuple[h5py.Dataset, list[str], dict[str, object]]]:
    """Like `load_prepared`, but yields the open (N, C, H, W) h5py dataset for reading a batch at a time."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: prepared-cube product not found")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from err
    with f:
        attrs = _attrs(f, path)
        ids = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[ID_DATASET][()]]
        yield f[DATASET], ids, attrs
