"""Benchmark (issue 7, #6): DVC's no-op overhead, and which stages a change to each params key makes re-run.

In a temporary `git clone` of the committed HEAD (its own src/ first on PYTHONPATH, the repository's
.venv linked), params.yaml gets the tiny profile and the small settings of tests/pipeline/
test_end_to_end.py, and `dvc repro` runs once (--quick: placeholder outputs recorded with `dvc commit
-f` instead, the same up-to-date state in seconds). Then:

- no-op cost: `dvc repro` with nothing to do, timed A/B against `dvc status` (ratio = status s / repro s);
- invalidation: for every top-level key of params.yaml and of dvc.yaml's `params` lists (found
  generically, so new ones such as `executor` or `dask` are covered) one leaf value is changed, and
  every dotted key a stage declares (e.g. `train.lr`); `dvc status --json` gives the stages DVC
  sees as changed and DVC's DAG (`dvc dag --dot`) their descendants, compared with the expected set:
  the stages declaring the key (or a parent or child of it) in dvc.yaml or reading it in their script
  (static scan below), and everything downstream of them through deps/outs paths; then it is
  reverted. (`dvc status` and `dvc repro --dry` list only the directly changed stages: a descendant
  re-runs once its input file has actually changed.)
- a static scan of stages/<name>.py for params reads (params_of, section, params[...], params.get,
  HELPER_READS); a read that no `params` entry of the stage covers is also reported on its own.

The ratio line is the fraction of keys whose re-run set matched exactly (target 1.0); the no-op seconds
are in the JSON. Run from the repository root: `python benchmarks/pipeline_overhead.py [--quick]`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from harness import finish, paired

NAME = "pipeline_overhead"
REPO = Path(__file__).resolve().parents[1]
TARGET = 1.0
PATH_KEYS = ("deps", "outs", "metrics", "plots")
HELPER_READS = {"executor_params(params)": ("executor", "dask")}  # library helpers handed the whole params


def tiny_params(params: dict) -> dict:
    """The tiny profile with the settings of tests/pipeline/test_end_to_end.py's run_dir fixture."""
    p = copy.deepcopy(params)
    p["profile"] = "tiny"
    p["evaluate"]["seeds"] = [0, 1]
    p["pca_rf"]["n_estimators"] = 20
    p["embed"].update(epochs=1, folds=2, knn_k=1, width=8, embed_dim=16)
    return p


def stage_paths(spec: dict, keys: tuple[str, ...]) -> list[str]:
    """Paths of a stage's deps/outs/metrics/plots entries (plain strings or one-key mappings)."""
    return [(e if isinstance(e, str) else next(iter(e))).rstrip("/") for k in keys for e in spec.get(k, [])]


def declared_params(spec: dict) -> list[str]:
    """Dotted params keys a stage declares (entries of params.yaml only)."""
    out = []
    for e in spec.get("params", []):
        if isinstance(e, dict):  # {file: [keys]}
            out += [k for f, keys in e.items() if Path(f).name == "params.yaml" for k in keys]
        else:
            out.append(e)
    return out


def covers(declared: str, key: str) -> bool:
    """A declared key tracks `key` when one is the other or an ancestor of it."""
    return declared == key or key.startswith(declared + ".") or declared.startswith(key + ".")


def inside(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def expected_edges(stages: dict) -> set[tuple[str, str]]:
    """(upstream, downstream) from dvc.yaml: an output path of one stage lies in or over a dep of another."""
    outs = {n: stage_paths(s, ("outs", "metrics", "plots")) for n, s in stages.items()}
    deps = {n: stage_paths(s, ("deps",)) for n, s in stages.items()}
    return {(a, b) for a in stages for b in stages if a != b
            and any(inside(o, d) for o in outs[a] for d in deps[b])}


def closure(start: set[str], edges: set[tuple[str, str]]) -> set[str]:
    out, frontier = set(start), list(start)
    while frontier:
        a = frontier.pop()
        for x, y in edges:
            if x == a and y not in out:
                out.add(y)
                frontier.append(y)
    return out


def leaves(tree: object, prefix: str = "") -> list[str]:
    if isinstance(tree, dict) and tree:
        return [k for key, v in tree.items() for k in leaves(v, f"{prefix}.{key}" if prefix else str(key))]
    return [prefix]


def get(tree: dict, key: str) -> object:
    for part in key.split("."):
        tree = tree[part]
    return tree


def changed(value: object) -> object:
    """A different value of the same kind (nothing runs, so validity does not matter)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value + 0.1, 6)
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, list):
        return [*value, value[-1] if value else 0]
    if isinstance(value, dict):
        return {**value, "benchmark_added_key": 1}
    return 1


def with_change(params: dict, key: str) -> dict:
    p = copy.deepcopy(params)
    *parents, last = key.split(".")
    node = p
    for part in parents:
        node = node[part]
    node[last] = changed(node[last])
    return p


def cases(params: dict, stages: dict, quick: bool) -> list[str]:
    """Keys to change: one undeclared-as-dotted leaf per top-level key, then every declared dotted key."""
    declared = {k for s in stages.values() for k in declared_params(s)}
    tops = list(dict.fromkeys([*params, *(k.split(".")[0] for k in declared)]))
    dotted = sorted(k for k in declared if "." in k)
    out = []
    for top in tops:
        if top not in params:
            out.append(top)
            continue
        found = leaves(params[top], top)
        plain = [k for k in found if not any(covers(d, k) for d in dotted)]
        out.append((plain or found)[0])
    if not quick:
        out += [k for k in dotted if k not in out]
    return out


def static_reads(stage_file: Path) -> set[str]:
    """Params keys a stage script reads, by pattern (params_of/section/params[...]/params.get, HELPER_READS)."""
    text = stage_file.read_text()
    keys = set(re.findall(r'params_of\([^,]+,\s*"([\w.]+)"\)', text))
    keys |= set(re.findall(r'section\(params,\s*"([\w.]+)"\)', text))
    keys |= set(re.findall(r'params\.get\("(\w+)"', text))
    for top, sub in re.findall(r'params\["(\w+)"\](?:\["(\w+)"\])?', text):
        keys.add(f"{top}.{sub}" if sub else top)
    for call, read in HELPER_READS.items():
        if call in text:
            keys.update(read)
    return keys


class Dvc:
    """Runs dvc in the clone with the clone's own code first on PYTHONPATH."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        venv_bin = repo / ".venv" / "bin"
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(repo / "src"),
                    "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.exe = str(venv_bin / "dvc")

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([self.exe, *args], cwd=self.repo, env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def status(self) -> dict:
        return json.loads(self("status", "--json") or "{}")

    def edges(self) -> set[tuple[str, str]]:
        return set(re.findall(r'"([^"]+)" -> "([^"]+)"', self("dag", "--dot")))


def placeholders(repo: Path, stages: dict) -> None:
    """Every missing dep/out path as a small file (name with a suffix) or a directory holding one."""
    for spec in stages.values():
        for p in stage_paths(spec, PATH_KEYS):
            path = repo / p
            if path.exists():
                continue
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"placeholder {p}\n")
            else:
                path.mkdir(parents=True)
                (path / "placeholder").write_text(f"placeholder {p}\n")


def check_key(dvc: Dvc, stages: dict, params: dict, tiny_text: str, key: str | None,
              edges: tuple[set, set], reads: dict[str, set[str]]) -> dict:
    """Changes `key` (None: rewrites params.yaml unchanged), asks `dvc status`, reverts; compares with dvc.yaml."""
    if key is not None and key.split(".")[0] not in params:
        return {"key": key, "error": "declared in dvc.yaml but absent from params.yaml", "dvc_changed": [],
                "dvc_rerun": [], "expected_rerun": [], "match": False}
    (dvc.repo / "params.yaml").write_text(tiny_text if key is None else
                                          yaml.safe_dump(with_change(params, key), sort_keys=False))
    try:
        direct = set(dvc.status())
    finally:
        (dvc.repo / "params.yaml").write_text(tiny_text)
    expected_direct = {n for n, s in stages.items() if key and any(covers(d, key) for d in
                                                                   [*declared_params(s), *reads.get(n, ())])}
    rerun, expected = closure(direct, edges[0]), closure(expected_direct, edges[1])
    sets = {"dvc_changed": direct, "dvc_rerun": rerun, "expected_changed": expected_direct,
            "expected_rerun": expected}
    return {"key": key or "(none: params.yaml rewritten unchanged)",
            "value": None if key is None else [get(params, key), changed(get(params, key))],
            **{k: [n for n in stages if n in v] for k, v in sets.items()},
            "match": direct == expected_direct and rerun == expected}


def static_check(repo: Path, stages: dict) -> tuple[dict, dict, dict]:
    """Per stage: keys read but covered by no `params` entry; whole sections read where only sub-keys are
    declared (which keys are used is not traced); and the traced reads, for the expected sets."""
    undeclared, partial, traced = {}, {}, {}
    for name, spec in stages.items():
        script = repo / "stages" / f"{name}.py"
        if not script.is_file():
            continue
        reads, decl = static_reads(script), declared_params(spec)
        if missing := sorted(k for k in reads if not any(covers(d, k) for d in decl)):
            undeclared[name] = missing
        if wide := sorted(k for k in reads if k not in missing and not any(d == k or k.startswith(d + ".")
                                                                           for d in decl)):
            partial[name] = wide
        traced[name] = reads - set(wide)
    return undeclared, partial, traced


def markdown(rows: list[dict]) -> str:
    lines = ["| key changed | DVC: changed stages | re-run (DVC DAG) | expected re-run (dvc.yaml) | match |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['key']}` | {', '.join(r['dvc_changed']) or '-'} | {', '.join(r['dvc_rerun']) or '-'} | "
                     f"{', '.join(r['expected_rerun']) or '-'} | {'yes' if r['match'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="no repro (placeholder outputs committed), top-level keys only, 2 timing pairs")
    parser.add_argument("--source", default=str(REPO), help="repository to clone (default: this one)")
    parser.add_argument("--repeat", type=int, help="timed no-op pairs (default 5, quick 2)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and print its path")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    repo = tmp / "repo"
    try:
        subprocess.run(["git", "clone", "--quiet", args.source, str(repo)], check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                              text=True).stdout.strip()
        (repo / ".venv").symlink_to(REPO / ".venv")
        stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
        params = tiny_params(yaml.safe_load((repo / "params.yaml").read_text()))
        tiny_text = yaml.safe_dump(params, sort_keys=False)
        (repo / "params.yaml").write_text(tiny_text)
        dvc = Dvc(repo)
        t0 = time.perf_counter()
        if args.quick:
            placeholders(repo, stages)
            dvc("commit", "--force", "--quiet")
        else:
            dvc("repro")
        setup_s = time.perf_counter() - t0
        if left := dvc.status():
            raise RuntimeError(f"the pipeline is not up to date after set-up: {left}")
        timing = paired(lambda: dvc("repro"), lambda: dvc("status"), items=1,
                        repeat=args.repeat or (2 if args.quick else 5))
        edges = (dvc.edges(), expected_edges(stages))
        undeclared, partial, traced = static_check(repo, stages)
        rows = []
        for key in [None, *cases(params, stages, args.quick)]:
            rows.append(check_key(dvc, stages, params, tiny_text, key, edges, traced))
            print(f"{rows[-1]['key']}: {'match' if rows[-1]['match'] else 'MISMATCH'}; changed "
                  f"{rows[-1]['dvc_changed']}, re-run {rows[-1]['dvc_rerun']}", flush=True)
        if dvc.status():
            raise RuntimeError("params.yaml was not restored: dvc status is not empty")
        matched = sum(r["match"] for r in rows)
        result = {
            "source_commit": head, "mode": "placeholders + dvc commit" if args.quick else "dvc repro (tiny)",
            "setup_s": setup_s, "noop_repro_s": statistics.median(timing["ours"]["wall_s"]),
            "status_s": statistics.median(timing["baseline"]["wall_s"]),
            "noop_ratio_status_over_repro": timing["ratio"], "noop_timing": timing,
            "dag_edges_dvc_equal_dvc_yaml": edges[0] == edges[1], "keys_checked": len(rows),
            "keys_matched": matched, "rows": rows, "undeclared_reads_static": undeclared,
            "section_reads_with_only_subkeys_declared": partial, "table_markdown": markdown(rows),
        }
        print(result["table_markdown"])
        print(f"set-up ({result['mode']}) {setup_s:.1f} s; no-op dvc repro {result['noop_repro_s']:.2f} s, "
              f"dvc status {result['status_s']:.2f} s; undeclared params reads (static scan): {undeclared or 'none'}; "
              f"whole sections read with only sub-keys declared (check by hand): {partial or 'none'}")
    finally:
        if args.keep:
            print(f"clone kept at {repo}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    finish(NAME + (".quick" if args.quick else ""), result, matched / len(rows), TARGET)


if __name__ == "__main__":
    main()
