"""Benchmark: the full-size cube path (1877 channels × 192×184 grid) of cube preparation and embedders.

Each figure is a ratio against the default-size path (64 binned channels × 32×32) measured in the same
process, so machine noise largely cancels; absolute seconds and the peak resident memory are recorded
too. Run by hand: `python benchmarks/embed_fullsize.py` → benchmarks/results/embed_fullsize.json.
"""

import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from specmorph.io.cubes import read_cube
from specmorph.sky.cube import build_cube, write_cube
from specmorph.sky.population import draw_galaxy
from specmorph.spectral.cubeprep import CubePrep, prepare_cube
from specmorph.spectral.embedder_io import build_embedder
from specmorph.spectral.encoders import EmbedderConfig

FULL = CubePrep(grid=(192, 184), channels="full", n_channels=1877, window=None)
DEFAULT = CubePrep()
OUT = Path(__file__).parent / "results" / "embed_fullsize.json"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KB → GB on Linux


def timed(fn, repeat: int = 3) -> float:
    """Median wall time of `fn()` over `repeat` calls, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def train_step(kind: str, x: torch.Tensor) -> None:
    cfg = EmbedderConfig(kind=kind, in_channels=x.shape[1], grid=tuple(x.shape[2:]), n_classes=2)
    model = build_embedder(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if kind == "siamese":
        loss = model.embed(x).pow(2).mean()  # one forward/backward through the encoder
    else:
        loss = model.loss(x, torch.zeros(x.shape[0], dtype=torch.int64))[0]
    opt.zero_grad()
    loss.backward()
    opt.step()


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    g = draw_galaxy(np.random.default_rng(0), "BENCH0001", 180.0, 30.0, 0.02, hubtyp="Sb")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BENCH0001.V500.rscube.fits.gz"
        write_cube(path, g, *build_cube(g, 1877, 78, 73, rng=np.random.default_rng(1)))
        cube = read_cube(path)
        results = {"machine": platform.processor() or platform.machine(), "threads": 2,
                   "cube": "mock 1877×73×78 V500 cube"}
        t_def = timed(lambda: prepare_cube(cube, DEFAULT))
        t_full = timed(lambda: prepare_cube(cube, FULL))
        results["prepare"] = {"default_s": t_def, "full_s": t_full, "ratio_full_to_default": t_full / t_def}
        x_full = torch.from_numpy(np.stack([prepare_cube(cube, FULL)] * 2))  # (2, 1877, 192, 184)
        x_def = torch.from_numpy(np.stack([prepare_cube(cube, DEFAULT)] * 2))  # (2, 64, 32, 32)
    for kind in ("siamese", "sae", "dsca"):
        d = timed(lambda kind=kind: train_step(kind, x_def), repeat=3)
        f = timed(lambda kind=kind: train_step(kind, x_full), repeat=2)
        results[f"{kind}_train_step_batch2"] = {"default_s": d, "full_s": f, "ratio_full_to_default": f / d}
    results["peak_rss_gb"] = peak_rss_gb()
    results["full_batch_bytes"] = int(x_full.numel() * 4)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
