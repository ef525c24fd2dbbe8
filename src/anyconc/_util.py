"""Small helpers shared by the private modules."""

from __future__ import annotations

__all__ = ["callable_name"]


def callable_name(obj: object) -> str:
    """Return the qualified name of a function or coroutine, else its type's, for messages."""
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__
