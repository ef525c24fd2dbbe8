"""run_until_first_complete and AllFailedError, on every backend."""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from anyconc import AllFailedError, Task, TaskGroup, run_until_first_complete

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class Crash(BaseException):
    """A BaseException that is not an Exception (like KeyboardInterrupt)."""


async def after(delay: float, value: Any, log: list[str] | None = None) -> Any:
    try:
        await anyio.sleep(delay)
    finally:
        if log is not None:
            log.append(f"{value} finally")
    return value


async def fail_after(delay: float, exc: BaseException) -> Any:
    await anyio.sleep(delay)
    raise exc


def elapsed_since(start: float) -> float:
    return anyio.current_time() - start


# -- winning ----------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_first_success_wins() -> None:
    log: list[str] = []
    start = anyio.current_time()
    result = await run_until_first_complete(
        lambda: after(3, "slow", log),
        lambda: after(1, "fast", log),
        lambda: after(2, "medium", log),
    )
    assert result == "fast"
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)
    assert sorted(log) == ["fast finally", "medium finally", "slow finally"]


@pytest.mark.virtual_time
async def test_failing_candidate_does_not_end_the_race() -> None:
    start = anyio.current_time()
    result = await run_until_first_complete(
        lambda: fail_after(0.5, ValueError("primary down")),
        lambda: after(1, "backup"),
    )
    assert result == "backup"
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


@pytest.mark.virtual_time
async def test_losers_are_cancelled_and_awaited() -> None:
    log: list[str] = []

    async def slow_cleanup() -> str:
        try:
            await anyio.sleep(10)
            return "loser"
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.5)
            log.append("loser cleaned up")

    start = anyio.current_time()
    assert await run_until_first_complete(slow_cleanup, lambda: after(1, "winner")) == (
        "winner"
    )
    # The loser's finally: (0.5 s of cleanup) had run when the race returned.
    assert log == ["loser cleaned up"]
    assert elapsed_since(start) == pytest.approx(1.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_none_is_a_valid_winning_value() -> None:
    start = anyio.current_time()
    assert (
        await run_until_first_complete(lambda: after(1, None), lambda: after(2, "x"))
        is None
    )
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


async def test_candidate_without_checkpoint_wins() -> None:
    async def immediate() -> str:
        return "now"

    log: list[str] = []
    assert await run_until_first_complete(immediate, lambda: after(5, "late", log)) == (
        "now"
    )
    assert log == ["late finally"]


# -- failing -----------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_all_failed_raises_every_failure_in_candidate_order() -> None:
    errors = [ValueError("a"), KeyError("b"), RuntimeError("c")]
    start = anyio.current_time()
    with pytest.raises(AllFailedError) as excinfo:
        await run_until_first_complete(
            lambda: fail_after(3, errors[0]),
            lambda: fail_after(1, errors[1]),
            lambda: fail_after(2, errors[2]),
        )
    assert elapsed_since(start) == pytest.approx(3, abs=1e-6)
    assert isinstance(excinfo.value, ExceptionGroup)
    assert (
        excinfo.value.message == "all candidates of run_until_first_complete() failed"
    )
    assert len(excinfo.value.exceptions) == 3
    assert all(a is b for a, b in zip(excinfo.value.exceptions, errors, strict=True))


async def test_all_failed_is_catchable_as_exception_group() -> None:
    with pytest.raises(ExceptionGroup) as excinfo:
        await run_until_first_complete(lambda: fail_after(0, ValueError("only")))
    assert type(excinfo.value) is AllFailedError
    assert [str(e) for e in excinfo.value.exceptions] == ["only"]


async def test_candidate_returning_a_non_awaitable_is_a_type_error() -> None:
    # Every candidate is called before any runs: a sync function is a wrong argument.
    log: list[str] = []
    made = after(0, "never run", log)
    with pytest.raises(
        TypeError,
        match=r"^run_until_first_complete\(\) candidate 1: '.*<lambda>' returned int, "
        r"not an awaitable; pass an async function \(or a function returning an "
        r"awaitable\)$",
    ):
        await run_until_first_complete(lambda: made, lambda: 42)  # type: ignore[arg-type, return-value]
    assert inspect.getcoroutinestate(made) == "CORO_CLOSED"
    assert log == []

    def sync() -> str:
        return "x"

    with pytest.raises(TypeError, match=r"candidate 0: '.*sync' returned str"):
        await run_until_first_complete(sync)  # type: ignore[arg-type]


async def test_candidate_that_raises_when_called_loses() -> None:
    def broken() -> Any:
        raise ValueError("broken")

    assert await run_until_first_complete(broken, lambda: after(0, "ok")) == "ok"
    with pytest.raises(AllFailedError) as excinfo:
        await run_until_first_complete(broken)
    assert [str(e) for e in excinfo.value.exceptions] == ["broken"]


async def test_base_exception_ends_the_race_unwrapped() -> None:
    crash = Crash()
    log: list[str] = []
    with pytest.raises(Crash) as excinfo:
        await run_until_first_complete(
            lambda: fail_after(0, crash), lambda: after(10, "other", log)
        )
    assert excinfo.value is crash
    assert log == ["other finally"]


# -- timeout and cancellation ------------------------------------------------------------


@pytest.mark.virtual_time
async def test_timeout_cancels_every_candidate() -> None:
    log: list[str] = []
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        await run_until_first_complete(
            lambda: after(5, "a", log),
            lambda: after(10, "b", log),
            lambda: fail_after(1, ValueError("failed before the timeout")),
            timeout=2,
        )
    assert elapsed_since(start) == pytest.approx(2, abs=1e-6)
    assert sorted(log) == ["a finally", "b finally"]


@pytest.mark.virtual_time
async def test_winner_before_timeout() -> None:
    start = anyio.current_time()
    assert await run_until_first_complete(lambda: after(1.5, "in time"), timeout=2) == (
        "in time"
    )
    assert elapsed_since(start) == pytest.approx(1.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_all_failed_before_timeout() -> None:
    start = anyio.current_time()
    with pytest.raises(AllFailedError):
        await run_until_first_complete(
            lambda: fail_after(1, ValueError("x")), timeout=5
        )
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


@pytest.mark.virtual_time
async def test_caller_cancelled_cancels_every_candidate() -> None:
    log: list[str] = []
    start = anyio.current_time()
    with anyio.move_on_after(1) as scope:
        await run_until_first_complete(
            lambda: after(5, "a", log), lambda: after(6, "b", log), timeout=3
        )
        log.append("not reached")
    assert scope.cancelled_caught
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)
    assert sorted(log) == ["a finally", "b finally"]

    # A single candidate too (its cancellation is not mistaken for a failure).
    with anyio.move_on_after(1) as scope:
        await run_until_first_complete(lambda: after(5, "c", log))
    assert scope.cancelled_caught
    assert elapsed_since(start) == pytest.approx(2, abs=1e-6)
    assert sorted(log) == ["a finally", "b finally", "c finally"]


# -- candidate forms -------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_function_kwargs_tuples() -> None:
    async def search(query: str, delay: float) -> str:
        await anyio.sleep(delay)
        return f"{query} after {delay}"

    start = anyio.current_time()
    result = await run_until_first_complete(
        (search, {"query": "q", "delay": 2}),
        (search, {"query": "q", "delay": 1}),
    )
    assert result == "q after 1"
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


@pytest.mark.virtual_time
async def test_bare_coroutine_objects() -> None:
    log: list[str] = []
    start = anyio.current_time()
    slow = after(2, "slow", log)
    result = await run_until_first_complete(slow, after(1, "fast", log))
    assert result == "fast"
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)
    assert sorted(log) == ["fast finally", "slow finally"]
    assert inspect.getcoroutinestate(slow) == "CORO_CLOSED"


@pytest.mark.virtual_time
async def test_task_handle_candidate_loses_without_being_cancelled() -> None:
    # Decided (docstring): an awaitable the race did not start only stops being waited
    # for when it loses.
    start = anyio.current_time()
    async with TaskGroup() as group:
        task: Task[str] = group.create_task(after(2, "task"))
        assert await run_until_first_complete(task, lambda: after(1, "fn")) == "fn"
        assert elapsed_since(start) == pytest.approx(1, abs=1e-6)
        assert not task.done()

    assert task.result() == "task"
    assert elapsed_since(start) == pytest.approx(2, abs=1e-6)


@pytest.mark.virtual_time
async def test_task_handle_candidate_can_win() -> None:
    async with TaskGroup() as group:
        task = group.create_task(after(1, "task"))
        assert await run_until_first_complete(task, lambda: after(2, "fn")) == "task"


# -- bad arguments ----------------------------------------------------------------------------


async def test_no_candidates() -> None:
    with pytest.raises(
        ValueError, match=r"^run_until_first_complete\(\) needs at least one candidate$"
    ):
        await run_until_first_complete()


async def test_bad_candidate_names_its_position_and_closes_coroutines() -> None:
    ok = after(0, "never run")
    with pytest.raises(
        TypeError,
        match=(
            r"^run_until_first_complete\(\) candidate 1 must be a function returning an "
            r"awaitable, a "
            r"\(function, kwargs\) tuple or an awaitable, got int$"
        ),
    ):
        await run_until_first_complete(ok, 42)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(ok) == "CORO_CLOSED"


async def test_bad_tuple_candidates() -> None:
    async def search(query: str) -> str:
        return query

    first = after(0, "a")
    with pytest.raises(
        TypeError,
        match=(
            r"^run_until_first_complete\(\) candidate 1: the second item of a "
            r"\(function, kwargs\) tuple must be a "
            r"mapping, got list$"
        ),
    ):
        await run_until_first_complete(first, (search, ["q"]))  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(first) == "CORO_CLOSED"

    second = after(0, "b")
    with pytest.raises(
        TypeError,
        match=r"^run_until_first_complete\(\) candidate 2 is a tuple of 3 items; "
        r"expected \(function, kwargs\)$",
    ):
        await run_until_first_complete(
            lambda: after(0, 1),
            second,
            (search, {"query": "q"}, 1),  # type: ignore[arg-type]
        )
    assert inspect.getcoroutinestate(second) == "CORO_CLOSED"

    with pytest.raises(
        TypeError,
        match=(
            r"^run_until_first_complete\(\) candidate 0 argument 'function' must be a "
            r"function, got str 'search'$"
        ),
    ):
        await run_until_first_complete(("search", {}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (-1, ValueError, "got -1$"),
        (-0.5, ValueError, "got -0.5$"),
        (math.nan, ValueError, "got nan$"),
        ("1", TypeError, "got str '1'$"),
        (True, TypeError, "got bool True$"),
    ],
)
async def test_bad_timeout(timeout: Any, error: type[Exception], message: str) -> None:
    coro = after(0, "x")
    started: list[str] = []

    async def record() -> None:
        started.append("called")

    with pytest.raises(
        error,
        match=r"^run_until_first_complete\(\) argument 'timeout' must be a "
        r"non-negative number or None, " + message,
    ):
        await run_until_first_complete(coro, record, timeout=timeout)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    assert started == []


# -- the seeds -----------------------------------------------------------------------------


async def search_primary_db(query: str) -> list[str]:
    await anyio.sleep(0.5)
    return ["result1", "result2"]


async def search_backup_db(query: str) -> list[str]:
    await anyio.sleep(1)
    return ["backup1", "backup2"]


async def search_fallback(query: str, timeout: float) -> list[str]:
    await anyio.sleep(timeout + 0.1)
    return ["fallback"]


async def search(
    query: str,
    primary: Callable[[str], Any] = search_primary_db,
    backup: Callable[[str], Any] = search_backup_db,
    timeout: float | None = None,
) -> tuple[dict[str, Any], int]:
    # nexios-concurrency-guide: GET /search, verbatim but for the injectable sources.
    try:
        result = await run_until_first_complete(
            lambda: primary(query),
            lambda: backup(query),
            (lambda: search_fallback(query), {"timeout": 2.0}),  # type: ignore[call-arg]
            timeout=timeout,
        )
        return {"results": result}, 200
    except TimeoutError:
        return {"error": "Search timed out"}, 504


@pytest.mark.virtual_time
async def test_seed_search() -> None:
    start = anyio.current_time()
    assert await search("q") == ({"results": ["result1", "result2"]}, 200)
    assert elapsed_since(start) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_search_third_candidate_just_loses() -> None:
    # Its zero-argument lambda is called with timeout=2.0: a TypeError, which under
    # anyconc's semantics is a failed candidate, not a crash of the race.
    async def down(query: str) -> list[str]:
        await anyio.sleep(0.1)
        raise ConnectionError(f"{query}: down")

    start = anyio.current_time()
    with pytest.raises(AllFailedError) as excinfo:
        await search("q", primary=down, backup=down)
    assert elapsed_since(start) == pytest.approx(0.1, abs=1e-6)
    errors = excinfo.value.exceptions
    assert [type(e) for e in errors] == [ConnectionError, ConnectionError, TypeError]
    assert "unexpected keyword argument 'timeout'" in str(errors[2])

    # With the backup slower than the primary, the backup still wins over it.
    start = anyio.current_time()
    assert await search("q", primary=down) == ({"results": ["backup1", "backup2"]}, 200)
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_search_timeout_path() -> None:
    start = anyio.current_time()
    assert await search("q", timeout=0.25) == ({"error": "Search timed out"}, 504)
    assert elapsed_since(start) == pytest.approx(0.25, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_course_race() -> None:
    # nexios-course-day20: GET /race.
    async def task1() -> str:
        await anyio.sleep(1)
        return "Task 1 won!"

    async def task2() -> str:
        await anyio.sleep(2)
        return "Task 2 won!"

    start = anyio.current_time()
    result = await run_until_first_complete(task1, (task2, {}))
    assert {"winner": result} == {"winner": "Task 1 won!"}
    assert elapsed_since(start) == pytest.approx(1, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_parallel_processing_with_fallback() -> None:
    # nexios-concurrency-guide.txt: a race nested in a TaskGroup.
    log: list[str] = []

    async def fetch_from_primary_db(user_id: str) -> dict[str, str]:
        await anyio.sleep(0.1)
        raise ConnectionError("primary down")

    async def fetch_from_cache(user_id: str) -> dict[str, str]:
        await anyio.sleep(0.2)
        return {"id": user_id, "source": "cache"}

    async def fetch_from_backup_db(user_id: str) -> dict[str, str]:
        try:
            await anyio.sleep(1)
            return {"id": user_id, "source": "backup"}
        finally:
            log.append("backup cancelled")

    async def get_user_preferences(user_id: str) -> dict[str, str]:
        await anyio.sleep(0.5)
        return {"theme": "dark"}

    async def get_user_profile(user_id: str) -> dict[str, Any]:
        async with TaskGroup() as group:
            user_task = group.create_task(
                run_until_first_complete(
                    lambda: fetch_from_primary_db(user_id),
                    lambda: fetch_from_cache(user_id),
                    lambda: fetch_from_backup_db(user_id),
                )
            )
            prefs_task = group.create_task(get_user_preferences(user_id))

            user_data = await user_task
            assert log == ["backup cancelled"]
            assert elapsed_since(start) == pytest.approx(0.2, abs=1e-6)
            preferences = await prefs_task

        return {"user": user_data, "preferences": preferences}

    start = anyio.current_time()
    assert await get_user_profile("u7") == {
        "user": {"id": "u7", "source": "cache"},
        "preferences": {"theme": "dark"},
    }
    assert elapsed_since(start) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_race_all_failed_inside_task_group() -> None:
    with pytest.raises(ExceptionGroup) as excinfo:
        async with TaskGroup() as group:
            group.create_task(
                run_until_first_complete(lambda: fail_after(1, ValueError("x")))
            )
            group.create_task(anyio.sleep_forever())

    assert [type(e) for e in excinfo.value.exceptions] == [AllFailedError]


# -- run-portability -------------------------------------------------------------------------


async def _race_twice() -> list[Any]:
    first = await run_until_first_complete(
        lambda: after(0.02, "slow"), (after, {"delay": 0, "value": "fast"})
    )
    try:
        await run_until_first_complete(lambda: fail_after(0, ValueError("x")))
    except AllFailedError as exc:
        second = [str(e) for e in exc.exceptions]
    await checkpoint()
    return [first, second]


def test_run_portability_asyncio_trio_asyncio() -> None:
    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(_race_twice, backend=backend) == ["fast", ["x"]]


def test_all_failed_error_keeps_its_type_when_split() -> None:
    errors = [ValueError("a"), KeyError("b")]
    group = AllFailedError("all failed", errors)
    matched, rest = group.split(ValueError)
    assert type(matched) is AllFailedError
    assert type(rest) is AllFailedError
    assert matched is not None and rest is not None
    assert (matched.message, matched.exceptions) == ("all failed", (errors[0],))
    assert (rest.message, rest.exceptions) == ("all failed", (errors[1],))
