"""Runs every ratio benchmark one after another and checks each one's last line against its target.

Each benchmark ends by printing `ratio <name> <value> target <target>`; this script reads that line
only, so it works for any benchmark that follows the convention. Run by hand from the repository root
on a quiet machine: `python benchmarks/run_all.py [--quick] [name ...]`. Exit status 0 whatever the
ratios (benchmarks report, they do not judge); 1 if a benchmark failed or printed no ratio line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ("cube_ingest", "segment", "train_loop", "predict", "crossmatch", "pipeline_overhead", "manga_read")


def last_ratio_line(stdout: str) -> tuple[str, float, float] | None:
    """(name, ratio, target) from the last non-empty line, or None if it is not a ratio line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    words = lines[-1].split() if lines else []
    if len(words) != 5 or words[0] != "ratio" or words[3] != "target":
        return None
    return words[1], float(words[2]), float(words[4])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each (smoke run)")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    rows, failed = [], False
    for name in args.names or BENCHMARKS:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if args.quick else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        parsed = last_ratio_line(proc.stdout) if proc.returncode == 0 else None
        if parsed is None:
            failed = True
            print(f"{name}: FAILED (exit {proc.returncode}, no ratio line)\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        _, ratio, target = parsed
        rows.append(f"| {name} | {ratio:.3f} | {target} | {'yes' if ratio >= target else 'no'} | {seconds:.0f} s |")
        print(rows[-1], flush=True)
    print("| benchmark | ratio | target | met | run time |\n|---|---|---|---|---|\n" + "\n".join(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
