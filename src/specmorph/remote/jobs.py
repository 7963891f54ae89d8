"""Fetches many objects into the download cache with bounded concurrency; validates or quarantines each on arrival."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.io.atomic import atomic_file
from specmorph.remote.http import BadContent, Fetched, NotFound, RemoteError, RetryPolicy, fetch

log = logging.getLogger(__name__)

STATUSES = ("fetched", "cached", "skipped", "failed", "quarantined")
QUARANTINE_DIR = "quarantine"
LEDGER_NAME = "validated.json"  # rel path -> url, bytes, sha256, fetched_at of every file that passed validation


class IncompleteDownload(RuntimeError):
    """Some objects could not be fetched after all retries; a re-run resumes them."""


@dataclass(frozen=True)
class Job:
    """One object to fetch: what it is, from where, and where it goes in the cache."""

    kind: str  # califa_table | gz2_table | cube | cutout | gz2_image | galaxy10 | sdss_field | frame
    key: str  # galaxy name, dr7objid or table name
    url: str
    rel: str  # path relative to the cache directory
    est_bytes: int  # for progress and the dry run
    expected_sha256: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind} {self.key}"


@dataclass
class Outcome:
    """What happened to one job."""

    job: Job
    status: str  # one of STATUSES
    detail: str = ""
    fetched: Fetched | None = None


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_json(data: object, path: Path) -> None:
    """Writes JSON (keys sorted, no final newline) through `io.atomic.atomic_file`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


class Cache:
    """The download cache: files by relative path, the ledger of validated files and the quarantine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LEDGER_NAME
        self.ledger: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}
        self._lock = threading.Lock()

    def path(self, rel: str) -> Path:
        return self.root / rel

    def save(self) -> None:
        with self._lock:
            write_json(self.ledger, self.root / LEDGER_NAME)

    def record(self, rel: str, fetched: Fetched) -> None:
        with self._lock:
            self.ledger[rel] = {"url": fetched.url, "bytes": fetched.bytes, "sha256": fetched.sha256,
                                "fetched_at": fetched.fetched_at}

    def validated(self, rel: str, fetched: Fetched) -> bool:
        entry = self.ledger.get(rel)
        return entry is not None and entry["sha256"] == fetched.sha256 and entry["url"] == fetched.url

    def quarantine(self, job: Job, reason: str) -> Path:
        """Moves the job's file (if any) to quarantine/<rel> beside a `.reason.txt`; returns the reason file."""
        target = self.root / QUARANTINE_DIR / job.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        src = self.path(job.rel)
        if src.exists():
            os.replace(src, target)
        note = target.with_name(target.name + ".reason.txt")
        note.write_text(f"{job.name}\nurl: {job.url}\nwhen: {utc_now()}\nreason: {reason}\n")
        with self._lock:
            self.ledger.pop(job.rel, None)
        log.warning("quarantined %s: %s (%s)", job.name, reason, note)
        return note


class _SharedBar:
    """A thread-safe `update(n)` onto one tqdm bar."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        with self._lock:
            self.bar.update(n)


def _one(job: Job, cache: Cache, policy: RetryPolicy, validate: Callable[[Job, Path], None],
         session: requests.Session, bar: _SharedBar) -> Outcome:
    dest = cache.path(job.rel)
    known = cache.ledger.get(job.rel)
    if dest.exists() and known is not None and known["url"] != job.url:
        log.info("%s: cached from %s, now asked from %s; fetching again", job.name, known["url"], job.url)
        dest.unlink()
    try:
        got = fetch(job.url, dest, name=job.name, policy=policy, expected_sha256=job.expected_sha256 or None,
                    session=session, progress=bar)
    except NotFound as err:
        return Outcome(job, "skipped", str(err))
    except BadContent as err:
        cache.quarantine(job, str(err))
        return Outcome(job, "quarantined", str(err))
    except RemoteError as err:
        return Outcome(job, "failed", str(err))
    if got.cached and cache.validated(job.rel, got):
        return Outcome(job, "cached", fetched=got)
    try:
        validate(job, dest)
    except InputError as err:
        cache.quarantine(job, str(err))
        if got.cached:  # a bad file left in the cache (not validated before): fetch it afresh, once
            return _one(job, cache, policy, validate, session, bar)
        return Outcome(job, "quarantined", str(err), got)
    cache.record(job.rel, got)
    return Outcome(job, "cached" if got.cached else "fetched", fetched=got)


def run_jobs(jobs: Sequence[Job], cache: Cache, policy: RetryPolicy, validate: Callable[[Job, Path], None],
             workers: int = 4, desc: str = "download") -> list[Outcome]:
    """Fetches `jobs` with `workers` threads; each file is validated on arrival or quarantined.

    Args:
        jobs: What to fetch.
        cache: The download cache.
        policy: Retry policy of each fetch.
        validate: Raises InputError when a file that arrived is not what its job expects.
        workers: Concurrent downloads.
        desc: Progress bar label.

    Returns:
        One outcome per job, in the order of `jobs`.
    """
    if workers < 1:
        raise ValueError(f"workers={workers}; expected at least 1")
    if not jobs:
        return []
    local = threading.local()
    sessions: list[requests.Session] = []
    sessions_lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            with sessions_lock:
                sessions.append(local.session)
        return local.session

    todo = sum(j.est_bytes for j in jobs if not cache.path(j.rel).exists())
    outcomes: dict[int, Outcome] = {}
    counts: Counter = Counter()
    with tqdm(total=todo, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True) as bar, \
            ThreadPoolExecutor(workers, thread_name_prefix="fetch") as pool:
        shared = _SharedBar(bar)
        futures = {pool.submit(lambda j=job: _one(j, cache, policy, validate, session(), shared)): i
                   for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                outcome = future.result()
                outcomes[futures[future]] = outcome
                counts[outcome.status] += 1
                bar.set_postfix({s: counts[s] for s in STATUSES if counts[s]}, refresh=False)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        finally:
            cache.save()
            for s in sessions:
                s.close()
    return [outcomes[i] for i in range(len(jobs))]


def summarise(outcomes: Sequence[Outcome]) -> dict:
    """Counts per kind and status, bytes fetched, and every object that did not arrive (with the reason)."""
    by_kind: dict[str, Counter] = {}
    for o in outcomes:
        by_kind.setdefault(o.job.kind, Counter())[o.status] += 1
    totals = Counter(o.status for o in outcomes)
    return {
        "totals": {s: totals[s] for s in STATUSES},
        "by_kind": {k: {s: c[s] for s in STATUSES} for k, c in by_kind.items()},
        "bytes_fetched": sum(o.fetched.bytes for o in outcomes if o.fetched and o.status == "fetched"),
        "problems": [{"kind": o.job.kind, "key": o.job.key, "status": o.status, "url": o.job.url,
                      "detail": o.detail} for o in outcomes if o.status in ("skipped", "failed", "quarantined")],
    }


def raise_failures(outcomes: Sequence[Outcome], listed: int = 10) -> None:
    """Raises IncompleteDownload naming every object (and URL) that failed after all retries."""
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines = [f"{o.job.name}: {o.detail}" for o in failed[:listed]]
        more = f"\n  ... and {len(failed) - listed} more" if len(failed) > listed else ""
        raise IncompleteDownload(f"{len(failed)} download(s) failed after all retries (run again to resume):\n  "
                                 + "\n  ".join(lines) + more)


def link_or_copy(src: Path, dst: Path) -> None:
    """Puts `src` at `dst` as a hard link, or a copy where hard links are not possible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
