"""The `http_server` fixture: a fault-injecting local HTTP server in a daemon thread (tests/remote/server.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_MODULE = "specmorph_tests_remote_server"


def _load_server_module():
    """Imports tests/remote/server.py by path (tests are not a package under --import-mode=importlib)."""
    if _MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE, Path(__file__).with_name("server.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[_MODULE]


@pytest.fixture
def http_server():
    """A started FaultServer: `.add(path, body)`, `.fail(path, plan)`, `.url(path)`, `.requests`, `.bytes_served`."""
    server = _load_server_module().FaultServer().start()
    try:
        yield server
    finally:
        server.close()
