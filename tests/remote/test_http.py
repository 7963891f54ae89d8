"""fetch against a local fault-injecting server: resume, restart, retries, back-off, verification, HTML, 404."""

import gzip
import hashlib
import io
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import numpy as np
import pytest
from PIL import Image

from specmorph.remote.http import (
    BadContent,
    NotFound,
    RemoteError,
    RetryPolicy,
    backoff_delay,
    fetch,
    retry_after_seconds,
)

FAST = RetryPolicy(tries=4, backoff_s=1.0, max_backoff_s=8.0, jitter=0.0, timeout_s=5.0, chunk_bytes=4096)
# A real SDSS DR10 Finding Chart cutout (64×64 JPEG) at the SkyServer API docs' example position.
SDSS_DR10_CUTOUT = ("https://skyserver.sdss.org/dr10/en/tools/chart/image.aspx"
                    "?ra=184.9511&dec=-0.8754&scale=0.4&width=64&height=64")


def _body(n: int = 50_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Sleeps(list):
    """Records the delays fetch asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def test_happy_path_writes_verified_file_and_reports_it(http_server, tmp_path, sleeps):
    data = _body()
    url = http_server.add("cubes/NGC0001.V500.rscube.fits.gz", data)
    dest = tmp_path / "cache" / "NGC0001.V500.rscube.fits.gz"
    got = fetch(url, dest, name="cube NGC0001", policy=FAST, expected_bytes=len(data), expected_sha256=_sha(data),
                sleep=sleeps)
    assert dest.read_bytes() == data
    assert (got.path, got.url, got.bytes, got.sha256) == (dest, url, len(data), _sha(data))
    assert (got.resumed, got.cached) == (False, False)
    assert datetime.fromisoformat(got.fetched_at).tzinfo is not None
    assert not dest.with_name(dest.name + ".part").exists()
    assert sleeps == []
    assert http_server.requests == [("GET", "/cubes/NGC0001.V500.rscube.fits.gz", None)]


def test_progress_receives_every_byte(http_server, tmp_path):
    data = _body(10_000)
    seen = []

    class Bar:
        def update(self, n):
            seen.append(n)

    fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=FAST, progress=Bar())
    assert sum(seen) == len(data)
    assert len(seen) == -(-len(data) // FAST.chunk_bytes)


def test_complete_dest_is_returned_without_a_request(http_server, tmp_path):
    data = _body()
    url = http_server.add("a.bin", data)
    dest = tmp_path / "a.bin"
    dest.write_bytes(data)
    got = fetch(url, dest, name="a", policy=FAST, expected_bytes=len(data), expected_sha256=_sha(data))
    assert got.cached and not got.resumed
    assert (got.bytes, got.sha256) == (len(data), _sha(data))
    assert http_server.requests == []


def test_dest_that_fails_the_expected_sha256_is_fetched_again(http_server, tmp_path):
    data = _body()
    dest = tmp_path / "a.bin"
    dest.write_bytes(data[:-1] + b"\x00")
    got = fetch(http_server.add("a.bin", data), dest, name="a", policy=FAST, expected_sha256=_sha(data))
    assert not got.cached and dest.read_bytes() == data


def test_dropped_connection_is_resumed_with_a_range_request(http_server, tmp_path, sleeps):
    data = _body(100_000)
    url = http_server.add("a.fits.gz", data)
    http_server.fail("a.fits.gz", [("drop", 30_000)])
    dest = tmp_path / "a.fits.gz"
    got = fetch(url, dest, name="cube A", policy=FAST, expected_sha256=_sha(data), sleep=sleeps)
    assert dest.read_bytes() == data
    assert got.resumed and got.sha256 == _sha(data)
    assert [r[2] for r in http_server.requests] == [None, "bytes=30000-"]
    assert http_server.bytes_served == len(data)
    assert sleeps == [1.0]


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path, sleeps):
    data = _body(60_000)
    url = http_server.add("a.bin", data)
    http_server.fail("a.bin", [("drop", 20_000), "ignore_range"])
    dest = tmp_path / "a.bin"
    got = fetch(url, dest, name="a", policy=FAST, expected_bytes=len(data), sleep=sleeps)
    assert dest.read_bytes() == data
    assert not got.resumed
    assert [r[2] for r in http_server.requests] == [None, "bytes=20000-"]


def test_content_encoding_gzip_is_stored_as_sent(http_server, tmp_path):
    data = gzip.compress(_body(20_000, seed=1), mtime=0)
    url = http_server.add("a.fits.gz", data, headers={"Content-Encoding": "gzip"})
    fetch(url, tmp_path / "a.fits.gz", name="a", policy=FAST, expected_bytes=len(data))
    assert (tmp_path / "a.fits.gz").read_bytes() == data


def test_500_then_success(http_server, tmp_path, sleeps):
    data = _body()
    http_server.fail("a.bin", [500, 503])
    fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=FAST, sleep=sleeps)
    assert (tmp_path / "a.bin").read_bytes() == data
    assert sleeps == [1.0, 2.0]
    assert len(http_server.requests) == 3


def test_429_retry_after_seconds_is_honoured(http_server, tmp_path, sleeps):
    data = _body()
    http_server.fail("a.bin", [{"status": 429, "retry_after": 7}])
    fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=FAST, sleep=sleeps)
    assert sleeps == [7.0]
    assert (tmp_path / "a.bin").read_bytes() == data


def test_429_retry_after_is_capped_at_max_backoff(http_server, tmp_path, sleeps):
    http_server.fail("a.bin", [{"status": 429, "retry_after": 3600}])
    fetch(http_server.add("a.bin", b"x" * 10), tmp_path / "a.bin", name="a", policy=FAST, sleep=sleeps)
    assert sleeps == [FAST.max_backoff_s]


def test_retry_after_http_date_and_garbage():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert retry_after_seconds(" 12 ") == 12.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_exhausted_retries_name_object_and_url_and_keep_the_part(http_server, tmp_path, sleeps):
    data = _body(40_000)
    url = http_server.add("a.bin", data)
    http_server.fail("a.bin", [("drop", 10_000), 502, 502, 502])
    dest = tmp_path / "a.bin"
    with pytest.raises(RemoteError) as err:
        fetch(url, dest, name="cutout NGC0001", policy=FAST, sleep=sleeps)
    assert type(err.value) is RemoteError
    assert "cutout NGC0001" in str(err.value) and url in str(err.value) and "4 tries" in str(err.value)
    assert "502" in str(err.value)
    assert (err.value.name, err.value.url) == ("cutout NGC0001", url)
    assert not dest.exists()
    assert dest.with_name("a.bin.part").read_bytes() == data[:10_000]
    assert sleeps == [1.0, 2.0, 4.0]
    # A later run resumes the kept .part.
    got = fetch(url, dest, name="cutout NGC0001", policy=FAST, sleep=sleeps)
    assert got.resumed and dest.read_bytes() == data
    assert http_server.requests[-1][2] == "bytes=10000-"


@pytest.mark.parametrize("status", [404, 410])
def test_gone_is_not_found_without_retry(http_server, tmp_path, sleeps, status):
    http_server.add("a.bin", b"x")
    http_server.fail("a.bin", [status])
    with pytest.raises(NotFound, match=r"galaxy X: HTTP 4\d\d") as err:
        fetch(http_server.url("a.bin"), tmp_path / "a.bin", name="galaxy X", policy=FAST, sleep=sleeps)
    assert err.value.url == http_server.url("a.bin")
    assert len(http_server.requests) == 1 and sleeps == []
    assert list(tmp_path.iterdir()) == []


def test_unknown_path_is_not_found(http_server, tmp_path):
    with pytest.raises(NotFound):
        fetch(http_server.url("nope.fits"), tmp_path / "nope.fits", name="nope", policy=FAST)


def test_other_client_error_fails_at_once(http_server, tmp_path, sleeps):
    http_server.fail("a.bin", [403])
    with pytest.raises(RemoteError, match="HTTP 403") as err:
        fetch(http_server.add("a.bin", b"x"), tmp_path / "a.bin", name="a", policy=FAST, sleep=sleeps)
    assert type(err.value) is RemoteError
    assert len(http_server.requests) == 1 and sleeps == []


def test_html_content_type_is_bad_content_and_leaves_nothing(http_server, tmp_path, sleeps):
    http_server.add("a.fits", _body())
    http_server.fail("a.fits", ["html"])
    with pytest.raises(BadContent, match="HTML"):
        fetch(http_server.url("a.fits"), tmp_path / "a.fits", name="a", policy=FAST, sleep=sleeps)
    assert list(tmp_path.iterdir()) == [] and len(http_server.requests) == 1


def test_html_body_with_binary_content_type_is_bad_content(http_server, tmp_path):
    url = http_server.add("a.jpg", b"\n  <!DOCTYPE HTML PUBLIC><html><body>error</body></html>", "image/jpeg")
    with pytest.raises(BadContent, match="HTML"):
        fetch(url, tmp_path / "a.jpg", name="a", policy=FAST)
    assert list(tmp_path.iterdir()) == []


def test_html_is_accepted_when_asked_for(http_server, tmp_path):
    page = b"<html><body>catalogue index</body></html>"
    got = fetch(http_server.add("i.html", page, "text/html"), tmp_path / "i.html", name="i", policy=FAST,
                reject_html=False)
    assert got.bytes == len(page)


def test_size_mismatch_is_bad_content(http_server, tmp_path, sleeps):
    data = _body()
    with pytest.raises(BadContent, match=f"declares {len(data)} bytes, expected {len(data) + 1}"):
        fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=FAST,
              expected_bytes=len(data) + 1, sleep=sleeps)
    assert list(tmp_path.iterdir()) == [] and sleeps == []


def test_sha256_mismatch_is_bad_content(http_server, tmp_path):
    data = _body()
    with pytest.raises(BadContent, match="sha256"):
        fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=FAST,
              expected_sha256=_sha(data + b"!"))
    assert list(tmp_path.iterdir()) == []


def test_truncated_gzip_with_shorter_declared_length_is_detected(http_server, tmp_path):
    data = gzip.compress(_body(30_000), mtime=0)
    url = http_server.add("cube.fits.gz", data[: len(data) // 2])  # Content-Length says the short length
    with pytest.raises(BadContent, match="expected"):
        fetch(url, tmp_path / "cube.fits.gz", name="cube", policy=FAST, expected_bytes=len(data))
    assert list(tmp_path.iterdir()) == []


def test_killed_download_resumes_and_fetches_nothing_twice(http_server, tmp_path, sleeps):
    data = _body(80_000)
    url = http_server.add("a.bin", data)
    http_server.fail("a.bin", [("drop", 25_000)])
    dest = tmp_path / "a.bin"
    with pytest.raises(RemoteError):  # the "killed" run: one try, connection lost
        fetch(url, dest, name="a", policy=RetryPolicy(tries=1, chunk_bytes=4096), sleep=sleeps)
    assert dest.with_name("a.bin.part").stat().st_size == 25_000 and not dest.exists()
    got = fetch(url, dest, name="a", policy=FAST, expected_bytes=len(data), sleep=sleeps)
    assert dest.read_bytes() == data and got.resumed
    assert http_server.bytes_served == len(data)
    assert http_server.requests[-1][2] == "bytes=25000-"


def test_part_already_complete_is_finalised_via_416(http_server, tmp_path):
    data = _body()
    url = http_server.add("a.bin", data)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(data)
    got = fetch(url, dest, name="a", policy=FAST)
    assert dest.read_bytes() == data and got.resumed
    assert http_server.requests == [("GET", "/a.bin", f"bytes={len(data)}-")] and http_server.bytes_served == 0


def test_part_already_complete_and_verified_needs_no_request(http_server, tmp_path):
    data = _body()
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(data)
    fetch(http_server.add("a.bin", data), dest, name="a", policy=FAST, expected_bytes=len(data),
          expected_sha256=_sha(data))
    assert dest.read_bytes() == data and http_server.requests == []


def test_part_longer_than_the_file_restarts(http_server, tmp_path, sleeps):
    data = _body(10_000)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(_body(12_000, seed=5))
    fetch(http_server.add("a.bin", data), dest, name="a", policy=FAST, sleep=sleeps)
    assert dest.read_bytes() == data
    assert [r[2] for r in http_server.requests] == ["bytes=12000-", None] and sleeps == []


def test_read_timeout_is_retried(http_server, tmp_path, sleeps):
    data = _body(1000)
    http_server.fail("a.bin", [("stall", 1.0)])
    policy = RetryPolicy(tries=2, jitter=0.0, timeout_s=0.2)
    fetch(http_server.add("a.bin", data), tmp_path / "a.bin", name="a", policy=policy, sleep=sleeps)
    assert (tmp_path / "a.bin").read_bytes() == data and sleeps == [1.0]


def test_backoff_grows_exponentially_is_capped_and_jittered():
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=10.0, jitter=0.25)
    assert [backoff_delay(k, policy, rand=lambda: 0.5) for k in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(2, policy, rand=lambda: 0.0) == pytest.approx(2.0 * 0.75)
    assert backoff_delay(9, policy, rand=lambda: 1.0) == pytest.approx(10.0 * 1.25)
    for k in range(8):
        base = min(0.5 * 2**k, 10.0)
        assert base * 0.75 <= backoff_delay(k, policy) <= base * 1.25


def test_backoff_delays_requested_by_fetch_stay_within_jitter_bounds(http_server, tmp_path, sleeps):
    policy = RetryPolicy(tries=6, backoff_s=1.0, max_backoff_s=4.0, jitter=0.5)
    http_server.fail("a.bin", [500] * 5)
    fetch(http_server.add("a.bin", b"ok"), tmp_path / "a.bin", name="a", policy=policy, sleep=sleeps)
    assert len(sleeps) == 5
    for k, delay in enumerate(sleeps):
        base = min(2.0**k, 4.0)
        assert 0.5 * base <= delay <= 1.5 * base


def test_bad_policy_is_refused():
    with pytest.raises(ValueError, match="tries"):
        RetryPolicy(tries=0)


def test_errors_survive_pickling():
    err = pickle.loads(pickle.dumps(NotFound("x: HTTP 404 (u)", url="u", name="x")))
    assert type(err) is NotFound and (err.url, err.name, str(err)) == ("u", "x", "x: HTTP 404 (u)")


@pytest.mark.remote_data
def test_live_sdss_dr10_cutout(tmp_path):
    got = fetch(SDSS_DR10_CUTOUT, tmp_path / "cutout.jpg", name="SDSS DR10 cutout",
                policy=RetryPolicy(tries=3, timeout_s=30.0))
    with Image.open(io.BytesIO(got.path.read_bytes())) as image:
        assert (image.format, image.size) == ("JPEG", (64, 64))
