"""Identity of the current event-loop run, the key of anyconc's run-portable state."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from ._lowlevel import current_run

__all__ = ["PerRun", "current_run"]

T = TypeVar("T")


class PerRun(Generic[T]):
    """
    A value made lazily, once per event-loop run, by ``factory``.

    This is how anyconc objects created at import time stay usable from any number of
    runs on any backend: their loop-bound internals (an AnyIO lock, an event, a task
    group host) live here and are made afresh the first time a new run touches them.
    The previous run's value is dropped; the run is kept only through a weak reference,
    so a finished run is never kept alive and its memory address can never be mistaken
    for a new run's.
    """

    __slots__ = ("_factory", "_run_ref", "_value")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._run_ref: weakref.ref[object] | None = None
        self._value: T | None = None

    def get(self) -> T:
        """
        Return this run's value, making it first if this run has none yet.

        :raises anyio.NoEventLoopError: if no event loop is running in this thread

        """
        run = current_run()
        ref = self._run_ref
        if ref is None or ref() is not run:
            self._value = self._factory()
            self._run_ref = weakref.ref(run)

        return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """Return the value of the latest run that made one, or ``None``; never makes one."""
        ref = self._run_ref
        if ref is None or ref() is None:
            return None

        return self._value
