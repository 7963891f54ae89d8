"""Benchmark (issue 7, #1): cube ingest, the prepare_cubes stage on full-size eCALIFA cubes, in MB/s of cube file.

Ours: `stages/prepare_cubes.py` main(argv) on N mock eCALIFA V500 cubes (read_cube, window/bin/normalise/
resample, HDF5 write), with a params file copied from the repository's params.yaml (so whatever
prepare_cubes and executor settings it holds are used); also the spectra stage's reading path
(`io.cubes.iter_spectra` with the `spectra` params) as a second figure. Baseline, the raw read limit:
the same files read once in 1 MiB chunks with nothing kept, gzip-decompressed for `.fits.gz` (the
published format, and the only one the stage reads: ingest gzips plain cubes), plain reads for `.fits`.
The stage reads `.fits` only with its CUBE_SUFFIX patched here (the library memory-maps plain cubes).
The target (≥ 0.7) refers to `.fits.gz`; `.fits` is reported beside it.

Cube size: 1877 channels × 73 × 78 spaxels, the eCALIFA V500 grid (sky.cube.build_cube's default; the
192×184 of embed_fullsize.py is a resampling grid, not a cube size). Peak memory: the stage runs on N
and 2N cubes in fresh subprocesses (ru_maxrss of each). A cProfile of one stage pass gives the breakdown.
Run from the repository root: `python benchmarks/cube_ingest.py [--quick]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

os.environ.setdefault("TQDM_DISABLE", "1")

from harness import finish, paired, peak_rss_mb, profile_breakdown

from specmorph.io.cubes import iter_spectra, read_cube
from specmorph.sky.cube import build_cube, write_cube
from specmorph.sky.population import draw_galaxy

NAME = "cube_ingest"
REPO = Path(__file__).resolve().parents[1]
GZ_SUFFIX, PLAIN_SUFFIX = ".V500.rscube.fits.gz", ".V500.rscube.fits"
CHUNK = 1 << 20  # bytes read per call by the baseline
FULL = {"shape": (1877, 73, 78), "n": 8, "repeat": 3}  # (n_wave, ny, nx): eCALIFA V500
QUICK = {"shape": (1877, 12, 12), "n": 3, "repeat": 2}
TARGET = 0.7
# (file suffix, function) -> breakdown label; cumulative seconds from the profile
BREAKDOWN = {("io/gzipfits.py", "read_images"): "gzip inflate + FITS parse (fast reader)",
             ("io/cubes.py", "read_cube"): "read_cube (incl. the above)",
             ("spectral/cubeprep.py", "_prepare"): "prepare (window, bins, normalise, resample)",
             ("io/shards.py", "append"): "HDF5 write (shard rows)",
             ("io/shards.py", "merge_shards"): "HDF5 merge of the shards (gzip)",
             ("h5py/_hl/dataset.py", "__setitem__"): "h5py dataset writes (all)"}


def load_stage(name: str):
    """Imports stages/<name>.py as a module (stages are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_inputs(work: Path, shape: tuple[int, int, int], n: int, executor: str | None = None) -> dict:
    """Two distinct mock cubes copied to n names each as .fits.gz and .fits, plus the morphology table."""
    n_wave, ny, nx = shape
    gz_dir, plain_dir = work / "cubes_gz", work / "cubes_fits"
    gz_dir.mkdir()
    plain_dir.mkdir()
    sources = []
    for k, hubtyp in enumerate(("Sb", "E1")):
        g = draw_galaxy(np.random.default_rng(k), f"SRC{k}", 180.0, 30.0, 0.02, hubtyp=hubtyp)
        path = work / f"src{k}{GZ_SUFFIX}"
        write_cube(path, g, *build_cube(g, n_wave, nx, ny, rng=np.random.default_rng(10 + k)))
        plain = work / f"src{k}{PLAIN_SUFFIX}"
        plain.write_bytes(zlib.decompress(path.read_bytes(), 31))
        sources.append((path, plain))
    names = [f"BENCH{i:04d}" for i in range(2 * n)]
    for i, name in enumerate(names):
        gz, plain = sources[i % 2]
        shutil.copyfile(gz, gz_dir / f"{name}{GZ_SUFFIX}")
        shutil.copyfile(plain, plain_dir / f"{name}{PLAIN_SUFFIX}")
    for count in (n, 2 * n):
        pd.DataFrame({"name": names[:count], "ra": 180.0, "dec": 30.0, "redshift": 0.02,
                      "hubtyp": "Sb"}).to_csv(work / f"morphology_{count}.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if executor:
        params["executor"] = executor
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return {"names": names, "gz_dir": gz_dir, "plain_dir": plain_dir, "params": params}


def stage_argv(work: Path, n: int, cube_dir: Path) -> list[str]:
    return ["--params", str(work / "params.yaml"), "--morphology", str(work / f"morphology_{n}.csv"),
            "--cube-dir", str(cube_dir), "--out", str(work / "out" / "cubes.h5")]


def run_stage(module, work: Path, n: int, cube_dir: Path, suffix: str) -> None:
    """One pass of the prepare_cubes stage over the first n cubes of `cube_dir`."""
    if not hasattr(module, "CUBE_SUFFIX"):
        raise RuntimeError("stages/prepare_cubes.py no longer names CUBE_SUFFIX; update this benchmark")
    module.CUBE_SUFFIX = suffix
    module.main(stage_argv(work, n, cube_dir))


def raw_read(paths: list[Path]) -> None:
    """The read limit: every byte of every file once, 1 MiB at a time, gzip files decompressed, nothing kept."""
    buf = bytearray(CHUNK)
    for path in paths:
        with open(path, "rb") as fh:
            if path.name.endswith(".gz"):
                dec = zlib.decompressobj(31)
                while chunk := fh.read(CHUNK):
                    dec.decompress(chunk)
                dec.flush()
            else:
                while fh.readinto(buf):
                    pass


def spectra_pass(paths: list[Path], p: dict) -> None:
    window = tuple(p["window"]) if p.get("window") else None
    for _ in iter_spectra(paths, window, int(p["bin_factor"]), str(p["aperture"]), progress=False):
        pass


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process image, MB: VmHWM, which (unlike ru_maxrss) restarts at exec."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB -> MB
    return peak_rss_mb()


def rss_child(work: Path, n: int, variant: str) -> None:
    """Subprocess entry: one stage pass (or one read_cube, n=0) and its peak memory as JSON on stdout."""
    import resource

    cube_dir, suffix = (work / "cubes_gz", GZ_SUFFIX) if variant == "gz" else (work / "cubes_fits", PLAIN_SUFFIX)
    module = load_stage("prepare_cubes")
    before = own_peak_rss_mb()
    kids_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if n == 0:
        read_cube(next(iter(sorted(cube_dir.iterdir()))))
    else:
        run_stage(module, work, n, cube_dir, suffix)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = {"peak_rss_mb": own_peak_rss_mb(), "after_imports_mb": before}
    if kids > kids_before:  # worker processes ran: the largest ru_maxrss among them (counts memory shared at fork)
        out["worker_peak_rss_mb"] = kids
    print(json.dumps(out))


def measure_rss(work: Path, n: int, variant: str) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", str(work), str(n), variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["above_imports_mb"] = result["peak_rss_mb"] - result["after_imports_mb"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny cubes, a few seconds (smoke run)")
    parser.add_argument("--cubes", type=int, help="cubes per pass (default: 8, quick: 3)")
    parser.add_argument("--repeat", type=int, help="counted A/B pairs (default: 3, quick: 2)")
    parser.add_argument("--executor", choices=("local", "dask"),
                        help="params `executor` for the stage (default: as in params.yaml); with dask the profile "
                             "and the peak memory see only this process")
    parser.add_argument("--rss-child", nargs=3, metavar=("WORK", "N", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        work, n, variant = args.rss_child
        rss_child(Path(work), int(n), variant)
        return
    size = dict(QUICK if args.quick else FULL)
    size.update({k: v for k, v in (("n", args.cubes), ("repeat", args.repeat)) if v})
    n = size["n"]
    with tempfile.TemporaryDirectory(prefix="bench_cube_ingest_") as tmp:
        work = Path(tmp)
        inputs = make_inputs(work, size["shape"], n, args.executor)
        module = load_stage("prepare_cubes")
        sp = inputs["params"]["spectra"]
        result: dict = {"cube_shape": list(size["shape"]), "cubes_per_pass": n,
                        "prepare_cubes_params": inputs["params"]["prepare_cubes"],
                        "executor": inputs["params"].get("executor", "local"), "dask": inputs["params"].get("dask"),
                        "baseline": "each file read once in 1 MiB chunks, gzip-decompressed (zlib) for .fits.gz, "
                                    "nothing kept", "target_refers_to": "fits_gz/prepare_cubes"}
        for variant, cube_dir, suffix in (("fits_gz", inputs["gz_dir"], GZ_SUFFIX),
                                          ("fits", inputs["plain_dir"], PLAIN_SUFFIX)):
            paths = [cube_dir / f"{name}{suffix}" for name in inputs["names"][:n]]
            file_mb = sum(p.stat().st_size for p in paths) / 1e6
            fits_mb = sum((inputs["plain_dir"] / f"{m}{PLAIN_SUFFIX}").stat().st_size
                          for m in inputs["names"][:n]) / 1e6
            for path_name, ours in (
                ("prepare_cubes", lambda d=cube_dir, s=suffix: run_stage(module, work, n, d, s)),
                ("spectra_read", lambda ps=paths: spectra_pass(ps, sp)),
            ):
                r = paired(ours, lambda ps=paths: raw_read(ps), items=n, repeat=size["repeat"])
                for side in ("ours", "baseline"):
                    s = n / r[side]["items_per_s"]  # median seconds per pass
                    r[side].update(file_mb_per_s=file_mb / s, fits_mb_per_s=fits_mb / s, s_per_cube=s / n)
                r.update(file_mb=file_mb, fits_mb=fits_mb)
                result[f"{variant}/{path_name}"] = r
                print(f"{variant}/{path_name}: ratio {r['ratio']:.3f}, ours {r['ours']['file_mb_per_s']:.1f} MB/s "
                      f"({r['ours']['s_per_cube']:.3f} s/cube), raw {r['baseline']['file_mb_per_s']:.1f} MB/s",
                      flush=True)
        head = result["fits_gz/prepare_cubes"]
        result["profile_fits_gz_prepare_cubes"] = {
            **profile_breakdown(lambda: run_stage(module, work, n, inputs["gz_dir"], GZ_SUFFIX), BREAKDOWN),
            "unprofiled_pass_s": head["ours"]["s_per_cube"] * n}
        result["peak_memory"] = {
            variant: {"one_read_cube": measure_rss(work, 0, variant), f"n={n}": measure_rss(work, n, variant),
                      f"n={2 * n}": measure_rss(work, 2 * n, variant)} for variant in ("gz", "fits")}
        result["one_cube_fits_mb"] = head["fits_mb"] / n
    name = NAME + (".quick" if args.quick else "") + (".custom" if args.cubes or args.repeat or args.executor else "")
    finish(name, result, head["ratio"], TARGET)


if __name__ == "__main__":
    main()
