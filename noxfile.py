"""
nox sessions for anyconc.

``nox -s tests`` runs the test suite on every supported Python (the interpreters
``python3.10`` … ``python3.13`` must be on ``PATH``); ``nox -s tests-3.12`` runs one.
Arguments after ``--`` go to pytest: ``nox -s tests-3.10 -- tests/test_race.py -x``.
``.ci/run`` runs the ``tests`` session; lint, type check, the package build and the
documentation build run there once, not per Python.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite, every async test on asyncio, asyncio + uvloop and trio."""
    # Installed as a user would (not editable): the suite tests the built package.
    session.install(".[test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python=PYTHONS[-1])
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict``."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs)
