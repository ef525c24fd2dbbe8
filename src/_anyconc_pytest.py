"""anyconc's pytest plugin: every backend, a virtual clock, and ids that never lie.

This module is what the ``pytest11`` entry point ``anyconc`` registers. It lives outside
the ``anyconc`` package on purpose: pytest imports it for everyone who has anyconc
installed, so it imports only pytest and the standard library at start-up (AnyIO, sniffio,
trio, uvloop and looptime are imported when a test needs them), and an import error
anywhere in the ``anyconc`` package cannot break a test run that does not use it. The
public names (:data:`BACKENDS`, :class:`AnyconcClock`, :func:`backend_spec`) are
re-exported by ``anyconc.pytest_plugin``; import them from there.

It works together with AnyIO's own pytest plugin, which runs the tests.

**Opt-in.** Installed but not configured, the plugin changes nothing: AnyIO's plugin
parametrizes and runs anyio tests exactly as without anyconc. A project turns it on with
any of

* ``anyconc_backends = "asyncio,trio"`` (ini / ``[tool.pytest.ini_options]``),
* ``--anyconc-backends=asyncio,uvloop,trio`` on the command line (wins over the ini),
* ``anyconc_auto_mark = true`` (every ``async def`` test becomes an anyio test, on every
  installed backend unless ``anyconc_backends`` says otherwise),

which turn the backend matrix on, or ``anyconc_virtual_time = true`` (every anyio test
under a virtual clock, on AnyIO's backends unless one of the above says otherwise).

What it then does:

* **Backends.** Every anyio test (``@pytest.mark.anyio``) runs on each chosen backend, with
  the ids ``[asyncio]``, ``[uvloop]`` (asyncio on uvloop) and ``[trio]``. By default, every
  installed one. A backend chosen explicitly but not installed keeps its id and is skipped
  with the reason ``"trio is not installed"``.
* **Virtual time.** ``@pytest.mark.virtual_time`` (or ``anyconc_virtual_time = true``; opt
  one test out with ``@pytest.mark.virtual_time(False)``) runs the test under a virtual
  clock that starts at ``0.0`` and jumps whenever every task is blocked: trio's
  ``MockClock(autojump_threshold=0)``, a ``looptime`` loop on asyncio. No virtual clock
  exists for uvloop, so that combination is skipped with the reason (never run in real
  time), as is asyncio when looptime is not installed. The marker and the ``anyconc_clock``
  fixture work without any opt-in too: a ``virtual_time`` test is then parametrized over
  AnyIO's own backends (asyncio and trio), each under its virtual clock.
* **Never lie.** Every test the plugin parametrizes with its own backends checks, inside
  the event loop it really runs on, that the library is the one its id names (trio, or
  asyncio; uvloop's loop for ``[uvloop]`` and not uvloop's for ``[asyncio]``) and, under
  virtual time, that the virtual clock is the running one; otherwise it fails with the
  cause and the fix. Conflicts known at collection time (pytest-asyncio claims the test,
  or one of its fixtures is a ``@pytest_asyncio.fixture``; ``virtual_time`` on a test
  that AnyIO does not run) are listed after collection and fail the test at setup.
* **pytest-asyncio.** Tests marked ``@pytest.mark.asyncio`` stay pytest-asyncio's: they
  are neither auto-marked nor expanded. In ``asyncio_mode = auto``, pytest-asyncio claims
  every async test and async fixture; the anyio tests this plugin handles, and the async
  fixtures they use (unless written with ``@pytest_asyncio.fixture``), are handed back to
  AnyIO (a test marked both ``anyio`` and ``asyncio`` fails with an explanation). ``anyconc_auto_mark``
  together with ``asyncio_mode = auto`` is a usage error: both would claim every unmarked
  ``async def`` test.
* **Higher-scoped async fixtures.** AnyIO keeps its runner (event loop) alive while a
  module-, class- or session-scoped async fixture is open, and reuses it for the next test
  whatever backend that one asks for. A higher-scoped async fixture used by a test on this
  plugin's backends is therefore torn down together with the backend value it was set up
  on (when the module ends, when the next test is on another backend, after each
  virtual-time test), and set up again on the next one. A session-scoped async fixture is
  thus set up once per module and backend; for one per session, write a session-scoped
  ``anyio_backend`` fixture with :func:`backend_spec`. Without the opt-in, the same holds
  for ``virtual_time`` tests: one that finds such a fixture left open by a test AnyIO
  parametrizes finishes it and sets it up again in its own virtual loop.

Other decisions, where AnyIO's plugin leaves room:

* The ``anyio_backend`` fixture provided here is module-scoped, like AnyIO's. Its value is
  AnyIO's own (a backend name) for tests it only parametrizes like AnyIO, and a
  ``(name, options)`` tuple (see :func:`backend_spec`) for the matrix and virtual time.
  Every virtual-time test gets a fresh value, hence a fresh clock.
* Your own ``anyio_backend`` fixture (in a conftest, class or module) or a
  ``@pytest.mark.parametrize("anyio_backend", ...)`` wins: the plugin then leaves that
  test's parametrization (and its check) alone. Return :func:`backend_spec` values from it
  to keep virtual time; a ``virtual_time`` test whose own backend has no virtual clock
  fails with an explanation instead of running in real time.
* looptime's own pytest plugin fails the setup of every fixture when pytest-asyncio is not
  active (looptime 0.9). When the project opts in and pytest-asyncio is not active, this
  plugin unregisters it (it has nothing to do without pytest-asyncio); otherwise it is
  left alone. With pytest-asyncio active, looptime's plugin creates and leaks an event
  loop when it looks at a test while no loop is set (Python < 3.14): for the tests of a
  project that opted in, and for this plugin's own tests otherwise, it is kept from
  seeing pytest-asyncio's ``event_loop_policy`` fixture (see
  :func:`_hidden_from_looptime`).
* ``-p no:anyconc`` disables all of the above. With AnyIO's plugin disabled
  (``-p no:anyio``) this one stays inert too: nothing would run the tests.
* Requires pytest >= 8 (new-style hook wrappers).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    import asyncio

__all__ = ["BACKENDS", "AnyconcClock", "backend_spec"]

#: The backend ids this plugin knows, in their default order.
BACKENDS: Final = ("asyncio", "uvloop", "trio")

_MARKER: Final = "virtual_time"
# Markers of other plugins that run async tests themselves
_OTHER_RUNNERS: Final = ("asyncio", "trio")


@dataclass(frozen=True)
class _Settings:
    # None: the project did not ask for the matrix; AnyIO's backends then apply
    backends: tuple[str, ...] | None
    virtual_by_default: bool
    auto_mark: bool
    asyncio_auto: bool  # pytest-asyncio is active in auto mode

    @property
    def opted_in(self) -> bool:
        return self.backends is not None or self.virtual_by_default


_SETTINGS_KEY: Final = pytest.StashKey[_Settings]()
_CONFLICT_KEY: Final = pytest.StashKey[str]()
# higher-scoped async fixtures tied to our anyio_backend: id -> the cached result tied
_PINNED_KEY: Final = pytest.StashKey[dict[int, object]]()


class _Backend:
    """The ``anyio_backend`` parameter of one of this plugin's backends.

    Under virtual time it equals nothing, not even itself: pytest then never reuses a
    cached value of the module-scoped ``anyio_backend`` fixture for it, so every
    virtual-time test gets a fresh clock (a trio ``MockClock`` keeps its time across
    runs), and the higher-scoped async fixtures it uses are set up again in its runner.
    """

    __slots__ = ("name", "virtual")

    def __init__(self, name: str, virtual: bool) -> None:
        self.name = name
        self.virtual = virtual

    def __eq__(self, other: object) -> bool:
        if self.virtual or not isinstance(other, _Backend) or other.virtual:
            return False
        return self.name == other.name

    def __hash__(self) -> int:
        return object.__hash__(self) if self.virtual else hash(self.name)

    def __repr__(self) -> str:
        return f"virtual_time({self.name})" if self.virtual else self.name


def _is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # ValueError: a module blocked with sys.modules[name] = None, or without a spec
        return False


def _uvloop_module() -> str:
    # AnyIO's use_uvloop option uses winloop on Windows
    return "winloop" if sys.platform == "win32" else "uvloop"


def _backend_installed(name: str) -> bool:
    if name == "trio":
        return _is_installed("trio")
    if name == "uvloop":
        return _is_installed(_uvloop_module())
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
    :raises TypeError: if ``name`` is not a string or ``virtual_time`` not a bool
    :raises ValueError: for an unknown name, or for virtual time on uvloop
    """
    if not isinstance(name, str):
        raise TypeError(
            f"backend_spec() argument 'name' must be one of 'asyncio', 'uvloop', "
            f"'trio', got {type(name).__name__} {name!r}"
        )
    if not isinstance(virtual_time, bool):
        raise TypeError(
            f"backend_spec() argument 'virtual_time' must be True or False, "
            f"got {type(virtual_time).__name__} {virtual_time!r}"
        )
    if name not in BACKENDS:
        raise ValueError(
            f"backend_spec() argument 'name' must be one of 'asyncio', 'uvloop', "
            f"'trio', got {name!r}"
        )

    if name == "trio":
        if not virtual_time:
            return "trio", {}

        import trio.testing

        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}

    if name == "uvloop":
        if virtual_time:
            raise ValueError(
                "backend_spec() argument 'virtual_time' must be False with 'uvloop': "
                "no virtual clock supports uvloop (use 'asyncio' or 'trio')"
            )

        return "asyncio", {"use_uvloop": True}

    if virtual_time:
        return "asyncio", {"loop_factory": _new_looptime_loop}

    return "asyncio", {}


def _virtual_clock() -> Any:
    """The running test's virtual clock, or ``None`` under real time."""
    import sniffio

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
        import anyio

        return anyio.current_time()

    @property
    def virtual(self) -> bool:
        """Whether the running test is under a virtual clock (that can be advanced)."""
        return _virtual_clock() is not None

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
            raise TypeError(
                f"AnyconcClock.advance() argument 'seconds' must be a number, "
                f"got {type(seconds).__name__}"
            )
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"AnyconcClock.advance() argument 'seconds' must be a non-negative "
                f"finite number, got {seconds!r}"
            )

        clock = _virtual_clock()
        if clock is None:
            raise RuntimeError(
                "advance() needs virtual time: mark the test with "
                "@pytest.mark.virtual_time"
            )

        import sniffio

        if sniffio.current_async_library() == "trio":
            clock.jump(seconds)
        else:
            clock.setup_looptime(start=clock.time() + seconds)


def _anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The backend of the current test: AnyIO's value, or ``(name, options)``."""
    param = getattr(request, "param", None)
    if isinstance(param, _Backend):
        return backend_spec(param.name, virtual_time=param.virtual)
    if param is not None:
        return param  # AnyIO's own value (a backend name), as AnyIO's fixture returns

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
        help="run every anyio test on these comma-separated backends "
        "(asyncio, uvloop, trio)",
    )
    parser.addini(
        "anyconc_backends",
        type="args",
        default=[],
        help="run every anyio test on these backends, e.g. 'asyncio,trio'",
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
        help="mark every async def test with @pytest.mark.anyio, on every "
        "installed backend",
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


def _is_active(pluginmanager: pytest.PytestPluginManager, module: str) -> bool:
    # By module rather than by name: "-p anyio.pytest_plugin" registers AnyIO's plugin
    # under another name than its entry point ("anyio")
    plugin = sys.modules.get(module)
    return plugin is not None and pluginmanager.is_registered(plugin)


def _asyncio_auto_mode(config: pytest.Config) -> bool:
    if not _is_active(config.pluginmanager, "pytest_asyncio.plugin"):
        return False
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(mode) == "auto"


def _read_settings(config: pytest.Config) -> _Settings:
    option: str | None = config.getoption("anyconc_backends")
    ini: list[str] = config.getini("anyconc_backends")
    auto_mark = bool(config.getini("anyconc_auto_mark"))
    backends: tuple[str, ...] | None
    if option is not None:
        backends = _parse_backends([option], "--anyconc-backends")
    elif ini:
        backends = _parse_backends(ini, "anyconc_backends")
    elif auto_mark:
        # chosen explicitly, a backend that is not installed is kept (and skipped with
        # a reason, see _backend_param); by default, only the installed ones
        backends = tuple(name for name in BACKENDS if _backend_installed(name))
    else:
        backends = None

    settings = _Settings(
        backends=backends,
        virtual_by_default=bool(config.getini("anyconc_virtual_time")),
        auto_mark=auto_mark,
        asyncio_auto=_asyncio_auto_mode(config),
    )
    if settings.auto_mark and settings.asyncio_auto:
        raise pytest.UsageError(
            "anyconc_auto_mark = true and pytest-asyncio's asyncio_mode = auto both "
            "claim every async def test: set asyncio_mode = strict (and mark "
            "pytest-asyncio's tests with @pytest.mark.asyncio), or remove "
            "anyconc_auto_mark (and mark anyio tests with @pytest.mark.anyio)"
        )

    return settings


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(enabled=True): run the anyio test under a virtual clock on every "
        "backend (trio MockClock autojump, looptime on asyncio; skipped on uvloop)",
    )

    pluginmanager = config.pluginmanager
    if not _is_active(pluginmanager, "anyio.pytest_plugin"):
        return  # nothing would run the tests we parametrize: stay inert

    settings = _read_settings(config)
    config.stash[_SETTINGS_KEY] = settings
    pluginmanager.register(_fixture_plugin(), "anyconc-fixtures")

    if settings.opted_in and not _is_active(pluginmanager, "pytest_asyncio.plugin"):
        # looptime's plugin only acts on pytest-asyncio's loops, and without pytest-asyncio
        # its pytest_fixture_setup hook fails on every fixture (looptime 0.9)
        looptime_plugin = sys.modules.get("looptime._internal.plugin")
        if looptime_plugin is not None and pluginmanager.is_registered(looptime_plugin):
            pluginmanager.unregister(looptime_plugin)


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None or not settings.opted_in or config.get_verbosity() < 1:
        return None

    backends = (
        "AnyIO's own" if settings.backends is None else ", ".join(settings.backends)
    )
    mode = (
        "every anyio test"
        if settings.virtual_by_default
        else "@pytest.mark.virtual_time"
    )
    return f"anyconc: backends {backends}; virtual time: {mode}"


def _has_marker(obj: object, collector: pytest.Collector | None, name: str) -> bool:
    own = getattr(obj, "pytestmark", ())
    if any(mark.name == name for mark in own):
        return True
    return collector is not None and collector.get_closest_marker(name) is not None


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
    if any(_has_marker(obj, collector, other) for other in _OTHER_RUNNERS):
        return  # another plugin's test (pytest-asyncio, pytest-trio): not ours

    if not _has_marker(obj, None, "anyio"):
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


def _is_ours(item: pytest.Item, settings: _Settings) -> bool:
    """Whether the plugin handles this test: the matrix, or virtual time."""
    if settings.backends is not None and item.get_closest_marker("anyio") is not None:
        return True
    try:
        return _virtual_requested(item, settings.virtual_by_default)
    except TypeError:
        return False  # reported when the test is parametrized


def _is_pytest_asyncio_item(item: object) -> bool:
    return type(item).__module__.startswith("pytest_asyncio")


def _explicit_asyncio_marker(item: pytest.Function) -> bool:
    """Whether ``@pytest.mark.asyncio`` was written by the user (not added by auto mode)."""
    if (
        item.parent is not None
        and item.parent.get_closest_marker("asyncio") is not None
    ):
        return True
    obj = getattr(item, "_obj", None) or item.obj
    callspec = getattr(item, "callspec", None)
    marks = [*getattr(obj, "pytestmark", ()), *(callspec.marks if callspec else ())]
    return any(mark.name == "asyncio" for mark in marks)


def _plain_function(item: pytest.Function) -> pytest.Function:
    """The item pytest itself would have made, without pytest-asyncio's auto marker."""
    callspec = getattr(item, "callspec", None)
    assert item.parent is not None
    function: pytest.Function = pytest.Function.from_parent(
        item.parent,
        name=item.name,
        callspec=callspec,
        fixtureinfo=item._fixtureinfo,
        keywords={callspec.id: True} if callspec is not None else None,
        originalname=item.originalname,
    )
    return function


# (pytest registers only functions whose name starts with "pytest_", specname or not)
@pytest.hookimpl(specname="pytest_pycollect_makeitem", wrapper=True, tryfirst=True)
def pytest_pycollect_makeitem_reclaim(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Any:
    """Hand the anyio tests we handle back to AnyIO when pytest-asyncio auto mode took them.

    In ``asyncio_mode = auto``, pytest-asyncio replaces every async test item with one
    that runs the test on its own asyncio loop, whatever the test's id says. This wrapper
    is the outermost (tryfirst), so it sees pytest-asyncio's items and replaces those that
    this plugin handles by the plain items pytest would have made. A test marked
    ``@pytest.mark.asyncio`` explicitly stays pytest-asyncio's (a conflict if it is anyio
    too, reported by :func:`pytest_collection_modifyitems`).
    """
    result = yield
    settings = collector.config.stash.get(_SETTINGS_KEY, None)
    if settings is None or not settings.asyncio_auto or not result:
        return result

    items = result if isinstance(result, list) else [result]
    reclaimed: list[Any] = []
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and _is_pytest_asyncio_item(item)
            and item.get_closest_marker("anyio") is not None
            and _is_ours(item, settings)
            and not _explicit_asyncio_marker(item)
        ):
            item = _plain_function(item)
        reclaimed.append(item)

    return reclaimed if isinstance(result, list) else reclaimed[0]


def _is_our_backend_fixture(func: Any) -> bool:
    """Whether a fixture function is this plugin's ``anyio_backend``."""
    # compared by name: pytest versions wrap fixture functions differently
    names = (getattr(func, "__module__", None), getattr(func, "__qualname__", None))
    return names == (__name__, "_anyio_backend")


def _owns_backend_fixture(metafunc: pytest.Metafunc) -> bool:
    fixturedefs: Sequence[Any] = metafunc._arg2fixturedefs.get("anyio_backend", ())
    for fixturedef in reversed(fixturedefs):
        if _is_our_backend_fixture(fixturedef.func):
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
    elif not virtual or name == "trio":
        return pytest.param(_Backend(name, virtual), id=name)
    elif name == "uvloop":
        reason = "virtual time is not available on uvloop: no virtual clock supports it"
    elif not _is_installed("looptime"):
        reason = "virtual time on asyncio needs the looptime package"
    else:
        return pytest.param(_Backend(name, virtual), id=name)

    return pytest.param(
        _Backend(name, virtual), id=name, marks=pytest.mark.skip(reason)
    )


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
    if settings.backends is not None:
        params = [_backend_param(name, virtual) for name in settings.backends]
    else:
        import anyio

        backends = anyio.get_available_backends()
        if virtual:
            params = [_backend_param(name, True) for name in backends]
        else:
            # exactly what AnyIO's own fixture does
            params = [pytest.param(name, id=name) for name in backends]

    metafunc.parametrize("anyio_backend", params, indirect=True)


def _expected(item: pytest.Item | None) -> _Backend | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    param = callspec.params.get("anyio_backend")
    return param if isinstance(param, _Backend) else None


def _conflict(item: pytest.Item, settings: _Settings) -> str | None:
    """Why this test cannot run as its id and markers say, when collection tells."""
    if not isinstance(item, pytest.Function):
        return None
    try:
        virtual = _virtual_requested(item, settings.virtual_by_default)
    except TypeError:
        return None  # reported when the test is parametrized
    ours = _expected(item) is not None or (virtual and item.get_closest_marker(_MARKER))
    if not ours:
        return None

    if _is_pytest_asyncio_item(item):
        return (
            f"{item.nodeid} is marked both @pytest.mark.anyio and "
            "@pytest.mark.asyncio: pytest-asyncio would run it on its own asyncio "
            "loop whatever its id says; remove one of the two markers"
            if item.get_closest_marker("anyio") is not None
            else f"{item.nodeid} is marked @pytest.mark.virtual_time, but "
            "pytest-asyncio runs it (@pytest.mark.asyncio, or asyncio_mode = auto): "
            "virtual time needs AnyIO "
            "to run the test; mark it @pytest.mark.anyio instead"
        )

    function = getattr(item, "function", None)
    inner = getattr(getattr(function, "hypothesis", None), "inner_test", function)
    if (
        virtual
        and inspect.iscoroutinefunction(inner)
        and "anyio_backend" not in item.fixturenames
    ):
        return (
            f"{item.nodeid} is marked @pytest.mark.virtual_time, but nothing runs it "
            "through AnyIO: mark it @pytest.mark.anyio (or set anyconc_auto_mark = true)"
        )

    expected = _expected(item)
    if expected is not None:
        for name, fixturedefs in item._fixtureinfo.name2fixturedefs.items():
            if fixturedefs and _is_pytest_asyncio_fixture(fixturedefs[-1].func):
                return (
                    f"{item.nodeid} uses {name!r}, a @pytest_asyncio.fixture: "
                    "pytest-asyncio sets it up on its own asyncio loop, not on the "
                    f"test's [{expected.name}] loop; make it a plain @pytest.fixture "
                    "(AnyIO runs it on the test's backend)"
                )

    return None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None:
        return
    for item in items:
        message = _conflict(item, settings)
        if message is not None:
            item.stash[_CONFLICT_KEY] = message


def pytest_report_collectionfinish(
    config: pytest.Config, items: Sequence[pytest.Item]
) -> list[str]:
    conflicts = [
        item.stash[_CONFLICT_KEY] for item in items if _CONFLICT_KEY in item.stash
    ]
    if not conflicts:
        return []
    return [
        f"anyconc: {len(conflicts)} test(s) cannot run as their ids say "
        "(they fail at setup):",
        *(f"  {message}" for message in conflicts),
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    message = item.stash.get(_CONFLICT_KEY, None)
    if message is not None:
        pytest.fail(message, pytrace=False)
    if _expected(item) is not None and isinstance(item, pytest.Function):
        _finish_foreign_async_fixtures(item)


def _finish_foreign_async_fixtures(item: pytest.Function) -> None:
    """Finish the higher-scoped async fixtures another test left open in AnyIO's runner.

    A test that AnyIO parametrizes itself (not this plugin) may have set up a module-scoped
    async fixture, which then keeps AnyIO's runner, on that test's backend, open; this
    test would run in it whatever its own backend or clock. Such a fixture is finished
    here and set up again for this test, on its backend (and tied to it, see
    :func:`pytest_fixture_setup`); the other tests set it up again when they next need it.
    """
    pinned = item.config.stash.setdefault(_PINNED_KEY, {})
    for fixturedefs in item._fixtureinfo.name2fixturedefs.values():
        fixturedef = fixturedefs[-1]
        cached = fixturedef.cached_result
        if (
            cached is not None
            and fixturedef.scope != "function"
            and _is_async_fixture(fixturedef.func)
            and "anyio_backend" not in fixturedef.argnames
            and pinned.get(id(fixturedef)) is not cached
        ):
            # (finish() only passes the request on to pytest_fixture_post_finalizer)
            fixturedef.finish(item._request)  # type: ignore[arg-type]


def _is_async_fixture(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def _is_pytest_asyncio_fixture(func: Any) -> bool:
    # what @pytest_asyncio.fixture sets (pytest_asyncio.plugin._is_asyncio_fixture_function)
    return bool(
        getattr(getattr(func, "__func__", func), "_force_asyncio_fixture", False)
    )


def _run_in_anyio(func: Any, has_backend_arg: bool, has_request_arg: bool) -> Any:
    """A sync generator fixture function that runs ``func`` in AnyIO's test runner.

    This is what AnyIO's own ``pytest_fixture_setup`` does; doing it here, in the
    outermost wrapper, keeps pytest-asyncio's auto mode from running the fixture on its
    own loop when its wrapper happens to be called before AnyIO's.
    """
    from anyio.pytest_plugin import extract_backend_and_options, get_runner

    def wrapper(anyio_backend: Any, request: Any, **kwargs: Any) -> Any:
        if (
            request.instance
            and inspect.ismethod(func)
            and type(func.__self__) is type(request.instance)
        ):
            local_func = func.__func__.__get__(request.instance)
        else:
            local_func = func

        backend_name, backend_options = extract_backend_and_options(anyio_backend)
        if has_backend_arg:
            kwargs["anyio_backend"] = anyio_backend
        if has_request_arg:
            kwargs["request"] = request

        with get_runner(backend_name, backend_options) as runner:
            if inspect.isasyncgenfunction(local_func):
                yield from runner.run_asyncgen_fixture(local_func, kwargs)
            else:
                yield runner.run_fixture(local_func, kwargs)

    return wrapper


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    """Async fixtures of the tests on this plugin's backends: AnyIO's, on their backend.

    * AnyIO keeps its test runner open while a module-, class- or session-scoped async
      fixture is open, and reuses it for the next test, whatever backend that test asks
      for; AnyIO adds ``anyio_backend`` to the fixture's arguments only during its
      setup, after pytest recorded the fixture's dependencies, so pytest does not tear it
      down when the backend changes. This registers that dependency: such a fixture is
      finished with our ``anyio_backend`` value.
    * In pytest-asyncio's auto mode, the fixture is run in AnyIO's runner here (see
      :func:`_run_in_anyio`), unless it is an explicit ``@pytest_asyncio.fixture``.

    Only for tests on this plugin's own backends (the matrix, virtual time): the others
    keep AnyIO's behaviour.
    """
    settings = request.config.stash.get(_SETTINGS_KEY, None)
    func = fixturedef.func
    if (
        settings is None
        or not _is_async_fixture(func)
        or "anyio_backend" not in request.fixturenames
        or _expected(getattr(request, "_pyfuncitem", None)) is None
    ):
        return (yield)

    original_argnames = fixturedef.argnames
    has_backend_arg = "anyio_backend" in original_argnames
    if settings.asyncio_auto and not _is_pytest_asyncio_fixture(func):
        fixturedef.func = _run_in_anyio(
            func, has_backend_arg, "request" in original_argnames
        )
        fixturedef.argnames = tuple(
            dict.fromkeys((*original_argnames, "anyio_backend", "request"))
        )
    try:
        result = yield
    finally:
        fixturedef.func = func
        fixturedef.argnames = original_argnames

    if fixturedef.scope != "function" and not has_backend_arg:
        backend_def = request._get_active_fixturedef("anyio_backend")
        if _is_our_backend_fixture(backend_def.func):
            backend_def.addfinalizer(
                functools.partial(fixturedef.finish, request=request)
            )
            pinned = request.config.stash.setdefault(_PINNED_KEY, {})
            pinned[id(fixturedef)] = fixturedef.cached_result
    return result


def _has_virtual_clock(backend: object) -> bool:
    if not isinstance(backend, tuple) or len(backend) != 2:
        return False

    name, options = backend
    if name == "trio":
        return "clock" in options
    return "loop_factory" in options and not options.get("use_uvloop", False)


class _Probe:
    """What the checking wrapper saw inside the running test."""

    __slots__ = ("mismatch", "ran")

    def __init__(self) -> None:
        self.ran = False
        self.mismatch: str | None = None


class _BackendMismatch(Exception):
    pass


def _running_problem(expected: _Backend) -> str | None:
    """What is wrong with the running event loop for ``expected``, if anything."""
    import sniffio

    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None

    wanted = "trio" if expected.name == "trio" else "asyncio"
    if library != wanted:
        return f"ran on {library or 'no known async library'}, not {wanted}"

    if library == "asyncio":
        import asyncio

        loop_type = type(asyncio.get_running_loop())
        on_uvloop = loop_type.__module__.split(".")[0] == _uvloop_module()
        if expected.name == "uvloop" and not on_uvloop:
            return f"ran on {loop_type.__qualname__}, not uvloop's loop"
        if expected.name == "asyncio" and on_uvloop:
            return "ran on uvloop's loop, not asyncio's own"

    if expected.virtual and _virtual_clock() is None:
        return "ran in real time, not under its virtual clock"

    return None


def _checking(
    func: Callable[..., Any], expected: _Backend, probe: _Probe
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        probe.ran = True
        problem = _running_problem(expected)
        if problem is not None:
            probe.mismatch = problem
            raise _BackendMismatch(problem)
        return await func(*args, **kwargs)

    checked._anyconc_unchecked = func  # type: ignore[attr-defined]
    return checked


def _unwrapped(func: Any) -> Any:
    """The test function under AnyIO's hypothesis wrapper and our checking one."""
    while True:
        inner = getattr(func, "_anyio_original_func", None)
        inner = getattr(func, "_anyconc_unchecked", inner)
        if inner is None:
            return func
        func = inner


def _mismatch_message(item: pytest.Item, expected: _Backend, problem: str) -> str:
    label = f"[{expected.name}]" + (" in virtual time" if expected.virtual else "")
    if _is_pytest_asyncio_item(item):
        cause = "pytest-asyncio ran the test on its own event loop"
        fix = "set asyncio_mode = strict, or remove @pytest.mark.asyncio from the test"
    else:
        cause = (
            "AnyIO reused the event loop of an earlier test, kept open by a "
            "higher-scoped (module, class or session) async fixture"
        )
        fix = (
            "request anyio_backend in that fixture, give it function scope, or turn "
            "on the backend matrix (anyconc_backends), which sets such fixtures up "
            "again on each backend"
        )
    return f"{item.nodeid} is {label} but {problem}. Cause: {cause}. Fix: {fix}."


_LOOPTIME_POLICY_FIXTURE: Final = "event_loop_policy"
_NOTHING: Final = object()


def _test_function_slot(item: pytest.Function) -> tuple[Any, str]:
    """Where the test's coroutine function is looked up when it runs."""
    hypothesis = getattr(item.obj, "hypothesis", None)
    if hypothesis is not None:
        return hypothesis, "inner_test"  # AnyIO runs the inner test of @given
    return item, "obj"


@contextlib.contextmanager
def _hidden_from_looptime(item: pytest.Function) -> Iterator[None]:
    """Keep looptime's plugin from leaking an event loop on a test pytest-asyncio skips.

    looptime's ``pytest_pyfunc_call`` (looptime 0.9) asks pytest-asyncio's autouse
    ``event_loop_policy`` fixture for the current event loop of every test, which creates
    (and later leaks, as an "unclosed event loop" ResourceWarning) a new loop on
    Python < 3.14 while none is set. It only acts on pytest-asyncio's tests, so the other
    tests do not show it the fixture while they run (unless they request it).
    """
    hidden: object = _NOTHING
    if _LOOPTIME_POLICY_FIXTURE not in item._fixtureinfo.argnames:
        hidden = item.funcargs.pop(_LOOPTIME_POLICY_FIXTURE, _NOTHING)
    try:
        yield
    finally:
        if hidden is not _NOTHING:
            item.funcargs[_LOOPTIME_POLICY_FIXTURE] = hidden


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    settings = item.config.stash.get(_SETTINGS_KEY, None)
    if (
        settings is None
        or not isinstance(item, pytest.Function)
        or _is_pytest_asyncio_item(item)
        or not (settings.opted_in or _expected(item) is not None)
    ):
        return (yield)

    # every test of a project that opted in, and this plugin's own tests otherwise
    with _hidden_from_looptime(item):
        return (yield from _run_checked(item))


def _run_checked(item: pytest.Function) -> Generator[None, Any, Any]:
    """Run the test, checking from inside it that it runs where its id says."""
    expected = _expected(item)
    if expected is None:
        return (yield)

    target, attribute = _test_function_slot(item)
    original = getattr(target, attribute)
    func = _unwrapped(original)
    if not inspect.iscoroutinefunction(func):
        return (yield)  # a sync test that requests anyio_backend: nothing to check

    probe = _Probe()
    setattr(target, attribute, _checking(func, expected, probe))
    try:
        result = yield
    except BaseException:
        if probe.mismatch is not None:
            pytest.fail(
                _mismatch_message(item, expected, probe.mismatch), pytrace=False
            )
        raise
    finally:
        # (for hypothesis: the plain inner test, not a wrapper AnyIO made around ours)
        setattr(target, attribute, original if target is item else func)

    if not probe.ran and getattr(item.obj, "hypothesis", None) is None:
        pytest.fail(
            f"{item.nodeid} is [{expected.name}] but its coroutine never ran: "
            "another plugin replaced the test before AnyIO could run it",
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    settings = pyfuncitem.config.stash.get(_SETTINGS_KEY, None)
    backend = pyfuncitem.funcargs.get("anyio_backend")
    if (
        settings is not None
        and backend is not None
        and _expected(pyfuncitem) is None
        and _CONFLICT_KEY not in pyfuncitem.stash
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
