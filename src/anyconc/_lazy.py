"""Single-flight lazy values: :class:`AsyncLazy`."""

from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import math
import weakref
from collections.abc import Awaitable, Callable
from numbers import Real
from types import TracebackType
from typing import Final, Generic, TypeVar, cast

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from ._lowlevel import spawn_run_task
from ._runtoken import current_run
from ._util import logger

__all__ = ["AsyncLazy"]

T = TypeVar("T")


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


def _positive_seconds_or_none(ttl: object) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, Real):
        raise TypeError(
            f"ttl must be a number of seconds or None, got {type(ttl).__qualname__}"
        )
    seconds = float(ttl)
    if not seconds > 0:  # also rejects NaN
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return seconds


class _Status(enum.Enum):
    PENDING = enum.auto()
    VALUE = enum.auto()
    ERROR = enum.auto()
    #: Cancelled: by its last waiter leaving, or from outside (the event loop shutting down).
    ABANDONED = enum.auto()


class _Attempt(Generic[T]):
    """One call of ``func``: its waiters, its cancel scope and, once finished, its outcome."""

    __slots__ = (
        "done",
        "error",
        "error_tb",
        "logged",
        "retrieved",
        "run_ref",
        "scope",
        "status",
        "value",
        "waiters",
    )

    def __init__(self, run: object) -> None:
        self.run_ref = weakref.ref(run)
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.status = _Status.PENDING
        self.waiters = 0
        self.value: T | None = None
        self.error: BaseException | None = None
        self.error_tb: TracebackType | None = None
        self.retrieved = False
        self.logged = False


class AsyncLazy(Generic[T]):
    """
    A value computed on first use by an async function, cached, and shared single-flight.

    The first :meth:`get` calls ``func()``; callers that arrive while it runs wait for that
    same call instead of starting their own, and later callers get the cached value at once.
    Any value is cached, ``None`` included.

    Semantics where a plain cache would be surprising:

    * **Failures are not cached.** If ``func`` raises, every caller waiting on that attempt
      gets the same exception object (the original, not wrapped), and the next :meth:`get`
      calls ``func`` again.
    * **Cancellation never poisons the computation.** ``func`` does not run inside the
      calling task: it runs in a task of its own, owned by the current event-loop run (on
      trio a system task, on asyncio a loop task), so a caller cancelled while waiting just
      stops waiting and the others still get the value. When the *last* waiting caller
      leaves before the value is ready, nobody wants the value any more: the computation is
      cancelled, nothing is cached, and the next :meth:`get` starts afresh. (Work is not
      left running unowned; a result that still arrives after that is discarded.)
    * ``func`` sees the context variables of the caller that started it.
    * :meth:`reset` drops the cached value. A computation in flight still answers the
      callers already waiting for it, but its result is not cached: callers after the reset
      start a new computation.
    * ``ttl`` (seconds) expires a value that long after ``func`` returned it, measured with
      :func:`anyio.current_time` (so it follows a virtual test clock); at exactly ``ttl``
      seconds the value is expired. The clocks of two event-loop runs are unrelated, so a
      value with a ``ttl`` computed in another run (or looked at with no run at all) counts
      as expired. Without ``ttl`` a value is kept across runs until :meth:`reset`: mind
      values bound to an event loop (clients, connections) when you run several loops.
    * The cached fast path of :meth:`get` does **not** checkpoint: it returns without
      yielding to the scheduler or checking for cancellation, like
      :func:`anyio.functools.cache` (``always_checkpoint=False``), because a checkpoint
      costs 10-30 times the lookup itself. Every call that has to wait checkpoints.

    Not thread-safe: use it from event-loop threads, one run at a time.

    Example::

        config = AsyncLazy(load_config, ttl=600)

        async def handler():
            cfg = await config.get()   # load_config() runs once per 10 minutes

    :param func: an async function (or any callable returning an awaitable) taking no
        arguments; pass the function itself, not ``func()``
    :param ttl: seconds a computed value stays valid, or ``None`` to keep it until
        :meth:`reset`
    :raises TypeError: if ``func`` is not callable (a coroutine object is closed first, so
        no "never awaited" warning is left) or ``ttl`` is not a number
    :raises ValueError: if ``ttl`` is not positive
    """

    __slots__ = (
        "__weakref__",
        "_attempt",
        "_computed_at",
        "_func",
        "_ttl",
        "_value",
        "_value_run",
    )

    def __init__(
        self, func: Callable[[], Awaitable[T]], *, ttl: float | None = None
    ) -> None:
        checked_func: object = func
        if inspect.iscoroutine(checked_func):
            name = checked_func.__name__
            checked_func.close()  # no "never awaited" warning for a rejected argument
            raise TypeError(
                f"AsyncLazy() expects func to be a function, got the coroutine object "
                f"{name}(); pass the function itself: AsyncLazy({name})"
            )
        if not callable(checked_func):
            raise TypeError(
                f"AsyncLazy() expects func to be a callable returning an awaitable, "
                f"got {type(checked_func).__qualname__}"
            )

        self._func = func
        self._ttl = _positive_seconds_or_none(ttl)
        self._value: T | _Missing = _MISSING
        self._computed_at = -math.inf
        self._value_run: weakref.ref[object] | None = None
        self._attempt: _Attempt[T] | None = None

    def __repr__(self) -> str:
        func = getattr(self._func, "__qualname__", None) or repr(self._func)
        if self._value is not _MISSING:
            state = "cached"
        elif self._attempt is not None:
            state = "computing"
        else:
            state = "unset"
        return f"<{type(self).__name__} {func} {state} ttl={self._ttl!r}>"

    def _fresh(self, ttl: float) -> bool:
        # The cached value (which exists) is younger than ttl and from this run.
        run_ref = self._value_run
        try:
            run = current_run()
        except anyio.NoEventLoopError:
            return False
        if run_ref is None or run_ref() is not run:
            return False
        return anyio.current_time() - self._computed_at < ttl

    async def get(self) -> T:
        """
        Return the value, computing it first if it is not cached (or expired).

        Callers that arrive while it is being computed wait for the same computation.

        Example::

            stats = await daily_stats.get()

        :return: the value ``func`` returned
        :raises BaseException: whatever ``func`` raised, unwrapped (the same object for every
            caller waiting on that attempt; it is not cached)
        """
        value = self._value
        if value is not _MISSING:
            ttl = self._ttl
            if ttl is None or self._fresh(ttl):
                return value
            self._value = _MISSING
            self._value_run = None

        return await self._get_uncached()

    async def _get_uncached(self) -> T:
        # An already-cancelled caller must not start work only to abandon it at once.
        await checkpoint_if_cancelled()
        while True:
            value = self._value
            if value is not _MISSING:
                if self._ttl is None or self._fresh(self._ttl):
                    return value
                self._value = _MISSING
                self._value_run = None

            run = current_run()
            attempt = self._attempt
            if attempt is None or attempt.run_ref() is not run:
                # None in flight, or one left over from a run that ended: start our own.
                attempt = self._attempt = _Attempt(run)
                attempt.waiters = 1
                name = getattr(self._func, "__qualname__", None) or repr(self._func)
                # The computation must not run in our cancel scope: it gets a task of
                # its own, owned by the run (the one backend-specific call, kept in
                # _lowlevel).
                spawn_run_task(
                    functools.partial(self._compute, attempt),
                    name=f"anyconc.AsyncLazy({name})",
                    context=contextvars.copy_context(),
                    on_done=functools.partial(self._host_ended, attempt),
                )
            else:
                attempt.waiters += 1

            try:
                await attempt.done.wait()
            except BaseException:
                attempt.waiters -= 1
                if attempt.waiters == 0:
                    if attempt.status is _Status.PENDING:
                        self._abandon(attempt)
                    else:
                        self._log_unretrieved(attempt)
                raise

            attempt.waiters -= 1
            if attempt.status is _Status.VALUE:
                return cast(T, attempt.value)
            if attempt.status is _Status.ERROR:
                attempt.retrieved = True
                error = cast(BaseException, attempt.error)
                # Re-raise with the original traceback each time, so that raising one
                # exception object in many tasks does not keep growing its traceback.
                raise error.with_traceback(attempt.error_tb)

            # Abandoned from outside while we waited (the event loop is shutting down):
            # our own cancellation, if any, comes at the next checkpoint; otherwise retry.

    def _abandon(self, attempt: _Attempt[T]) -> None:
        attempt.status = _Status.ABANDONED
        attempt.scope.cancel()
        if self._attempt is attempt:
            self._attempt = None

    def _log_unretrieved(self, attempt: _Attempt[T]) -> None:
        if (
            attempt.status is _Status.ERROR
            and not attempt.retrieved
            and not attempt.logged
        ):
            attempt.logged = True
            logger.error(
                "AsyncLazy(%s) failed and no caller was left to receive the error",
                getattr(self._func, "__qualname__", None) or repr(self._func),
                exc_info=attempt.error,
            )

    async def _compute(self, attempt: _Attempt[T]) -> None:
        # Runs in the detached task. It must never raise (on trio a system task that raises
        # crashes the run), except for its own cancellation when the event loop shuts down.
        try:
            with attempt.scope:
                value = await self._func()
                if attempt.status is _Status.PENDING:
                    attempt.status = _Status.VALUE
                    attempt.value = value
                    if self._attempt is attempt:
                        self._value = value
                        self._computed_at = anyio.current_time()
                        run = attempt.run_ref()
                        self._value_run = None if run is None else weakref.ref(run)
                        self._attempt = None
        except anyio.get_cancelled_exc_class():
            # Not our scope's cancellation (that one the scope swallows): the host task
            # itself is being cancelled, which happens when the event loop run ends.
            self._finish_abandoned(attempt)
            raise
        except BaseException as exc:
            attempt.status = _Status.ERROR
            attempt.error = exc
            attempt.error_tb = exc.__traceback__
            if self._attempt is attempt:
                self._attempt = None
            if attempt.waiters == 0:
                self._log_unretrieved(attempt)
        else:
            # Cancelled by its last waiter leaving (the scope swallowed the cancellation).
            self._finish_abandoned(attempt)
        finally:
            attempt.done.set()

    def _host_ended(self, attempt: _Attempt[T]) -> None:
        # The host task ended. On asyncio a task cancelled before its first step (the run
        # ending right after get() started it) never runs _compute: answer the waiters.
        if attempt.status is _Status.PENDING:
            self._finish_abandoned(attempt)
            attempt.done.set()

    def _finish_abandoned(self, attempt: _Attempt[T]) -> None:
        if attempt.status is _Status.PENDING:
            attempt.status = _Status.ABANDONED
        if self._attempt is attempt:
            self._attempt = None

    def reset(self) -> None:
        """
        Drop the cached value, so the next :meth:`get` computes it again.

        A computation in flight is not cancelled: it still answers the callers waiting on
        it, but its result is not cached, and callers arriving after the reset start a new
        computation. Safe to call with no event loop running.

        Example::

            await refresh_database()
            daily_stats.reset()
        """
        self._value = _MISSING
        self._value_run = None
        self._attempt = None

    def is_set(self) -> bool:
        """
        Return whether a value is cached and not expired.

        With a ``ttl``, a value is expired from ``ttl`` seconds after it was computed, and
        always when asked from another event-loop run than the one that computed it, or
        from outside any run. Never starts a computation.

        Example::

            if not lazy.is_set():
                logger.info("first request: loading the model")
        """
        if self._value is _MISSING:
            return False
        ttl = self._ttl
        return ttl is None or self._fresh(ttl)
