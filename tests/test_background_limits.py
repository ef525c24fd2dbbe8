"""BackgroundTasks(limit=, pending_limit=): bounded background work, on every backend."""

from __future__ import annotations

import contextvars
import gc
import inspect
import logging
import random
import sys
from collections.abc import Coroutine
from typing import Any

import anyio
import pytest

from anyconc import (
    BackgroundTask,
    BackgroundTasks,
    BackgroundTasksFull,
    TaskCancelled,
    TaskNotFinished,
    create_background_task,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class Probe:
    """
    Measures, from inside the tasks, how many run at once and in which order.

    Tasks given room in the same step may take their first step in any order (trio
    shuffles its run queue on purpose), so arrival order is checked as the gate keeps
    it: when a task starts, no task that arrived before it is still waiting
    (``out_of_order``); with ``limit=1`` the start order itself is the arrival order.
    """

    def __init__(self, supervisor: BackgroundTasks | None = None) -> None:
        self.supervisor = supervisor
        self.arrival: dict[BackgroundTask[Any], int] = {}
        self.out_of_order: list[tuple[object, object]] = []
        self.running = 0
        self.peak = 0
        self.started: list[object] = []
        self.finished: list[object] = []
        self.gates: dict[object, anyio.Event] = {}

    def create(self, key: int, checkpoints: int = 0) -> BackgroundTask[object]:
        assert self.supervisor is not None
        task = self.supervisor.create_task(self.job(key, checkpoints))
        self.arrival[task] = key
        return task

    def _started(self, key: object) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(key)
        if self.supervisor is not None:
            for task in self.supervisor.waiting:
                earlier = self.arrival.get(task)
                if earlier is not None and isinstance(key, int) and earlier < key:
                    self.out_of_order.append((key, earlier))

    async def job(self, key: object, checkpoints: int = 0) -> object:
        self._started(key)
        try:
            for _ in range(checkpoints):
                await anyio.sleep(0)
            return key
        finally:
            self.running -= 1
            self.finished.append(key)

    async def held(self, key: object) -> object:
        """A job that runs until ``release(key)``."""
        gate = self.gates[key] = anyio.Event()
        self._started(key)
        try:
            await gate.wait()
            return key
        finally:
            self.running -= 1
            self.finished.append(key)

    def release(self, key: object) -> None:
        self.gates[key].set()

    async def release_all(self) -> None:
        """Release every held job, those that start meanwhile included."""
        while any(not gate.is_set() for gate in self.gates.values()):
            for gate in self.gates.values():
                gate.set()
            await anyio.wait_all_tasks_blocked()


def closed(coro: Coroutine[Any, Any, Any]) -> bool:
    return inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_concurrency_never_exceeds_the_limit_and_arrival_order_is_kept() -> None:
    rng = random.Random(20)
    async with BackgroundTasks(name="app", limit=7) as tasks:
        probe = Probe(tasks)
        handles = [probe.create(i, rng.randrange(0, 6)) for i in range(200)]
        assert len(tasks.active) == 7
        assert len(tasks.waiting) == 193
        assert tasks.waiting == tuple(handles[7:])

    assert probe.peak == 7
    assert sorted(probe.started) == list(range(200))  # type: ignore[type-var]
    assert probe.out_of_order == []
    assert [h.result() for h in handles] == list(range(200))
    assert len(tasks.active) == len(tasks.waiting) == 0


async def test_with_limit_one_tasks_start_in_arrival_order() -> None:
    rng = random.Random(1)
    async with BackgroundTasks(limit=1) as tasks:
        probe = Probe(tasks)
        for i in range(100):
            probe.create(i, rng.randrange(0, 4))

    assert probe.started == list(range(100))
    assert probe.peak == 1


async def test_a_waiting_task_has_not_started() -> None:
    probe = Probe()
    async with BackgroundTasks(limit=1) as tasks:
        first = tasks.create_task(probe.held("first"))
        coro = probe.job("second")
        second = tasks.create_task(coro, name="second")
        await anyio.wait_all_tasks_blocked()

        assert probe.started == ["first"]
        assert isinstance(second, BackgroundTask)
        assert second.waiting() and not first.waiting()
        assert not second.done() and not second.cancelled()
        assert inspect.getcoroutinestate(coro) == "CORO_CREATED"
        with pytest.raises(TaskNotFinished):
            second.result()
        assert tasks.active == (first,)
        assert tasks.waiting == (second,)

        probe.release("first")
        assert await second == "second"
        assert not second.waiting()

    assert probe.started == ["first", "second"]


async def test_cancelling_a_waiting_task_closes_it_and_frees_its_place() -> None:
    probe = Probe()
    callbacks: list[bool] = []
    async with BackgroundTasks(limit=1, pending_limit=2) as tasks:
        tasks.create_task(probe.held("running"))
        coro = probe.job("cancelled")
        doomed = tasks.create_task(coro)
        doomed.add_done_callback(lambda task: callbacks.append(task.cancelled()))
        tasks.create_task(probe.job("kept"))
        assert tasks.waiting == (doomed, tasks.waiting[1])

        assert doomed.cancel() is True
        # It left the line at once: its place is free for another task.
        assert doomed not in tasks.waiting and not doomed.waiting()
        late = tasks.create_task(probe.job("late"))
        await doomed.wait()
        assert doomed.cancelled() and doomed.cancel() is False
        assert closed(coro)
        with pytest.raises(TaskCancelled):
            await doomed
        assert callbacks == [True]
        probe.release("running")
        assert await late == "late"

    gc.collect()  # a leaked coroutine would warn here (warnings are errors)
    assert probe.started == ["running", "kept", "late"]
    assert probe.peak == 1


async def test_full_waiting_room_raises_and_closes_the_coroutine() -> None:
    probe = Probe()
    async with BackgroundTasks(name="mailer", limit=2, pending_limit=3) as tasks:
        for i in range(5):
            tasks.create_task(probe.held(i))
        await anyio.wait_all_tasks_blocked()

        coro = probe.job("rejected")
        with pytest.raises(BackgroundTasksFull) as info:
            tasks.create_task(coro)
        assert isinstance(info.value, RuntimeError)
        assert str(info.value) == (
            "the background tasks supervisor 'mailer' is full: 2 running (limit=2) "
            "and 3 waiting (pending_limit=3); try again later, or await spawn() to "
            "wait for room"
        )
        assert closed(coro)

        # create_background_task() goes to the same owner, and fails the same way.
        coro = probe.job("rejected too")
        with pytest.raises(BackgroundTasksFull):
            create_background_task(coro)
        assert closed(coro)

        probe.release(0)  # one finishes, one waiting task starts: one place is free
        await anyio.wait_all_tasks_blocked()
        assert sorted(probe.started[:2]) == [0, 1]  # type: ignore[type-var]
        assert probe.started[2:] == [2]
        accepted = create_background_task(probe.job("accepted"))
        assert accepted.waiting()
        with pytest.raises(BackgroundTasksFull):
            tasks.create_task(probe.job("full again"))
        await probe.release_all()

    assert sorted(probe.started[:5]) == [0, 1, 2, 3, 4]  # type: ignore[type-var]
    assert probe.started[5:] == ["accepted"]
    assert probe.peak == 2


async def test_spawn_waits_for_room_and_callers_are_woken_in_order() -> None:
    probe = Probe()
    returned: list[str] = []
    async with BackgroundTasks(limit=1, pending_limit=1) as tasks:
        tasks.create_task(probe.held("a"))
        tasks.create_task(probe.held("b"))  # waits: the supervisor is full

        async def producer(key: str) -> None:
            await tasks.spawn(probe.held(key), name=key)
            returned.append(key)

        async with anyio.create_task_group() as producers:
            for key in ("p1", "p2", "p3"):
                producers.start_soon(producer, key)
                await anyio.wait_all_tasks_blocked()
            assert returned == []

            # While producers wait, a plain create_task cannot jump the line.
            coro = probe.job("sneaky")
            with pytest.raises(BackgroundTasksFull):
                tasks.create_task(coro)
            assert closed(coro)

            expected_returned: list[str] = []
            for finishing, admitted in (("a", "p1"), ("b", "p2"), ("p1", "p3")):
                probe.release(finishing)
                await anyio.wait_all_tasks_blocked()
                expected_returned.append(admitted)
                assert returned == expected_returned
            await probe.release_all()

    assert probe.started == ["a", "b", "p1", "p2", "p3"]
    assert probe.peak == 1


async def test_spawn_never_waits_without_pending_limit() -> None:
    probe = Probe()
    async with BackgroundTasks(limit=1) as tasks:
        handles = [await tasks.spawn(probe.held(i)) for i in range(10)]
        assert [h.waiting() for h in handles] == [False] + [True] * 9
        await probe.release_all()

    assert probe.started == list(range(10))


async def test_spawn_cancelled_while_waiting_leaks_nothing() -> None:
    probe = Probe()
    async with BackgroundTasks(limit=1, pending_limit=1) as tasks:
        tasks.create_task(probe.held("a"))
        tasks.create_task(probe.held("b"))
        coro = probe.job("given up")
        outcome: list[str] = []

        scope = anyio.CancelScope()

        async def impatient() -> None:
            with scope:
                await tasks.spawn(coro)
                outcome.append("spawned")
            outcome.append("gave up")

        async def patient() -> None:
            await tasks.spawn(probe.held("patient"))
            outcome.append("patient spawned")

        async with anyio.create_task_group() as group:
            group.start_soon(impatient)
            await anyio.wait_all_tasks_blocked()
            group.start_soon(patient)
            await anyio.wait_all_tasks_blocked()
            # The impatient call gives up; its place in the line passes on.
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert outcome == ["gave up"]
            assert closed(coro)
            probe.release("a")

        assert outcome == ["gave up", "patient spawned"]
        await probe.release_all()

    gc.collect()
    assert probe.started == ["a", "b", "patient"]


async def test_spawn_cancelled_just_as_room_frees_passes_the_room_on() -> None:
    # The room is handed to the first spawn() and that call is cancelled in the same
    # step: it either got its task in (trio: the wake-up won) or closed its coroutine
    # and passed the room on (asyncio: the cancellation won). Nothing is lost either
    # way, and the second caller gets in.
    probe = Probe()
    async with BackgroundTasks(limit=1, pending_limit=1) as tasks:
        tasks.create_task(probe.held("a"))
        waiting = tasks.create_task(probe.job("waiting"))
        first_coro = probe.held("first")
        results: dict[str, object] = {}

        async def first(scope: anyio.CancelScope) -> None:
            with scope:
                results["first"] = await tasks.spawn(first_coro)

        async def second() -> None:
            results["second"] = await tasks.spawn(probe.held("second"))

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as group:
            group.start_soon(first, scope)
            await anyio.wait_all_tasks_blocked()
            group.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            waiting.cancel()  # frees one place: handed to first()...
            scope.cancel()  # ...which is cancelled before it resumes
            await anyio.wait_all_tasks_blocked()
            await probe.release_all()  # room for second() in any case

        assert "second" in results
        if "first" in results:
            assert isinstance(results["first"], BackgroundTask)
        else:
            assert closed(first_coro)
        await probe.release_all()

    gc.collect()
    assert probe.peak == 1
    assert "waiting" not in probe.started


async def test_spawn_on_a_supervisor_that_is_not_active() -> None:
    async def job() -> None:
        pass

    supervisor = BackgroundTasks(limit=1, pending_limit=1)
    coro = job()
    with pytest.raises(RuntimeError, match="not accepting new tasks"):
        await supervisor.spawn(coro)
    assert closed(coro)
    with pytest.raises(TypeError, match=r"call it: spawn\("):
        await supervisor.spawn(job)  # type: ignore[arg-type]


async def test_spawn_in_a_cancelled_scope_closes_the_coroutine() -> None:
    probe = Probe()
    async with BackgroundTasks(limit=1, pending_limit=1) as tasks:
        coro = probe.job("never")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await tasks.spawn(coro)
        assert scope.cancelled_caught
        assert closed(coro)
        assert tasks.active == () and tasks.waiting == ()

    assert probe.started == []


async def test_drain_at_exit_starts_the_waiting_tasks() -> None:
    async with BackgroundTasks(limit=2, shutdown_timeout=None) as tasks:
        probe = Probe(tasks)
        handles = [probe.create(i, checkpoints=3) for i in range(10)]
        assert len(tasks.waiting) == 8

    assert sorted(probe.started) == list(range(10))  # type: ignore[type-var]
    assert probe.out_of_order == []
    assert probe.peak == 2
    assert all(h.done() and not h.cancelled() for h in handles)


@pytest.mark.virtual_time  # a real 0.3 s deadline could pass before "quick" ends
async def test_drain_deadline_cancels_running_and_waiting_alike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = Probe()
    cancelled_running: list[str] = []

    async def forever(key: str) -> None:
        probe.started.append(key)
        try:
            await anyio.sleep_forever()
        finally:
            cancelled_running.append(key)

    with caplog.at_level(logging.WARNING, logger="anyconc"):
        async with BackgroundTasks(name="app", limit=2, shutdown_timeout=0.3) as tasks:
            quick = tasks.create_task(probe.job("quick", checkpoints=2), name="quick")
            stuck = tasks.create_task(forever("stuck"), name="stuck")
            starts_in_drain = tasks.create_task(forever("late"), name="late")
            coro = probe.job("never")
            never = tasks.create_task(coro, name="never")
            assert tasks.waiting == (starts_in_drain, never)

    # "late" started in the drain when "quick" finished; at the deadline, the running
    # ones were cancelled and "never" was closed without having run.
    assert sorted(probe.started[:2]) == ["quick", "stuck"]  # type: ignore[type-var]
    assert probe.started[2:] == ["late"]
    assert sorted(cancelled_running) == ["late", "stuck"]
    assert quick.result() == "quick"
    assert stuck.cancelled() and starts_in_drain.cancelled() and never.cancelled()
    assert closed(coro)
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    assert messages == [
        f"cancelling background task {name!r} at shutdown of 'app'"
        for name in ("stuck", "late", "never")
    ]


async def test_cancelled_host_cancels_waiting_tasks_at_once() -> None:
    probe = Probe()
    coros = [probe.job(i) for i in range(3)]
    with anyio.CancelScope() as scope:
        async with BackgroundTasks(limit=1, shutdown_timeout=1000) as tasks:
            running = tasks.create_task(probe.held("running"))
            waiting = [tasks.create_task(coro) for coro in coros]
            await anyio.wait_all_tasks_blocked()
            scope.cancel()

    assert probe.started == ["running"]
    assert running.cancelled()
    assert all(task.cancelled() for task in waiting)
    assert all(closed(coro) for coro in coros)


def _is_interrupt(exc: BaseException) -> bool:
    # The body's interrupt, bare or in a group around it (how the body's exception
    # is passed through is the task group's business, not the limit gate's).
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_interrupt(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


async def test_interrupt_skips_the_drain_for_waiting_tasks_too() -> None:
    probe = Probe()
    coros = [probe.job(i) for i in range(3)]
    with pytest.raises(BaseException) as info:  # noqa: PT011
        async with BackgroundTasks(limit=1, shutdown_timeout=1000) as tasks:
            running = tasks.create_task(probe.held("running"))
            waiting = [tasks.create_task(coro) for coro in coros]
            await anyio.wait_all_tasks_blocked()
            raise KeyboardInterrupt

    assert _is_interrupt(info.value)
    assert probe.started == ["running"]  # no drain: nothing waiting ever started
    assert running.cancelled()
    assert all(task.cancelled() for task in waiting)
    assert all(closed(coro) for coro in coros)


async def test_a_body_exception_still_drains_the_waiting_tasks() -> None:
    probe = Probe()
    with pytest.raises(BaseException) as info:  # noqa: PT011
        async with BackgroundTasks(limit=1) as tasks:
            for i in range(4):
                tasks.create_task(probe.job(i, checkpoints=1))
            raise LookupError("body")

    assert isinstance(info.value, LookupError) or info.group_contains(LookupError)
    assert probe.started == [0, 1, 2, 3]


_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def test_a_waiting_task_runs_in_the_context_of_its_creation() -> None:
    seen: list[str] = []

    async def job() -> None:
        seen.append(_request_id.get())
        await anyio.sleep(0)

    async with BackgroundTasks(limit=1) as tasks:
        for request in ("r1", "r2", "r3"):
            _request_id.set(request)
            tasks.create_task(job())
        _request_id.set("later")

    assert seen == ["r1", "r2", "r3"]


async def test_async_with_a_waiting_task_closes_it_at_exit() -> None:
    probe = Probe()
    async with BackgroundTasks(limit=1) as tasks:
        tasks.create_task(probe.held("running"))
        coro = probe.job("bound")
        async with tasks.create_task(coro) as bound:
            assert bound.waiting()
        assert bound.cancelled() and closed(coro)
        probe.release("running")

    assert probe.started == ["running"]


LIMITED = BackgroundTasks(name="module", limit=2, pending_limit=2)  # import time


def test_a_limited_supervisor_is_run_portable() -> None:
    async def main() -> list[object]:
        probe = Probe()
        async with LIMITED as tasks:
            for i in range(4):
                tasks.create_task(probe.job(i, checkpoints=2))
            with pytest.raises(BackgroundTasksFull):
                tasks.create_task(probe.job("x"))
        return [probe.peak, sorted(probe.started)]  # type: ignore[type-var]

    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(main, backend=backend) == [2, [0, 1, 2, 3]], backend


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"limit": "3"},
            TypeError,
            "BackgroundTasks() argument 'limit' must be a positive integer or None, "
            "got str '3'",
        ),
        (
            {"limit": 2.0},
            TypeError,
            "BackgroundTasks() argument 'limit' must be a positive integer or None, "
            "got float 2.0",
        ),
        (
            {"limit": True},
            TypeError,
            "BackgroundTasks() argument 'limit' must be a positive integer or None, "
            "got bool True",
        ),
        (
            {"limit": 0},
            ValueError,
            "BackgroundTasks() argument 'limit' must be a positive integer or None, "
            "got 0",
        ),
        (
            {"limit": 1, "pending_limit": -1},
            ValueError,
            "BackgroundTasks() argument 'pending_limit' must be a positive integer or "
            "None, got -1",
        ),
        (
            {"limit": 1, "pending_limit": False},
            TypeError,
            "BackgroundTasks() argument 'pending_limit' must be a positive integer or "
            "None, got bool False",
        ),
        (
            {"pending_limit": 10},
            ValueError,
            "BackgroundTasks() argument 'pending_limit' must be None when 'limit' is "
            "None, got 10: pending_limit needs limit (without limit every task starts "
            "at once and none waits); set limit too, or leave pending_limit None",
        ),
    ],
)
def test_bad_limits(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        BackgroundTasks(**kwargs)
    assert str(info.value) == message


def test_limits_are_kept_on_the_supervisor() -> None:
    supervisor = BackgroundTasks(limit=3, pending_limit=4)
    assert (supervisor.limit, supervisor.pending_limit) == (3, 4)
    assert (BackgroundTasks().limit, BackgroundTasks().pending_limit) == (None, None)


# -- anyconc.asgi: the limits passed through, and the status --------------------------


async def test_middleware_limits_the_app_supervisor_and_reports_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from anyconc.asgi import BackgroundTasksMiddleware, background_tasks_status
    from test_asgi import raw_app, request, serving

    probe = Probe()
    answers: list[str] = []

    async def handler(scope: dict[str, Any]) -> None:
        key = f"n{len(answers)}"
        try:
            create_background_task(probe.held(key) if not answers else probe.job(key))
        except BackgroundTasksFull:
            answers.append("full")
        else:
            answers.append("queued")

    middleware = BackgroundTasksMiddleware(
        raw_app([], handler), name="web", limit=1, pending_limit=1
    )
    assert (middleware.limit, middleware.pending_limit) == (1, 1)
    with caplog.at_level(logging.INFO, logger="anyconc"):
        async with serving(middleware) as server:
            assert await server.startup() == "lifespan.startup.complete"
            supervisor = middleware.supervisor
            assert supervisor is not None
            assert (supervisor.limit, supervisor.pending_limit) == (1, 1)
            for _ in range(3):
                await request(middleware, state=server.state)
            assert answers == ["queued", "queued", "full"]

            status = background_tasks_status(supervisor)
            assert middleware.status()["waiting_tasks"] == 1
            assert status["active_tasks"] == 1 and status["waiting_tasks"] == 1
            assert (status["limit"], status["pending_limit"]) == (1, 1)
            assert [t["name"] for t in status["tasks"]] == ["Probe.held"]

            await anyio.wait_all_tasks_blocked()
            probe.release("n0")
            # The drain at shutdown starts the waiting task and waits for it.
            assert await server.shutdown() == "lifespan.shutdown.complete"

    assert probe.started == ["n0", "n1"]
    assert probe.finished == ["n0", "n1"]


async def test_lifespan_helper_drains_waiting_tasks_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from anyconc.asgi import background_tasks_lifespan, background_tasks_status

    probe = Probe()
    lifespan = background_tasks_lifespan(name="web", limit=2, pending_limit=2)
    with caplog.at_level(logging.INFO, logger="anyconc"):
        async with lifespan(None) as state:
            supervisor = state["background_tasks"]
            for i in range(4):
                create_background_task(probe.job(i, checkpoints=2))
            with pytest.raises(BackgroundTasksFull):
                create_background_task(probe.job("refused"))
            status = background_tasks_status(supervisor)
            assert (status["active_tasks"], status["waiting_tasks"]) == (2, 2)

    assert sorted(probe.started) == [0, 1, 2, 3]  # type: ignore[type-var]
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    assert messages == [
        "background tasks 'web': shutdown: waiting up to 10 s for 2 running and 2 "
        "waiting background task(s)",
        "background tasks 'web': shutdown: 4 background task(s) finished, 0 cancelled",
    ]


def test_asgi_helpers_validate_the_limits() -> None:
    from anyconc.asgi import BackgroundTasksMiddleware, background_tasks_lifespan

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(ValueError, match="pending_limit needs limit"):
        BackgroundTasksMiddleware(app, pending_limit=5)
    with pytest.raises(
        TypeError,
        match=r"BackgroundTasksMiddleware\(\) argument 'limit' must be a positive "
        r"integer or None, got bool",
    ):
        BackgroundTasksMiddleware(app, limit=True)
    with pytest.raises(ValueError, match="pending_limit needs limit"):
        background_tasks_lifespan(pending_limit=5)
    with pytest.raises(
        ValueError,
        match=r"background_tasks_lifespan\(\) argument 'limit' must be a positive "
        r"integer or None, got 0",
    ):
        background_tasks_lifespan(limit=0)
