"""
End to end: examples/webapp.py under real servers (uvicorn on asyncio, hypercorn on
asyncio and on trio), driven over loopback HTTP with httpx.

These are plain sync tests: the event-loop backend under test is the server's, in a
subprocess. Every server is stopped by the fixture, killed if it does not stop in time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from _servers import wait_until_ready

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "webapp.py"
GRACE = 4.0  # the servers' grace period for background tasks, seconds
STARTUP_LIMIT = 20.0  # seconds a server may take to answer its first request


def _combination(server: str, backend: str, stop: signal.Signals) -> object:
    marks = []
    if importlib.util.find_spec(server) is None:
        marks.append(pytest.mark.skip(reason=f"{server} is not installed"))
    return pytest.param((server, backend, stop), id=f"{server}-{backend}", marks=marks)


COMBINATIONS = [
    _combination("uvicorn", "asyncio", signal.SIGINT),
    _combination("hypercorn", "asyncio", signal.SIGTERM),
    _combination("hypercorn", "trio", signal.SIGINT),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    notify_path: Path
    signal: signal.Signals

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def notified(self) -> list[str]:
        if not self.notify_path.exists():
            return []
        return self.notify_path.read_text(encoding="utf-8").splitlines()

    def stop(self, timeout: float) -> int:
        """Ask the server to stop; kill it if it has not exited after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(self.signal)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise


@pytest.fixture(params=COMBINATIONS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server_name, backend, stop_signal = request.param
    port = free_port()
    log_path = tmp_path / "server.log"
    notify_path = tmp_path / "notify.log"
    env = dict(os.environ)
    env["ANYCONC_WEBAPP_NOTIFY_LOG"] = str(notify_path)
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        str(EXAMPLE),
        "--server",
        server_name,
        "--backend",
        backend,
        "--port",
        str(port),
        "--grace",
        str(GRACE),
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env
        )

    srv = Server(
        process, f"http://127.0.0.1:{port}", log_path, notify_path, stop_signal
    )
    try:
        wait_until_ready(process, srv.base_url, srv.log, STARTUP_LIMIT)

        yield srv
    finally:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # then it was killed
                srv.stop(timeout=GRACE + 10)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anyconc_example_webapp", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_every_endpoint_answers(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        # TaskGroup fan-out: the three sources were fetched at the same time.
        response = client.get("/dashboard", params={"user_id": "7"})
        assert response.status_code == 200
        assert response.json() == {
            "user": {"id": "7", "name": "user 7"},
            "recent_posts": [
                {"id": 3, "title": "post 3"},
                {"id": 2, "title": "post 2"},
                {"id": 1, "title": "post 1"},
            ],
            "statistics": {"followers": 42, "posts": 3},
            "max_concurrent_fetches": 3,
        }

        # run_in_threadpool: computed in a worker thread, the same as in process.
        response = client.get("/thumbnail", params={"size": "32"})
        assert response.status_code == 200
        expected = load_example().make_thumbnail(256, 32)
        expected["worker_thread"] = True
        assert response.json() == expected
        assert client.get("/thumbnail", params={"size": "0"}).json() == {
            "error": "size must be between 1 and 256, got 0"
        }

        # run_until_first_complete: the failing fallback never wins nor ends the race.
        assert client.get("/search", params={"q": "anyio"}).json() == {
            "source": "primary",
            "results": ["anyio-1", "anyio-2"],
        }
        assert client.get(
            "/search", params={"q": "anyio", "down": "primary"}
        ).json() == {
            "source": "backup",
            "results": ["anyio-backup-1"],
        }
        response = client.get("/search", params={"q": "x", "down": "primary,backup"})
        assert response.status_code == 503
        assert response.json() == {
            "error": "every search backend failed",
            "failures": [
                "backup search database is down",
                "fallback search gave up after 2.0 s",
                "primary search database is down",
            ],
        }

        # AsyncLazy: concurrent and later requests share one computation.
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: client.get("/analytics").json(), range(4))
            )
        answers.append(client.get("/analytics").json())
        assert (
            answers
            == [{"stats": {"days": 30, "views": 1550, "peak": 100}, "computation": 1}]
            * 5
        )

        # AsyncEvent: a waiter with no time left sees "pending", a patient one the result.
        assert client.get("/jobs/nope").status_code == 404
        response = client.post("/jobs/report-1", params={"duration": "1.0"})
        assert (response.status_code, response.json()) == (
            202,
            {"job": "report-1", "status": "started"},
        )
        response = client.get("/jobs/report-1", params={"timeout": "0"})
        assert (response.status_code, response.json()["status"]) == (202, "pending")
        response = client.get("/jobs/report-1", params={"timeout": "10"})
        assert response.status_code == 200
        assert response.json() == {
            "job": "report-1",
            "status": "completed",
            "result": "job report-1 completed",
        }

        # Fire and forget, then the status endpoint sees the task running.
        response = client.post(
            "/notify", params={"message": "hi", "delay": "1.5", "name": "welcome"}
        )
        assert (response.status_code, response.json()) == (
            202,
            {"status": "queued", "task": "welcome"},
        )
        status = client.get("/tasks/status").json()
        assert status["supervisor"] == "webapp"
        assert status["active_tasks"] == 1
        assert [t["name"] for t in status["tasks"]] == ["welcome"]
        assert 0.0 <= status["tasks"][0]["age"] < 1.5

        # The task completes on its own (bounded wait for the subprocess's file).
        deadline = time.monotonic() + 10
        while not server.notified() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.notified() == ["welcome\thi"]
        status = client.get("/tasks/status").json()
        assert status == {
            "supervisor": "webapp",
            "active_tasks": 0,
            "tasks": [],
            "waiting_tasks": 0,
            "limit": 100,  # the example's defaults
            "pending_limit": 1000,
            "started_tasks": status["started_tasks"],
            "finished_tasks": status["started_tasks"],
            "failed_tasks": 0,
        }
        assert status["started_tasks"] >= 1


def test_shutdown_drains_notifications_and_cancels_the_slow_task(
    server: Server,
) -> None:
    names = [f"n{i:02d}" for i in range(50)]
    with contextlib.ExitStack() as stack:
        # One client per thread, made before the clock starts: httpcore's sync
        # connection pool, shared by threads, can close a connection under a request
        # waiting for its response (encode/httpcore#1110; CI saw it once here as
        # "[Errno 9] Bad file descriptor").
        clients = [
            stack.enter_context(httpx.Client(base_url=server.base_url, timeout=10.0))
            for _ in names
        ]

        def post(client: Any, name: str) -> int:  # an httpx.Client
            response = client.post(
                "/notify", params={"name": name, "message": "m", "delay": "2"}
            )
            return int(response.status_code)

        with ThreadPoolExecutor(50) as pool:
            assert list(pool.map(post, clients, names)) == [202] * 50

    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        # And one task that outlives any reasonable grace period.
        response = client.post(
            "/notify", params={"name": "slow-report", "message": "m", "delay": "600"}
        )
        assert response.status_code == 202
        status = client.get("/tasks/status").json()

    # All 51 are still running when the server is told to stop.
    assert status["active_tasks"] == 51, status
    assert server.notified() == []
    stop_sent = time.monotonic()
    returncode = server.stop(timeout=GRACE + 20)
    stopped_after = time.monotonic() - stop_sent
    log = server.log()
    assert returncode == 0, log

    # Nothing lost: every notification was delivered, exactly once.
    assert sorted(server.notified()) == [f"{name}\tm" for name in names]
    # The slow one held the shutdown for the grace period, then was cancelled, and
    # that was logged.
    assert GRACE - 0.5 <= stopped_after <= GRACE + 10, (stopped_after, log)
    assert (
        "background tasks 'webapp': shutdown: waiting up to 4 s for 51 running "
        "background task(s)" in log
    )
    assert (
        "WARNING anyconc: cancelling background task 'slow-report' at shutdown of "
        in log
    )
    assert "WARNING webapp: notification slow-report was not sent: cancelled" in log
    assert (
        "background tasks 'webapp': shutdown: 50 background task(s) finished, "
        "1 cancelled" in log
    )
    assert "Traceback" not in log
