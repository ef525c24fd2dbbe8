"""
The documentation's examples are tests: Sybil runs every ``python`` code block of
README.md and docs/*.md, in order, one namespace per document.

A block with a top-level ``await`` is run as the body of an ``async def``, once on
asyncio and once on trio (so such blocks must be repeatable); other blocks run as
plain modules (those that call ``anyio.run()`` pick their backend themselves).
``<!-- invisible-code-block: python -->`` comments define what a fragment needs without
showing it; ``<!-- skip: next "reason" -->`` skips a block that needs a server or a
cluster, with the reason (each of those is covered by a test of its own).

This file sits at the repository root because pytest applies a ``conftest.py``'s
collection hooks only to files below it.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Awaitable
from typing import Any

import anyio
from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import CodeBlockParser, SkipParser

BACKENDS = ("asyncio", "trio")


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


def evaluate_python(example: Example) -> None:
    """Run one code block; with a top-level ``await``, on every backend in turn."""
    __tracebackhide__ = True
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source,
        example.path,
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    namespace = example.namespace
    if code.co_flags & inspect.CO_COROUTINE:
        for backend in BACKENDS:
            anyio.run(_await, eval(code, namespace), backend=backend)
    else:
        exec(code, namespace)
    namespace.pop("__builtins__", None)


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser("python", evaluate_python), SkipParser()],
    patterns=["README.md", "docs/*.md", "docs/guides/*.md"],
).pytest()
