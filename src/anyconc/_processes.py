"""Offloading beyond threads: worker processes and any ``concurrent.futures`` executor."""

from __future__ import annotations

import io
import pickle
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar, cast

from anyio import (
    CancelScope,
    CapacityLimiter,
    Event,
    get_cancelled_exc_class,
    to_process,
)
from anyio.lowlevel import EventLoopToken, checkpoint_if_cancelled, current_token

from ._bridge import Link
from ._util import (
    callable_name,
    check_bool,
    check_instance,
    check_sync_callable,
    check_sync_result,
    close_unstarted,
    logger,
)

if sys.version_info >= (3, 11):
    from typing import ParamSpec, TypeVarTuple, Unpack
else:
    from typing_extensions import ParamSpec, TypeVarTuple, Unpack

__all__ = ["AsyncExecutor", "run_in_executor", "run_in_process"]

T = TypeVar("T")
P = ParamSpec("P")
PosArgsT = TypeVarTuple("PosArgsT")


# --------------------------------------------------------------------------------------
# Shared argument checks
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# run_in_process
# --------------------------------------------------------------------------------------


class _RemoteTraceback(Exception):
    """
    The traceback of an exception raised in a worker process, as text.

    Tracebacks cannot be pickled, so the worker formats it and the parent attaches it
    as the ``__cause__`` of the re-raised exception, exactly as
    :class:`concurrent.futures.ProcessPoolExecutor` does: the printed traceback then
    shows the worker's frames, then "The above exception was the direct cause of the
    following exception", then the caller's frames.
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def _pickle_call(func: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """
    Pickle ``func`` then ``args`` into one payload, naming the culprit if either fails.

    One ``Pickler`` serializes both, so each is pickled exactly once (``args`` may be
    large) and objects shared between them are shared again in the worker.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        pickler.dump(func)
    except Exception as exc:
        raise TypeError(
            f"run_in_process() argument 'func' must be picklable to run in another "
            f"process (a function defined "
            f"at module level, not a lambda, closure or local function), got "
            f"{callable_name(func)}: {exc}"
        ) from exc

    try:
        pickler.dump(args)
    except Exception as exc:
        raise TypeError(
            f"run_in_process() arguments must be picklable to run in another process, "
            f"but pickling the "
            f"arguments of {callable_name(func)} failed: {exc}"
        ) from exc

    return buffer.getvalue()


def _call_pickled(payload: bytes) -> tuple[bool, Any, str | None]:
    # Runs in the worker process. An exception is returned as a value with its
    # formatted traceback, which pickling would otherwise drop. Only ``Exception`` is
    # caught: AnyIO's worker must still see ``SystemExit`` (and friends) to exit.
    unpickler = pickle.Unpickler(io.BytesIO(payload))
    func = unpickler.load()
    args = unpickler.load()
    try:
        result = func(*args)
        # A coroutine could not even be pickled back ("cannot pickle 'coroutine'
        # object", naming nothing); closed here, so the worker does not warn either.
        check_sync_result("run_in_process()", func, result, worker="worker process")
        return True, result, None
    except Exception as exc:
        # Skip this function's own frame: the traceback starts in ``func``.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        exc.__traceback__ = None  # frames are not picklable, and not needed any more
        return False, exc, text


async def run_in_process(
    func: Callable[[Unpack[PosArgsT]], T],
    *args: Unpack[PosArgsT],
    limiter: CapacityLimiter | None = None,
    cancellable: bool = False,
) -> T:
    """
    Call ``func(*args)`` in a worker process and return its result.

    This is the way out of the GIL for CPU-bound work: the call runs in one of AnyIO's
    worker processes (:func:`anyio.to_process.run_sync`), which are started on demand,
    reused for later calls of the same event-loop run, and stopped when the run ends.

    ``func`` and ``args`` travel to the worker by :mod:`pickle`, so ``func`` must be
    importable by name: a function defined at module level (or a builtin, or a
    :func:`functools.partial` of one). Lambdas, closures, local functions and bound
    methods of unpicklable objects are rejected with :exc:`TypeError` *before* any
    process is started or reserved. The check costs nothing extra: the call is pickled
    once, here, and AnyIO then only copies those bytes to the worker. The return value and the
    exception must be picklable too. Keyword arguments are not passed on (the keyword
    parameters below belong to this function, as in AnyIO); use
    ``functools.partial(func, key=value)``.

    An exception raised by ``func`` is re-raised here unwrapped, with the worker's
    formatted traceback attached as its ``__cause__`` (as
    :class:`concurrent.futures.ProcessPoolExecutor` does). If the worker dies,
    :exc:`anyio.BrokenWorkerProcess` is raised.

    Cancellation: by default a call that has started runs to completion (a process is
    not interrupted halfway), then the cancellation is raised, as
    :class:`ThreadPool` does; the call's value is dropped.
    With ``cancellable=True`` the worker process is killed (``SIGKILL``) instead, as in
    AnyIO. A call still waiting for a free process is cancelled at once either way.

    Example::

        def fib(n: int) -> int:          # module level: picklable by name
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        results = await anyconc.gather(*(run_in_process(fib, 30) for _ in range(4)))

    :param func: a synchronous, picklable callable
    :param args: positional arguments for ``func``, picklable
    :param limiter: bounds how many worker processes these calls may occupy at once
        (any :class:`anyio.CapacityLimiter`, or anyconc's run-portable
        :class:`CapacityLimiter`, which can be created at import time). By default the
        calls share AnyIO's process limiter, which allows as many processes as there
        are CPUs (:func:`anyio.to_process.current_default_process_limiter`; change its
        ``total_tokens`` to change the default for the whole run).
    :param cancellable: ``True`` to kill the worker process when the caller is
        cancelled, instead of waiting for the call to finish
    :return: the return value of ``func(*args)``
    :raises TypeError: if ``func`` is not a synchronous callable, if ``func`` or
        ``args`` cannot be pickled, or if ``limiter`` is not a limiter
    :raises anyio.BrokenWorkerProcess: if the worker process died or misbehaved

    """
    check_sync_callable(
        "run_in_process()", "func", func, usage="run_in_process({}, ...)"
    )
    check_bool("run_in_process()", "cancellable", cancellable)
    if limiter is not None:
        check_instance(
            "run_in_process()",
            "limiter",
            limiter,
            CapacityLimiter,
            "a CapacityLimiter or None",
        )

    payload = _pickle_call(func, args)
    ok, value, tb = await to_process.run_sync(
        _call_pickled,
        payload,
        cancellable=cancellable,
        limiter=limiter,
    )
    # A cancellation that arrived while the (shielded) call ran is raised now, as
    # ThreadPool does, not at the caller's next checkpoint.
    await checkpoint_if_cancelled()
    if not ok:
        value.__cause__ = _RemoteTraceback(cast(str, tb))
        raise value

    return cast(T, value)


# --------------------------------------------------------------------------------------
# run_in_executor
# --------------------------------------------------------------------------------------


def _check_executor(where: str, executor: object) -> None:
    if not isinstance(executor, Executor):
        close_unstarted([executor])  # a coroutine object given by mistake
        hint = ""
        if callable(getattr(executor, "get_executor", None)):
            hint = " (for a Dask client, pass client.get_executor())"
        raise TypeError(
            f"{where} argument 'executor' must be a concurrent.futures.Executor{hint}, "
            f"got {executor!r}"
        )


class _Wakeup:
    """
    Delivers a ``concurrent.futures.Future``'s completion to one waiting task.

    The future's done callback runs in whatever thread completes it (the executor's
    management thread, Dask's client loop thread, or the event loop thread itself
    when the future is already done or gets cancelled from there). From the loop
    thread the event is set directly; from any other thread the setting is scheduled
    into the loop with the backend's non-blocking thread-safe hook
    (``loop.call_soon_threadsafe`` / ``TrioToken.run_sync_soon``, through AnyIO's
    token). Nothing blocks a thread, so any number of calls cost no thread each.
    """

    __slots__ = ("event", "loop_thread", "token")

    def __init__(self) -> None:
        self.event = Event()
        self.token: EventLoopToken = current_token()
        self.loop_thread = threading.get_ident()

    def __call__(self, future: Future[Any]) -> None:
        if threading.get_ident() == self.loop_thread:
            self.event.set()
            return

        # A RuntimeError (AnyIO's RunFinishedError) means the run is over: the waiter
        # that wanted this wake-up is gone with it.
        with suppress(RuntimeError):
            self.token.backend_class.run_sync_soon(
                self.event.set, (), self.token.native_token
            )


def _log_dropped_failure(func: object, future: Future[Any], why: str) -> None:
    if future.cancelled():
        return

    exc = future.exception()
    if exc is None:
        close_unstarted([future.result()])  # a coroutine nobody will await
        return

    # A CancelledError is what a call back into the loop raised after the caller was
    # cancelled (run_from_thread): the expected end of the call, not a failure.
    if not isinstance(exc, CancelledError):
        logger.warning(
            "%s failed after %s; the exception is dropped",
            callable_name(func),
            why,
            exc_info=(type(exc), exc, exc.__traceback__),
        )


def _log_abandoned_failure(func: object) -> Callable[[Future[Any]], None]:
    def callback(future: Future[Any]) -> None:
        _log_dropped_failure(func, future, "its caller abandoned it")

    return callback


async def _run(
    where: str,
    executor: Executor,
    func: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    cancellable: bool,
) -> T:
    await checkpoint_if_cancelled()
    wakeup = _Wakeup()
    # Keyword arguments are bound here: passed to submit() they could collide with the
    # executor's own options (Dask's submit() takes ``key``, ``pure``, ``workers``...).
    call = partial(func, *args, **kwargs) if kwargs else func
    link = None
    if isinstance(executor, ThreadPoolExecutor):
        # Its threads can call back into this loop (run_from_thread), and such calls
        # are cancelled with this caller.
        link = Link(wakeup.token)
        call = link.wrap(partial(func, *args, **kwargs))
    try:
        future = executor.submit(call, *args) if call is func else executor.submit(call)
    except RuntimeError as exc:
        if type(exc) is not RuntimeError:
            raise  # e.g. BrokenProcessPool, which already says what is wrong

        # "cannot schedule new futures after shutdown" does not say which executor,
        # nor what was refused.
        raise RuntimeError(
            f"executor {executor!r} refused to run {callable_name(func)}: {exc}"
        ) from None

    future.add_done_callback(wakeup)
    try:
        await wakeup.event.wait()
    except get_cancelled_exc_class():
        # Not started yet: the executor drops it, and we are done.
        if future.cancel():
            raise

        if link is not None:
            link.cancel()

        if cancellable:
            future.add_done_callback(_log_abandoned_failure(func))
            raise

        # Started: wait for it to finish (it cannot be interrupted), then raise the
        # cancellation, as ThreadPool does. Its value is dropped; a failure is logged,
        # so that it is not lost silently.
        with CancelScope(shield=True):
            await wakeup.event.wait()

        _log_dropped_failure(func, future, "its caller was cancelled while it ran")
        raise

    # Unwrapped, with its traceback: concurrent.futures re-raises the very exception
    # object (a process pool attaches the remote traceback as its __cause__; Dask
    # rebuilds the remote frames).
    result = future.result()
    # A coroutine (``lambda: fetch()``) could never be awaited in the executor: closed
    # and rejected, as run_in_threadpool does.
    check_sync_result(where, func, result)
    return result


class AsyncExecutor:
    """
    Await calls on any :class:`concurrent.futures.Executor`, with a cancellation policy.

    :func:`run_in_executor` is ``AsyncExecutor(executor).run(...)``. Make an
    ``AsyncExecutor`` yourself to choose what happens to a call that has started when
    its caller is cancelled (the option lives here, not in ``run()``, so that ``run()``
    passes every keyword argument through to ``func``):

    * ``cancellable=False`` (default): the caller waits for the call to finish, then the
      cancellation is raised, as :class:`ThreadPool` does; the call's value is dropped
      and a failure of the call is logged on the ``anyconc`` logger (not lost);
    * ``cancellable=True``: the caller leaves at once and the call is abandoned: it
      runs to its end in the executor and its result is dropped (a failure is logged
      on the ``anyconc`` logger, so it is not lost silently).

    Either way, a call the executor has not started yet is cancelled
    (:meth:`concurrent.futures.Future.cancel`) and never runs. What "started" means is
    the executor's: a ``ThreadPoolExecutor`` starts a call when a thread takes it; a
    ``ProcessPoolExecutor`` marks up to ``max_workers + 1`` calls as started as soon as
    it has queued them for its processes; a Dask client's executor never reports a call
    as started, so cancellation always cancels the Dask task (Dask then releases it,
    but cannot interrupt one already executing on a worker).

    A :class:`~concurrent.futures.ThreadPoolExecutor`'s thread running a call can call
    async functions back on the caller's event loop (:func:`~anyconc.run_from_thread`);
    those calls are cancelled when the caller is (with either policy).

    The completion of each call reaches the event loop through the future's done
    callback and a thread-safe wake-up of the loop: no thread is blocked per call, so
    thousands of calls can be in flight on a cluster. The executor's lifetime is yours
    (``with ProcessPoolExecutor() as pool:``); an ``AsyncExecutor`` holds no loop state
    and can be created at import time and used from any event-loop run, on any backend.

    Example::

        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor() as pool:
            executor = AsyncExecutor(pool, cancellable=True)
            result = await executor.run(crunch, data, chunk_size=1024)

    :param executor: the executor that runs the calls
    :param cancellable: ``True`` to abandon a started call when the caller is cancelled
        instead of waiting for it
    :raises TypeError: if ``executor`` is not a ``concurrent.futures.Executor``

    """

    __slots__ = ("_cancellable", "_executor")

    def __init__(self, executor: Executor, *, cancellable: bool = False) -> None:
        _check_executor("AsyncExecutor()", executor)
        check_bool("AsyncExecutor()", "cancellable", cancellable)
        self._executor = executor
        self._cancellable = cancellable

    @property
    def executor(self) -> Executor:
        """The wrapped executor."""
        return self._executor

    @property
    def cancellable(self) -> bool:
        """Whether a started call is abandoned (``True``) or waited for when cancelled."""
        return self._cancellable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._executor!r}, "
            f"cancellable={self._cancellable})"
        )

    async def run(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Submit ``func(*args, **kwargs)`` to the executor and wait for its result.

        :param func: a synchronous callable (picklable, if the executor runs it in
            another process)
        :param args: positional arguments for ``func``
        :param kwargs: keyword arguments for ``func``, all passed through
        :return: the return value of ``func``
        :raises TypeError: if ``func`` is not a synchronous callable
        :raises RuntimeError: if the executor is shut down (and refuses new calls)
        :raises concurrent.futures.CancelledError: if the executor itself cancelled
            the call (e.g. ``shutdown(cancel_futures=True)``)
        :raises BaseException: whatever ``func`` raised, unwrapped, with its traceback

        """
        check_sync_callable(
            "AsyncExecutor.run()", "func", func, usage="executor.run({}, ...)"
        )
        return await _run(
            "AsyncExecutor.run()", self._executor, func, args, kwargs, self._cancellable
        )


async def run_in_executor(
    executor: Executor, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """
    Run ``func(*args, **kwargs)`` on ``executor`` and wait for its result.

    Works with any :class:`concurrent.futures.Executor` (a ``ProcessPoolExecutor``,
    loky's reusable executor, a Dask ``Client(...).get_executor()``, a
    ``ThreadPoolExecutor``) on every backend, trio included. The exception raised by
    ``func`` arrives unwrapped, with its traceback. Cancelling the caller cancels the
    call if the executor has not started it, and otherwise waits for it to finish and
    then raises the cancellation (as :class:`ThreadPool` does); to abandon started
    calls instead, use
    ``AsyncExecutor(executor, cancellable=True).run(...)``. See :class:`AsyncExecutor`
    for the details.

    ``executor`` and ``func`` are positional-only, and keyword arguments are bound to
    ``func`` with :func:`functools.partial` before submitting, so ``func`` may take
    keyword arguments of any name: none is ever taken as an option of the executor
    (Dask's ``submit()`` has ``key``, ``pure``, ``workers``...; set those on
    ``client.get_executor(...)`` instead). The caller's ``contextvars`` are not passed on (the call
    may run in another process or machine).

    Example::

        client = distributed.Client("tcp://scheduler:8786")
        total = await run_in_executor(client.get_executor(), simulate, seed=42)

    :param executor: the executor that runs the call
    :param func: a synchronous callable (picklable, if the executor runs it in another
        process)
    :param args: positional arguments for ``func``
    :param kwargs: keyword arguments for ``func``
    :return: the return value of ``func``
    :raises TypeError: if ``executor`` is not an executor or ``func`` is not a
        synchronous callable
    :raises RuntimeError: if the executor is shut down (and refuses new calls)
    :raises concurrent.futures.CancelledError: if the executor itself cancelled the
        call (e.g. ``shutdown(cancel_futures=True)``)
    :raises BaseException: whatever ``func`` raised, unwrapped, with its traceback

    """
    _check_executor("run_in_executor()", executor)
    check_sync_callable(
        "run_in_executor()", "func", func, usage="run_in_executor(executor, {}, ...)"
    )
    return await _run(
        "run_in_executor()", executor, func, args, kwargs, cancellable=False
    )
