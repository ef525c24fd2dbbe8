"""Small helpers shared by the private modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DEBUG",
    "WARNING",
    "callable_name",
    "check_optional_str",
    "check_shutdown_timeout",
    "logger",
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


def check_optional_str(argument: str, value: object) -> None:
    """Raise :exc:`TypeError` unless ``value`` is a string or ``None``."""
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{argument} must be a string or None, got {type(value).__qualname__}"
        )


def check_shutdown_timeout(shutdown_timeout: object) -> None:
    """Validate a grace period in seconds: a non-negative number, or ``None``."""
    if shutdown_timeout is None:
        return

    if isinstance(shutdown_timeout, bool) or not isinstance(
        shutdown_timeout, (int, float)
    ):
        raise TypeError(
            f"shutdown_timeout must be a number or None, "
            f"got {type(shutdown_timeout).__qualname__}"
        )

    if not shutdown_timeout >= 0:
        raise ValueError(
            f"shutdown_timeout must not be negative, got {shutdown_timeout}"
        )
