"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


LINTED = ("src", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """What CI holds: ruff, mypy --strict, then the whole suite (unit + real guest).

    Arguments after ``--`` go to pytest and skip the static checks, so a
    developer can rerun one test quickly: ``nox -s tests -- tests/unit``.
    """
    session.install("-e", ".[dev]")
    if not session.posargs:
        _static_checks(session)
    session.run("pytest", *session.posargs)


def _static_checks(session: nox.Session) -> None:
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    session.run("mypy")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict alone (the tests session runs them first too)."""
    session.install("-e", ".[dev]")
    _static_checks(session)


@nox.session
def bench(session: nox.Session) -> None:
    """``syscalls-async bench``: every case of issue 7 in one boot (results go to
    BENCHMARKS.md by hand).  Arguments after ``--`` go to it:
    ``nox -s bench -- --json bench.json``.  The older platform benchmarks (boot,
    command round trip, portal alone, hook updates): ``python -m benchmarks``."""
    session.install("-e", ".")
    session.run("syscalls-async", "bench", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("syscalls-async", "demo")
