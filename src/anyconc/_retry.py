"""Retrying async calls with exponential backoff."""

from __future__ import annotations

import functools
import inspect
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar

import anyio

from . import _instrument
from ._instrument import RetryGaveUp, RetryScheduled
from ._util import (
    callable_name,
    check_async_callable,
    check_int,
    check_number,
    close_unstarted,
    not_awaitable_error,
)

__all__ = ["retry"]

P = ParamSpec("P")
T = TypeVar("T")

RetryOn: TypeAlias = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | Callable[[BaseException], bool]
)


def _make_predicate(on: object) -> Callable[[Exception], bool]:
    if isinstance(on, type):
        if not issubclass(on, BaseException):
            raise TypeError(
                f"retry() argument 'on' must be an exception type, a tuple of them or a predicate, "
                f"got the class {on.__qualname__!r}"
            )

        exc_type = on
        return lambda exc: isinstance(exc, exc_type)

    if isinstance(on, tuple):
        if not on:
            raise ValueError(
                "retry() argument 'on' must be an exception type, a tuple of them or "
                "a predicate, got an empty tuple"
            )

        for item in on:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(
                    f"retry() argument 'on' must be an exception type, a tuple of them or a predicate, "
                    f"got a tuple containing {item!r}"
                )

        exc_types = on
        return lambda exc: isinstance(exc, exc_types)

    if callable(on):
        if inspect.iscoroutinefunction(on) or inspect.isasyncgenfunction(on):
            # Its result would always be true, and a coroutine never awaited.
            raise TypeError(
                f"retry() argument 'on' must be an exception type, a tuple of them or a "
                f"predicate, got the async function {callable_name(on)!r}; the "
                f"predicate is called synchronously: use a plain 'def'"
            )

        predicate = on
        return lambda exc: bool(predicate(exc))

    close_unstarted([on])  # a coroutine object given by mistake: it will never run
    raise TypeError(
        f"retry() argument 'on' must be an exception type, a tuple of them or a predicate, "
        f"got {type(on).__qualname__}"
    )


def retry(
    *,
    attempts: int = 3,
    on: RetryOn = Exception,
    delay: float = 0.1,
    factor: float = 2.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    timeout: float | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """
    Retry an async function when it raises, with exponential backoff.

    The decorated function is called; if it raises an :exc:`Exception` that ``on``
    accepts, the wrapper sleeps and calls it again, at most ``attempts`` times in all.
    The sleep after the ``n``-th failed attempt (``n`` counting from 0) is::

        min(delay * factor ** n, max_delay) + random.uniform(0, jitter)

    so with the defaults the attempts start at ``t``, ``t + 0.1`` and ``t + 0.3``
    (plus the attempts' own durations). ``max_delay`` caps the exponential part only;
    the jitter is added on top of it so that callers capped at the same delay still
    spread out (the sleep never exceeds ``max_delay + jitter``). The jitter is drawn with
    the module-level :func:`random.uniform`, and only when ``jitter > 0``; tests can
    seed :mod:`random` or patch ``random.uniform`` to make it deterministic.

    What is retried and what is not:

    * only instances of :exc:`Exception`: a cancellation (``asyncio.CancelledError``,
      ``trio.Cancelled``), :exc:`KeyboardInterrupt`, :exc:`SystemExit`,
      :exc:`GeneratorExit` and any other :exc:`BaseException` propagate at once, even
      with ``on=BaseException``. A cancellation during a backoff sleep propagates too;
    * ``on`` decides among those: an exception type or a tuple of types (retry the
      instances), or a predicate called with the exception (retry if it returns a true
      value; if the predicate itself raises, that exception propagates, chained to the
      original one).

    When the attempts are used up, or ``on`` declines, or ``timeout`` forbids another
    attempt, the last exception is re-raised unchanged: the very same object, with its
    traceback, not wrapped and not chained to the earlier attempts' exceptions.

    ``timeout`` bounds the total time of the call, measured with
    :func:`anyio.current_time` from the first attempt: no attempt is *started* at or
    after ``start + timeout``, and a backoff sleep that would end there is not taken
    (the last exception is re-raised right away instead). An attempt already running is
    **not** interrupted: cutting it would turn its outcome into a cancellation, hide its
    own exception and make the wrapper raise something the function never raised; use
    :func:`anyconc.timeout` inside (or around) the call for a hard limit. This is how
    stamina's ``timeout`` (tenacity's ``stop_after_delay``, checked after each failed
    attempt) behaves, except that, like tenacity's ``stop_before_delay``, a sleep is not
    started when it would overrun the budget.

    The wrapper adds no scheduling point of its own to a successful first attempt (a
    call is exactly as much a checkpoint as the wrapped function); every backoff sleep
    is a checkpoint. Each retry emits a :class:`~anyconc.RetryScheduled` event, and the
    last failure a :class:`~anyconc.RetryGaveUp` event (see :func:`anyconc.subscribe`);
    the built-in logging observer logs both at DEBUG level on the ``anyconc`` logger.

    The wrapped function should be a coroutine function (``async def``); a plain
    synchronous function is rejected with :exc:`TypeError` at decoration time, since
    retrying it would block the event loop. Other callables (objects with ``__call__``,
    classes) are accepted if each call returns an awaitable; otherwise that call raises
    :exc:`TypeError` (not retried).

    Example::

        @anyconc.retry(attempts=5, on=httpx.TransportError, delay=0.2, max_delay=2,
                       jitter=0.1, timeout=10)
        async def fetch(url: str) -> bytes:
            ...

    :param attempts: the maximum number of calls, including the first (``>= 1``)
    :param on: which exceptions to retry: a type, a tuple of types, or a predicate
    :param delay: the first backoff sleep, in seconds (``>= 0``)
    :param factor: the multiplier between successive sleeps (``>= 1``; ``1`` gives a
        constant backoff)
    :param max_delay: a cap on the exponential part of the sleep, or ``None``
    :param jitter: the upper bound of the random amount added to each sleep (``>= 0``)
    :param timeout: a bound on the total time, in seconds (``> 0``), or ``None``
    :return: a decorator
    :raises TypeError: if an argument has the wrong type, or when decorating a
        synchronous function or a non-callable
    :raises ValueError: if a numeric argument is out of range, or ``on`` is ``()``

    """
    check_int("retry()", "attempts", attempts)
    should_retry = _make_predicate(on)
    delay_ = float(check_number("retry()", "delay", delay, minimum=0))
    factor_ = float(check_number("retry()", "factor", factor, minimum=1))
    check_number("retry()", "max_delay", max_delay, minimum=0, optional=True)
    max_delay_ = math.inf if max_delay is None else float(max_delay)
    jitter_ = float(check_number("retry()", "jitter", jitter, minimum=0))
    check_number(
        "retry()", "timeout", timeout, minimum=0, inclusive=False, optional=True
    )
    timeout_ = math.inf if timeout is None else float(timeout)

    def backoff(n: int) -> float:
        try:
            base = delay_ * factor_**n
        except OverflowError:
            base = math.inf
        base = min(base, max_delay_)
        if jitter_ > 0:
            base += random.uniform(0, jitter_)
        return base

    def decorator(
        func: Callable[P, Awaitable[T]],
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        # Anything but a function (a callable object, a partial of one, a class) may
        # or may not return an awaitable: that is checked at each call.
        check_async_callable(
            "retry()", "func", func, usage="retry(...)({})", decorating=True
        )

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            deadline = anyio.current_time() + timeout_
            failures = 0
            while True:
                try:
                    awaitable = func(*args, **kwargs)
                    if inspect.isawaitable(awaitable):
                        return await awaitable
                except Exception as exc:
                    failures += 1
                    if failures >= attempts:
                        _gave_up(func, failures, attempts, "attempts", exc)
                        raise
                    if not should_retry(exc):
                        _gave_up(func, failures, attempts, "not retryable", exc)
                        raise

                    sleep_for = backoff(failures - 1)
                    if anyio.current_time() + sleep_for >= deadline:
                        _gave_up(func, failures, attempts, "timeout", exc)
                        raise

                    _scheduled(func, failures, attempts, sleep_for, exc)
                else:
                    # Not retried: calling it again would not make it awaitable.
                    raise not_awaitable_error("retry()", func, awaitable)

                # Outside the except block, so that the next attempt's exception is
                # not chained to this one.
                await anyio.sleep(sleep_for)

        return wrapper

    return decorator


def _scheduled(
    func: object, failures: int, attempts: int, sleep_for: float, exc: BaseException
) -> None:
    if observers := _instrument.listeners[RetryScheduled]:
        _instrument.emit(
            observers,
            RetryScheduled(callable_name(func), failures, attempts, sleep_for, exc),
        )


def _gave_up(
    func: object,
    failures: int,
    attempts: int,
    reason: Literal["attempts", "not retryable", "timeout"],
    exc: BaseException,
) -> None:
    if observers := _instrument.listeners[RetryGaveUp]:
        _instrument.emit(
            observers, RetryGaveUp(callable_name(func), failures, attempts, reason, exc)
        )
