"""``spoc ctl`` against real ``spoc run`` servers in their own sessions: every command on thread, process and
replicated workers, two servers at once, stale sockets, the socket's modes and the settings that move it."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ctl, status
from spoc.testing import App

pytestmark = pytest.mark.timeout(120)


def test_status_shows_every_worker(shop: Callable[..., App]) -> None:
    app = shop()
    workers = status()
    assert list(workers) == ["mailer", "poller-1", "poller-2"]
    assert {w["state"] for w in workers.values()} == {"running"}
    assert workers["mailer"]["pid"] == app.pid and workers["mailer"]["rss"] is None
    assert workers["poller-1"]["pid"] != app.pid and workers["poller-1"]["rss"] > 0
    assert workers["poller-1"]["backend"] == "process" and workers["poller-1"]["worker"] == "poller"
    table = ctl("status").stdout.splitlines()
    assert table[0].split() == ["NAME", "BACKEND", "STATE", "PID", "UPTIME", "RESTARTS", "RSS", "CPU", "LAST", "EXIT"]
    assert [line.split()[:3] for line in table[1:]] == [
        ["mailer", "thread", "running"],
        ["poller-1", "process", "running"],
        ["poller-2", "process", "running"],
    ]
    assert list(status("-s", "shop")) == list(status("-s", str(app.pid))) == list(workers)
    only = json.loads(ctl("status", "--json", "poller").stdout)["workers"]
    assert [w["name"] for w in only] == ["poller-1", "poller-2"]  # a replicated worker's name: all its replicas


def test_the_socket_is_the_servers_own_and_only_its_uids(shop: Callable[..., App], runtime: Path) -> None:
    app = shop()
    folder = runtime / "spoc"
    path = folder / f"shop.{app.pid}.sock"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    listing = json.loads(ctl("ls", "--json").stdout)
    assert [(s["server"], s["pid"], s["socket"], s["workers"]) for s in listing] == [("shop", app.pid, str(path), 3)]
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert not path.exists(), "removed at exit"


@pytest.mark.parametrize("name", ["mailer", "poller-1", "poller"])
def test_restart_replaces_workers_gracefully(shop: Callable[..., App], name: str) -> None:
    app = shop()
    before = status()
    done = ctl("restart", name)
    after = status()
    names = [n for n in before if n == name or before[n]["worker"] == name]
    for n in names:
        assert after[n]["state"] == "running" and after[n]["since"] > before[n]["since"]
        assert after[n]["last_exit"] == "stopped (exit code 0)" and after[n]["restarts"] == 0
        assert n in done.stdout
        if before[n]["backend"] == "process":
            assert after[n]["pid"] != before[n]["pid"]
    untouched = [n for n in before if n not in names]
    assert all(after[n]["since"] == before[n]["since"] for n in untouched)
    app.expect(rf"worker '{names[-1]}' (was )?started", stream="stderr", count=2)


def test_stop_keeps_workers_stopped_until_start(shop: Callable[..., App]) -> None:
    app = shop()
    ctl("stop", "mailer", "poller")
    assert {n: w["state"] for n, w in status().items()} == dict.fromkeys(["mailer", "poller-1", "poller-2"], "stopped")
    assert app.proc.poll() is None, "the server runs on with every worker stopped"
    assert "stopped" in ctl("stop", "mailer").stdout  # stopping a stopped worker is done already
    ctl("start", "poller-2")
    assert {n: w["state"] for n, w in status().items()} == {
        "mailer": "stopped",
        "poller-1": "stopped",
        "poller-2": "running",
    }
    ctl("restart", "mailer")  # a stopped worker restarted is started
    assert status()["mailer"]["state"] == "running"


def test_scale_changes_the_count_and_waits_for_it(shop: Callable[..., App]) -> None:
    shop()
    ctl("scale", "poller", "4")
    assert [n for n, w in status().items() if w["state"] == "running"] == [
        "mailer",
        "poller-1",
        "poller-2",
        "poller-3",
        "poller-4",
    ]
    ctl("scale", "poller", "1")
    assert list(status()) == ["mailer", "poller-1"]
    refused = ctl("scale", "mailer-9", "2", check=False)
    assert refused.returncode == 1 and "has no worker named 'mailer-9' to scale" in refused.stderr


def test_reload_replaces_every_worker_one_after_another(shop: Callable[..., App]) -> None:
    app = shop()
    before = status()
    assert "reloaded" in ctl("reload").stdout
    after = status()
    assert all(after[n]["since"] > before[n]["since"] and after[n]["state"] == "running" for n in before)
    app.expect(r"server 'shop' was asked to reload: reloading 3 workers", stream="stderr")


def test_stacks_are_printed_to_the_caller(shop: Callable[..., App]) -> None:
    app = shop()
    out = ctl("stacks", "mailer", "poller-2").stdout
    assert "--- worker 'mailer' (running, pid" in out and "--- worker 'poller-2' (running, pid" in out
    assert out.count("in main") >= 2 and "self.wait(60)" in out
    app.expect(r"stack of worker 'poller-2'", stream="stderr")  # logged by the server too


def test_a_given_up_worker_is_shown_with_its_error_and_restarted(shop: Callable[..., App], runtime: Path) -> None:
    fixed = runtime / "fixed"
    app = shop(FLAKY_FIXED=str(fixed))
    app.expect(r"worker 'flaky' failed in main", stream="stderr")
    flaky = status()["flaky"]
    if flaky["state"] != "given up":  # with spoc-plugin-restart installed, it is retried until fixed
        assert flaky["state"] in ("starting", "running", "waiting to restart", "stopping")
    assert flaky["error"]["type"] == "RuntimeError" and "the database is not there" in flaky["last_exit"]
    assert "RuntimeError: the database is not there" in flaky["error"]["traceback"]
    still = ctl("restart", "flaky", check=False)
    assert still.returncode == 1 and "worker 'flaky': it ended (" in still.stderr
    assert "failed (exit code 1) in main: RuntimeError: the database is not there" in still.stderr
    fixed.touch()
    ctl("restart", "flaky")  # now, not when a supervisor's backoff ends
    assert status()["flaky"]["state"] == "running"


def test_a_failed_request_says_why_and_exits_1(shop: Callable[..., App]) -> None:
    shop()
    unknown = ctl("restart", "nope", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "spoc ctl restart: server 'shop' has no worker named 'nope' (its workers: mailer, poller-1, poller-2)"
    )
    for args in (["-s", "elsewhere", "status"], ["status", "-s", "elsewhere"]):
        wrong = ctl(*args, check=False)
        assert wrong.returncode == 1 and "no running server is named 'elsewhere' or has that pid" in wrong.stderr


def test_no_server_running_is_said(runtime: Path) -> None:
    done = ctl("status", check=False)
    assert done.returncode == 1 and "no spoc server of uid 0 is running" in done.stderr
    assert ctl("ls").stdout.strip() == "No spoc server of this uid is running."


def test_two_servers_need_a_choice(shop: Callable[..., App]) -> None:
    one, two = shop("one"), shop("two")
    both = ctl("status", check=False)
    assert both.returncode == 1 and "2 servers are running" in both.stderr and "choose one with -s" in both.stderr
    assert {s["server"]: s["pid"] for s in json.loads(ctl("ls", "--json").stdout)} == {"one": one.pid, "two": two.pid}
    ctl("-s", "two", "stop", "mailer")
    assert status("-s", "two")["mailer"]["state"] == "stopped"
    assert status("-s", str(one.pid))["mailer"]["state"] == "running"


def test_a_stale_socket_is_removed(shop: Callable[..., App], runtime: Path) -> None:
    folder = runtime / "spoc"
    folder.mkdir(mode=0o700)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = folder / f"crashed.{int(gone.stdout)}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # left behind as by a server that was SIGKILLed
    assert ctl("ls").stdout.strip() == "No spoc server of this uid is running."
    assert not stale.exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))
    shop()
    assert not stale.exists(), "the next server cleans up"


def test_the_socket_can_be_moved_or_turned_off(
    shop: Callable[..., App], runtime: Path, spoc_app: Callable[..., App]
) -> None:
    path = runtime / "here.sock"
    shop(SPOC_CONTROL_SOCKET=str(path))
    assert path.is_socket() and not (runtime / "spoc").exists()
    assert list(status("-s", str(path))) == ["mailer", "poller-1", "poller-2"]
    assert list(json.loads(ctl("status", "--json", env={"SPOC_CONTROL_SOCKET": str(path)}).stdout)["workers"])
    off = spoc_app(
        command=["spoc", "run", "shop:server"],
        cwd=Path(__file__).parent / "apps",
        env={"SPOC_CONTROL": "0", "SHOP_NAME": "off"},
    )
    off.expect(r"worker 'poller-2' started", stream="stderr")
    assert "answers spoc ctl" not in off.stderr
    assert not any((runtime / "spoc").glob("off.*"))


def test_spoc_help_lists_ctl() -> None:
    out = subprocess.run(["spoc", "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "ctl" in out and "operate running servers" in out


def test_an_unusable_folder_leaves_the_server_running_without_a_socket(
    spoc_app: Callable[..., App], runtime: Path
) -> None:
    (runtime / "spoc").write_text("not a folder")
    app = spoc_app(command=["spoc", "run", "shop:server"], cwd=Path(__file__).parent / "apps")
    app.expect(r"control: server 'shop' runs without a control socket: .*spoc is not a folder", stream="stderr")
    app.expect(r"worker 'poller-2' started", stream="stderr")


def test_a_socket_path_asked_for_that_cannot_be_used_fails_the_start(
    spoc_app: Callable[..., App], runtime: Path
) -> None:
    taken = runtime / "taken.sock"
    taken.write_text("a file")
    app = spoc_app(
        command=["spoc", "run", "shop:server"],
        cwd=Path(__file__).parent / "apps",
        env={"SPOC_CONTROL_SOCKET": str(taken)},
    )
    assert app.wait() == 1
    assert f"control: {taken} exists and is not a socket; remove it, or choose another path" in app.stderr


def test_no_wait_returns_once_asked(shop: Callable[..., App]) -> None:
    app = shop()
    before = status()["poller-1"]
    done = ctl("restart", "--no-wait", "poller-1")
    assert done.returncode == 0
    app.expect(r"starting worker 'poller-1' afresh \(recycle\)", stream="stderr")
    app.expect(r"worker 'poller-1' started", stream="stderr", count=2)
    assert status()["poller-1"]["pid"] != before["pid"]
