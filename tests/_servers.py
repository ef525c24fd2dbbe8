"""What the real-server tests (test_asgi_e2e, test_load) share: waiting for a server."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx
import pytest


def wait_until_ready(
    process: subprocess.Popen[bytes],
    base_url: str,
    log: Callable[[], str],
    limit: float,
) -> None:
    """Poll ``GET /healthz`` until it answers 200; fail the test if the server exits
    or takes longer than ``limit`` seconds (with its log in the message)."""
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not get ready in time:\n{log()}")
        time.sleep(0.05)
