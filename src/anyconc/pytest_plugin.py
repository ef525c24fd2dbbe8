"""anyconc's pytest plugin: every backend, and a virtual clock on every backend.

Installed with anyconc and registered through the ``pytest11`` entry point (name
``anyconc``), it works together with AnyIO's own pytest plugin (which runs the tests):

* **Backends.** Every async test marked ``@pytest.mark.anyio`` (AnyIO's marker) runs on
  each installed backend, with the test ids ``test_x[asyncio]``, ``test_x[uvloop]`` (asyncio
  on uvloop, when uvloop is installed) and ``test_x[trio]`` (when trio is installed). Choose
  a subset with ``--anyconc-backends=asyncio,trio`` or the ini option
  ``anyconc_backends = "asyncio,trio"`` (the command line wins). A backend that is chosen
  explicitly but not installed still gets its test id, skipped with the reason
  ``"trio is not installed"``, so that a shared configuration never silently loses coverage.
* **Auto-marking.** With the ini switch ``anyconc_auto_mark = true`` every ``async def``
  test is marked ``anyio`` for you (like AnyIO's ``anyio_mode = "auto"``, which also works).
  It is off by default: without it, only the tests you mark are touched.
* **Virtual time.** Under ``@pytest.mark.virtual_time`` (or for every anyio test with the
  ini switch ``anyconc_virtual_time = true``; opt one test out with
  ``@pytest.mark.virtual_time(False)``), ``anyio.sleep()``, ``fail_after()``,
  ``move_on_after()`` and everything measured by ``anyio.current_time()`` jump instantly
  whenever all tasks are blocked, and the clock starts at ``0.0``: on trio through
  ``trio.testing.MockClock(autojump_threshold=0)``, on asyncio through a ``looptime`` event
  loop passed as AnyIO's ``loop_factory``. No virtual clock exists for uvloop, so that
  combination is skipped with an explicit reason (never run in real time), as is asyncio
  when ``looptime`` is not installed. Threads and real I/O still take real time.
* **The clock fixture.** ``anyconc_clock`` (an :class:`AnyconcClock`) gives ``now()`` and,
  under virtual time, ``advance(seconds)``.

Scope and precedence (decisions where AnyIO's plugin leaves room):

* The ``anyio_backend`` fixture provided here is module-scoped, like AnyIO's, so that
  module-scoped async fixtures keep working. Its value is always a ``(name, options)``
  tuple (see :func:`backend_spec`); every virtual-time test gets a fresh value, hence a
  fresh clock, and higher-scoped async fixtures it uses are re-created inside its runner.
* Your own ``anyio_backend`` fixture (in a conftest or test module), or a
  ``@pytest.mark.parametrize("anyio_backend", ...)``, wins: the plugin then leaves that
  test's parametrization alone. Return :func:`backend_spec` values from it to keep virtual
  time; a ``virtual_time`` test whose own backend has no virtual clock fails with an
  explanation instead of running in real time.
* ``looptime`` ships a pytest plugin of its own that, without pytest-asyncio, breaks the
  setup of every fixture. When pytest-asyncio is not active this plugin unregisters it
  (it has nothing to do without pytest-asyncio).
* Nothing else changes: tests that are neither anyio-marked nor request ``anyio_backend``
  are not parametrized, trio and uvloop are never imported by this plugin unless a test
  runs on them, and ``-p no:anyconc`` disables all of the above. With AnyIO's plugin
  disabled (``-p no:anyio``) this one stays inert too: nothing would run the tests.
* Requires pytest >= 8 (new-style hook wrappers).

Example (no conftest needed)::

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

import importlib.util
import inspect
import math
import re
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import pytest
import sniffio

if TYPE_CHECKING:
    import asyncio

__all__ = ["BACKENDS", "AnyconcClock", "backend_spec"]

#: The backend ids this plugin knows, in their default order.
BACKENDS: Final = ("asyncio", "uvloop", "trio")

_MARKER: Final = "virtual_time"


@dataclass(frozen=True)
class _Settings:
    backends: tuple[str, ...]
    virtual_by_default: bool
    auto_mark: bool


_SETTINGS_KEY: Final = pytest.StashKey[_Settings]()


class _VirtualTime:
    """The parameter of one backend under virtual time.

    It equals nothing, not even itself: pytest then never reuses a cached value of the
    module-scoped ``anyio_backend`` fixture for it, so every virtual-time test gets a fresh
    clock (a trio ``MockClock`` keeps its time across runs).
    """

    __slots__ = ("backend",)

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"virtual_time({self.backend})"


def _is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # ValueError: a module blocked with sys.modules[name] = None, or without a spec
        return False


def _backend_installed(name: str) -> bool:
    if name == "trio":
        return _is_installed("trio")
    if name == "uvloop":
        # AnyIO's use_uvloop option uses winloop on Windows
        return _is_installed("winloop" if sys.platform == "win32" else "uvloop")
    return True


def _new_looptime_loop() -> asyncio.AbstractEventLoop:
    import looptime

    loop: asyncio.AbstractEventLoop = looptime.new_event_loop(start=0.0)
    return loop


def backend_spec(
    name: str, *, virtual_time: bool = False
) -> tuple[str, dict[str, Any]]:
    """Return the ``anyio_backend`` value this plugin uses for one backend.

    Use it when you write your own ``anyio_backend`` fixture (for instance a
    session-scoped one for session-scoped async fixtures) and want the same backends and
    virtual clocks. Each call returns a new options dict and, under virtual time, a new
    clock.

    Example::

        @pytest.fixture(scope="session", params=["asyncio", "trio"])
        def anyio_backend(request):
            return backend_spec(request.param)

    :param name: ``"asyncio"``, ``"uvloop"`` (asyncio on uvloop) or ``"trio"``
    :param virtual_time: run under a virtual clock (trio's ``MockClock`` with autojump, or
        a ``looptime`` loop on asyncio, starting at ``0.0``)
    :return: ``(backend name, backend options)`` as AnyIO's pytest plugin expects
    :raises ValueError: for an unknown name, or for virtual time on uvloop
    """
    if name not in BACKENDS:
        raise ValueError(
            f"name must be one of 'asyncio', 'uvloop', 'trio', got {name!r}"
        )

    if name == "trio":
        if not virtual_time:
            return "trio", {}

        import trio.testing

        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}

    if name == "uvloop":
        if virtual_time:
            raise ValueError(
                "virtual time is not available on uvloop: no virtual clock supports it"
            )

        return "asyncio", {"use_uvloop": True}

    if virtual_time:
        return "asyncio", {"loop_factory": _new_looptime_loop}

    return "asyncio", {}


class AnyconcClock:
    """The clock of the running test, as the ``anyconc_clock`` fixture.

    Call its methods from inside the test (or an async fixture), on the test's event loop.
    It works under real time too (``now()``, ``virtual``), but only a virtual clock can be
    advanced.

    Example::

        @pytest.mark.anyio
        @pytest.mark.virtual_time
        async def test_ttl(anyconc_clock):
            cache.put("k", 1, ttl=60)
            anyconc_clock.advance(61)
            assert cache.get("k") is None
    """

    __slots__ = ()

    def now(self) -> float:
        """Return the current time of the running backend (``anyio.current_time()``).

        Under virtual time it starts at ``0.0`` at the beginning of the test's runner.

        :return: the time in seconds
        """
        return anyio.current_time()

    @property
    def virtual(self) -> bool:
        """Whether the running test is under a virtual clock (that can be advanced)."""
        return self._virtual_clock() is not None

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward by ``seconds`` at once.

        This is synchronous and not a checkpoint: tasks whose deadlines have passed run at
        the caller's next checkpoint (for instance ``await anyio.sleep(0)``). With autojump,
        sleeping is usually enough; ``advance()`` makes time pass *without* blocking, as in
        "the entry expired while nobody was looking". On asyncio this re-applies looptime's
        settings with a later start (looptime's public API), which keeps the plugin's
        defaults.

        :param seconds: a non-negative, finite number of seconds
        :raises TypeError: if ``seconds`` is not a number
        :raises ValueError: if ``seconds`` is negative or not finite
        :raises RuntimeError: under real time, or outside the test's event loop
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"seconds must be a non-negative finite number, got {seconds!r}"
            )

        clock = self._virtual_clock()
        if clock is None:
            raise RuntimeError(
                "advance() needs virtual time: mark the test with "
                "@pytest.mark.virtual_time"
            )

        if sniffio.current_async_library() == "trio":
            clock.jump(seconds)
        else:
            clock.setup_looptime(start=clock.time() + seconds)

    @staticmethod
    def _virtual_clock() -> Any:
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            raise RuntimeError(
                "anyconc_clock must be used from inside the test's event loop"
            ) from None

        if library == "trio":
            import trio.lowlevel
            import trio.testing

            clock = trio.lowlevel.current_clock()
            return clock if isinstance(clock, trio.testing.MockClock) else None

        looptime = sys.modules.get("looptime")
        if looptime is None:  # no looptime loop can be running
            return None

        import asyncio

        loop = asyncio.get_running_loop()
        if isinstance(loop, looptime.LoopTimeEventLoop) and loop.looptime_on:
            return loop

        return None


def _anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The backend of the current test, as ``(name, options)``; see :func:`backend_spec`."""
    param = getattr(request, "param", None)
    if isinstance(param, _VirtualTime):
        return backend_spec(param.backend, virtual_time=True)
    if isinstance(param, str):
        return backend_spec(param)

    pytest.fail(
        f"{request.node.nodeid}: anyio_backend was requested without a backend "
        "parameter (dynamically?); request it as an argument or mark the test "
        "with @pytest.mark.anyio",
        pytrace=False,
    )


def _anyconc_clock() -> AnyconcClock:
    """The running test's clock: ``now()`` and, under virtual time, ``advance()``."""
    return AnyconcClock()


def _fixture_plugin() -> types.ModuleType:
    """Build the plugin object that holds our fixtures.

    It is registered from ``pytest_configure``, after every entry-point plugin, because
    among plugin fixtures of one name the one registered last wins: this makes our
    ``anyio_backend`` take precedence over AnyIO's regardless of the order in which pytest
    loaded the two entry points. Conftest and test-module fixtures still override it. The
    functions are decorated here, not at module level, so that registering this module as
    a plugin does not define them a second time.
    """
    holder = types.ModuleType(f"{__name__}.fixtures")
    holder.__dict__.update(
        anyio_backend=pytest.fixture(scope="module", name="anyio_backend")(
            _anyio_backend
        ),
        anyconc_clock=pytest.fixture(name="anyconc_clock")(_anyconc_clock),
    )
    return holder


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("anyconc", "anyconc: backends and virtual time")
    group.addoption(
        "--anyconc-backends",
        dest="anyconc_backends",
        default=None,
        metavar="NAMES",
        help="comma-separated backends to run anyio tests on "
        "(asyncio, uvloop, trio; default: every installed one)",
    )
    parser.addini(
        "anyconc_backends",
        type="args",
        default=[],
        help="backends to run anyio tests on, e.g. 'asyncio,trio' "
        "(default: every installed one)",
    )
    parser.addini(
        "anyconc_virtual_time",
        type="bool",
        default=False,
        help="run every anyio test under a virtual clock",
    )
    parser.addini(
        "anyconc_auto_mark",
        type="bool",
        default=False,
        help="mark every async def test with @pytest.mark.anyio",
    )


def _parse_backends(values: Iterable[str], source: str) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        for name in re.split(r"[,\s]+", value.strip()):
            if not name:
                continue
            if name not in BACKENDS:
                raise pytest.UsageError(
                    f"{source}: unknown backend {name!r}; "
                    "choose from asyncio, uvloop, trio"
                )
            if name not in names:
                names.append(name)

    if not names:
        raise pytest.UsageError(f"{source}: no backend given")

    return tuple(names)


def _read_settings(config: pytest.Config) -> _Settings:
    option: str | None = config.getoption("anyconc_backends")
    ini: list[str] = config.getini("anyconc_backends")
    if option is not None:
        backends = _parse_backends([option], "--anyconc-backends")
    elif ini:
        backends = _parse_backends(ini, "anyconc_backends")
    else:
        # chosen explicitly, a backend that is not installed is kept (and skipped with
        # a reason, see _backend_param); by default, only the installed ones
        backends = tuple(name for name in BACKENDS if _backend_installed(name))

    return _Settings(
        backends=backends,
        virtual_by_default=bool(config.getini("anyconc_virtual_time")),
        auto_mark=bool(config.getini("anyconc_auto_mark")),
    )


def _is_active(pluginmanager: pytest.PytestPluginManager, module: str) -> bool:
    # By module rather than by name: "-p anyio.pytest_plugin" registers AnyIO's plugin
    # under another name than its entry point ("anyio")
    plugin = sys.modules.get(module)
    return plugin is not None and pluginmanager.is_registered(plugin)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(enabled=True): run the anyio test under a virtual clock on every "
        "backend (trio MockClock autojump, looptime on asyncio; skipped on uvloop)",
    )

    pluginmanager = config.pluginmanager
    if not _is_active(pluginmanager, "pytest_asyncio.plugin"):
        # looptime's plugin only acts on pytest-asyncio's loops, and without pytest-asyncio
        # its pytest_fixture_setup hook fails on every fixture (looptime 0.9)
        looptime_plugin = sys.modules.get("looptime._internal.plugin")
        if looptime_plugin is not None and pluginmanager.is_registered(looptime_plugin):
            pluginmanager.unregister(looptime_plugin)

    if not _is_active(pluginmanager, "anyio.pytest_plugin"):
        return  # nothing would run the tests we parametrize: stay inert

    config.stash[_SETTINGS_KEY] = _read_settings(config)
    pluginmanager.register(_fixture_plugin(), "anyconc-fixtures")


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None or config.get_verbosity() < 1:
        return None

    mode = (
        "every anyio test"
        if settings.virtual_by_default
        else "@pytest.mark.virtual_time"
    )
    return f"anyconc: backends {', '.join(settings.backends)}; virtual time: {mode}"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> None:
    settings = collector.config.stash.get(_SETTINGS_KEY, None)
    if settings is None or not settings.auto_mark:
        return
    if not collector.istestfunction(obj, name):
        return

    inner = obj.hypothesis.inner_test if hasattr(obj, "hypothesis") else obj
    if not inspect.iscoroutinefunction(inner):
        return

    own_marks = getattr(obj, "pytestmark", ())
    if not any(mark.name == "anyio" for mark in own_marks):
        pytest.mark.anyio(obj)
    # Requesting the fixture ourselves keeps this independent of whether AnyIO's
    # pytest_pycollect_makeitem runs before or after this one
    pytest.mark.usefixtures("anyio_backend")(obj)


def _virtual_requested(node: pytest.Item, default: bool) -> bool:
    marker = node.get_closest_marker(_MARKER)
    if marker is None:
        return default

    enabled = marker.args[0] if marker.args else marker.kwargs.get("enabled", True)
    if not isinstance(enabled, bool) or len(marker.args) > 1:
        raise TypeError(
            f"{node.nodeid}: virtual_time takes one optional bool (enabled), "
            f"got args={marker.args!r} kwargs={marker.kwargs!r}"
        )

    return enabled


def _owns_backend_fixture(metafunc: pytest.Metafunc) -> bool:
    fixturedefs: Sequence[Any] = metafunc._arg2fixturedefs.get("anyio_backend", ())
    for fixturedef in reversed(fixturedefs):
        # compared by name: pytest versions wrap fixture functions differently
        func = fixturedef.func
        if (func.__module__, func.__qualname__) == (__name__, "_anyio_backend"):
            return True
        if "anyio_backend" not in fixturedef.argnames:
            return False  # overridden by a fixture that does not build on ours

    return False


def _parametrized_directly(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "anyio_backend" in argnames:
            return True

    return False


def _backend_param(name: str, virtual: bool) -> Any:
    if not _backend_installed(name):
        reason = f"{name} is not installed"
    elif not virtual:
        return pytest.param(name, id=name)
    elif name == "uvloop":
        reason = "virtual time is not available on uvloop: no virtual clock supports it"
    elif name == "asyncio" and not _is_installed("looptime"):
        reason = "virtual time on asyncio needs the looptime package"
    else:
        return pytest.param(_VirtualTime(name), id=name)

    return pytest.param(name, id=name, marks=pytest.mark.skip(reason=reason))


# tryfirst: before pytest parametrizes fixtures, so that the backend comes first in the
# ids (test_x[asyncio-1]), as with AnyIO's own module-scoped fixture
@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = metafunc.config.stash.get(_SETTINGS_KEY, None)
    if settings is None or "anyio_backend" not in metafunc.fixturenames:
        return
    if _parametrized_directly(metafunc) or not _owns_backend_fixture(metafunc):
        return  # the user's own backends win

    virtual = _virtual_requested(metafunc.definition, settings.virtual_by_default)
    metafunc.parametrize(
        "anyio_backend",
        [_backend_param(name, virtual) for name in settings.backends],
        indirect=True,
    )


def _has_virtual_clock(backend: object) -> bool:
    if not isinstance(backend, tuple) or len(backend) != 2:
        return False

    name, options = backend
    if name == "trio":
        return "clock" in options
    return "loop_factory" in options and not options.get("use_uvloop", False)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    settings = pyfuncitem.config.stash.get(_SETTINGS_KEY, None)
    backend = pyfuncitem.funcargs.get("anyio_backend")
    if (
        settings is not None
        and backend is not None
        and inspect.iscoroutinefunction(pyfuncitem.obj)
        and _virtual_requested(pyfuncitem, settings.virtual_by_default)
        and not _has_virtual_clock(backend)
    ):
        pytest.fail(
            f"{pyfuncitem.nodeid} asks for virtual time, but its own anyio_backend "
            f"fixture returned {backend!r}, which has no virtual clock; return "
            "anyconc.pytest_plugin.backend_spec(name, virtual_time=True) from it",
            pytrace=False,
        )

    return (yield)
