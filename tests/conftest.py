"""The suite's backends and virtual clock come from anyconc's own pytest plugin.

``anyconc.pytest_plugin`` (the ``anyconc`` pytest11 entry point) is configured in
``[tool.pytest.ini_options]`` of pyproject.toml: ``anyconc_auto_mark = true`` runs every
``async def`` test on asyncio, asyncio + uvloop and trio (ids ``[asyncio]``, ``[uvloop]``,
``[trio]``), and ``@pytest.mark.virtual_time`` runs a test under trio's ``MockClock``
(autojump) or a ``looptime`` loop on asyncio, skipping uvloop. Nothing is needed here.
"""
