"""Racing redundant sources: the first success wins, the losers are cancelled."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from inspect import isawaitable
from typing import Any, TypeVar

import anyio

from ._tasks import INTERRUPTS, Interrupted, unwrap_interrupts
from ._util import (
    check_async_callable,
    check_awaitable_result,
    check_number,
    close_unstarted,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

__all__ = ["AllFailedError", "run_until_first_complete"]

T = TypeVar("T")

Candidate = (
    Callable[[], Awaitable[T]]
    | tuple[Callable[..., Awaitable[T]], Mapping[str, Any]]
    | Awaitable[T]
)


class AllFailedError(ExceptionGroup[Exception]):
    """
    Raised by :func:`run_until_first_complete` when every candidate failed.

    Its ``exceptions`` are the candidates' exceptions, in the order the candidates were
    given. Splitting it (``except*``, or trio's cancel scopes on the way out of a
    nursery) keeps the type.
    """

    def derive(self, excs: Sequence[Exception], /) -> AllFailedError:  # type: ignore[override]
        return AllFailedError(self.message, excs)


def _as_factory(
    index: int, candidate: object
) -> tuple[object, Callable[[], Awaitable[Any]]]:
    # The function to name in messages, and how to start the candidate.
    where = f"run_until_first_complete() candidate {index}"
    if isinstance(candidate, tuple):
        if len(candidate) != 2:
            raise TypeError(
                f"{where} is a tuple of {len(candidate)} items; "
                f"expected (function, kwargs)"
            )

        func, kwargs = candidate
        check_async_callable(where, "function", func)
        if not isinstance(kwargs, Mapping):
            raise TypeError(
                f"{where}: the second item of a (function, kwargs) tuple must be "
                f"a mapping, got {type(kwargs).__qualname__}"
            )

        return func, lambda: func(**kwargs)

    if isawaitable(candidate):
        return candidate, lambda: candidate

    if callable(candidate):
        check_async_callable(where, "function", candidate)
        return candidate, candidate

    raise TypeError(
        f"{where} must be a function returning an awaitable, a "
        f"(function, kwargs) tuple or an awaitable, got {type(candidate).__qualname__}"
    )


async def run_until_first_complete(
    *candidates: Candidate[T], timeout: float | None = None
) -> T:
    """
    Run every candidate concurrently and return the value of the first to succeed.

    A candidate is a function called with no arguments (``lambda: search(query)``), a
    ``(function, kwargs)`` tuple called as ``function(**kwargs)``, or an awaitable
    (a coroutine object, a :class:`~anyconc.Task`, ...). A candidate that raises an
    :exc:`Exception` does not end the race: the others go on. Before this function
    returns or raises, every other candidate has been cancelled *and has finished* (its
    ``finally:`` blocks have run). A :exc:`BaseException` that is not an
    :exc:`Exception` (``KeyboardInterrupt``, ...) ends the race and propagates,
    unwrapped (after the other candidates have been cancelled and awaited).

    Awaiting a :class:`~anyconc.Task` or another object that the race did not start
    only stops waiting for it when it loses; it is not cancelled.

    Example::

        result = await run_until_first_complete(
            lambda: search_primary(query),
            lambda: search_backup(query),
            (search_fallback, {"query": query}),
            timeout=2.0,
        )

    :param candidates: the competitors
    :param timeout: seconds after which every candidate is cancelled and
        :exc:`TimeoutError` is raised (``None``: no limit)
    :return: the first successful candidate's value
    :raises AllFailedError: if every candidate raised; it holds all their exceptions
    :raises TimeoutError: if ``timeout`` elapsed before any candidate succeeded
    :raises ValueError: if no candidate is given, or ``timeout`` is negative or NaN
    :raises TypeError: if a candidate is of none of the forms above, or its function
        returns no awaitable (its position and function are named; every function is
        called before any candidate runs, so nothing has run then); coroutine objects
        passed or made along with it are closed

    """
    failures: list[Exception | None] = [None] * len(candidates)
    started: list[Awaitable[Any] | None] = []
    try:
        if not candidates:
            raise ValueError("run_until_first_complete() needs at least one candidate")
        check_number(
            "run_until_first_complete()", "timeout", timeout, minimum=0, optional=True
        )
        factories = [_as_factory(index, c) for index, c in enumerate(candidates)]
        # Every candidate is called here, before any of them runs (as AnyIO's
        # start_soon() calls its function): one that returns no awaitable is a wrong
        # argument (TypeError naming it), not a lost race. One that raises when called
        # has lost, like one whose awaitable raises.
        for index, (func, factory) in enumerate(factories):
            try:
                awaitable = factory()
            except Exception as exc:
                failures[index] = exc
                started.append(None)
                continue

            started.append(awaitable)
            check_awaitable_result(
                f"run_until_first_complete() candidate {index}", func, awaitable
            )
    except BaseException:
        close_unstarted((*candidates, *started))
        raise

    winner: list[T] = []

    async def run_candidate(
        index: int, awaitable: Awaitable[T], group: anyio.abc.TaskGroup
    ) -> None:
        try:
            value = await awaitable
        except Exception as exc:
            failures[index] = exc
            return
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted

        if not winner:
            winner.append(value)
            group.cancel_scope.cancel()

    escaped: BaseException | None = None
    try:
        # The deadline goes on the group's own scope: one cancel scope fewer than
        # fail_after() around it, which is measurable on a race this small.
        async with anyio.create_task_group() as group:
            if timeout is not None:
                group.cancel_scope.deadline = anyio.current_time() + timeout

            for index, maybe in enumerate(started):
                if maybe is not None:
                    group.start_soon(run_candidate, index, maybe, group)
    except BaseExceptionGroup as exc_group:
        # Only a BaseException that is not an Exception gets here (run_candidate keeps
        # the others; an interrupt is carried by Interrupted, so that asyncio does not
        # let it escape the event loop). The race produces one result, so raise it
        # unwrapped, like ``await task`` does; several at once stay grouped.
        unwrapped = unwrap_interrupts(exc_group)
        if not isinstance(unwrapped, BaseExceptionGroup):
            raise unwrapped from None

        if len(unwrapped.exceptions) != 1:
            if unwrapped is exc_group:
                raise

            raise unwrapped from None

        escaped = unwrapped.exceptions[0]
    finally:
        # A candidate whose task was cancelled before it could await its coroutine.
        close_unstarted(started)

    if escaped is not None:
        raise escaped

    if winner:
        return winner[0]

    if group.cancel_scope.cancelled_caught:
        raise TimeoutError

    raise AllFailedError(
        "all candidates of run_until_first_complete() failed",
        [failure for failure in failures if failure is not None],
    )
