"""Single-flight lazy values: :class:`AsyncLazy`."""

from __future__ import annotations

import contextvars
import enum
import functools
import math
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Generic, Literal, TypeVar, cast

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from ._lowlevel import PerRun, spawn_run_task
from ._stats import AsyncLazyStatistics
from ._util import (
    check_async_callable,
    check_awaitable_result,
    check_number,
    check_optional_str,
    logger,
)

__all__ = ["AsyncLazy"]

T = TypeVar("T")


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


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
        "generation",
        "home",
        "logged",
        "retrieved",
        "scope",
        "status",
        "value",
        "waiters",
    )

    def __init__(self, home: _RunState[T], generation: int) -> None:
        # The run's state it is the attempt of, and the AsyncLazy's reset count when
        # it started (a reset since: its result is not cached).
        self.home = home
        self.generation = generation
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.status = _Status.PENDING
        self.waiters = 0
        self.value: T | None = None
        self.error: BaseException | None = None
        self.error_tb: TracebackType | None = None
        self.retrieved = False
        self.logged = False


class _RunState(Generic[T]):
    """An AsyncLazy's state in one run: its computation in flight, its ``ttl`` value."""

    __slots__ = ("attempt", "computed_at", "generation", "value")

    def __init__(self) -> None:
        self.attempt: _Attempt[T] | None = None
        # With a ttl only: the value computed in this run, when, and the reset count then.
        self.value: T | _Missing = _MISSING
        self.computed_at = -math.inf
        self.generation = 0


# Guards the cached value against a reset() in another thread.
_lock = threading.Lock()


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

    Per run and shared across runs: without ``ttl``, the cached value is shared by every
    run, in every thread (the first computation to finish caches it); with ``ttl`` it is
    per run. The computation in flight is per run: concurrent callers of one run share
    it, and two runs at the same time in two threads each compute (each run's callers
    get their own run's result). :meth:`reset` may be called from any thread and applies
    to every run.

    Example::

        config = AsyncLazy(load_config, ttl=600)

        async def handler():
            cfg = await config.get()   # load_config() runs once per 10 minutes

    :param func: an async function (or any callable returning an awaitable) taking no
        arguments; pass the function itself, not ``func()``
    :param ttl: seconds a computed value stays valid, or ``None`` to keep it until
        :meth:`reset`
    :raises TypeError: if ``func`` is not callable (a coroutine object is closed first, so
        no "never awaited" warning is left), is a generator, async generator or built-in
        function (none returns an awaitable), ``ttl`` is not a number, or ``name`` not a
        string. A plain ``def`` function may return an awaitable, so it is accepted here;
        if it returns something else, :meth:`get` raises a :exc:`TypeError` naming it.
    :param name: a name, used in the repr and statistics
    :raises ValueError: if ``ttl`` is not positive
    """

    __slots__ = (
        "__weakref__",
        "_func",
        "_generation",
        "_name",
        "_runs",
        "_ttl",
        "_value",
    )

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        name: str | None = None,
    ) -> None:
        check_async_callable("AsyncLazy()", "func", func, usage="AsyncLazy({})")
        check_number(
            "AsyncLazy()", "ttl", ttl, minimum=0, inclusive=False, optional=True
        )
        check_optional_str("AsyncLazy()", "name", name)
        self._name = name
        self._func = func
        self._ttl = None if ttl is None else float(ttl)
        # The value shared by every run (without ttl only).
        self._value: T | _Missing = _MISSING
        # Counts reset() calls.
        self._generation = 0
        self._runs: PerRun[_RunState[T]] = PerRun(_RunState)

    def statistics(self) -> AsyncLazyStatistics:
        """
        Return a snapshot of the lazy value's state.

        :return: ``"cached"``, ``"computing"`` or ``"unset"``, whether a fresh value is
            cached (:meth:`is_set`), the callers waiting for a computation in flight,
            and the ``ttl``

        """
        # The computation in flight and the ttl value are the current run's.
        run = self._runs.get_or_none()
        attempt = None if run is None else run.attempt
        state: Literal["cached", "computing", "unset"]
        if self._value is not _MISSING or (
            run is not None
            and run.value is not _MISSING
            and run.generation == self._generation
        ):
            state = "cached"
        elif attempt is not None:
            state = "computing"
        else:
            state = "unset"
        waiters = 0 if attempt is None else attempt.waiters
        return AsyncLazyStatistics(self._name, state, self.is_set(), waiters, self._ttl)

    @property
    def name(self) -> str | None:
        """The lazy value's name, or ``None``."""
        return self._name

    def __repr__(self) -> str:
        func = getattr(self._func, "__qualname__", None) or repr(self._func)
        run = self._runs.get_or_none()
        if self._value is not _MISSING or (
            run is not None and self._ttl is not None and self._fresh(run, self._ttl)
        ):
            state = "cached"
        elif run is not None and run.attempt is not None:
            state = "computing"
        else:
            state = "unset"
        name = "" if self._name is None else f" name={self._name!r}"
        return f"<{type(self).__name__}{name} {func} {state} ttl={self._ttl!r}>"

    def _fresh(self, run: _RunState[T], ttl: float) -> bool:
        # This run has a value, not reset since, younger than ttl.
        return (
            run.value is not _MISSING
            and run.generation == self._generation
            and anyio.current_time() - run.computed_at < ttl
        )

    def _cached(self) -> T | _Missing:
        if self._ttl is None:
            return self._value
        run = self._runs.get()
        if self._fresh(run, self._ttl):
            return run.value
        run.value = _MISSING
        return _MISSING

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
            return value
        if self._ttl is not None:
            run = self._runs.get()
            if self._fresh(run, self._ttl):
                return run.value  # type: ignore[return-value]

        return await self._get_uncached()

    async def _get_uncached(self) -> T:
        # An already-cancelled caller must not start work only to abandon it at once.
        await checkpoint_if_cancelled()
        while True:
            value = self._cached()
            if value is not _MISSING:
                return value

            run = self._runs.get()
            attempt = run.attempt
            if attempt is None or attempt.generation != self._generation:
                # None in flight in this run, or one started before a reset().
                attempt = run.attempt = _Attempt(run, self._generation)
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
        if attempt.home.attempt is attempt:
            attempt.home.attempt = None

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
                awaitable = self._func()
                check_awaitable_result("AsyncLazy.get()", self._func, awaitable)
                value = await awaitable
                if attempt.status is _Status.PENDING:
                    attempt.status = _Status.VALUE
                    attempt.value = value
                    home = attempt.home
                    if home.attempt is attempt:
                        home.attempt = None
                        self._store(home, attempt, value)
        except anyio.get_cancelled_exc_class():
            # Not our scope's cancellation (that one the scope swallows): the host task
            # itself is being cancelled, which happens when the event loop run ends.
            self._finish_abandoned(attempt)
            raise
        except BaseException as exc:
            attempt.status = _Status.ERROR
            attempt.error = exc
            attempt.error_tb = exc.__traceback__
            if attempt.home.attempt is attempt:
                attempt.home.attempt = None
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
        if attempt.home.attempt is attempt:
            attempt.home.attempt = None

    def _store(self, home: _RunState[T], attempt: _Attempt[T], value: T) -> None:
        # Cache the value unless reset() was called since the attempt started; without
        # ttl, the first run to finish caches it for every run.
        with _lock:
            if attempt.generation != self._generation:
                return
            if self._ttl is None:
                if self._value is _MISSING:
                    self._value = value
            else:
                home.value = value
                home.computed_at = anyio.current_time()
                home.generation = attempt.generation

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
        with _lock:
            self._value = _MISSING
            self._generation += 1

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
        if self._ttl is None:
            return self._value is not _MISSING
        run = self._runs.get_or_none()
        return run is not None and self._fresh(run, self._ttl)
