"""The suite's backends and virtual clock come from anyconc's own pytest plugin.

The plugin (the ``anyconc`` pytest11 entry point, module ``_anyconc_pytest``) is opt-in;
this project turns it on in ``[tool.pytest.ini_options]`` of pyproject.toml:
``anyconc_auto_mark = true`` runs every ``async def`` test on asyncio, asyncio + uvloop
and trio (ids ``[asyncio]``, ``[uvloop]``, ``[trio]``), and ``@pytest.mark.virtual_time``
runs a test under trio's ``MockClock`` (autojump) or a ``looptime`` loop on asyncio,
skipping uvloop. pytest-asyncio (in the test extra, for the plugin's coexistence tests)
runs nothing here: ``asyncio_mode = "strict"`` and no ``@pytest.mark.asyncio``. Nothing
is needed in this file.
"""
