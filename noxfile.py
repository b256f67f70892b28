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
def arch(session: nox.Session) -> None:
    """One guest architecture in depth: the demo, every example and the arch
    matrix on it (``nox -s arch -- aarch64``; one TCG boot per example).  The
    ``tests`` session runs the matrix of every architecture, one boot each."""
    session.install("-e", ".[dev]")
    name = session.posargs[0] if session.posargs else "aarch64"
    env = {"SYSCALLS_ASYNC_EXAMPLES_ARCH": name, "SYSCALLS_ASYNC_TEST_ARCHS": name}
    session.run("pytest", "tests/examples", "tests/arch", *session.posargs[1:], env=env)


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
