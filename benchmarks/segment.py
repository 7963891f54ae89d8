"""Benchmark (issues 7 and 15): images/s of segmentation against bare OpenCV doing the same steps.

Headline (issue 15, target >= 0.8): the library path a user's image takes, `io.images.read_image` then
`imaging.segment.segment` with the repository's `segment` params, against a bare OpenCV loop doing
the same steps on the same JPEG files: imread, cvtColor, GaussianBlur, threshold(TRIANGLE),
connectedComponents and the central component, morphologyEx(CLOSE), moments + warpAffine
(recentring), resize. Both on one thread (--cv2-threads). The baseline does not deblend (a bare
OpenCV loop has no multi-threshold deblending); ours without deblending is reported beside it. The
baseline's masks are not bit-identical to ours (ours moves OpenCV's triangle level one grey level
back, as skimage's; a disc, not OpenCV's ellipse, as the closing element); the median IoU is printed.
Also reported: the `segment` stage (`stages/segment.py` main(argv): the same plus the image table and
the HDF5 write) against the same baseline, and the library on decoded images against OpenCV's
threshold + connectedComponents alone (issue 7's baseline). Inputs: N mock GZ2 cutouts (424x424 JPEG,
rendered as the ingest stage renders them). A cProfile of one stage pass splits ours into its steps.
Run from the repository root: `python benchmarks/segment.py [--quick]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

os.environ.setdefault("TQDM_DISABLE", "1")

import cv2
from cv2_baseline import cv2_segment
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
    ("~", "<built-in method cv2.GaussianBlur>"): "blur",
    ("imaging/segment.py", "triangle_threshold"): "threshold",
    ("imaging/segment.py", "deblend"): "deblending (multi-threshold + watershed)",
    ("imaging/segment.py", "central_component"): "labelling + central component",
    ("~", "<built-in method cv2.morphologyEx>"): "closing",
    ("~", "<built-in method cv2.moments>"): "recentre (centroid)",
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
    # The stage's check of the deblending on the real dev cutouts (2994 images, minutes) is not part of
    # segmenting N images: pointed at an absent folder it is skipped, as in a clone without ../shared.
    params["segment_check"]["real_dir"] = str(work / "no_real_dev")
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


def opencv_same_steps(paths: list[str], sp: SegmentParams) -> list[np.ndarray]:
    """The headline baseline: our steps written directly with OpenCV, from the JPEG file on; returns the masks."""
    return [cv2_segment(path, sp)[1] for path in paths]


def ours(paths: list[str], sp: SegmentParams) -> list[np.ndarray]:
    """The library path: read_image, then segment; returns the masks."""
    return [segment(read_image(p), sp).mask for p in paths]


def median_iou(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.median([(x & y).sum() / max((x | y).sum(), 1) for x, y in zip(a, b, strict=True)]))


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
                        "baseline": "cv2 imread + the same steps with OpenCV calls (opencv_same_steps)",
                        "median_mask_iou_vs_baseline": median_iou(ours(paths, sp), opencv_same_steps(paths, sp))}
        lib_r = paired(lambda: ours(paths, sp), lambda: opencv_same_steps(paths, sp), items=n, repeat=size["repeat"])
        stage_r = paired(lambda: module.main(argv), lambda: opencv_same_steps(paths, sp), items=n,
                         repeat=size["repeat"])
        bare_r = paired(lambda: [segment(im, sp) for im in decoded], lambda: opencv_pass(decoded), items=n,
                        repeat=size["repeat"])
        plain = replace(sp, deblend=False)  # the steps the baseline does: no deblending
        plain_r = paired(lambda: ours(paths, plain), lambda: opencv_same_steps(paths, sp), items=n,
                         repeat=size["repeat"])
        runs = {"library_with_decode_vs_cv2_same_steps": lib_r, "stage_vs_cv2_same_steps": stage_r,
                "library_without_deblending_vs_cv2_same_steps": plain_r,
                "library_decoded_vs_cv2_threshold_and_labels": bare_r}
        result.update(runs)
        for key, r in runs.items():
            print(f"{key}: ratio {r['ratio']:.3f}; ours {r['ours']['items_per_s']:.1f} img/s "
                  f"({1e3 / r['ours']['items_per_s']:.2f} ms/img), cv2 {r['baseline']['items_per_s']:.1f} img/s "
                  f"({1e3 / r['baseline']['items_per_s']:.2f} ms/img)", flush=True)
        result["profile_stage"] = profile_breakdown(lambda: module.main(argv), BREAKDOWN)
    name = NAME + (".quick" if args.quick else "") + (".custom" if args.images or args.executor else "")
    finish(name, result, lib_r["ratio"], TARGET)


if __name__ == "__main__":
    main()
