"""The dry run of a remote ingest: what would be fetched, how much of it is cached, and its estimated size."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from specmorph.errors import InputError
from specmorph.io.catalogs import write_table
from specmorph.remote.jobs import Cache, Job
from specmorph.remote.sources import EST_BYTES, EST_GALAXIES, RemoteSources

log = logging.getLogger(__name__)

PLAN_NAME = "dry_run.csv"
GZ2_ROWS = 304_122  # rows of gz2_hart16, for a dry run before the table is in the cache


def estimate_counts(samples: Sequence[RemoteSources], max_galaxies: int, max_gz2_images: int,
                    galaxy10: bool) -> list[tuple[str, int, int]]:
    """Objects before the tables are in the cache, from the caps or the tables' documented sizes.

    Args:
        samples: One RemoteSources per survey (`survey.survey_sources`); `max_galaxies` applies to each.
        max_galaxies: Galaxies with cubes per survey (-1: all).
        max_gz2_images: GZ2 rows beyond the matched ones (-1: the whole table).
        galaxy10: Whether Galaxy10 is fetched.

    Returns:
        (kind, objects, estimated bytes each) rows; a kind may have a row per survey (cubes).
    """
    rows, n_all = [], 0
    for s in samples:
        n = max_galaxies if max_galaxies > 0 else EST_GALAXIES[s.califa_table_format]
        rows.append(("cube", n, EST_BYTES["manga_cube" if s.survey == "manga" else "cube"]))
        n_all += n
    n_gz2 = GZ2_ROWS if max_gz2_images < 0 else n_all + max_gz2_images  # about one GZ2 row per galaxy with a cube
    rows += [("cutout", n_all, EST_BYTES["cutout"]),
             ("gz2_image", 0 if samples[0].gz2_image_dir else n_gz2, EST_BYTES["gz2_image"])]
    if galaxy10:
        rows.append(("galaxy10", 1, EST_BYTES["galaxy10"]))
    return rows


def dry_run(cache: Cache, tables: Sequence[Job], objects: Callable[[], list[Job]],
            estimate: Callable[[], list[tuple[str, int, int]]]) -> dict:
    """Lists what a run would fetch, without fetching anything.

    With every table in the cache the selection is exact and every object is listed in
    `<cache>/dry_run.csv`; otherwise the counts are estimated from the caps and the per-object
    sizes in `sources.EST_BYTES`.

    Args:
        cache: The download cache (only read).
        tables: The table jobs.
        objects: The object jobs of the selection, read from the cached tables.
        estimate: (kind, objects, bytes each) rows when the tables are not cached yet.

    Returns:
        {"dry_run": True, "exact": bool, "by_kind": {kind: {objects, cached, bytes_to_fetch}},
        "bytes_to_fetch": int, "list_path": str or None}.
    """
    jobs = list(tables)
    exact = all(cache.path(t.rel).is_file() for t in tables)
    if exact:
        try:
            jobs += objects()
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
        for kind, n, size in estimate():
            row = by_kind.setdefault(kind, {"objects": 0, "cached": 0, "bytes_to_fetch": 0})
            row["objects"] += n
            row["bytes_to_fetch"] += n * size
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
