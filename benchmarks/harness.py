"""Shared by the ratio benchmarks: paired timing in one process, peak memory, result files, the closing ratio line.

Every benchmark times our code (A) and its baseline (B) in turn, A B A B ..., on the same inputs in
the same process, and reports the median of the per-pair throughput ratios A/B: machine noise that
drifts over seconds hits both sides of a pair alike. Run a benchmark by hand from the repository
root, e.g. `python benchmarks/segment.py`; it writes `benchmarks/results/<name>.json` and prints
its ratio as the last line (`ratio <name> <value> target <target>`), for scripts to check.
"""

from __future__ import annotations

import cProfile
import json
import os
import platform
import pstats
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from specmorph.io.atomic import atomic_file

RESULTS_DIR = Path(__file__).parent / "results"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call of `fn`."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_seconds() - c0


def paired(ours: Callable[[], object], baseline: Callable[[], object], items: int, repeat: int = 5,
           warmup: int = 1) -> dict:
    """Times `ours` and `baseline` alternately; both process the same `items` objects per call.

    Args:
        ours: One pass of our code over the inputs.
        baseline: One pass of the baseline over the same inputs.
        items: Objects per pass (images, cubes, rows), for the throughput figures.
        repeat: Counted pairs.
        warmup: Uncounted pairs first (imports, caches, allocator).

    Returns:
        A JSON-ready dict: per side the wall seconds of every pass, median items/s and CPU
        utilisation (CPU seconds / wall seconds / cores available); `ratio` = median over pairs of
        (our items/s) / (baseline items/s), and its min and max.
    """
    for _ in range(warmup):
        ours()
        baseline()
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
    for _ in range(repeat):
        runs["ours"].append(timed(ours))
        runs["baseline"].append(timed(baseline))
    ratios = [b[0] / a[0] for a, b in zip(runs["ours"], runs["baseline"], strict=True)]
    cores = len(os.sched_getaffinity(0))
    out: dict = {"items": items, "repeat": repeat, "cores": cores}
    for side, rs in runs.items():
        walls = [w for w, _ in rs]
        out[side] = {"wall_s": walls, "items_per_s": items / statistics.median(walls),
                     "cpu_utilisation": sum(c for _, c in rs) / sum(walls) / cores}
    out["ratio"] = statistics.median(ratios)
    out["ratio_min"], out["ratio_max"] = min(ratios), max(ratios)
    return out


def profile_breakdown(fn: Callable[[], object], breakdown: dict[tuple[str, str], str]) -> dict:
    """One profiled call of `fn`: cumulative seconds of chosen functions and the top functions by own time.

    Args:
        fn: The call to profile.
        breakdown: (file suffix, function name) -> label, e.g. ("io/cubes.py", "read_cube") -> "read".

    Returns:
        {"profiled_total_s", "cumulative_s": {label: s}, "top_own_time": [12 x {function, own_s, calls}]}.
    """
    prof = cProfile.Profile()
    prof.runcall(fn)
    stats = pstats.Stats(prof).stats
    out = {label: 0.0 for label in breakdown.values()}
    for (file, _, func), (_, _, _, ct, _) in stats.items():
        for (suffix, name), label in breakdown.items():
            if func == name and file.endswith(suffix):
                out[label] += ct
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
    return {"profiled_total_s": sum(tt for (_, _, tt, _, _) in stats.values()), "cumulative_s": out,
            "top_own_time": [{"function": f"{Path(f).name}:{line}:{func}", "own_s": tt, "calls": nc}
                             for (f, line, func), (_, nc, tt, _, _) in top]}


def finish(name: str, result: dict, ratio: float, target: float) -> Path:
    """Writes `results/<name>.json` (with machine facts and peak memory) and prints the ratio line last."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "ratio": ratio, "target": target, "meets_target": ratio >= target,
               "machine": {"processor": platform.machine(), "cores": len(os.sched_getaffinity(0)),
                           "python": platform.python_version()},
               "peak_rss_mb": peak_rss_mb(), **result}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"ratio {name} {ratio:.3f} target {target}")
    return path
