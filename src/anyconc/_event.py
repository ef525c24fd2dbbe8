"""A clearable event: :class:`AsyncEvent`."""

from __future__ import annotations

import math
import weakref
from numbers import Real

import anyio
from anyio.lowlevel import checkpoint

from ._runtoken import current_run
from ._stats import AsyncEventStatistics
from ._util import check_optional_str

__all__ = ["AsyncEvent"]


class _Generation:
    """The waiters between two ``set()`` calls: released together, once, by the next one."""

    __slots__ = ("event", "fired", "run_ref", "waiters")

    def __init__(self, run: object) -> None:
        self.run_ref = weakref.ref(run)
        self.event = anyio.Event()
        self.fired = False
        self.waiters = 0


class AsyncEvent:
    """
    An event that can be set, cleared and set again, without losing a wake-up.

    Like :class:`asyncio.Event`, but it also works on trio (whose ``Event`` cannot be
    cleared) and can be created at import time and used from any number of event-loop runs,
    one after another, on any backend.

    Why clearing is safe here: trio removed ``Event.clear`` because a ``clear()`` right
    after ``set()`` could take the wake-up back from waiters that had not run yet. Here
    releases are per *generation*: each :meth:`wait` joins the generation current when it
    started, and :meth:`set` releases that whole generation for good. A :meth:`clear`
    afterwards only makes *new* waiters block; those already released return ``True`` even
    if they run after the ``clear()``.

    Not thread-safe: call :meth:`set` and :meth:`clear` from the event loop's thread (use
    ``anyio.from_thread.run_sync`` from other threads).

    Example::

        done = AsyncEvent()

        async def worker():
            await do_work()
            done.set()

        if await done.wait(timeout=10):
            print("finished")

    :param name: a name, used in the repr and statistics
    :raises TypeError: if ``name`` is not a string
    """

    __slots__ = ("__weakref__", "_flag", "_generation", "_name")

    def __init__(self, *, name: str | None = None) -> None:
        check_optional_str("name", name)
        self._name = name
        self._flag = False
        self._generation: _Generation | None = None

    def statistics(self) -> AsyncEventStatistics:
        """
        Return a snapshot of the event's state.

        :return: whether it is set, and how many tasks wait for it

        """
        waiters = 0 if self._generation is None else self._generation.waiters
        return AsyncEventStatistics(self._name, self._flag, waiters)

    @property
    def name(self) -> str | None:
        """The event's name, or ``None``."""
        return self._name

    def __repr__(self) -> str:
        waiters = 0 if self._generation is None else self._generation.waiters
        state = "set" if self._flag else "unset"
        name = "" if self._name is None else f" name={self._name!r}"
        return f"<{type(self).__name__}{name} {state} waiters={waiters}>"

    def is_set(self) -> bool:
        """
        Return whether the event is set.

        Example::

            if not shutdown.is_set():
                await serve_one()
        """
        return self._flag

    def set(self) -> None:
        """
        Set the event, releasing every task waiting on it.

        Setting an event that is already set does nothing. Safe to call with no event loop
        running (there is then nobody to release).

        Example::

            job.result = "done"
            job.completed.set()
        """
        self._flag = True
        generation = self._generation
        if generation is not None:
            self._generation = None
            generation.fired = True
            if _in_own_run(generation):
                generation.event.set()

    def clear(self) -> None:
        """
        Reset the event: tasks calling :meth:`wait` from now on block until the next
        :meth:`set`.

        Tasks already released by an earlier :meth:`set` stay released, even those that
        have not run yet.

        Example::

            ready.clear()
            await reload()
            ready.set()
        """
        self._flag = False

    async def wait(self, timeout: float | None = None) -> bool:
        """
        Wait until the event is set.

        Returns ``True`` at once (after a checkpoint, so cancellation is still honoured) if
        the event is set. Otherwise blocks until the next :meth:`set`, and returns ``True``
        then, even if the event was cleared again before this task ran. ``timeout=0`` polls.
        When the timeout expires in the same instant as a ``set()`` releases this waiter,
        the ``set()`` wins (``True``).

        Example::

            if not await ready.wait(timeout=5):
                raise TimeoutError("service did not become ready")

        :param timeout: seconds to wait at most (measured on the event loop's clock), or
            ``None`` to wait without limit
        :return: ``True`` if the event was set, ``False`` if the timeout expired first
        :raises TypeError: if ``timeout`` is not a number
        :raises ValueError: if ``timeout`` is negative or NaN
        """
        _check_timeout(timeout)
        if self._flag:
            await checkpoint()
            return True

        run = current_run()
        generation = self._generation
        if generation is None or generation.run_ref() is not run:
            # The first waiter since the last set(), or the waiters left over from a run
            # that ended without finishing them: they can never be released, drop them.
            generation = self._generation = _Generation(run)

        generation.waiters += 1
        try:
            if timeout is None:
                await generation.event.wait()
            else:
                with anyio.move_on_after(timeout):
                    await generation.event.wait()
        finally:
            generation.waiters -= 1
            if generation.waiters == 0 and self._generation is generation:
                # Nobody waits any more: do not keep this run's event alive.
                self._generation = None

        return generation.fired


def _in_own_run(generation: _Generation) -> bool:
    # Whether set() can safely wake this generation's waiters. When set() is called outside
    # any AnyIO-aware context (a plain loop callback), the run cannot be told: assume it is
    # the waiters' own, which it is unless their run ended without finishing them.
    try:
        run = current_run()
    except anyio.NoEventLoopError:
        return generation.run_ref() is not None
    return generation.run_ref() is run


def _check_timeout(timeout: object) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__qualname__}"
        )
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(
            f"timeout must be a non-negative number of seconds, got {timeout!r}"
        )
