"""`specmorph report`: one self-contained HTML page; every figure embedded and decodable, missing inputs named."""

import base64
import json
from html.parser import HTMLParser

import cv2
import numpy as np
import pandas as pd

from specmorph.cli import main as cli_main
from specmorph.evaluation.html_report import write_report


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])


def _run_dirs(root):
    metrics, plots, docs = root / "metrics", root / "plots", root / "docs"
    for d in (metrics, plots / "train" / "rgb_only_seed0" / "plots" / "metrics", plots / "gradcam" / "rgb_only",
              docs):
        d.mkdir(parents=True)
    stat = {"mean": 0.6, "std": 0.01, "n": 2}
    (metrics / "evaluate.json").write_text(json.dumps(
        {"model": "gated", "gz2_test": {"rgb_only": {"n": 10, "accuracy": stat, "macro_f1": stat}},
         "label_ceiling": {"n": 10, "accuracy": 0.8, "fraction_of_ceiling": {"rgb_only": 0.75}}}))
    diff = {"baseline": stat, "guided": stat, "per_seed_diff": [0.0, 0.0], "diff_mean": 0.0, "ci95": [-0.1, 0.1],
            "ci95_seeds_and_galaxies": [-0.1, 0.1], "mde": {"combined": 0.2}, "p_paired_t": None, "detected": False}
    (metrics / "ablation.json").write_text(json.dumps(
        {"guided": "gated", "gz2_test": {"n_galaxies": 10, "accuracy": diff, "mcnemar": [{"p": 1.0}]}}))
    pd.DataFrame({"actual": ["a", "b", "b"], "predicted": ["a", "a", "b"]}).to_csv(plots / "confusion_x.csv",
                                                                                   index=False)
    for name in ("train_loss", "val_loss", "train_acc", "val_acc"):
        pd.DataFrame({"step": [0, 1, 2], name: [1.0, 0.8, 0.7]}).to_csv(
            plots / "train" / "rgb_only_seed0" / "plots" / "metrics" / f"{name}.tsv", sep="\t", index=False)
    _, png = cv2.imencode(".png", np.full((8, 8, 3), 200, np.uint8))
    (plots / "gradcam" / "rgb_only" / "round_smooth.png").write_bytes(png.tobytes())
    _, jpg = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))
    (docs / "deblend_examples.jpg").write_bytes(jpg.tobytes())
    return metrics, plots, docs


def test_every_figure_is_embedded_and_decodes(tmp_path):
    metrics, plots, docs = _run_dirs(tmp_path)
    out = tmp_path / "report" / "index.html"
    report = write_report(out, metrics, plots, docs)
    page = out.read_text(encoding="utf-8")
    parser = _Images()
    parser.feed(page)
    assert len(parser.srcs) == len(report.figures) == 4  # confusion, curves, Grad-CAM, deblending examples
    for src in parser.srcs:
        assert src.startswith("data:image/")  # nothing to fetch: opens without a server or the run's files
        data = base64.b64decode(src.split(",", 1)[1])
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    assert not parser.links  # no links out of the page
    assert "0.600 ± 0.010" in page and "[-0.100, +0.100]" in page  # results and ablation tables from the metrics
    assert str(metrics / "realism.json") in report.missing and str(metrics / "realism.json") in page
    assert not list(out.parent.glob("*.tmp"))


def test_the_image_ceiling_is_shown_beside_the_label_ceiling(tmp_path):
    metrics, plots, docs = _run_dirs(tmp_path)
    out = tmp_path / "r.html"
    report = write_report(out, metrics, plots, docs)
    assert str(metrics / "image_ceiling.json") in report.missing
    on_truth = {"accuracy_vs_labels": {"mean": 0.655, "std": 0.008}, "accuracy_vs_truth": {"mean": 0.726, "std": 0.004}}
    (metrics / "image_ceiling.json").write_text(json.dumps({"n_test": 10, "rgb_only_on_truth": on_truth}))
    write_report(out, metrics, plots, docs)
    page = out.read_text(encoding="utf-8")
    assert "scores 0.655 ± 0.008 against the test labels and 0.726 ± 0.004 against the truth (10 images)" in page
    (metrics / "image_ceiling.json").write_text(json.dumps({"skipped": "no mock truth at data/raw/truth/gz2.csv"}))
    write_report(out, metrics, plots, docs)
    assert "Image ceiling: skipped (no mock truth at data/raw/truth/gz2.csv)" in out.read_text(encoding="utf-8")


def test_cli_writes_the_page_and_names_what_is_missing(tmp_path, capsys):
    metrics, plots, docs = _run_dirs(tmp_path)
    out = tmp_path / "r.html"
    assert cli_main(["report", "--metrics-dir", str(metrics), "--plots-dir", str(plots), "--docs-dir", str(docs),
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"wrote {out} (4 figures)" in err and "realism.json" in err
    empty = tmp_path / "nothing"
    assert cli_main(["report", "--metrics-dir", str(empty), "--plots-dir", str(empty), "--docs-dir", str(empty),
                     "--out", str(tmp_path / "e.html")]) == 0  # a page that says what is missing, not a crash
    assert "not available" in (tmp_path / "e.html").read_text()


def test_the_same_run_gives_the_same_page(tmp_path):
    metrics, plots, docs = _run_dirs(tmp_path)
    write_report(tmp_path / "a.html", metrics, plots, docs)
    write_report(tmp_path / "b.html", metrics, plots, docs)
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
