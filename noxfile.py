"""Developer sessions: `nox -s tests`, `plugins`, `together`, `lint`, `typecheck`, `docs`, `bench`, `demo`.

Each session installs spoc-core into its own virtualenv from this checkout (not
editable), so the tests exercise the package as users install it. Each plugin
under plugins/ is tested in a virtualenv of its own, installed from its
directory (not editable) next to spoc-core: installed, a plugin joins every
server of the process, so it must not be present when the core's tests run.
`together` then runs every plugin's tests with all of them installed at once.
"""

from __future__ import annotations

from pathlib import Path

import nox
import tomllib

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "virtualenv"

PLUGINS = sorted(p.name for p in Path("plugins").iterdir() if (p / "pyproject.toml").is_file())


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: the core's (pass pytest options after --), then each plugin's."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", *session.posargs)
    for plugin in PLUGINS:  # notify("plugins") would queue only the first of the parametrized sessions
        session.notify(f"plugins(plugin='{plugin}')")
    session.notify("together")


def test_companions(directory: Path) -> list[str]:
    """The sibling plugins a plugin's tests run with (``[tool.spoc-tests] plugins`` of its pyproject.toml)."""
    with (directory / "pyproject.toml").open("rb") as file:
        names = tomllib.load(file).get("tool", {}).get("spoc-tests", {}).get("plugins", [])
    return [str(Path("plugins", name).resolve()) for name in names]


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugins(session: nox.Session, plugin: str) -> None:
    """One plugin's tests, against the plugin as pip installs it (with the sibling plugins its tests need)."""
    directory = Path("plugins", plugin).resolve()
    session.install(".[test]", f"{directory}[test]", *test_companions(directory))
    session.chdir(directory)  # its src/ is then not on sys.path: the installed copy is what is tested
    session.run("python", "-m", "pytest", *session.posargs, env={"SPOC_TEST_INSTALLED_PLUGIN": plugin})


@nox.session
def together(session: nox.Session) -> None:
    """Every plugin's tests again with every plugin installed at once, as a user who installed them all has them."""
    directories = [Path("plugins", plugin).resolve() for plugin in PLUGINS]
    session.install(".[test]", *(f"{directory}[test]" for directory in directories))
    for plugin, directory in zip(PLUGINS, directories, strict=True):
        session.chdir(directory)
        session.run("python", "-m", "pytest", *session.posargs, env={"SPOC_TEST_INSTALLED_PLUGIN": plugin})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core (its pytest plugin included) and every plugin's package."""
    # pytest: spoc.testing is a pytest plugin; prometheus_client, redis: spoc-plugin-metrics' and
    # spoc-plugin-redis' dependencies (typed)
    session.install(".[uvloop,proctitle]", "mypy>=1.10", "pytest>=7.4", "prometheus_client>=0.17", "redis>=5")
    session.run("mypy")  # the core and every plugin's package (pyproject.toml: [tool.mypy] files)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (MkDocs), built with --strict: a broken link or reference fails it.

    `nox -s docs -- serve` serves it with live reload instead.
    """
    session.install(".[docs]")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env={"NO_MKDOCS_2_WARNING": "1"})
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, printed as ratios to raw floors measured in the same run."""
    # ray: spoc-plugin-ray's; cotyledon: the peer the replicas benchmark starts 32 workers against; dramatiq and
    # celery: the job queues spoc-plugin-redis is measured against (benchmarks/job_queues.py)
    peers = ["cotyledon==2.2.0", "dramatiq[redis]==2.2.1", "celery[redis]==5.7.0"]
    session.install(".[uvloop]", *(f"./plugins/{plugin}" for plugin in PLUGINS), "ray>=2.9", *peers)
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """A server with thread and process workers that shuts down gracefully."""
    session.install(".[uvloop]")
    session.run("python", "examples/demo.py", *session.posargs)
