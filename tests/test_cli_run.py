"""``spoc run``: the real command in a subprocess, in its own session: targets, options, signals, exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import APPS, App
from spoc import __version__

pytestmark = [pytest.mark.timeout(90), pytest.mark.signals]

APP_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH", "")]))}


def spoc_run(app_factory: type[App], *args: str, env: dict[str, str] | None = None, cwd: Path = APPS) -> App:
    """``python -m spoc run *args`` in `cwd`, in a session of its own."""
    return app_factory(command=[sys.executable, "-m", "spoc", "run", *args], env={**APP_ENV, **(env or {})}, cwd=cwd)


def spoc(*args: str, env: dict[str, str] | None = None, cwd: Path = APPS) -> subprocess.CompletedProcess[str]:
    """A short ``spoc`` command that ends by itself (usage errors, --help)."""
    return subprocess.run(
        [sys.executable, "-m", "spoc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **APP_ENV, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------- signals and exit codes


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_shuts_the_server_down_cleanly_with_exit_0_and_readable_logs(
    app_factory: type[App], signum: int
) -> None:
    app = spoc_run(app_factory, "cli_app:server")
    app.expect("ticker: in main")
    app.expect("cruncher: in main")
    app.signal(signum)
    assert app.wait(30) == 0, app.stderr
    name = signal.Signals(signum).name
    for line in (
        "INFO    spoc: server 'cli-app' starting 2 workers",
        "INFO    spoc: worker 'ticker' started",
        "INFO    spoc: worker 'cruncher' started",
        f"WARNING spoc: server 'cli-app' received {name}: stopping 2 workers",
        "INFO    spoc: worker 'ticker' ended (stopped)",
        "INFO    spoc: worker 'cruncher' ended (stopped)",
        f"INFO    spoc: server 'cli-app' stopped ({name}): 2 workers ended cleanly",
    ):
        assert line in app.stderr


def test_ctrl_c_to_the_whole_group_is_one_clean_shutdown(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "cli_app:server")
    app.expect("cruncher: in main")
    app.signal_group(signal.SIGINT)
    assert app.wait(30) == 0, app.stderr
    assert "received SIGINT again" not in app.stderr


def test_a_failed_worker_exits_1_and_the_closing_line_says_which_and_why(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "cli_app:failing")
    assert app.wait(30) == 1
    assert "worker 'doomed' failed in main: the upstream queue is gone" in app.stderr
    assert 'raise RuntimeError("the upstream queue is gone")' in app.stderr  # the child's traceback, in the parent
    assert (
        "ERROR   spoc: server 'cli_app:failing' stopped (workers_ended): worker 'doomed' failed: "
        "RuntimeError: the upstream queue is gone (in main); exit code 1"
    ) in app.stderr


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_forced_shutdown_exits_1_within_the_shutdown_timeout(app_factory: type[App], how: str) -> None:
    if how == "option":
        app = spoc_run(app_factory, "cli_app:stubborn", "--shutdown-timeout", "0.5")
    else:
        app = spoc_run(app_factory, "cli_app:stubborn", env={"SPOC_SHUTDOWN_TIMEOUT": "0.5"})
    app.expect("mule: in main")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 1
    assert "worker 'mule' (pid" in app.stderr and "did not stop within 0.5s" in app.stderr
    assert "shutdown had to force; exit code 1" in app.stderr


@pytest.mark.parametrize(
    ("target", "names"),
    [
        ("cli_app:one_worker", ["single"]),
        ("cli_app:workers", ["first", "second"]),
        ("cli_app:make_workers", ["made"]),
        ("cli_app:Finisher", ["Finisher"]),
    ],
    ids=["worker", "list", "factory", "worker-class"],
)
def test_every_kind_of_target_runs_and_ends_with_0_when_its_workers_end_cleanly(
    app_factory: type[App], target: str, names: list[str]
) -> None:
    app = spoc_run(app_factory, target)
    assert app.wait(30) == 0, app.stderr
    for name in names:
        assert f"{name}: done" in app.stdout
    ended = f"{len(names)} worker{'s' if len(names) > 1 else ''} ended cleanly"
    assert f"server '{target}' stopped (workers_ended): {ended}" in app.stderr


def test_a_file_target_and_the_console_script(app_factory: type[App], tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("spoc")
    if not script.is_file():
        pytest.skip(f"the spoc console script is not installed next to {sys.executable}")
    app = app_factory(command=[str(script), "run", str(APPS / "cli_app.py") + ":workers"], cwd=tmp_path)
    assert app.wait(30) == 0, app.stderr
    assert "first: done" in app.stdout and "second: done" in app.stdout


def test_a_spawned_process_worker_defined_in_a_file_target_is_found_in_its_child(
    app_factory: type[App], tmp_path: Path
) -> None:
    (tmp_path / "jobs.py").write_text(
        textwrap.dedent(
            """
            from spoc.workers import ProcessWorker

            class Job(ProcessWorker):
                start_method = "spawn"

                def main(self):
                    print("spawned job ran", flush=True)

            workers = [Job(name="job")]
            """
        )
    )
    app = spoc_run(app_factory, f"{tmp_path.name}/jobs.py:workers", cwd=tmp_path.parent, env={"PYTHONPATH": ""})
    assert app.wait(60) == 0, app.stderr
    assert "spawned job ran" in app.stdout


# ---------------------------------------------------------------------- usage errors: exit 2, and what was found


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:server", "no module named 'no_such_module'"),
        ("cli_app:nope", "cli_app has no attribute 'nope'; it has: server (Server), one_worker (Finisher), "),
        ("cli_app:server.nope", "cli_app:server has no attribute 'nope'"),
        ("cli_app:number", "'cli_app:number' is an int (42); spoc run needs a Server, a worker, a list of workers"),
        ("cli_app:empty", "'cli_app:empty' is an empty list: there is no worker to run"),
        (
            "cli_app:Server",  # a capitalisation typo: the Server class the module imported
            "'cli_app:Server' (the class Server) made a Server with no workers: there is nothing to run; add them "
            "with server.add_worker(); did you mean cli_app:server? (cli_app has: server (Server), ",
        ),
        ("cli_app:no_workers", "'cli_app:no_workers' is a Server with no workers: there is nothing to run"),
        ("cli_app:mixed", "'cli_app:mixed': item 1 of the list is a str ('not a worker'), not a worker"),
        ("cli_app:make_nothing", "'cli_app:make_nothing' returned a NoneType (None); spoc run needs"),
        ("cli_app:make_async", "returned a coroutine (<coroutine object make_async"),
        ("cli_app:NeedsConfig", "the worker class NeedsConfig cannot be built from its name alone"),
        ("cli_app", "'cli_app': name the object to run after a colon, e.g. spoc run cli_app:server"),
        ("missing.py:server", "no file 'missing.py'"),
        ("cli_app.txt/x:server", "is not a Python file"),
    ],
)
def test_a_bad_target_is_a_usage_error_that_says_what_was_found(target: str, message: str) -> None:
    result = spoc("run", target)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--shutdown-timeout", "soon"], {}, "--shutdown-timeout 'soon': give the number of seconds"),
        (["--shutdown-timeout", "0"], {}, "must be a positive number of seconds"),
        ([], {"SPOC_SHUTDOWN_TIMEOUT": "-3"}, "SPOC_SHUTDOWN_TIMEOUT '-3': the shutdown timeout must be a positive"),
        (["--log-level", "chatty"], {}, "--log-level: 'chatty' is not a log level: use one of DEBUG, INFO"),
        ([], {"SPOC_LOG_LEVEL": "loud"}, "SPOC_LOG_LEVEL: 'loud' is not a log level"),
        ([], {"SPOC_UVLOOP": "yes"}, "SPOC_UVLOOP='yes': use 1 (uvloop) or 0"),
        (["--plugin", "no_such_plugin"], {}, "--plugin 'no_such_plugin': no installed spoc plugin has that name"),
        (["--log-format", "yaml"], {}, "--log-format 'yaml': use one of json, console, logfmt"),
        (
            ["--log-format", "json"],
            {},
            "--log-format 'json': log formats are written by spoc-plugin-logging, which is not active for server",
        ),
        ([], {"SPOC_LOG_FORMAT": "logfmt"}, "SPOC_LOG_FORMAT 'logfmt': log formats are written by spoc-plugin-logging"),
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_option_or_environment_value_is_a_usage_error_naming_it(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = spoc("run", "cli_app:workers", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_an_exception_while_importing_the_application_exits_1_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("import json\nraise RuntimeError('config file missing')\n")
    (tmp_path / "needs_dep.py").write_text("import some_missing_dependency\n")
    broken = spoc("run", "broken_app:server", cwd=tmp_path)
    assert broken.returncode == 1
    assert "spoc run: loading 'broken_app:server' raised:" in broken.stderr
    assert "_target.py" not in broken.stderr  # the traceback starts in the application's code
    assert "RuntimeError: config file missing" in broken.stderr and "Traceback" in broken.stderr
    missing = spoc("run", "needs_dep:server", cwd=tmp_path)
    assert missing.returncode == 1  # the module is there; its dependency is not: not a usage error
    assert "No module named 'some_missing_dependency'" in missing.stderr


def test_a_setting_a_plugin_refuses_exits_2(tmp_path: Path) -> None:
    """An error in the configuration exits 2, which the documented unit does not restart on (exit 1 it would)."""
    (tmp_path / "refused.py").write_text(
        textwrap.dedent(
            """
            from spoc import hookimpl
            from spoc.workers import Server, ThreadWorker

            class Nope:
                name = "gatekeeper"

                @hookimpl
                def worker_check(self, worker):
                    raise ValueError(f"{worker.name} is not allowed here")

            class W(ThreadWorker):
                def main(self):
                    pass

            server = Server("refusing", plugins=[Nope()])
            server.add_worker(W(name="intruder"))
            """
        )
    )
    result = spoc("run", "refused:server", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "server 'refusing' could not start: intruder is not allowed here "
        "(refused by spoc plugin 'gatekeeper' in its worker_check hook)"
    ) in result.stderr
    assert "Traceback" not in result.stderr  # the message says it all: no frames of spoc's or the plugin's


@pytest.mark.parametrize(
    ("case", "program", "options", "message"),
    [
        (
            "unknown backend",
            "class W(ThreadWorker):\n    backend = 'nowhere'\n    def main(self): pass\n\nserver = Server('s')\n"
            "server.add_worker(W('w'))\n",
            (),
            "backend 'nowhere'",
        ),
        (
            "plugin that cannot load",
            "class W(ThreadWorker):\n    def main(self): pass\n\nserver = Server('s')\nserver.add_worker(W('w'))\n",
            ("--plugin", "broken_plugin"),
            "broken_plugin",
        ),
    ],
)
def test_every_error_found_before_a_worker_ran_exits_2(
    tmp_path: Path, case: str, program: str, options: tuple[str, ...], message: str
) -> None:
    """A service manager does not restart on exit 2 (docs/deployment.md's unit): the configuration is wrong."""
    (tmp_path / "app.py").write_text("from spoc.workers import Server, ThreadWorker\n\n" + program)
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('this plugin is broken')\n")
    result = spoc("run", *options, "app.py:server", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2, (case, result.stderr)
    assert "could not start" in result.stderr and message in result.stderr, result.stderr


def test_the_closing_line_says_how_many_times_each_worker_was_restarted(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        textwrap.dedent(
            """
            from spoc import hookimpl
            from spoc.workers import Server, ThreadWorker

            class RestartsFailures:
                name = "restarts-failures"

                @hookimpl
                def worker_exited(self, server, worker, exit_info):
                    if exit_info.outcome == "failed":
                        server.restart_worker(worker)

            class Flaky(ThreadWorker):
                def main(self):
                    if self.restarts < 3:
                        raise RuntimeError("not yet")

            server = Server("flaky", plugins=[RestartsFailures()])
            server.add_worker(Flaky("flaky"))
            """
        )
    )
    result = spoc("run", "flaky:server", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "server 'flaky' stopped (workers_ended): 1 worker ended cleanly; worker 'flaky' was restarted 3 times"
    ) in result.stderr


# ---------------------------------------------------------------------- --version, --help


def test_version_and_help() -> None:
    version = spoc("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"spoc {__version__}")
    top = spoc("--help")
    assert top.returncode == 0 and "run" in top.stdout and "plugins" in top.stdout
    run_help = spoc("run", "--help")
    assert run_help.returncode == 0
    for text in ("--shutdown-timeout", "SPOC_SHUTDOWN_TIMEOUT", "SPOC_LOG_LEVEL", "--no-plugins", "--plugin NAME"):
        assert text in run_help.stdout
    assert "--uvloop, --no-uvloop" in run_help.stdout and "SPOC_UVLOOP" in run_help.stdout
    bare = spoc()
    assert bare.returncode == 2 and "run" in bare.stdout


# ---------------------------------------------------------------------- logging


def test_log_level_hides_info_lines(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "cli_app:workers", "--log-level", "warning")
    assert app.wait(30) == 0
    assert "first: done" in app.stdout
    assert "INFO" not in app.stderr


def test_an_application_that_configures_logging_keeps_its_own_format(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "cli_app:workers", env={"CLI_APP_LOGGING": "1"})
    assert app.wait(30) == 0
    assert "APP INFO worker 'first' ended (clean)" in app.stderr
    assert " spoc: " not in app.stderr  # spoc run's own format is not added on top


# ---------------------------------------------------------------------- plugins


@pytest.fixture
def plugin_site(tmp_path: Path) -> dict[str, str]:
    """A distribution on PYTHONPATH with the entry point `greeter` in the group `spoc`, and a plain module plugin."""
    hook = textwrap.dedent(
        """
        from spoc import hookimpl

        @hookimpl
        def server_started(server):
            print(f"{__name__}: server {server.name} started", flush=True)
        """
    )
    (tmp_path / "spoc_greeter.py").write_text(hook)
    (tmp_path / "local_plugin.py").write_text(hook)
    info = tmp_path / "spoc_plugin_greeter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spoc-plugin-greeter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[spoc]\ngreeter = spoc_greeter\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), APP_ENV["PYTHONPATH"]])}


@pytest.mark.parametrize(
    ("args", "env", "loaded"),
    [
        ([], {}, ["spoc_greeter"]),
        (["--no-plugins"], {}, []),
        ([], {"SPOC_DISABLE_PLUGIN_AUTOLOAD": "1"}, []),
        (["--no-plugins", "--plugin", "greeter"], {}, ["spoc_greeter"]),
        (["--plugin", "local_plugin"], {}, ["spoc_greeter", "local_plugin"]),
        (["--no-plugins", "--plugin", "local_plugin"], {}, ["local_plugin"]),
        (["--no-plugins"], {"SPOC_PLUGINS": "local_plugin,greeter"}, ["spoc_greeter", "local_plugin"]),
    ],
    ids=["installed", "no-plugins", "autoload-env", "only-one", "also-a-module", "only-a-module", "plugins-env"],
)
def test_plugins_can_be_turned_off_or_named(
    app_factory: type[App], plugin_site: dict[str, str], args: list[str], env: dict[str, str], loaded: list[str]
) -> None:
    app = spoc_run(app_factory, "cli_app:workers", *args, env={**plugin_site, **env})
    assert app.wait(30) == 0, app.stderr
    greeted = sorted(re.findall(r"(spoc_greeter|local_plugin): server cli_app:workers started", app.stdout))
    assert greeted == sorted(loaded)


# ---------------------------------------------------------------------- uvloop


@pytest.mark.parametrize(
    ("args", "env", "loop"),
    [
        (["--uvloop"], {}, "uvloop.Loop"),
        ([], {"SPOC_UVLOOP": "1"}, "uvloop.Loop"),
        ([], {"CLI_APP_ASKS_FOR_UVLOOP": "1"}, "uvloop.Loop"),
        (["--no-uvloop"], {"CLI_APP_ASKS_FOR_UVLOOP": "1"}, "asyncio.unix_events._UnixSelectorEventLoop"),
        ([], {"SPOC_UVLOOP": "0", "CLI_APP_ASKS_FOR_UVLOOP": "1"}, "asyncio.unix_events._UnixSelectorEventLoop"),
    ],
    ids=["option", "environment", "application", "no-uvloop-wins", "environment-off-wins"],
)
def test_uvloop_on_or_off(app_factory: type[App], args: list[str], env: dict[str, str], loop: str) -> None:
    pytest.importorskip("uvloop")
    app = spoc_run(app_factory, "cli_app:loop_reporter", *args, env=env)
    assert app.wait(30) == 0, app.stderr
    assert f"looper: loop {loop}" in app.stdout


# ---------------------------------------------------------------------- PID 1 in a container


def unshare_works() -> str | None:
    """None when ``unshare --pid --fork --mount-proc`` can run here, else why not."""
    try:
        probe = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return "unshare (util-linux) is not installed"
    return None if probe.returncode == 0 else f"unshare --pid needs privileges here: {probe.stderr.strip()}"


def pid_one(app_factory: type[App], *args: str, env: dict[str, str] | None = None) -> tuple[App, int]:
    """``spoc run`` as PID 1 of a new PID namespace; returns the app (unshare) and spoc's pid as seen from here."""
    reason = unshare_works()
    if reason is not None:
        pytest.skip(reason)
    command = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "spoc", "run", *args]
    app = app_factory(command=command, env={**APP_ENV, **(env or {})}, cwd=APPS)
    return app, app.proc.pid


def inner_pid(unshare_pid: int) -> int:
    """The forked child of ``unshare --fork``: PID 1 inside the namespace."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_as_pid_1_a_signal_still_shuts_the_server_down_cleanly(app_factory: type[App], signum: int) -> None:
    app, unshare_pid = pid_one(app_factory, "cli_app:server")
    app.expect("ticker: in main")
    app.expect("cruncher: in main")
    init = inner_pid(unshare_pid)
    (nspid,) = [line for line in Path(f"/proc/{init}/status").read_text().splitlines() if line.startswith("NSpid:")]
    assert nspid.split()[1:] == [str(init), "1"]  # its pid here, and in its own namespace: 1
    os.kill(init, signum)
    assert app.wait(30) == 0, app.stderr
    assert "2 workers ended cleanly" in app.stderr


def test_as_pid_1_a_sigterm_while_the_application_imports_ends_it(app_factory: type[App]) -> None:
    app, unshare_pid = pid_one(app_factory, "cli_app:server", env={"CLI_APP_SLOW_IMPORT": "1"})
    app.expect("importing")
    os.kill(inner_pid(unshare_pid), signal.SIGTERM)  # with no handler, a PID 1 would ignore it
    assert app.wait(30) == 128 + signal.SIGTERM
    assert "spoc run: SIGTERM arrived while loading 'cli_app:server'; nothing was started" in app.stderr


def spoc_command() -> Path:
    """The ``spoc`` console script pip installed next to this interpreter."""
    script = Path(sys.executable).with_name("spoc")
    if not script.exists():
        pytest.skip(f"no spoc command next to {sys.executable}: install spoc-core with pip")
    return script


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_spoc_itself_imports_starts_nothing_and_says_so(app_factory: type[App], signum: int) -> None:
    """Ctrl+C in the first tenth of a second of the spoc command: no KeyboardInterrupt traceback from an import.

    ``-X importtime`` reports each import as it ends: the signal is sent once
    pluggy, which only spoc imports, has been imported, so while spoc loads.
    """
    command = [sys.executable, "-X", "importtime", str(spoc_command()), "run", "cli_app:server"]
    app = app_factory(command=command, env=APP_ENV, cwd=APPS)
    app.expect(r"import time:.*\| +pluggy$", stream="stderr")
    app.signal(signum)
    assert app.wait(30) == 128 + signum
    assert f"spoc run: {signal.Signals(signum).name} arrived while loading 'cli_app:server'" in app.stderr
    assert "Traceback" not in app.stderr and "ticker: in main" not in app.stdout


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1], ids=["SIGHUP", "SIGUSR1"])
def test_a_reload_or_stack_dump_while_spoc_itself_imports_is_ignored(app_factory: type[App], signum: int) -> None:
    """docs/cli.md: SIGHUP and SIGUSR1 are ignored until the server runs, from the command's first line (their
    default action would end it with 128 + the signal and no word)."""
    command = [sys.executable, "-X", "importtime", str(spoc_command()), "run", "cli_app:server"]
    app = app_factory(command=command, env=APP_ENV, cwd=APPS)
    app.expect(r"import time:.*\| +pluggy$", stream="stderr")
    app.signal(signum)
    app.expect("ticker: in main")
    app.expect("cruncher: in main")
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0, app.stderr[-2000:]
    assert "2 workers ended cleanly" in app.stderr


def test_a_bug_in_a_check_hook_keeps_its_traceback(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "buggy_check_app:server")
    assert app.wait(30) == 1
    assert "Traceback" in app.stderr and "AttributeError" in app.stderr and "no_such_attribute" in app.stderr
