from __future__ import annotations

import time

import anyio
import pytest
import sniffio


async def test_runs_on_each_backend(anyio_backend: tuple[str, dict[str, object]]) -> None:
    name, options = anyio_backend
    assert sniffio.current_async_library() == name


@pytest.mark.virtual_time
async def test_virtual_time_jumps() -> None:
    start_real = time.monotonic()
    start = anyio.current_time()
    with anyio.fail_after(7200):
        await anyio.sleep(3600)
    assert anyio.current_time() - start == pytest.approx(3600, abs=1e-3)
    assert time.monotonic() - start_real < 1.0
