"""The dry run of a remote ingest: what would be fetched, how much of it is cached, and its estimated size."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from specmorph.errors import InputError
from specmorph.io.catalogs import write_table
from specmorph.remote.jobs import Cache, Job
from specmorph.remote.select import read_califa_table, read_gz2_positions
from specmorph.remote.sources import EST_BYTES, EST_GALAXIES, RemoteSources

log = logging.getLogger(__name__)

PLAN_NAME = "dry_run.csv"
GZ2_ROWS = 304_122  # rows of gz2_hart16, for a dry run before the table is in the cache


def estimate_counts(sources: RemoteSources, max_galaxies: int, max_gz2_images: int, galaxy10: bool) -> dict[str, int]:
    """Objects per kind before the tables are in the cache: the caps, or the tables' documented sizes."""
    n = max_galaxies if max_galaxies > 0 else EST_GALAXIES[sources.califa_table_format]
    n_gz2 = GZ2_ROWS if max_gz2_images < 0 else n + max_gz2_images  # about one GZ2 row per CALIFA galaxy
    counts = {"cube": n, "cutout": n, "gz2_image": 0 if sources.gz2_image_dir else n_gz2}
    if galaxy10:
        counts["galaxy10"] = 1
    return counts


def dry_run(sources: RemoteSources, cache: Cache, tables: Sequence[Job],
            objects: Callable[[pd.DataFrame, pd.DataFrame], list[Job]], estimate: Callable[[], dict[str, int]]) -> dict:
    """Lists what a run would fetch, without fetching anything.

    With both tables in the cache the selection is exact and every object is listed in
    `<cache>/dry_run.csv`; otherwise the counts are estimated from the caps and the per-object
    sizes in `sources.EST_BYTES`.

    Args:
        sources: URLs and the table format.
        cache: The download cache (only read).
        tables: The table jobs.
        objects: Selected CALIFA rows and GZ2 positions -> object jobs.
        estimate: Objects per kind when the tables are not cached yet.

    Returns:
        {"dry_run": True, "exact": bool, "by_kind": {kind: {objects, cached, bytes_to_fetch}},
        "bytes_to_fetch": int, "list_path": str or None}.
    """
    jobs = list(tables)
    exact = all(cache.path(t.rel).is_file() for t in tables)
    if exact:
        try:
            califa = read_califa_table(cache.path(tables[0].rel), sources.califa_table_format)
            jobs += objects(califa, read_gz2_positions(cache.path(tables[1].rel)))
        except (InputError, OSError, ValueError) as err:
            log.warning("dry run: cached tables unreadable (%s); estimating instead", err)
            exact, jobs = False, list(tables)
    by_kind: dict[str, dict[str, int]] = {}
    for job in jobs:
        row = by_kind.setdefault(job.kind, {"objects": 0, "cached": 0, "bytes_to_fetch": 0})
        row["objects"] += 1
        if cache.path(job.rel).is_file():
            row["cached"] += 1
        else:
            row["bytes_to_fetch"] += job.est_bytes
    list_path = None
    if exact:
        list_path = cache.root / PLAN_NAME
        write_table(pd.DataFrame([{"kind": j.kind, "key": j.key, "url": j.url, "cache_path": j.rel,
                                   "cached": cache.path(j.rel).is_file(), "est_bytes": j.est_bytes} for j in jobs]),
                    list_path)
    else:
        for kind, n in estimate().items():
            size = EST_BYTES["manga_cube" if sources.survey == "manga" and kind == "cube" else kind]
            by_kind[kind] = {"objects": n, "cached": 0, "bytes_to_fetch": n * size}
    plan = {"dry_run": True, "exact": exact, "by_kind": by_kind,
            "bytes_to_fetch": sum(r["bytes_to_fetch"] for r in by_kind.values()),
            "list_path": None if list_path is None else str(list_path)}
    log.info("dry run: ~%s to fetch (%s); nothing fetched", _size(plan["bytes_to_fetch"]),
             "exact" if exact else "estimated")
    return plan


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_plan(plan: dict) -> str:
    """The dry-run plan as a small text table."""
    lines = [f"{'kind':<14}{'objects':>9}{'cached':>9}{'to fetch':>12}"]
    for kind, row in plan["by_kind"].items():
        lines.append(f"{kind:<14}{row['objects']:>9}{row['cached']:>9}{_size(row['bytes_to_fetch']):>12}")
    how = "exact selection" if plan["exact"] else "estimated (the tables are not in the cache yet)"
    lines.append(f"total to fetch: ~{_size(plan['bytes_to_fetch'])} ({how}); nothing was fetched")
    if plan["list_path"]:
        lines.append(f"every object: {plan['list_path']}")
    return "\n".join(lines)
