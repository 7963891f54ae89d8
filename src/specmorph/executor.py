"""One way to run per-object work: a function mapped over shards of items, in order, here (local) or on Dask."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm import tqdm

from specmorph.errors import InputError
from specmorph.params import EXECUTORS, ParamsError, build, shared

log = logging.getLogger(__name__)

KINDS = EXECUTORS
_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
R = TypeVar("R")


@dataclass(frozen=True)
class ExecutorParams:
    """Where per-object stages run their shards (params.yaml: top-level `executor`, section `dask`).

    kind 'local' runs the shards one after another in this process; 'dask' sends them, one task per
    shard, to a dask.distributed cluster: the scheduler at `address`, or (address None) a LocalCluster
    of `workers` single-threaded worker processes started and closed around each map. Both run the same
    shard function on the same shards, so their results are identical. Workers read the inputs and write
    their shard files beside each output by path: a remote cluster needs a filesystem shared with this
    machine, mounted at the same paths.
    """

    kind: str = "local"  # local | dask
    address: str | None = None  # dask scheduler, e.g. "tcp://10.0.0.5:8786"; None: a LocalCluster here
    workers: int = 2  # LocalCluster worker processes, 1 thread each
    shard_size: int = 256  # items per task

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}; expected one of {' | '.join(KINDS)}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ValueError(f"address={self.address!r}; expected a scheduler address such as "
                             "'tcp://host:8786', or null for a LocalCluster")
        for name in ("workers", "shard_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")


def executor_params(params: Mapping[str, Any]) -> ExecutorParams:
    """The executor settings of a stage from the whole params mapping (`executor` and the `dask` section).

    Args:
        params: params.yaml as a dict; a missing `executor` means 'local', a missing `dask` the defaults.

    Returns:
        The validated settings.

    Raises:
        ParamsError: naming the key, on an unknown executor, an unknown `dask` key or a bad value.
    """
    kind = shared(dict(params)).executor
    section = params.get("dask") or {}
    if not isinstance(section, Mapping):
        raise ParamsError("params.yaml: section 'dask' is not a mapping")
    if "kind" in section:
        raise ParamsError("params.yaml: unknown key dask.kind; the top-level key `executor` chooses local | dask")
    try:
        return build(ExecutorParams, {**section, "kind": kind}, "dask")
    except ValueError as exc:
        if isinstance(exc, ParamsError):
            raise
        raise ParamsError(f"params.yaml: dask: {exc}") from exc


@dataclass(frozen=True)
class _Task:
    """One shard's call on a Dask worker, given the function as cloudpickle bytes.

    The bytes are unpickled inside the task: a function defined in a script (the stage scripts run as
    `__main__`) travels by value, and one the workers cannot import fails its task with the import error
    instead of breaking the worker's connection. They are scattered to the workers once per map and
    passed to every task as that one future (a function that carries its data, as training does, would
    otherwise travel once per task inside the graph). Dask does not look inside `items`.
    """

    index: int
    items: list

    def __call__(self, fn: bytes) -> Any:
        import cloudpickle

        return cloudpickle.loads(fn)(self.index, self.items)


def _describe(items: Sequence[Any]) -> str:
    shown = [str(x) for x in items[:3]]
    more = f", ... ({len(items)} in all)" if len(items) > 3 else ""
    return f"[{', '.join(shown)}{more}]"


def _annotate(exc: BaseException, desc: str, index: int, n_shards: int, items: Sequence[Any], kind: str) -> None:
    """Adds a note naming the failed shard and its items (the exception keeps its type and message)."""
    note = f"{desc}: shard {index + 1} of {n_shards} failed; its item(s): {_describe(items)}"
    log.error("%s: %s: %s", note, type(exc).__name__, exc)
    exc.add_note(note)
    if kind == "dask" and isinstance(exc, OSError | InputError):
        exc.add_note("executor=dask: workers read and write by path; every worker must see the same paths "
                     "as this machine (a shared filesystem)")


def shards(items: Sequence[R], size: int) -> list[list[R]]:
    """`items` cut in order into lists of `size` (the last may be shorter)."""
    return [list(items[a:a + size]) for a in range(0, len(items), size)]


@contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Dask's INFO lines (cluster start and stop) held back while a map runs; warnings still show."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _client(params: ExecutorParams) -> Iterator[Any]:
    """A distributed Client on the scheduler at `params.address`, or on a LocalCluster made (and closed) here."""
    from distributed import Client, LocalCluster

    if params.address is not None:
        try:
            client = Client(params.address, timeout="30s")
        except OSError as exc:
            raise OSError(f"executor=dask: cannot reach the scheduler at {params.address} ({exc})") from exc
        with client:
            yield client
        return
    import dask

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive mmap threshold:
    # every large numpy temporary is then mapped and unmapped again (segmentation ran 2x slower).
    with dask.config.set({_MALLOC_TRIM: None}), LocalCluster(
            n_workers=params.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            scheduler_kwargs={"dashboard": False}, silence_logs=logging.WARNING) as cluster, Client(cluster) as client:
        yield client


LOG_EVERY_S = 10.0  # without a terminal (the bar hidden): a progress line in the log at most this often


class _Progress:
    """The tqdm bar of `map_shards`; where the bar is hidden (`disable=None` off a terminal: a batch job, a
    pipe) the same progress goes to the log as lines "<desc>: <done>/<total> <unit> (<percent>)", at most
    every LOG_EVERY_S seconds and once at the end."""

    def __init__(self, bar: tqdm, desc: str, unit: str, total: int, log_hidden: bool) -> None:
        self.bar, self.desc, self.unit, self.total, self.log_hidden = bar, desc, unit, total, log_hidden
        self.done, self.last = 0, time.monotonic()

    def update(self, n: int) -> None:
        self.bar.update(n)
        self.done += n
        now = time.monotonic()
        if self.bar.disable and self.log_hidden and (now - self.last >= LOG_EVERY_S or self.done == self.total):
            self.last = now
            log.info("%s: %d/%d %s (%.0f%%)", self.desc, self.done, self.total, self.unit,
                     100.0 * self.done / self.total)


def _map_dask(parts: list[list], fn: Callable[[int, list], R], params: ExecutorParams, desc: str,
              bar: _Progress) -> list[R]:
    import cloudpickle
    from distributed import as_completed

    results: list[Any] = [None] * len(parts)
    token, payload = uuid.uuid4().hex[:8], cloudpickle.dumps(fn)
    with _quiet_distributed(), _client(params) as client:
        fn_on_workers = client.scatter(payload, broadcast=True, hash=False)
        futures = [client.submit(_Task(i, part), fn_on_workers, key=f"{desc.replace(' ', '_')}-{i:05d}-{token}",
                                 pure=False) for i, part in enumerate(parts)]
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as exc:
                client.cancel(futures)
                _annotate(exc, desc, i, len(parts), parts[i], "dask")
                raise
            future.release()
            bar.update(len(parts[i]))
    return results


def map_shards(fn: Callable[[int, list], R], items: Iterable[Any], params: ExecutorParams, desc: str,
               unit: str = "item", disable: bool | None = False) -> list[R]:
    """Calls `fn(index, shard)` on each shard of `params.shard_size` items, here or on Dask, results in shard order.

    Args:
        fn: A top-level function, or a functools.partial of one, picklable for Dask; it gets the shard's
            index (0, 1, ...) and its list of items, and returns something picklable and small (write
            large outputs to a shard file and return its path).
        items: The objects in order (their list is made first).
        params: Executor settings (the dask package is imported only when kind is 'dask').
        desc: Progress bar label, also in the task keys and error notes.
        unit: Progress bar unit (the bar counts items).
        disable: tqdm's `disable` (None: hide when not on a terminal, and log the progress instead).

    Returns:
        One result per shard, in shard order.

    Raises:
        The first exception of a failing shard, with notes naming the shard and its items; under Dask
        the other shards are cancelled.
    """
    parts = shards(list(items), params.shard_size)
    if not parts:
        return []
    total = sum(map(len, parts))
    with tqdm(total=total, desc=desc, unit=unit, mininterval=2, disable=disable) as tq:
        bar = _Progress(tq, desc, unit, total, log_hidden=disable is None)  # None: hidden for want of a terminal
        if params.kind == "dask":
            return _map_dask(parts, fn, params, desc, bar)
        results = []
        for i, part in enumerate(parts):
            try:
                results.append(fn(i, part))
            except Exception as exc:
                _annotate(exc, desc, i, len(parts), part, "local")
                raise
            bar.update(len(part))
        return results


def map_items(fn: Callable[[int, list], list[R]], items: Iterable[Any], params: ExecutorParams, desc: str,
              unit: str = "item", disable: bool | None = False) -> list[R]:
    """`map_shards` for a shard function that returns one result per item: the results of every shard, in item order."""
    return [r for part in map_shards(fn, items, params, desc, unit, disable) for r in part]
