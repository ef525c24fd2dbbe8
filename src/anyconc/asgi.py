"""
ASGI integration: background tasks owned by the application, drained at shutdown.

A request handler that calls :func:`anyconc.create_background_task` wants the task to
outlive the request, but not the application: when the server stops, the work in
flight should be given a grace period to finish and only then be cancelled. This module
ties a :class:`anyconc.BackgroundTasks` supervisor to the ASGI *lifespan* of an app:

* :class:`BackgroundTasksMiddleware` wraps any ASGI app (Starlette, FastAPI, a bare
  ASGI callable, ...);
* :func:`background_tasks_lifespan` is the same thing for frameworks that take a
  Starlette-style ``lifespan=`` callable.

Both work under uvicorn (asyncio) and hypercorn (asyncio and trio workers), since they
only use AnyIO.

Example::

    from starlette.applications import Starlette
    from anyconc import create_background_task
    from anyconc.asgi import BackgroundTasksMiddleware

    async def notify(request):
        create_background_task(send_email(request.query_params["to"]), name="email")
        return JSONResponse({"status": "queued"}, status_code=202)

    app = BackgroundTasksMiddleware(
        Starlette(routes=[Route("/notify", notify, methods=["POST"])]),
        shutdown_timeout=10.0,
    )

"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeAlias, TypedDict

import anyio
from anyio.abc import TaskGroup as AnyIOTaskGroup
from anyio.abc import TaskStatus

from ._background import BackgroundTasks, check_limits, current_owner
from ._lowlevel import PerRun, current_run_or_none
from ._tasks import INTERRUPTS, Interrupted, find_interrupt
from ._util import (
    callable_name,
    check_awaitable_result,
    check_callable,
    check_instance,
    check_optional_str,
    check_shutdown_timeout,
    close_unstarted,
    logger,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_STATE_KEY",
    "BackgroundTasksMiddleware",
    "BackgroundTasksStatus",
    "TaskInfo",
    "background_tasks_lifespan",
    "background_tasks_status",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
Lifespan: TypeAlias = Callable[
    [Any], AbstractAsyncContextManager[Mapping[str, Any] | None]
]

#: Grace period, in seconds, that running background tasks get at shutdown by default.
#: Bounded on purpose: a server that never stops is worse than a cancelled task, and
#: process managers (systemd, Kubernetes) kill the process after their own timeout
#: (90 s and 30 s by default), of which the server's connection draining takes a share.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0

#: Key of the supervisor in the ASGI lifespan ``state`` (``request.state.background_tasks``
#: in Starlette).
DEFAULT_STATE_KEY = "background_tasks"


class TaskInfo(TypedDict):
    """One active background task in :class:`BackgroundTasksStatus`."""

    #: The task's name.
    name: str
    #: Seconds since the task was started (``anyio.current_time()`` based).
    age: float


class BackgroundTasksStatus(TypedDict):
    """A JSON-ready snapshot of a supervisor, for a status endpoint."""

    #: The supervisor's name (``None`` for an unnamed one).
    supervisor: str | None
    #: Number of tasks still running.
    active_tasks: int
    #: The running tasks, oldest first.
    tasks: list[TaskInfo]
    #: Number of tasks waiting for room under ``limit`` (not started yet).
    waiting_tasks: int
    #: The supervisor's ``limit`` (most tasks running at once), ``None`` if unbounded.
    limit: int | None
    #: The supervisor's ``pending_limit`` (most tasks waiting), ``None`` if unbounded.
    pending_limit: int | None
    #: Tasks started, finished (whatever the outcome) and failed since the supervisor
    #: was made (from :meth:`BackgroundTasks.statistics`).
    started_tasks: int
    finished_tasks: int
    failed_tasks: int


def background_tasks_status(
    supervisor: BackgroundTasks | None = None,
) -> BackgroundTasksStatus:
    """
    Describe the running tasks of ``supervisor``: how many, their names and ages; how
    many wait for room under its ``limit`` (counted, not listed), with its limits; and
    its counters (from :meth:`~anyconc.BackgroundTasks.statistics`).

    Without ``supervisor``, describe the one that owns :func:`create_background_task`
    calls in the current run right now: the innermost active
    :class:`~anyconc.BackgroundTasks` (an app's lifespan supervisor), else the run-wide
    default supervisor if it was started; if there is none, the snapshot is empty and
    names no supervisor (``None``).

    Tasks are listed oldest first. A task's age is measured from :attr:`BackgroundTask.started_at
    <anyconc.BackgroundTask.started_at>`, the event-loop time at which it was created.

    Must be called from inside the event-loop run that hosts the supervisor (ages are
    measured with :func:`anyio.current_time`).

    Example::

        async def tasks_status(request):
            supervisor = request.state.background_tasks
            return JSONResponse(background_tasks_status(supervisor))

    :param supervisor: the supervisor to describe (default: the current owner)
    :return: a JSON-ready :class:`BackgroundTasksStatus`
    :raises TypeError: if ``supervisor`` is not a :class:`~anyconc.BackgroundTasks`
    :raises anyio.NoEventLoopError: if called outside an event-loop run (after it
        ended, or from a worker thread: there, use
        ``anyio.from_thread.run_sync(background_tasks_status, supervisor)``)

    """
    if supervisor is None:
        _require_run()
        supervisor = current_owner()
        if supervisor is None:
            return {
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
    else:
        check_instance(
            "background_tasks_status()",
            "supervisor",
            supervisor,
            BackgroundTasks,
            "a BackgroundTasks or None",
        )
        _require_run()

    now = anyio.current_time()
    infos: list[TaskInfo] = []
    for task in supervisor.active:
        infos.append({"name": task.name, "age": max(0.0, now - task.started_at)})

    stats = supervisor.statistics()
    return {
        "supervisor": stats.name,
        "active_tasks": len(infos),
        "tasks": infos,
        "waiting_tasks": stats.waiting,
        "limit": supervisor.limit,
        "pending_limit": supervisor.pending_limit,
        "started_tasks": stats.started,
        "finished_tasks": stats.finished,
        "failed_tasks": stats.failed,
    }


def _require_run() -> None:
    if current_run_or_none() is None:
        raise anyio.NoEventLoopError(
            "background_tasks_status() must be called inside the event-loop run that "
            "hosts the supervisor (ages are measured on its clock), and no event loop "
            "runs in this thread; from a worker thread, use "
            "anyio.from_thread.run_sync(background_tasks_status, supervisor)"
        )


class _SupervisorHost:
    """
    Hosts an app's supervisor in a task of its own, so that it can be drained while the
    app's lifespan (started after it) is still open, and closed in the task that
    opened it.
    """

    def __init__(
        self,
        *,
        name: str | None,
        shutdown_timeout: float | None,
        limit: int | None = None,
        pending_limit: int | None = None,
    ) -> None:
        self.supervisor = BackgroundTasks(
            name=name,
            shutdown_timeout=shutdown_timeout,
            limit=limit,
            pending_limit=pending_limit,
        )
        self._name = name
        self._shutdown_timeout = shutdown_timeout
        self._stop = anyio.Event()
        self._closed = anyio.Event()

    async def start(self, task_group: AnyIOTaskGroup) -> BackgroundTasks:
        await task_group.start(self._run, name=f"anyconc.asgi supervisor {self._name}")
        return self.supervisor

    async def _run(self, *, task_status: TaskStatus[None]) -> None:
        try:
            async with self.supervisor:
                task_status.started()
                await self._stop.wait()
        finally:
            self._closed.set()

    async def drain(self) -> None:
        """Stop accepting, wait up to the grace period, cancel the rest, wait for them."""
        pending = self.supervisor.active
        waiting = self.supervisor.waiting
        if waiting:
            logger.info(
                "%s: shutdown: waiting up to %s for %d running and %d waiting "
                "background task(s)",
                self._label(),
                self._grace(),
                len(pending),
                len(waiting),
            )
            pending += waiting
        elif pending:
            logger.info(
                "%s: shutdown: waiting up to %s for %d running background task(s)",
                self._label(),
                self._grace(),
                len(pending),
            )

        self._stop.set()
        await self._closed.wait()
        if pending:
            # Each cancellation was logged by the supervisor itself; this is the summary.
            cancelled = sum(task.cancelled() for task in pending)
            logger.info(
                "%s: shutdown: %d background task(s) finished, %d cancelled",
                self._label(),
                len(pending) - cancelled,
                cancelled,
            )

    async def abort(self) -> None:
        """Cancel every task now and close the supervisor (the app failed)."""
        # Waiting ones first: a cancelled running one must not give them room.
        for task in self.supervisor.waiting + self.supervisor.active:
            task.cancel()

        self._stop.set()
        await self._closed.wait()

    def _label(self) -> str:
        return f"background tasks {self._name!r}" if self._name else "background tasks"

    def _grace(self) -> str:
        if self._shutdown_timeout is None:
            return "no time limit"

        return f"{self._shutdown_timeout:g} s"


class _RunState:
    __slots__ = ("lifespan_seen", "supervisor", "warned")

    def __init__(self) -> None:
        self.supervisor: BackgroundTasks | None = None
        self.lifespan_seen = False
        self.warned = False


class _InnerExit:
    """The wrapped app's lifespan call returned (``error is None``) or raised."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error


class BackgroundTasksMiddleware:
    """
    ASGI middleware that gives an app a :class:`~anyconc.BackgroundTasks` supervisor
    for the duration of its lifespan.

    At lifespan startup the middleware opens the supervisor, *then* passes startup on
    to the wrapped app: every :func:`~anyconc.create_background_task` made while the
    app runs -- by the app's own startup code, by any request handler (they run in
    other tasks than the lifespan; the supervisor is the owner for the whole event-loop
    run) -- belongs to it.

    At lifespan shutdown (the server has stopped accepting requests) the middleware
    first drains the supervisor: it stops accepting new tasks, waits up to
    ``shutdown_timeout`` seconds for the running ones, cancels the rest and waits for
    them (each cancellation, and a summary, is logged on the ``anyconc`` logger). Only
    *then* does it pass shutdown on to the wrapped app, so background tasks can still
    use what the app's lifespan opened (database pools, HTTP clients) while they
    finish. The order is thus: supervisor up, app startup, ..., supervisor drained, app
    shutdown.

    The supervisor is exposed:

    * in the lifespan ``state`` under ``state_key`` (``"background_tasks"`` by default),
      which servers copy into every request's scope (``request.state.background_tasks``
      in Starlette); ``state_key=None`` disables this;
    * as :attr:`supervisor`, and summarized by :meth:`status` (count, names and ages of
      the running tasks, see :func:`background_tasks_status`).

    Edge cases, decided here:

    * A wrapped app that does not support lifespan (it raises or returns on the
      lifespan scope without reading a message) does not disable the supervisor: the
      middleware completes startup and shutdown with the server itself.
    * The wrapped app's startup fails (``lifespan.startup.failed`` or an exception after
      reading the startup message): the supervisor's tasks are cancelled at once, then
      the failure is passed on to the server unchanged.
    * A server without lifespan support (e.g. ``uvicorn --lifespan off``, or Starlette's
      ``TestClient`` used without ``with``): the first request of the run logs a
      warning on the ``anyconc`` logger and requests go on; their background tasks go
      to the run-wide default supervisor, which cancels them (without a grace period)
      when the event loop ends. A log record rather than a :mod:`warnings` warning
      because it happens while serving a request: under ``-W error`` a warning would
      turn every request into a server error.
    * The middleware object holds no event-loop state: it can be created at import
      time and serve any number of event-loop runs, one after another, on any backend.
      Its supervisor is per run.

    Under load, ``limit`` and ``pending_limit`` bound the supervisor (see
    :class:`~anyconc.BackgroundTasks`): at most ``limit`` background tasks run, at most
    ``pending_limit`` wait, and then :func:`~anyconc.create_background_task` raises
    :exc:`~anyconc.BackgroundTasksFull`, which a handler turns into ``429 Too Many
    Requests``. The drain at shutdown covers the waiting tasks too. (Without lifespan
    support in the server, the run-wide default supervisor is used: it has no limits.)

    Example::

        app = BackgroundTasksMiddleware(starlette_app, shutdown_timeout=5.0)
        app = BackgroundTasksMiddleware(starlette_app, limit=50, pending_limit=500)

    :param app: the ASGI application to wrap
    :param shutdown_timeout: the grace period, in seconds, given to running background
        tasks at shutdown before they are cancelled (``None``: wait without limit)
    :param name: the supervisor's name (shown in logs and in :meth:`status`)
    :param state_key: key of the supervisor in the lifespan ``state``, or ``None``
    :param limit: the most background tasks running at once (``None``: no limit)
    :param pending_limit: the most background tasks waiting for room while ``limit``
        run (``None``: no limit); needs ``limit``
    :raises TypeError: if ``app`` is not callable, or an argument has the wrong type
    :raises ValueError: if ``shutdown_timeout`` is negative or NaN, a limit is less
        than 1, or ``pending_limit`` is given without ``limit``

    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
        name: str | None = None,
        state_key: str | None = DEFAULT_STATE_KEY,
        limit: int | None = None,
        pending_limit: int | None = None,
    ) -> None:
        where = "BackgroundTasksMiddleware()"
        check_callable(where, "app", app, expected="an ASGI application (a callable)")
        check_shutdown_timeout(where, shutdown_timeout)
        check_optional_str(where, "name", name)
        check_optional_str(where, "state_key", state_key)
        check_limits(limit, pending_limit, where)
        self.app = app
        self.shutdown_timeout = shutdown_timeout
        self.name = name
        self.state_key = state_key
        self.limit = limit
        self.pending_limit = pending_limit
        self._runs: PerRun[_RunState] = PerRun(_RunState)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.app!r}, "
            f"shutdown_timeout={self.shutdown_timeout!r}, name={self.name!r})"
        )

    @property
    def supervisor(self) -> BackgroundTasks | None:
        """
        The supervisor of the lifespan running in the current event-loop run, or
        ``None`` (no lifespan yet, lifespan over, or no lifespan support in the server).

        Outside any event-loop run (plain code, a worker thread), the supervisor of the
        latest run to use this middleware, in any thread, while its lifespan is open,
        else ``None``.
        """
        state: _RunState | None
        try:
            state = self._runs.get()
        except anyio.NoEventLoopError:
            state = self._runs.latest()

        return None if state is None else state.supervisor

    def status(self) -> BackgroundTasksStatus:
        """
        A JSON-ready snapshot of the running background tasks: count, names, ages.

        Without an open lifespan (see :attr:`supervisor`), it describes the current
        owner of background tasks instead (the run-wide default supervisor when the
        server has no lifespan support), see :func:`background_tasks_status`. Call it
        from inside the event-loop run.

        :return: see :func:`background_tasks_status`

        """
        return background_tasks_status(self.supervisor)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "lifespan":
            await self._lifespan(scope, receive, send)
            return

        if scope_type in ("http", "websocket"):
            run = self._runs.get()
            if run.supervisor is not None:
                if self.state_key is not None:
                    scope.setdefault("state", {}).setdefault(
                        self.state_key, run.supervisor
                    )
            elif not run.warned and not run.lifespan_seen:
                run.warned = True
                logger.warning(
                    "%r: the server did not run the ASGI lifespan protocol, so the "
                    "app's background tasks are not drained at shutdown: they go to "
                    "the run-wide default supervisor and are cancelled when the event "
                    "loop ends; enable lifespan in the server (e.g. uvicorn "
                    "--lifespan on) to drain them",
                    self,
                )

        result = self.app(scope, receive, send)
        # A plain function given as the app: say so, not "object NoneType can't be
        # used in 'await' expression".
        check_awaitable_result("BackgroundTasksMiddleware.__call__()", self.app, result)
        await result

    # -- lifespan -------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise RuntimeError(
                f"expected the ASGI message 'lifespan.startup', got {message['type']!r}"
            )

        run = self._runs.get()
        run.lifespan_seen = True
        await _Lifespan(self, run, scope, receive, send).run(message)


class _Ended:
    """
    A lifespan step ended the conversation: with ``error``, or cleanly (``None``);
    ``final``: the message still to send to the server (``lifespan.shutdown.complete``
    or the app's shutdown reply), sent by :meth:`_Lifespan.run` as its very last step.
    """

    __slots__ = ("error", "final")

    def __init__(self, error: Exception | None, final: Message | None = None) -> None:
        self.error = error
        self.final = final


class _Lifespan:
    """
    One ASGI lifespan conversation of :class:`BackgroundTasksMiddleware`, in three
    steps: :meth:`startup` (supervisor up, then the wrapped app's startup),
    :meth:`serve` (until the server's shutdown message, or the app's lifespan ends),
    :meth:`shutdown` (supervisor drained, then the app's shutdown). Each step returns
    an :class:`_Ended` when the conversation is over.

    The wrapped app's lifespan runs in a task of its own and talks to us through two
    streams: we decide when it sees each message (after the supervisor is up; after it
    is drained) and we see when it returns or raises. Exceptions are raised from
    :meth:`run` only after the task group has exited, so that the server gets the
    app's exception itself, not an exception group around it.

    The shutdown reply (``lifespan.shutdown.complete``, or the app's own) is sent last,
    after the task group has exited, with no checkpoint after it: a server may cancel
    the lifespan task as soon as it has it (hypercorn does, on asyncio), and nothing
    must be left to run then.
    """

    def __init__(
        self,
        middleware: BackgroundTasksMiddleware,
        run: _RunState,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self.middleware = middleware
        self.run_state = run
        self.scope = scope
        self.receive = receive
        self.send = send
        self.host = _SupervisorHost(
            name=middleware.name,
            shutdown_timeout=middleware.shutdown_timeout,
            limit=middleware.limit,
            pending_limit=middleware.pending_limit,
        )
        self.to_app_send, self.to_app_receive = anyio.create_memory_object_stream[
            Message
        ](1)
        self.from_app_send, self.from_app_receive = anyio.create_memory_object_stream[
            "Message | _InnerExit"
        ](math.inf)
        self.app_read = 0  # how many messages the app has asked for
        self.app_alive = False

    async def run(self, startup: Message) -> None:
        ended = _Ended(None)
        try:
            async with anyio.create_task_group() as task_group:
                try:
                    ended = await self._converse(task_group, startup)
                except Exception as exc:
                    # The server's receive() or send() raised (hypercorn raises from
                    # send() on a failed startup): stop everything, pass it on.
                    ended = _Ended(exc)
                    task_group.cancel_scope.cancel()
        except BaseExceptionGroup as exc_group:
            # An interrupt raised by the app's lifespan (carried out of its task, see
            # _tasks.Interrupted) reaches the server unwrapped (API.md rule 7).
            interrupt = find_interrupt(exc_group)
            if interrupt is None:
                raise

            raise interrupt from None
        finally:
            self.run_state.supervisor = None
            for stream in (
                self.to_app_send,
                self.from_app_receive,
                self.from_app_send,
                self.to_app_receive,
            ):
                stream.close()

        if ended.final is not None:
            await self.send(ended.final)  # the last step (see the class docstring)
        if ended.error is not None:
            raise ended.error

    async def _converse(self, task_group: AnyIOTaskGroup, startup: Message) -> _Ended:
        ended = await self.startup(task_group, startup)
        if ended is not None:
            return ended

        shutdown = await self.serve()
        if isinstance(shutdown, _Ended):
            return shutdown

        return await self.shutdown(shutdown)

    # -- the wrapped app's side --------------------------------------------------------

    async def _app_receive(self) -> Message:
        self.app_read += 1
        return await self.to_app_receive.receive()

    async def _app_send(self, message: Message) -> None:
        await self.from_app_send.send(message)

    async def _run_app(self) -> None:
        app_error: Exception | None = None
        try:
            app = self.middleware.app
            result = app(self.scope, self._app_receive, self._app_send)
            check_awaitable_result("BackgroundTasksMiddleware.__call__()", app, result)
            await result
        except Exception as exc:
            app_error = exc
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted
        finally:
            self.from_app_send.send_nowait(_InnerExit(app_error))

    async def _wait_app_exit(self) -> Exception | None:
        while True:
            item = await self.from_app_receive.receive()
            if isinstance(item, _InnerExit):
                return item.error

    # -- the three steps ---------------------------------------------------------------

    async def startup(
        self, task_group: AnyIOTaskGroup, message: Message
    ) -> _Ended | None:
        """Open the supervisor, then pass startup on to the app; ``None``: serving."""
        host = self.host
        supervisor = await host.start(task_group)
        self.run_state.supervisor = supervisor
        state = self.scope.get("state")
        key = self.middleware.state_key
        if key is not None and isinstance(state, MutableMapping):
            state[key] = supervisor

        task_group.start_soon(self._run_app, name="anyconc.asgi wrapped lifespan")
        await self.to_app_send.send(message)
        reply = await self.from_app_receive.receive()
        self.app_alive = True
        if isinstance(reply, _InnerExit):
            self.app_alive = False
            if reply.error is not None and self.app_read > 0:
                # Startup failed by raising: fail the same way, cleaned up.
                await host.abort()
                return _Ended(reply.error)

            # No lifespan support in the wrapped app: we do the protocol.
            logger.debug(
                "%r: the wrapped app does not support lifespan (%r); "
                "the middleware completes the lifespan protocol alone",
                self.middleware,
                reply.error,
            )
            reply = {"type": "lifespan.startup.complete"}
        elif reply["type"] != "lifespan.startup.complete":
            # lifespan.startup.failed: nothing will run, cancel at once.
            await host.abort()
            await self.send(reply)
            return _Ended(await self._wait_app_exit())

        await self.send(reply)
        return None

    async def serve(self) -> Message | _Ended:
        """
        Wait for the server's shutdown message, or for the wrapped app's lifespan to
        end on its own; return the shutdown message.
        """
        shutdown: Message | None = None
        error: Exception | None = None
        async with anyio.create_task_group() as waiters:

            async def wait_server() -> None:
                nonlocal shutdown
                shutdown = await self.receive()
                waiters.cancel_scope.cancel()

            waiters.start_soon(wait_server)
            if self.app_alive:
                error = await self._wait_app_exit()
                self.app_alive = False
                waiters.cancel_scope.cancel()

        if error is not None:
            # The app's lifespan crashed while serving: stop now.
            await self.host.abort()
            return _Ended(error)

        if shutdown is None:
            # The wrapped app ended its lifespan early, cleanly: keep the supervisor
            # until the server shuts down.
            shutdown = await self.receive()

        if shutdown["type"] != "lifespan.shutdown":
            await self.host.abort()
            return _Ended(
                RuntimeError(
                    f"expected the ASGI message 'lifespan.shutdown', "
                    f"got {shutdown['type']!r}"
                )
            )

        return shutdown

    async def shutdown(self, message: Message) -> _Ended:
        """
        Drain the supervisor, then pass shutdown on to the app; the reply to the server
        is left to :meth:`run` (``_Ended.final``).
        """
        await self.host.drain()
        complete: Message = {"type": "lifespan.shutdown.complete"}
        if not self.app_alive:
            return _Ended(None, complete)

        await self.to_app_send.send(message)
        reply = await self.from_app_receive.receive()
        if isinstance(reply, _InnerExit):
            if reply.error is not None:
                return _Ended(reply.error)

            return _Ended(None, complete)

        # The app's reply goes to the server once the app's lifespan has returned.
        return _Ended(await self._wait_app_exit(), reply)


@asynccontextmanager
async def _draining(host: _SupervisorHost) -> AsyncIterator[None]:
    # Drain at a normal exit; on an error or a cancellation, cancel everything at once
    # (shielded: it is bounded, the tasks are cancelled) before the error goes on.
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            await host.abort()

        raise

    await host.drain()


def background_tasks_lifespan(
    lifespan: Lifespan | None = None,
    *,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    name: str | None = None,
    state_key: str | None = DEFAULT_STATE_KEY,
    limit: int | None = None,
    pending_limit: int | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """
    Make a Starlette-style ``lifespan=`` callable that owns the app's background tasks.

    The same semantics as :class:`BackgroundTasksMiddleware`, for frameworks that take
    a lifespan context manager factory (Starlette, FastAPI, ...) rather than a
    middleware. Order: the supervisor is opened, then ``lifespan`` (if given) is
    entered; at shutdown the supervisor is drained (stop accepting, wait up to
    ``shutdown_timeout``, cancel the rest), then ``lifespan`` is exited. The lifespan
    state is ``lifespan``'s state (a mapping or ``None``) plus the supervisor under
    ``state_key``; frameworks copy it into every request (``request.state``).

    If the server stops the lifespan with an error or a cancellation, the supervisor's
    tasks are cancelled at once, without a grace period, before ``lifespan`` exits.

    Example::

        @asynccontextmanager
        async def lifespan(app):
            async with httpx.AsyncClient() as client:
                yield {"client": client}

        app = Starlette(
            routes=routes,
            lifespan=background_tasks_lifespan(lifespan, shutdown_timeout=5.0),
        )

    :param lifespan: the app's own lifespan factory, wrapped by the supervisor
    :param shutdown_timeout: the grace period, in seconds, given to running background
        tasks at shutdown before they are cancelled (``None``: wait without limit)
    :param name: the supervisor's name (shown in logs and in the status)
    :param state_key: key of the supervisor in the lifespan state, or ``None``
    :param limit: the most background tasks running at once (``None``: no limit)
    :param pending_limit: the most background tasks waiting for room while ``limit``
        run (``None``: no limit); needs ``limit``
    :return: a lifespan factory: ``app -> async context manager yielding the state``
    :raises TypeError: if ``lifespan`` is not callable or is an async (generator)
        function not decorated with :func:`contextlib.asynccontextmanager`, or an
        argument has the wrong type; at startup, if ``lifespan(app)`` returned something
        else than an async context manager
    :raises ValueError: if ``shutdown_timeout`` is negative or NaN, a limit is less
        than 1, or ``pending_limit`` is given without ``limit``

    """
    where = "background_tasks_lifespan()"
    if lifespan is not None:
        check_callable(
            where,
            "lifespan",
            lifespan,
            expected="a function returning an async context manager, or None",
        )
        if inspect.isasyncgenfunction(lifespan) or inspect.iscoroutinefunction(
            lifespan
        ):
            # Its call returns an async generator or a coroutine, which ``async
            # with`` cannot enter: said now, not at the server's startup.
            kind = (
                "async generator" if inspect.isasyncgenfunction(lifespan) else "async"
            )
            raise TypeError(
                f"{where} argument 'lifespan' must be a function returning an async "
                f"context manager, or None, got the {kind} function "
                f"{callable_name(lifespan)!r}; decorate it with "
                f"@contextlib.asynccontextmanager"
            )
    check_shutdown_timeout(where, shutdown_timeout)
    check_optional_str(where, "name", name)
    check_optional_str(where, "state_key", state_key)
    check_limits(limit, pending_limit, where)

    def make_state(
        inner: Mapping[str, Any] | None, supervisor: BackgroundTasks
    ) -> dict[str, Any]:
        state = dict(inner) if inner is not None else {}
        if state_key is not None:
            state[state_key] = supervisor

        return state

    @asynccontextmanager
    async def app_lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        # Exceptions are re-raised after the task group has exited, so the framework
        # sees the original exception rather than an exception group around it.
        error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            host = _SupervisorHost(
                name=name,
                shutdown_timeout=shutdown_timeout,
                limit=limit,
                pending_limit=pending_limit,
            )
            supervisor = await host.start(task_group)
            try:
                if lifespan is None:
                    async with _draining(host):
                        yield make_state(None, supervisor)
                else:
                    manager = lifespan(app)
                    if not (
                        hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")
                    ):
                        close_unstarted([manager])
                        raise TypeError(
                            f"{where}: {callable_name(lifespan)!r} returned "
                            f"{type(manager).__qualname__}, not an async context "
                            f"manager; decorate it with @contextlib.asynccontextmanager"
                        )
                    async with manager as inner_state, _draining(host):
                        yield make_state(inner_state, supervisor)
            except Exception as exc:
                error = exc
            finally:
                # A no-op after a drain; otherwise (the app's lifespan failed to
                # start, say) the tasks must not keep the task group open.
                with anyio.CancelScope(shield=True):
                    await host.abort()

        if error is not None:
            raise error

    return app_lifespan
