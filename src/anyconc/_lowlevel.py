"""
The only backend-specific code in anyconc.

AnyIO has no primitive for two jobs that anyconc needs, and is slower than it could be
for two hot-path ones:

* starting a task that belongs to the *run* rather than to the calling task, so that it
  outlives its caller (the host of the run-wide background supervisor, which trio users
  otherwise cannot have: trio has no ambient nursery), and
* scheduling a plain callback "at the next scheduling point" from synchronous code on the
  event-loop thread (asyncio's ``loop.call_soon``; trio's ``TrioToken.run_sync_soon``).

* the identity of the current event-loop run (:func:`current_run`), looked up by every
  operation of a run-portable object, and
* a checkpoint (:func:`checkpoint`), the whole cost of an uncontended queue operation,
  and its two halves in trio's order (:func:`checkpoint_if_cancelled`, then
  :func:`cancel_shielded_checkpoint` once the operation is done), which the queues
  and the barrier use.

All of these are done here, through ``sniffio``, and nowhere else. So is the one
mechanism by which run-portable objects keep state per run (:class:`PerRun`) or serve
one run at a time (:class:`OneRunAtATime`): see "Per-run state" below.
"""

from __future__ import annotations

import contextvars
import math
import sys
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import sniffio
from anyio import NoEventLoopError, sleep_forever
from anyio import current_effective_deadline as anyio_current_effective_deadline
from anyio import current_time as anyio_current_time
from anyio.lowlevel import (
    cancel_shielded_checkpoint as anyio_cancel_shielded_checkpoint,
)
from anyio.lowlevel import checkpoint as anyio_checkpoint
from anyio.lowlevel import checkpoint_if_cancelled as anyio_checkpoint_if_cancelled
from anyio.lowlevel import current_token

from ._util import outside_loop_thread

if TYPE_CHECKING:
    import asyncio

# asyncio, like trio, is imported in the branch that uses it (already loaded there: sniffio
# reports "asyncio" only for a running asyncio loop), or looked up in sys.modules where the
# question is "is this an asyncio loop?" (if asyncio was never imported, none runs), so
# that `import anyconc` costs trio users no asyncio import (about 20 ms). What the hot
# paths need of asyncio is bound to module globals on first use.

__all__ = [
    "OneRunAtATime",
    "PerRun",
    "RunRef",
    "call_in_run",
    "call_soon",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "checkpointed",
    "current_run",
    "current_run_or_none",
    "current_time",
    "get_ident",
    "interrupt_run",
    "ki_protect_on_trio",
    "ki_protection_ready",
    "spawn_ki_protected",
    "spawn_run_task",
]

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


# asyncio keeps only weak references to tasks: hold the run-level tasks here until done.
_asyncio_run_tasks: set[asyncio.Task[Any]] = set()


def spawn_run_task(
    async_fn: Callable[[], Coroutine[Any, Any, object]],
    *,
    name: str,
    context: contextvars.Context | None = None,
    on_done: Callable[[], object] | None = None,
) -> None:
    """
    Start ``async_fn()`` as a task owned by the current event-loop run.

    The task is not a child of the caller and is not cancelled with it. When the run ends
    (its main task returns or raises), the task is cancelled and awaited by the backend:
    asyncio's runner cancels and gathers the remaining tasks; trio cancels its system
    nursery. ``async_fn`` must let that cancellation propagate and must not raise anything
    else (on trio an exception from a system task crashes the whole run).

    :param async_fn: the coroutine function to run
    :param name: the task's name, for introspection
    :param context: the :mod:`contextvars` context to run it in (default: a copy of the
        caller's)
    :param on_done: called (synchronously, on the event-loop thread) when the task has
        ended, even if it was cancelled before it could start running


    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        if on_done is not None:
            # trio always starts a task's code before delivering a cancellation, so a
            # finally: clause is enough here.
            inner, done = async_fn, on_done

            async def run_then_report() -> object:
                try:
                    return await inner()
                finally:
                    done()

            async_fn = run_then_report

        trio.lowlevel.spawn_system_task(async_fn, name=name, context=context)
    elif library == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        coro = async_fn()
        # create_task(context=) is 3.11+; running it in the context gives a copy of it.
        task = (
            loop.create_task(coro, name=name)
            if context is None
            else context.run(loop.create_task, coro, name=name)
        )
        _asyncio_run_tasks.add(task)
        task.add_done_callback(_asyncio_run_task_done)
        if on_done is not None:
            # A task cancelled before its first step never runs its code (the
            # cancellation is thrown in at the start), so report through the task.
            report = on_done
            task.add_done_callback(lambda _: report())
    else:  # pragma: no cover - AnyIO supports no other backend
        raise RuntimeError(f"unsupported async library {library!r}")


async def interrupt_run(interrupt: BaseException) -> bool:
    """
    Make the current run end with ``interrupt`` (a ``KeyboardInterrupt`` or
    ``SystemExit``) raised by a task that :func:`spawn_run_task` started.

    On asyncio the task only has to raise it: ``asyncio.Task`` lets these two leave
    the event loop, and the runner then cancels every other task (their ``finally``
    blocks run) before ``asyncio.run()`` / ``anyio.run()`` raises it. Returns ``False``:
    raise it.

    On trio a system task must not raise (trio would turn it into
    ``TrioInternalError``), and trio has no public way to interrupt the main task, so
    this uses trio's own machinery: a ``KeyboardInterrupt`` goes through trio's Ctrl-C
    delivery (as if the user had pressed Ctrl-C); any other interrupt is thrown into the
    main task at its next blocking point, the way trio delivers Ctrl-C. Either way it
    unwinds the main task normally and comes out of ``trio.run()``. Returns ``True``:
    do not raise it.

    """
    library = sniffio.current_async_library()
    if library != "trio":
        return False

    import trio
    from trio._core._run import GLOBAL_RUN_CONTEXT

    runner = GLOBAL_RUN_CONTEXT.runner
    if isinstance(interrupt, KeyboardInterrupt):
        runner.deliver_ki()
        return True

    def raise_interrupt() -> None:
        raise interrupt

    main = runner.main_task
    assert main is not None
    with trio.CancelScope(shield=True):
        while runner.main_task_outcome is None:
            if main._abort_func is not None:
                main._attempt_abort(raise_interrupt)
                if _delivered(main):
                    break

            await trio.lowlevel.checkpoint()  # main runs, or cannot be aborted now

    return True


def spawn_ki_protected(
    create_task: Callable[..., R],
    coro: Coroutine[Any, Any, Any],
    name: str,
    context: contextvars.Context | None,
) -> R:
    """
    Call ``create_task(coro, name=name)`` (an AnyIO task group's), in ``context`` if
    given, so that a Ctrl-C cannot interrupt it half-way.

    On trio a Ctrl-C raises ``KeyboardInterrupt`` at whatever line of a task's code is
    running (unless it is "KI-protected"), and trio's ``Nursery.start_soon`` is not
    protected (trio 0.35): interrupted after it has added the new task to the nursery
    and before it has scheduled it, it leaves a task that will never run, which the
    nursery waits for forever. When that nursery is a run-level one (the default
    background supervisor's), the main task may catch the ``KeyboardInterrupt`` and
    return, and the run then never ends. Here, on trio, the call runs KI-protected:
    a Ctrl-C that arrives meanwhile is delivered to the main task at its next
    checkpoint instead (trio's own mechanism for protected code). Elsewhere this is a
    plain call (asyncio turns Ctrl-C into a cancellation of the main task).

    Fixed arguments, not ``*args, **kwargs``: this is on every task's spawn path, where
    packing them cost more than half a microsecond.

    :param create_task: the task group's ``create_task``
    :param coro: the task's coroutine
    :param name: the task's name
    :param context: the :class:`contextvars.Context` to start the task in, or ``None``
        for the caller's
    :return: what ``create_task`` returns

    """
    if _sniffio_thread.name != "trio":
        if context is None:
            return create_task(coro, name=name)
        return context.run(create_task, coro, name=name)
    call = _ki_protected_call or _bind_ki_protected_call()
    return cast(R, call(create_task, coro, name, context))


# Functions whose code trio must run KI-protected, not marked yet (see ki_protect_on_trio).
_ki_protect_pending: list[Callable[..., Any]] = []


def ki_protect_on_trio(*functions: Callable[..., Any]) -> None:
    """
    Have trio run the code of ``functions`` (plain or ``async`` functions, as defined:
    methods through their class) KI-protected, without importing trio here.

    Meant for the ``__aenter__`` / ``__aexit__`` of anyconc's ``async with`` blocks
    that open and close an AnyIO task group: on trio a Ctrl-C raises
    ``KeyboardInterrupt`` at whatever line is running, and raised in anyconc's code
    after the group's nursery was opened and before it is closed (or while it is being
    closed), it leaves the nursery open or closes it out of order: trio then crashes
    with ``TrioInternalError`` ("Nursery stack corrupted"). Protected, that code gets
    the Ctrl-C at the main task's next checkpoint instead, a clean point. Protection
    goes with the frames these functions call and await (trio looks up the frame
    chain), and it only defers a Ctrl-C over synchronous stretches: a main task
    blocked in a protected ``await`` (a drain, waiting for tasks) still gets the
    ``KeyboardInterrupt`` at once, at that ``await``, as unprotected code would (trio
    delivers a pending Ctrl-C to the blocked main task). A Ctrl-C that arrives while
    another task runs protected code goes to the main task in the same way. What such
    code calls synchronously (instrumentation observers, logging handlers) runs
    protected too.

    trio (0.31+) marks the code objects, which serve every backend; only trio looks
    at the mark. They are marked now if trio is imported, else as soon as anyconc sees
    a trio run (:func:`ki_protection_ready`, first thing in those ``__aenter__``: only
    the very first bytecodes of the first such call in the process are not covered).

    :param functions: the functions to protect

    """
    _ki_protect_pending.extend(functions)
    if "trio" in sys.modules:
        _mark_ki_protected()


def ki_protection_ready() -> None:
    """
    In a trio run, make sure the functions given to :func:`ki_protect_on_trio` are
    marked (cheap once done; a no-op on other backends).
    """
    if _ki_protect_pending and _sniffio_thread.name == "trio":
        _mark_ki_protected()


def _mark_ki_protected() -> None:
    from trio.lowlevel import enable_ki_protection

    while True:  # two runs in two threads may mark at once; marking twice is harmless
        try:
            function = _ki_protect_pending.pop()
        except IndexError:
            return
        enable_ki_protection(cast(Any, function))


def _call(
    create_task: Callable[..., R],
    coro: Coroutine[Any, Any, Any],
    name: str,
    context: contextvars.Context | None,
) -> R:
    # trio marks this function (its code object) as KI-protected on first use.
    if context is None:
        return create_task(coro, name=name)
    return context.run(create_task, coro, name=name)


# _call, KI-protected by trio, bound on first use (so `import anyconc` imports no trio).
_ki_protected_call: Callable[..., Any] | None = None


def _bind_ki_protected_call() -> Callable[..., Any]:
    global _ki_protected_call
    from trio.lowlevel import enable_ki_protection

    _ki_protected_call = enable_ki_protection(_call)
    return _ki_protected_call


def _delivered(task: Any) -> bool:
    # trio's reschedule() clears the abort function once the exception is on its way.
    return task._abort_func is None


def _asyncio_run_task_done(task: asyncio.Task[Any]) -> None:
    _asyncio_run_tasks.discard(task)
    if not task.cancelled():
        # An interrupt it raised has left the loop and ends the run (interrupt_run):
        # mark it retrieved, so that asyncio does not also log it as never retrieved.
        task.exception()


def call_soon(callback: Callable[[], object]) -> None:
    """
    Call ``callback()`` on the event-loop thread at the next scheduling point.

    Must be called from the event-loop thread, inside a run. An exception raised by the
    callback is the caller's to prevent (wrap it); the backends would report it as a loop
    error.

    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        trio.lowlevel.current_trio_token().run_sync_soon(callback)
    elif library == "asyncio":
        import asyncio

        asyncio.get_running_loop().call_soon(callback)
    else:  # pragma: no cover - AnyIO supports no other backend
        raise RuntimeError(f"unsupported async library {library!r}")


def _running_library() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise NoEventLoopError(
            "not currently running on any asynchronous event loop"
        ) from None


# sniffio's thread-local: trio sets its ``name`` to "trio" while it runs in this thread.
_sniffio_thread = sniffio.thread_local
# asyncio's C ``_get_running_loop()``, bound on first use.
_get_running_loop: Callable[[], object | None] | None = None


# trio's ``current_trio_token()``, bound on first use.
_current_trio_token: Callable[[], object] | None = None


def _no_running_loop() -> None:
    return None


def _bind_get_running_loop() -> Callable[[], object | None]:
    global _get_running_loop
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        # Never imported, so no asyncio loop runs: ask again next time (it may be).
        return _no_running_loop

    get_running_loop: Callable[[], object | None] = asyncio._get_running_loop
    _get_running_loop = get_running_loop
    return get_running_loop


class _NotALoop:
    """Stands for asyncio.AbstractEventLoop while asyncio is not imported."""


# asyncio.AbstractEventLoop, bound on first use once asyncio is imported.
_asyncio_loop_class: type[asyncio.AbstractEventLoop] | None = None


def _bind_asyncio_loop_class() -> type[asyncio.AbstractEventLoop]:
    global _asyncio_loop_class
    module = sys.modules.get("asyncio")
    if module is None:
        return cast("type[asyncio.AbstractEventLoop]", _NotALoop)

    loop_class: type[asyncio.AbstractEventLoop] = module.AbstractEventLoop
    _asyncio_loop_class = loop_class
    return loop_class


def _bind_current_trio_token() -> Callable[[], object]:
    global _current_trio_token
    from trio.lowlevel import current_trio_token

    _current_trio_token = current_trio_token
    ki_protection_ready()
    return current_trio_token


def current_run() -> object:
    """
    Return an object that identifies the event-loop run the caller is in.

    It is the backend's native token, as ``anyio.lowlevel.current_token().native_token``
    gives it (the asyncio event loop, or trio's ``TrioToken``), without building an
    ``EventLoopToken`` on every call. Both live exactly as long as the run
    (``anyio.run`` makes a fresh loop per run), so two runs, one after another or on
    different backends, never share a token.

    The common cases skip ``sniffio``'s sniffing (which looks up the current task):
    inside trio (which marks its thread for ``sniffio``), trio's token; otherwise, in
    an asyncio run, asyncio's own C lookup of the running loop of this thread.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    name = _sniffio_thread.name
    if name is None:
        loop = (_get_running_loop or _bind_get_running_loop())()
        if loop is not None:
            return loop
    elif name == "trio":
        return (_current_trio_token or _bind_current_trio_token())()

    library = _running_library()

    if library == "asyncio":
        import asyncio

        return asyncio.get_running_loop()

    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()

    return current_token().native_token  # pragma: no cover - any other AnyIO backend


def current_run_or_none() -> object | None:
    """Return :func:`current_run`, or ``None`` outside any event-loop run."""
    try:
        return current_run()
    except (NoEventLoopError, RuntimeError):
        # RuntimeError: a worker thread that sniffio attributes to asyncio, which has
        # no running loop.
        return None


def call_in_run(run: object, callback: Callable[[], object]) -> bool:
    """
    Call ``callback()`` in the event-loop thread of ``run`` (a :func:`current_run`
    value), from any thread, at its next scheduling point.

    :param run: the run
    :param callback: a plain function; what it raises is the caller's to prevent
    :return: ``False`` if the run has ended (nothing is scheduled)

    """
    if isinstance(run, _asyncio_loop_class or _bind_asyncio_loop_class()):
        try:
            run.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed
            return False
        return True

    import trio

    try:
        run.run_sync_soon(callback)  # type: ignore[attr-defined]
    except trio.RunFinishedError:
        return False
    return True


def _run_is_active(run: object) -> bool:
    """Whether ``run`` (a :func:`current_run` value) is running (in any thread)."""
    if isinstance(run, _asyncio_loop_class or _bind_asyncio_loop_class()):
        return run.is_running()

    return call_in_run(run, _nothing)


def _nothing() -> None:
    pass


# --- Per-run state --------------------------------------------------------------------
#
# Every run-portable object keeps what belongs to one event-loop run in a PerRun (or, if
# it can only serve one run at a time, checks a OneRunAtATime). The per-run values live
# in a table whose lifetime is the run's: an attribute of the asyncio event loop (uvloop's
# Loop takes attributes too), a trio RunVar (kept by trio's runner). Nothing anyconc
# holds at module or object level refers to a run or to its values except weakly (or
# while a task of the run runs: an active BackgroundTasks block, the run-owned tasks
# that spawn_run_task keeps), so a value that refers back to its run (a supervisor ->
# task group -> ... -> the loop) goes with the run: no WeakKeyDictionary keyed by the
# run, whose values would keep their own key alive.

_TABLE_ATTRIBUTE = "_anyconc_per_run"


class _Cell:
    """One PerRun's value in one run; ``last`` is what the PerRun caches to find it."""

    __slots__ = ("__weakref__", "last", "value")

    def __init__(self, run: object, value: object) -> None:
        self.value = value
        self.last = (weakref.ref(run), weakref.ref(self), threading.get_ident())


_Table = weakref.WeakKeyDictionary["PerRun[Any]", _Cell]

# Loops that take no attribute (a __slots__ class): their tables are kept here, by
# loop, weakly. A value referring to its loop keeps such a table alive; no known loop
# (asyncio's, uvloop's) needs this.
_slotted_loop_tables: weakref.WeakKeyDictionary[object, _Table] = (
    weakref.WeakKeyDictionary()
)
_trio_tables: Any = None  # trio.lowlevel.RunVar[_Table], made on first use


def _run_table(run: object) -> _Table:
    """The current run's table of per-run values (``run`` is :func:`current_run`)."""
    global _trio_tables
    if isinstance(run, _asyncio_loop_class or _bind_asyncio_loop_class()):
        table: _Table | None = getattr(run, _TABLE_ATTRIBUTE, None)
        if table is None:
            table = weakref.WeakKeyDictionary()
            try:
                setattr(run, _TABLE_ATTRIBUTE, table)
            except AttributeError:  # pragma: no cover - no such loop in the test matrix
                table = _slotted_loop_tables.setdefault(run, table)
        return table

    import trio

    if _trio_tables is None:
        _trio_tables = trio.lowlevel.RunVar("anyconc_per_run")
    table = _trio_tables.get(None)
    if table is None:
        table = weakref.WeakKeyDictionary()
        _trio_tables.set(table)
    return table


class _Gone:
    pass


# A cache entry that matches no run: (dead reference, dead reference, no thread).
_dead = _Cell(_Gone(), None)
_NO_CELL = _dead.last
del _dead


class PerRun(Generic[T]):
    """
    A value made lazily, once per event-loop run, by ``factory``.

    This is how anyconc objects created at import time stay usable from any number of
    runs on any backend, one after another or at the same time in different threads:
    their loop-bound internals (an AnyIO lock, an event, a supervisor) live here and are
    made afresh the first time each run touches them. Each run sees its own value only;
    a lookup from one thread never sees another run's value.

    The values live in a table owned by the run itself, so they go with their run;
    this object keeps the run and its value only through weak references (the last
    run's, for the fast path: one run at a time costs one comparison).

    ``factory`` is called in the run, on its event-loop thread; it must not refer to
    this ``PerRun``.
    """

    __slots__ = ("__weakref__", "_factory", "_last")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        # (run, cell, thread) of the latest lookup; replaced as one tuple, so that a
        # thread never pairs one run's reference with another run's cell.
        self._last: tuple[weakref.ref[object], weakref.ref[_Cell], int] = _NO_CELL

    def get(self) -> T:
        """
        Return this run's value, making it first if this run has none yet.

        :raises anyio.NoEventLoopError: if no event loop is running in this thread

        """
        run = current_run()
        last = self._last
        if last[0]() is run:
            cell = last[1]()
            if cell is not None:
                return cell.value  # type: ignore[return-value]

        return self._lookup(run)

    def _lookup(self, run: object) -> T:
        table = _run_table(run)
        cell = table.get(self)
        if cell is None:
            cell = _Cell(run, self._factory())
            table[self] = cell
        self._last = cell.last
        return cell.value  # type: ignore[return-value]

    def get_or_none(self) -> T | None:
        """Return :meth:`get`, or ``None`` when called outside any event-loop run."""
        # Off the hot paths: two lookups rather than a second copy of get().
        return None if current_run_or_none() is None else self.get()

    def peek(self) -> T | None:
        """
        Return the value this thread looked up last, if it is still alive, or ``None``;
        never makes one and never looks up the run.

        It is the current run's value when the caller knows that this thread looked it
        up in the current run (a task releasing what it acquired); otherwise use
        :meth:`get`.
        """
        last = self._last
        if last[2] != threading.get_ident():
            return None
        cell = last[1]()
        return None if cell is None else cell.value  # type: ignore[return-value]

    def latest(self) -> T | None:
        """
        Return the value of the latest lookup made in any thread, if it is still alive,
        or ``None``; never makes one and never looks up the run.

        For what an object reports outside any run (its ``statistics()`` from plain
        code, a worker thread or a monitoring thread): "the latest run's", whichever
        thread made that lookup (:meth:`peek` answers for the calling thread only). A
        value of a run in another thread is read, never changed, from here.
        """
        cell = self._last[1]()
        return None if cell is None else cell.value  # type: ignore[return-value]


class RunRef:
    """
    A weak reference to the current event-loop run, to tell it later from another run
    and to call into it from any thread; it does not keep the run alive.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """

    __slots__ = ("_ref",)

    def __init__(self) -> None:
        self._ref = weakref.ref(current_run())

    def is_current(self) -> bool:
        """Whether the caller is in this run (``False`` once it has ended)."""
        run = self._ref()
        return run is not None and run is current_run_or_none()

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> bool:
        """
        Call ``callback()`` in this run's event-loop thread, from any thread.

        :return: ``False`` if the run has ended (nothing is scheduled)

        """
        run = self._ref()
        return run is not None and call_in_run(run, callback)


class _RunEnd:
    """
    Ends when its run ends (a run-owned task waits for that): then the objects that
    were serving the run are free for the next one.
    """

    __slots__ = ("ended", "serving")

    def __init__(self) -> None:
        self.ended = False
        self.serving: list[weakref.ref[OneRunAtATime]] = []

    def end(self) -> None:
        self.ended = True
        for ref in self.serving:
            guard = ref()
            if guard is not None and guard._end is self:
                guard.thread = 0
        self.serving.clear()


async def _until_the_run_ends() -> None:
    await sleep_forever()


def _watch_run_end() -> _RunEnd:
    end = _RunEnd()
    spawn_run_task(
        _until_the_run_ends,
        name="anyconc run-end watch",
        context=contextvars.Context(),
        on_done=end.end,
    )
    return end


_ENDED = _RunEnd()
_ENDED.end()
# One watch per run that uses an object serving one run at a time.
_run_end: PerRun[_RunEnd] = PerRun(_watch_run_end)
get_ident = threading.get_ident


class OneRunAtATime:
    """
    The run an object that can serve only one event-loop run at a time is serving.

    For an object whose state is shared across runs and is not thread-safe (a queue's
    items, a barrier's parties): it goes from one run to the next (one after another,
    on any backend), but a run in another thread that uses it while the run it serves
    is still running gets a :exc:`RuntimeError` saying so, never a wrong result.

    The fast path costs a thread-identity comparison: a thread runs one run at a
    time, and when the run served ends (a task of the run waits for that), the next
    use, in any thread, claims the object for its own run. A run whose tasks are not
    cancelled at its end (an asyncio loop closed without ``asyncio.run``'s shutdown)
    is also told from a running one by asking its event loop. On a hot path, inline
    :meth:`check` as ``if guard.thread != get_ident(): guard.claim(method, args)``.

    :param what: the object's kind, for the message (``"Queue"``)

    """

    __slots__ = ("__weakref__", "_end", "_owner", "_what", "thread")

    def __init__(self, what: str) -> None:
        self._what = what
        # The run served (a dead reference when none yet), its end, and its thread
        # (0 when it has ended, or none yet).
        self._owner: weakref.ref[object] = _NO_CELL[0]
        self._end = _ENDED
        self.thread = 0

    def check(self, method: str, run_sync_args: str = "") -> None:
        """
        Call on every operation: make the current run the one served, if it can be.

        Outside any run (a synchronous call from plain code), nothing changes, but the
        call is refused while a run in another thread is being served (with a message
        that points a worker thread of that run to ``anyio.from_thread.run_sync()``:
        the object is not thread-safe).

        :param method: the method being called, for the message (``"put_nowait"``)
        :param run_sync_args: for a synchronous call, the arguments of the
            ``anyio.from_thread.run_sync()`` call a worker thread should make instead
            (``"queue.put_nowait, item"``)
        :raises RuntimeError: if a run in another thread is being served

        """
        if self.thread != get_ident():
            self.claim(method, run_sync_args)

    def claim(self, method: str, run_sync_args: str = "") -> None:
        """The slow path of :meth:`check`."""
        run = current_run_or_none()
        with _claim_lock:
            me = get_ident()
            if not self._end.ended:
                if self.thread == me:
                    return
                owner = self._owner()
                if owner is not None and _run_is_active(owner):
                    if run is None:
                        raise outside_loop_thread(
                            f"{self._what}.{method}() of a {self._what} in use by an "
                            f"event-loop run",
                            run_sync_args,
                        )
                    raise RuntimeError(
                        f"{self._what}.{method}(): this {self._what} is in use by an "
                        f"event-loop run in another thread; a {self._what} serves one "
                        f"run at a time (one after another is fine): give each "
                        f"thread's run its own {self._what}"
                    )
            if run is not None:
                end = _run_end.get()
                if self._end is not end:
                    self._end = end
                    end.serving.append(weakref.ref(self))
                self._owner = weakref.ref(run)
                self.thread = me


_claim_lock = threading.Lock()


def current_time() -> float:
    """
    Return :func:`anyio.current_time`, without AnyIO's backend lookup.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    library = _running_library()

    if library == "asyncio":
        import asyncio

        return asyncio.get_running_loop().time()

    if library == "trio":
        import trio

        return trio.current_time()

    return anyio_current_time()  # pragma: no cover - any other AnyIO backend


@types.coroutine
def _asyncio_yield() -> Generator[None, None, None]:
    # A bare yield is exactly asyncio.sleep(0), which is AnyIO's asyncio checkpoint: the
    # task is rescheduled at once, and a pending cancellation (AnyIO delivers it with
    # Task.cancel()) is raised here.
    yield


# trio's checkpoint, bound on first use so that asyncio users never import trio.
_trio_checkpoint: Callable[[], Awaitable[None]] | None = None


async def checkpoint() -> None:
    """
    Do what :func:`anyio.lowlevel.checkpoint` does, with less overhead.

    Dispatching on the library name directly saves AnyIO's backend lookup and one
    coroutine layer: about a quarter of an uncontended queue ``put`` + ``get`` on
    asyncio.
    """
    global _trio_checkpoint
    library = sniffio.current_async_library()
    if library == "asyncio":
        await _asyncio_yield()
    elif library == "trio":
        if _trio_checkpoint is None:
            from trio.lowlevel import checkpoint as trio_checkpoint

            _trio_checkpoint = trio_checkpoint

        await _trio_checkpoint()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_checkpoint()


# --- the two halves of a checkpoint, in trio's order -----------------------------------

# Bound on first use, in an asyncio run (see _bind_asyncio): AnyIO's own record of each
# asyncio task's innermost cancel scope (what anyio.lowlevel.checkpoint_if_cancelled()
# reads on asyncio), read through its dict of weak references (any change of these
# internals in a later AnyIO falls back to AnyIO's public check, see
# _asyncio_cancel_called), and asyncio's current_task().
_asyncio_task_states: dict[Any, Any] = {}
_asyncio_current_task: Callable[[], asyncio.Task[Any] | None] | None = None


def _bind_asyncio() -> Callable[[], asyncio.Task[Any] | None]:
    global _asyncio_task_states, _asyncio_current_task
    import asyncio

    try:
        from anyio._backends._asyncio import _task_states

        _asyncio_task_states = _task_states.data  # type: ignore[attr-defined]
    except (ImportError, AttributeError):  # pragma: no cover
        pass

    current_task: Callable[[], asyncio.Task[Any] | None]
    if sys.version_info >= (3, 12):
        current_task = asyncio.current_task
    else:
        # Before 3.12 asyncio.current_task() is Python code: read the C dict it reads.
        current_tasks: dict[Any, Any] = getattr(asyncio.tasks, "_current_tasks", {})
        running_loop = asyncio.events._get_running_loop

        def current_task() -> asyncio.Task[Any] | None:
            return current_tasks.get(running_loop())

    _asyncio_current_task = current_task
    return current_task


_weakref = weakref.ref
_trio_checkpoint_if_cancelled: Callable[[], Awaitable[None]] | None = None
_trio_cancel_shielded_checkpoint: Callable[[], Awaitable[None]] | None = None


def _asyncio_cancel_called() -> bool:
    # What AnyIO's asyncio checkpoint_if_cancelled() tests, without its backend lookup
    # and coroutine layers: is a scope around this task, up to the first shielded one,
    # cancelled? (A pending native Task.cancel() needs no check: it is raised by the
    # next yield anyway.)
    current_task = _asyncio_current_task or _bind_asyncio()
    state = _asyncio_task_states.get(_weakref(current_task()))
    if state is None:
        # Not a task AnyIO knows (or other AnyIO internals): ask AnyIO.
        return _asyncio_cancel_called_public()
    try:
        scope = state.cancel_scope
        while scope is not None:
            if scope._cancel_called:
                return True
            if scope._shield:
                return False
            scope = scope._parent_scope
    except AttributeError:  # pragma: no cover - an AnyIO with other internals
        return _asyncio_cancel_called_public()
    return False


def _asyncio_cancel_called_public() -> bool:  # pragma: no cover - see above
    # AnyIO's effective deadline is -inf exactly when a scope around the task (up to
    # the first shielded one) is cancelled.
    return anyio_current_effective_deadline() == -math.inf


def _bind_trio() -> None:
    global _trio_checkpoint_if_cancelled, _trio_cancel_shielded_checkpoint
    from trio.lowlevel import cancel_shielded_checkpoint as shielded
    from trio.lowlevel import checkpoint_if_cancelled as if_cancelled

    _trio_checkpoint_if_cancelled = if_cancelled
    _trio_cancel_shielded_checkpoint = shielded


async def checkpoint_if_cancelled() -> None:
    """
    Do what :func:`anyio.lowlevel.checkpoint_if_cancelled` does, with less overhead.

    If the caller is in a cancelled scope, yield and raise the cancellation; otherwise
    return at once, without yielding. The first half of a checkpoint in trio's order.

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        # AnyIO delivers the cancellation in the yield (it retries every iteration
        # while a task of a cancelled scope runs); loop as AnyIO does until it has.
        while _asyncio_cancel_called():
            await _asyncio_yield()
    elif library == "trio":
        if _trio_checkpoint_if_cancelled is None:
            _bind_trio()
            assert _trio_checkpoint_if_cancelled is not None
        await _trio_checkpoint_if_cancelled()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_checkpoint_if_cancelled()


@types.coroutine
def _asyncio_shielded_yield() -> Generator[None, None, None]:
    # A bare yield, as in checkpoint(), but a cancellation that lands in it, whether
    # from an AnyIO scope (delivered with Task.cancel()) or a native Task.cancel()
    # (asyncio.timeout(), wait_for()), is not raised here: it is re-armed for the
    # task's next yield, with the same message and cancel count, which is where a
    # shielded scope would let it through. AnyIO's delivery loop sees it pending
    # (Task._must_cancel) and does not cancel the task a second time.
    try:
        yield
    except BaseException as exc:
        import asyncio  # loaded: this is an asyncio task

        if not isinstance(exc, asyncio.CancelledError):
            raise
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - a yield runs inside a task
            raise
        if sys.version_info >= (3, 11):
            task.uncancel()
        task.cancel(exc.args[0] if exc.args else None)


async def cancel_shielded_checkpoint() -> None:
    """
    Do what :func:`anyio.lowlevel.cancel_shielded_checkpoint` does, with less overhead.

    Yield to the scheduler once, without raising a cancellation: the second half of a
    checkpoint in trio's order, after the operation. On asyncio a native
    ``Task.cancel()`` that arrives during the yield is not raised here but re-armed
    for the task's next yield (AnyIO's own shielded scope would let it through), so
    an operation that completed never looks cancelled.

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        await _asyncio_shielded_yield()
    elif library == "trio":
        if _trio_cancel_shielded_checkpoint is None:
            _bind_trio()
            assert _trio_cancel_shielded_checkpoint is not None
        await _trio_cancel_shielded_checkpoint()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_cancel_shielded_checkpoint()


async def checkpointed(operation: Callable[[A], R], argument: A) -> R:
    """
    Return ``operation(argument)`` as a checkpoint in trio's order, in one dispatch.

    :func:`checkpoint_if_cancelled`, then the synchronous operation, then
    :func:`cancel_shielded_checkpoint`: the tasks that run in the yield see what the
    operation did, and a cancelled caller has not done it. If the operation raises,
    there is no yield (as trio's ``send()`` on a closed channel).

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        while _asyncio_cancel_called():
            await _asyncio_yield()
        result = operation(argument)
        await _asyncio_shielded_yield()
        return result

    if library == "trio":
        if _trio_checkpoint_if_cancelled is None:
            _bind_trio()
        await _trio_checkpoint_if_cancelled()  # type: ignore[misc]
        result = operation(argument)
        await _trio_cancel_shielded_checkpoint()  # type: ignore[misc]
        return result

    await anyio_checkpoint_if_cancelled()  # pragma: no cover - any other AnyIO backend
    result = operation(argument)  # pragma: no cover
    await anyio_cancel_shielded_checkpoint()  # pragma: no cover
    return result  # pragma: no cover
