"""Tests of anyconc's pytest plugin (``anyconc.pytest_plugin``).

Most of them run an outside test suite with ``pytester``: inline (fast, in this process)
where the plugin's behaviour does not depend on process state, in a subprocess where it
does (pytest-timeout's alarm, modules blocked from importing). The ``anyconc_clock``
tests at the end run in this suite itself.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time

import anyio
import hypothesis  # noqa: F401
import pytest

from anyconc.pytest_plugin import BACKENDS, AnyconcClock, backend_spec

pytest_plugins = ["pytester"]

# (hypothesis is imported above although unused: the inner runs' header imports it, and
# pytester drops modules first imported during an inline run, so every run would import
# and assertion-rewrite it again, about a second each)

LONG_SLEEP = """
import time

import anyio
import pytest


@pytest.mark.anyio
async def test_long_sleep(request):
    real_start = time.monotonic()
    start = anyio.current_time()
    print("sleeping on", request.node.callspec.id, flush=True)
    with anyio.fail_after(7200):
        await anyio.sleep(3600)
    assert anyio.current_time() - start == pytest.approx(3600, abs=1e-6)
    # (an hour did not pass in real time; a loose bound, far from the hour and under
    # the per-test timeout, as a loaded machine may take a second or more)
    assert time.monotonic() - real_start < 10
"""

# The project turns the backend matrix on (any of anyconc_backends, --anyconc-backends,
# anyconc_auto_mark); without it the plugin leaves AnyIO's behaviour alone
OPT_IN = "--anyconc-backends=asyncio,uvloop,trio"

# pytest-asyncio (in the test extra) is active in the inner runs unless a test says
# otherwise: strict mode, with the loop scope set so that it does not warn
WITH_PYTEST_ASYNCIO = "-o asyncio_default_fixture_loop_scope=function"
# "AnyIO's plugin alone": pytest-asyncio disabled
WITHOUT_PYTEST_ASYNCIO = "-p no:asyncio"


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    # (after pytester's own setup, which clears PYTEST_ADDOPTS)
    monkeypatch.setenv("PYTEST_ADDOPTS", WITH_PYTEST_ASYNCIO)
    # looptime's plugin (with pytest-asyncio active) asks for the main thread's current
    # event loop on every test call, which creates and leaks one on Python < 3.14 while
    # none was ever set; the plugin keeps it from doing so for its own tests, but inner
    # runs without the opt-in (AnyIO alone) would leak one into this process
    asyncio.set_event_loop(None)
    return pytester


VIRTUAL_UVLOOP_REASON = (
    "virtual time is not available on uvloop: no virtual clock supports it"
)


def collected_ids(result: pytest.RunResult) -> list[str]:
    """The test ids printed by ``--collect-only -q``."""
    return [line for line in result.outlines if "::" in line]


# --- virtual time: the sleep(3600) + fail_after(7200) test -------------------


def test_an_hour_passes_instantly_on_every_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        LONG_SLEEP.replace(
            "@pytest.mark.anyio\n", "@pytest.mark.anyio\n@pytest.mark.virtual_time\n"
        )
    )
    real_start = time.monotonic()
    result = pytester.runpytest("-v", "-rs", "-W", "error", OPT_IN)
    # The inner test bounds each backend's hour; this bounds the whole inner run
    # (pytest's start included), loosely, under the per-test timeout.
    assert time.monotonic() - real_start < 45
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_long_sleep[[]asyncio[]] PASSED*",
            "*::test_long_sleep[[]trio[]] PASSED*",
            f"SKIPPED [[]1[]] *: {VIRTUAL_UVLOOP_REASON}",
        ]
    )


def test_virtual_time_marker_works_without_opting_in(pytester: pytest.Pytester) -> None:
    # Without the matrix, a virtual_time test runs on AnyIO's own backends, each under
    # its virtual clock
    pytester.makepyfile(
        LONG_SLEEP.replace(
            "@pytest.mark.anyio\n", "@pytest.mark.anyio\n@pytest.mark.virtual_time\n"
        )
    )
    result = pytester.runpytest("-v", "-s", "-W", "error")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_long_sleep[[]asyncio[]] sleeping on asyncio",
            "PASSED",
            "*::test_long_sleep[[]trio[]] sleeping on trio",
            "PASSED",
        ]
    )


def test_an_hour_does_not_pass_in_real_time(pytester: pytest.Pytester) -> None:
    # The same test without virtual time: once it has started sleeping, it is still
    # sleeping after a short real-time timeout, on each backend. (Not pytest-timeout: its
    # SIGALRM handler cannot interrupt uvloop's or trio's blocking wait.)
    pytester.makepyfile(LONG_SLEEP)
    processes = {
        backend: pytester.popen(
            [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider"]
            + [f"--anyconc-backends={backend}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for backend in BACKENDS
    }
    try:
        for backend, process in processes.items():
            assert process.stdout is not None
            output = []
            for line in process.stdout:
                output.append(line.decode())
                if b"sleeping on" in line:
                    assert f"sleeping on {backend}\n" in output[-1]
                    break
            else:
                pytest.fail("".join(output))

        for process in processes.values():
            with pytest.raises(subprocess.TimeoutExpired):
                process.wait(timeout=0.5)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def test_virtual_time_ini_switch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LONG_SLEEP)
    result = pytester.runpytest(
        "-v", "-W", "error", "-o", "anyconc_virtual_time=true", OPT_IN
    )
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*::test_long_sleep[[]uvloop[]] SKIPPED*"])
    # alone, it keeps AnyIO's backends (asyncio, trio): it does not add uvloop
    result = pytester.runpytest("-v", "-W", "error", "-o", "anyconc_virtual_time=true")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*uvloop*")


def test_fail_after_fires_at_its_exact_virtual_deadline(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest

        pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

        async def test_deadline(anyio_backend):
            assert anyio.current_time() == 0
            with pytest.raises(TimeoutError):
                with anyio.fail_after(30):
                    await anyio.sleep(3600)
            assert anyio.current_time() == pytest.approx(30, abs=1e-6)
            with anyio.move_on_after(5) as scope:
                await anyio.Event().wait()
            assert scope.cancelled_caught
            assert anyio.current_time() == pytest.approx(35, abs=1e-6)
        """
    )
    result = pytester.runpytest("-W", "error", OPT_IN)
    result.assert_outcomes(passed=2, skipped=1)


def test_every_virtual_test_gets_a_fresh_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest

        pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

        @pytest.mark.parametrize("n", [1, 2, 3])
        async def test_starts_at_zero(anyio_backend, n):
            assert anyio.current_time() == 0
            await anyio.sleep(100 * n)
            assert anyio.current_time() == pytest.approx(100 * n, abs=1e-6)

        async def test_also_starts_at_zero(anyio_backend):
            assert anyio.current_time() == 0
            await anyio.sleep(7)
        """
    )
    result = pytester.runpytest("-W", "error", OPT_IN)
    result.assert_outcomes(passed=8, skipped=4)


def test_virtual_time_can_be_switched_off_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest

        @pytest.mark.anyio
        @pytest.mark.virtual_time(False)
        async def test_real(anyio_backend, anyconc_clock):
            assert not anyconc_clock.virtual
            start = anyio.current_time()
            await anyio.sleep(0.05)
            assert anyio.current_time() - start >= 0.04
        """
    )
    result = pytester.runpytest(
        "-W", "error", "-o", "anyconc_virtual_time=true", OPT_IN
    )
    result.assert_outcomes(passed=3)  # uvloop runs too: it is real time


def test_virtual_time_marker_rejects_a_non_bool(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        @pytest.mark.virtual_time("yes")
        async def test_x(anyio_backend):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*TypeError: *::test_x: virtual_time takes one optional bool (enabled)*"]
    )


# --- backends: ids, subsets ------------------------------------------------------

BACKEND_PROBE = """
import asyncio

import pytest
import sniffio


@pytest.mark.anyio
async def test_x(anyio_backend, request):
    backend_id = request.node.callspec.id
    name, options = anyio_backend
    assert sniffio.current_async_library() == name
    if backend_id == "uvloop":
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        assert options == {"use_uvloop": True}
    else:
        assert (name, options) == (backend_id, {})
"""


def test_ids_are_the_installed_backends_in_order(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nanyconc_auto_mark = true\n")
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == [
        "test_probe.py::test_x[asyncio]",
        "test_probe.py::test_x[uvloop]",
        "test_probe.py::test_x[trio]",
    ]
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=3)


def test_ids_combine_like_anyios(pytester: pytest.Pytester) -> None:
    # The backend comes first, as with AnyIO's own (module-scoped) fixture
    pytester.makepyfile(
        test_combined="""
        import pytest

        @pytest.fixture(params=["a", "b"])
        def kind(request):
            return request.param

        @pytest.mark.anyio
        @pytest.mark.parametrize("n", [1])
        async def test_p(kind, n):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", OPT_IN)
    assert collected_ids(result) == [
        f"test_combined.py::test_p[{backend}-{kind}-1]"
        for backend in BACKENDS
        for kind in "ab"
    ]
    anyio_only = pytester.runpytest(
        "--collect-only", "-q", "-p", "no:anyconc", "-p", "no:looptime_plugin"
    )
    assert collected_ids(anyio_only) == [
        name for name in collected_ids(result) if "uvloop" not in name
    ]


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--anyconc-backends=asyncio,trio"], "", ["asyncio", "trio"]),
        (["--anyconc-backends", "trio, asyncio"], "", ["trio", "asyncio"]),
        (["--anyconc-backends=uvloop"], "", ["uvloop"]),
        ([], "anyconc_backends = trio", ["trio"]),
        ([], "anyconc_backends = asyncio uvloop", ["asyncio", "uvloop"]),
        (["--anyconc-backends=asyncio"], "anyconc_backends = trio", ["asyncio"]),
    ],
    ids=["option", "option-order", "option-one", "ini", "ini-spaces", "option-wins"],
)
def test_backend_subset(
    pytester: pytest.Pytester, args: list[str], ini: str, expected: list[str]
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest("--collect-only", "-q", *args)
    assert collected_ids(result) == [
        f"test_probe.py::test_x[{name}]" for name in expected
    ]
    result = pytester.runpytest("-W", "error", *args)
    result.assert_outcomes(passed=len(expected))


def test_backend_subset_from_pyproject_list(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nanyconc_backends = ["trio", "asyncio"]\n'
    )
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == [
        "test_probe.py::test_x[trio]",
        "test_probe.py::test_x[asyncio]",
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--anyconc-backends=asyncio,twisted",
            "ERROR: --anyconc-backends: unknown backend 'twisted'; "
            "choose from asyncio, uvloop, trio",
        ),
        ("--anyconc-backends=,", "ERROR: --anyconc-backends: no backend given"),
    ],
)
def test_bad_backend_option(
    pytester: pytest.Pytester, option: str, message: str
) -> None:
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.lines


def test_bad_backend_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nanyconc_backends = asyncio,curio\n")
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: anyconc_backends: unknown backend 'curio'; "
        "choose from asyncio, uvloop, trio" in result.stderr.lines
    )


def test_report_header_when_verbose(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    result = pytester.runpytest("-v", "--anyconc-backends=trio,asyncio", "--co")
    result.stdout.fnmatch_lines(
        ["anyconc: backends trio, asyncio; virtual time: @pytest.mark.virtual_time"]
    )
    result = pytester.runpytest("--co")
    result.stdout.no_fnmatch_line("anyconc:*")


# --- no effect on what does not use it -------------------------------------------

UNRELATED_SUITE = """
import pytest


@pytest.fixture
def value():
    return 41


def test_sync(value):
    assert value == 41


@pytest.mark.parametrize("n", [1, 2])
def test_sync_parametrized(n, tmp_path):
    assert tmp_path.is_dir()


class TestGroup:
    def test_method(self):
        pass


@pytest.mark.virtual_time
def test_sync_with_marker():
    pass
"""


def test_plain_sync_tests_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    virtual_time: registered by hand\n")
    pytester.makepyfile(test_plain=UNRELATED_SUITE)
    with_plugin = pytester.runpytest("--collect-only", "-q")
    without_plugin = pytester.runpytest(
        "--collect-only", "-q", "-p", "no:anyconc", "-p", "no:looptime_plugin"
    )
    assert (
        collected_ids(with_plugin)
        == collected_ids(without_plugin)
        == [
            "test_plain.py::test_sync",
            "test_plain.py::test_sync_parametrized[1]",
            "test_plain.py::test_sync_parametrized[2]",
            "test_plain.py::TestGroup::test_method",
            "test_plain.py::test_sync_with_marker",
        ]
    )
    pytester.runpytest("-W", "error").assert_outcomes(passed=5)


def test_unmarked_async_tests_are_not_parametrized_by_default(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        async def test_unmarked():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == [
        "test_unmarked_async_tests_are_not_parametrized_by_default.py::test_unmarked"
    ]


def test_auto_mark_switch(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nanyconc_auto_mark = true\n")
    pytester.makepyfile(
        test_auto="""
        import pytest
        import sniffio

        async def test_unmarked():
            assert sniffio.current_async_library() in ("asyncio", "trio")

        @pytest.mark.anyio
        async def test_marked_too():
            pass

        def test_sync():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "-m", "anyio")
    # (module-scoped parameters: pytest groups the tests by backend)
    assert collected_ids(result) == [
        f"test_auto.py::{name}[{backend}]"
        for backend in BACKENDS
        for name in ("test_unmarked", "test_marked_too")
    ]
    pytester.runpytest("-W", "error").assert_outcomes(passed=7)


def test_anyios_auto_mode_works_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nanyio_mode = auto\n")
    pytester.makepyfile(
        test_auto="""
        async def test_unmarked(anyio_backend, request):
            # the matrix: ours; otherwise: AnyIO's string
            opted_in = request.config.getoption("anyconc_backends") is not None
            assert isinstance(anyio_backend, tuple if opted_in else str)
        """
    )
    result = pytester.runpytest("--collect-only", "-q", OPT_IN)
    assert collected_ids(result) == [
        f"test_auto.py::test_unmarked[{backend}]" for backend in BACKENDS
    ]
    pytester.runpytest("-W", "error", OPT_IN).assert_outcomes(passed=3)
    pytester.runpytest("-W", "error").assert_outcomes(passed=2)


def test_disabled_with_no_anyconc(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_probe="""
        import pytest

        @pytest.mark.anyio
        async def test_x(anyio_backend):
            assert isinstance(anyio_backend, str)  # AnyIO's own fixture
        """
    )
    result = pytester.runpytest(
        "--collect-only", "-q", "-p", "no:anyconc", "-p", "no:looptime_plugin"
    )
    assert collected_ids(result) == [
        "test_probe.py::test_x[asyncio]",
        "test_probe.py::test_x[trio]",
    ]
    # the marker, the options and the fixture are gone too
    result = pytester.runpytest("--markers", "-p", "no:anyconc")
    result.stdout.no_fnmatch_line("*virtual_time*")
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.virtual_time(enabled=True): *"])
    result = pytester.runpytest("--fixtures", "-p", "no:anyconc")
    result.stdout.no_fnmatch_line("*anyconc_clock*")
    result = pytester.runpytest("-p", "no:anyconc", "--anyconc-backends=trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# --- looptime's own pytest plugin ------------------------------------------------

FIXTURE_SUITE = """
import pytest

@pytest.fixture
def value():
    return 1

def test_sync(value, tmp_path):
    assert value == 1

@pytest.mark.anyio
async def test_async(anyio_backend, value):
    assert value == 1
"""


def test_looptime_plugin_is_neutralized(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", WITHOUT_PYTEST_ASYNCIO)
    pytester.makepyfile(FIXTURE_SUITE)
    result = pytester.runpytest("-W", "error", OPT_IN)
    result.assert_outcomes(passed=4)
    # Control: looptime 0.9's plugin alone (pytest-asyncio absent) breaks every fixture.
    # If this starts passing, looptime fixed it and the neutralization can be revisited.
    # Without the opt-in, anyconc leaves looptime's plugin alone too.
    for args in (["-p", "no:anyconc"], []):
        result = pytester.runpytest(*args)
        result.assert_outcomes(errors=3)
        result.stdout.fnmatch_lines(
            ["*AttributeError: 'NoneType' object has no attribute '__name__'*"]
        )
    # With pytest-asyncio active, looptime's plugin works and is left alone
    monkeypatch.setenv("PYTEST_ADDOPTS", WITH_PYTEST_ASYNCIO)
    result = pytester.runpytest("-W", "error", "-p", "no:anyconc")
    result.assert_outcomes(passed=3)


# --- trio (and looptime) not installed -------------------------------------------

BLOCKER = """
import sys

# Loaded with -p, before the entry-point plugins: "import trio" raises ImportError
sys.modules["trio"] = None
"""

# looptime's own entry points import it at start-up, so it is hidden later, from a
# conftest (an environment without looptime would have neither)
HIDE_LOOPTIME = """
import sys

sys.modules["looptime"] = None
"""


def test_suite_runs_without_trio_and_looptime(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HIDE_LOOPTIME)
    pytester.makepyfile(
        blocker=BLOCKER,
        test_notrio="""
        import sys

        import anyio
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_real(anyio_backend, anyconc_clock):
            assert sys.modules["trio"] is None
            assert not anyconc_clock.virtual
            with pytest.raises(RuntimeError, match="advance.. needs virtual time"):
                anyconc_clock.advance(1)

        @pytest.mark.virtual_time
        async def test_virtual(anyio_backend):
            await anyio.sleep(3600)
        """,
    )
    # (hypothesis's plugin is off: trio's hypothesis entry point would import trio)
    blocked = ("-p", "blocker", "-p", "no:hypothesispytest", "-v", "-rs", "-W", "error")
    # (auto-marking opts in with every *installed* backend)
    result = pytester.runpytest_subprocess(*blocked, "-o", "anyconc_auto_mark=true")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_real[[]asyncio[]] PASSED*",
            "*::test_real[[]uvloop[]] PASSED*",
            "SKIPPED [[]1[]] *: virtual time on asyncio needs the looptime package",
            f"SKIPPED [[]1[]] *: {VIRTUAL_UVLOOP_REASON}",
        ]
    )
    result.stdout.no_fnmatch_line("*[[]trio[]]*")
    # A backend that is chosen explicitly keeps its id, skipped with the reason
    result = pytester.runpytest_subprocess(
        *blocked, "--anyconc-backends=asyncio,trio", "-k", "test_real"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*::test_real[[]trio[]] SKIPPED (trio is not installed)*"]
    )


# --- the user's own anyio_backend wins -------------------------------------------


def test_own_backend_fixture_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest
        import sniffio

        from anyconc.pytest_plugin import backend_spec

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def anyio_backend():
            return "trio"

        async def test_own():
            assert sniffio.current_async_library() == "trio"

        @pytest.mark.parametrize("anyio_backend", ["asyncio"])
        async def test_parametrized():
            assert sniffio.current_async_library() == "asyncio"

        @pytest.mark.virtual_time
        async def test_virtual_without_clock():
            await anyio.sleep(3600)

        class TestVirtualOwn:
            @pytest.fixture
            def anyio_backend(self):
                return backend_spec("trio", virtual_time=True)

            @pytest.mark.virtual_time
            async def test_virtual_with_clock(self):
                await anyio.sleep(3600)
                assert anyio.current_time() == pytest.approx(3600, abs=1e-6)
        """
    )
    result = pytester.runpytest("-v", "-W", "error")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_own PASSED*",
            "*::test_parametrized[[]asyncio[]] PASSED*",
            "*::TestVirtualOwn::test_virtual_with_clock PASSED*",
            "*::test_virtual_without_clock asks for virtual time, but its own "
            "anyio_backend fixture returned 'trio', which has no virtual clock; "
            "return anyconc.pytest_plugin.backend_spec(name, virtual_time=True) from it",
        ]
    )


@pytest.mark.parametrize(
    "order",
    [
        ("anyconc", "anyio.pytest_plugin"),
        ("anyio.pytest_plugin", "anyconc"),
    ],
    ids=["anyconc-first", "anyio-first"],
)
def test_our_backend_fixture_wins_over_anyios_in_any_load_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, order: tuple[str, str]
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS")  # (pytest-asyncio is not loaded)
    pytester.makepyfile(test_probe=BACKEND_PROBE)
    args = ("-p", order[0], "-p", order[1], OPT_IN)
    # (in a subprocess: "-p anyconc" in this process would warn that the anyconc
    # package, already imported here, cannot be assertion-rewritten)
    result = pytester.runpytest_subprocess("-W", "error", "-v", *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"test_probe.py::test_x[[]{backend}[]] PASSED*" for backend in BACKENDS]
    )


def test_module_scoped_async_fixture_still_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest

        pytestmark = pytest.mark.anyio
        SETUPS = []

        @pytest.fixture(scope="module")
        async def resource(anyio_backend):
            SETUPS.append((anyio_backend[0], anyio.current_time() == 0))
            yield object()

        async def test_one(resource):
            test_one.seen = resource

        async def test_two(resource):
            assert resource is test_one.seen  # shared within the module and backend

        @pytest.mark.virtual_time
        async def test_virtual(resource):
            await anyio.sleep(60)
            assert anyio.current_time() == pytest.approx(60, abs=1e-6)

        def test_setups():
            # once per backend in real time, then again inside each virtual runner
            assert SETUPS == [
                ("asyncio", False), ("trio", False), ("asyncio", True), ("trio", True)
            ]
        """
    )
    result = pytester.runpytest("-v", "-W", "error", "--anyconc-backends=asyncio,trio")
    result.stdout.fnmatch_lines(
        [
            "*::test_one[[]asyncio[]] PASSED*",
            "*::test_two[[]asyncio[]] PASSED*",
            "*::test_one[[]trio[]] PASSED*",
            "*::test_two[[]trio[]] PASSED*",
            "*::test_virtual[[]asyncio[]] PASSED*",
            "*::test_virtual[[]trio[]] PASSED*",
            "*::test_setups PASSED*",
        ]
    )
    result.assert_outcomes(passed=7)


# --- backend_spec ----------------------------------------------------------------


def test_backend_spec_values() -> None:
    assert backend_spec("asyncio") == ("asyncio", {})
    assert backend_spec("uvloop") == ("asyncio", {"use_uvloop": True})
    assert backend_spec("trio") == ("trio", {})
    assert backend_spec("asyncio") is not backend_spec("asyncio")

    import trio.testing

    first = backend_spec("trio", virtual_time=True)
    second = backend_spec("trio", virtual_time=True)
    assert first[0] == "trio"
    assert isinstance(first[1]["clock"], trio.testing.MockClock)
    assert first[1]["clock"].autojump_threshold == 0
    assert first[1]["clock"] is not second[1]["clock"]

    name, options = backend_spec("asyncio", virtual_time=True)
    assert name == "asyncio"
    assert list(options) == ["loop_factory"]


def test_backend_spec_virtual_asyncio_runs_virtually() -> None:
    async def main() -> float:
        await anyio.sleep(3600)
        return anyio.current_time()

    real_start = time.monotonic()
    name, options = backend_spec("asyncio", virtual_time=True)
    assert anyio.run(main, backend=name, backend_options=options) == pytest.approx(
        3600, abs=1e-6
    )
    name, options = backend_spec("trio", virtual_time=True)
    assert anyio.run(main, backend=name, backend_options=options) == pytest.approx(
        3600, abs=1e-6
    )
    assert time.monotonic() - real_start < 10  # two hours, not in real time (loose)


def test_backend_spec_bad_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"^backend_spec\(\) argument 'name' must be one of 'asyncio', 'uvloop', "
        r"'trio', got 'curio'$",
    ):
        backend_spec("curio")
    with pytest.raises(
        ValueError,
        match=r"^backend_spec\(\) argument 'virtual_time' must be False with 'uvloop': "
        r"no virtual clock supports uvloop \(use 'asyncio' or 'trio'\)$",
    ):
        backend_spec("uvloop", virtual_time=True)
    with pytest.raises(
        TypeError,
        match=r"^backend_spec\(\) argument 'name' must be one of 'asyncio', 'uvloop', "
        r"'trio', got int 3$",
    ):
        backend_spec(3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^backend_spec\(\) argument 'virtual_time' must be True or False, "
        r"got str 'yes'$",
    ):
        backend_spec("trio", virtual_time="yes")  # type: ignore[arg-type]


# --- the anyconc_clock fixture (in this suite) -----------------------------------


@pytest.mark.virtual_time
async def test_clock_now_and_advance(anyconc_clock: AnyconcClock) -> None:
    assert anyconc_clock.virtual
    assert anyconc_clock.now() == 0
    anyconc_clock.advance(10)
    assert anyconc_clock.now() == pytest.approx(10, abs=1e-6)
    assert anyio.current_time() == anyconc_clock.now()
    anyconc_clock.advance(0)
    assert anyconc_clock.now() == pytest.approx(10, abs=1e-6)
    await anyio.sleep(5)
    assert anyconc_clock.now() == pytest.approx(15, abs=1e-6)


@pytest.mark.virtual_time
async def test_clock_advance_wakes_sleepers(anyconc_clock: AnyconcClock) -> None:
    woke_at: list[float] = []
    done = anyio.Event()

    async def sleeper() -> None:
        await anyio.sleep(100)
        woke_at.append(anyio.current_time())
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.wait_all_tasks_blocked()
        anyconc_clock.advance(60)
        await anyio.lowlevel.checkpoint()
        assert woke_at == []
        # past the deadline: autojump alone would have woken it at exactly 100
        anyconc_clock.advance(90)
        await done.wait()

    assert woke_at == [pytest.approx(150, abs=1e-6)]
    assert anyconc_clock.now() == pytest.approx(150, abs=1e-6)


async def test_clock_under_real_time(anyconc_clock: AnyconcClock) -> None:
    assert not anyconc_clock.virtual
    before = anyio.current_time()
    assert before <= anyconc_clock.now() <= anyio.current_time()
    with pytest.raises(
        RuntimeError,
        match=r"^advance\(\) needs virtual time: mark the test with "
        r"@pytest.mark.virtual_time$",
    ):
        anyconc_clock.advance(1)


@pytest.mark.virtual_time
async def test_clock_advance_bad_arguments(anyconc_clock: AnyconcClock) -> None:
    for bad in (-1, -0.5, math.inf, math.nan):
        with pytest.raises(
            ValueError,
            match=r"^AnyconcClock\.advance\(\) argument 'seconds' must be a "
            r"non-negative finite number, got ",
        ):
            anyconc_clock.advance(bad)
    for wrong in ("1", None, True):
        with pytest.raises(
            TypeError,
            match=r"^AnyconcClock\.advance\(\) argument 'seconds' must be a number, "
            r"got ",
        ):
            anyconc_clock.advance(wrong)  # type: ignore[arg-type]
    assert anyconc_clock.now() == 0


def test_clock_outside_the_event_loop(anyconc_clock: AnyconcClock) -> None:
    with pytest.raises(
        RuntimeError,
        match=r"^anyconc_clock must be used from inside the test's event loop$",
    ):
        anyconc_clock.advance(1)
    with pytest.raises(RuntimeError, match=r"^anyconc_clock must be used from inside"):
        _ = anyconc_clock.virtual
