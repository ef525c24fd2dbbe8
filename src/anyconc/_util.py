"""
Small helpers shared by the private modules: names for messages, and the argument checks.

Every public entry point validates its arguments with these, so that a wrong argument is
rejected the same way everywhere: when the call is made, before anything runs, with a
:exc:`TypeError` (wrong kind) or :exc:`ValueError` (right kind, wrong value) whose message
names the function, the argument, what it got and what to pass instead. A coroutine
object that is rejected is closed first, so no "coroutine ... was never awaited" warning
follows the error.

``where`` is the function as the user wrote it, with its parentheses: ``"amap()"``,
``"ThreadPool.run()"``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator
from inspect import CORO_CREATED, getcoroutinestate, isawaitable, iscoroutine
from numbers import Real
from typing import TYPE_CHECKING, Any, NoReturn

__all__ = [
    "DEBUG",
    "WARNING",
    "callable_name",
    "check_async_callable",
    "check_awaitable",
    "check_awaitable_result",
    "check_awaitables",
    "check_bool",
    "check_callable",
    "check_coroutine",
    "check_instance",
    "check_int",
    "check_iterable",
    "check_number",
    "check_optional_str",
    "check_shutdown_timeout",
    "check_sync_callable",
    "check_sync_result",
    "close_unstarted",
    "in_another_run",
    "logger",
    "not_awaitable_error",
    "outside_loop_thread",
]

# logging's level numbers (fixed by its documentation), without importing logging.
DEBUG = 10
WARNING = 30


class _AnyconcLogger:
    """
    The ``anyconc`` logger, with :mod:`logging` imported on first use.

    ``import logging`` costs about as much as ``import anyio``; most programs that use
    anyconc never log through it (it logs failures nobody retrieved, retries, breaker
    state changes). Every attribute is the real :class:`logging.Logger`'s, looked up on
    each access, so ``caplog``, handlers and levels configured at any time all apply.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("anyconc"), name)

    def __repr__(self) -> str:
        return "<lazy logger 'anyconc'>"


if TYPE_CHECKING:
    import logging

    logger: logging.Logger
else:
    logger = _AnyconcLogger()


def callable_name(obj: object) -> str:
    """Return the qualified name of a function or coroutine, else its type's, for messages."""
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


def _short_name(obj: object) -> str:
    """The plain name of a function or coroutine, for a fix to copy (``fetch``)."""
    return getattr(obj, "__name__", None) or callable_name(obj)


def _got(value: object) -> str:
    """What was passed, for a :exc:`TypeError` message: its type, and a short repr."""
    if iscoroutine(value):
        return f"the coroutine object {callable_name(value)}()"

    if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
        return f"the function {callable_name(value)!r}"

    if isinstance(value, type):
        return f"the class {value.__qualname__!r}"

    text = repr(value)
    if len(text) > 40:
        return type(value).__qualname__

    return f"{type(value).__qualname__} {text}"


def _arg(argument: str) -> str:
    """``argument 'limit'``, or ``argument 2`` for a positional one named by position."""
    return f"argument {argument}" if argument.isdigit() else f"argument {argument!r}"


def _reject(where: str, argument: str, expected: str, value: object) -> NoReturn:
    close_unstarted([value])  # a coroutine object given by mistake: it will never run
    raise TypeError(f"{where} {_arg(argument)} must be {expected}, got {_got(value)}")


# -- numbers --------------------------------------------------------------------------


def check_number(
    where: str,
    argument: str,
    value: object,
    *,
    minimum: float | None = None,
    inclusive: bool = True,
    finite: bool = False,
    optional: bool = False,
) -> Any:
    """
    Validate a real number: an ``int``, a ``float`` or another :class:`numbers.Real`
    (``bool`` is not one; NaN never is in range).

    :param where: the function, for the message (``"retry()"``)
    :param argument: the argument's name
    :param value: what was passed
    :param minimum: the lowest value allowed (``None``: no lower bound)
    :param inclusive: whether ``minimum`` itself is allowed
    :param finite: whether infinities are rejected
    :param optional: whether ``None`` is allowed
    :return: ``value``, unchanged
    :raises TypeError: if ``value`` is not an ``int`` or ``float`` (or ``None`` when
        ``optional``)
    :raises ValueError: if ``value`` is NaN or out of range

    """
    if value is None and optional:
        return None

    if minimum is None:
        expected = "a number"
    elif minimum == 0:
        expected = "a non-negative number" if inclusive else "a positive number"
    else:
        expected = f"a number {'>=' if inclusive else '>'} {minimum:g}"
    if finite:
        expected = expected.replace("number", "finite number")
    if optional:
        expected += " or None"

    if isinstance(value, bool) or not isinstance(value, (int, float, Real)):
        _reject(where, argument, expected, value)

    if (
        math.isnan(value)
        or (finite and math.isinf(value))
        or (
            minimum is not None and (value < minimum if inclusive else value <= minimum)
        )
    ):
        raise ValueError(f"{where} {_arg(argument)} must be {expected}, got {value!r}")

    return value


def check_int(
    where: str,
    argument: str,
    value: object,
    *,
    minimum: int = 1,
    optional: bool = False,
    alternative: str | None = None,
) -> Any:
    """
    Validate an integer of at least ``minimum`` (``bool`` is not one).

    ``alternative`` names another value the caller accepts and has checked itself
    (``"math.inf"``), for the message.

    :return: ``value``, unchanged
    :raises TypeError: if ``value`` is not an ``int`` (or ``None`` when ``optional``)
    :raises ValueError: if ``value`` is less than ``minimum``

    """
    if value is None and optional:
        return None

    if minimum == 1:
        expected = "a positive integer"
    elif minimum == 0:
        expected = "a non-negative integer"
    else:
        expected = f"an integer >= {minimum}"
    if alternative:
        expected += f" or {alternative}"
    if optional:
        expected += " or None"

    if isinstance(value, bool) or not isinstance(value, int):
        _reject(where, argument, expected, value)

    if value < minimum:
        raise ValueError(f"{where} {_arg(argument)} must be {expected}, got {value}")

    return value


def check_bool(where: str, argument: str, value: object) -> None:
    """:raises TypeError: unless ``value`` is ``True`` or ``False``"""
    if not isinstance(value, bool):
        _reject(where, argument, "True or False", value)


def check_optional_str(where: str, argument: str, value: object) -> None:
    """:raises TypeError: unless ``value`` is a string or ``None`` (names, keys)"""
    if value is not None and not isinstance(value, str):
        _reject(where, argument, "a string or None", value)


def check_instance(
    where: str, argument: str, value: object, cls: type, expected: str
) -> None:
    """:raises TypeError: unless ``value`` is an instance of ``cls`` (``expected``)"""
    if not isinstance(value, cls):
        _reject(where, argument, expected, value)


def check_shutdown_timeout(where: str, shutdown_timeout: object) -> None:
    """Validate a grace period in seconds: a non-negative number, or ``None``."""
    check_number(where, "shutdown_timeout", shutdown_timeout, minimum=0, optional=True)


# -- functions and coroutines ---------------------------------------------------------


def check_callable(
    where: str,
    argument: str,
    value: object,
    *,
    usage: str | None = None,
    expected: str = "a function",
) -> None:
    """
    Validate a function argument (``fetch``, not ``fetch()``).

    A coroutine object passed instead of the function is closed, and the message shows
    how to pass the function: ``usage`` with ``{}`` standing for its name
    (``"start_soon({}, ...)"``). ``expected`` says what the function is for, in the
    message (``"an ASGI application (a callable)"``).

    :raises TypeError: if ``value`` is not callable

    """
    if callable(value):
        return

    fix = ""
    if iscoroutine(value):
        name = _short_name(value)
        value.close()  # rejected: it will never run, so nothing may warn about it
        fix = (
            f"; pass the function itself, not the result of calling it: "
            f"{(usage or '{}').format(name)}"
        )

    raise TypeError(
        f"{where} {_arg(argument)} must be {expected}, got {_got(value)}{fix}"
    )


def check_async_callable(
    where: str,
    argument: str,
    value: object,
    *,
    usage: str | None = None,
    decorating: bool = False,
) -> None:
    """
    Validate a function that must return an awaitable, as far as that can be known
    without calling it.

    Rejected up front: non-callables (a coroutine object is closed), generator and
    async generator functions, and built-in functions (none returns an awaitable). A
    plain ``def`` function may return a coroutine (``lambda: fetch(url)``), so it is
    accepted here and its first result is checked with :func:`check_awaitable_result`
    -- unless ``decorating``: a decorator's target is declared, so a plain function
    (or method) that is not ``async def`` is rejected too.

    :raises TypeError: if ``value`` cannot be an async function

    """
    check_callable(where, argument, value, usage=usage)
    target = inspect.unwrap(value)  # type: ignore[arg-type]
    if inspect.isasyncgenfunction(target):
        kind = "the async generator function"
    elif inspect.isgeneratorfunction(target):
        kind = "the generator function"
    elif inspect.isbuiltin(target):
        kind = "the built-in function"
    elif (
        decorating
        and (inspect.isfunction(target) or inspect.ismethod(target))
        and not (
            inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(target)
        )
    ):
        kind = "the synchronous function"
    else:
        return

    raise TypeError(
        f"{where} {_arg(argument)} must be an async function, got {kind} "
        f"{callable_name(value)!r} (use 'async def')"
    )


def check_awaitable_result(where: str, func: object, result: object) -> None:
    """
    Check what a function that should be async returned.

    :raises TypeError: naming ``func``, if ``result`` is not awaitable

    """
    if not isawaitable(result):
        raise not_awaitable_error(where, func, result)


def not_awaitable_error(where: str, func: object, result: object) -> TypeError:
    """The error of :func:`check_awaitable_result`, for a caller that raises it."""
    return TypeError(
        f"{where}: {callable_name(func)!r} returned {type(result).__qualname__}, "
        f"not an awaitable; pass an async function (or a function returning an "
        f"awaitable)"
    )


def check_sync_callable(
    where: str,
    argument: str,
    value: object,
    *,
    usage: str | None = None,
    fix: str = "await it directly instead",
) -> None:
    """
    Validate a synchronous function: one to be called in a worker thread or process
    (the default ``fix``), or called synchronously (a predicate, an observer: ``fix``
    says what to write instead).

    :raises TypeError: if ``value`` is not callable (a coroutine object is closed), or
        is an async function or async generator function (nothing could await its
        result there)

    """
    check_callable(where, argument, value, usage=usage)
    if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
        raise TypeError(
            f"{where} {_arg(argument)} must be a synchronous function, got the "
            f"async function {callable_name(value)!r}; {fix}"
        )


def outside_loop_thread(
    call: str, run_sync_args: str, *, closed: bool = False
) -> RuntimeError:
    """
    The error of a call that must be made in its event loop's thread, made from a
    thread that runs no event loop (a worker thread, plain code).

    :param call: the call and what it was made on (``"TaskGroup.cancel() of an active
        task group"``)
    :param run_sync_args: the arguments of the ``anyio.from_thread.run_sync()`` call
        to make instead (``"group.cancel"``)
    :param closed: whether the coroutine given to the call was closed
    """
    closed_note = "; the coroutine was closed" if closed else ""
    return RuntimeError(
        f"{call} must be called from the thread of its event loop (no event loop runs "
        f"in this thread{closed_note}); from a worker thread, use "
        f"anyio.from_thread.run_sync({run_sync_args})"
    )


def in_another_run(call: str, owner: str, *, closed: bool = False) -> RuntimeError:
    """
    The error of a call made in an event-loop run other than the one the object it was
    made on belongs to (a run in another thread: the backends are not thread-safe).

    :param call: the call and what it was made on (``"TaskGroup.cancel() of an active
        task group"``)
    :param owner: the kind of object that belongs to one run (``"task group"``)
    :param closed: whether the coroutine given to the call was closed
    """
    closed_note = "; the coroutine was closed" if closed else ""
    return RuntimeError(
        f"{call} in another event-loop run than the {owner}'s (a run in another "
        f"thread{closed_note}): a {owner} is used only in its own run; from another "
        f"thread, go through an anyio.from_thread.BlockingPortal of that run"
    )


def check_sync_result(
    where: str, func: object, result: object, *, worker: str = "worker thread"
) -> None:
    """
    Check what a synchronous function returned in a worker: a coroutine (``lambda:
    fetch()``) could never be awaited there, so it is closed and rejected.

    :param worker: where it ran, for the message (``"worker process"``)
    :raises TypeError: naming ``func``, if ``result`` is a coroutine object

    """
    if iscoroutine(result):
        result.close()
        raise TypeError(
            f"{where}: {callable_name(func)!r} returned a coroutine object, which "
            f"cannot be awaited in a {worker}; await the async function directly "
            f"instead"
        )


def check_coroutine(
    coro: object, caller: str, *, argument: str = "coro", name: object = None
) -> None:
    """
    Raise :exc:`TypeError` unless ``coro`` is a coroutine object, and ``name`` (the
    task name passed along with it) a string or ``None``; a coroutine rejected for its
    name is closed.

    Passing the coroutine *function* instead of calling it is the usual mistake, so the
    message says to call it.
    """
    if iscoroutine(coro):
        if name is not None and not isinstance(name, str):
            coro.close()
            _reject(f"{caller}()", "name", "a string or None", name)
        return

    if callable(coro):
        name = _short_name(coro)
        raise TypeError(
            f"{caller}() {_arg(argument)} must be a coroutine object, got the "
            f"callable {callable_name(coro)!r}; call it: {caller}({name}(...))"
        )

    _reject(f"{caller}()", argument, "a coroutine object", coro)


def check_awaitable(where: str, argument: str, value: object) -> None:
    """
    :raises TypeError: unless ``value`` is awaitable; a callable passed instead of its
        result gets the hint to call it
    """
    if isawaitable(value):
        return

    hint = ""
    if callable(value):
        hint = f"; call it: {_short_name(value)}(...)"
    raise TypeError(
        f"{where} {_arg(argument)} must be awaitable, got {_got(value)}{hint}"
    )


def check_awaitables(where: str, values: Iterable[object]) -> None:
    """
    Check every positional argument with :func:`check_awaitable` (named by position);
    on a failure, close the coroutine objects among ``values`` before raising.
    """
    values = tuple(values)
    try:
        for index, value in enumerate(values):
            check_awaitable(where, str(index), value)
    except TypeError:
        close_unstarted(values)
        raise


def check_iterable(where: str, argument: str, value: object) -> Iterator[Any]:
    """
    Return ``iter(value)``; a coroutine object given instead is closed.

    :raises TypeError: if ``value`` is not iterable
    """
    try:
        return iter(value)  # type: ignore[call-overload, no-any-return]
    except TypeError:
        close_unstarted([value])  # no "coroutine was never awaited" warning
        _reject(where, argument, "iterable", value)


def close_unstarted(values: Iterable[object]) -> None:
    """
    Close the coroutine objects among ``values`` that never started, so that nothing
    warns that they were never awaited (anyconc was given them; they are its to
    dispose of).
    """
    for value in values:
        if iscoroutine(value) and getcoroutinestate(value) == CORO_CREATED:
            value.close()
