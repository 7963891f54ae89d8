"""Benchmark (issue 21, target >= 0.7): reading MaNGA LOGCUBEs into the pipeline's cube, against a bare astropy read.

Ours: `io.manga.read_logcube` on N gzipped LOGCUBEs in the DR17 format (FLUX, IVAR, MASK, WAVE; 4563
log-λ channels): decompress, mask DONOTUSE and IVAR ≤ 0, vacuum to air, interpolate flux and variance
onto the eCALIFA grid (1877 channels). Baseline: astropy opening the same files and copying the FLUX,
IVAR, MASK and WAVE arrays into memory, nothing else (the unavoidable work). The ratio is the
baseline's time over ours, the median over A/B pairs (`harness.paired`).
Run from the repository root: `python benchmarks/manga_read.py [--quick]`.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from harness import finish, paired, profile_breakdown

from specmorph.io.manga import read_logcube

NAME = "manga_read"
TARGET = 0.7
N_WAVE = 4563
FULL = {"side": 34, "n": 4, "repeat": 5}  # 34 x 34 spaxels: a 37-fibre bundle's cube
QUICK = {"side": 12, "n": 2, "repeat": 2}
BREAKDOWN = {("io/gzipfits.py", "read_images"): "one-pass inflate into the arrays (gzipfits)",
             ("io/fitsbase.py", "open_fits"): "astropy open (the fallback; 0 when the one pass reads the file)",
             ("io/manga.py", "_read_extensions"): "extensions read (incl. the above)",
             ("io/manga.py", "interpolate"): "interpolation onto the grid (flux and variance)"}


def write_logcubes(directory: Path, side: int, n: int, seed: int = 0) -> list[Path]:
    """N gzipped LOGCUBEs: noisy positive spectra, IVAR from the noise, a few DONOTUSE spaxels."""
    rng = np.random.default_rng(seed)
    wave = 10 ** (np.log10(3621.6) + 1e-4 * np.arange(N_WAVE))
    paths = []
    for i in range(n):
        shape = (N_WAVE, side, side)
        flux = (1.0 + 0.5 * rng.random((1, side, side)) + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        ivar = np.full(shape, 100.0, np.float32)
        mask = np.zeros(shape, np.int32)
        mask[:, : side // 6, : side // 6] = 1 << 10 | 1  # no coverage at a corner: DONOTUSE
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(flux, name="FLUX"), fits.ImageHDU(ivar, name="IVAR"),
                fits.ImageHDU(mask, name="MASK"), fits.ImageHDU(wave, name="WAVE")]
        plain = directory / f"manga-{8000 + i}-3701-LOGCUBE.fits"
        fits.HDUList(hdus).writeto(plain)
        path = plain.with_name(plain.name + ".gz")
        path.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
        plain.unlink()
        paths.append(path)
    return paths


def bare_astropy(paths: list[Path]) -> None:
    for path in paths:
        with fits.open(path) as hdul:
            for ext in ("FLUX", "IVAR", "MASK", "WAVE"):
                np.array(hdul[ext].data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small cubes, seconds (smoke run)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_logcubes(Path(tmp), size["side"], size["n"])
        mb = sum(p.stat().st_size for p in paths) / 1e6
        result = paired(lambda: [read_logcube(p) for p in paths], lambda: bare_astropy(paths), len(paths),
                        repeat=size["repeat"])
        result.update(cube_shape=[N_WAVE, size["side"], size["side"]], files_mb=mb,
                      breakdown_ours=profile_breakdown(lambda: [read_logcube(p) for p in paths], BREAKDOWN))
    finish(NAME + (".quick" if args.quick else ""), result, result["ratio"], TARGET)


if __name__ == "__main__":
    main()
