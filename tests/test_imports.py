"""
Import cost: ``import anyconc`` loads the families on first use of one of their names.

Each check runs in a fresh interpreter (a subprocess), since this test process has long
imported everything. The time target (at most 1.5x ``import anyio``) is measured by the
``import`` benchmark workload, not here: a timing assertion on a shared machine is noise.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import anyconc

INIT = Path(anyconc.__file__)
HEAVY = ("asyncio", "logging", "concurrent.futures", "pickle", "trio")
PROCESS_NAMES = {"AsyncExecutor", "run_in_executor", "run_in_process"}


def _loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which of HEAVY it left imported."""
    script = (
        f"import sys\n{code}\n"
        f"import json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.splitlines()[-1]))


def test_import_anyconc_loads_no_backend_logging_or_executors() -> None:
    assert _loaded_after("import anyconc") == []


def test_every_family_but_processes_loads_no_asyncio_logging_or_executors() -> None:
    names = sorted(set(anyconc.__all__) - PROCESS_NAMES)
    code = "import anyconc\n" + "".join(f"anyconc.{name}\n" for name in names)
    assert _loaded_after(code) == []


def test_a_trio_run_never_imports_asyncio() -> None:
    pytest.importorskip("trio")
    code = """
import anyio, anyconc

async def main():
    async with anyconc.TaskGroup() as group:
        task = group.create_task(anyio.sleep(0))
    assert task.done()
    assert await anyconc.gather(anyconc.run_in_threadpool(len, "ab")) == [2]
    async with anyconc.Lock():
        anyconc.create_background_task(anyio.sleep(0))
    queue = anyconc.Queue()
    await queue.put(1)
    assert await queue.get() == 1

anyio.run(main, backend="trio")
"""
    loaded = _loaded_after(code)
    assert "asyncio" not in loaded
    assert "concurrent.futures" not in loaded
    assert "trio" in loaded  # the run did happen on trio


def test_processes_are_loaded_on_first_use() -> None:
    loaded = _loaded_after("import anyconc\nanyconc.run_in_executor")
    assert "concurrent.futures" in loaded
    assert "asyncio" not in loaded


def test_an_asyncio_run_works_after_a_lazy_import() -> None:
    code = """
import anyio, anyconc

async def seven():
    await anyio.sleep(0)
    return 7

async def main():
    async with anyconc.TaskGroup() as group:
        task = group.create_task(seven())
    assert task.result() == 7
    anyconc.create_background_task(anyio.sleep(0))

anyio.run(main)
"""
    assert "asyncio" in _loaded_after(code)


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of the ``if TYPE_CHECKING:`` re-exports in ``__init__.py``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    assert alias.asname == alias.name  # an explicit re-export
                    found[alias.name] = "." * stmt.level + (stmt.module or "")
    return found


def test_the_lazy_table_the_type_checking_imports_and_all_agree() -> None:
    lazy = anyconc._LAZY
    assert sorted(lazy) == sorted(anyconc.__all__)
    assert len(anyconc.__all__) == len(set(anyconc.__all__))
    assert _type_checking_imports() == lazy


@pytest.mark.parametrize("name", sorted(anyconc.__all__))
def test_every_public_name_is_its_modules_object(name: str) -> None:
    value = getattr(anyconc, name)
    module = sys.modules[f"anyconc{anyconc._LAZY[name]}"]
    assert value is getattr(module, name)
    assert name in dir(anyconc)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'anyconc' has no attribute 'nope'"):
        anyconc.nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'nope' from 'anyconc'"):
        from anyconc import nope  # type: ignore[attr-defined]  # noqa: F401
