"""The `http_server` fixture: a fault-injecting local HTTP server in a daemon thread (tests/remote/server.py)."""

import pytest
from server import FaultServer  # tests/remote is on pytest's pythonpath (pyproject.toml)


@pytest.fixture
def http_server():
    """A started FaultServer: `.add(path, body)`, `.fail(path, plan)`, `.url(path)`, `.requests`, `.bytes_served`."""
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.close()
