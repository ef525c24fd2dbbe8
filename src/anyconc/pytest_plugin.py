"""anyconc's pytest plugin: every backend, a virtual clock, and ids that never lie.

The plugin itself is the top-level module ``_anyconc_pytest`` (the ``anyconc`` pytest11
entry point), kept outside this package so that pytest's start-up never imports the
package: see its docstring for what the plugin does, how a project turns it on, and how it
works with pytest-asyncio, looptime and xdist. This module holds the names to use in your
own conftest or tests:

* :func:`backend_spec` -- the ``anyio_backend`` value of one backend, with or without a
  virtual clock, for your own ``anyio_backend`` fixture;
* :class:`AnyconcClock` -- the type of the ``anyconc_clock`` fixture;
* :data:`BACKENDS` -- the backend ids, ``("asyncio", "uvloop", "trio")``.

Example (``anyconc_backends``, ``anyconc_auto_mark`` or ``--anyconc-backends`` turns the
matrix on; the marker and the fixture work without it)::

    import anyio
    import pytest

    pytestmark = pytest.mark.anyio


    @pytest.mark.virtual_time
    async def test_timeout_fires(anyconc_clock):
        with anyio.move_on_after(30) as scope:
            await anyio.sleep(3600)
        assert scope.cancelled_caught
        assert anyconc_clock.now() == pytest.approx(30, abs=1e-6)
"""

from __future__ import annotations

from _anyconc_pytest import BACKENDS, AnyconcClock, backend_spec

__all__ = ["BACKENDS", "AnyconcClock", "backend_spec"]
