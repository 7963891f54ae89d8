"""`dvc metrics diff` with each change set against the seed-to-seed spread: noise or a real change?

Training on another CPU (or BLAS build) takes another floating-point path, so the trained weights, and
the per-seed scores, differ like a different seed's would; the data stages do not (they reproduce by
hash). This tool reads `dvc metrics diff --all --json A B` and, for every changed number, gives the
scale of that noise where the metrics carry it:

- a `<metric>.mean` with sibling `.std` and `.n` (a mean over n seeds, std over seeds): a change of
  the mean between two independent sets of runs has standard deviation std·√(2/n);
- a per-seed figure such as `final.rgb_only_seed3.val_acc`: the spread of the same figure over the
  other seeds of the old run, times √2 (the difference of two runs);
- the spread figures beside such a mean (`.std`, `.min`, `.max`) move with it: "spread statistic";
- anything else (counts, data-stage figures, derived test statistics) has no noise scale: "changed".

A change is "within spread" when |Δ| ≤ 2 × its noise scale. With ~100 figures compared at 2 scales,
a few "beyond spread" are expected by chance (about 5%).

Usage: python tools/metrics_diff.py [A_REV [B_REV]]    (default: HEAD against the workspace)
       python tools/metrics_diff.py --json-file diff.json   (the saved output of `dvc metrics diff --all --json`)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

SEED_KEY = re.compile(r"seed\d+")
WITHIN = 2.0  # |Δ| ≤ WITHIN × noise scale reads as run-to-run noise
SPREAD_KEYS = ("std", "min", "max")


def noise_scales(old: dict[str, float]) -> dict[str, float]:
    """Noise scale of each key of one metrics file (flattened, dotted keys → old values); keys without one are absent.

    Args:
        old: {dotted key: value} of one metrics file at the reference revision.

    Returns:
        {dotted key: standard deviation of its change between two independent runs}.
    """
    scales: dict[str, float] = {}
    for key in old:
        if key.endswith(".mean"):
            stem = key[: -len(".mean")]
            std, n = old.get(f"{stem}.std"), old.get(f"{stem}.n")
            if isinstance(std, int | float) and isinstance(n, int | float) and n >= 2:
                scales[key] = std * math.sqrt(2.0 / n)
    groups: dict[str, list[str]] = {}
    for key in old:
        if SEED_KEY.search(key) and isinstance(old[key], int | float) and not isinstance(old[key], bool):
            groups.setdefault(SEED_KEY.sub("seed*", key), []).append(key)
    for keys in groups.values():
        if len(keys) >= 3:
            spread = statistics.stdev(float(old[k]) for k in keys) * math.sqrt(2.0)
            scales.update(dict.fromkeys(keys, spread))
    return scales


def annotate(diff: dict[str, dict[str, dict]]) -> list[dict]:
    """One row per changed number of a `dvc metrics diff --all --json` result.

    Args:
        diff: {metrics file: {dotted key: {"old": …, "new": …, "diff": …}}}.

    Returns:
        Rows with path, key, old, new, delta, scale (None: no noise scale) and verdict
        ("within spread", "beyond spread", "spread statistic", "changed", "new", "removed").
    """
    rows = []
    for path, entries in sorted(diff.items()):
        scales = noise_scales({k: e.get("old") for k, e in entries.items() if e.get("old") is not None})
        for key, e in entries.items():
            old, new = e.get("old"), e.get("new")
            if old == new or isinstance(old, bool) or isinstance(new, bool):
                continue
            if old is None or new is None:
                rows.append({"path": path, "key": key, "old": old, "new": new, "delta": None, "scale": None,
                             "verdict": "new" if old is None else "removed"})
                continue
            if not (isinstance(old, int | float) and isinstance(new, int | float)):
                continue
            delta, scale = new - old, scales.get(key)
            stem, _, last = key.rpartition(".")
            if scale is None and last in SPREAD_KEYS and f"{stem}.mean" in entries:
                verdict = "spread statistic"
            elif scale is None:
                verdict = "changed"
            else:
                verdict = "within spread" if abs(delta) <= WITHIN * scale else "beyond spread"
            rows.append({"path": path, "key": key, "old": old, "new": new, "delta": delta, "scale": scale,
                         "verdict": verdict})
    return rows


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render(rows: list[dict]) -> str:
    """A Markdown table of `annotate`'s rows and a one-line tally."""
    lines = ["| path | metric | old | new | Δ | noise scale | verdict |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['key']} | {_fmt(r['old'])} | {_fmt(r['new'])} | {_fmt(r['delta'])} | "
              f"{_fmt(r['scale'])} | {r['verdict']} |" for r in rows]
    tally = {v: sum(r["verdict"] == v for r in rows) for v in dict.fromkeys(r["verdict"] for r in rows)}
    lines.append("")
    lines.append(f"{len(rows)} changed: " + ", ".join(f"{n} {v}" for v, n in tally.items()) if rows else "no change")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="*", metavar="REV", help="A_REV [B_REV], as for `dvc metrics diff`")
    parser.add_argument("--json-file", type=Path, help="saved `dvc metrics diff --all --json` output to read instead")
    args = parser.parse_args(argv)
    if len(args.revs) > 2:
        parser.error("at most two revisions")
    if args.json_file is not None:
        text = args.json_file.read_text()
    else:
        cmd = ["dvc", "metrics", "diff", "--all", "--json", *args.revs]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            print(f"metrics_diff: {' '.join(cmd)} failed: {proc.stderr.strip()}", file=sys.stderr)
            return 2
        text = proc.stdout
    try:
        diff = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        print(f"metrics_diff: not JSON from dvc metrics diff: {exc}", file=sys.stderr)
        return 2
    print(render(annotate(diff)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
