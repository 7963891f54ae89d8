"""Benchmark (issue 7, #2): images/s of the segment stage against OpenCV's threshold + connectedComponents.

Ours: `stages/segment.py` main(argv) on N mock GZ2 cutouts (424×424 JPEG, rendered by sky.observe as
the ingest stage renders them) listed in an image table (id_str, path), with the repository's
`segment` params: JPEG decode, luma, Gaussian blur, triangle threshold, 8-connected labelling and the
central component, closing, recentring, resize to out_size, and the HDF5 write. Baseline: OpenCV on
the same images already decoded in memory: cvtColor to gray, threshold(THRESH_BINARY +
THRESH_TRIANGLE), connectedComponents(connectivity=8), on one thread (ours runs on one) unless
--cv2-threads says otherwise. The headline ratio (target ≥ 0.8) is the stage's; a second, fairer one
times the library `imaging.segment.segment` on the same decoded images (no I/O), and a third, for
reference, times it against ours' own steps written with OpenCV (blur, closing, recentring and resize
included; close to ours, not bit-identical). A cProfile of one stage pass splits ours into decode,
blur, threshold, labelling, closing, resize, write.
Run from the repository root: `python benchmarks/segment.py [--quick]` (needs opencv-python-headless,
benchmarks/requirements.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

os.environ.setdefault("TQDM_DISABLE", "1")

import cv2
from harness import finish, paired, profile_breakdown

from specmorph.imaging.segment import SegmentParams, segment
from specmorph.io.images import read_image
from specmorph.params import build
from specmorph.sky.observe import encode_jpeg, render_cutout
from specmorph.sky.population import draw_galaxy
from specmorph.sky.survey import gz2_pixscale
from specmorph.taxonomy import CLASSES

NAME = "segment"
REPO = Path(__file__).resolve().parents[1]
SIZE = 424  # px, GZ2 / SDSS cutout side
FULL = {"n": 200, "repeat": 3}
QUICK = {"n": 12, "repeat": 2}
TARGET = 0.8
# (file suffix, function) -> breakdown label; cumulative seconds from the profile of one stage pass
BREAKDOWN = {
    ("io/images.py", "read_image"): "decode (JPEG -> RGB)",
    ("imaging/segment.py", "to_gray"): "luma",
    ("scipy/ndimage/_filters.py", "gaussian_filter"): "blur",
    ("imaging/segment.py", "triangle_threshold"): "threshold",
    ("imaging/segment.py", "_central_component"): "labelling + central component",
    ("imaging/segment.py", "_close"): "closing",
    ("imaging/segment.py", "_centroid"): "recentre (centroid)",
    ("imaging/segment.py", "_shift"): "recentre (shift)",
    ("imaging/segment.py", "_square_resize"): "resize",
    ("io/hdf5.py", "write_product"): "HDF5 write (one product)",
    ("io/shards.py", "append"): "HDF5 write (shard rows)",
    ("io/shards.py", "merge_shards"): "HDF5 merge of the shards",
    ("imaging/segment.py", "segment"): "segment() total",
}


def load_stage(name: str):
    """Imports stages/<name>.py as a module (stages are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_inputs(work: Path, n: int, executor: str | None = None) -> tuple[list[str], dict]:
    """n mock GZ2 cutouts (JPEG, classes in turn), the image table and a params copy; returns argv, params."""
    rng = np.random.default_rng(0)
    image_dir = work / "images"
    image_dir.mkdir()
    ids, paths = [], []
    for i in range(n):
        g = draw_galaxy(rng, f"{587700000000000000 + i}", 180.0, 30.0, None, label_name=CLASSES[i % len(CLASSES)],
                        field=True)
        path = image_dir / f"{g.id_str}.jpg"
        path.write_bytes(encode_jpeg(render_cutout(g, SIZE, gz2_pixscale(g, SIZE), rng=rng)))
        ids.append(g.id_str)
        paths.append(str(path))
    pd.DataFrame({"id_str": ids, "path": paths}).to_csv(work / "images.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if executor:
        params["executor"] = executor
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    argv = ["--params", str(work / "params.yaml"), "--images", str(work / "images.csv"),
            "--out", str(work / "out" / "images.h5"), "--metrics", str(work / "out" / "segment.json")]
    return argv, params


def opencv_pass(images: list[np.ndarray]) -> None:
    """The baseline: gray, triangle threshold, 8-connected components of every decoded image."""
    for rgb in images:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_TRIANGLE)
        cv2.connectedComponents(binary, connectivity=8)


def opencv_same_steps(images: list[np.ndarray], sp: SegmentParams) -> None:
    """A reference, not the baseline: ours' steps done with OpenCV (uint8 blur, ellipse closing; not bit-identical)."""
    side = 2 * sp.closing_radius + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    for rgb in images:
        h, w = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        blurred = cv2.GaussianBlur(gray, (0, 0), sp.sigma)
        _, binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_TRIANGLE)
        _, labels = cv2.connectedComponents(binary, connectivity=8)
        label = labels[h // 2, w // 2]
        if label == 0 and binary.any():
            ys, xs = np.nonzero(binary)
            nearest = np.argmin((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2)
            label = labels[ys[nearest], xs[nearest]]
        mask = cv2.morphologyEx((labels == label).astype(np.uint8), cv2.MORPH_CLOSE, disc)
        image = cv2.bitwise_and(rgb, rgb, mask=mask)
        m = cv2.moments(cv2.bitwise_and(gray, gray, mask=mask))
        if m["m00"] > 0:
            shift = np.float32([[1, 0, round((w - 1) / 2 - m["m10"] / m["m00"])],
                                [0, 1, round((h - 1) / 2 - m["m01"] / m["m00"])]])
            image = cv2.warpAffine(image, shift, (w, h), flags=cv2.INTER_NEAREST)
            mask = cv2.warpAffine(mask, shift, (w, h), flags=cv2.INTER_NEAREST)
        if sp.out_size is not None:
            cv2.resize(image, (sp.out_size, sp.out_size), interpolation=cv2.INTER_LINEAR)
            cv2.resize(mask, (sp.out_size, sp.out_size), interpolation=cv2.INTER_NEAREST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a dozen images, seconds (smoke run)")
    parser.add_argument("--images", type=int, help="images per pass (default: 200, quick: 12)")
    parser.add_argument("--cv2-threads", type=int, default=1, help="OpenCV threads for the baseline (default 1)")
    parser.add_argument("--executor", choices=("local", "dask"),
                        help="params `executor` for the stage (default: as in params.yaml); with dask the profile "
                             "sees only this process")
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    if args.images:
        size["n"] = args.images
    n = size["n"]
    cv2.setNumThreads(args.cv2_threads)
    with tempfile.TemporaryDirectory(prefix="bench_segment_") as tmp:
        work = Path(tmp)
        argv, params = make_inputs(work, n, args.executor)
        module = load_stage("segment")
        sp = build(SegmentParams, params["segment"], "segment")
        paths = pd.read_csv(work / "images.csv", dtype={"id_str": str})["path"].tolist()
        decoded = [read_image(p) for p in paths]  # (424, 424, 3) uint8 each
        result: dict = {"images_per_pass": n, "image_size": SIZE, "segment_params": params["segment"],
                        "executor": params.get("executor", "local"), "dask": params.get("dask"),
                        "cv2_threads": cv2.getNumThreads(), "cv2_version": cv2.__version__,
                        "jpeg_mb": sum(Path(p).stat().st_size for p in paths) / 1e6,
                        "baseline": "cv2 cvtColor(RGB2GRAY) + threshold(BINARY+TRIANGLE) + "
                                    "connectedComponents(8) on the decoded images"}
        stage_r = paired(lambda: module.main(argv), lambda: opencv_pass(decoded), items=n, repeat=size["repeat"])
        lib_r = paired(lambda: [segment(im, sp) for im in decoded], lambda: opencv_pass(decoded), items=n,
                       repeat=size["repeat"])
        same_r = paired(lambda: [segment(im, sp) for im in decoded], lambda: opencv_same_steps(decoded, sp),
                        items=n, repeat=size["repeat"])
        result["stage_vs_cv2"], result["library_vs_cv2"], result["library_vs_cv2_same_steps"] = stage_r, lib_r, same_r
        for key, r in (("stage_vs_cv2", stage_r), ("library_vs_cv2", lib_r), ("library_vs_cv2_same_steps", same_r)):
            print(f"{key}: ratio {r['ratio']:.3f}; ours {r['ours']['items_per_s']:.1f} img/s "
                  f"({1e3 / r['ours']['items_per_s']:.2f} ms/img), cv2 {r['baseline']['items_per_s']:.1f} img/s "
                  f"({1e3 / r['baseline']['items_per_s']:.2f} ms/img)", flush=True)
        result["ms_per_image"] = {"stage": 1e3 / stage_r["ours"]["items_per_s"],
                                  "library": 1e3 / lib_r["ours"]["items_per_s"],
                                  "cv2": 1e3 / stage_r["baseline"]["items_per_s"],
                                  "cv2_same_steps": 1e3 / same_r["baseline"]["items_per_s"]}
        result["profile_stage"] = profile_breakdown(lambda: module.main(argv), BREAKDOWN)
    name = NAME + (".quick" if args.quick else "") + (".custom" if args.images or args.executor else "")
    finish(name, result, stage_r["ratio"], TARGET)


if __name__ == "__main__":
    main()
