"""anyconc.asgi in process: the ASGI lifespan protocol driven by hand, on every backend."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anyconc import BackgroundTask, BackgroundTasks, create_background_task
from anyconc.asgi import (
    BackgroundTasksMiddleware,
    background_tasks_lifespan,
    background_tasks_status,
)

Message = MutableMapping[str, Any]
Handler = Callable[[dict[str, Any]], Awaitable[None]]


# -- a tiny ASGI server, in process ------------------------------------------------------


class LifespanServer:
    """Plays the server's side of the ASGI lifespan protocol against ``app``."""

    def __init__(self, app: Any, *, with_state: bool = True) -> None:
        self.app = app
        self.state: dict[str, Any] | None = {} if with_state else None
        self._to_app_send, self._to_app_receive = anyio.create_memory_object_stream[
            Message
        ](2)
        self._replies_send, self._replies_receive = anyio.create_memory_object_stream[
            Message
        ](2)
        self.error: Exception | None = None
        self.finished = anyio.Event()

    async def run(self) -> None:
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
        }
        if self.state is not None:
            scope["state"] = self.state

        try:
            await self.app(scope, self._to_app_receive.receive, self._replies_send.send)
        except Exception as exc:
            self.error = exc
        finally:
            self._replies_send.close()
            self.finished.set()

    async def _exchange(self, message_type: str) -> str | None:
        await self._to_app_send.send({"type": message_type})
        try:
            return str((await self._replies_receive.receive())["type"])
        except anyio.EndOfStream:
            return None  # the app returned or raised without replying

    async def startup(self) -> str | None:
        return await self._exchange("lifespan.startup")

    def close(self) -> None:
        for stream in (
            self._to_app_send,
            self._to_app_receive,
            self._replies_send,
            self._replies_receive,
        ):
            stream.close()

    async def shutdown(self) -> str | None:
        return await self._exchange("lifespan.shutdown")


@asynccontextmanager
async def serving(
    app: Any, *, with_state: bool = True
) -> AsyncIterator[LifespanServer]:
    server = LifespanServer(app, with_state=with_state)
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(server.run)
            yield server
            await server.finished.wait()
    finally:
        server.close()


async def request(
    app: Any, path: str = "/", state: dict[str, Any] | None = None
) -> tuple[int, bytes, dict[str, Any]]:
    """One HTTP GET through ``app``; returns the status, the body and the scope."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        scope["state"] = dict(state)  # servers give each request a shallow copy

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], sent[1]["body"], scope


def raw_app(
    events: list[str],
    handler: Handler | None = None,
    *,
    on_startup: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """A bare ASGI app with a lifespan that records its startup and shutdown."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            events.append("app startup")
            if on_startup is not None:
                await on_startup()
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            events.append("app shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return

        if handler is not None:
            await handler(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def anyconc_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "anyconc"]


# -- ownership ---------------------------------------------------------------------------


async def test_request_tasks_belong_to_the_lifespan_supervisor() -> None:
    events: list[str] = []
    release = anyio.Event()
    tasks: list[BackgroundTask[str]] = []

    async def job(n: int) -> str:
        await release.wait()
        return f"job {n}"

    async def handler(scope: dict[str, Any]) -> None:
        tasks.append(create_background_task(job(len(tasks)), name=f"job-{len(tasks)}"))

    middleware = BackgroundTasksMiddleware(raw_app(events, handler), name="web")
    assert middleware.supervisor is None
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        supervisor = middleware.supervisor
        assert isinstance(supervisor, BackgroundTasks)
        assert supervisor.name == "web"  # type: ignore[unreachable]
        assert server.state == {"background_tasks": supervisor}

        for _ in range(3):
            status, body, scope = await request(middleware, state=server.state)
            assert (status, body) == (200, b"ok")
            assert scope["state"]["background_tasks"] is supervisor

        # The handlers have returned; their tasks are still running, owned by the app.
        assert supervisor.active == tuple(tasks)
        assert [t.name for t in supervisor.active] == ["job-0", "job-1", "job-2"]
        assert not any(t.done() for t in tasks)

        release.set()
        assert await server.shutdown() == "lifespan.shutdown.complete"

    assert server.error is None
    assert [t.result() for t in tasks] == ["job 0", "job 1", "job 2"]
    assert events == ["app startup", "app shutdown"]
    assert middleware.supervisor is None


async def test_supervisor_seen_from_a_worker_thread_is_the_runs() -> None:
    middleware = BackgroundTasksMiddleware(raw_app([]), name="web")
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        supervisor = middleware.supervisor
        assert supervisor is not None
        # No run in the worker thread: the latest run's supervisor (this run's).
        assert await anyio.to_thread.run_sync(lambda: middleware.supervisor) is supervisor
        assert await server.shutdown() == "lifespan.shutdown.complete"

    assert await anyio.to_thread.run_sync(lambda: middleware.supervisor) is None


async def test_request_state_is_filled_even_if_the_server_did_not_copy_it() -> None:
    seen: list[Any] = []

    async def handler(scope: dict[str, Any]) -> None:
        seen.append(scope["state"]["background_tasks"])

    middleware = BackgroundTasksMiddleware(raw_app([], handler))
    async with serving(middleware, with_state=False) as server:
        assert await server.startup() == "lifespan.startup.complete"
        await request(middleware)  # no "state" in the scope at all
        assert seen == [middleware.supervisor]
        assert await server.shutdown() == "lifespan.shutdown.complete"


async def test_state_key_none_leaves_the_state_alone() -> None:
    middleware = BackgroundTasksMiddleware(raw_app([]), state_key=None)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert server.state == {}
        _, _, scope = await request(middleware, state=server.state)
        assert scope["state"] == {}
        assert await server.shutdown() == "lifespan.shutdown.complete"


async def test_tasks_created_by_the_apps_own_startup_belong_to_the_supervisor() -> None:
    events: list[str] = []
    tasks: list[BackgroundTask[None]] = []

    async def warm_cache() -> None:
        await anyio.sleep_forever()

    async def on_startup() -> None:
        tasks.append(create_background_task(warm_cache(), name="warm-cache"))

    middleware = BackgroundTasksMiddleware(
        raw_app(events, on_startup=on_startup), shutdown_timeout=0
    )
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert middleware.supervisor is not None
        assert middleware.supervisor.active == tuple(tasks)
        assert await server.shutdown() == "lifespan.shutdown.complete"

    assert tasks[0].cancelled()


# -- draining, grace period, cancel ------------------------------------------------------


@pytest.mark.virtual_time
async def test_shutdown_drains_before_passing_shutdown_to_the_app() -> None:
    events: list[str] = []
    times: dict[str, float] = {}

    async def job(n: int) -> int:
        await anyio.sleep(n)
        events.append(f"job {n} done")
        return n

    async def handler(scope: dict[str, Any]) -> None:
        for n in (3, 1, 2):
            create_background_task(job(n), name=f"job-{n}")

    middleware = BackgroundTasksMiddleware(
        raw_app(events, handler), shutdown_timeout=10
    )
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        await request(middleware, state=server.state)
        start = anyio.current_time()
        assert await server.shutdown() == "lifespan.shutdown.complete"
        times["shutdown complete"] = anyio.current_time() - start

    assert events == [
        "app startup",
        "job 1 done",
        "job 2 done",
        "job 3 done",
        "app shutdown",  # only after the supervisor was drained
    ]
    assert times["shutdown complete"] == pytest.approx(3, abs=1e-6)


@pytest.mark.virtual_time
async def test_grace_period_then_cancel_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="anyconc")
    events: list[str] = []
    tasks: dict[str, BackgroundTask[str]] = {}
    cancelled_at: list[float] = []

    async def quick() -> str:
        await anyio.sleep(2)
        return "quick done"

    async def slow() -> str:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            cancelled_at.append(anyio.current_time())
            raise
        return "slow done"

    async def handler(scope: dict[str, Any]) -> None:
        tasks["quick"] = create_background_task(quick(), name="quick")
        tasks["slow"] = create_background_task(slow(), name="slow")

    middleware = BackgroundTasksMiddleware(
        raw_app(events, handler), shutdown_timeout=5, name="web"
    )
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        await request(middleware, state=server.state)
        start = anyio.current_time()
        assert await server.shutdown() == "lifespan.shutdown.complete"
        elapsed = anyio.current_time() - start

    assert elapsed == pytest.approx(5, abs=1e-6)
    assert cancelled_at[0] - start == pytest.approx(5, abs=1e-6)
    assert tasks["quick"].result() == "quick done"
    assert tasks["slow"].cancelled()
    assert events == ["app startup", "app shutdown"]
    messages = anyconc_records(caplog)
    assert messages == [
        "background tasks 'web': shutdown: waiting up to 5 s for 2 running "
        "background task(s)",
        "cancelling background task 'slow' at shutdown of 'web'",
        "background tasks 'web': shutdown: 1 background task(s) finished, 1 cancelled",
    ]
    warning = next(r for r in caplog.records if "cancelling" in r.getMessage())
    assert warning.levelno == logging.WARNING


@pytest.mark.virtual_time
async def test_no_grace_limit_waits_for_every_task() -> None:
    done: list[float] = []

    async def job() -> None:
        await anyio.sleep(3600)
        done.append(anyio.current_time())

    async def handler(scope: dict[str, Any]) -> None:
        create_background_task(job())

    middleware = BackgroundTasksMiddleware(raw_app([], handler), shutdown_timeout=None)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        start = anyio.current_time()
        await request(middleware, state=server.state)
        assert await server.shutdown() == "lifespan.shutdown.complete"
        assert anyio.current_time() - start == pytest.approx(3600, abs=1e-6)

    assert len(done) == 1


async def test_tasks_started_by_draining_tasks_are_drained_too() -> None:
    # Issue 13 case 3: the drain includes what the drained tasks start.
    owners: list[str | None] = []
    done: list[str] = []
    release = anyio.Event()

    async def second() -> None:
        await anyio.sleep(0.01)
        done.append("second")

    async def first() -> None:
        await release.wait()
        supervisor = server.state["background_tasks"]  # type: ignore[index]
        # Shutting down: the app's supervisor still owns what its own tasks start...
        supervisor.create_task(second(), name="direct")
        late = create_background_task(second(), name="late")
        owners.append(background_tasks_status()["supervisor"])
        await late
        done.append("first")

    async def handler(scope: dict[str, Any]) -> None:
        create_background_task(first(), name="first")

    middleware = BackgroundTasksMiddleware(raw_app([], handler), name="web")
    async with serving(middleware) as server, anyio.create_task_group() as tg:
        assert await server.startup() == "lifespan.startup.complete"
        await request(middleware, state=server.state)
        tg.start_soon(server.shutdown)
        await anyio.wait_all_tasks_blocked()
        release.set()

    # ... and the drain waited for them (nothing went to the run-wide default).
    assert owners == ["web"]
    assert done == ["second", "second", "first"]


# -- status --------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_status_counts_names_and_ages() -> None:
    release = anyio.Event()

    async def job() -> None:
        await release.wait()

    middleware = BackgroundTasksMiddleware(raw_app([]), name="web")
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert middleware.status() == {
            "supervisor": "web",
            "active_tasks": 0,
            "tasks": [],
            "waiting_tasks": 0,
            "limit": None,
            "pending_limit": None,
            "started_tasks": 0,
            "finished_tasks": 0,
            "failed_tasks": 0,
        }
        create_background_task(job(), name="a")
        await anyio.sleep(2)
        create_background_task(job(), name="b")
        await anyio.sleep(1.5)
        status = middleware.status()
        assert status["supervisor"] == "web"
        assert status["active_tasks"] == 2
        assert (status["started_tasks"], status["finished_tasks"]) == (2, 0)
        assert [t["name"] for t in status["tasks"]] == ["a", "b"]
        assert status["tasks"][0]["age"] == pytest.approx(3.5, abs=1e-6)
        assert status["tasks"][1]["age"] == pytest.approx(1.5, abs=1e-6)
        # The same through the state (a status endpoint's view), and as the owner.
        supervisor = server.state["background_tasks"]  # type: ignore[index]
        assert background_tasks_status(supervisor) == status
        assert background_tasks_status() == status

        release.set()
        await anyio.wait_all_tasks_blocked()
        assert middleware.status()["active_tasks"] == 0
        assert middleware.status()["finished_tasks"] == 2
        assert middleware.status()["failed_tasks"] == 0
        assert await server.shutdown() == "lifespan.shutdown.complete"


async def test_status_without_any_supervisor_is_empty() -> None:
    assert background_tasks_status() == {
        "supervisor": None,
        "active_tasks": 0,
        "tasks": [],
        "waiting_tasks": 0,
        "limit": None,
        "pending_limit": None,
        "started_tasks": 0,
        "finished_tasks": 0,
        "failed_tasks": 0,
    }


STATUS_OUTSIDE_A_RUN = (
    "background_tasks_status() must be called inside the event-loop run that hosts "
    "the supervisor (ages are measured on its clock), and no event loop runs in this "
    "thread; from a worker thread, use "
    "anyio.from_thread.run_sync(background_tasks_status, supervisor)"
)


def test_status_outside_an_event_loop_raises() -> None:
    with pytest.raises(anyio.NoEventLoopError) as info:
        background_tasks_status()
    assert str(info.value) == STATUS_OUTSIDE_A_RUN


async def test_status_from_a_worker_thread_raises_and_the_named_way_works() -> None:
    async with BackgroundTasks(name="web") as supervisor:
        for argument in (None, supervisor):
            with pytest.raises(anyio.NoEventLoopError) as info:
                await anyio.to_thread.run_sync(background_tasks_status, argument)
            assert str(info.value) == STATUS_OUTSIDE_A_RUN
        status = await anyio.to_thread.run_sync(
            anyio.from_thread.run_sync, background_tasks_status, supervisor
        )
    assert (status["supervisor"], status["active_tasks"]) == ("web", 0)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_status_of_a_supervisor_after_its_run_ended_raises(backend: str) -> None:
    from anyconc.pytest_plugin import backend_spec

    async def serve() -> BackgroundTasks:
        async with BackgroundTasks(name="web") as supervisor:
            return supervisor

    name, options = backend_spec(backend)
    supervisor = anyio.run(serve, backend=name, backend_options=options)
    with pytest.raises(anyio.NoEventLoopError) as info:
        background_tasks_status(supervisor)
    assert str(info.value) == STATUS_OUTSIDE_A_RUN


def test_status_rejects_what_is_not_a_supervisor() -> None:
    with pytest.raises(
        TypeError,
        match=r"^background_tasks_status\(\) argument 'supervisor' must be a "
        r"BackgroundTasks or None, got dict \{\}$",
    ):
        background_tasks_status({})  # type: ignore[arg-type]


def test_status_given_a_coroutine_object_closes_it() -> None:
    async def supervisor() -> BackgroundTasks:
        return BackgroundTasks()

    coro = supervisor()
    with pytest.raises(
        TypeError,
        match=r"^background_tasks_status\(\) argument 'supervisor' must be a "
        r"BackgroundTasks or None, got the coroutine object .*supervisor\(\)$",
    ):
        background_tasks_status(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_a_plain_function_as_the_app_is_a_type_error_naming_it() -> None:
    calls: list[str] = []

    def sync_app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    middleware = BackgroundTasksMiddleware(sync_app)  # type: ignore[arg-type]
    async with serving(middleware) as server:
        # Its lifespan failure means "no lifespan support" (the ASGI spec's rule).
        assert await server.startup() == "lifespan.startup.complete"
        with pytest.raises(
            TypeError,
            match=r"^BackgroundTasksMiddleware\.__call__\(\): '.*sync_app' returned "
            r"NoneType, not an awaitable; pass an async function \(or a function "
            r"returning an awaitable\)$",
        ):
            await request(middleware, state=server.state)
        assert await server.shutdown() == "lifespan.shutdown.complete"
    assert calls == ["lifespan", "http"]
    assert server.error is None


def test_a_coroutine_object_as_the_app_or_the_lifespan_is_closed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    coro = app({}, None, None)
    with pytest.raises(
        TypeError,
        match=r"^BackgroundTasksMiddleware\(\) argument 'app' must be an ASGI "
        r"application \(a callable\), got the coroutine object .*app\(\); pass the "
        r"function itself",
    ):
        BackgroundTasksMiddleware(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    coro = app({}, None, None)
    with pytest.raises(
        TypeError,
        match=r"^background_tasks_lifespan\(\) argument 'lifespan' must be a function "
        r"returning an async context manager, or None, got the coroutine object "
        r".*app\(\); pass the function itself",
    ):
        background_tasks_lifespan(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_lifespan_that_is_not_a_context_manager_factory_is_named() -> None:
    async def undecorated(app: Any) -> AsyncIterator[None]:
        yield

    async def coroutine_function(app: Any) -> None:
        pass

    fix = r"; decorate it with @contextlib\.asynccontextmanager$"
    start = (
        r"^background_tasks_lifespan\(\) argument 'lifespan' must be a function "
        r"returning an async context manager, or None, got the "
    )
    with pytest.raises(
        TypeError, match=start + r"async generator function '.*undecorated'" + fix
    ):
        background_tasks_lifespan(undecorated)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=start + r"async function '.*coroutine_function'" + fix
    ):
        background_tasks_lifespan(coroutine_function)  # type: ignore[arg-type]

    # Known only when it is called, at startup: named then, nothing left running.
    def plain(app: Any) -> dict[str, Any]:
        return {}

    factory = background_tasks_lifespan(plain)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^background_tasks_lifespan\(\): '.*plain' returned dict, not an "
        r"async context manager" + fix,
    ):
        async with factory(object()):
            raise AssertionError("not entered")


# -- servers and apps without lifespan ---------------------------------------------------


async def test_server_without_lifespan_warns_once_and_uses_the_default_supervisor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks: list[BackgroundTask[int]] = []

    async def job(n: int) -> int:
        await anyio.sleep(0)
        return n

    async def handler(scope: dict[str, Any]) -> None:
        tasks.append(create_background_task(job(len(tasks)), name="job"))
        # Nothing is put in the state without a lifespan supervisor.
        assert "background_tasks" not in scope.get("state", {})

    middleware = BackgroundTasksMiddleware(raw_app([], handler))
    for _ in range(2):
        assert (await request(middleware))[:2] == (200, b"ok")

    assert middleware.supervisor is None
    status = middleware.status()
    assert status["supervisor"] == "anyconc default"
    assert [t["name"] for t in status["tasks"]] == ["job", "job"]
    assert [await t for t in tasks] == [0, 1]

    warnings = [r for r in caplog.records if r.name == "anyconc"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert (
        "the server did not run the ASGI lifespan protocol" in warnings[0].getMessage()
    )
    assert "run-wide default supervisor" in warnings[0].getMessage()


async def test_requests_after_the_lifespan_do_not_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = BackgroundTasksMiddleware(raw_app([]))
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        await request(middleware, state=server.state)
        assert await server.shutdown() == "lifespan.shutdown.complete"

    # A request after the lifespan ended (a draining server's last one) is served, but
    # the lifespan was seen in this run: no misleading "no lifespan" warning.
    assert (await request(middleware))[:2] == (200, b"ok")
    assert anyconc_records(caplog) == []


@pytest.mark.parametrize("behaviour", ["raises", "returns"])
async def test_app_without_lifespan_support_still_gets_a_supervisor(
    behaviour: str,
) -> None:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if behaviour == "raises":
                raise RuntimeError("only http is supported")
            return

        create_background_task(anyio.sleep(0), name="job")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = BackgroundTasksMiddleware(app)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        supervisor = middleware.supervisor
        assert supervisor is not None
        status, _, _ = await request(middleware, state=server.state)
        assert status == 204
        assert [t.name for t in supervisor.active] == ["job"]
        assert await server.shutdown() == "lifespan.shutdown.complete"

    assert server.error is None
    assert supervisor.active == ()


# -- failures of the wrapped app ---------------------------------------------------------


async def test_startup_failed_message_is_passed_on_and_tasks_cancelled() -> None:
    tasks: list[BackgroundTask[None]] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        tasks.append(create_background_task(anyio.sleep_forever(), name="early"))
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        raise ConnectionError("no database")

    middleware = BackgroundTasksMiddleware(app, shutdown_timeout=None)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.failed"

    # The app's own exception reaches the server, unwrapped.
    assert type(server.error) is ConnectionError
    assert str(server.error) == "no database"
    assert tasks[0].cancelled()
    assert middleware.supervisor is None


async def test_startup_exception_is_raised_unwrapped_and_tasks_cancelled() -> None:
    tasks: list[BackgroundTask[None]] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await receive()
        tasks.append(create_background_task(anyio.sleep_forever(), name="early"))
        raise KeyError("config")

    middleware = BackgroundTasksMiddleware(app, shutdown_timeout=None)
    async with serving(middleware) as server:
        assert await server.startup() is None

    assert type(server.error) is KeyError
    assert tasks[0].cancelled()


async def test_app_lifespan_crash_while_serving_cancels_tasks() -> None:
    crash = anyio.Event()
    tasks: list[BackgroundTask[None]] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await crash.wait()
        raise OSError("pool died")

    middleware = BackgroundTasksMiddleware(app, shutdown_timeout=None)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        tasks.append(create_background_task(anyio.sleep_forever(), name="job"))
        crash.set()

    assert type(server.error) is OSError
    assert tasks[0].cancelled()
    assert middleware.supervisor is None


async def test_app_shutdown_failure_is_passed_on_after_the_drain() -> None:
    events: list[str] = []

    async def job() -> None:
        await anyio.sleep(0.01)
        events.append("job done")

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        events.append("app shutdown")
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    middleware = BackgroundTasksMiddleware(app)
    async with serving(middleware) as server:
        assert await server.startup() == "lifespan.startup.complete"
        create_background_task(job())
        assert await server.shutdown() == "lifespan.shutdown.failed"

    assert events == ["job done", "app shutdown"]
    assert server.error is None


@pytest.mark.virtual_time
@pytest.mark.parametrize("phase", ["startup", "serving", "draining"])
async def test_lifespan_cancelled_by_the_server_cancels_everything_at_once(
    phase: str,
) -> None:
    tasks: list[BackgroundTask[None]] = []
    hang_startup = anyio.Event()

    async def on_startup() -> None:
        tasks.append(create_background_task(anyio.sleep(100), name="job"))
        if phase == "startup":
            await anyio.sleep_forever()
        hang_startup.set()

    middleware = BackgroundTasksMiddleware(
        raw_app([], on_startup=on_startup), shutdown_timeout=50
    )
    start = anyio.current_time()
    with anyio.move_on_after(1):
        async with serving(middleware) as server:
            # In the "startup" phase, the app's startup hangs: no reply ever comes.
            assert await server.startup() == "lifespan.startup.complete"
            if phase == "draining":
                await server.shutdown()  # never completes: the grace period is 50 s
            await anyio.sleep_forever()

    assert anyio.current_time() - start == pytest.approx(1, abs=1e-6)
    assert tasks[0].cancelled()
    assert middleware.supervisor is None


# -- the Starlette lifespan helper -------------------------------------------------------


@pytest.mark.virtual_time
async def test_starlette_lifespan_helper_orders_and_exposes_the_supervisor() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("app startup")
        yield {"db": "connection"}
        events.append("app shutdown")

    async def job() -> None:
        await anyio.sleep(4)
        events.append("job done")

    async def notify(request: Request) -> JSONResponse:
        task = create_background_task(job(), name="notify")
        return JSONResponse(
            {
                "db": request.state.db,
                "owned": task in request.state.background_tasks.active,
            }
        )

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(background_tasks_status(request.state.background_tasks))

    app = Starlette(
        routes=[Route("/notify", notify), Route("/status", status)],
        lifespan=background_tasks_lifespan(
            app_lifespan, shutdown_timeout=10, name="starlette"
        ),
    )
    async with serving(app) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert server.state is not None
        assert set(server.state) == {"db", "background_tasks"}
        status_code, body, _ = await request(app, "/notify", server.state)
        assert (status_code, body) == (200, b'{"db":"connection","owned":true}')
        await anyio.sleep(1)
        _, body, _ = await request(app, "/status", server.state)
        assert body == (
            b'{"supervisor":"starlette","active_tasks":1,'
            b'"tasks":[{"name":"notify","age":1.0}],'
            b'"waiting_tasks":0,"limit":null,"pending_limit":null,'
            b'"started_tasks":1,"finished_tasks":0,"failed_tasks":0}'
        )
        start = anyio.current_time()
        assert await server.shutdown() == "lifespan.shutdown.complete"
        assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)

    assert events == ["app startup", "job done", "app shutdown"]


@pytest.mark.virtual_time
async def test_starlette_lifespan_helper_without_inner_lifespan_cancels_after_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks: list[BackgroundTask[None]] = []

    async def start_job(request: Request) -> JSONResponse:
        tasks.append(create_background_task(anyio.sleep(60), name="long"))
        return JSONResponse({})

    app = Starlette(
        routes=[Route("/", start_job)],
        lifespan=background_tasks_lifespan(shutdown_timeout=2, state_key="bg"),
    )
    async with serving(app) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert server.state is not None
        assert list(server.state) == ["bg"]
        await request(app, "/", server.state)
        start = anyio.current_time()
        assert await server.shutdown() == "lifespan.shutdown.complete"
        assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)

    assert tasks[0].cancelled()
    assert "cancelling background task 'long' at shutdown of None" in (
        anyconc_records(caplog)
    )


async def test_starlette_lifespan_helper_startup_failure_is_unwrapped() -> None:
    tasks: list[BackgroundTask[None]] = []

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks.append(create_background_task(anyio.sleep_forever(), name="early"))
        raise ConnectionRefusedError("database")
        yield  # type: ignore[unreachable]

    app = Starlette(lifespan=background_tasks_lifespan(app_lifespan))
    async with serving(app) as server:
        assert await server.startup() == "lifespan.startup.failed"

    assert type(server.error) is ConnectionRefusedError
    assert tasks[0].cancelled()


async def test_middleware_around_starlette_with_its_own_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("app startup")
        yield
        events.append("app shutdown")

    async def job() -> None:
        await anyio.sleep(0.01)
        events.append("job done")

    async def start_job(request: Request) -> JSONResponse:
        create_background_task(job())
        return JSONResponse({"supervisor": request.state.background_tasks.name})

    app = BackgroundTasksMiddleware(
        Starlette(routes=[Route("/", start_job)], lifespan=app_lifespan), name="mw"
    )
    async with serving(app) as server:
        assert await server.startup() == "lifespan.startup.complete"
        assert (await request(app, "/", server.state))[1] == b'{"supervisor":"mw"}'
        assert await server.shutdown() == "lifespan.shutdown.complete"

    assert events == ["app startup", "job done", "app shutdown"]


# -- arguments, run portability ----------------------------------------------------------


def test_bad_arguments() -> None:
    app = raw_app([])
    middleware = r"^BackgroundTasksMiddleware\(\) argument "
    with pytest.raises(
        TypeError,
        match=middleware + r"'app' must be an ASGI application \(a callable\), "
        r"got str 'app'$",
    ):
        BackgroundTasksMiddleware("app")  # type: ignore[arg-type]
    timeout = r"'shutdown_timeout' must be a non-negative number or None, got "
    with pytest.raises(TypeError, match=middleware + timeout + r"str '5'$"):
        BackgroundTasksMiddleware(app, shutdown_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=middleware + timeout + r"-1$"):
        BackgroundTasksMiddleware(app, shutdown_timeout=-1)
    with pytest.raises(ValueError, match=middleware + timeout + r"nan$"):
        BackgroundTasksMiddleware(app, shutdown_timeout=math.nan)
    with pytest.raises(
        TypeError, match=middleware + r"'name' must be a string or None, got int 1$"
    ):
        BackgroundTasksMiddleware(app, name=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=middleware + r"'state_key' must be a string or None, got bytes b'k'$",
    ):
        BackgroundTasksMiddleware(app, state_key=b"k")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^background_tasks_lifespan\(\) argument 'lifespan' must be a function "
        r"returning an async context manager, or None, got int 42$",
    ):
        background_tasks_lifespan(42)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"^background_tasks_lifespan\(\) argument " + timeout + r"-0.5$",
    ):
        background_tasks_lifespan(shutdown_timeout=-0.5)


async def test_unexpected_first_lifespan_message_is_an_error() -> None:
    middleware = BackgroundTasksMiddleware(raw_app([]))

    async def receive() -> Message:
        return {"type": "lifespan.shutdown"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing must be sent")

    with pytest.raises(
        RuntimeError,
        match=r"^expected the ASGI message 'lifespan.startup', got 'lifespan.shutdown'$",
    ):
        await middleware({"type": "lifespan"}, receive, send)


MODULE_MIDDLEWARE = BackgroundTasksMiddleware(raw_app([]), name="portable")


def test_one_middleware_serves_runs_on_every_backend_in_turn() -> None:
    async def one_run() -> tuple[str, list[str]]:
        names: list[str] = []

        async def job() -> None:
            await anyio.sleep(0)
            names.append("done")

        async with serving(MODULE_MIDDLEWARE) as server:
            assert await server.startup() == "lifespan.startup.complete"
            supervisor = MODULE_MIDDLEWARE.supervisor
            assert supervisor is not None
            create_background_task(job(), name="job")
            assert await server.shutdown() == "lifespan.shutdown.complete"
        assert MODULE_MIDDLEWARE.supervisor is None
        return str(supervisor.name), names

    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(one_run, backend=backend) == ("portable", ["done"])

    assert MODULE_MIDDLEWARE.supervisor is None


async def test_server_send_raising_is_passed_on_unwrapped() -> None:
    # hypercorn's send() raises LifespanFailureError when told lifespan.startup.failed.
    class LifespanFailure(Exception):
        pass

    tasks: list[BackgroundTask[None]] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await receive()
        tasks.append(create_background_task(anyio.sleep_forever(), name="early"))
        await send({"type": "lifespan.startup.failed", "message": "boom"})

    messages = [{"type": "lifespan.startup"}]

    async def server_receive() -> Message:
        return messages.pop(0)

    async def server_send(message: Message) -> None:
        if message["type"] == "lifespan.startup.failed":
            raise LifespanFailure(message["message"])

    middleware = BackgroundTasksMiddleware(app, shutdown_timeout=None)
    with pytest.raises(LifespanFailure, match="^boom$"):
        await middleware({"type": "lifespan"}, server_receive, server_send)

    assert tasks[0].cancelled()
    assert middleware.supervisor is None


# -- Starlette's TestClient (a real lifespan in a portal thread) --------------------------

# Recent Starlette prefers the httpx2 package for its TestClient and warns about httpx.
_testclient_on_httpx = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


def _testclient_app(delivered: list[str]) -> BackgroundTasksMiddleware:
    async def deliver(name: str) -> None:
        await anyio.sleep(0.05)
        delivered.append(name)

    async def notify(request: Request) -> JSONResponse:
        name = request.query_params["name"]
        create_background_task(deliver(name), name=name)
        return JSONResponse(background_tasks_status())

    return BackgroundTasksMiddleware(
        Starlette(routes=[Route("/notify", notify, methods=["POST"])]), name="tc"
    )


@_testclient_on_httpx
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_starlette_testclient_with_lifespan_drains_at_exit(
    backend: Literal["asyncio", "trio"],
) -> None:
    from starlette.testclient import TestClient

    delivered: list[str] = []
    with TestClient(_testclient_app(delivered), backend=backend) as client:
        for name in ("a", "b"):
            status = client.post("/notify", params={"name": name}).json()
            assert status["supervisor"] == "tc"
        # Both are owned by the app's supervisor, still running (50 ms each).
        assert delivered == []

    assert sorted(delivered) == ["a", "b"]


@_testclient_on_httpx
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_starlette_testclient_without_lifespan_warns(
    backend: Literal["asyncio", "trio"], caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.testclient import TestClient

    client = TestClient(_testclient_app([]), backend=backend)
    status = client.post("/notify", params={"name": "a"}).json()
    # No lifespan: the task went to the run-wide default supervisor.
    assert status["supervisor"] == "anyconc default"
    warnings = [r for r in caplog.records if r.name == "anyconc"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "did not run the ASGI lifespan protocol" in warnings[0].getMessage()
