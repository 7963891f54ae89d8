"""The one function that performs HTTP requests: resumable, verified downloads with retries and back-off."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
import urllib3

from specmorph import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"specmorph/{__version__} (+python-requests/{requests.__version__})"
_RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_GONE_STATUS = frozenset({404, 410})
_HTML_STARTS = (b"<!doctype html", b"<html")


class RemoteError(Exception):
    """A download failed for good (after retries, or at once for a client error); names the object and URL."""

    def __init__(self, message: str, *, url: str, name: str) -> None:
        super().__init__(message)
        self.url = url
        self.name = name

    def __reduce__(self):
        return _rebuild, (type(self), str(self), self.url, self.name)


class NotFound(RemoteError):
    """HTTP 404/410: the archive has no such object (record it and skip it)."""


class BadContent(RemoteError):
    """The body is not the expected file: size or sha256 mismatch, or HTML when binary was expected."""


def _rebuild(cls: type[RemoteError], message: str, url: str, name: str) -> RemoteError:
    return cls(message, url=url, name=name)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard `fetch` tries.

    Attempt k (0-based) that fails with a retryable error waits `min(backoff_s * 2**k, max_backoff_s)` seconds
    times a random factor in `[1 - jitter, 1 + jitter]`, or the server's Retry-After (at most `max_backoff_s`).
    """

    tries: int = 5  # attempts in all, the first included
    backoff_s: float = 1.0  # s
    max_backoff_s: float = 60.0  # s
    jitter: float = 0.5  # relative
    timeout_s: float = 60.0  # s, connect and per-read
    chunk_bytes: int = 1 << 20  # B per write

    def __post_init__(self) -> None:
        if self.tries < 1 or self.backoff_s < 0 or self.max_backoff_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy needs tries >= 1, backoff_s/max_backoff_s >= 0, 0 <= jitter <= 1: {self}")


@dataclass(frozen=True)
class Fetched:
    """One file on disk at `path`, verified; `fetched_at` is ISO-8601 UTC (the file's mtime when cached)."""

    url: str
    path: Path
    bytes: int
    sha256: str
    fetched_at: str
    resumed: bool  # some bytes came from an earlier, interrupted download
    cached: bool  # dest was already complete: no request was made


class _Retry(Exception):
    """A transient failure: wait (the server's Retry-After when it gave one) and try again."""

    def __init__(self, reason: str, retry_after: float | None = None, wait: bool = True) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.wait = wait


def backoff_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): exponential, capped, with jitter.

    Args:
        attempt: index of the attempt that just failed.
        policy: back-off parameters.
        rand: uniform [0, 1) source (injectable for tests).

    Returns:
        `min(backoff_s * 2**attempt, max_backoff_s) * u`, u uniform in `[1 - jitter, 1 + jitter]`.
    """
    base = min(policy.backoff_s * 2.0**attempt, policy.max_backoff_s)
    return base * (1.0 - policy.jitter + 2.0 * policy.jitter * rand())


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parses a Retry-After header (delta-seconds or an HTTP-date) into seconds from now; None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def sha256_file(path: Path) -> hashlib._Hash:
    """The sha256 of a file's bytes so far (`hashlib.file_digest`), to finish with `.hexdigest()` or extend."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256")


def _utc_iso(timestamp: float | None = None) -> str:
    moment = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _total_from_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); '*' totals and bad values -> None."""
    try:
        _unit, spec = (value or "").split(" ", 1)
        span, total = spec.split("/", 1)
        start = None if span == "*" else int(span.split("-", 1)[0])
        return start, (None if total == "*" else int(total))
    except ValueError:
        return None, None


def fetch(url: str, dest: Path, *, name: str, policy: RetryPolicy = RetryPolicy(),
          expected_bytes: int | None = None, expected_sha256: str | None = None, reject_html: bool = True,
          session: requests.Session | None = None, progress=None,
          sleep: Callable[[float], object] = time.sleep) -> Fetched:
    """Downloads `url` to `dest` through `<dest>.part`, resuming it, verifying it, retrying transient faults.

    Bytes are stored exactly as sent (a gzip file stays gzipped even if the server labels it Content-Encoding).
    A `.part` left by an interrupted run is resumed with `Range: bytes=<n>-`; a 200 answer restarts it, a 416
    finalises it when its size is the server's. The file is renamed to `dest` only after its size (Content-Range /
    Content-Length / `expected_bytes`) and `expected_sha256` check out.

    Args:
        url: the object's URL.
        dest: final path; its directory is created.
        name: what the object is (e.g. "eCALIFA cube NGC0001"), quoted in errors and logs.
        policy: tries, back-off, timeout and chunk size.
        expected_bytes: the file's size, when known beforehand.
        expected_sha256: the file's hex sha256, when known beforehand.
        reject_html: an HTML body (Content-Type text/html or an HTML start) is an error, not the file.
        session: a requests.Session to reuse (connection pooling); a private one otherwise.
        progress: tqdm-like; `progress.update(n)` is called with every chunk's size in bytes.
        sleep: called with each back-off delay in seconds (injectable for tests).

    Returns:
        The verified file; `cached=True` when `dest` was already complete and nothing was requested.

    Raises:
        NotFound: HTTP 404/410.
        BadContent: HTML, or a size/sha256 mismatch (the .part is removed: nothing is left at `dest`).
        RemoteError: another 4xx, or `policy.tries` failed attempts (the .part is kept for a later resume).
    """
    dest = Path(dest)
    expected_sha256 = expected_sha256.lower() if expected_sha256 else None
    if dest.exists():
        digest = sha256_file(dest)
        size = dest.stat().st_size
        if expected_bytes in (None, size) and expected_sha256 in (None, digest.hexdigest()):
            return Fetched(url, dest, size, digest.hexdigest(), _utc_iso(dest.stat().st_mtime), False, True)
        log.warning("%s: %s does not match the expected size/sha256; fetching it again", name, dest)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    job = _Job(url, dest, part, name, policy, expected_bytes, expected_sha256, reject_html, progress)
    own = session is None
    session = requests.Session() if own else session
    try:
        for attempt in range(policy.tries):
            try:
                return job.attempt(session)
            except _Retry as err:
                reason = str(err)
                if attempt + 1 == policy.tries:
                    break
                delay = 0.0 if not err.wait else backoff_delay(attempt, policy) if err.retry_after is None else \
                    min(err.retry_after, policy.max_backoff_s)
                log.warning("%s: %s; retry %d/%d in %.1f s (%s)", name, reason, attempt + 1, policy.tries - 1,
                            delay, url)
                if delay > 0:
                    sleep(delay)
    finally:
        if own:
            session.close()
    raise RemoteError(f"{name}: gave up after {policy.tries} tries: {reason} ({url})", url=url, name=name)


@dataclass
class _Job:
    """One download's fixed inputs; `attempt` makes one request and writes what arrives to the .part."""

    url: str
    dest: Path
    part: Path
    name: str
    policy: RetryPolicy
    expected_bytes: int | None
    expected_sha256: str | None
    reject_html: bool
    progress: object

    def _fail(self, cls: type[RemoteError], what: str, drop_part: bool) -> RemoteError:
        if drop_part:
            self.part.unlink(missing_ok=True)
        return cls(f"{self.name}: {what} ({self.url})", url=self.url, name=self.name)

    def _finish(self, digest, size: int, resumed: bool) -> Fetched:
        if self.expected_bytes is not None and size != self.expected_bytes:
            raise self._fail(BadContent, f"got {size} bytes, expected {self.expected_bytes}", drop_part=True)
        if self.expected_sha256 is not None and digest.hexdigest() != self.expected_sha256:
            raise self._fail(BadContent, f"sha256 {digest.hexdigest()} != expected {self.expected_sha256}",
                             drop_part=True)
        os.replace(self.part, self.dest)
        return Fetched(self.url, self.dest, size, digest.hexdigest(), _utc_iso(), resumed, False)

    def attempt(self, session: requests.Session) -> Fetched:
        offset = self.part.stat().st_size if self.part.exists() else 0
        if self.expected_bytes is not None and offset > self.expected_bytes:
            self.part.unlink()
            offset = 0
        if offset and offset == self.expected_bytes and self.expected_sha256 is not None:
            digest = sha256_file(self.part)
            if digest.hexdigest() == self.expected_sha256:
                return self._finish(digest, offset, resumed=True)  # a run died between download and rename
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = session.get(self.url, headers=headers, stream=True, timeout=self.policy.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise _Retry(f"{type(err).__name__}: {err}") from err
        except requests.RequestException as err:
            raise self._fail(RemoteError, f"request failed: {err}", drop_part=False) from err
        with response:
            return self._receive(response, offset)

    def _receive(self, response: requests.Response, offset: int) -> Fetched:
        status = response.status_code
        if status in _GONE_STATUS:
            raise self._fail(NotFound, f"HTTP {status} {response.reason}", drop_part=True)
        if status in _RETRY_STATUS:
            raise _Retry(f"HTTP {status} {response.reason}", retry_after_seconds(response.headers.get("Retry-After")))
        if status == 416 and offset:
            _, total = _total_from_content_range(response.headers.get("Content-Range"))
            if total == offset:
                return self._finish(sha256_file(self.part), offset, resumed=True)
            self.part.unlink()
            raise _Retry(f"HTTP 416 for a {offset}-byte .part (server size {total}); restarting", wait=False)
        if status not in (200, 206):
            raise self._fail(RemoteError, f"HTTP {status} {response.reason}", drop_part=False)
        content_type = response.headers.get("Content-Type", "")
        if self.reject_html and content_type.split(";")[0].strip().lower() == "text/html":
            raise self._fail(BadContent, f"got HTML ({content_type}) instead of the file", drop_part=True)
        length = response.headers.get("Content-Length")
        declared = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _total_from_content_range(response.headers.get("Content-Range"))
            if start != offset:
                self.part.unlink(missing_ok=True)
                raise _Retry(f"asked for bytes {offset}-, got Content-Range {start}-; restarting", wait=False)
        else:
            if offset:
                log.info("%s: server ignored the Range request; restarting from byte 0", self.name)
            offset, total = 0, declared
        if total is not None and self.expected_bytes is not None and total != self.expected_bytes:
            raise self._fail(BadContent, f"server declares {total} bytes, expected {self.expected_bytes}",
                             drop_part=True)
        resumed = offset > 0
        digest = sha256_file(self.part) if resumed else hashlib.sha256()
        size = offset
        with open(self.part, "ab" if resumed else "wb") as out:
            try:
                for chunk in response.raw.stream(self.policy.chunk_bytes, decode_content=False):
                    if size == 0 and self.reject_html and chunk.lstrip()[:14].lower().startswith(_HTML_STARTS):
                        out.close()
                        raise self._fail(BadContent, "got an HTML page instead of the file", drop_part=True)
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if self.progress is not None:
                        self.progress.update(len(chunk))
            except (urllib3.exceptions.HTTPError, requests.RequestException) as err:
                raise _Retry(f"connection broken after {size} of {total or '?'} bytes: {type(err).__name__}") from err
            out.flush()
            os.fsync(out.fileno())
        if total is not None and size < total:
            raise _Retry(f"body truncated at {size} of {total} bytes")
        if total is None and self.expected_bytes is not None and size < self.expected_bytes:
            raise _Retry(f"body ended at {size} of {self.expected_bytes} bytes")
        if total is not None and size > total:
            raise self._fail(BadContent, f"got {size} bytes, server declared {total}", drop_part=True)
        return self._finish(digest, size, resumed)
