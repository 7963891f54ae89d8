"""Shared test helpers: importing a stage script's main() by name; one Dask LocalCluster for the session."""

import importlib.util
import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_stage(name: str):
    """Imports stages/<name>.py as a module (stages are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stage():
    return load_stage


@pytest.fixture(scope="session")
def dask_ex():
    """ExecutorParams for one LocalCluster of 2 single-threaded worker processes, shared by the whole session."""
    distributed = pytest.importorskip("distributed")
    from specmorph.executor import ExecutorParams

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR) as cluster:
        yield ExecutorParams(kind="dask", address=cluster.scheduler_address)


def pytest_addoption(parser):
    parser.addoption("--remote-data", action="store_true", default=False,
                     help="also run the tests marked remote_data, which reach the live archives")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--remote-data"):
        return
    skip = pytest.mark.skip(reason="reaches a live archive; run with --remote-data")
    for item in items:
        if "remote_data" in item.keywords:
            item.add_marker(skip)
