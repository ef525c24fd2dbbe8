"""Interim test configuration until anyconc's own pytest plugin (issue 6) takes over.

Every ``async def`` test runs on asyncio, asyncio + uvloop and trio. Tests marked
``@pytest.mark.virtual_time`` run under a virtual clock: trio's ``MockClock`` with
autojump, and a ``looptime`` event loop on asyncio (uvloop has no virtual clock, so
that combination is skipped, never silently run in real time).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

BACKENDS = ["asyncio", "uvloop", "trio"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "virtual_time: run the test under a virtual clock on every backend"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Mark every coroutine test for AnyIO's plugin before it decides what to collect.
    if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj):  # type: ignore[attr-defined]
        pytest.mark.anyio(obj)


def _asyncio_options(request: pytest.FixtureRequest, uvloop: bool) -> dict[str, Any]:
    if request.node.get_closest_marker("virtual_time"):
        if uvloop:
            pytest.skip("no virtual clock exists for uvloop")

        import looptime

        return {"loop_factory": lambda: looptime.new_event_loop(start=0.0, _enabled=True)}

    return {"use_uvloop": True} if uvloop else {}


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name = request.param
    if name == "trio":
        if request.node.get_closest_marker("virtual_time"):
            import trio.testing

            return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}

        return "trio", {}

    return "asyncio", _asyncio_options(request, uvloop=(name == "uvloop"))
