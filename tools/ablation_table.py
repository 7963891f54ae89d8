"""Prints the README's ablation table from `metrics/ablation.json` files (one per `dvc exp run`).

Usage: python tools/ablation_table.py run1/ablation.json run2/ablation.json ...
"""

import argparse
import json
from pathlib import Path

from specmorph.evaluation.ablation import sentence
from specmorph.evaluation.report import mean_std

SETS = {"gz2_test": "GZ2 test", "gz2_test_matched": "GZ2 test, eCALIFA galaxies",
        "gz2_test_matched_spectra": "GZ2 test, eCALIFA galaxies, guided given the spectra", "galaxy10": "Galaxy10"}


def rows(a: dict, metric: str) -> list[str]:
    """Markdown table rows of one ablation file's contents: one per test set."""
    run = f"`{a['model']}` ({a['rgb_inference']}, {a['embedder']})" if a["model"] != "kd" else f"`kd` ({a['embedder']})"
    if not a.get("teacher_spectra", True):
        run += ", teacher without spectra (control)"
    out = []
    for key, label in SETS.items():
        if key not in a:
            continue
        r = a[key][metric]
        std = f" ± {r['diff_std']:.3f}" if r["diff_std"] is not None else ""
        p = f"{r['p_paired_t']:.2f}" if r["p_paired_t"] is not None else "–"
        lo, hi = r["ci95"]
        joint, mde = r.get("ci95_seeds_and_galaxies"), r.get("mde")  # absent in files from before issue 16
        extra = f" [{joint[0]:+.3f}, {joint[1]:+.3f}] | {mde['combined']:.3f} |" if joint and mde else " – | – |"
        out.append(f"| {run} | {label} ({a[key]['n_galaxies']}) | {mean_std(r['baseline'])} | "
                   f"{mean_std(r['guided'])} | {r['diff_mean']:+.3f}{std} | [{lo:+.3f}, {hi:+.3f}] |{extra} {p} |")
    return out


def table(paths: list[Path], metric: str = "macro_f1") -> list[str]:
    """The Markdown table (header and one row per test set of each file) and one summary line per file."""
    out = [f"| run (rgb_inference, embedder) | test set (galaxies) | RGB-only {metric} | guided | "
           "guided − RGB-only, per-seed mean ± std | 95% CI, galaxies | 95% CI, seeds and galaxies | MDE | "
           "paired t p |", "|---|---|---|---|---|---|---|---|---|"]
    files = [json.loads(path.read_text()) for path in paths]
    for a in files:
        out += rows(a, metric)
    out.append("")
    for a in files:
        control = not a.get("teacher_spectra", True)
        what = "distillation from a teacher without spectra" if control else "spectral guidance"
        how = "kd" if a["model"] == "kd" else f"{a['model']} / {a['rgb_inference']}"
        tag = " (control)" if control else ""
        out.append(f"- {how} / {a['embedder']}{tag}: {sentence(a['gz2_test'], metric, what)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="ablation.json files")
    parser.add_argument("--metric", default="macro_f1", choices=["macro_f1", "accuracy"])
    args = parser.parse_args()
    print("\n".join(table(args.paths, args.metric)))


if __name__ == "__main__":
    main()
