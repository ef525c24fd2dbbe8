# mypy: disable-error-code="comparison-overlap,unreachable"
# (mypy keeps narrowing a property such as `.state` across awaits that change it.)
from __future__ import annotations

import contextvars
import inspect
import logging
import re
import sys
import threading
import warnings
from typing import Any

import anyio
import pytest

import anyconc
from anyconc import (
    BackgroundTask,
    BackgroundTasks,
    TaskCancelled,
    create_background_task,
)
from anyconc.asgi import background_tasks_status


async def test_returns_at_once_and_outlives_the_caller() -> None:
    sent: list[str] = []
    handles: list[BackgroundTask[str]] = []
    # (an event, not a short sleep: a 10 ms sleep could end before the handler's task
    # group does on a loaded machine)
    go = anyio.Event()

    async def send_email(to: str) -> str:
        await go.wait()
        sent.append(to)
        return "sent"

    async def handler() -> dict[str, str]:
        handles.append(create_background_task(send_email("ada@example.com")))
        return {"status": "ok"}

    # The handler's task group is gone before the email is sent (a safety net: a task
    # group that waited for the background task would wait for ``go`` forever).
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(handler)

    assert sent == []
    assert not handles[0].done()
    go.set()
    assert await handles[0] == "sent"
    assert sent == ["ada@example.com"]


async def test_cancel_before_the_task_started() -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("ran")

    task = create_background_task(job())
    assert task.cancel() is True
    await task.wait()
    assert task.cancelled()
    assert ran == []


async def test_handle_surface() -> None:
    gate = anyio.Event()

    async def job() -> int:
        await gate.wait()
        return 42

    task = create_background_task(job(), name="answer")
    assert isinstance(task, BackgroundTask)
    assert isinstance(task, anyconc.Task)
    assert task.name == "answer"
    assert not task.done()
    with pytest.raises(anyconc.TaskNotFinished):
        task.result()
    gate.set()
    assert await task == 42
    assert task.done() and not task.cancelled()
    assert task.result() == 42
    assert task.exception() is None


async def test_cancel_a_background_task() -> None:
    cleaned = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()

    task = create_background_task(forever())
    await anyio.wait_all_tasks_blocked()
    assert task.cancel() is True
    await task.wait()
    assert cleaned.is_set()
    assert task.cancelled()
    assert task.cancel() is False
    with pytest.raises(TaskCancelled):
        task.result()
    with pytest.raises(TaskCancelled):
        await task


async def test_failure_is_kept_on_the_handle_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom() -> None:
        raise ValueError("lost email")

    async def fine() -> str:
        await anyio.sleep(0)
        return "fine"

    with caplog.at_level(logging.ERROR, logger="anyconc"):
        failing = create_background_task(boom(), name="boom")
        sibling = create_background_task(fine())
        assert await sibling == "fine"
        await failing.wait()

    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert records[0].getMessage() == "background task 'boom' failed"
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ValueError)
    assert isinstance(failing.exception(), ValueError)
    # the supervisor is unharmed: it still runs tasks
    assert await create_background_task(fine()) == "fine"


async def test_failure_retrieved_by_an_awaiter_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom() -> None:
        await anyio.sleep(0)
        raise ValueError("seen")

    with caplog.at_level(logging.ERROR, logger="anyconc"):
        task = create_background_task(boom())
        with pytest.raises(ValueError, match="seen") as info:
            await task

    assert info.value is task.exception()
    assert [r for r in caplog.records if r.name == "anyconc"] == []


async def test_failure_retrieved_by_a_done_callback_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[BaseException | None] = []

    async def boom() -> None:
        await anyio.sleep(0)
        raise ValueError("cb")

    with caplog.at_level(logging.ERROR, logger="anyconc"):
        task = create_background_task(boom())
        task.add_done_callback(lambda t: seen.append(t.exception()))
        await anyio.wait_all_tasks_blocked()
        while not task.done():
            await anyio.sleep(0)

    assert [str(e) for e in seen] == ["cb"]
    assert [r for r in caplog.records if r.name == "anyconc"] == []


async def test_context_manager_cancels_and_awaits_at_exit() -> None:
    events: list[str] = []

    async def job() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("job cleaned up")

    async with create_background_task(job()) as task:
        await anyio.wait_all_tasks_blocked()
        events.append("block")

    assert events == ["block", "job cleaned up"]
    assert task.cancelled()


async def test_context_manager_raises_the_tasks_own_failure() -> None:
    async def boom() -> None:
        raise KeyError("job")

    with pytest.raises(KeyError, match="job"):
        async with create_background_task(boom()):
            await anyio.sleep(0.01)


async def test_context_manager_does_not_mask_the_blocks_exception() -> None:
    async def boom() -> None:
        raise KeyError("job")

    with pytest.raises(RuntimeError, match="block"):
        async with create_background_task(boom()):
            await anyio.sleep(0.01)
            raise RuntimeError("block")


async def test_context_manager_exit_under_cancellation_still_waits() -> None:
    cleaned = anyio.Event()

    async def job() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0)
            cleaned.set()

    with anyio.CancelScope() as scope:
        async with create_background_task(job()) as task:
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            await anyio.sleep_forever()

    assert cleaned.is_set()
    assert task.cancelled()


async def test_background_tasks_owns_create_background_task() -> None:
    async def job() -> int:
        await anyio.sleep(0)
        return 1

    async with BackgroundTasks(name="outer") as outer:
        first = create_background_task(job())
        assert outer.active == (first,)
        async with BackgroundTasks(name="inner") as inner:
            second = create_background_task(job())
            assert inner.active == (second,)
            assert outer.active == (first,)
        third = create_background_task(job())
        assert third in outer.active

    assert outer.active == ()
    assert [first.result(), second.result(), third.result()] == [1, 1, 1]


async def test_ownership_reaches_other_tasks_of_the_run() -> None:
    owner_seen: list[bool] = []
    gate = anyio.Event()

    async def handler(tasks: BackgroundTasks) -> None:
        task = create_background_task(gate.wait())
        owner_seen.append(task in tasks.active)

    async with BackgroundTasks() as tasks:
        async with anyio.create_task_group() as group:
            group.start_soon(handler, tasks)
        gate.set()

    assert owner_seen == [True]


@pytest.mark.virtual_time
async def test_shutdown_waits_up_to_the_timeout_then_cancels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []

    async def job(name: str, duration: float) -> None:
        try:
            await anyio.sleep(duration)
            finished.append(name)
        except anyio.get_cancelled_exc_class():
            finished.append(f"{name} cancelled at {anyio.current_time() - start}")
            raise

    start = anyio.current_time()
    with caplog.at_level(logging.WARNING, logger="anyconc"):
        async with BackgroundTasks(name="app", shutdown_timeout=5) as tasks:
            tasks.create_task(job("short", 3))
            long = tasks.create_task(job("long", 60), name="long")

    assert anyio.current_time() - start == pytest.approx(5)
    assert finished == ["short", "long cancelled at 5.0"]
    assert long.cancelled()
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    assert messages == ["cancelling background task 'long' at shutdown of 'app'"]


@pytest.mark.virtual_time
async def test_shutdown_without_timeout_waits_for_everything() -> None:
    start = anyio.current_time()
    async with BackgroundTasks() as tasks:
        task = tasks.create_task(anyio.sleep(100))

    assert anyio.current_time() - start == pytest.approx(100)
    assert task.done() and not task.cancelled()


NOT_ACCEPTING = (
    "the background tasks supervisor 'app' is not accepting new tasks (not entered "
    "yet, shutting down, or exited); create the task while its async with block is "
    "active"
)


async def test_shutdown_stops_accepting_from_outside_its_tasks() -> None:
    attempts: list[str] = []
    draining = anyio.Event()
    release = anyio.Event()

    async def slow() -> None:
        draining.set()
        await release.wait()

    async def outsider(tasks: BackgroundTasks) -> None:
        await draining.wait()
        await anyio.wait_all_tasks_blocked()
        coro = anyio.sleep(0)
        try:
            tasks.create_task(coro)
        except RuntimeError as exc:
            attempts.append(str(exc))
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        release.set()

    tasks = BackgroundTasks(name="app")
    async with anyio.create_task_group() as group:
        group.start_soon(outsider, tasks)
        async with tasks:
            tasks.create_task(slow())

    assert attempts == [NOT_ACCEPTING]
    coro = anyio.sleep(0)
    with pytest.raises(RuntimeError, match=re.escape(NOT_ACCEPTING)):
        tasks.create_task(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_cancelled_host_cancels_the_tasks_at_once() -> None:
    results: list[str] = []

    async def job() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            results.append("cancelled")

    with anyio.CancelScope() as scope:
        async with BackgroundTasks(shutdown_timeout=1000) as tasks:
            tasks.create_task(job())
            await anyio.wait_all_tasks_blocked()
            scope.cancel()

    assert results == ["cancelled"]


def test_tasks_left_at_the_end_of_a_run_are_cancelled_cleanly() -> None:
    cleanups: list[str] = []

    async def forever(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleanups.append(name)

    async def main(fail: bool) -> None:
        create_background_task(forever("started"))
        await anyio.wait_all_tasks_blocked()
        create_background_task(forever("never started"))
        if fail:
            raise LookupError("the run fails")

    threads_before = threading.active_count()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for backend in ("asyncio", "trio", "asyncio"):
            for fail in (False, True):
                cleanups.clear()
                if fail:
                    with pytest.raises(LookupError):
                        anyio.run(main, fail, backend=backend)
                else:
                    anyio.run(main, fail, backend=backend)
                # A task that had started ran its cleanup; one that had not was closed.
                assert "started" in cleanups, backend

    assert threading.active_count() <= threads_before


MODULE_SUPERVISOR = BackgroundTasks(name="module")  # created at import time, no loop


def test_background_tasks_supervisor_is_run_portable() -> None:
    async def main() -> list[object]:
        async with MODULE_SUPERVISOR as tasks:
            task = tasks.create_task(anyio.sleep(0))
            owned = create_background_task(anyio.sleep(0)) in tasks.active
        return [len(tasks.active), task.done(), owned]

    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(main, backend=backend) == [0, True, True]


async def test_module_level_supervisor_on_every_backend() -> None:
    async def ok() -> str:
        await anyio.sleep(0)
        return "ok"

    async with MODULE_SUPERVISOR as tasks:
        assert await tasks.create_task(ok()) == "ok"
        with pytest.raises(RuntimeError, match="already active"):
            async with MODULE_SUPERVISOR:
                pass


async def test_bad_arguments() -> None:
    async def job() -> None:
        pass

    with pytest.raises(TypeError, match=r"call it: create_background_task\("):
        create_background_task(job)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^create_background_task\(\) argument 'coro' must be a coroutine "
        r"object, got int 42$",
    ):
        create_background_task(42)  # type: ignore[arg-type]
    coro = job()
    with pytest.raises(
        TypeError,
        match=r"^create_background_task\(\) argument 'name' must be a string or "
        r"None, got int 123$",
    ):
        create_background_task(coro, name=123)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    coro = job()
    with pytest.raises(
        TypeError,
        match=r"^create_task\(\) argument 'name' must be a string or None, got "
        r"int 123$",
    ):
        BackgroundTasks().create_task(coro, name=123)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    with pytest.raises(
        ValueError,
        match=r"^BackgroundTasks\(\) argument 'shutdown_timeout' must be a "
        r"non-negative number or None, got -1$",
    ):
        BackgroundTasks(shutdown_timeout=-1)
    with pytest.raises(
        TypeError,
        match=r"^BackgroundTasks\(\) argument 'shutdown_timeout' must be a "
        r"non-negative number or None, got str '1'$",
    ):
        BackgroundTasks(shutdown_timeout="1")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"^BackgroundTasks\(\) argument 'shutdown_timeout' must be a "
        r"non-negative number or None, got nan$",
    ):
        BackgroundTasks(shutdown_timeout=float("nan"))
    with pytest.raises(
        TypeError,
        match=r"^BackgroundTasks\(\) argument 'shutdown_timeout' must be a "
        r"non-negative number or None, got bool True$",
    ):
        BackgroundTasks(shutdown_timeout=True)
    with pytest.raises(
        TypeError,
        match=r"^BackgroundTasks\(\) argument 'name' must be a string or None, got "
        r"int 123$",
    ):
        BackgroundTasks(name=123)  # type: ignore[arg-type]
    supervisor = BackgroundTasks()
    coro = job()
    with pytest.raises(RuntimeError, match="not accepting new tasks"):
        supervisor.create_task(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_spawn_bad_name_closes_the_coroutine_and_starts_nothing() -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("job")

    async with BackgroundTasks() as supervisor:
        coro = job()
        with pytest.raises(
            TypeError,
            match=r"^spawn\(\) argument 'name' must be a string or None, got int 123$",
        ):
            await supervisor.spawn(coro, name=123)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        assert supervisor.statistics().started == 0
    assert ran == []


def test_create_background_task_outside_a_loop() -> None:
    async def job() -> None:
        pass

    coro = job()
    with pytest.raises(
        RuntimeError, match="must be called from a task of a running event loop"
    ):
        create_background_task(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


# -- the seeds' examples ------------------------------------------------------------


async def test_seed_newsletter_and_status_endpoint() -> None:
    sent: list[str] = []
    errors: list[str] = []

    async def send_email(subscriber: str) -> None:
        await anyio.sleep(0)
        if subscriber == "bad@example.com":
            raise ConnectionError("smtp down")
        sent.append(subscriber)

    async def process_newsletter(subscribers: list[str]) -> None:
        for subscriber in subscribers:
            try:
                await send_email(subscriber)
            except Exception as e:
                errors.append(f"{subscriber}: {e}")

    async with BackgroundTasks(name="app") as app_tasks:
        create_background_task(
            process_newsletter(["a@example.com", "bad@example.com", "c@example.com"]),
            name="newsletter",
        )
        status = {"active_tasks": len([t for t in app_tasks.active if not t.done()])}
        assert status == {"active_tasks": 1}

    assert sent == ["a@example.com", "c@example.com"]
    assert errors == ["bad@example.com: smtp down"]
    assert app_tasks.active == ()


async def test_seed_start_job_context_manager_and_task_manager() -> None:
    events: dict[str, anyconc.AsyncEvent] = {}
    tasks: dict[str, BackgroundTask[None]] = {}
    log: list[str] = []

    async def create_task(task_id: str, duration: float) -> dict[str, str]:
        async def task() -> None:
            try:
                await anyio.sleep(duration)
                events[task_id].set()
            except anyio.get_cancelled_exc_class():
                events[task_id].clear()
                log.append(f"{task_id} cancelled")
                raise

        events[task_id] = anyconc.AsyncEvent()
        async with create_background_task(task()) as t:
            tasks[task_id] = t
            return {"status": "started"}

    assert await create_task("t1", 60) == {"status": "started"}
    # As written in the seed, leaving the block cancels the job at once: before it
    # even started, so (as with asyncio.Task.cancel()) its body never runs.
    assert tasks["t1"].cancelled()
    assert log == []
    assert not events["t1"].is_set()

    # Started jobs see the cancellation and run their handler.
    async with create_background_task(anyio.sleep_forever()) as started:
        await anyio.wait_all_tasks_blocked()
    assert started.cancelled()


async def test_failure_is_logged_when_only_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom() -> None:
        await anyio.sleep(0)
        raise ValueError("only waited")

    with caplog.at_level(logging.ERROR, logger="anyconc"):
        task = create_background_task(boom(), name="waited")
        await task.wait()  # wait() does not retrieve the failure

    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    assert messages == ["background task 'waited' failed"]


# -- issue 13: nothing lost at the edges ---------------------------------------------


def anyconc_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "anyconc"]


async def test_interrupt_in_the_body_skips_the_drain() -> None:
    # Issue 13 case 1 (in process; the real SIGINT is in test_edges_subprocess.py):
    # shutdown_timeout=None used to drain forever on an interrupt.
    log: list[str] = []

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            log.append("task finally")

    with pytest.raises(KeyboardInterrupt) as excinfo:
        async with BackgroundTasks() as tasks:
            task = tasks.create_task(forever())
            await anyio.wait_all_tasks_blocked()
            raise KeyboardInterrupt

    assert type(excinfo.value) is KeyboardInterrupt
    assert log == ["task finally"]
    assert task.cancelled()


async def test_interrupt_in_a_task_cancels_everything_and_comes_out_unwrapped() -> None:
    # Issue 13 case 7: sys.exit() in a background task used to be only logged.
    log: list[str] = []

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            log.append("sibling finally")

    async def quits() -> None:
        await anyio.wait_all_tasks_blocked()
        sys.exit(3)

    with pytest.raises(SystemExit) as excinfo:
        try:
            async with BackgroundTasks(shutdown_timeout=None) as tasks:
                sibling = tasks.create_task(forever())
                quitter = tasks.create_task(quits())
                await anyio.sleep_forever()
        finally:
            log.append("body finally")

    assert excinfo.value.code == 3
    assert log == ["sibling finally", "body finally"]
    assert sibling.cancelled()
    assert isinstance(quitter.exception(), SystemExit)


async def test_body_exception_comes_out_unwrapped_after_the_drain() -> None:
    # Issue 13 case 8: it came out as ExceptionGroup([ValueError]).
    done: list[str] = []

    async def job() -> None:
        await anyio.sleep(0.01)
        done.append("job")

    error = ValueError("body failed")
    with pytest.raises(ValueError, match="^body failed$") as excinfo:
        async with BackgroundTasks() as tasks:
            task = tasks.create_task(job())
            raise error

    assert excinfo.value is error
    assert done == ["job"]  # drained, not lost
    assert task.done() and not task.cancelled()


async def test_block_failure_and_task_failure_are_both_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 13 case 2: the task's failure was lost when the block itself raised.
    caplog.set_level(logging.ERROR, logger="anyconc")

    async def boom() -> None:
        raise ConnectionError("task failed")

    with pytest.raises(KeyError, match="block"):
        async with create_background_task(boom(), name="bound") as task:
            await task.wait()
            raise KeyError("block")

    assert anyconc_records(caplog) == ["background task 'bound' failed"]
    assert isinstance(task.exception(), ConnectionError)


async def test_failure_in_the_step_its_awaiter_is_cancelled_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 13 case 2: the only awaiter was cancelled in the step in which the task
    # failed; nobody retrieved the failure, and nothing was logged.
    caplog.set_level(logging.ERROR, logger="anyconc")
    go = anyio.Event()
    outcome: list[str] = []

    async def boom() -> None:
        await go.wait()
        raise ConnectionError("failed while its awaiter left")

    task = create_background_task(boom(), name="orphan")

    async def awaiter(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await task
            except ConnectionError:
                outcome.append("retrieved")
                return
        outcome.append("cancelled")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as group:
        group.start_soon(awaiter, scope)
        await anyio.wait_all_tasks_blocked()
        go.set()
        scope.cancel()

    await task.wait()
    assert outcome == ["cancelled"]
    assert anyconc_records(caplog) == ["background task 'orphan' failed"]


@pytest.mark.virtual_time
async def test_drain_includes_what_the_drained_tasks_start() -> None:
    # Issue 13 case 3: the new task went to the run-wide default supervisor, escaped
    # the drain and was cancelled at run end.
    log: list[str] = []
    start = anyio.current_time()

    async def follow_up(label: str) -> None:
        await anyio.sleep(5)
        log.append(f"{label} at {anyio.current_time() - start:g}")

    async def first(tasks: BackgroundTasks) -> None:
        await anyio.sleep(1)  # the block has exited: the supervisor drains
        log.append(f"owner {background_tasks_status()['supervisor']}")
        create_background_task(follow_up("via create_background_task"))
        tasks.create_task(follow_up("via create_task"))

    async with BackgroundTasks(name="app", shutdown_timeout=10) as tasks:
        tasks.create_task(first(tasks))

    assert log[0] == "owner app"
    assert sorted(log[1:]) == ["via create_background_task at 6", "via create_task at 6"]
    assert anyio.current_time() - start == pytest.approx(6)
    assert tasks.active == ()


@pytest.mark.virtual_time
async def test_drain_of_started_tasks_is_bounded_by_the_same_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="anyconc")
    start = anyio.current_time()
    spawned: list[BackgroundTask[None]] = []

    async def first() -> None:
        await anyio.sleep(1)
        spawned.append(create_background_task(anyio.sleep_forever(), name="endless"))

    async with BackgroundTasks(name="app", shutdown_timeout=3):
        create_background_task(first())

    assert anyio.current_time() - start == pytest.approx(3)
    assert spawned[0].cancelled()
    assert anyconc_records(caplog) == [
        "cancelling background task 'endless' at shutdown of 'app'"
    ]


@pytest.mark.parametrize(
    ("backend", "options"),
    [("asyncio", {}), ("asyncio", {"use_uvloop": True}), ("trio", {})],
    ids=["asyncio", "uvloop", "trio"],
)
def test_context_is_copied_at_creation_for_the_first_tasks_of_a_run(
    backend: str, options: dict[str, Any]
) -> None:
    # Issue 13 case 4: the first background tasks of a run (created before the default
    # supervisor's host had started) lost the caller's contextvars.
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
        "request_id", default="unset"
    )

    async def read() -> str:
        return request_id.get()

    async def main() -> list[str]:
        handles = []
        for value in ("first", "second"):
            request_id.set(value)
            handles.append(create_background_task(read()))

        request_id.set("changed later")
        await anyio.sleep(0)
        handles.append(create_background_task(read()))
        return [await handle for handle in handles]

    assert anyio.run(main, backend=backend, backend_options=options) == [
        "first",
        "second",
        "changed later",
    ]


async def test_create_task_from_a_worker_thread_is_refused_and_closes_the_coroutine() -> (
    None
):
    async def job() -> int:
        await anyio.sleep(0)
        return 1

    async with BackgroundTasks(name="web") as supervisor:
        coro = job()
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(supervisor.create_task, coro)
        assert str(info.value) == (
            "BackgroundTasks.create_task() of the active supervisor 'web' must be "
            "called from the thread of its event loop (no event loop runs in this "
            "thread; the coroutine was closed); from a worker thread, use "
            "anyio.from_thread.run_sync(supervisor.create_task, coro)"
        )
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # no warning
        assert supervisor.active == ()
        coro = job()
        task: BackgroundTask[int] = await anyio.to_thread.run_sync(
            lambda: anyio.from_thread.run_sync(lambda: supervisor.create_task(coro))
        )
    assert task.result() == 1
