"""One self-contained HTML page of a run's results, from metrics/ and plots/ (`specmorph report`, stage `report`).

Every figure is embedded as a data URI (confusion matrices and learning curves are drawn here with
matplotlib from the stages' CSV/TSV files; Grad-CAM, realism and segmentation figures are the PNG/JPEG
files the stages wrote), so the page opens in a browser from anywhere, without a server or the run's
directories. A section whose inputs are missing says which file is missing instead of a figure.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specmorph.evaluation.report import IMAGE_CEILING_KEY, mean_std
from specmorph.io.atomic import atomic_file

log = logging.getLogger(__name__)

CURVES = ("train_loss", "val_loss", "train_acc", "val_acc")  # dvclive series the train stage logs
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em}
figcaption{font-size:.85em;color:#555}img{max-width:100%}.missing{color:#a00}details{margin:1em 0}"""


@dataclass
class Report:
    """The page being built: sections of HTML and the figures embedded (for tests and the log)."""

    parts: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # the source of every embedded figure
    missing: list[str] = field(default_factory=list)  # inputs that were absent

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def absent(self, path: Path) -> None:
        self.missing.append(str(path))
        self.parts.append(f'<p class="missing">not available: {html.escape(str(path))} is missing</p>')

    def table(self, header: list[str], rows: Iterable[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def figure(self, data: bytes, mime: str, caption: str, source: str) -> None:
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        self.figures.append(source)
        self.parts.append(f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def image_file(self, path: Path, caption: str | None = None) -> None:
        mime = IMAGE_TYPES.get(path.suffix.lower())
        if mime is None or not path.is_file():
            self.absent(path)
            return
        self.figure(path.read_bytes(), mime, caption or path.stem, str(path))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if np.isfinite(v) else "–"
    return "–" if v is None else str(v)


def _mean_std(d: dict | None) -> str:
    """`report.mean_std`, or "–" for an absent figure."""
    return mean_std(d) if d and d.get("mean") is not None else "–"


def _ci(v: list[float] | None) -> str:
    return f"[{v[0]:+.3f}, {v[1]:+.3f}]" if v else "–"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def confusion_png(csv_path: Path, title: str) -> bytes:
    """A row-normalised confusion heatmap, counts written in the cells, from an (actual, predicted) CSV."""
    pairs = pd.read_csv(csv_path, dtype=str)
    classes = sorted(set(pairs["actual"]) | set(pairs["predicted"]))
    counts = pd.crosstab(pairs["actual"], pairs["predicted"]).reindex(index=classes, columns=classes, fill_value=0)
    frac = counts.to_numpy() / np.maximum(counts.to_numpy().sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.55 * len(classes), 0.8 + 0.5 * len(classes)))
    ax = fig.subplots()
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return _png(fig)


def curves_png(run_dirs: list[Path], title: str) -> bytes:
    """Loss and accuracy per epoch (train solid, validation dashed), one colour per seed's dvclive directory."""
    fig = Figure(figsize=(9, 3))
    axes = fig.subplots(1, 2)
    for k, run in enumerate(run_dirs):
        for name in CURVES:
            path = run / "plots" / "metrics" / f"{name}.tsv"
            if not path.is_file():
                continue
            series = pd.read_csv(path, sep="\t")
            ax = axes[0] if name.endswith("loss") else axes[1]
            ax.plot(series["step"] + 1, series[name], color=f"C{k}", ls="-" if name.startswith("train") else "--",
                    label=f"{run.name} {name.split('_')[0]}")
    for ax, what in zip(axes, ("loss", "accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
    axes[1].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def _load(path: Path, report: Report) -> dict | None:
    if not path.is_file():
        report.absent(path)
        return None
    return json.loads(path.read_text())


def _results(metrics: Path, r: Report) -> None:
    r.heading("Results: every network on every test set (mean ± std over seeds)")
    ev = _load(metrics / "evaluate.json", r)
    if ev is None:
        return
    sets = [k for k, v in ev.items() if isinstance(v, dict) and any(isinstance(x, dict) and "accuracy" in x
                                                                     for x in v.values())]
    rows = [[s, name, v.get("n"), _mean_std(v.get("accuracy")), _mean_std(v.get("macro_f1"))]
            for s in sets for name, v in ev[s].items()]
    r.table(["test set", "network", "images", "accuracy", "macro-F1"], rows)
    ceiling = ev.get("label_ceiling") or {}
    if ceiling.get("accuracy") is not None:
        vs_truth = ", ".join(f"{k} {v:.3f}" for k, v in (ceiling.get("truth_accuracy") or {}).items())
        r.text(f"Label ceiling: the test labels agree with the mock truth on {ceiling['accuracy']:.3f} of "
               f"{ceiling.get('n')} test galaxies; fraction of it reached: "
               + ", ".join(f"{k} {v:.3f}" for k, v in (ceiling.get("fraction_of_ceiling") or {}).items())
               + (f"; accuracy against the truth: {vs_truth}" if vs_truth else ""))
    images = _load(metrics / "image_ceiling.json", r) or {}
    if IMAGE_CEILING_KEY in images:
        on_truth = images[IMAGE_CEILING_KEY]
        r.text(f"Image ceiling: the RGB-only network trained on the mock's true classes (same images, budget and "
               f"seeds) scores {_mean_std(on_truth['accuracy_vs_labels'])} against the test labels and "
               f"{_mean_std(on_truth['accuracy_vs_truth'])} against the truth ({images.get('n_test')} images)")
    elif "skipped" in images:
        r.text(f"Image ceiling: skipped ({images['skipped']})")
    cvt = _load(metrics / "cvt.json", r)
    if cvt:
        r.table(["5-class GZ2 subset", "accuracy", "macro-F1"],
                [[name, _mean_std(cvt[name].get("accuracy")), _mean_std(cvt[name].get("macro_f1"))]
                 for name in ("cvt", "resnet") if name in cvt])


def _ablation(metrics: Path, r: Report) -> None:
    r.heading("Does spectral guidance help? (guided − RGB-only accuracy)")
    ab = _load(metrics / "ablation.json", r)
    if ab is None:
        return
    rows = []
    for name, res in ab.items():
        if not (isinstance(res, dict) and isinstance(res.get("accuracy"), dict) and "per_seed_diff" in res["accuracy"]):
            continue
        a = res["accuracy"]
        mcn = ", ".join(f"{m['p']:.2g}" for m in res.get("mcnemar", []))
        rows.append([name, res.get("n_galaxies"), _mean_std(a.get("baseline")), _mean_std(a.get("guided")),
                     f"{a['diff_mean']:+.3f}", _ci(a.get("ci95")), _ci(a.get("ci95_seeds_and_galaxies")),
                     (a.get("mde") or {}).get("combined"), a.get("p_paired_t"), mcn or "–", a.get("detected")])
    r.table(["test set", "galaxies", "RGB-only", f"guided ({ab.get('guided')})", "difference",
             "95% CI galaxies", "95% CI seeds+galaxies", "MDE (80% power)", "paired t p", "McNemar p per seed",
             "detected"], rows)


def _confusions(plots: Path, r: Report) -> None:
    r.heading("Confusion matrices (rows: true class, summed over seeds)")
    paths = sorted(plots.glob("confusion_*.csv")) + sorted((plots / "realism" / "confusion").glob("*.csv"))
    if not paths:
        r.absent(plots / "confusion_*.csv")
    for path in paths:
        r.figure(confusion_png(path, path.stem), "image/png", path.stem, str(path))


def _curves(plots: Path, r: Report) -> None:
    r.heading("Learning curves (dvclive, plots/train)")
    runs = sorted(p for p in (plots / "train").glob("*_seed*") if p.is_dir())
    if not runs:
        r.absent(plots / "train")
    for name in sorted({p.name.rsplit("_seed", 1)[0] for p in runs}):
        group = [p for p in runs if p.name.rsplit("_seed", 1)[0] == name]
        r.figure(curves_png(group, name), "image/png", f"{name}: loss and accuracy per epoch", str(plots / "train"))


def _image_dir(r: Report, title: str, folder: Path) -> None:
    r.heading(title)
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_TYPES) if folder.is_dir() else []
    if not files:
        r.absent(folder)
    for path in files:
        r.image_file(path)


def _realism(metrics: Path, plots: Path, r: Report) -> None:
    r.heading("Mock against the real sky (sim-to-real transfer)")
    real = _load(metrics / "realism.json", r)
    if real is not None:
        rows = []
        for name, res in (real.get("sets") or {}).items():
            if "skipped" in res:
                rows.append([name, res["skipped"], "", ""])
                continue
            for family in ("rgb_only", "guided"):
                fam = res.get(family) or {}
                rows.append([name, family, _mean_std(fam.get("balanced_accuracy")), _mean_std(fam.get("macro_f1"))])
        r.table(["real set", "network", "balanced accuracy", "macro-F1"], rows)
    for sub in ("histograms", "spectra"):
        _image_dir(r, f"Realism: {sub}", plots / "realism" / sub)


def _all_metrics(metrics: Path, r: Report) -> None:
    r.heading("Every metric (metrics/*.json, flattened)")
    for path in sorted(metrics.glob("*.json")):
        flat = pd.json_normalize(json.loads(path.read_text()), sep=".")
        rows = [[k, v if not isinstance(v, list) else json.dumps(v)[:200]] for k, v in flat.iloc[0].items()]
        r.parts.append(f"<details><summary>{html.escape(path.name)} ({len(rows)} values)</summary>")
        r.table(["key", "value"], rows)
        r.parts.append("</details>")


def build_report(metrics_dir: str | Path, plots_dir: str | Path, docs_dir: str | Path | None = None) -> Report:
    """Assembles the page from a run's directories; absent inputs are named in the page, never an error."""
    metrics, plots = Path(metrics_dir), Path(plots_dir)
    r = Report()
    # No clock and no absolute path: the same run gives the same page, byte for byte (a DVC output).
    r.parts.append(f"<h1>specmorph results</h1><p>from {html.escape(str(metrics))} and {html.escape(str(plots))}</p>")
    _results(metrics, r)
    _ablation(metrics, r)
    _confusions(plots, r)
    _curves(plots, r)
    _realism(metrics, plots, r)
    _image_dir(r, "Grad-CAM, RGB-only (top row correct, bottom row misclassified)", plots / "gradcam" / "rgb_only")
    _image_dir(r, "Grad-CAM, guided", plots / "gradcam" / "guided")
    _image_dir(r, "Grad-CAM, CvT", plots / "gradcam_cvt")
    r.heading("Segmentation and deblending")
    seg = _load(metrics / "segment.json", r)
    if seg:
        r.table(["images", "deblended fraction", "mean flux removed", "ambiguous fraction", "degenerate fraction"],
                [[seg.get("n_images"), seg.get("deblended_fraction"), seg.get("mean_flux_removed"),
                  seg.get("ambiguous_fraction"), seg.get("degenerate_fraction")]])
    if docs_dir is not None:
        r.image_file(Path(docs_dir) / "deblend_examples.jpg", "real cutouts: masks before and after deblending")
    _all_metrics(metrics, r)
    return r


def write_report(out: str | Path, metrics_dir: str | Path, plots_dir: str | Path,
                 docs_dir: str | Path | None = None) -> Report:
    """Writes the page to `out` (atomically: a failure leaves no partial file) and returns what went in."""
    r = build_report(metrics_dir, plots_dir, docs_dir)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>specmorph results</title>"
            f"<style>{STYLE}</style></head><body>{''.join(r.parts)}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report: %d figures, %d inputs missing -> %s", len(r.figures), len(r.missing), out)
    return r
