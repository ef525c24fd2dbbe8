"""A clearable event: :class:`AsyncEvent`."""

from __future__ import annotations

import threading

import anyio
from anyio.lowlevel import checkpoint

from ._lowlevel import PerRun, RunRef, current_run_or_none
from ._stats import AsyncEventStatistics
from ._util import check_number, check_optional_str

__all__ = ["AsyncEvent"]


class _Generation:
    """
    The waiters of one run between two ``set()`` calls: released together, once, by
    the next one.
    """

    __slots__ = ("event", "fired", "run", "waiters")

    def __init__(self) -> None:
        self.run = RunRef()
        self.event = anyio.Event()
        self.fired = False
        self.waiters = 0

    def release(self) -> None:
        """Release the waiters, from their run or from any thread."""
        self.fired = True
        if self.run.is_current():
            self.event.set()
        else:  # (if the run has ended, its waiters have gone with it)
            self.run.call_soon_threadsafe(self.event.set)


class _RunSlot:
    """An event's state in one run: its current generation of waiters."""

    __slots__ = ("generation",)

    def __init__(self) -> None:
        self.generation: _Generation | None = None


# Guards the flag and the waiting generations of every AsyncEvent (set() and the start
# of wait() may run in two threads at once, in two runs).
_lock = threading.Lock()


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

    Per run and shared across runs: the flag is shared, by every run and every thread;
    the waiters are per run. ``set()`` releases the waiters of every run, also of runs
    in other threads (through their event loops), and may be called from any thread or
    with no event loop running; ``clear()`` too. A run that ends with tasks still
    waiting leaves nothing behind.

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

    __slots__ = ("__weakref__", "_flag", "_name", "_runs", "_waiting")

    def __init__(self, *, name: str | None = None) -> None:
        check_optional_str("AsyncEvent()", "name", name)
        self._name = name
        self._flag = False
        self._runs: PerRun[_RunSlot] = PerRun(_RunSlot)
        # The generations with waiters, of every run (set() releases them all).
        self._waiting: dict[_Generation, None] = {}

    def statistics(self) -> AsyncEventStatistics:
        """
        Return a snapshot of the event's state.

        :return: whether it is set, and how many tasks wait for it (of the current
            run; outside any run, of every run)

        """
        return AsyncEventStatistics(self._name, self._flag, self._waiters())

    @property
    def name(self) -> str | None:
        """The event's name, or ``None``."""
        return self._name

    def _waiters(self) -> int:
        """The current run's waiters; outside any run, those of every run."""
        everyone = current_run_or_none() is None
        return sum(
            generation.waiters
            for generation in list(self._waiting)
            if everyone or generation.run.is_current()
        )

    def __repr__(self) -> str:
        state = "set" if self._flag else "unset"
        name = "" if self._name is None else f" name={self._name!r}"
        return f"<{type(self).__name__}{name} {state} waiters={self._waiters()}>"

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

        Setting an event that is already set does nothing. Safe to call from any thread,
        with or without an event loop running: the waiters of a run in another thread
        are released through that run's event loop.

        Example::

            job.result = "done"
            job.completed.set()
        """
        with _lock:
            self._flag = True
            if not self._waiting:
                return
            generations = list(self._waiting)
            self._waiting.clear()

        for generation in generations:
            generation.release()

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
        check_number("AsyncEvent.wait()", "timeout", timeout, minimum=0, optional=True)
        if self._flag:
            await checkpoint()
            return True

        slot = self._runs.get()
        generation = slot.generation
        if generation is None or generation.fired:
            # The first waiter of this run since the last set(). Only this run's thread
            # touches its generations' waiter counts; the lock orders the registration
            # with a set() in another thread.
            with _lock:
                if self.is_set():  # set by another thread since the check above
                    generation = None
                else:
                    generation = slot.generation = _Generation()
                    self._waiting[generation] = None
            if generation is None:
                await checkpoint()
                return True

        generation.waiters += 1
        try:
            if timeout is None:
                await generation.event.wait()
            else:
                with anyio.move_on_after(timeout):
                    await generation.event.wait()
        finally:
            generation.waiters -= 1
            if generation.waiters == 0 and not generation.fired:
                # Nobody waits any more: do not keep this run's event alive.
                with _lock:
                    self._waiting.pop(generation, None)
                if slot.generation is generation:
                    slot.generation = None

        return generation.fired
