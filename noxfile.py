"""Developer sessions: `nox -s tests`, `lint`, `typecheck`, `bench`, `demo`.

Each session installs spoc-core into its own virtualenv from this checkout (not
editable), so the tests exercise the package as users install it.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "virtualenv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (pass pytest options after --)."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core, its pytest plugin included."""
    session.install(".[uvloop]", "mypy>=1.10", "pytest>=7.4")  # pytest: spoc.testing is a pytest plugin
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, printed as ratios to raw floors measured in the same run."""
    session.install(".[uvloop]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """A server with thread and process workers that shuts down gracefully."""
    session.install(".[uvloop]")
    session.run("python", "examples/demo.py", *session.posargs)
