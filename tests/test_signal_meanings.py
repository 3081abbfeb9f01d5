"""Every signal an operator or an orchestrator sends means what docs/server.md says, to the server and to a child.

Each program runs in its own session (harness.App) and gets real signals:
to the server's pid, to its group, to a worker's child, a moment apart, twice.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from harness import APPS, App, children, fork_server, readies, ready_pids
from spoc._signals import REPEAT_WINDOW

pytestmark = [pytest.mark.signals, pytest.mark.timeout(90)]

OWN_HANDLED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def spoc_run(app_factory: type[App], scenario: str, method: str = "fork", *options: str) -> App:
    """`spoc run` of the fault app's `scenario`, as an operator starts a service."""
    command = [sys.executable, "-m", "spoc", "run", f"{APPS / 'faults.py'}:from_environment", *options]
    return app_factory(command=command, env={"SCENARIO": scenario, "METHOD": method})


# ---------------------------------------------------------------------- a worker's own handlers (point 1)


@pytest.mark.parametrize("later", [False, True], ids=["at-start", "fork-server"])
def test_a_workers_own_handlers_just_run_and_the_worker_goes_on(
    app_factory: type[App], spoc_start_method: str, later: bool
) -> None:
    """SIGHUP, SIGUSR1 and SIGUSR2 sent to a child run the handlers its setup() installed, and nothing else.

    Added after start(), the worker's child comes from the fork server, whatever its start method.
    """
    options = ["--add-later", "own"] if later else []
    app = app_factory("own_handlers", "--method", spoc_start_method, *options)
    pids = ready_pids(app, 2)
    for signum in OWN_HANDLED:
        os.kill(pids["own"], signum)
        app.expect(f"HANDLED own {signum.name}")
    os.kill(pids["own"], signal.SIGHUP)  # twice: the first changed nothing either
    app.expect("HANDLED own SIGHUP", count=2)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert app.stdout.count("TEARDOWN own") == 1
    assert "RESULT reason=signal signal=SIGTERM forced=False ok=True" in app.stdout
    assert "worker 'own' ended (stopped)" in app.stderr  # only at the shutdown
    assert app.stderr.count("ended (") == 2
    assert "SpocWarning" not in app.stderr  # added later, it came from the fork server: not spawned instead


def test_a_workers_own_handler_under_spoc_run(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "own_handlers")
    pids = ready_pids(app, 2)
    os.kill(pids["own"], signal.SIGHUP)
    app.expect("HANDLED own SIGHUP")
    os.kill(pids["own"], signal.SIGUSR1)
    app.expect("HANDLED own SIGUSR1")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert "ended (stopped)" in app.stderr and "ended cleanly" in app.stderr


# ---------------------------------------------------------------------- one stop from several senders (point 2)


@pytest.mark.parametrize(
    ("signum", "gap_ms"),
    [
        (signal.SIGTERM, 1),
        (signal.SIGTERM, 5),
        (signal.SIGTERM, 50),
        (signal.SIGINT, 1),
        (signal.SIGINT, 5),  # 0.1 s (SIGINT_REPEAT_WINDOW) is a person's second Ctrl+C: that forces
    ],
)
def test_pid_then_group_a_moment_apart_is_one_request(
    app_factory: type[App], spoc_start_method: str, gap_ms: int, signum: signal.Signals
) -> None:
    """As `timeout`, systemd and supervisors deliver a stop: to the pid, then to the group."""
    app = app_factory("basic", "--method", spoc_start_method)
    ready_pids(app, 3)
    app.signal(signum)
    time.sleep(gap_ms / 1000)
    app.signal_group(signum)
    assert app.wait() == 0
    assert f"RESULT reason=signal signal={signum.name} forced=False ok=True" in app.stdout
    for name in ("thread-1", "process-1", "async-1"):
        assert f"TEARDOWN {name}" in app.stdout
    assert "forcing shutdown" not in app.stderr


def test_a_group_sigterm_the_child_ends_by_before_the_server_hears_it_is_one_stop(
    app_factory: type[App], spoc_start_method: str
) -> None:
    """The child ends by the group's SIGTERM after its teardown while the server's own copy still waits (its main
    thread slow, as on a loaded machine): the worker is still stopped by the service's stop, not killed."""
    app = app_factory(command=[sys.executable, str(APPS / "slow_main_thread.py"), spoc_start_method], cwd=str(APPS))
    app.expect("READY")
    app.signal_group(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "TEARDOWN quick" in app.stdout
    assert "RESULT ok=True reason=signal signal=SIGTERM" in app.stdout
    assert "OUTCOME quick=stopped" in app.stdout
    assert "from outside its server" not in app.stderr


@pytest.mark.parametrize("gap_ms", [3, 100])
def test_the_group_signalled_twice_a_moment_apart_is_one_stop_in_each_child(
    app_factory: type[App], spoc_start_method: str, gap_ms: int
) -> None:
    """``kill -TERM -PGID`` on ``setsid timeout 60 spoc run ...``: timeout sends the group the SIGTERM again, so
    each child gets two a moment apart; the second must not cut its teardown off (issue 35, point 2)."""
    app = app_factory("busy_teardown", "--method", spoc_start_method)
    ready_pids(app, 1)
    app.signal_group(signal.SIGTERM)
    time.sleep(gap_ms / 1000)  # the sender's pace, as timeout forwards it
    app.signal_group(signal.SIGTERM)
    assert app.wait() == 0
    assert "TEARDOWN-DONE busy" in app.stdout
    assert "worker 'busy' ended (stopped)" in app.stderr


def test_a_child_cut_off_by_a_later_sigterm_is_killed_not_stopped(
    app_factory: type[App], spoc_start_method: str
) -> None:
    """Stopped from outside, then by its server, then a SIGTERM past the repeat window ends it mid-teardown: that is
    no clean stop, and the exit code says so (issue 35, point 2)."""
    app = app_factory("busy_teardown", "--method", spoc_start_method, env={"TEARDOWN_SECONDS": "60"})
    child = ready_pids(app, 1)["busy"]
    os.kill(child, signal.SIGTERM)
    app.expect("TEARDOWN busy")
    app.signal(signal.SIGTERM)
    app.expect(r"received SIGTERM: stopping", stream="stderr")
    time.sleep(REPEAT_WINDOW)  # a deliberate second SIGTERM, not the same one sent twice
    os.kill(child, signal.SIGTERM)
    assert app.wait() == 1
    assert "TEARDOWN-DONE busy" not in app.stdout
    assert "worker 'busy' was killed by SIGTERM while it was stopping: its teardown did not run" in app.stderr
    assert "ended (stopped)" not in app.stderr and "ok=False" in app.stdout


@pytest.mark.parametrize("runner", ["spoc run", "run_forever"])
@pytest.mark.parametrize("how", ["group", "pid"])
def test_a_second_ctrl_c_forces_however_soon_it_comes(app_factory: type[App], how: str, runner: str) -> None:
    """A person presses Ctrl+C again 0.2 s after the first (issue 33): the shutdown is forced, not waited out."""
    if runner == "spoc run":
        app = spoc_run(app_factory, "busy_teardown", "fork", "--shutdown-timeout", "60")
    else:
        app = app_factory("busy_teardown", "--method", "fork", env={"TEARDOWN_SECONDS": "60"})
    app.expect(r"^READY busy")
    send = app.signal_group if how == "group" else app.signal  # the terminal signals the group
    send(signal.SIGINT)
    app.expect(r"received SIGINT: stopping 1 worker \(send it again to force\)", stream="stderr")
    app.expect(r"^TEARDOWN busy")
    time.sleep(0.2)  # a person's second press
    send(signal.SIGINT)
    assert app.wait(30) == 1
    assert "received SIGINT again: forcing shutdown" in app.stderr
    assert "the same stop request" not in app.stderr
    assert "TEARDOWN-DONE busy" not in app.stdout


def test_sigint_to_the_pid_then_the_group_3_ms_apart_is_one_stop(app_factory: type[App]) -> None:
    """A program (timeout -s INT) sends SIGINT to the pid and then to the group: that stays one request."""
    app = spoc_run(app_factory, "busy_teardown", "fork", "--shutdown-timeout", "60")
    app.expect(r"^READY busy")
    app.signal(signal.SIGINT)
    time.sleep(0.003)
    app.signal_group(signal.SIGINT)
    assert app.wait(30) == 0
    assert re.search(r"received SIGINT again \d+ ms after the first: the same stop request", app.stderr)
    assert "forcing shutdown" not in app.stderr and "TEARDOWN-DONE busy" in app.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_late_workers_stack_is_shown_after_a_group_sigterm(app_factory: type[App], method: str) -> None:
    """The group's SIGTERM asked the child to stop; past the deadline the server asks for its stack, then sends
    the SIGTERM that ends it: the stack comes first, every time (issue 33)."""
    for attempt in range(20 if method == "fork" else 3):
        app = spoc_run(app_factory, "sleeps_in_main", method, "--shutdown-timeout", "1.2")
        ready_pids(app, 1)
        app.signal_group(signal.SIGTERM)
        assert app.wait(30) == 1
        assert "stack of worker 'sleeper'" in app.stderr, f"attempt {attempt}:\n{app.stderr}"
        assert "in stuck_in_this_function" in app.stderr
        stack, ended = app.stderr.index("stack of worker 'sleeper'"), app.stderr.index("worker 'sleeper' was ")
        assert stack < ended, app.stderr


def test_timeout_command_stops_spoc_run_cleanly(app_factory: type[App]) -> None:
    """`timeout` sends SIGTERM to spoc run's pid and then to its own group, spoc's children included."""
    command = ["timeout", "-s", "TERM", "3", sys.executable, "-m", "spoc", "run", "examples/service.py:server"]
    app = app_factory(command=command)
    assert app.wait(30) == 124  # timeout's own code: it had to stop the command
    assert "forcing shutdown" not in app.stderr
    assert "had to force" not in app.stderr
    assert re.search(r"server '\S+' stopped \(SIGTERM\): \d+ workers? ended cleanly", app.stderr), app.stderr


def test_a_second_request_after_every_worker_ended_forces_nothing(app_factory: type[App]) -> None:
    app = app_factory("basic", env={"WAIT_FOR_SECOND_SIGNAL": "1"})
    ready_pids(app, 3)
    app.signal_group(signal.SIGINT)
    app.expect("ALL-ENDED")
    time.sleep(REPEAT_WINDOW)  # a deliberate second Ctrl+C, once every worker has ended
    app.signal_group(signal.SIGINT)
    assert app.wait() == 0
    assert "RESULT reason=signal signal=SIGINT forced=False ok=True" in app.stdout
    assert "signals=SIGINT,SIGINT" in app.stdout


# ---------------------------------------------------------------------- SIGHUP reloads (point 3)


def test_sighup_replaces_every_worker_and_the_server_keeps_running(
    app_factory: type[App], spoc_start_method: str
) -> None:
    app = app_factory("basic", "--method", spoc_start_method)
    first = ready_pids(app, 3)
    app.signal(signal.SIGHUP)
    app.expect("RELOADING thread-1,process-1,async-1")
    again = {m.group(1): int(m.group(2)) for m in app.expect(r"READY (\S+) pid=(\d+)", count=6)[3:]}
    assert sorted(again) == ["async-1", "process-1", "thread-1"]
    assert again["process-1"] != first["process-1"]
    for name in again:
        assert app.stdout.count(f"TEARDOWN {name}") == 1  # the old instance's, before its replacement started
    app.expect("reload done", stream="stderr")
    assert app.stderr.count("received SIGHUP: reloading 3 workers") == 1
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert "RESULT reason=signal signal=SIGTERM forced=False ok=True" in app.stdout
    for name in again:
        assert app.stdout.count(f"TEARDOWN {name}") == 2


def test_sighup_under_spoc_run_reloads_and_sigterm_then_exits_0(app_factory: type[App]) -> None:
    app = spoc_run(app_factory, "processes")
    first = ready_pids(app, 3)
    app.signal(signal.SIGHUP)
    again = {m.group(1): int(m.group(2)) for m in app.expect(r"READY (\S+) pid=(\d+)", count=6)[3:]}
    assert not set(again.values()) & set(first.values())
    app.expect("reload done", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert "Traceback" not in app.stderr


# ---------------------------------------------------------------------- SIGUSR1 dumps stacks (point 4)


STACK_HEADER = re.compile(r"^LOG WARNING stack of worker '(\S+)' \((\w+), pid (\d+)\):$")


def stack_blocks(stderr: str) -> dict[str, list[str]]:
    """Each worker's dump: its header and the lines up to the next log record."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stderr.splitlines():
        header = STACK_HEADER.match(line)
        if header:
            current = blocks[header.group(1)] = [line]
        elif line.startswith("LOG "):
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_sigusr1_logs_every_workers_stack_whole_and_named(app_factory: type[App], spoc_start_method: str) -> None:
    app = app_factory("two_processes", "--method", spoc_start_method)
    pids = ready_pids(app, 4)
    app.expect("IN-MAIN", count=4)  # main() is on every stack (READY comes just before it is called)
    app.signal(signal.SIGUSR1)
    app.expect(r"stack of worker '(\S+)'", stream="stderr", count=4)
    app.signal(signal.SIGTERM)  # nothing stopped meanwhile
    assert app.wait() == 0
    assert "RESULT reason=signal signal=SIGTERM forced=False ok=True started=4" in app.stdout
    # Read once the program has exited: the test reads stderr line by line, and the last block's lines may
    # still be on their way when its header is in (each block is written whole, and ends at the next record).
    blocks = stack_blocks(app.stderr)
    assert sorted(blocks) == ["async-1", "process-1", "process-2", "thread-1"]
    for name, lines in blocks.items():
        assert f"pid {pids[name]})" in lines[0]
        text = "\n".join(lines[1:])
        assert "in main" in text, text  # the body's own frame
        assert "stack of worker" not in text  # never another worker's lines inside
    assert "Task " in "\n".join(blocks["async-1"])


# ---------------------------------------------------------------------- a child stopped from outside (point 5)


def test_a_child_stopped_from_outside_is_reported_not_taken_for_a_requested_stop(
    app_factory: type[App], spoc_start_method: str
) -> None:
    app = app_factory("processes", "--method", spoc_start_method)
    pids = ready_pids(app, 3)
    os.kill(pids["process-2"], signal.SIGTERM)  # an operator's `kill <pid>`
    app.expect(r"worker 'process-2' was stopped by SIGTERM from outside its server", stream="stderr")
    # Gracefully: its teardown ran. Waited for, not read at once: the child wrote it before it exited, but the
    # test's stdout reader may take it in after the stderr reader took in the server's line about that exit.
    app.expect(r"TEARDOWN process-2", timeout=5)
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert "failed=process-2" in app.stdout


def test_a_child_stopped_from_outside_is_restarted_by_a_supervisor(
    app_factory: type[App], spoc_start_method: str
) -> None:
    app = app_factory("processes", "--method", spoc_start_method, "--restart-killed")
    pids = ready_pids(app, 3)
    os.kill(pids["process-2"], signal.SIGTERM)
    again = app.expect(r"READY process-2 pid=(\d+)", count=2)[1]
    assert int(again.group(1)) != pids["process-2"]
    app.signal(signal.SIGTERM)
    assert app.wait() == 0  # the last run of every worker ended as asked
    assert "restarting worker 'process-2' (restart 1)" in app.stderr


# ---------------------------------------------------------------------- escalation past the deadline (point 10)


def test_a_slow_teardown_past_the_deadline_is_reported_as_such(app_factory: type[App], spoc_start_method: str) -> None:
    app = app_factory("slow_teardown", "--method", spoc_start_method, "--timeout", "1")
    ready_pids(app, 1)
    app.signal(signal.SIGTERM)
    assert app.wait() == 1
    assert re.search(r"worker 'slow' \(pid \d+\) handled SIGTERM but did not end within 1s", app.stderr), app.stderr
    assert re.search(r"stack of worker 'slow' \(process, pid \d+\):\n(.+\n)*.*in teardown", app.stderr)
    assert "worker 'slow' was killed by SIGKILL" in app.stderr


# ---------------------------------------------------------------------- errors and deaths never lost or late (point 10)


def raiser(app_factory: type[App], fault: str, method: str) -> App:
    app = app_factory(f"raises_{fault}", "--method", method)
    app.expect("ERROR raiser phase=main")
    return app


@pytest.mark.parametrize("method", ["thread", "fork", "forkserver", "spawn"])
def test_an_exception_whose_str_raises_is_reported_and_teardown_runs(app_factory: type[App], method: str) -> None:
    app = raiser(app_factory, "str_raises", method)
    assert app.wait() == 1
    assert "TEARDOWN raiser" in app.stdout
    assert "worker 'raiser' failed in main: <StrRaises.__str__ raised ValueError>" in app.stderr
    assert "raise StrRaises()" in app.stderr  # the traceback
    assert "failed=raiser" in app.stdout


@pytest.mark.parametrize("method", ["thread", "fork", "forkserver", "spawn"])
def test_stop_iteration_in_main_is_reported_as_itself(app_factory: type[App], method: str) -> None:
    app = raiser(app_factory, "stop_iteration", method)
    assert app.wait() == 1
    assert "worker 'raiser' failed in main: the iterator ran dry" in app.stderr
    assert "StopIteration: the iterator ran dry" in app.stderr
    assert "RuntimeError" not in app.stderr


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_an_exception_only_the_child_can_import_still_arrives_whole(app_factory: type[App], method: str) -> None:
    app = raiser(app_factory, "child_only_class", method)
    assert app.wait(10) == 1  # returns: the other worker's records never hid the failure
    assert "worker 'raiser' failed in main: raised from a class the server cannot import" in app.stderr
    assert "only_here.OnlyHere: raised from a class the server cannot import" in app.stderr
    assert 'raise only_here.OnlyHere("raised from a class' in app.stderr
    assert "TEARDOWN raiser" in app.stdout and "failed=raiser" in app.stdout


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_childs_death_is_seen_at_once_though_its_own_child_holds_its_fds(app_factory: type[App], method: str) -> None:
    app = app_factory("raises_grandchild", "--method", method)
    keeper = int(app.expect(r"GRANDCHILD pid=(\d+)")[0].group(1))
    try:
        # The grandchild sleeps a minute with every fd of the worker's child: only the child's own death counts.
        app.expect(r"worker 'raiser' ended \(failed\)", stream="stderr", timeout=10)
        assert app.wait(10) == 1
        assert "failed=raiser" in app.stdout
    finally:
        os.kill(keeper, signal.SIGKILL)


# ---------------------------------------------------------------------- small things a user hit (point 9)


def test_a_lost_task_exception_is_logged_naming_its_worker(app_factory: type[App], spoc_start_method: str) -> None:
    """A task an async worker created and never awaited fails: the spoc logger says which worker, with the traceback."""
    app = app_factory("lost_task", "--method", spoc_start_method)
    app.expect("LOST-TASK lost-thread")
    app.expect("LOST-TASK lost-process")
    for name in ("lost-thread", "lost-process"):
        app.expect(f"worker '{name}': Task exception was never retrieved", stream="stderr")
    app.signal(signal.SIGTERM)
    assert app.wait() == 0
    assert app.stderr.count('raise ValueError("nobody awaits this task")') == 2


# ---------------------------------------------------------------------- deadlines (issue 16, point 9)


@pytest.mark.parametrize("timeout", ["inf", "1e10"])
def test_an_unbounded_shutdown_timeout_means_as_long_as_it_takes(app_factory: type[App], timeout: str) -> None:
    """A user's "wait as long as it takes": no OverflowError at the first signal, a clean stop."""
    app = app_factory("basic", "--timeout", timeout)
    ready_pids(app, 3)
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "RESULT reason=signal signal=SIGTERM forced=False ok=True" in app.stdout
    assert "Traceback" not in app.stderr


# ---------------------------------------------------------------------- a reload that meets a hung worker


@pytest.mark.timeout(60)
def test_a_reload_ends_a_hung_worker_at_the_deadline_and_goes_on_with_the_next(app_factory: type[App]) -> None:
    """SIGHUP while a process worker sits in a hung handle() and a thread worker in a teardown that never returns:
    each gets the shutdown timeout, is escalated as at a shutdown (stack, SIGTERM, SIGKILL; the thread named
    and abandoned), logged, and the reload goes on with the next worker (issue 37, point 2)."""
    command = [sys.executable, "-m", "spoc", "run", "--shutdown-timeout", "1", f"{APPS / 'hung_reload.py'}:server"]
    app = app_factory(command=command)
    first = {m.group(1): m.group(2) for m in app.expect(r"READY (\w+) run=\d+ pid=(\d+)", count=3)}
    app.signal(signal.SIGHUP)
    app.expect(r"worker 'hung' did not stop within 1s of the reload's request", stream="stderr", timeout=15)
    app.expect(r"worker 'hung' \(pid \d+\) did not stop within 1\.\ds: asking for its stack", stream="stderr")
    app.expect(r"time\.sleep\(0\.05\)", stream="stderr")  # its stack, from the child
    app.expect(r"worker 'hung' \(pid \d+\) did not react to SIGTERM|handled SIGTERM but did not end", stream="stderr")
    (hung,) = app.expect(r"READY hung run=\d+ pid=(\d+)", count=2)[1:]
    assert hung.group(1) != first["hung"]
    app.expect(r"worker 'stuck' did not stop within 1s of the reload's request", stream="stderr", timeout=15)
    app.expect(r"worker 'stuck' \(thread\) is abandoned by the reload", stream="stderr")
    app.expect(r"NEVER\.wait\(\)  # a teardown that never returns", stream="stderr")
    app.expect(r"READY after run=\d+", count=2, timeout=15)  # the next worker was reloaded
    app.expect(r"server 'hung-reload': reload done", stream="stderr")
    assert "worker 'stuck' ended" not in app.stderr  # still running: its fresh instance waits for its end
    app.signal(signal.SIGTERM)
    assert app.wait() == 1, app.stderr  # the stuck thread is abandoned again at the shutdown
    assert "shutdown forced" not in app.stderr.split("received SIGHUP")[1].split("received SIGTERM")[0]


# ---------------------------------------------------------------------- the fork server's death


@pytest.mark.timeout(60)
def test_after_its_fork_server_died_a_reload_brings_every_worker_back(app_factory: type[App]) -> None:
    """With no plugin: the server notices its fork server's death at once, logs it, reaps it and spawns a new
    one; a SIGHUP then replaces every worker, the fork worker from the new fork server (issue 37, point 1)."""
    app = app_factory(command=[sys.executable, "-m", "spoc", "run", f"{APPS / 'fork_server_death.py'}:server"])
    (first,) = readies(app, 1)
    dead = fork_server(app, {first})
    os.kill(dead, signal.SIGKILL)
    (died,) = app.expect(
        rf"its fork server \(pid {dead}\) died \(killed by SIGKILL\); started a new one \(pid (\d+)\)", stream="stderr"
    )
    app.signal(signal.SIGHUP)
    app.expect(r"server 'fork-death': reload done", stream="stderr")
    second = readies(app, 2)[1]
    assert second in children(int(died.group(1)))  # beside it, maybe, the fork server's standby
    app.signal(signal.SIGTERM)
    assert app.wait() == 0, app.stderr
    assert "server 'fork-death' stopped (SIGTERM): 2 workers ended cleanly" in app.stderr
