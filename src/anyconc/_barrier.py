"""A cyclic barrier with :class:`asyncio.Barrier` semantics on every backend."""

from __future__ import annotations

import enum
from collections import deque
from types import TracebackType

from anyio import Event
from anyio.lowlevel import checkpoint

from ._lowlevel import OneRunAtATime
from ._stats import BarrierStatistics
from ._util import check_int, check_optional_str

__all__ = ["Barrier", "BrokenBarrierError"]


class BrokenBarrierError(RuntimeError):
    """
    Raised by :meth:`Barrier.wait` when the barrier is broken (:meth:`Barrier.abort`)
    or is reset (:meth:`Barrier.reset`) while the task is waiting in it.
    """


class _State(enum.Enum):
    FILLING = "filling"
    DRAINING = "draining"
    RESETTING = "resetting"
    BROKEN = "broken"


_FILLING = _State.FILLING
_DRAINING = _State.DRAINING
_RESETTING = _State.RESETTING
_BROKEN = _State.BROKEN


class _Party:
    """A task waiting in a filling barrier; ``index`` is given when the barrier trips."""

    __slots__ = ("event", "index")

    def __init__(self) -> None:
        self.event = Event()
        self.index = -1


class Barrier:
    """
    A cyclic barrier: ``parties`` tasks wait for each other, then all proceed together.

    Semantics are those of :class:`asyncio.Barrier` (Python 3.11+), on every backend:

    * :meth:`wait` blocks until ``parties`` tasks are waiting; then all of them return
      at once (the barrier *trips*), each with a distinct index in
      ``range(parties)``: the order in which they arrived, the last to arrive getting
      ``parties - 1``.
    * The barrier is cyclic. While the tasks of a cycle are leaving it (*draining*),
      newly arriving tasks wait for the drain to finish before they start filling the
      next cycle.
    * :meth:`reset` breaks the tasks waiting in it with :exc:`BrokenBarrierError` and
      returns the barrier to the empty *filling* state once they have left.
      :meth:`abort` breaks it: current and future :meth:`wait` calls raise
      :exc:`BrokenBarrierError` until :meth:`reset` is called.
    * A task woken by the trip is checked again when it runs: if the barrier was reset
      or aborted in between, it raises :exc:`BrokenBarrierError` instead of returning
      its index (asyncio does the same).
    * Cancellation, as in asyncio: a task cancelled while the barrier fills leaves it
      (``n_waiting`` drops by one; the others keep waiting for a full set); a task
      cancelled after the trip but before it ran raises the cancellation, counts as
      having drained, and does not disturb the others. A task cancelled while waiting
      for a drain to finish just leaves.

    Where asyncio is silent or differs:

    * Indices are handed out when the barrier trips, in arrival order of the tasks
      still waiting, so they are distinct even after a waiter was cancelled (asyncio
      numbers tasks on arrival and can repeat an index in that case).
    * :meth:`reset` and :meth:`abort` are plain methods, as in :mod:`threading`
      (asyncio's are coroutines only because they take an internal lock).
    * :meth:`wait` is a checkpoint: it yields to the scheduler and checks for
      cancellation on entry, before the task takes part, so a task cancelled there
      leaves the barrier untouched. The task that trips the barrier then returns
      without yielding again (it cannot be cancelled after tripping it).

    Run-portable: a barrier can be created at import time and used by any number of
    runs, one after another, on any backend. Tasks of a finished run have left it
    (they were cancelled with the run); the broken state carries over until
    :meth:`reset`. Not thread-safe: use it from the event-loop thread. It serves one
    run at a time: a run in another thread that uses it while the run it serves is
    still running gets a :exc:`RuntimeError` (give each thread's run its own barrier).

    Example::

        barrier = Barrier(3)

        async def worker(name: str) -> None:
            await anyio.sleep(1)
            index = await barrier.wait()  # all three continue together
            print(name, "passed the barrier as", index)

    :param parties: the number of tasks that must wait before the barrier trips
    :param name: a name, used in the repr and statistics
    :raises TypeError: if ``parties`` is not an int, or ``name`` not a string
    :raises ValueError: if ``parties`` is less than 1

    """

    __slots__ = (
        "__weakref__",
        "_blocked",
        "_count",
        "_filling",
        "_name",
        "_parties",
        "_serving",
        "_state",
    )

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        check_int("Barrier()", "parties", parties)
        check_optional_str("name", name, "Barrier()")
        self._name = name

        self._parties = parties
        self._state = _FILLING
        # Tasks inside the barrier: the filling parties, plus, while draining or
        # resetting, the woken ones that have not left yet.
        self._count = 0
        self._filling: list[_Party] = []
        # Tasks that arrived during a drain or reset, waiting for it to end.
        self._blocked: deque[Event] = deque()
        self._serving = OneRunAtATime("Barrier")

    def statistics(self) -> BarrierStatistics:
        """
        Return a snapshot of the barrier's state.

        :return: its parties, the tasks waiting and whether it is broken

        """
        return BarrierStatistics(self._name, self._parties, self.n_waiting, self.broken)

    @property
    def name(self) -> str | None:
        """The barrier's name, or ``None``."""
        return self._name

    def __repr__(self) -> str:
        extra = self._state.value
        if self._name is not None:
            extra = f"{self._name!r}, {extra}"
        if self._state is not _BROKEN:
            extra += f", waiters:{self.n_waiting}/{self._parties}"
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {id(self):#x} [{extra}]>"

    async def __aenter__(self) -> int:
        """``async with barrier as index:`` is ``index = await barrier.wait()``."""
        return await self.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        pass

    async def wait(self) -> int:
        """
        Wait until ``parties`` tasks are waiting, then return this task's index.

        Example::

            index = await barrier.wait()
            if index == 0:
                print("one task does the bookkeeping for this cycle")

        :return: a distinct index in ``range(parties)`` for each task of a cycle
        :raises BrokenBarrierError: if the barrier is broken, or is reset or aborted
            while this task waits in it

        """
        self._serving.check()
        # The checkpoint comes first, before this task takes part, so that the task
        # that trips the barrier can then release the others and leave at once,
        # exactly as in asyncio (it is the first to run after the trip; the last task
        # to leave restores the filling state).
        await checkpoint()
        # Block while the previous cycle drains or a reset completes.
        while self._state is _DRAINING or self._state is _RESETTING:
            event = Event()
            self._blocked.append(event)
            try:
                await event.wait()
            except BaseException:
                if not event.is_set():
                    self._blocked.remove(event)
                raise

        if self._state is _BROKEN:
            raise BrokenBarrierError("barrier aborted")

        self._count += 1
        if len(self._filling) + 1 == self._parties:
            # This task trips the barrier: number the waiting tasks and release them.
            for index, party in enumerate(self._filling):
                party.index = index
                party.event.set()
            self._filling.clear()
            self._state = _DRAINING
            self._leave()
            return self._parties - 1

        party = _Party()
        self._filling.append(party)
        try:
            await party.event.wait()
        except BaseException:
            if not party.event.is_set():
                self._filling.remove(party)
            self._leave()
            raise

        broken = self._state is _BROKEN or self._state is _RESETTING
        self._leave()
        if broken:
            raise BrokenBarrierError("barrier reset or aborted while waiting")
        return party.index

    def _leave(self) -> None:
        self._count -= 1
        if self._count == 0:
            if self._state is _DRAINING or self._state is _RESETTING:
                self._state = _FILLING
            self._wake_blocked()

    def _wake_blocked(self) -> None:
        while self._blocked:
            self._blocked.popleft().set()

    def _release_filling(self) -> None:
        for party in self._filling:
            party.event.set()
        self._filling.clear()

    def reset(self) -> None:
        """
        Return the barrier to the empty filling state.

        Tasks waiting in it raise :exc:`BrokenBarrierError`; the barrier is in the
        *resetting* state until they have all left (tasks arriving meanwhile wait for
        that), then filling. A broken barrier becomes usable again.

        Example::

            barrier.reset()

        """
        self._serving.check()
        if self._count > 0:
            self._state = _RESETTING
            self._release_filling()
        else:
            self._state = _FILLING
            self._wake_blocked()

    def abort(self) -> None:
        """
        Break the barrier.

        Tasks waiting in it, and every later :meth:`wait`, raise
        :exc:`BrokenBarrierError` until :meth:`reset` is called.

        Example::

            try:
                await work()
            except Exception:
                barrier.abort()  # do not leave the other parties waiting forever
                raise

        """
        self._serving.check()
        self._state = _BROKEN
        self._release_filling()
        self._wake_blocked()

    @property
    def parties(self) -> int:
        """The number of tasks needed to trip the barrier."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """The number of tasks waiting for the barrier to fill (0 unless filling)."""
        return self._count if self._state is _FILLING else 0

    @property
    def broken(self) -> bool:
        """``True`` if the barrier was aborted and not reset since."""
        return self._state is _BROKEN
