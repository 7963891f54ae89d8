"""Back-of-envelope cost of the full eCALIFA (895 cubes), MaNGA DR17 (10,010 cubes) and GZ2 (304,122 images) runs
on 1, 8 and 64 workers.

Per-item costs are read from the benchmark results (benchmarks/results/*.json, measured on this
machine); nothing here is timed. The model is deliberately simple and says what it assumes:
- per-object stages (cube preparation + the spectra reading pass, segmentation, predict) split their
  items evenly over W single-core workers: T = items × cost / W + dask_startup_s (one cluster per
  stage); shared-filesystem bandwidth and the archive download are not modelled;
- a MaNGA LOGCUBE costs two reads (`prepare_cubes` and `spectra` each read it) at the measured
  `read_logcube` pace scaled by its spaxels to DR17's mean cube, plus the eCALIFA per-cube work of those
  stages scaled the same way (that figure includes eCALIFA's own read, so this errs high);
- crossmatch + labels run once, serially (CSV reads included), whatever W;
- training is data-parallel over W ranks (torchrun) at perfect efficiency; the per-image cost is the
  2-thread CPU figure, so one "worker" here is one 2-core process. This is a lower bound: the
  all-reduce and the per-rank BatchNorm recompute are not modelled, and 2-rank CPU runs on this 2-core
  machine could not show scaling. A GPU changes the training rows completely.
Run: `python benchmarks/cost_table.py` → prints a Markdown table, writes results/cost_table.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from specmorph.io.atomic import atomic_file
from specmorph.params import load_params

RESULTS = Path(__file__).parent / "results"
N_CUBES = 895  # eCALIFA V500 cubes
N_GZ2 = 304_122  # Galaxy Zoo 2 (Hart+16) rows, one image each
N_MANGA = 10_010  # MaNGA DR17 galaxies with a final LOGCUBE (the DRPall's, one per MaNGA ID)
# DR17 LOGCUBE sides (0.5" spaxels) per bundle and the bundles on a plate: 2 x 19, 4 x 37, 4 x 61, 2 x 91, 5 x 127
# fibres, so the mean cube has about 3,150 spaxels (sides approximate: 32, 42, 52, 62, 72).
MANGA_SIDES = {32: 2, 42: 4, 52: 4, 62: 2, 72: 5}
MANGA_MEAN_SPAXELS = sum(side**2 * n for side, n in MANGA_SIDES.items()) / sum(MANGA_SIDES.values())
ECALIFA_SPAXELS = 73 * 78  # the eCALIFA cube of cube_ingest's per-cube costs
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
# labels.test_frac of the galaxies held out, then train.val_frac of the rest (about the image fraction)
TRAIN_FRACTION = (1 - PARAMS["labels"]["test_frac"]) * (1 - PARAMS["train"]["val_frac"])
EPOCHS, SEEDS = PARAMS["train"]["budget"]["default"]["epochs"], len(PARAMS["evaluate"]["seeds"])
NETWORKS = 2  # the baseline and the guided model
DASK_STARTUP_S = 2.3  # LocalCluster start + stop per stage call, measured by benchmarks/segment.py (quick runs)
WORKERS = (1, 8, 64)


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run benchmarks/{name}.py first")
    return json.loads(path.read_text())


def per_item_costs() -> dict[str, float]:
    """Seconds per item of each part, from the result files."""
    cubes, seg, xm = load("cube_ingest"), load("segment"), load("crossmatch")
    train, pred, manga = load("train_loop"), load("predict"), load("manga_read")
    tc = train["per_image_costs"]
    manga_spaxels = manga["cube_shape"][1] * manga["cube_shape"][2]
    return {
        # read_logcube of a mean DR17 cube (the benchmark's read, scaled by spaxels), once per reading stage
        "manga_read_s": MANGA_MEAN_SPAXELS / manga_spaxels / manga["ours"]["items_per_s"],
        "cube_prepare_s": cubes["fits_gz/prepare_cubes"]["ours"]["s_per_cube"],
        "cube_spectra_s": cubes["fits_gz/spectra_read"]["ours"]["s_per_cube"],
        "segment_s": 1 / seg["stage_vs_cv2_same_steps"]["ours"]["items_per_s"],  # the stage, deblending included
        "crossmatch_labels_s": xm["ours_s"] + sum(v for k, v in xm["read_s"].items() if "stage" in k),
        "train_s_per_image_epoch": tc["gated_aug_loop_s_per_image_per_epoch"],
        "train_read_s_per_image": tc["read_and_build_set_s_per_image"],
        "predict_s": pred["s_per_image"]["ours"],
    }


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 \
        else f"{seconds:.1f} s"


def table(c: dict[str, float]) -> tuple[list[dict], str]:
    n_train = TRAIN_FRACTION * N_GZ2
    rows = [
        ("cube preparation + spectra pass, 895 cubes", lambda w: N_CUBES * (c["cube_prepare_s"] + c["cube_spectra_s"])
         / w + 2 * DASK_STARTUP_S * (w > 1)),
        (f"MaNGA DR17, {N_MANGA:,} LOGCUBEs: the read in prepare_cubes and in spectra, and their own work",
         lambda w: N_MANGA * (2 * c["manga_read_s"] + MANGA_MEAN_SPAXELS / ECALIFA_SPAXELS
                              * (c["cube_prepare_s"] + c["cube_spectra_s"])) / w + 2 * DASK_STARTUP_S * (w > 1)),
        ("segment, 304,122 images", lambda w: N_GZ2 * c["segment_s"] / w + DASK_STARTUP_S * (w > 1)),
        ("crossmatch + labels (serial)", lambda w: c["crossmatch_labels_s"]),
        (f"train, {EPOCHS} epochs × {SEEDS} seeds × {NETWORKS} networks on {n_train:,.0f} images",
         lambda w: SEEDS * NETWORKS * (n_train * c["train_read_s_per_image"]
                                       + EPOCHS * n_train * c["train_s_per_image_epoch"] / w)),
        ("predict, 304,122 images, one model", lambda w: N_GZ2 * c["predict_s"] / w + DASK_STARTUP_S * (w > 1)),
    ]
    out, lines = [], ["| step | " + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in WORKERS) + " |",
                      "|---|" + "---|" * len(WORKERS)]
    totals = [0.0] * len(WORKERS)
    for name, cost in rows:
        secs = [cost(w) for w in WORKERS]
        totals = [t + s for t, s in zip(totals, secs, strict=True)]
        out.append({"step": name, **{str(w): s for w, s in zip(WORKERS, secs, strict=True)}})
        lines.append(f"| {name} | " + " | ".join(hours(s) for s in secs) + " |")
    lines.append("| **total** | " + " | ".join(f"**{hours(s)}**" for s in totals) + " |")
    return out, "\n".join(lines)


def main() -> None:
    costs = per_item_costs()
    rows, markdown = table(costs)
    payload = {"per_item_costs": costs, "assumptions": {"n_cubes": N_CUBES, "n_gz2": N_GZ2, "n_manga": N_MANGA,
               "manga_mean_spaxels": MANGA_MEAN_SPAXELS,
               "train_fraction": TRAIN_FRACTION, "epochs": EPOCHS, "seeds": SEEDS, "networks": NETWORKS,
               "dask_startup_s": DASK_STARTUP_S}, "rows": rows, "markdown": markdown}
    with atomic_file(RESULTS / "cost_table.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    print("per-item costs (s): " + ", ".join(f"{k} {v:.4g}" for k, v in costs.items()))
    print(markdown)


if __name__ == "__main__":
    main()
