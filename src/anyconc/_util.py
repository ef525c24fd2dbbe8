"""Small helpers shared by the private modules."""

from __future__ import annotations

__all__ = ["callable_name", "check_optional_str", "check_shutdown_timeout"]


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
