"""anyconc's pytest plugin among other plugins: never lie, coexist, opt-in (issue 15).

Every inner test suite here records, from inside the running test (or fixture), the
backend it really ran on -- the async library, uvloop's loop or asyncio's, and whether a
virtual clock was the running clock -- into ``ran.txt``; the tests assert on those
records, not only on outcome counts. The numbered cases are the issue's:

1. pytest-asyncio in auto mode took every anyio test over;
2. pytest-asyncio in strict mode with ``anyconc_auto_mark`` expanded asyncio tests;
3. a module-scoped async fixture pinned the first backend;
4. the plugin was on for everyone who installed anyconc.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

OPT_IN = "--anyconc-backends=asyncio,uvloop,trio"
WITH_PYTEST_ASYNCIO = "-o asyncio_default_fixture_loop_scope=function"
# AnyIO's plugin alone. (looptime's own plugin breaks every fixture without
# pytest-asyncio, with or without anyconc, unless the project opts in to anyconc's plugin,
# which then unregisters it: a suite that does not opt in needs it disabled.)
ANYIO_ALONE = "-p no:asyncio -p no:looptime_plugin"

RECORDER = '''
import asyncio
import pathlib

import sniffio

RAN = pathlib.Path(__file__).with_name("ran.txt")


def where():
    """asyncio, uvloop, trio, with "+virtual" under a virtual clock."""
    library = sniffio.current_async_library()
    if library == "trio":
        import trio.lowlevel

        clock = type(trio.lowlevel.current_clock()).__name__
        return "trio+virtual" if clock == "MockClock" else "trio"
    loop = asyncio.get_running_loop()
    if type(loop).__module__.startswith("uvloop"):
        return "uvloop"
    return "asyncio+virtual" if getattr(loop, "looptime_on", False) else "asyncio"


def record(name):
    with RAN.open("a") as file:
        file.write(f"{name} {where()}\\n")
'''

SUITE = """
import time

import anyio
import pytest

from recorder import record


@pytest.mark.anyio
async def test_anyio(request):
    record(request.node.name)


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_virtual(request):
    record(request.node.name)
    real_start = time.monotonic()
    await anyio.sleep(3600)
    assert anyio.current_time() == pytest.approx(3600, abs=1e-6)
    assert time.monotonic() - real_start < 10  # not an hour (loose: a loaded machine)
"""

ASYNCIO_TEST = """

@pytest.mark.asyncio
async def test_asyncio(request):
    record(request.node.name)
"""

MATRIX_RECORDS = [
    "test_anyio[asyncio] asyncio",
    "test_anyio[uvloop] uvloop",
    "test_anyio[trio] trio",
    "test_virtual[asyncio] asyncio+virtual",
    "test_virtual[trio] trio+virtual",
]


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    # (after pytester's own setup, which clears PYTEST_ADDOPTS)
    monkeypatch.setenv("PYTEST_ADDOPTS", WITH_PYTEST_ASYNCIO)
    # looptime's plugin asks for the main thread's current event loop on every test
    # call, which creates and leaks one on Python < 3.14 while none was ever set
    asyncio.set_event_loop(None)
    pytester.makepyfile(recorder=RECORDER)
    return pytester


def ran(pytester: pytest.Pytester) -> list[str]:
    """The records of the last run, in the order written (then forgotten)."""
    path = pytester.path / "ran.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


# --- 1. pytest-asyncio in auto mode ----------------------------------------------


def test_case1_auto_mode_hands_anyio_tests_back_to_anyio(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE + ASYNCIO_TEST)
    args = ("-W", "error", "-o", "asyncio_mode=auto", OPT_IN)
    result = pytester.runpytest("--collect-only", "-q", *args)
    assert collected_ids(result) == [
        "test_suite.py::test_anyio[asyncio]",
        "test_suite.py::test_anyio[uvloop]",
        "test_suite.py::test_anyio[trio]",
        "test_suite.py::test_virtual[asyncio]",
        "test_suite.py::test_virtual[uvloop]",
        "test_suite.py::test_virtual[trio]",
        "test_suite.py::test_asyncio",  # pytest-asyncio's: not expanded
    ]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=6, skipped=1)
    assert ran(pytester) == [*MATRIX_RECORDS, "test_asyncio asyncio"]


def test_case1_without_opt_in_only_virtual_time_tests_are_handed_back(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE + ASYNCIO_TEST)
    result = pytester.runpytest("-W", "error", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=5)
    records = ran(pytester)
    assert records[-3:] == [
        "test_virtual[asyncio] asyncio+virtual",
        "test_virtual[trio] trio+virtual",
        "test_asyncio asyncio",
    ]
    # test_anyio is left exactly as AnyIO and pytest-asyncio run it without anyconc
    pytester.runpytest(
        "-o", "asyncio_mode=auto", "-p", "no:anyconc", "-k", "test_anyio"
    ).assert_outcomes(passed=2)
    assert records[:2] == ran(pytester)


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_case1_anyio_and_asyncio_markers_together_fail_at_setup(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(
        test_both="""
        import pytest

        from recorder import record

        @pytest.mark.anyio
        @pytest.mark.asyncio
        async def test_both(request):
            record(request.node.name)

        @pytest.mark.asyncio
        @pytest.mark.virtual_time
        async def test_asyncio_in_virtual_time(request):
            record(request.node.name)
        """
    )
    result = pytester.runpytest("-o", f"asyncio_mode={mode}", OPT_IN)
    result.assert_outcomes(errors=4)
    assert ran(pytester) == []  # none of them ran
    both = (
        "test_both.py::test_both[[]{}[]] is marked both @pytest.mark.anyio and "
        "@pytest.mark.asyncio: pytest-asyncio would run it on its own asyncio loop "
        "whatever its id says; remove one of the two markers"
    )
    virtual = (
        "test_both.py::test_asyncio_in_virtual_time is marked "
        "@pytest.mark.virtual_time, but pytest-asyncio runs it (@pytest.mark.asyncio, "
        "or asyncio_mode = auto): virtual time needs AnyIO to run the test; mark it "
        "@pytest.mark.anyio instead"
    )
    # reported after collection, then as each test's setup error
    result.stdout.fnmatch_lines(
        ["anyconc: 4 test(s) cannot run as their ids say (they fail at setup):"]
    )
    result.stdout.fnmatch_lines_random(
        [
            *(f"  {both.format(backend)}" for backend in ("asyncio", "uvloop", "trio")),
            f"  {virtual}",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_both[[]asyncio[]]*", both.format("asyncio")]
    )


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_case1_a_pytest_asyncio_fixture_in_an_anyio_test_fails_at_setup(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(
        test_fixture="""
        import pytest
        import pytest_asyncio

        from recorder import record

        @pytest_asyncio.fixture
        async def on_asyncio():
            record("fixture")

        @pytest.mark.anyio
        async def test_anyio(on_asyncio, request):
            record(request.node.name)
        """
    )
    result = pytester.runpytest("-o", f"asyncio_mode={mode}", OPT_IN)
    result.assert_outcomes(errors=3)
    assert ran(pytester) == []
    result.stdout.fnmatch_lines(
        [
            "test_fixture.py::test_anyio[[]trio[]] uses 'on_asyncio', a "
            "@pytest_asyncio.fixture: pytest-asyncio sets it up on its own asyncio "
            "loop, not on the test's [[]trio[]] loop; make it a plain @pytest.fixture "
            "(AnyIO runs it on the test's backend)",
        ]
    )


# --- 2. pytest-asyncio in strict mode with anyconc_auto_mark ---------------------


def test_case2_strict_mode_and_auto_mark_leave_asyncio_tests_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nanyconc_auto_mark = true\nasyncio_mode = strict\n")
    pytester.makepyfile(
        test_suite=SUITE
        + ASYNCIO_TEST
        + """

async def test_unmarked(request):
    record(request.node.name)


@pytest.mark.asyncio
class TestAsyncioClass:
    async def test_in_class(self, request):
        record(request.node.name)
"""
    )
    result = pytester.runpytest("--collect-only", "-q")
    ids = collected_ids(result)
    assert "test_suite.py::test_asyncio" in ids
    assert "test_suite.py::TestAsyncioClass::test_in_class" in ids
    assert [name for name in ids if "unmarked" in name] == [
        f"test_suite.py::test_unmarked[{backend}]"
        for backend in ("asyncio", "uvloop", "trio")
    ]
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=10, skipped=1)
    assert sorted(ran(pytester)) == sorted(
        [
            *MATRIX_RECORDS,
            "test_unmarked[asyncio] asyncio",
            "test_unmarked[uvloop] uvloop",
            "test_unmarked[trio] trio",
            "test_asyncio asyncio",
            "test_in_class asyncio",
        ]
    )


def test_case2_auto_mark_with_asyncio_auto_mode_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nanyconc_auto_mark = true\nasyncio_mode = auto\n")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: anyconc_auto_mark = true and pytest-asyncio's asyncio_mode = auto "
        "both claim every async def test: set asyncio_mode = strict (and mark "
        "pytest-asyncio's tests with @pytest.mark.asyncio), or remove "
        "anyconc_auto_mark (and mark anyio tests with @pytest.mark.anyio)"
    ) in result.stderr.lines
    assert ran(pytester) == []


# --- 3. higher-scoped async fixtures ---------------------------------------------

MODULE_FIXTURE_SUITE = """
import anyio
import pytest

from recorder import record

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def resource():
    # does not request anyio_backend
    record("fixture")
    yield


async def test_one(resource, request):
    record(request.node.name)


async def test_two(resource, request):
    record(request.node.name)


@pytest.mark.virtual_time
async def test_virtual(resource, request):
    record(request.node.name)
    await anyio.sleep(60)
    assert anyio.current_time() == pytest.approx(60, abs=1e-6)
"""


@pytest.mark.parametrize(
    "plugins",
    [ANYIO_ALONE, "-o asyncio_mode=strict", "-o asyncio_mode=auto"],
    ids=["anyio-alone", "asyncio-strict", "asyncio-auto"],
)
def test_case3_module_scoped_async_fixture_follows_the_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugins: str
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", f"{WITH_PYTEST_ASYNCIO} {plugins}")
    if "no:asyncio" in plugins:
        monkeypatch.setenv("PYTEST_ADDOPTS", plugins)
    pytester.makepyfile(test_module=MODULE_FIXTURE_SUITE)
    result = pytester.runpytest("-W", "error", OPT_IN)
    result.assert_outcomes(passed=8, skipped=1)
    assert ran(pytester) == [
        # shared by the tests of one backend, set up again on the next one
        "fixture asyncio",
        "test_one[asyncio] asyncio",
        "test_two[asyncio] asyncio",
        "fixture uvloop",
        "test_one[uvloop] uvloop",
        "test_two[uvloop] uvloop",
        "fixture trio",
        "test_one[trio] trio",
        "test_two[trio] trio",
        # and inside each virtual-time test's own runner
        "fixture asyncio+virtual",
        "test_virtual[asyncio] asyncio+virtual",
        "fixture trio+virtual",
        "test_virtual[trio] trio+virtual",
    ]


def test_case3_without_the_matrix_virtual_time_tests_get_their_own_fixture(
    pytester: pytest.Pytester,
) -> None:
    # Without the opt-in, AnyIO's behaviour is kept for the real-time tests; a
    # virtual-time test (the plugin's) finishes the fixture that an earlier test left
    # open in AnyIO's runner and sets it up again in its own virtual loop
    pytester.makepyfile(test_module=MODULE_FIXTURE_SUITE)
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=6)
    assert ran(pytester) == [
        "fixture asyncio",
        "test_one[asyncio] asyncio",
        "test_two[asyncio] asyncio",
        # AnyIO's own behaviour, unchanged without the opt-in (the fixture pins the
        # runner): what test_case3_module_scoped_async_fixture_follows_the_backend fixes
        "test_one[trio] asyncio",
        "test_two[trio] asyncio",
        "fixture asyncio+virtual",
        "test_virtual[asyncio] asyncio+virtual",
        "fixture trio+virtual",
        "test_virtual[trio] trio+virtual",
    ]


# --- never lie: whoever runs the test, it checks where it runs -------------------


def test_a_test_run_elsewhere_fails_with_what_really_happened(
    pytester: pytest.Pytester,
) -> None:
    # Another plugin (here a conftest) runs every coroutine test itself on asyncio
    pytester.makeconftest(
        """
        import asyncio
        import inspect

        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_pyfunc_call(pyfuncitem):
            if inspect.iscoroutinefunction(pyfuncitem.obj):
                names = pyfuncitem._fixtureinfo.argnames
                kwargs = {name: pyfuncitem.funcargs[name] for name in names}
                asyncio.run(pyfuncitem.obj(**kwargs))
                return True
        """
    )
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(OPT_IN)
    result.assert_outcomes(passed=1, failed=4, skipped=1)
    assert ran(pytester) == ["test_anyio[asyncio] asyncio"]
    result.stdout.fnmatch_lines_random(
        [
            "test_suite.py::test_anyio[[]uvloop[]] is [[]uvloop[]] but ran on "
            "_UnixSelectorEventLoop, not uvloop's loop. Cause: *",
            "test_suite.py::test_anyio[[]trio[]] is [[]trio[]] but ran on asyncio, "
            "not trio. Cause: *",
            "test_suite.py::test_virtual[[]asyncio[]] is [[]asyncio[]] in virtual time "
            "but ran in real time, not under its virtual clock. Cause: *",
            "test_suite.py::test_virtual[[]trio[]] is [[]trio[]] in virtual time "
            "but ran on asyncio, not trio. Cause: *",
        ]
    )


def test_hypothesis_tests_are_checked_on_every_backend(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_hypo="""
        import anyio
        import pytest
        from hypothesis import given, settings, strategies

        from recorder import record

        @pytest.mark.anyio
        @settings(max_examples=3, database=None)
        @given(strategies.integers())
        async def test_given(request, number):
            record(request.node.name)

        @pytest.mark.anyio
        @pytest.mark.virtual_time
        @settings(max_examples=2, database=None)
        @given(strategies.integers())
        async def test_given_virtual(request, number):
            await anyio.sleep(10)
            record(request.node.name)
        """
    )
    result = pytester.runpytest("-W", "error", OPT_IN)
    result.assert_outcomes(passed=5, skipped=1)
    assert ran(pytester) == [
        *(["test_given[asyncio] asyncio"] * 3),
        *(["test_given[uvloop] uvloop"] * 3),
        *(["test_given[trio] trio"] * 3),
        *(["test_given_virtual[asyncio] asyncio+virtual"] * 2),
        *(["test_given_virtual[trio] trio+virtual"] * 2),
    ]


# --- 4. opt-in: installing anyconc changes nobody's suite -------------------------

PLAIN_ANYIO_SUITE = """
import pytest

from recorder import record


@pytest.fixture
async def value(anyio_backend):
    return anyio_backend


@pytest.mark.anyio
async def test_anyio(value, request):
    assert value in ("asyncio", "trio")  # AnyIO's own value
    record(request.node.name)


async def test_unmarked_not_collected_as_anyio():
    pass
"""


@pytest.mark.parametrize(
    "plugins",
    [WITH_PYTEST_ASYNCIO, ANYIO_ALONE],
    ids=["with-pytest-asyncio", "anyio-alone"],
)
def test_case4_without_opt_in_the_suite_is_unchanged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugins: str
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", plugins)
    pytester.makepyfile(test_plain=PLAIN_ANYIO_SUITE)
    outputs = []
    for args in ([], ["-p", "no:anyconc"]):
        result = pytester.runpytest("-v", *args)
        result.assert_outcomes(passed=2, failed=1)  # the unmarked one: nobody runs it
        outputs.append(
            (
                [line.split(" ")[0] for line in result.outlines if "::" in line],
                ran(pytester),
                [line for line in result.outlines if line.startswith("anyconc")],
            )
        )
    assert outputs[0] == outputs[1]
    assert outputs[0][1] == ["test_anyio[asyncio] asyncio", "test_anyio[trio] trio"]
    assert outputs[0][2] == []  # no report header either


@pytest.mark.parametrize("plugins", [WITH_PYTEST_ASYNCIO, ANYIO_ALONE])
def test_no_anyconc_leaves_an_opted_in_suite_working(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugins: str
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", plugins)
    pytester.makeini("[pytest]\nanyconc_backends = asyncio, uvloop, trio\n")
    pytester.makepyfile(test_plain=PLAIN_ANYIO_SUITE)
    result = pytester.runpytest("-p", "no:anyconc")
    result.assert_outcomes(passed=2, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["*Unknown config option: anyconc_backends*"])
    assert ran(pytester) == ["test_anyio[asyncio] asyncio", "test_anyio[trio] trio"]


# --- the plugin's import is light --------------------------------------------------


def test_the_entry_point_module_imports_only_pytest(pytester: pytest.Pytester) -> None:
    result = pytester.run(
        sys.executable,
        "-c",
        "import sys, _anyconc_pytest; "
        "print(sorted(m for m in ('anyconc', 'anyio', 'sniffio', 'trio', 'uvloop', "
        "'looptime') if m in sys.modules))",
    )
    assert result.ret == 0
    assert result.outlines == ["[]"]


def test_a_broken_anyconc_package_does_not_break_test_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        # loaded with -p, before the entry-point plugins
        break_anyconc="""
        import sys

        sys.modules["anyconc"] = None  # "import anyconc" raises ImportError
        """,
        test_suite=SUITE,
        test_broken="""
        import pytest

        def test_anyconc_cannot_be_imported():
            with pytest.raises(ImportError):
                import anyconc  # noqa: F401
        """,
    )
    result = pytester.runpytest_subprocess("-p", "break_anyconc", "-W", "error", OPT_IN)
    result.assert_outcomes(passed=6, skipped=1)
    assert ran(pytester) == MATRIX_RECORDS


# --- looptime absent ----------------------------------------------------------------

WITHOUT_LOOPTIME = """
import importlib.metadata
import sys

import pytest


class BlockLooptime:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "looptime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, BlockLooptime())
_distributions = importlib.metadata.distributions
importlib.metadata.distributions = lambda **kwargs: (
    dist
    for dist in _distributions(**kwargs)
    if (dist.metadata["Name"] or "").lower() != "looptime"
)
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("plugins", "opt_in"),
    [
        (WITH_PYTEST_ASYNCIO, True),
        ("-p no:asyncio", True),
        (WITH_PYTEST_ASYNCIO, False),
        ("-p no:asyncio", False),
    ],
    ids=["asyncio-matrix", "anyio-alone-matrix", "asyncio", "anyio-alone"],
)
def test_looptime_absent(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    plugins: str,
    opt_in: bool,
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", plugins)
    script = pytester.makepyfile(run_without_looptime=WITHOUT_LOOPTIME)
    pytester.makepyfile(test_suite=SUITE)
    args = [
        "-W",
        "error",
        "-rs",
        "-p",
        "no:cacheprovider",
        *([OPT_IN] if opt_in else []),
    ]
    result = pytester.run(sys.executable, str(script), *args)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: virtual time on asyncio needs the looptime package",
        ]
    )
    result.stdout.no_fnmatch_line("*looptime-*")  # not in the plugins line
    if opt_in:
        result.assert_outcomes(passed=4, skipped=2)
        assert ran(pytester) == [
            *MATRIX_RECORDS[:3],
            "test_virtual[trio] trio+virtual",
        ]
    else:
        result.assert_outcomes(passed=3, skipped=1)
        assert ran(pytester) == [
            "test_anyio[asyncio] asyncio",
            "test_anyio[trio] trio",
            "test_virtual[trio] trio+virtual",
        ]


# --- pytest-xdist -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_xdist(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(
        test_suite=SUITE + ASYNCIO_TEST,
        test_module=MODULE_FIXTURE_SUITE,
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-W", "error", "-o", f"asyncio_mode={mode}", OPT_IN
    )
    result.assert_outcomes(passed=14, skipped=2)
    records = ran(pytester)
    backends = ("asyncio", "uvloop", "trio")
    assert sorted(
        line for line in records if not line.startswith("fixture ")
    ) == sorted(
        [
            *MATRIX_RECORDS,
            "test_asyncio asyncio",
            *(f"test_{name}[{b}] {b}" for name in ("one", "two") for b in backends),
            "test_virtual[asyncio] asyncio+virtual",
            "test_virtual[trio] trio+virtual",
        ]
    )
    # wherever xdist sent them, the fixture ran on the backend of the tests that used it
    assert {line for line in records if line.startswith("fixture ")} <= {
        "fixture asyncio",
        "fixture uvloop",
        "fixture trio",
        "fixture asyncio+virtual",
        "fixture trio+virtual",
    }


def test_recorder_sees_what_it_should(pytester: pytest.Pytester) -> None:
    # The recorder itself: a plain AnyIO run, outside anyconc's plugin
    pytester.makepyfile(
        test_direct=textwrap.dedent(
            """
            import anyio
            import trio.testing

            from recorder import record

            def test_where():
                async def main():
                    record("main")
                anyio.run(main)
                anyio.run(main, backend_options={"use_uvloop": True})
                anyio.run(main, backend="trio")
                clock = trio.testing.MockClock(autojump_threshold=0)
                anyio.run(main, backend="trio", backend_options={"clock": clock})
            """
        )
    )
    pytester.runpytest("-p", "no:anyconc").assert_outcomes(passed=1)
    assert ran(pytester) == [
        "main asyncio",
        "main uvloop",
        "main trio",
        "main trio+virtual",
    ]
