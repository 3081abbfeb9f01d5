"""A distribution adds a ``spoc`` subcommand with an entry point in the group ``spoc.commands`` (issue 31, point 1).

Each test installs a real distribution (a ``.dist-info`` folder with its
entry points, on the PYTHONPATH of a real ``spoc`` process), as pip leaves one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

COMMAND_MODULE = """
from spoc.commands import Command


def add_arguments(parser):
    parser.add_argument("who")
    parser.add_argument("--code", type=int, default=0)


def run(args):
    print(f"hello, {args.who}")
    return args.code


def fail(args):
    raise RuntimeError("the command's own bug")


def add_nothing_right(parser):
    parser.add_argument("--x", type="not a type")


def waits(args):
    import time

    print("waiting", flush=True)
    time.sleep(30)


def loaded(args):
    import sys

    print(sorted(m for m in ("spoc._server", "pluggy", "asyncio") if m in sys.modules))


command = Command(help="say hello to WHO", run=run, add_arguments=add_arguments)
waiting = Command(help="wait", run=waits)
light = Command(help="say what is loaded", run=loaded)
failing = Command(help="fail", run=fail)
bad_arguments = Command(help="bad arguments", run=run, add_arguments=add_nothing_right)
not_a_command = print
"""


def install(site: Path, entry_points: str) -> None:
    """A distribution ``spoc-hello`` 1.2 with `entry_points` (the [spoc.commands] section's lines)."""
    site.mkdir(exist_ok=True)
    (site / "spoc_hello_command.py").write_text(COMMAND_MODULE)
    info = site / "spoc_hello-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spoc-hello\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[spoc.commands]\n{entry_points}\n")


def spoc(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "spoc", *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_an_installed_command_is_listed_and_runs(tmp_path: Path) -> None:
    install(tmp_path, "hello = spoc_hello_command:command")
    listed = spoc(tmp_path, "--help")
    assert listed.returncode == 0 and "hello" in listed.stdout and "say hello to WHO" in listed.stdout
    assert "run" in listed.stdout and "plugins" in listed.stdout  # spoc's own are still there
    ran = spoc(tmp_path, "hello", "operator", "--code", "3")
    assert (ran.returncode, ran.stdout, ran.stderr) == (3, "hello, operator\n", "")
    usage = spoc(tmp_path, "hello")
    assert usage.returncode == 2 and "the following arguments are required: who" in usage.stderr
    assert "say hello to WHO" in spoc(tmp_path, "hello", "--help").stdout


def test_a_command_that_raises_is_reported_naming_its_distribution(tmp_path: Path) -> None:
    install(tmp_path, "failing = spoc_hello_command:failing")
    ran = spoc(tmp_path, "failing")
    assert ran.returncode == 1
    assert ran.stderr.startswith("spoc failing: spoc-hello 1.2's command failed:\nTraceback")
    assert "RuntimeError: the command's own bug" in ran.stderr


@pytest.mark.parametrize(
    ("entry_point", "why"),
    [
        (
            "missing = spoc_hello_no_such_module:command",
            "ModuleNotFoundError: No module named 'spoc_hello_no_such_module'",
        ),
        (
            "wrong = spoc_hello_command:not_a_command",
            "TypeError: it is a builtin_function_or_method, not a spoc.commands.Command",
        ),
        ("awry = spoc_hello_command:bad_arguments", "ValueError: 'not a type' is not callable"),
    ],
)
def test_a_command_that_cannot_load_is_listed_and_says_why(tmp_path: Path, entry_point: str, why: str) -> None:
    install(tmp_path, f"{entry_point}\nhello = spoc_hello_command:command")
    name, value = (part.strip() for part in entry_point.split("="))
    listed = spoc(tmp_path, "--help")
    assert listed.returncode == 0 and name in listed.stdout and "cannot be loaded" in listed.stdout
    ran = spoc(tmp_path, name, "any", "--arguments")
    assert ran.returncode == 1
    assert ran.stderr == f"spoc {name}: spoc-hello 1.2's command ({value}) cannot be loaded: {why}\n"
    assert spoc(tmp_path, "hello", "still").stdout == "hello, still\n"  # the others are unaffected


def test_a_command_named_like_spocs_own_is_not_added_and_says_so(tmp_path: Path) -> None:
    install(tmp_path, "plugins = spoc_hello_command:command")
    ran = spoc(tmp_path, "plugins", "--json")
    assert ran.returncode == 0 and ran.stdout.startswith("[")  # spoc's own
    assert ran.stderr == (
        "spoc: spoc-hello 1.2 adds a command 'plugins', which is not added: spoc has a command of that name\n"
    )


def test_a_command_runs_without_loading_the_server(tmp_path: Path) -> None:
    """``spoc ctl status`` answers within 100 ms: a plugin's command pays for no import of the server's."""
    install(tmp_path, "light = spoc_hello_command:light")
    ran = spoc(tmp_path, "light")
    assert (ran.returncode, ran.stdout) == (0, "[]\n")


def test_ctrl_c_interrupts_a_command_run_by_the_spoc_entry_point(tmp_path: Path) -> None:
    """The entry point notes SIGINT while spoc loads (for ``spoc run``); a command gets Ctrl+C back."""
    install(tmp_path, "waiting = spoc_hello_command:waiting")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    entry = "import sys, _spoc_command; sys.argv[1:] = ['waiting']; sys.exit(_spoc_command.main())"
    with subprocess.Popen(
        [sys.executable, "-c", entry], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "waiting\n"
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl+C does
            assert proc.wait(10) == 130
        finally:
            proc.kill()
