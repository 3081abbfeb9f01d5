"""Restart policies, per worker and per server; what counts as a failure; a fresh instance each time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from restart_workers import (
    Aborts,
    EndsAtOnce,
    FlakyAsync,
    FlakyAsyncProcess,
    FlakyProcess,
    FlakyThread,
    SteadyProcess,
    StopsHimself,
    kill,
)
from spoc import Server
from spoc.testing import HookRecorder, ServerFactory
from spoc_restart import Backoff, Supervisor
from supervision import data_of, running

FAST = Backoff(initial=0.0, jitter=0.0)


@pytest.mark.parametrize("fail_in", ["setup", "main"])
@pytest.mark.parametrize("kind", ["thread", "fork", "spawn"])
def test_on_failure_restarts_a_fresh_instance(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, kind: str, fail_in: str
) -> None:
    first = FlakyThread("flaky", fail_in) if kind == "thread" else FlakyProcess("flaky", fail_in, start_method=kind)
    supervisor = Supervisor(backoff=FAST)
    server = spoc_server(first, plugins=[supervisor], allow_errors=True)
    server.start()
    again = running(spoc_hooks, "flaky", 1)
    assert data_of(again)["dirty"] is False  # nothing of the failed run carried over
    (fresh,) = server.workers
    assert fresh is not first and fresh.restarts == 1 and again["worker"] is fresh
    assert fresh.previous_exit is first.exit_info and first.exit_info.outcome == "failed"
    status = supervisor.status(server)["flaky"]
    assert status.restarts == 1 and status.last_error is not None
    assert status.last_error.message == f"flaky failed in {fail_in}, run 0"


@pytest.mark.parametrize("worker", [FlakyAsync("async"), FlakyAsyncProcess("async", start_method="forkserver")])
def test_an_async_worker_that_fails_is_restarted(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, worker: Any
) -> None:
    spoc_server(worker, plugins=[Supervisor(backoff=FAST)], allow_errors=True).start()
    assert running(spoc_hooks, "async", 1)["worker"].restarts == 1


def test_a_process_killed_by_sigkill_is_restarted(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(SteadyProcess("victim"), plugins=[Supervisor(backoff=FAST)], allow_errors=True)
    server.start()
    kill(data_of(running(spoc_hooks, "victim", 0))["pid"])
    again = data_of(running(spoc_hooks, "victim", 1))
    (ended,) = [c["exit_info"] for c in spoc_hooks.of("worker_exited", worker="victim")]
    assert (ended.outcome, ended.exitcode) == ("killed", -signal.SIGKILL)
    assert again["pid"] != ended.worker


@pytest.mark.parametrize(("policy", "restarted"), [("on-failure", True), ("always", True), ("never", False)])
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_stopped_by_sigterm_from_outside_is_restarted_under_its_policy(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, method: str, policy: str, restarted: bool
) -> None:
    """`kill <child pid>` is not a stop the server asked for: its teardown runs, and the supervisor decides."""
    victim = SteadyProcess("victim", start_method=method, plugin_options={"restart_policy": policy})
    server = spoc_server(victim, plugins=[Supervisor(backoff=FAST)], allow_errors=True)
    server.start()
    os.kill(data_of(running(spoc_hooks, "victim", 0))["pid"], signal.SIGTERM)
    ended = spoc_hooks.wait_for("worker_exited", worker="victim")["exit_info"]
    assert (ended.outcome, ended.exitcode, ended.stop_signal) == ("killed", -signal.SIGTERM, "SIGTERM")
    assert [c["worker"] for c in spoc_hooks.of("worker_stopping")] == [victim]
    if restarted:
        assert running(spoc_hooks, "victim", 1)["worker"].restarts == 1
    else:
        server.stop()
        assert server.join_all(10) == []
        assert len(spoc_hooks.of("worker_started", worker="victim")) == 1


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_killed_by_a_real_time_signal_is_named_and_restarted(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = spoc_server(SteadyProcess("victim", start_method=method), plugins=[Supervisor(backoff=FAST)])
    server.start()
    os.kill(data_of(running(spoc_hooks, "victim", 0))["pid"], signal.SIGRTMIN + 5)  # no name in signal.Signals
    assert running(spoc_hooks, "victim", 1)["worker"].restarts == 1
    ended = spoc_hooks.wait_for("worker_exited", worker="victim")["exit_info"]
    assert (ended.outcome, ended.signal) == ("killed", "SIGRTMIN+5")
    assert "worker 'victim' was killed by SIGRTMIN+5: restarting it" in caplog.text
    (restarting,) = [r for r in caplog.records if "restarting it" in r.getMessage()]
    assert restarting.spoc_worker == "victim"  # type: ignore[attr-defined]  # for a log stream's worker field


def test_a_process_that_aborts_is_restarted(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(Aborts("aborts"), plugins=[Supervisor(backoff=FAST)], allow_errors=True)
    server.start()
    running(spoc_hooks, "aborts", 1)
    (ended,) = [c["exit_info"] for c in spoc_hooks.of("worker_exited", worker="aborts")]
    assert (ended.outcome, ended.exitcode) == ("killed", -signal.SIGABRT)


def test_never_leaves_a_failed_worker_down(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    server = spoc_server(FlakyThread("flaky"), plugins=[Supervisor(policy="never")], allow_errors=True)
    outcome = server.run_forever(shutdown_timeout=10)
    assert outcome.reason == "workers_ended" and [e.outcome for e in outcome.exits] == ["failed"]
    assert len(spoc_hooks.of("worker_record", worker="flaky")) == 1


def test_a_clean_end_is_restarted_under_always_only(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    once = spoc_server(EndsAtOnce("once"), plugins=[Supervisor(backoff=FAST)], name="on-failure")
    assert once.run_forever(shutdown_timeout=10).reason == "workers_ended"
    assert len(spoc_hooks.of("worker_record", worker="once")) == 1

    again = EndsAtOnce("again", plugin_options={"restart_policy": "always"})
    server = spoc_server(again, plugins=[Supervisor(backoff=FAST)], name="always")
    server.start()
    assert running(spoc_hooks, "again", 3)["worker"].restarts == 3


def test_a_stop_is_never_taken_for_a_failure(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    always = Supervisor(policy="always", backoff=FAST)
    itself = StopsHimself("itself", start_method="fork")
    server = spoc_server(itself, SteadyProcess("steady"), plugins=[always])
    server.start()
    assert spoc_hooks.wait_for("worker_exited", worker="itself")["exit_info"].outcome == "stopped"
    running(spoc_hooks, "steady", 0)
    server.stop()
    assert server.join_all(10) == []
    assert sorted(c.worker for c in spoc_hooks.of("worker_started")) == ["itself", "steady"]  # nothing restarted
    assert {w.restarts for w in server.workers} == {0}


class Stubborn(FlakyThread):
    restart_policy = "never"


def test_the_worker_setting_beats_the_servers_and_plugin_options_beat_the_class(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    supervisor = Supervisor(policy="always", backoff=FAST)
    by_class = Stubborn("by-class")
    by_option = Stubborn("by-option", plugin_options={"restart_policy": "on-failure"})
    server = spoc_server(by_class, by_option, plugins=[supervisor], allow_errors=True)
    assert supervisor.settings(by_class).restart_policy == "never"
    assert supervisor.settings(by_option).restart_policy == "on-failure"
    server.start()
    running(spoc_hooks, "by-option", 1)
    spoc_hooks.wait_for("worker_exited", worker="by-class")
    assert server.workers[0] is by_class and by_class.exit_info.outcome == "failed"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"restart_policy": "sometimes"}, "restart_policy='sometimes' is not one of 'never', 'on-failure', 'always'"),
        ({"max_restarts": -1}, "max_restarts=-1 must be a whole number >= 0, or None for no limit"),
        ({"restart_within": 0}, "restart_within=0 must be a number of seconds > 0"),
        ({"watchdog_timeout": "5s"}, "watchdog_timeout='5s' must be a number of seconds > 0, or None to turn it off"),
    ],
)
def test_a_bad_worker_setting_stops_the_start_naming_it(
    spoc_server: ServerFactory, options: dict[str, Any], message: str
) -> None:
    bad = FlakyThread("bad", plugin_options=options)
    good = SteadyProcess("good")
    server = spoc_server(good, bad, plugins=[Supervisor()])
    with pytest.raises(ValueError, match="worker 'bad' \\(FlakyThread\\): " + message.replace("(", r"\(")) as raised:
        server.start()
    assert "spoc plugin 'restart'" in raised.value.__notes__[0]
    assert not good.started and not bad.started


def test_a_bad_setting_under_run_forever_shows_the_message_not_the_plugins_frames(tmp_path: Path) -> None:
    program = tmp_path / "bad_setting.py"
    program.write_text(
        textwrap.dedent(
            """
            from spoc import Server, ThreadWorker

            class Reporter(ThreadWorker):
                restart_policy = "sometimes"

                def main(self):
                    self.wait()

            server = Server()
            server.add_worker(Reporter(name="reporter"))
            server.run_forever()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60, start_new_session=True
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-2:] == [
        "ValueError: worker 'reporter' (Reporter): restart_policy='sometimes' is not one of "
        "'never', 'on-failure', 'always'",
        "(raised by spoc plugin 'restart' in its worker_check hook)",
    ]
    assert len(lines) <= 7, result.stderr  # the user's line and one of spoc's: no frames of the plugin's
    assert "spoc_restart" not in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "one_for_none"}, "Supervisor: strategy='one_for_none' is not one of"),
        ({"policy": "maybe"}, "restart_policy='maybe' is not one of"),
        ({"max_restarts": 2.5}, "Supervisor: max_restarts=2.5 must be a whole number"),
        ({"within": -1}, "Supervisor: within=-1 must be a number of seconds > 0"),
        ({"backoff": 3}, "Supervisor: backoff=3 must be a spoc_restart.Backoff"),
    ],
)
def test_a_bad_supervisor_option_is_refused_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Supervisor(**options)


def test_the_installed_plugin_supervises_and_a_given_one_replaces_it(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    installed = Server()
    (info,) = [p for p in installed.plugins if p.name == "restart"]
    assert (info.source, info.distribution) == ("entry point", "spoc-plugin-restart")
    server = spoc_server(FlakyThread("flaky"), allow_errors=True)  # no plugin given: the installed one
    server.start()
    assert running(spoc_hooks, "flaky", 1)["worker"].restarts == 1

    configured = Server(plugins=[Supervisor(policy="never")])
    assert [(p.name, p.source) for p in configured.plugins if p.name == "restart"] == [("restart", "explicit")]


def test_under_nox_the_installed_package_is_what_is_tested() -> None:
    import os

    import spoc_restart

    if os.environ.get("SPOC_TEST_INSTALLED_PLUGIN") != "spoc-plugin-restart":
        pytest.skip("run by `nox -s plugins`, which installs the plugin as pip does (not editable)")
    assert "site-packages" in spoc_restart.__file__
