"""Benchmark: `specmorph predict` images/s against the bare model forward, and against a bare decode-preprocess loop.

Ours, one pass: `predict.run_predict(model_path, paths, out_csv, batch_size)`, the `specmorph predict`
command without argparse (local executor): load the checkpoint, read each 424×424 JPEG
(`io.images.read_image`), `imaging.transforms.apply` with the checkpoint's preprocessing (segment,
crop, resize), forward in batches, softmax, write the predictions CSV. As the command does by default,
each image's softmax is averaged over its 8 orientations (`--no-tta`: one forward, as given); every
baseline does the same forwards (`bare_softmax`: 4 `torch.rot90` of the batch and of its mirror).

Headline baseline (issue 15, target >= 0.5): bare OpenCV and a bare torch batch loop: per file the same
segmentation steps as direct cv2 calls (`cv2_baseline.cv2_segment`: imread ... resize), the central crop
and `cv2.resize` to the model's input, stack, forward and softmax per batch; the model loaded once
outside the timing, no CSV. Also reported: ours against the bare forward alone (eval,
`torch.inference_mode`, same batch size) of the same images already decoded and preprocessed into one
(N, 3, S, S) tensor (issue 7's baseline, target 0.8), and against a bare loop over our own library calls
(`read_image`, `segment`, `preprocess`): what the command adds to them.

The model is the default profile's (params.yaml `train`: rgb ResNet, depth/width/feature_dim), untrained,
with the default preprocessing (segment with the `segment` params, crop_fraction, image_size). Inputs are
mock cutouts (`sky.observe.render_cutout`) written as JPEGs in a temporary directory; a cProfile pass of
ours gives the breakdown (decode, segment, resize, forward, CSV write). Run from the repository root:
`.venv/bin/python benchmarks/predict.py [--quick]` → benchmarks/results/predict[.quick].json.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import cv2
import harness  # benchmarks/harness.py (a script's own directory is on sys.path)
import numpy as np
import torch
from cv2_baseline import cv2_segment

from specmorph.imaging.segment import SegmentParams, segment
from specmorph.imaging.transforms import PreprocessConfig, apply, preprocess
from specmorph.io.images import read_image
from specmorph.models import build_model
from specmorph.models.checkpoint import load_checkpoint, save_checkpoint
from specmorph.models.config import ModelConfig
from specmorph.params import build, load_params, profile_block
from specmorph.predict import run_predict
from specmorph.sky.observe import encode_jpeg, render_cutout
from specmorph.sky.population import draw_galaxy
from specmorph.sky.survey import gz2_pixscale
from specmorph.taxonomy import CLASSES
from specmorph.training.budget import Budget

NAME = "predict"
TARGET = 0.5  # issue 15: against bare OpenCV + a bare torch batch loop
PARAMS_PATH = Path(__file__).resolve().parents[1] / "params.yaml"
CUTOUT = 424  # px, SDSS / GZ2 cutout side
# cProfile functions (file name ending, function) whose cumulative time is reported, by breakdown key
PROFILED = {
    "load_checkpoint": ("models/checkpoint.py", "load_checkpoint"),
    "read_image (decode)": ("io/images.py", "read_image"),
    "segment": ("imaging/segment.py", "segment"),
    "preprocess (crop, resize)": ("imaging/transforms.py", "preprocess"),
    "forward": ("torch/nn/modules/module.py", "_call_impl"),  # nested module calls: counted once by cProfile
    "write_table (CSV)": ("io/catalogs.py", "write_table"),
}
SEGMENT_PARTS = {  # inside `segment`
    "GaussianBlur": ("~", "<built-in method cv2.GaussianBlur>"),
    "triangle_threshold": ("imaging/segment.py", "triangle_threshold"),
    "central_component (label)": ("imaging/segment.py", "central_component"),
    "closing (morphologyEx)": ("~", "<built-in method cv2.morphologyEx>"),
    "to_gray (centroid weights)": ("imaging/segment.py", "to_gray"),
    "_shift": ("imaging/segment.py", "_shift"),
    "moments": ("~", "<built-in method cv2.moments>"),
    "_square_resize": ("imaging/segment.py", "_square_resize"),
}


def make_cutouts(out_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """Writes `n` mock GZ2-like 424×424 JPEG cutouts (one galaxy each, classes in turn); returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        g = draw_galaxy(rng, f"BENCH{i:05d}", 180.0, 30.0, None, label_name=CLASSES[i % len(CLASSES)], field=True)
        paths.append(out_dir / f"{587700000000000000 + i}.jpg")
        paths[-1].write_bytes(encode_jpeg(render_cutout(g, CUTOUT, gz2_pixscale(g, CUTOUT), rng=rng)))
    return paths


def make_checkpoint(path: Path, params: dict) -> PreprocessConfig:
    """Saves an untrained default-profile rgb model with the default preprocessing; returns the preprocessing."""
    p, b = params["train"], build(Budget, *profile_block(params, "train.budget"))
    prep = PreprocessConfig(size=b.image_size, crop_fraction=float(p["crop_fraction"]), segment=True,
                            segment_params=build(SegmentParams, params["segment"], "segment"))
    cfg = ModelConfig(kind="rgb", n_classes=len(CLASSES), label_cols=CLASSES, image_size=b.image_size,
                      depth=b.depth, width=b.width, feature_dim=int(p["feature_dim"]),
                      head_hidden=int(p["head_hidden"]), preprocess=prep.to_dict())
    torch.manual_seed(0)
    save_checkpoint(path, build_model(cfg), cfg, {"seed": 0})
    return prep


def bare_softmax(model: torch.nn.Module, xb: torch.Tensor, tta: bool) -> torch.Tensor:
    """Softmax of a batch, with `tta` the mean over its 8 orientations (written out, not the library's)."""
    if not tta:
        return torch.softmax(model(xb), dim=1)
    views = [torch.rot90(v, k, dims=(2, 3)) for v in (xb, xb.flip(-1)) for k in range(4)]
    return sum(torch.softmax(model(v), dim=1) for v in views) / len(views)  # (B, C)


def bare_forward(model: torch.nn.Module, x: torch.Tensor, batch_size: int, tta: bool) -> torch.Tensor:
    """Baseline 1: softmax of the eval-mode forward of preprocessed (N, 3, S, S) inputs, in batches."""
    with torch.inference_mode():
        return torch.cat([bare_softmax(model, xb, tta) for xb in x.split(batch_size)])  # (N, C)


def bare_cv2_torch(model: torch.nn.Module, paths: list[Path], prep: PreprocessConfig, batch_size: int,
                   tta: bool) -> np.ndarray:
    """The headline baseline: bare OpenCV segmentation, crop and resize, then the bare batched forward."""
    out = []
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start:start + batch_size]:
            image = cv2_segment(str(path), prep.segment_params)[0]  # (S0, S0, 3) uint8
            side = max(1, round(image.shape[0] * prep.crop_fraction))
            lo = (image.shape[0] - side) // 2
            crop = cv2.resize(image[lo:lo + side, lo:lo + side], (prep.size, prep.size), interpolation=cv2.INTER_AREA)
            batch.append(crop.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0))
        with torch.inference_mode():
            out.append(bare_softmax(model, torch.from_numpy(np.stack(batch)), tta).numpy())  # (B, C)
    return np.concatenate(out)


def bare_pipeline(model: torch.nn.Module, paths: list[Path], prep: PreprocessConfig, batch_size: int,
                  tta: bool) -> np.ndarray:
    """A bare loop over our library calls: read_image, segment, preprocess, forward and softmax per batch."""
    out = []
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start:start + batch_size]:
            rgb = read_image(path)  # (H, W, 3) uint8
            batch.append(preprocess(segment(rgb, prep.segment_params).image, prep.size, prep.crop_fraction))
        with torch.inference_mode():
            out.append(bare_softmax(model, torch.from_numpy(np.stack(batch)), tta).numpy())  # (B, C)
    return np.concatenate(out)


def cumulative(stats: pstats.Stats, where: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative seconds of the named functions in a profile (recursive calls counted once)."""
    out = dict.fromkeys(where, 0.0)
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for key, (suffix, name) in where.items():
            if func == name and filename.replace("\\", "/").endswith(suffix):
                out[key] += ct
    return out


def profile_ours(model_path: Path, paths: list[Path], out_csv: Path, batch_size: int, tta: bool) -> dict:
    """One cProfile'd pass of ours: seconds per step, the share of each, inside `segment`, and the top functions."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(run_predict, model_path, paths, out_csv, batch_size=batch_size, tta=tta)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    steps = cumulative(stats, PROFILED)
    steps["other"] = stats.total_tt - sum(steps.values())
    seg = cumulative(stats, SEGMENT_PARTS)
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    return {"profiled_wall_s": wall, "profiled_total_s": stats.total_tt,
            "steps_s": steps, "steps_share": {k: v / stats.total_tt for k, v in steps.items()},
            "segment_parts_s": seg,
            "top_tottime": [{"function": f"{Path(f).name}:{line}({func})", "tottime_s": tt, "calls": nc}
                            for (f, line, func), (_cc, nc, tt, _ct, _callers) in top]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 images, 3 pairs (smoke run, seconds)")
    ap.add_argument("--n", type=int, default=None, help="images (default 512; quick 64)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of both sides (default 2, all cores here)")
    ap.add_argument("--batch-size", type=int, default=64, help="images per forward pass (the CLI's default)")
    ap.add_argument("--no-tta", action="store_true", help="one forward per image on both sides, as `--no-tta`")
    args = ap.parse_args(argv)
    tta = not args.no_tta  # the command's default is on; both sides do the same forwards
    n = args.n or (64 if args.quick else 512)
    repeat = 3 if args.quick else 5
    params = load_params(PARAMS_PATH)
    torch.set_num_threads(args.threads)
    result: dict = {"compares": __doc__.split("\n\n")[1:3], "n_images": n, "cutout_px": CUTOUT,
                    "batch_size": args.batch_size, "threads": torch.get_num_threads(), "tta": tta}
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        t0 = time.perf_counter()
        paths = make_cutouts(tmp / "images", n)
        result["input_generation_s"] = time.perf_counter() - t0
        result["mean_jpeg_kb"] = float(np.mean([p.stat().st_size for p in paths])) / 1e3
        model_path = tmp / "model.pt"
        prep = make_checkpoint(model_path, params)
        result["preprocess"] = prep.to_dict()
        model = load_checkpoint(model_path)[0].eval()
        x = torch.from_numpy(np.stack([apply(read_image(p), prep) for p in paths]))  # (N, 3, S, S)
        out_csv = tmp / "predictions.csv"

        def ours():
            return run_predict(model_path, paths, out_csv, batch_size=args.batch_size, tta=tta)

        vs_forward = harness.paired(ours, lambda: bare_forward(model, x, args.batch_size, tta), items=n,
                                    repeat=repeat)
        vs_pipeline = harness.paired(ours, lambda: bare_pipeline(model, paths, prep, args.batch_size, tta), items=n,
                                     repeat=repeat)
        vs_cv2 = harness.paired(ours, lambda: bare_cv2_torch(model, paths, prep, args.batch_size, tta), items=n,
                                repeat=repeat)
        table, _ = ours()
        probs = table[list(CLASSES)].to_numpy()
        result["max_abs_diff_vs_bare_pipeline"] = float(np.abs(probs - bare_pipeline(model, paths, prep,
                                                                                      args.batch_size, tta)).max())
        result["profile_ours"] = profile_ours(model_path, paths, out_csv, args.batch_size, tta)
    result["vs_bare_forward"] = vs_forward
    result["vs_bare_pipeline"] = vs_pipeline
    result["vs_bare_cv2_torch"] = vs_cv2
    result["ratio_vs_bare_forward"] = vs_forward["ratio"]
    result["ratio_vs_bare_pipeline"] = vs_pipeline["ratio"]
    result["s_per_image"] = {"ours": 1 / vs_forward["ours"]["items_per_s"],
                             "bare_forward": 1 / vs_forward["baseline"]["items_per_s"],
                             "bare_pipeline": 1 / vs_pipeline["baseline"]["items_per_s"],
                             "bare_cv2_torch": 1 / vs_cv2["baseline"]["items_per_s"]}
    print(f"vs bare forward {vs_forward['ratio']:.4f}, vs bare pipeline {vs_pipeline['ratio']:.3f}, "
          f"vs bare cv2 + torch {vs_cv2['ratio']:.3f}", file=sys.stderr)
    name = NAME + ("" if tta else ".no_tta")
    harness.finish(f"{name}.quick" if args.quick else name, result, vs_cv2["ratio"], TARGET)


if __name__ == "__main__":
    main()
