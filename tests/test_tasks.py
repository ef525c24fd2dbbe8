"""TaskGroup, create_task_group (both forms) and the Task handle, on every backend."""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import (
    Task,
    TaskCancelled,
    TaskGroup,
    TaskNotFinished,
    create_task_group,
)
from anyconc.pytest_plugin import backend_spec

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


class Crash(BaseException):
    """A BaseException that is not an Exception (like KeyboardInterrupt)."""


async def fetch(value: Any, delay: float = 0) -> Any:
    await anyio.sleep(delay)
    return value


async def fail(exc: BaseException, delay: float = 0) -> Any:
    await anyio.sleep(delay)
    raise exc


async def wait_forever(log: list[str], label: str) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        log.append(f"{label} finally")


def sync_function() -> int:
    return 1


# -- the Task handle ---------------------------------------------------------------------


async def test_pending_then_finished_task_surface() -> None:
    release = anyio.Event()

    async def job() -> int:
        await release.wait()
        return 42

    async with TaskGroup() as group:
        task = group.create_task(job())
        assert isinstance(task, Task)
        assert not task.done()
        assert not task.cancelled()
        with pytest.raises(TaskNotFinished, match="^the task has not finished yet$"):
            task.result()
        with pytest.raises(TaskNotFinished, match="^the task has not finished yet$"):
            task.exception()
        assert repr(task) == f"<Task {job.__qualname__!r} pending>"
        release.set()
        assert await task == 42

    assert task.done()
    assert not task.cancelled()
    assert task.result() == 42
    assert task.exception() is None
    assert await task == 42
    assert repr(task) == f"<Task {job.__qualname__!r} finished>"


async def test_task_names() -> None:
    async with TaskGroup(name="names") as group:
        by_coro = group.create_task(fetch(1))
        named = group.create_task(fetch(2), name="custom")
        by_func = group.start_soon(fetch, 3)
        by_func_named = group.start_soon(fetch, 4, name="other")

    assert group.name == "names"
    assert by_coro.name == "fetch"
    assert named.name == "custom"
    assert by_func.name == "fetch"
    assert by_func_named.name == "other"
    assert [t.result() for t in (by_coro, named, by_func, by_func_named)] == [
        1,
        2,
        3,
        4,
    ]


async def test_failed_task_keeps_the_original_exception_object() -> None:
    error = ValueError("boom")
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            task = group.create_task(fail(error))

    assert excinfo.value.exceptions == (error,)
    assert excinfo.value.exceptions[0] is error
    assert task.done()
    assert not task.cancelled()
    assert task.exception() is error
    with pytest.raises(ValueError, match="^boom$") as raised:
        task.result()
    assert raised.value is error
    with pytest.raises(ValueError, match="^boom$") as awaited:
        await task
    assert awaited.value is error
    assert repr(task) == "<Task 'fail' failed>"


async def test_await_failed_task_in_body_reports_the_failure_once() -> None:
    # The seeds' pattern: `await task` inside the block. The body re-raises the task's
    # own exception; the group must not list it twice.
    error = ValueError("boom")
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            task = group.create_task(fail(error))
            await task

    assert excinfo.value.exceptions == (error,)
    assert task.exception() is error


async def test_body_error_and_task_error_both_reported() -> None:
    task_error = ValueError("task")
    body_error = KeyError("body")
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            task = group.create_task(fail(task_error))
            await task.wait()
            raise body_error

    assert set(map(id, excinfo.value.exceptions)) == {id(task_error), id(body_error)}


async def test_cancel_pending_task() -> None:
    log: list[str] = []
    async with TaskGroup() as group:
        task = group.create_task(wait_forever(log, "child"))
        other = group.create_task(fetch("other"))
        await anyio.wait_all_tasks_blocked()  # the child runs, and waits
        assert task.cancel() is True
        assert task.cancel() is True  # still pending: asyncio answers True again
        assert not task.done()
        await task.wait()
        assert log == ["child finally"]

    # The group itself is not cancelled by one task's cancellation.
    assert other.result() == "other"
    assert task.done()
    assert task.cancelled()
    assert task.cancel() is False
    with pytest.raises(TaskCancelled, match="^the task was cancelled$"):
        task.result()
    with pytest.raises(TaskCancelled, match="^the task was cancelled$"):
        task.exception()
    with pytest.raises(TaskCancelled):
        await task
    assert repr(task) == "<Task 'wait_forever' cancelled>"


async def test_cancel_before_the_task_first_runs() -> None:
    # Decided, as asyncio.Task.cancel(): a task cancelled before it first runs never
    # runs; its coroutine is closed (no "never awaited" warning).
    log: list[str] = []

    async def job() -> None:
        log.append("started")
        await wait_forever(log, "job")

    async with TaskGroup() as group:
        task = group.create_task(job())
        assert task.cancel() is True

    assert task.cancelled()
    assert log == []


async def test_cancel_finished_task_returns_false() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch(7))

    assert task.cancel() is False
    assert not task.cancelled()
    assert task.result() == 7


async def test_task_may_swallow_its_cancellation() -> None:
    async def stubborn() -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return "caught"
        return "unreachable"

    async with TaskGroup() as group:
        task = group.create_task(stubborn())
        await anyio.wait_all_tasks_blocked()  # it runs, and waits in sleep_forever()
        assert task.cancel() is True

    assert not task.cancelled()
    assert task.result() == "caught"


async def test_wait_never_raises_the_task_outcome() -> None:
    error = ValueError("boom")
    with pytest.raises(ExceptionGroup):
        async with TaskGroup() as group:
            failed = group.create_task(fail(error))
            cancelled = group.create_task(anyio.sleep_forever())

    await failed.wait()
    await cancelled.wait()
    assert failed.exception() is error
    assert cancelled.cancelled()


async def test_wait_on_finished_task_is_a_checkpoint() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch(1))

    with anyio.CancelScope() as scope:
        scope.cancel()
        await task.wait()
        pytest.fail("wait() did not honour the cancellation")

    assert scope.cancelled_caught


async def test_waiter_cancelled_does_not_cancel_task() -> None:
    release = anyio.Event()
    async with TaskGroup() as group:
        task = group.create_task(release.wait())
        with anyio.CancelScope() as scope:
            scope.cancel()
            await task.wait()
        assert scope.cancelled_caught
        with anyio.CancelScope() as scope:
            scope.cancel()
            await task
        assert scope.cancelled_caught
        assert not task.done()
        release.set()

    assert task.result() is None
    assert not task.cancelled()


# -- done-callbacks ------------------------------------------------------------------------


async def test_done_callbacks_run_once_in_order_right_after_finish() -> None:
    calls: list[tuple[str, Task[Any], bool]] = []
    release = anyio.Event()

    def first(task: Task[Any]) -> None:
        calls.append(("first", task, task.done()))

    def second(task: Task[Any]) -> None:
        calls.append(("second", task, task.done()))

    async with TaskGroup() as group:
        task = group.create_task(release.wait())
        task.add_done_callback(first)
        task.add_done_callback(second)
        task.add_done_callback(first)
        assert calls == []
        release.set()
        await task.wait()
        # Already run when a waiter wakes up.
        assert calls == [
            ("first", task, True),
            ("second", task, True),
            ("first", task, True),
        ]

    await anyio.wait_all_tasks_blocked()
    assert len(calls) == 3


async def test_done_callback_added_after_finish_runs_at_next_scheduling_point() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch("x"))

    ran = anyio.Event()
    seen: list[str] = []

    def callback(t: Task[str]) -> None:
        seen.append(t.result())
        ran.set()

    task.add_done_callback(callback)
    assert seen == []  # not synchronously
    await ran.wait()
    assert seen == ["x"]
    await anyio.wait_all_tasks_blocked()
    assert seen == ["x"]


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_done_callback_added_after_the_run_ended_is_called_at_once(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def make_task() -> Task[str]:
        async with TaskGroup() as group:
            return group.create_task(fetch("x"))

    name, options = backend_spec(backend)
    task = anyio.run(make_task, backend=name, backend_options=options)
    seen: list[tuple[str, bool]] = []

    def callback(t: Task[str]) -> None:
        seen.append((t.result(), threading.current_thread() is threading.main_thread()))

    # No run to schedule it in: called now, in this thread (as concurrent.futures does).
    task.add_done_callback(callback)
    assert seen == [("x", True)]

    def bad(t: Task[str]) -> None:
        raise RuntimeError("after the run")

    caplog.set_level(logging.ERROR, logger="anyconc")
    task.add_done_callback(bad)
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == ["after the run"]


async def test_cancel_from_a_worker_thread_is_refused_and_changes_nothing() -> None:
    async with TaskGroup() as group:
        task = group.create_task(anyio.sleep_forever(), name="sleeper")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(task.cancel)
        assert str(info.value) == (
            "Task.cancel() of the unfinished task 'sleeper' must be called from the "
            "thread of its event loop (no event loop runs in this thread); from a "
            "worker thread, use anyio.from_thread.run_sync(task.cancel)"
        )
        assert repr(task) == "<Task 'sleeper' pending>"

        # The way the message gives works, and a finished task answers from anywhere.
        assert await anyio.to_thread.run_sync(
            lambda: anyio.from_thread.run_sync(task.cancel)
        )
        await task.wait()
        assert task.cancelled()
        assert await anyio.to_thread.run_sync(task.cancel) is False

        other = group.create_task(anyio.sleep_forever(), name="other")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(group.cancel)
        assert str(info.value) == (
            "TaskGroup.cancel() of an active task group must be called from the thread "
            "of its event loop (no event loop runs in this thread); from a worker "
            "thread, use anyio.from_thread.run_sync(group.cancel)"
        )
        assert group.tasks == (other,)
        await anyio.to_thread.run_sync(anyio.from_thread.run_sync, group.cancel)

    assert other.cancelled()


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_cancel_of_an_exited_group_does_nothing_in_any_run_or_none(backend: str) -> None:
    group = TaskGroup()

    async def use_group(value: str) -> Task[str]:
        async with group:
            task = group.create_task(fetch(value))
        group.cancel()  # exited: nothing to cancel
        await checkpoint()  # and nothing is cancelled later
        return task

    name, options = backend_spec(backend)
    task = anyio.run(use_group, "x", backend=name, backend_options=options)
    group.cancel()  # the run has ended
    assert (task.result(), task.cancel(), group.tasks) == ("x", False, ())

    # A later run, on another backend, uses the group again.
    name, options = backend_spec("asyncio" if backend == "trio" else "trio")
    again = anyio.run(use_group, "y", backend=name, backend_options=options)
    assert again.result() == "y"


async def test_done_callback_added_from_a_worker_thread_is_called_there() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch("x"))

    threads: list[bool] = []

    def callback(t: Task[str]) -> None:
        threads.append(threading.current_thread() is threading.main_thread())

    await anyio.to_thread.run_sync(task.add_done_callback, callback)
    assert threads == [False]


async def test_done_callback_for_an_unfinished_task_from_a_worker_thread_is_refused() -> (
    None
):
    # It could be added just after the task's callbacks ran: it would never be called.
    called: list[str] = []
    release = anyio.Event()

    async def job() -> str:
        await release.wait()
        return "job"

    async with TaskGroup() as group:
        task = group.create_task(job(), name="job")
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(
                task.add_done_callback, lambda t: called.append("refused")
            )
        assert str(info.value) == (
            "Task.add_done_callback() of the unfinished task 'job' must be called from "
            "the thread of its event loop (no event loop runs in this thread); from a "
            "worker thread, use anyio.from_thread.run_sync(task.add_done_callback, fn)"
        )
        # The way the message gives works; the refused callback was not added.
        await anyio.to_thread.run_sync(
            anyio.from_thread.run_sync,
            task.add_done_callback,
            lambda t: called.append(t.result()),
        )
        release.set()
    await checkpoint()
    assert called == ["job"]


async def test_done_callbacks_run_for_failed_and_cancelled_tasks() -> None:
    states: list[tuple[str, bool]] = []

    def record(task: Task[Any]) -> None:
        states.append((task.name, task.cancelled()))

    with pytest.raises(ExceptionGroup):
        async with TaskGroup() as group:
            sleeper = group.create_task(anyio.sleep_forever(), name="sleeper")
            sleeper.add_done_callback(record)
            failing = group.create_task(fail(ValueError("x"), 0), name="failing")
            failing.add_done_callback(record)

    assert sorted(states) == [("failing", False), ("sleeper", True)]


async def test_remove_done_callback_returns_count() -> None:
    calls: list[str] = []

    def callback(task: Task[Any]) -> None:
        calls.append("callback")

    def other(task: Task[Any]) -> None:
        calls.append("other")

    release = anyio.Event()
    async with TaskGroup() as group:
        task = group.create_task(release.wait())
        assert task.remove_done_callback(callback) == 0
        task.add_done_callback(callback)
        task.add_done_callback(other)
        task.add_done_callback(callback)
        assert task.remove_done_callback(callback) == 2
        assert task.remove_done_callback(callback) == 0
        release.set()

    assert calls == ["other"]


async def test_raising_done_callback_is_logged_not_propagated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = RuntimeError("callback failed")
    calls: list[str] = []

    def bad(task: Task[Any]) -> None:
        calls.append("bad")
        raise error

    def good(task: Task[Any]) -> None:
        calls.append("good")

    caplog.set_level(logging.ERROR, logger="anyconc")
    async with TaskGroup() as group:
        task = group.create_task(fetch(1))
        task.add_done_callback(bad)
        task.add_done_callback(good)

    # The task, the group and the next callback are unaffected.
    assert task.result() == 1
    assert calls == ["bad", "good"]
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].getMessage().startswith("exception in done callback")
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error


async def test_raising_late_done_callback_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="anyconc")
    async with TaskGroup() as group:
        task = group.create_task(fetch(1))

    ran = anyio.Event()

    def bad(t: Task[Any]) -> None:
        ran.set()
        raise RuntimeError("late")

    task.add_done_callback(bad)
    await ran.wait()
    await checkpoint()
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == ["late"]


async def test_add_done_callback_rejects_non_callable() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch(1))
        with pytest.raises(
            TypeError,
            match=r"^Task\.add_done_callback\(\) argument 'fn' must be a function, "
            r"got int 42$",
        ):
            task.add_done_callback(42)  # type: ignore[arg-type]

        async def on_done(task: Task[Any]) -> None:
            raise AssertionError("never run")

        coro = on_done(task)
        with pytest.raises(
            TypeError,
            match=r"^Task\.add_done_callback\(\) argument 'fn' must be a function, "
            r"got the coroutine object .*on_done\(\); pass the function itself, not "
            r"the result of calling it: ",
        ):
            task.add_done_callback(coro)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_seed_task_completion_callbacks_pattern(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # asyncio-concurrency-patterns.md, "Task Completion Callbacks" and the
    # "background_tasks.add / add_done_callback(discard)" bookkeeping.
    printed: list[str] = []
    running: set[Task[Any]] = set()

    def on_complete(task: Task[Any]) -> None:
        if task.exception():
            printed.append(f"Task failed: {task.exception()}")
        else:
            printed.append(f"Task result: {task.result()}")

    caplog.set_level(logging.ERROR, logger="anyconc")
    with pytest.raises(ExceptionGroup):
        async with TaskGroup() as group:
            for coro in (fetch("work"), fail(ValueError("bad"), 1)):
                task = group.create_task(coro)
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(on_complete)
            sleeper = group.create_task(anyio.sleep_forever())
            running.add(sleeper)
            sleeper.add_done_callback(running.discard)
            sleeper.add_done_callback(on_complete)

    assert running == set()
    assert printed == ["Task result: work", "Task failed: bad"]
    # on_complete calls exception() on the cancelled task: TaskCancelled, as asyncio
    # raises CancelledError; it is logged, not propagated.
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], TaskCancelled)


# -- TaskGroup -----------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_exit_waits_for_every_task() -> None:
    start = anyio.current_time()
    async with TaskGroup() as group:
        tasks = [group.create_task(fetch(i, delay=i)) for i in (3, 1, 2)]
        assert anyio.current_time() == start  # the body does not wait

    assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)
    assert [t.result() for t in tasks] == [3, 1, 2]
    assert group.tasks == ()


@pytest.mark.virtual_time
async def test_first_failure_cancels_siblings_and_body() -> None:
    log: list[str] = []
    error = ValueError("first")
    start = anyio.current_time()
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            failing = group.create_task(fail(error, 1))
            sibling = group.create_task(wait_forever(log, "sibling"))
            late = group.create_task(fetch("late", delay=5))
            try:
                await anyio.sleep(10)
                log.append("body went on")
            finally:
                log.append("body finally")

    assert anyio.current_time() - start == pytest.approx(1, abs=1e-6)
    assert excinfo.value.exceptions == (error,)
    assert sorted(log) == ["body finally", "sibling finally"]
    assert failing.exception() is error
    assert sibling.cancelled()
    assert late.cancelled()


async def test_several_failures_are_all_reported() -> None:
    first = ValueError("first")
    second = KeyError("second")

    async def fails_while_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise second

    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            group.create_task(fails_while_cancelled())
            await checkpoint()
            group.create_task(fail(first))

    assert sorted(map(id, excinfo.value.exceptions)) == sorted([id(first), id(second)])


async def test_base_exception_gives_base_exception_group() -> None:
    crash = Crash()
    with pytest.raises(BaseExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            task = group.create_task(fail(crash))
            group.create_task(anyio.sleep_forever())

    assert not isinstance(excinfo.value, ExceptionGroup)
    assert excinfo.value.exceptions == (crash,)
    assert task.exception() is crash


async def test_mixed_base_exception_and_exception() -> None:
    crash = Crash()
    error = ValueError("x")

    async def fails_while_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise error

    with pytest.raises(BaseExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            group.create_task(fails_while_cancelled())
            await checkpoint()
            group.create_task(fail(crash))

    assert not isinstance(excinfo.value, ExceptionGroup)
    assert sorted(map(id, excinfo.value.exceptions)) == sorted([id(crash), id(error)])


async def test_body_exception_cancels_tasks() -> None:
    log: list[str] = []
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            task = group.create_task(wait_forever(log, "child"))
            await checkpoint()
            raise KeyError("body")

    assert [type(e) for e in excinfo.value.exceptions] == [KeyError]
    assert task.cancelled()
    assert log == ["child finally"]


async def test_cancelling_the_host_cancels_children_and_exits_cleanly() -> None:
    log: list[str] = []
    with anyio.CancelScope() as outer:
        async with TaskGroup() as group:
            first = group.create_task(wait_forever(log, "first"))
            second = group.create_task(wait_forever(log, "second"))
            await checkpoint()
            outer.cancel()
            await anyio.sleep_forever()
        log.append("after the group")  # not reached: the host is cancelled

    assert outer.cancelled_caught
    assert sorted(log) == ["first finally", "second finally"]
    assert first.cancelled()
    assert second.cancelled()
    assert group.tasks == ()


async def test_cancelling_the_host_from_another_task() -> None:
    log: list[str] = []
    handles: list[Task[Any]] = []
    ready = anyio.Event()

    async def host() -> None:
        async with TaskGroup() as group:
            handles.append(group.create_task(wait_forever(log, "child")))
            await checkpoint()
            ready.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as outer:
        outer.start_soon(host)
        await ready.wait()
        outer.cancel_scope.cancel()

    assert log == ["child finally"]
    assert handles[0].cancelled()


async def test_tasks_shrinks_as_tasks_finish() -> None:
    gates = [anyio.Event() for _ in range(3)]
    async with TaskGroup() as group:
        tasks = [group.create_task(gate.wait()) for gate in gates]
        assert list(group.tasks) == tasks
        gates[1].set()
        await tasks[1].wait()
        assert list(group.tasks) == [tasks[0], tasks[2]]
        gates[0].set()
        await tasks[0].wait()
        assert list(group.tasks) == [tasks[2]]
        gates[2].set()

    assert group.tasks == ()


async def test_cancel_cancels_every_task_and_the_body() -> None:
    log: list[str] = []
    async with TaskGroup() as group:
        tasks = [group.create_task(wait_forever(log, str(i))) for i in range(3)]
        await checkpoint()
        group.cancel()
        assert isinstance(group.cancel_scope, anyio.CancelScope)
        assert group.cancel_scope.cancel_called
        await checkpoint()
        log.append("body went on")

    assert sorted(log) == ["0 finally", "1 finally", "2 finally"]
    assert all(t.cancelled() for t in tasks)


async def test_start_waits_for_task_status() -> None:
    log: list[str] = []

    async def server(
        port: int, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        log.append("starting")
        await checkpoint()
        task_status.started(port + 1)
        await wait_forever(log, "server")

    async with TaskGroup() as group:
        assert await group.start(server, 8000) == 8001
        assert log == ["starting"]
        group.cancel()

    assert log == ["starting", "server finally"]


async def test_start_without_started_raises() -> None:
    async def quitter(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        await checkpoint()

    async with TaskGroup() as group:
        with pytest.raises(
            RuntimeError,
            match=r"(?i)^child exited without calling task_status\.started",
        ):
            await group.start(quitter)


async def test_start_caller_cancelled_before_started() -> None:
    # AnyIO's rule: until task_status.started(), the new task is in the caller's scope.
    log: list[str] = []

    async def slow_server(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        await wait_forever(log, "server")
        task_status.started()

    async with TaskGroup() as group:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as helper:
                helper.start_soon(group.start, slow_server)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()

    assert scope.cancelled_caught
    assert log == ["server finally"]


async def test_start_on_inactive_group() -> None:
    async def server(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()

    group = TaskGroup()
    message = (
        r"^this task group is not active \(not entered yet, or already exited\); "
        r"no new tasks can be started$"
    )
    with pytest.raises(RuntimeError, match=message):
        await group.start(server)
    async with group:
        await group.start(server)
    with pytest.raises(RuntimeError, match=message):
        await group.start(server)


async def test_entering_while_active_raises_and_reentering_after_exit_works() -> None:
    # Issue 13 case 9: an import-time group serves any number of blocks (API.md rule 2).
    group = TaskGroup()
    active = (
        r"^this task group is already active; it can be entered again once its "
        r"async with block has exited \(or use a new TaskGroup\)$"
    )
    async with group:
        first = group.create_task(fetch("first"))
        with pytest.raises(RuntimeError, match=active):
            async with group:
                pass

    assert first.result() == "first"
    async with group:
        second = group.create_task(fetch("second"))
        assert group.tasks == (second,)

    assert second.result() == "second"
    assert list(group.tasks) == []
    with pytest.raises(ExceptionGroup) as excinfo:
        async with group:
            group.create_task(fail(ValueError("third")))

    assert [str(e) for e in excinfo.value.exceptions] == ["third"]
    # The failure of an earlier block is not reported again by a later one.
    async with group:
        fourth = group.create_task(fetch("fourth"))

    assert fourth.result() == "fourth"


async def test_create_task_with_function_says_to_call_it() -> None:
    async with TaskGroup() as group:
        with pytest.raises(
            TypeError,
            match=(
                r"^create_task\(\) argument 'coro' must be a coroutine object, got the "
                r"callable 'fetch'; call it: create_task\(fetch\(\.\.\.\)\)$"
            ),
        ):
            group.create_task(fetch)  # type: ignore[arg-type]
        with pytest.raises(
            TypeError,
            match=r"^create_task\(\) argument 'coro' must be a coroutine object, got "
            r"int 42$",
        ):
            group.create_task(42)  # type: ignore[arg-type]
        assert group.tasks == ()


async def test_create_task_on_inactive_group_closes_the_coroutine() -> None:
    message = (
        r"^this task group is not active \(not entered yet, or already exited\); "
        r"no new tasks can be started$"
    )
    group = create_task_group()
    before = fetch(1)
    with pytest.raises(RuntimeError, match=message):
        group.create_task(before)
    assert inspect.getcoroutinestate(before) == "CORO_CLOSED"

    async with group:
        inside = group.create_task(fetch(2))

    after = fetch(3)
    with pytest.raises(RuntimeError, match=message):
        group.create_task(after)
    assert inspect.getcoroutinestate(after) == "CORO_CLOSED"
    assert inside.result() == 2
    assert group.tasks == ()


async def test_start_bad_arguments() -> None:
    async def serve(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        task_status.started(1)

    async with TaskGroup() as group:
        coro = serve(task_status=anyio.TASK_STATUS_IGNORED)
        with pytest.raises(
            TypeError,
            match=r"^start\(\) argument 'func' must be a function, got the coroutine "
            r"object .*serve\(\); pass the function itself, not the result of calling "
            r"it: start\(serve, \.\.\.\)$",
        ):
            await group.start(coro)  # type: ignore[call-overload]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        with pytest.raises(
            TypeError,
            match=r"^start\(\) argument 'name' must be a string or None, got int 5$",
        ):
            await group.start(serve, name=5)  # type: ignore[call-overload]
        assert await group.start(serve) == 1
        assert group.tasks == ()


async def test_start_with_a_plain_function_is_a_type_error_naming_it() -> None:
    calls: list[str] = []

    def sync(*, task_status: anyio.abc.TaskStatus[int]) -> int:
        calls.append("called")
        return 1

    async def serve(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        task_status.started(2)

    async with TaskGroup() as group:
        with pytest.raises(
            TypeError,
            match=r"^start\(\) expects a coroutine function, but '.*sync' returned "
            r"int$",
        ):
            await group.start(sync)  # type: ignore[arg-type]
        assert calls == ["called"]
        assert group.tasks == ()
        # The group is not failed by it.
        assert await group.start(serve) == 2
    assert not group.cancel_scope.cancel_called


async def test_start_soon_bad_arguments() -> None:
    async with TaskGroup() as group:
        with pytest.raises(
            TypeError,
            match=r"^start_soon\(\) argument 'func' must be a function, got int 42$",
        ):
            group.start_soon(42)  # type: ignore[arg-type]
        coro = fetch(1)
        with pytest.raises(
            TypeError,
            match=r"^start_soon\(\) argument 'func' must be a function, got the "
            r"coroutine object fetch\(\); pass the function itself, not the result of "
            r"calling it: start_soon\(fetch, \.\.\.\), or create_task\(fetch\(\.\.\.\)\)$",
        ):
            group.start_soon(coro)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        coro = fetch(2)
        with pytest.raises(
            TypeError,
            match=r"^create_task\(\) argument 'name' must be a string or None, got int "
            r"123$",
        ):
            group.create_task(coro, name=123)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        with pytest.raises(
            TypeError,
            match=r"^start_soon\(\) argument 'name' must be a string or None, got int "
            r"123$",
        ):
            group.start_soon(fetch, 1, name=123)  # type: ignore[arg-type]
        with pytest.raises(
            TypeError,
            match=(
                r"^start_soon\(\) expects a coroutine function, but 'sync_function' "
                r"returned int$"
            ),
        ):
            group.start_soon(sync_function)  # type: ignore[arg-type]
        assert group.tasks == ()


async def test_start_soon_on_inactive_group_closes_the_coroutine() -> None:
    made: list[Any] = []

    def factory() -> Any:
        coro = fetch(1)
        made.append(coro)
        return coro

    group = TaskGroup()
    with pytest.raises(RuntimeError, match="^this task group is not active"):
        group.start_soon(factory)
    assert inspect.getcoroutinestate(made[0]) == "CORO_CLOSED"


async def test_start_soon_passes_arguments() -> None:
    async with TaskGroup() as group:
        task = group.start_soon(fetch, "value", 0)

    assert task.result() == "value"


def test_cancel_scope_before_enter() -> None:
    group = TaskGroup()
    with pytest.raises(RuntimeError, match="^the task group has not been entered$"):
        group.cancel_scope  # noqa: B018
    with pytest.raises(RuntimeError, match="^the task group has not been entered$"):
        group.cancel()


def test_bad_group_name() -> None:
    message = r"^TaskGroup\(\) argument 'name' must be a string or None, got int 1$"
    with pytest.raises(TypeError, match=message):
        TaskGroup(name=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        create_task_group(name=1)  # type: ignore[arg-type]


# -- async for g in create_task_group() ---------------------------------------------------


@pytest.mark.virtual_time
async def test_async_for_runs_once_and_waits_for_tasks() -> None:
    start = anyio.current_time()
    iterations = 0
    async for group in create_task_group(name="loop"):
        iterations += 1
        assert isinstance(group, TaskGroup)
        assert group.name == "loop"
        first = group.create_task(fetch("a", delay=2))
        second = group.start_soon(fetch, "b", 1)
        assert anyio.current_time() == start

    assert iterations == 1
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)
    assert (first.result(), second.result()) == ("a", "b")
    assert group.tasks == ()


async def test_async_for_raises_failures_at_loop_end() -> None:
    error = ValueError("child")
    log: list[str] = []
    with pytest.raises(ExceptionGroup) as excinfo:
        async for group in create_task_group():
            failing = group.create_task(fail(error))
            sibling = group.create_task(wait_forever(log, "sibling"))
            await failing.wait()
            await sibling.wait()
            # A child's failure cancels its siblings, not the loop body.
            log.append("body went on")

    assert excinfo.value.exceptions == (error,)
    assert log == ["sibling finally", "body went on"]
    assert sibling.cancelled()


async def test_async_for_group_cancel_spares_the_body() -> None:
    log: list[str] = []
    async for group in create_task_group():
        task = group.create_task(wait_forever(log, "child"))
        await checkpoint()
        group.cancel()
        await task.wait()
        await checkpoint()
        log.append("body went on")

    assert log == ["child finally", "body went on"]
    assert task.cancelled()


async def test_async_for_break_cancels_every_task() -> None:
    log: list[str] = []
    tasks: list[Task[Any]] = []
    async for group in create_task_group():
        tasks.append(group.create_task(wait_forever(log, "first")))
        tasks.append(group.start_soon(wait_forever, log, "second"))
        await checkpoint()
        break

    with anyio.fail_after(10):  # a safety net: without the fix this waits forever
        for task in tasks:
            await task.wait()

    assert all(task.cancelled() for task in tasks)
    assert sorted(log) == ["first finally", "second finally"]
    assert group.tasks == ()


async def test_async_for_exception_in_body_cancels_every_task() -> None:
    log: list[str] = []
    tasks: list[Task[Any]] = []
    with pytest.raises(KeyError, match="body"):
        async for group in create_task_group():
            tasks.append(group.create_task(wait_forever(log, "child")))
            await checkpoint()
            raise KeyError("body")

    with anyio.fail_after(10):
        await tasks[0].wait()

    assert tasks[0].cancelled()
    assert log == ["child finally"]


async def test_async_for_left_after_failure_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The course's /process-alt with a failing item: `await task` raises the original
    # exception out of the loop; the group's failure is then logged, not lost.
    caplog.set_level(logging.ERROR, logger="anyconc")
    error = ValueError("item failed")

    async def fails_after(task: Task[Any]) -> None:
        await task.wait()
        raise error

    with pytest.raises(ValueError, match="^item failed$") as excinfo:
        async for group in create_task_group(name="proc"):
            ok = group.create_task(fetch(1))
            bad = group.create_task(fails_after(ok))
            [await t for t in (ok, bad)]

    assert excinfo.value is error
    await anyio.wait_all_tasks_blocked()
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert records[0].getMessage() == (
        "task group 'proc' failed after its async for loop was left"
    )
    assert records[0].exc_info is not None
    group_error = records[0].exc_info[1]
    assert isinstance(group_error, ExceptionGroup)
    assert group_error.exceptions == (error,)


@pytest.mark.virtual_time
async def test_async_for_caller_cancelled_while_loop_ends() -> None:
    log: list[str] = []
    start = anyio.current_time()
    with anyio.move_on_after(1) as scope:
        async for group in create_task_group():
            task = group.create_task(wait_forever(log, "child"))
        log.append("after the loop")  # not reached

    assert scope.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(1, abs=1e-6)
    # The group was cancelled and waited for before the cancellation was delivered.
    assert log == ["child finally"]
    assert task.cancelled()


@pytest.mark.virtual_time
async def test_async_for_caller_cancelled_failure_is_not_lost() -> None:
    error = ValueError("during cancellation")

    async def fails_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise error

    with pytest.raises(ExceptionGroup) as excinfo, anyio.move_on_after(1):
        async for group in create_task_group():
            group.create_task(fails_when_cancelled())

    assert excinfo.value.exceptions == (error,)


async def test_async_for_caller_cancelled_before_the_body() -> None:
    entered: list[TaskGroup] = []
    group = create_task_group()
    with anyio.CancelScope() as scope:
        scope.cancel()
        async for g in group:
            entered.append(g)

    assert scope.cancelled_caught
    assert entered == []
    await anyio.wait_all_tasks_blocked()
    # The host did not stay in the group: it is closed, not waiting forever.
    coro = fetch(1)
    with pytest.raises(RuntimeError, match="^this task group is not active"):
        group.create_task(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


async def test_async_for_on_an_active_group_raises_and_after_exit_works() -> None:
    group = TaskGroup()
    async with group:
        with pytest.raises(RuntimeError, match="^this task group is already active"):
            async for _ in group:
                pytest.fail("the body must not run")

    async for entered in group:
        task = entered.create_task(fetch("again"))

    assert task.result() == "again"


async def test_async_for_group_sees_callers_contextvars() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")

    async def read() -> str:
        return var.get()

    async for group in create_task_group():
        task = group.create_task(read())

    assert task.result() == "caller"


# -- the seeds -----------------------------------------------------------------------------


async def fetch_user_data(user_id: str) -> dict[str, str]:
    await anyio.sleep(1)
    return {"id": user_id}


async def fetch_user_posts(user_id: str) -> list[str]:
    await anyio.sleep(2)
    return [f"post of {user_id}"]


async def fetch_user_stats(user_id: str) -> dict[str, int]:
    await anyio.sleep(3)
    return {"visits": 3}


@pytest.mark.virtual_time
async def test_seed_dashboard_takes_max_not_sum() -> None:
    # nexios-concurrency-guide: GET /dashboard.
    async def get_dashboard(user_id: str) -> dict[str, Any]:
        async with TaskGroup() as group:
            user_task = group.create_task(fetch_user_data(user_id))
            posts_task = group.create_task(fetch_user_posts(user_id))
            stats_task = group.create_task(fetch_user_stats(user_id))

            user = await user_task
            posts = await posts_task
            stats = await stats_task

            return {"user": user, "recent_posts": posts, "statistics": stats}

    start = anyio.current_time()
    result = await get_dashboard("u1")
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)  # not 6
    assert result == {
        "user": {"id": "u1"},
        "recent_posts": ["post of u1"],
        "statistics": {"visits": 3},
    }


async def process_item(n: int) -> int:
    await anyio.sleep(n)
    return n * 10


@pytest.mark.virtual_time
async def test_seed_course_process() -> None:
    # nexios-course-day20: GET /process, asyncio.gather -> [await t for t in tasks].
    start = anyio.current_time()
    async with TaskGroup() as group:
        task1 = group.create_task(process_item(1))
        task2 = group.create_task(process_item(2))
        task3 = group.create_task(process_item(3))
        results = [await t for t in (task1, task2, task3)]

    assert {"results": results} == {"results": [10, 20, 30]}
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_course_process_alt() -> None:
    # nexios-course-day20: GET /process-alt, the async-for form.
    start = anyio.current_time()
    results: list[int] = []
    async for group in create_task_group():
        task1 = group.create_task(process_item(1))
        task2 = group.create_task(process_item(2))
        results = [await t for t in (task1, task2)]

    assert {"results": results} == {"results": [10, 20]}
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_batch_process_with_limit() -> None:
    # nexios-concurrency-guide.txt "Resource Management": a semaphore of 2 around
    # the items, results = [await task for task in tasks].
    semaphore = anyio.Semaphore(2)

    async def process_with_limit(item: int) -> int:
        async with semaphore:
            return await process_item(item)

    start = anyio.current_time()
    async with TaskGroup() as group:
        tasks = [group.create_task(process_with_limit(item)) for item in (1, 1, 1, 1)]
        results = [await task for task in tasks]

    assert results == [10, 10, 10, 10]
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)


async def protected_operation(
    risky1: Any, risky2: Any, events: list[str]
) -> tuple[dict[str, Any], int]:
    # nexios-concurrency-guide "Error Handling Best Practices", with the asyncio
    # CancelledError replaced by the backend's cancellation class. Unlike the seed, the
    # cancellation is re-raised after the cleanup (swallowing it breaks AnyIO/trio).
    try:
        async with TaskGroup() as group:
            task1 = group.create_task(risky1())
            task2 = group.create_task(risky2())

            result1 = await task1
            result2 = await task2

        return {"status": "success", "data": [result1, result2]}, 200

    except anyio.get_cancelled_exc_class():
        events.append("cleanup_resources")
        raise

    except Exception as e:
        events.append(f"log_error {type(e).__name__}: {e!r}")
        return {"error": "Internal error"}, 500


async def test_seed_error_handling_success() -> None:
    events: list[str] = []
    response = await protected_operation(
        lambda: fetch("r1"), lambda: fetch("r2"), events
    )
    assert response == ({"status": "success", "data": ["r1", "r2"]}, 200)
    assert events == []


async def test_seed_error_handling_failure() -> None:
    events: list[str] = []
    response = await protected_operation(
        lambda: fail(ValueError("db down")), lambda: anyio.sleep_forever(), events
    )
    assert response == ({"error": "Internal error"}, 500)
    assert events == [
        "log_error ExceptionGroup: ExceptionGroup('unhandled errors in a TaskGroup', "
        "[ValueError('db down')])"
    ] or events == [
        "log_error ExceptionGroup: ExceptionGroup('Exceptions from Trio nursery', "
        "[ValueError('db down')])"
    ]


async def test_seed_error_handling_cancellation() -> None:
    events: list[str] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                protected_operation,
                anyio.sleep_forever,
                anyio.sleep_forever,
                events,
            )
            await anyio.wait_all_tasks_blocked()
            scope.cancel()

    assert scope.cancelled_caught
    assert events == ["cleanup_resources"]


# -- run-portability -----------------------------------------------------------------------


async def _use_fresh_groups() -> list[Any]:
    results: list[Any] = []
    async with create_task_group() as group:
        task = group.create_task(fetch("with"))
    results.append(task.result())
    async for group in create_task_group():
        task = group.create_task(fetch("for"))
    results.append(task.result())

    # A callback added after the task finished (scheduled through the backend).
    ran = anyio.Event()
    task.add_done_callback(lambda t: ran.set())
    await ran.wait()
    results.append(ran.is_set())

    log: list[str] = []
    async for group in create_task_group():
        sleeper = group.create_task(wait_forever(log, "x"))
        await checkpoint()
        break
    await sleeper.wait()
    results.append((sleeper.cancelled(), log))
    return results


def test_run_portability_asyncio_trio_asyncio() -> None:
    group = TaskGroup(name="made without a loop")
    loop_group = create_task_group()

    async def use(g: TaskGroup) -> Any:
        async with g:
            t = g.create_task(fetch(5))
        return t.result()

    expected = ["with", "for", True, (True, ["x finally"])]
    assert anyio.run(use, group, backend="asyncio") == 5
    assert anyio.run(_use_fresh_groups, backend="asyncio") == expected
    assert anyio.run(use, loop_group, backend="trio") == 5
    assert anyio.run(_use_fresh_groups, backend="trio") == expected
    assert anyio.run(_use_fresh_groups, backend="asyncio") == expected

    # An import-time group is entered again in any later run, on any backend.
    assert anyio.run(use, group, backend="trio") == 5
    assert anyio.run(use, loop_group, backend="asyncio") == 5


def test_public_names() -> None:
    assert anyconc.TaskCancelled is anyio.TaskCancelled
    assert anyconc.TaskNotFinished is anyio.TaskNotFinished
    assert anyconc.create_task_group is create_task_group


# -- issue 13: nothing lost at the edges ---------------------------------------------


async def test_started_task_is_listed_while_it_runs() -> None:
    # Issue 13 case 9: tasks started with start() used to be missing from `tasks`.
    release = anyio.Event()

    async def server(*, task_status: anyio.abc.TaskStatus[str]) -> None:
        task_status.started("up")
        await release.wait()

    async with TaskGroup() as group:
        soon = group.create_task(fetch(1, 0.01))
        assert await group.start(server, name="srv") == "up"
        assert [task.name for task in group.tasks] == ["fetch", "srv"]
        assert group.tasks[0] is soon
        await soon
        assert [task.name for task in group.tasks] == ["srv"]
        release.set()

    assert group.tasks == ()


async def test_start_failure_before_started_is_raised_unwrapped() -> None:
    async def broken(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        raise ValueError("cannot start")

    async with TaskGroup() as group:
        with pytest.raises(ValueError, match="^cannot start$"):
            await group.start(broken)
        assert group.tasks == ()


async def test_awaiting_your_own_handle_raises() -> None:
    # Issue 13 case 9: it used to wait for itself forever.
    handles: list[Task[Any]] = []
    errors: list[str] = []

    async def selfish() -> str:
        await checkpoint()
        try:
            await handles[0]
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            await handles[0].wait()
        except RuntimeError as exc:
            errors.append(str(exc))
        return "done"

    async with TaskGroup() as group:
        handles.append(group.create_task(selfish(), name="selfish"))

    message = (
        "task 'selfish' cannot wait for itself: awaiting its own handle would never "
        "return; await it from another task"
    )
    assert errors == [message, message]
    assert handles[0].result() == "done"


async def test_asyncio_task_surface_names_coro_and_cancel_message() -> None:
    # Issue 13 case 9: get_name, set_name, get_coro, cancel(msg).
    async with TaskGroup() as group:
        coro = wait_forever([], "x")
        task = group.create_task(coro, name="first")
        assert task.get_name() == "first"
        task.set_name(42)
        assert task.get_name() == "42" and task.name == "42"
        assert task.get_coro() is coro
        await checkpoint()
        assert task.cancel("shutting down") is True
        assert not task.done()  # cancelling: not finished yet
        assert task.cancel() is True

    assert task.cancelled()
    assert task.get_coro() is None
    assert task.cancel("again") is False
    with pytest.raises(TaskCancelled, match="^shutting down$"):
        task.result()
    with pytest.raises(TaskCancelled, match="^shutting down$"):
        await task
    with pytest.raises(TaskCancelled, match="^shutting down$"):
        task.exception()
    with pytest.raises(
        TypeError,
        match=r"^Task\.cancel\(\) argument 'msg' must be a string or None, got int ",
    ):
        task.cancel(1)  # type: ignore[arg-type]


async def test_repr_names_the_state() -> None:
    async with TaskGroup() as group:
        task = group.create_task(fetch(1), name="job")
        assert repr(task) == "<Task 'job' pending>"
        task.cancel()
        assert repr(task) == "<Task 'job' cancelling>"

    assert repr(task) == "<Task 'job' cancelled>"


async def test_async_for_failure_during_cleanup_after_break_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 13 case 6: leaving the loop early cannot wait for the children, but their
    # failures are not lost.
    caplog.set_level(logging.ERROR, logger="anyconc")
    cleaned = anyio.Event()

    async def fails_in_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()
            raise ValueError("cleanup failed")  # noqa: B012

    async for group in create_task_group(name="left"):
        task = group.create_task(fails_in_cleanup())
        await checkpoint()
        break

    # Nothing can wait at `break`: the child is cancelled, its cleanup runs later.
    assert not cleaned.is_set()
    await task.wait()
    await anyio.wait_all_tasks_blocked()
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert [r.getMessage() for r in records] == [
        "task group 'left' failed after its async for loop was left"
    ]
    assert records[0].exc_info is not None
    failure = records[0].exc_info[1]
    assert isinstance(failure, ExceptionGroup)
    assert [str(e) for e in failure.exceptions] == ["cleanup failed"]


async def test_create_task_from_a_worker_thread_is_refused_and_closes_the_coroutine() -> (
    None
):
    async with TaskGroup() as group:
        coro = fetch("x")
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(group.create_task, coro)
        assert str(info.value) == (
            "TaskGroup.create_task() and start_soon() of an active task group must be "
            "called from the thread of its event loop (no event loop runs in this "
            "thread; the coroutine was closed); from a worker thread, use "
            "anyio.from_thread.run_sync(group.create_task, coro)"
        )
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        with pytest.raises(RuntimeError, match=r"^TaskGroup\.create_task\(\) and "):
            await anyio.to_thread.run_sync(lambda: group.start_soon(fetch, "y"))
        assert group.tasks == ()
        coro = fetch("z")
        task: Task[Any] = await anyio.to_thread.run_sync(
            lambda: anyio.from_thread.run_sync(lambda: group.create_task(coro))
        )
    assert task.result() == "z"
