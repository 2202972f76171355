"""Shared fixtures for the test suite."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's torch work on one thread (restored afterwards).

    On a 2-core machine shared with background jobs, torch's default of one thread per core
    oversubscribes the CPU and small models run about ten times slower. Opt in with
    `pytestmark = pytest.mark.usefixtures("single_thread")`.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def host_server():
    """A server on the host's loopback that no sandbox may reach (the attack tests dial it)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()
