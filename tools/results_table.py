"""Prints (or writes into README.md) the results table of a run, read from its metrics files, never typed in.

Usage: python tools/results_table.py [--metrics-dir metrics] [--write README.md]

With --write, each block of BLOCKS in the file is replaced by its table, generated from the metrics:
`<!-- results:begin -->` ... `<!-- results:end -->` the results table, `deblend` the deblending figures of
metrics/segment.json, `ablation` tools/ablation_table.py on metrics/ablation.json, `realism_scores`,
`realism_images` and `realism_spectra` the three tables of tools/realism_table.py on metrics/realism.json.

Figures quoted in the prose carry an invisible reference to the metric they show, right after the number:
`0.584<!-- =evaluate/gz2_test/rgb_only/accuracy/mean -->` (file `metrics/evaluate.json`, then the keys or list
indices; `*100` after the path for a percentage). --write rewrites each such number from the metrics, with
the decimals and the sign style (+, -, −) it had. tests/tools/test_readme_fresh.py checks that README.md's
blocks and referenced figures equal what this writes from the committed metrics.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from specmorph.evaluation.report import IMAGE_CEILING_KEY, aggregate_seeds, mean_std

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling table tools
import ablation_table
import realism_table

BLOCKS = {name: (f"<!-- {name}:begin -->", f"<!-- {name}:end -->")
          for name in ("results", "deblend", "ablation", "realism_scores", "realism_images", "realism_spectra")}


# A number (optionally signed, optionally followed by %) and the reference to the metric it shows.
FIGURE = re.compile(r"(?<![\w.])(?P<shown>[+\-−]?\d+(?:\.\d+)?)(?P<pct>%?)"
                    r"<!-- =(?P<ref>[\w./\-]+?)(?P<scale>\*100)? -->")


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _kept(train: dict, name: str, key: str) -> str:
    """Mean ± std over seeds (`aggregate_seeds`) of a train.json `final` figure of network `name`."""
    runs = [v for k, v in train["final"].items() if k.rsplit("_seed", 1)[0] == name and key in v]
    return mean_std(aggregate_seeds(runs, [key])[key]) if runs else "–"


def rows(metrics_dir: Path) -> list[str]:
    """Markdown rows: the 8-class study, its label and image ceilings, the CvT study and the sim-to-real scores."""
    ev, train = _read(metrics_dir / "evaluate.json"), _read(metrics_dir / "train.json")
    cvt, realism = _read(metrics_dir / "cvt.json"), _read(metrics_dir / "realism.json")
    images = _read(metrics_dir / "image_ceiling.json") or {}
    out = ["| figure | RGB-only | guided | note |", "|---|---|---|---|"]
    if ev is not None:
        base, guided, seeds = "rgb_only", ev["guided"], len(ev["seeds"])
        out.append(f"| networks, seeds | `{base}` | `{guided}` | {seeds} seeds each, same split, recipe and budget |")
        for key, label in (("gz2_test", "GZ2 test"), ("galaxy10", "Galaxy10")):
            s = ev[key]
            for metric in ("accuracy", "macro_f1"):
                out.append(f"| 8-class {metric}, {label} ({s[base]['n']} images) | {mean_std(s[base][metric])} | "
                           f"{mean_std(s[guided][metric])} | mean ± std over seeds; chance 0.125 |")
        ceiling = ev.get("label_ceiling", {})
        if "accuracy" in ceiling:
            frac = ceiling["fraction_of_ceiling"]
            out.append(f"| share of the label ceiling ({ceiling['accuracy']:.3f}) | {frac[base]:.3f} | "
                       f"{frac[guided]:.3f} | test labels vs the mock's truth, {ceiling['n']} galaxies |")
            if "truth_accuracy" in ceiling:
                vs = ceiling["truth_accuracy"]
                out.append(f"| 8-class accuracy against the mock's truth | {vs[base]:.3f} | {vs[guided]:.3f} | "
                           f"the same galaxies, mean over seeds: what the images let the network recover |")
        if IMAGE_CEILING_KEY in images:
            on_truth = images[IMAGE_CEILING_KEY]
            share = ev["gz2_test"][base]["accuracy"]["mean"] / on_truth["accuracy_vs_labels"]["mean"]
            out.append(f"| the images' ceiling: `{base}` trained on the true classes ({images['n_test']} images), "
                       f"against the labels / the truth | {mean_std(on_truth['accuracy_vs_labels'])} / "
                       f"{mean_std(on_truth['accuracy_vs_truth'])} | | `image_ceiling` stage, same images, budget and "
                       f"seeds; `{base}` reaches {share:.2f} of it against the labels |")
    if train is not None and ev is not None:
        for key, label in (("train_acc", "train accuracy at the kept epoch"),
                           ("val_acc", "val accuracy at the kept epoch"),
                           ("epoch", "kept epoch (the last; with patience, the lowest val loss)"),
                           ("epochs_run", "epochs run")):
            out.append(f"| {label} | {_kept(train, 'rgb_only', key)} | {_kept(train, ev['guided'], key)} | "
                       "`metrics/train.json`, mean ± std over seeds |")
    if cvt is not None:
        out.append(f"| 5-class accuracy, CvT vs its ResNet ({cvt['n_test']} images) | ResNet "
                   f"{mean_std(cvt['resnet']['accuracy'])} | CvT {mean_std(cvt['cvt']['accuracy'])} | "
                   f"{len(cvt['seeds'])} seeds; the seed paper reports 0.858 |")
    for name, s in (realism or {}).get("sets", {}).items():
        if "skipped" in s:
            out.append(f"| sim-to-real, {name} | skipped | | {s['skipped']} |")
            continue
        fam = realism["families"]
        out.append(f"| sim-to-real balanced accuracy, {name} ({s['n_images']} real images, {s['scheme']}) | "
                   f"{mean_std(s['rgb_only']['balanced_accuracy'])} | {mean_std(s['guided']['balanced_accuracy'])} "
                   f"| `{fam['guided']}` as guided; chance {s['chance_balanced_accuracy']:.2f} |")
    return out


def deblend_rows(metrics_dir: Path) -> list[str]:
    """Markdown rows: the deblending judged on the hand-labelled real cutouts and on the whole real dev set."""
    seg = _read(metrics_dir / "segment.json") or {}
    real = seg.get("real_dev", {})
    labels, every = real.get("hand_labels", {"skipped": "no segment metrics"}), real.get("all_images", {})
    if "skipped" in labels:
        return [f"Not measured in this run: {labels['skipped']}."]
    amb = labels["ambiguous"]
    out = ["| on the hand-labelled cutouts | without deblending | with deblending |", "|---|---|---|"]
    for key, label in (("iou", "IoU with the label"), ("contamination", "share of the mask from other sources")):
        cells = [f"median {labels[f'{key}_{w}']['median']:.3f}, worst "
                 f"{labels[f'{key}_{w}']['min' if key == 'iou' else 'max']:.3f}" for w in ("before", "after")]
        out.append(f"| {label} ({labels['n_labelled']} cutouts) | {cells[0]} | {cells[1]} |")
    out.append(f"| masks with more than 10 % from other sources | {labels['n_contaminated_over_0.1_before']} | "
               f"{labels['n_contaminated_over_0.1_after']} |")
    out += ["", f"Of the {amb['labelled_ambiguous']} cutouts labelled ambiguous, {amb['of_them_flagged']} "
            f"{'is' if amb['of_them_flagged'] == 1 else 'are'} flagged `ambiguous`; of the clear ones, "
            f"{amb['labelled_clear_but_flagged']}."]
    if "n_images" in every:
        out.append(f"On all {every['n_images']} real dev cutouts, deblending changes "
                   f"{every['changed_fraction']:.1%} of the masks (mean flux removed {every['mean_flux_removed']:.3f}, "
                   f"ambiguous {every['ambiguous_fraction']:.1%}); on the mock survey's "
                   f"{seg['n_images']} images, {seg['deblended_fraction']:.1%} (flux {seg['mean_flux_removed']:.3f}).")
    return out


def all_tables(metrics_dir: Path) -> dict[str, list[str]]:
    """Every README block's lines, from the metrics files in `metrics_dir` (a missing file: one line saying so)."""
    ablation, realism = metrics_dir / "ablation.json", _read(metrics_dir / "realism.json")
    return {"results": rows(metrics_dir), "deblend": deblend_rows(metrics_dir),
            "ablation": ablation_table.table([ablation]) if ablation.is_file() else [f"({ablation} missing)"],
            **{f"realism_{part}": fn(realism) if realism else [f"({metrics_dir / 'realism.json'} missing)"]
               for part, fn in (("scores", realism_table.score_rows), ("images", realism_table.ks_rows),
                                ("spectra", realism_table.spectra_rows))}}


def replace_block(text: str, table: list[str], block: str = "results") -> str:
    """`text` with the lines between the markers of `block` (BLOCKS) replaced by `table`."""
    begin, end = BLOCKS[block]
    if begin not in text or end not in text or text.index(begin) > text.index(end):
        raise SystemExit(f"results_table: no {begin} ... {end} block to replace")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + "\n".join(table) + "\n" + end + tail


def lookup(metrics_dir: Path, ref: str) -> float:
    """The number at `ref` ("file/key/.../key", a list index as an integer) in `metrics_dir`/file.json."""
    name, *keys = ref.split("/")
    path = metrics_dir / f"{name}.json"
    node = _read(path)
    if node is None:
        raise SystemExit(f"results_table: figure reference {ref!r}: {path} missing")
    for i, key in enumerate(keys):
        try:
            node = node[int(key)] if isinstance(node, list) else node[key]
        except (KeyError, IndexError, ValueError):
            raise SystemExit(f"results_table: figure reference {ref!r}: {path} has no "
                             f"{'/'.join(keys[:i + 1])!r}") from None
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise SystemExit(f"results_table: figure reference {ref!r} in {path} is {node!r}, not a number")
    return float(node)


def format_like(shown: str, value: float) -> str:
    """`value` with `shown`'s decimals; below 0 with `shown`'s "-" or else "−"; above with "+" if `shown` had a sign."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    text = f"{abs(value):.{decimals}f}"
    if value < 0 and float(text) != 0:
        return ("-" if shown[0] == "-" else "−") + text
    return ("+" if shown[0] in "+-−" else "") + text


def refresh_figures(text: str, metrics_dir: Path) -> str:
    """`text` with every referenced figure (FIGURE) rewritten from the metrics in `metrics_dir`."""
    def one(m: re.Match) -> str:
        value = lookup(metrics_dir, m["ref"]) * (100 if m["scale"] else 1)
        return format_like(m["shown"], value) + m["pct"] + m[0][len(m["shown"]) + len(m["pct"]):]
    return FIGURE.sub(one, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    ap.add_argument("--write", type=Path, default=None, help="a Markdown file with the results block to replace")
    args = ap.parse_args()
    tables = all_tables(args.metrics_dir)
    if args.write is None:
        print("\n\n".join("\n".join(t) for t in tables.values()))
        return
    text = args.write.read_text()
    for block, table in tables.items():
        text = replace_block(text, table, block)
    args.write.write_text(refresh_figures(text, args.metrics_dir))


if __name__ == "__main__":
    main()
