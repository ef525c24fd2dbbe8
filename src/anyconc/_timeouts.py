"""Timeouts that raise the built-in :exc:`TimeoutError`, and shielding from cancellation."""

from __future__ import annotations

import contextvars
import math
import sys
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio import CancelScope
from anyio.lowlevel import checkpoint_if_cancelled

from ._lowlevel import current_run_or_none
from ._tasks import INTERRUPTS, Interrupted, find_interrupt
from ._util import check_awaitable, check_number, logger, outside_loop_thread

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Timeout", "shield", "timeout"]

T = TypeVar("T")


# The ``fail_after`` managers entered through each Timeout, innermost last. It is kept
# per task (a context variable), not on the object, because one Timeout object (made at
# import time, say) may be entered by several tasks at once.
_entered: contextvars.ContextVar[
    tuple[tuple[Timeout, AbstractContextManager[CancelScope], CancelScope], ...]
] = contextvars.ContextVar("anyconc_timeouts", default=())

# How the last blocks a task left ended (Timeout, expired), for expired() after the
# block; at most _FINISHED_KEPT, most recent last, one per Timeout object.
_finished: contextvars.ContextVar[tuple[tuple[Timeout, bool], ...]] = (
    contextvars.ContextVar("anyconc_timeouts_finished", default=())
)
_FINISHED_KEPT = 8


class Timeout:
    """
    A reusable timeout: each ``with`` block it guards must finish within
    :attr:`seconds`, or :exc:`TimeoutError` is raised at its end.

    Made by :func:`timeout`; see there. :meth:`when`, :meth:`reschedule` and
    :meth:`expired` have the meaning of :class:`asyncio.Timeout`'s. As one object may
    guard blocks in several tasks at once, they act on the block that the *calling
    task* entered through this object most recently (the innermost one, if nested).

    A worker thread started from inside a block (``anyio.to_thread.run_sync``) sees
    that block (it runs in a copy of the task's context): :meth:`when` answers there
    too, but :meth:`reschedule` and :meth:`expired` act on the run's cancel scope, which
    only its event loop's thread may touch, so they raise :exc:`RuntimeError` there
    (use ``anyio.from_thread.run_sync(t.expired)``).
    """

    __slots__ = ("_seconds",)

    def __init__(self, seconds: float | None) -> None:
        check_number("Timeout()", "seconds", seconds, minimum=0, optional=True)

        self._seconds = seconds

    @property
    def seconds(self) -> float | None:
        """The time allowed for each block, in seconds (``None``: no limit)."""
        return self._seconds

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self._seconds!r})"

    def __enter__(self) -> CancelScope:
        reason = None if self._seconds is None else f"timed out after {self._seconds}s"
        manager = anyio.fail_after(self._seconds, reason=reason)
        scope = manager.__enter__()
        _entered.set((*_entered.get(), (self, manager, scope)))
        return scope

    def _scope(self) -> CancelScope | None:
        # The scope of the innermost block the current task entered through self.
        for entry in reversed(_entered.get()):
            if entry[0] is self:
                return entry[2]
        return None

    def _in_loop_thread(self, method: str) -> CancelScope | None:
        # The current block's scope, refused in a thread that runs no event loop.
        scope = self._scope()
        if scope is not None and current_run_or_none() is None:
            raise outside_loop_thread(
                f"Timeout.{method}() inside a block",
                f"t.{method}, when" if method == "reschedule" else f"t.{method}",
            )
        return scope

    def when(self) -> float | None:
        """
        The deadline of the current block, on the event loop's clock
        (:func:`anyio.current_time`), as :meth:`asyncio.Timeout.when`.

        :return: the deadline, or ``None`` if it has none, or if the current task is
            not inside a block of this timeout

        """
        scope = self._scope()
        if scope is None or scope.deadline == math.inf:
            return None
        return scope.deadline

    def reschedule(self, when: float | None) -> None:
        """
        Move the deadline of the current block, as :meth:`asyncio.Timeout.reschedule`.

        :param when: the new deadline on the event loop's clock
            (``anyio.current_time() + 10``), or ``None`` for no deadline; a time already
            past cancels the block at its next checkpoint
        :raises RuntimeError: if the current task is not inside a block of this timeout
            (as asyncio when the timeout has not been entered), or the timeout has
            already expired, or if called from a thread that runs no event loop (a
            worker thread started in the block)
        :raises TypeError: if ``when`` is not a number or ``None``
        :raises ValueError: if ``when`` is NaN

        """
        check_number("Timeout.reschedule()", "when", when, optional=True)
        scope = self._in_loop_thread("reschedule")
        if scope is None:
            raise RuntimeError(
                "this timeout was not entered by the current task: reschedule() moves "
                "the deadline of a block, from inside it"
            )
        if scope.cancel_called:
            raise RuntimeError("this timeout has already expired")

        scope.deadline = math.inf if when is None else when

    def expired(self) -> bool:
        """
        Whether the timeout fired, as :meth:`asyncio.Timeout.expired`: inside the block,
        once its deadline has passed; after it, whether it ended with this timeout's
        :exc:`TimeoutError` (for the last blocks the task left).

        :return: ``True`` if the deadline of the current (or last) block passed
        :raises RuntimeError: if called inside a block from a thread that runs no event
            loop (a worker thread started in the block)

        """
        scope = self._in_loop_thread("expired")
        if scope is not None:
            return scope.cancel_called
        for timeout_, expired in reversed(_finished.get()):
            if timeout_ is self:
                return expired
        return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                break
        else:
            raise RuntimeError("this timeout was not entered by the current task")

        manager = stack[index][1]
        _entered.set(stack[:index] + stack[index + 1 :])
        expired = False
        try:
            return manager.__exit__(exc_type, exc_val, exc_tb)
        except TimeoutError:
            expired = True  # fail_after() converts its own cancellation only
            raise
        finally:
            finished = [item for item in _finished.get() if item[0] is not self]
            finished.append((self, expired))
            _finished.set(tuple(finished[-_FINISHED_KEPT:]))

    async def __aenter__(self) -> CancelScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        return self.__exit__(exc_type, exc_val, exc_tb)


def timeout(seconds: float | None) -> Timeout:
    """
    Limit the time a block may take; raise the built-in :exc:`TimeoutError` if it
    takes longer, on every backend.

    It is :func:`anyio.fail_after` with the argument checked up front and the clock
    started when the block is *entered* (not when ``timeout()`` is called), so one
    ``timeout(5)`` object can be made at import time, with no event loop, and then
    guard any number of blocks, in any task, in any run. When the time is up, the block
    is cancelled at its next checkpoint and :exc:`TimeoutError` is raised where the
    block ends; an outer cancellation is never turned into a :exc:`TimeoutError`.

    Both ``with`` and ``async with`` work (the latter for code ported from
    :func:`asyncio.timeout`); the value bound by ``as`` is the block's
    :class:`anyio.CancelScope`, whose deadline may be moved. The returned
    :class:`Timeout` also has :meth:`~Timeout.when`, :meth:`~Timeout.reschedule` and
    :meth:`~Timeout.expired`, as :class:`asyncio.Timeout` (call them on the object
    ``timeout()`` returned, not on the ``as`` value)::

        deadline = anyconc.timeout(10)
        try:
            with deadline:
                await connect()
                deadline.reschedule(anyio.current_time() + 60)  # connected: more time
                await transfer()
        except TimeoutError:
            if not deadline.expired():
                raise  # raised inside the block, not by this timeout

    Example::

        with anyconc.timeout(2.5):
            reply = await client.get(url)

    :param seconds: the time allowed, in seconds; ``0`` cancels the block at its first
        checkpoint; ``None`` or ``math.inf`` sets no limit
    :return: a reusable context manager
    :raises TypeError: if ``seconds`` is not a number or ``None``
    :raises ValueError: if ``seconds`` is negative or NaN (as with :func:`trio.fail_after`)

    """
    check_number("timeout()", "seconds", seconds, minimum=0, optional=True)
    return Timeout(seconds)


async def shield(aw: Awaitable[T]) -> T:
    """
    Await ``aw`` to completion even if the caller is cancelled meanwhile; then deliver
    the cancellation.

    Unlike :func:`asyncio.shield`, the caller does not stop waiting: a cancellation of
    the caller (a cancel scope, a timeout, or a native ``asyncio`` ``task.cancel()``) is
    held back until ``aw`` has finished, and is then raised. So code after
    ``await shield(...)`` never runs with the work half done. What happens to the
    outcome when the caller was cancelled meanwhile:

    * ``aw``'s result is dropped: the cancellation is what the caller sees (keep the
      value from inside the work if it must survive);
    * a failure of ``aw`` is logged once, with its traceback, on the ``anyconc`` logger,
      and the cancellation is raised.

    Without a cancellation, ``aw``'s result is returned and its exception raised
    unchanged; a ``KeyboardInterrupt`` or ``SystemExit`` from ``aw`` is raised
    unwrapped, on asyncio too (where the child task would let it escape the event
    loop). ``aw`` is awaited in a child task (so that a native asyncio cancellation
    of the caller cannot reach it), which means changes that ``aw`` makes to context
    variables are not seen by the caller, as with :func:`asyncio.shield`. ``aw`` is
    awaited even when the caller is already cancelled when calling ``shield()``.
    Shielding has no time limit: wrap the work in :func:`timeout` inside if needed.

    Example::

        async def save(order):
            # the row is written even if the request handler is cancelled
            await anyconc.shield(db.insert(order))

    :param aw: a coroutine, task handle, future or any other awaitable
    :return: ``aw``'s result
    :raises TypeError: if ``aw`` is not awaitable (e.g. ``work`` passed instead of
        ``work()``)

    """
    check_awaitable("shield()", "aw", aw)

    outcome: list[tuple[bool, Any]] = []

    async def run() -> None:
        with CancelScope(shield=True):
            try:
                value = await aw
            except Exception as exc:
                outcome.append((False, exc))
            except INTERRUPTS as exc:
                raise Interrupted(exc) from None  # see _tasks.Interrupted
            else:
                outcome.append((True, value))

    try:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run, name=f"anyconc.shield({aw!r})")
        except BaseExceptionGroup as exc_group:
            # An interrupt of the shielded work (the only thing run() lets out) reaches
            # the caller unwrapped, on asyncio too (API.md rule 7).
            interrupt = find_interrupt(exc_group)
            if interrupt is None:
                raise

            raise interrupt from None

        # trio lets a nursery exit normally when the cancellation arrived while it
        # waited for its (shielded) child: deliver it now, on every backend.
        await checkpoint_if_cancelled()
    except BaseException:
        if outcome and not outcome[0][0]:
            logger.error(
                "shielded work failed while its caller was being cancelled",
                exc_info=outcome[0][1],
            )
        raise

    succeeded, value = outcome[0]
    if not succeeded:
        try:
            raise value
        finally:
            del value, outcome

    return value  # type: ignore[no-any-return]
