"""
A Starlette app built on anyconc: the concurrency guide's endpoints, on asyncio or trio.

Run it with::

    python examples/webapp.py --server uvicorn --backend asyncio
    python examples/webapp.py --server hypercorn --backend trio --port 8001 --grace 5
    python examples/webapp.py --limit 50 --pending-limit 500 --no-access-log

Endpoints:

* ``GET /dashboard?user_id=7`` -- :class:`anyconc.TaskGroup` fan-out to three
  simulated data sources;
* ``GET /thumbnail?size=32`` -- a pure-Python, CPU-bound downscale in
  :func:`anyconc.run_in_threadpool`;
* ``GET /search?q=...&down=primary,backup`` -- :func:`anyconc.run_until_first_complete`
  over a primary, a slower backup and a fallback that always fails;
* ``POST /notify?message=...&delay=1.5&name=...&hold=0`` -- fire-and-forget
  :func:`anyconc.create_background_task` that appends a line to the file named by the
  ``ANYCONC_WEBAPP_NOTIFY_LOG`` environment variable (``hold``: bytes of memory the
  task holds until it is done, at most 1 MiB). When the app's supervisor is full
  (``--limit`` running and ``--pending-limit`` waiting), it answers ``429`` with a
  ``Retry-After`` header instead;
* ``GET /tasks/status`` -- count, names and ages of the running background tasks, the
  number waiting for room, and the limits;
* ``GET /analytics`` -- an :class:`anyconc.AsyncLazy` with a ``ttl``
  (``ANYCONC_WEBAPP_ANALYTICS_TTL`` seconds, 60 by default);
* ``POST /jobs/{id}?duration=1`` and ``GET /jobs/{id}?timeout=5`` -- a background job
  and waiters coordinated by an :class:`anyconc.AsyncEvent`;
* ``GET /healthz``.

The app is wrapped in :class:`anyconc.asgi.BackgroundTasksMiddleware`: background
tasks belong to the app's lifespan and, when the server is asked to stop (SIGINT or
SIGTERM), are given ``--grace`` seconds to finish before they are cancelled (the
waiting ones included: they start as room frees up). At most ``--limit`` run at once
and ``--pending-limit`` wait (100 and 1000 by default; 0: no limit).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anyconc import (
    AllFailedError,
    AsyncEvent,
    AsyncLazy,
    BackgroundTasksFull,
    TaskGroup,
    create_background_task,
    run_in_threadpool,
    run_until_first_complete,
)
from anyconc.asgi import BackgroundTasksMiddleware, background_tasks_status

NOTIFY_LOG_ENV = "ANYCONC_WEBAPP_NOTIFY_LOG"
ANALYTICS_TTL_ENV = "ANYCONC_WEBAPP_ANALYTICS_TTL"
GRACE_ENV = "ANYCONC_WEBAPP_GRACE"
LIMIT_ENV = "ANYCONC_WEBAPP_LIMIT"
PENDING_LIMIT_ENV = "ANYCONC_WEBAPP_PENDING_LIMIT"
DEFAULT_LIMIT = 100
DEFAULT_PENDING_LIMIT = 1000
#: Seconds a client told "429 Too Many Requests" should wait before it tries again.
RETRY_AFTER = 1
MAX_HOLD = 1 << 20

logger = logging.getLogger("webapp")


def _query_float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default

    value = float(raw)  # ValueError -> 400, see bad_request()
    if not value >= 0:
        raise ValueError(f"{name} must not be negative, got {raw}")

    return value


# -- /dashboard: TaskGroup fan-out -------------------------------------------------------


@dataclass
class _Concurrency:
    """Counts how many simulated fetches run at the same time."""

    running: int = 0
    highest: int = 0

    async def fetch(self, delay: float, value: Any) -> Any:
        self.running += 1
        self.highest = max(self.highest, self.running)
        try:
            await anyio.sleep(delay)  # the network round trip
            return value
        finally:
            self.running -= 1


async def dashboard(request: Request) -> JSONResponse:
    user_id = request.query_params.get("user_id", "1")
    sources = _Concurrency()
    async with TaskGroup() as group:
        user_task = group.create_task(
            sources.fetch(0.05, {"id": user_id, "name": f"user {user_id}"})
        )
        posts_task = group.create_task(
            sources.fetch(0.08, [{"id": n, "title": f"post {n}"} for n in (3, 2, 1)])
        )
        stats_task = group.create_task(
            sources.fetch(0.03, {"followers": 42, "posts": 3})
        )
        user = await user_task
        posts = await posts_task
        stats = await stats_task

    return JSONResponse(
        {
            "user": user,
            "recent_posts": posts,
            "statistics": stats,
            "max_concurrent_fetches": sources.highest,
        }
    )


# -- /thumbnail: CPU-bound work in a worker thread ----------------------------------------


def make_thumbnail(source_size: int, size: int) -> dict[str, Any]:
    """
    Downscale a synthetic ``source_size`` square grey image to ``size`` by box filtering.

    Pure Python and CPU-bound on purpose (it holds the GIL): in the event loop's thread
    it would stall every other request.
    """
    if not 1 <= size <= source_size:
        raise ValueError(f"size must be between 1 and {source_size}, got {size}")

    image = [
        [(x * 7 + y * 13) % 256 for x in range(source_size)] for y in range(source_size)
    ]
    factor = source_size // size
    area = factor * factor
    thumbnail = [
        [
            sum(
                image[y * factor + dy][x * factor + dx]
                for dy in range(factor)
                for dx in range(factor)
            )
            // area
            for x in range(size)
        ]
        for y in range(size)
    ]
    return {
        "width": size,
        "height": size,
        "checksum": sum(map(sum, thumbnail)),
        "worker_thread": threading.current_thread() is not threading.main_thread(),
    }


async def thumbnail(request: Request) -> JSONResponse:
    size = int(request.query_params.get("size", "32"))
    return JSONResponse(await run_in_threadpool(make_thumbnail, 256, size=size))


# -- /search: first success wins, with a failing fallback ------------------------------


async def search_primary(query: str, down: set[str]) -> dict[str, Any]:
    await anyio.sleep(0.05)
    if "primary" in down:
        raise ConnectionError("primary search database is down")
    return {"source": "primary", "results": [f"{query}-1", f"{query}-2"]}


async def search_backup(query: str, down: set[str]) -> dict[str, Any]:
    await anyio.sleep(0.2)  # the backup is slower
    if "backup" in down:
        raise ConnectionError("backup search database is down")
    return {"source": "backup", "results": [f"{query}-backup-1"]}


async def search_fallback(query: str, timeout: float) -> dict[str, Any]:
    # The last resort is broken: it fails, and the race goes on without it.
    await anyio.sleep(0.01)
    raise TimeoutError(f"fallback search gave up after {timeout} s")


async def search(request: Request) -> JSONResponse:
    query = request.query_params.get("q", "")
    down = set(filter(None, request.query_params.get("down", "").split(",")))
    try:
        result = await run_until_first_complete(
            lambda: search_primary(query, down),
            lambda: search_backup(query, down),
            (search_fallback, {"query": query, "timeout": 2.0}),
            timeout=2.0,
        )
    except AllFailedError as exc:
        return JSONResponse(
            {
                "error": "every search backend failed",
                "failures": sorted(str(e) for e in exc.exceptions),
            },
            status_code=503,
        )
    except TimeoutError:
        return JSONResponse({"error": "search timed out"}, status_code=504)

    return JSONResponse(result)


# -- /notify: fire-and-forget background task -----------------------------------------

_notify_ids = itertools.count(1)


def _append_line(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


async def send_notification(
    name: str, message: str, delay: float, hold: int = 0
) -> None:
    held = bytearray(hold)  # what a real task holds: a rendered mail, a connection...
    try:
        await anyio.sleep(delay)  # the mail server is slow
    except anyio.get_cancelled_exc_class():
        logger.warning("notification %s was not sent: cancelled", name)
        raise

    path = os.environ.get(NOTIFY_LOG_ENV)
    if path:
        await run_in_threadpool(_append_line, path, f"{name}\t{message}")
    logger.info("notification %s sent", name)
    del held


async def notify(request: Request) -> JSONResponse:
    message = request.query_params.get("message", "hello")
    delay = _query_float(request, "delay", 1.0)
    name = request.query_params.get("name") or f"notify-{next(_notify_ids)}"
    hold = int(request.query_params.get("hold", "0"))
    if not 0 <= hold <= MAX_HOLD:
        raise ValueError(f"hold must be between 0 and {MAX_HOLD}, got {hold}")

    try:
        create_background_task(send_notification(name, message, delay, hold), name=name)
    except BackgroundTasksFull:
        # Backpressure: the supervisor runs --limit tasks and --pending-limit wait.
        return JSONResponse(
            {"status": "busy", "task": name},
            status_code=429,
            headers={"Retry-After": str(RETRY_AFTER)},
        )

    return JSONResponse({"status": "queued", "task": name}, status_code=202)


# -- /tasks/status --------------------------------------------------------------------


async def tasks_status(request: Request) -> JSONResponse:
    # The lifespan supervisor is in the request state; without lifespan support in the
    # server it is absent and the status describes the run-wide default supervisor.
    supervisor = getattr(request.state, "background_tasks", None)
    return JSONResponse(background_tasks_status(supervisor))


# -- /analytics: AsyncLazy with a ttl --------------------------------------------------


@dataclass
class _Analytics:
    computations: int = 0
    lazy: AsyncLazy[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        ttl = float(os.environ.get(ANALYTICS_TTL_ENV, "60"))
        self.lazy = AsyncLazy(self._compute, ttl=ttl)

    def _calculate(self) -> dict[str, Any]:
        views = [(day * 37) % 101 for day in range(1, 31)]
        return {"days": len(views), "views": sum(views), "peak": max(views)}

    async def _compute(self) -> dict[str, Any]:
        self.computations += 1
        number = self.computations
        await anyio.sleep(0.1)  # an expensive query
        stats = await run_in_threadpool(self._calculate)
        return {"stats": stats, "computation": number}


_analytics = _Analytics()


async def analytics(request: Request) -> JSONResponse:
    return JSONResponse(await _analytics.lazy.get())


# -- /jobs/{id}: AsyncEvent coordination ----------------------------------------------


class JobCoordinator:
    def __init__(self) -> None:
        self.completion_event = AsyncEvent()
        self.result: str | None = None

    async def run_job(self, job_id: str, duration: float) -> None:
        await anyio.sleep(duration)  # the work
        self.result = f"job {job_id} completed"
        self.completion_event.set()


_jobs: dict[str, JobCoordinator] = {}


async def start_job(request: Request) -> JSONResponse:
    job_id = request.path_params["job_id"]
    duration = _query_float(request, "duration", 1.0)
    coordinator = _jobs[job_id] = JobCoordinator()
    create_background_task(coordinator.run_job(job_id, duration), name=f"job-{job_id}")
    return JSONResponse({"job": job_id, "status": "started"}, status_code=202)


async def wait_job(request: Request) -> JSONResponse:
    job_id = request.path_params["job_id"]
    coordinator = _jobs.get(job_id)
    if coordinator is None:
        return JSONResponse({"error": f"unknown job {job_id!r}"}, status_code=404)

    timeout = _query_float(request, "timeout", 5.0)
    if await coordinator.completion_event.wait(timeout):
        return JSONResponse(
            {"job": job_id, "status": "completed", "result": coordinator.result}
        )

    return JSONResponse({"job": job_id, "status": "pending"}, status_code=202)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def bad_request(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(
    grace: float,
    limit: int | None = DEFAULT_LIMIT,
    pending_limit: int | None = DEFAULT_PENDING_LIMIT,
) -> BackgroundTasksMiddleware:
    """The Starlette app, its background tasks owned by its lifespan (and bounded)."""
    starlette_app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/dashboard", dashboard),
            Route("/thumbnail", thumbnail),
            Route("/search", search),
            Route("/notify", notify, methods=["POST"]),
            Route("/tasks/status", tasks_status),
            Route("/analytics", analytics),
            Route("/jobs/{job_id}", start_job, methods=["POST"]),
            Route("/jobs/{job_id}", wait_job, methods=["GET"]),
        ],
        exception_handlers={ValueError: bad_request},
    )
    return BackgroundTasksMiddleware(
        starlette_app,
        shutdown_timeout=grace,
        name="webapp",
        limit=limit,
        pending_limit=pending_limit if limit is not None else None,
    )


def _limit(value: int) -> int | None:
    return value or None  # 0: no limit


# For `uvicorn examples.webapp:app` and `hypercorn examples.webapp:app`.
app = create_app(
    float(os.environ.get(GRACE_ENV, "10")),
    _limit(int(os.environ.get(LIMIT_ENV, str(DEFAULT_LIMIT)))),
    _limit(int(os.environ.get(PENDING_LIMIT_ENV, str(DEFAULT_PENDING_LIMIT)))),
)


# -- serving ----------------------------------------------------------------------------


async def _wait_for_signal() -> signal.Signals:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            return signal.Signals(signum)

    raise AssertionError("unreachable")


async def serve_uvicorn(
    asgi_app: Any, host: str, port: int, access_log: bool = True
) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:
            # The signals are ours (see below), the same way for both servers.
            import contextlib

            return contextlib.nullcontext()

    server = Server(
        uvicorn.Config(
            asgi_app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=access_log,
        )
    )

    async def stop_on_signal() -> None:
        received = await _wait_for_signal()
        logger.info("received %s: shutting down gracefully", received.name)
        server.should_exit = True
        received = await _wait_for_signal()
        logger.warning("received %s again: forcing exit", received.name)
        server.force_exit = True

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(stop_on_signal)
        await server.serve()
        task_group.cancel_scope.cancel()


async def serve_hypercorn(
    asgi_app: Any,
    host: str,
    port: int,
    backend: str,
    grace: float,
    access_log: bool = True,
) -> None:
    from hypercorn.config import Config

    if backend == "trio":
        from hypercorn.trio import serve
    else:
        from hypercorn.asyncio import serve  # type: ignore[assignment]

    config = Config()
    config.bind = [f"{host}:{port}"]
    # Hypercorn's loggers, formatted and printed like everything else.
    config.accesslog = logging.getLogger("hypercorn.access") if access_log else None
    config.errorlog = logging.getLogger("hypercorn.error")
    # Hypercorn fails a lifespan shutdown that takes longer than this: leave room for
    # the background tasks' grace period.
    config.shutdown_timeout = grace + 30.0

    async def shutdown_trigger() -> None:
        received = await _wait_for_signal()
        logger.info("received %s: shutting down gracefully", received.name)

    await serve(asgi_app, config, shutdown_trigger=shutdown_trigger)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--server", choices=["uvicorn", "hypercorn"], default="uvicorn")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds background tasks get to finish at shutdown (default: 10)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"most background tasks running at once (default: {DEFAULT_LIMIT}; "
        "0: no limit)",
    )
    parser.add_argument(
        "--pending-limit",
        type=int,
        default=DEFAULT_PENDING_LIMIT,
        help="most background tasks waiting for room, then POST /notify answers 429 "
        f"(default: {DEFAULT_PENDING_LIMIT}; 0: no limit)",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log every request (for load tests)",
    )
    args = parser.parse_args(argv)
    if args.server == "uvicorn" and args.backend != "asyncio":
        parser.error("uvicorn runs on asyncio only: use --server hypercorn for trio")
    if args.grace < 0:
        parser.error(f"--grace must not be negative, got {args.grace}")
    for option, value in (
        ("--limit", args.limit),
        ("--pending-limit", args.pending_limit),
    ):
        if value < 0:
            parser.error(f"{option} must not be negative (0: no limit), got {value}")

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    asgi_app = create_app(args.grace, _limit(args.limit), _limit(args.pending_limit))
    logger.info(
        "serving on http://%s:%d with %s on %s (grace %s s, limit %s, pending limit %s)",
        args.host,
        args.port,
        args.server,
        args.backend,
        args.grace,
        asgi_app.limit,
        asgi_app.pending_limit,
    )
    if args.server == "uvicorn":
        anyio.run(
            serve_uvicorn,
            asgi_app,
            args.host,
            args.port,
            args.access_log,
            backend="asyncio",
        )
    else:
        anyio.run(
            serve_hypercorn,
            asgi_app,
            args.host,
            args.port,
            args.backend,
            args.grace,
            args.access_log,
            backend=args.backend,
        )

    logger.info("server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
