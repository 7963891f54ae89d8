"""Prints the README's realism tables from `metrics/realism.json`: sim-to-real scores, KS distances, spectra.

Usage: python tools/realism_table.py [metrics/realism.json]
"""

import argparse
import json
from pathlib import Path

from specmorph.evaluation.report import mean_std


def score_rows(report: dict) -> list[str]:
    """One Markdown row per real set: balanced accuracy, accuracy and macro-F1 of each family."""
    families = report["families"]
    head = "| real set (images) | scheme | " + " | ".join(
        f"{families[f]} balanced acc | {families[f]} macro-F1" for f in families) + " | chance |"
    out = [head, "|" + "---|" * (3 + 2 * len(families))]
    for name, s in report["sets"].items():
        if "skipped" in s:
            out.append(f"| {name} | skipped: {s['skipped']} |")
            continue
        cells = " | ".join(f"{mean_std(s[f]['balanced_accuracy'])} | {mean_std(s[f]['macro_f1'])}" for f in families)
        out.append(f"| {name} ({s['n_images']}) | {s['scheme']} | {cells} | {s['chance_balanced_accuracy']:.2f} |")
    return out


def ks_rows(report: dict) -> list[str]:
    """One Markdown row per image statistic: KS (median mock / median real) for every set and class."""
    cols = [(name, cls) for name, s in report["sets"].items() if s.get("image_statistics")
            for cls, v in s["image_statistics"].items() if isinstance(v, dict)]
    if not cols:
        return ["(no image statistics: no real set)"]
    stats = [k for k, v in report["sets"][cols[0][0]]["image_statistics"][cols[0][1]].items() if isinstance(v, dict)]
    out = ["| statistic | " + " | ".join(f"{n} {c}" for n, c in cols) + " |", "|" + "---|" * (1 + len(cols))]
    for stat in stats:
        cells = []
        for name, cls in cols:
            r = report["sets"][name]["image_statistics"][cls].get(stat)
            ok = isinstance(r, dict)
            cells.append(f"{r['ks']:.2f} ({r['median_mock']:.3g}/{r['median_real']:.3g})" if ok else "")
        out.append(f"| {stat} | " + " | ".join(cells) + " |")
    return out


def spectra_rows(report: dict) -> list[str]:
    """Separability of the Hubble-type groups, mock vs real, then KS (median mock / median real) per quantity."""
    sp = report.get("spectra", {"skipped": "not in this report"})
    if "skipped" in sp:
        return [f"(spectra skipped: {sp['skipped']})"]
    out = ["| task | mock balanced acc (this run) | mock, fresh draws | real balanced acc | mock - real "
           "| fresh draws - real |", "|---|---|---|---|---|---|"]
    for task, v in sp["separability"].items():
        mock, real = (mean_std(x) if x["mean"] is not None else f"too few ({x['counts']})"
                      for x in (v["mock"], v["real"]))
        fresh = v.get("mock_generator")  # absent from reports made before it existed
        fresh_cell = ("not run" if fresh is None else "too few" if fresh["mean"] is None
                      else f"{mean_std(fresh)} ({fresh['draws']} draws of {fresh['n']})")
        diffs = ["" if d is None else f"{d:+.3f}" for d in (v["difference"], v.get("generator_difference"))]
        out.append(f"| {task} | {mock} | {fresh_cell} | {real} | {diffs[0]} | {diffs[1]} |")
    q = sp["quantities"]
    groups = [g for g, v in q.items() if isinstance(v, dict)]
    names = [k for k, v in q[groups[0]].items() if isinstance(v, dict)]
    out += ["", "| quantity | " + " | ".join(groups) + " |", "|" + "---|" * (1 + len(groups))]
    for name in names:
        cells = [q[g][name] for g in groups]
        out.append(f"| {name} | " + " | ".join(
            f"{c['ks']:.2f} ({c['median_mock']:.3g}/{c['median_real']:.3g})" if c["ks"] is not None else ""
            for c in cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="metrics/realism.json", type=Path)
    report = json.loads(parser.parse_args().path.read_text())
    print("\n\n".join("\n".join(rows(report)) for rows in (score_rows, ks_rows, spectra_rows)))


if __name__ == "__main__":
    main()
