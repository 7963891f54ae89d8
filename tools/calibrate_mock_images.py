"""Compares freshly rendered mock GZ2 cutouts with a real labelled set: KS distance per image statistic and class.

How the constants of src/specmorph/sky/observe.py were calibrated against the distributions of the real dev set
(sky level and noise, colour, sizes, source counts...): render `--n` mock galaxies per coarse class with the
current constants, or with `--set NAME=VALUE` overrides of them, and print the same KS table as the realism
stage (realism.stats.image_stats, realism.compare.compare). The real set is one of params.yaml
`realism.real_sets` (smooth / spiral / edge-on scheme). No training, no DVC: seconds to minutes.

Usage:
    python tools/calibrate_mock_images.py [--set gz1] [--n 100] [--set-const RGB_STRETCH=0.9 ...]
"""

from __future__ import annotations

import argparse
import ast
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from specmorph.realism.compare import compare, sample_per_class, stats_of
from specmorph.realism.report import load_real_set, realism_params, skip_reason
from specmorph.realism.sim_to_real import SCHEMES
from specmorph.realism.stats import STAT_NAMES, image_stats
from specmorph.sky import observe, survey
from specmorph.sky.population import draw_galaxy

REPO = Path(__file__).resolve().parents[1]
SEED = 7


MODULES = {"observe": observe, "survey": survey}  # where --set-const looks: NAME (sky/observe.py) or survey.NAME


def _apply(overrides: dict[str, object]) -> None:
    for key, value in overrides.items():
        where, _, name = key.rpartition(".")
        module = MODULES.get(where or "observe")
        if module is None or not hasattr(module, name):
            raise SystemExit(f"no constant {key} (NAME of sky/observe.py, or survey.NAME of sky/survey.py)")
        setattr(module, name, tuple(value) if isinstance(value, list) else value)


def _render_stats(overrides: dict[str, object], task: tuple[str, str, int]) -> dict[str, float]:
    """image_stats of one mock GZ2 cutout of an 8-class label, rendered and JPEG-coded as the survey does."""
    _apply(overrides)
    coarse, label, i = task
    rng = np.random.default_rng([SEED, i, len(label)])
    g = draw_galaxy(rng, f"M{i}", 180.0, 10.0, None, label_name=label, field=True)
    rgb = observe.render_cutout(g, 424, survey.gz2_pixscale(g, 424), rng=rng)
    decoded = cv2.imdecode(np.frombuffer(observe.encode_jpeg(rgb), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    return {**image_stats(decoded), "coarse": coarse}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--set", dest="real_set", default="gz1", help="realism.real_sets name")
    parser.add_argument("--n", type=int, default=100, help="mock and real images per coarse class")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set-const", action="append", default=[], metavar="NAME=VALUE",
                        help="override a constant (Python literal) of sky/observe.py, e.g. RGB_STRETCH=0.9, or of "
                             "sky/survey.py, e.g. survey.GZ2_R50_SCALE=0.025")
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.set_const)}
    _apply(overrides)
    _, sets = realism_params(yaml.safe_load(args.params.read_text())["realism"])
    rs = sets[args.real_set]
    if skip_reason(rs):
        print(f"{args.real_set}: {skip_reason(rs)}; nothing to compare")
        sys.exit(0)
    real = load_real_set(rs)
    picked = sample_per_class(real.coarse, args.n, SEED)
    real_stats = stats_of([str(real.paths[i]) for i in picked], 5.0).assign(coarse=real.coarse[picked])
    scheme = SCHEMES[rs.scheme]
    tasks = [(c, labels[i % len(labels)], i) for c, labels in scheme.items() for i in range(args.n)]
    with ProcessPoolExecutor(args.workers) as pool:
        mock = pd.DataFrame(list(pool.map(partial(_render_stats, overrides), tasks, chunksize=4)))
    classes = list(scheme)
    out = compare(mock, real_stats, classes)
    print(f"KS (median mock / median real), {args.n} per class, overrides {overrides or 'none'}")
    for stat in STAT_NAMES:
        cells = [f"{out[c][stat]['ks']:.2f} ({out[c][stat]['median_mock']:.3g}/{out[c][stat]['median_real']:.3g})"
                 for c in classes]
        print(f"{stat:24s} " + "  ".join(f"{c}: {cell:22s}" for c, cell in zip(classes, cells, strict=True)))
    ks = [out[c][s]["ks"] for c in classes for s in STAT_NAMES if out[c][s]["ks"] is not None]
    print(f"mean KS {np.mean(ks):.3f}, max {out['max_ks']:.2f} at {out['max_ks_at']}")


if __name__ == "__main__":
    main()
