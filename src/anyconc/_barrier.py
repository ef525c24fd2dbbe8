"""A cyclic barrier with :class:`asyncio.Barrier` semantics on every backend."""

from __future__ import annotations

import enum
from functools import partial
from types import TracebackType

from anyio import Event

from ._lowlevel import OneRunAtATime, call_soon, checkpoint, get_ident
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


# A ticket's index, while it has none in range(parties):
_BLOCKED = -3  # arrived during a drain or a reset, waiting for it to end (not counted)
_RECHECK = -2  # woken without a place (abort, or more arrivals than parties): arrive again
_FILLING_TICKET = -1  # in the filling cycle (counted); still -1 when reset or abort woke it


# A task's ticket is a one-item list, ``[index]`` (the cheapest mutable cell to make):
# found by identity, never by value (see _position).

def _position(tickets: list[list[int]], ticket: list[int]) -> int:
    for position, other in enumerate(tickets):
        if other is ticket:
            return position
    raise ValueError("ticket not found")  # pragma: no cover - a bug


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
    * :meth:`wait` is a checkpoint. The task that trips the barrier yields to the
      scheduler and checks for cancellation on entry, before it takes part, so a task
      cancelled there leaves the barrier untouched; then it returns without yielding
      again (it cannot be cancelled after tripping it). A task that will wait takes
      its place at once, and the wait is its checkpoint, as in asyncio: if it was
      already cancelled when it called :meth:`wait`, it leaves again at once on trio,
      and at the next event-loop iteration on asyncio, where a trip in between counts
      it as released (it raises the cancellation, as a task cancelled after the trip
      does, and the others pass), exactly as with :class:`asyncio.Barrier`.
    * Tasks that arrive during a drain take their places in the next cycle, in
      arrival order, when the drain ends, without being woken for it (asyncio wakes
      them to arrive again: the same outcome for one wait per task instead of two).
      Until the next scheduling point they count as not yet arrived: a
      :meth:`reset` or :meth:`abort` made by the task that ended the drain sends them
      back to arrive again, as in asyncio. More of them than can fill the next cycle
      all arrive again, in the order they run.

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
        "_admissions",
        "_blocked",
        "_count",
        "_event",
        "_filling",
        "_name",
        "_next_event",
        "_parties",
        "_provisional",
        "_serving",
        "_state",
    )

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        check_int("Barrier()", "parties", parties)
        check_optional_str("Barrier()", "name", name)
        self._name = name

        self._parties = parties
        self._state = _FILLING
        # Tasks inside the barrier: the filling parties, plus, while draining or
        # resetting, the woken ones that have not left yet.
        self._count = 0
        self._filling: list[list[int]] = []
        # What the filling tasks sleep on: one event per cycle, made on first use.
        self._event: Event | None = None
        # Tasks that arrived during a drain or reset, waiting for it to end, and what
        # they sleep on (it becomes the next cycle's event when they are admitted).
        self._blocked: list[list[int]] = []
        self._next_event: Event | None = None
        # The first ``_provisional`` filling tasks were admitted from the blocked ones
        # by admission number ``_admissions`` and have not been scheduled since.
        self._provisional = 0
        self._admissions = 0
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
        if self._serving.thread != get_ident():  # the inlined self._serving.check()
            self._serving.claim("wait")
        # The hot path, inline: a task that will wait takes its place at once, and
        # the wait is its checkpoint (see the class docstring for cancellation); the
        # task that will trip the barrier, and every other case, go to _arrive().
        state = self._state
        if state is _FILLING:
            filling = self._filling
            if len(filling) + 1 >= self._parties:
                # The tripping task makes a full checkpoint first, before it takes
                # part, so that it can then release the others and leave at once, as
                # in asyncio (it is the first to run after the trip; the last task to
                # leave restores the filling state).
                await checkpoint()
                return await self._arrive()
            if not filling:
                # The first task of a cycle makes its event: so a barrier left empty
                # by a finished run never hands that run's event to the next one.
                self._event = Event()
            event = self._event
            ticket = [_FILLING_TICKET]
            filling.append(ticket)
            self._count += 1
        elif state is _BROKEN:
            raise BrokenBarrierError("barrier aborted")
        else:
            # Draining or resetting: wait for it to end. The ticket is then admitted
            # to the next cycle, where it sleeps on, without a wakeup (see _admit).
            blocked = self._blocked
            if not blocked:
                self._next_event = Event()
            event = self._next_event
            ticket = [_BLOCKED]
            blocked.append(ticket)

        assert event is not None
        try:
            await event.wait()
        except BaseException:
            self._abandon(ticket, event)
            raise

        index = ticket[0]
        if index >= 0 and self._state is _DRAINING:
            # Released by the trip, and nothing has happened since.
            self._count -= 1
            if not self._count:
                self._state = _FILLING
                self._admit()
            return index

        return await self._woken(index)

    async def _woken(self, index: int) -> int:
        if index == _RECHECK:
            return await self._arrive()
        # Counted: released by the trip, or by a reset or an abort. A task released
        # by the trip is checked again now that it runs.
        broken = self._state is _BROKEN or self._state is _RESETTING
        self._leave()
        if broken or index < 0:
            raise BrokenBarrierError("barrier reset or aborted while waiting")
        return index

    async def _arrive(self) -> int:
        # wait() after its checkpoint, for every case: trip, take a place, or wait for
        # a drain or reset to end; again when woken without a place.
        while True:
            state = self._state
            if state is _BROKEN:
                raise BrokenBarrierError("barrier aborted")

            if state is _FILLING:
                if len(self._filling) + 1 >= self._parties:
                    # This task trips the barrier: number the waiting tasks, release
                    # them, and leave without yielding again.
                    self._count += 1
                    self._trip()
                    self._leave()
                    return self._parties - 1
                if not self._filling or self._event is None:
                    self._event = Event()
                event = self._event
                ticket = [_FILLING_TICKET]
                self._filling.append(ticket)
                self._count += 1
            else:
                if not self._blocked or self._next_event is None:
                    self._next_event = Event()
                event = self._next_event
                ticket = [_BLOCKED]
                self._blocked.append(ticket)

            try:
                await event.wait()
            except BaseException:
                self._abandon(ticket, event)
                raise

            if ticket[0] != _RECHECK:
                return await self._woken(ticket[0])

    def _trip(self) -> None:
        # The filling tasks (all but the tripping one, which takes the last index)
        # get their indices in arrival order, and one event wakes them all.
        for index, ticket in enumerate(self._filling):
            ticket[0] = index
        self._filling = []
        self._provisional = 0
        self._state = _DRAINING
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def _abandon(self, ticket: list[int], event: Event) -> None:
        # The task leaves while waiting (cancelled): undo what its ticket holds.
        index = ticket[0]
        if index == _BLOCKED:
            del self._blocked[_position(self._blocked, ticket)]
        elif index == _FILLING_TICKET and not event.is_set():
            position = _position(self._filling, ticket)
            if position < self._provisional:
                self._provisional -= 1
            del self._filling[position]
            self._leave()
        elif index != _RECHECK:
            # Released (by the trip, a reset or an abort) before it ran: it counts
            # as having drained, and does not disturb the others.
            self._leave()

    def _leave(self) -> None:
        self._count -= 1
        if self._count == 0 and (
            self._state is _DRAINING or self._state is _RESETTING
        ):
            self._state = _FILLING
            self._admit()

    def _admit(self) -> None:
        # A drain or reset has ended: the tasks that arrived meanwhile take their
        # places in arrival order, still asleep, where asyncio would wake them to
        # arrive again (two waits per cycle instead of one). Until the next
        # scheduling point, when asyncio's would have run, they are *provisional*: a
        # reset() or abort() before then finds them not yet arrived and wakes them
        # to arrive again, as asyncio does. More of them than can fill a cycle:
        # all arrive again (the last of the first ``parties`` trips the barrier).
        blocked = self._blocked
        if not blocked:
            return
        self._blocked = []
        event, self._next_event = self._next_event, None
        assert event is not None
        if len(blocked) >= self._parties:
            for ticket in blocked:
                ticket[0] = _RECHECK
            event.set()
            return

        for ticket in blocked:
            ticket[0] = _FILLING_TICKET
        self._filling = blocked
        self._event = event
        self._count += len(blocked)
        self._provisional = len(blocked)
        self._admissions += 1
        try:
            call_soon(partial(self._settle, self._admissions))
        except RuntimeError:  # pragma: no cover - the run is ending: nothing runs now
            self._provisional = 0

    def _settle(self, admission: int) -> None:
        if admission == self._admissions:
            self._provisional = 0

    def _unadmit(self) -> None:
        # Provisional tasks (see _admit) leave their places and will arrive again.
        n = self._provisional
        if n:
            for ticket in self._filling[:n]:
                ticket[0] = _RECHECK
            del self._filling[:n]
            self._count -= n
            self._provisional = 0

    def _release_filling(self) -> None:
        # Wake the filling tasks: without a place, they raise BrokenBarrierError
        # (provisional ones, made to arrive again by _unadmit, do that instead).
        self._filling = []
        self._provisional = 0
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def _release_blocked(self) -> None:
        for ticket in self._blocked:
            ticket[0] = _RECHECK
        self._blocked = []
        event, self._next_event = self._next_event, None
        if event is not None:
            event.set()

    def reset(self) -> None:
        """
        Return the barrier to the empty filling state.

        Tasks waiting in it raise :exc:`BrokenBarrierError`; the barrier is in the
        *resetting* state until they have all left (tasks arriving meanwhile wait for
        that), then filling. A broken barrier becomes usable again.

        Example::

            barrier.reset()

        """
        self._serving.check("reset", "barrier.reset")
        self._unadmit()
        if self._count > 0:
            self._state = _RESETTING
            self._release_filling()
        else:
            self._state = _FILLING
            self._release_filling()
            self._admit()

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
        self._serving.check("abort", "barrier.abort")
        self._unadmit()
        self._state = _BROKEN
        self._release_filling()
        self._release_blocked()

    @property
    def parties(self) -> int:
        """The number of tasks needed to trip the barrier."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """The number of tasks waiting for the barrier to fill (0 unless filling)."""
        return self._count - self._provisional if self._state is _FILLING else 0

    @property
    def broken(self) -> bool:
        """``True`` if the barrier was aborted and not reset since."""
        return self._state is _BROKEN
