"""One stream, in order: every worker's lines, records and lifecycle, parsed back from `spoc run --log-format json`."""

from __future__ import annotations

import importlib.util
import re
import signal

import pytest

from runs import own_record, records, spoc_run
from spoc.testing import App

WORKERS = ("thread", "async", "async-process", "fork", "forkserver", "spawn")


def test_every_worker_s_lines_and_events_arrive_in_the_order_they_happened(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "order", "--log-format", "json")
    assert program.wait() == 0, program.stderr
    stream = records(program.stdout)  # every line on stdout is JSON
    assert stream, program.stderr
    for name in WORKERS:
        mine = [r for r in stream if own_record(r, name)]
        said = [r.get("lifecycle") or r["event"] for r in mine]
        # In order within each stream and with the events; which of a line on stdout (the last record) and one
        # on stderr (the teardown's) written a moment apart comes first is not known (docs/logging.md).
        assert [text for text in said if text != f"{name} teardown"] == [
            f"{name} setup",
            "started",
            *(text for i in range(5) for text in (f"{name} line {i}", f"{name} record {i}")),
            "exited",
        ], name
        assert said.index("started") < said.index(f"{name} teardown") < said.index("exited"), name
        pid = mine[0]["pid"]
        for record in mine:
            assert record["server"] == "logging-app" and record["pid"] == pid
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["timestamp"])
        lines = [r for r in mine if "stream" in r]
        assert sorted(r["stream"] for r in lines) == ["stderr"] + ["stdout"] * 6
        logged = [r for r in mine if r.get("logger") == "app"]
        assert [(r["level"], r["i"]) for r in logged] == [("info", i) for i in range(5)]
        (exited,) = [r for r in mine if r.get("lifecycle") == "exited"]
        assert (exited["outcome"], exited["exitcode"], exited["level"]) == ("clean", 0, "info")
    assert {r["pid"] for r in stream if any(own_record(r, w) for w in ("thread", "async"))} == {program.pid}
    processes = ("async-process", "fork", "forkserver", "spawn")
    assert len({r["pid"] for r in stream if any(own_record(r, w) for w in processes)}) == 4
    # spoc's own records are there once, as the plugin's lifecycle records: not a second time as text
    assert not [r for r in stream if r["event"].startswith("worker 'fork' started")]
    assert any(r["event"] == "server 'logging-app' starting 6 workers" and r["logger"] == "spoc" for r in stream)


def test_lifecycle_records_follow_the_spoc_logger_s_level_as_spoc_s_own_records_would(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "order", "--log-format", "json", "--log-level", "warning")
    assert program.wait() == 0, program.stderr
    stream = records(program.stdout)
    assert not [r for r in stream if r.get("lifecycle")]  # started, exited: info
    assert {"fork line 0", "spawn teardown"} <= {r["event"] for r in stream if "stream" in r}  # output is not a log
    program = spoc_run(spoc_app, "setup_fails", "--log-format", "json", "--log-level", "warning")
    assert program.wait() == 1
    said = [(r["lifecycle"], r["level"]) for r in records(program.stdout) if r.get("lifecycle")]
    assert said == [("error", "error"), ("exited", "error")]


@pytest.mark.parametrize("fmt", ["console", "logfmt"])
def test_the_other_formats_carry_the_same_fields(spoc_app: type[App], fmt: str) -> None:
    program = spoc_run(spoc_app, "order", env={"SPOC_LOG_FORMAT": fmt})
    assert program.wait() == 0, program.stderr
    out = program.stdout
    if fmt == "logfmt":
        assert re.search(
            r'^timestamp=\S+Z level=info event="fork line 0" worker=fork pid=\d+ server=logging-app '
            r"stream=stdout$",
            out,
            re.MULTILINE,
        ), out
        assert re.search(
            r'event="spawn record 3" worker=spawn pid=\d+ server=logging-app logger=app i=3$', out, re.MULTILINE
        ), out
    else:
        assert re.search(
            r"^\d\d:\d\d:\d\d\.\d{3} INFO    fork\[\d+\]: fork line 0  stream=stdout$", out, re.MULTILINE
        ), out
        assert "\x1b[" not in out  # not a terminal: no colour


def test_spoc_run_refuses_an_unknown_format_naming_it(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "order", "--log-format", "yaml")
    assert program.wait() == 2
    assert "--log-format 'yaml': use one of json, console, logfmt" in program.stderr


def test_a_stop_by_signal_ends_the_stream_with_every_worker_s_exit(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "flood", "--log-format", "json")
    program.expect(r'"worker":"flood-2".*"lifecycle":"started"')
    program.signal(signal.SIGTERM)
    assert program.wait() == 0, program.stderr[-3000:]
    stream = records(program.stdout)
    missing = 0
    for name in ("flood-1", "flood-2"):
        mine = [r for r in stream if own_record(r, name)]
        numbers = [int(r["event"].split()[0]) for r in mine if r.get("stream") == "stdout"]
        assert numbers == sorted(set(numbers)) and numbers[0] == 0  # in order, none twice
        missing += numbers[-1] + 1 - len(numbers)
        if mine[-1].get("lifecycle") == "exited":  # else dropped at the stop, and said on stderr
            assert mine[-1]["outcome"] == "stopped"
    # Lines may be dropped when this test reads slower than the workers write: each is counted and said.
    said = sum(r["dropped"] for r in stream if "dropped" in r)
    said += sum(int(n) for n in re.findall(r"(\d+) lines? dropped at the stop", program.stderr))
    assert missing <= said


def test_under_json_every_line_spoc_and_its_plugins_write_is_json(spoc_app: type[App]) -> None:
    """One stream, one format (issue 31, point 4): the server's closing line and, with spoc-plugin-metrics
    installed too, its "serving" line among the records; nothing on stderr."""
    program = spoc_run(spoc_app, "order", "--log-format", "json", env={"SPOC_METRICS_PORT": "0"})
    assert program.wait() == 0, program.stderr
    assert program.stderr == ""
    stream = records(program.stdout)
    (closing,) = [r for r in stream if r["event"].startswith("server 'logging-app' stopped (")]
    assert closing["event"].endswith("workers ended cleanly") and closing["logger"] == "spoc"
    if importlib.util.find_spec("spoc_metrics") is not None:  # installed too (the together session)
        (serving,) = [r for r in stream if r["event"].startswith("metrics: serving ")]
        assert stream.index(serving) < next(i for i, r in enumerate(stream) if r.get("lifecycle") == "started")


def test_installed_and_not_asked_it_changes_nothing(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "order", env={"SPOC_LOG_FORMAT": ""})
    assert program.wait() == 0, program.stderr
    # as the workers printed them (two children's lines may mix on the shared pipe: print() writes the text and
    # the newline apart, and the harness runs Python unbuffered)
    assert "fork line 0" in program.stdout and "spawn line 4" in program.stdout
    assert "{" not in program.stdout
    assert re.search(r"INFO +spoc: worker 'spawn' started \(pid \d+\)", program.stderr)  # spoc run's own lines


def test_spoc_run_refuses_a_format_when_the_plugin_is_blocked(spoc_app: type[App]) -> None:
    program = spoc_run(spoc_app, "order", "--log-format", "json", env={"SPOC_DISABLE_PLUGINS": "logging"})
    assert program.wait() == 2
    assert (
        "--log-format 'json': log formats are written by spoc-plugin-logging, which is not active for server "
        "'logging-app': pip install spoc-plugin-logging (or unblock it), or drop --log-format"
    ) in program.stderr


def test_structlog_in_a_worker_has_its_worker_pid_and_phase_bound(spoc_app: type[App]) -> None:
    pytest.importorskip("structlog")
    program = spoc_run(spoc_app, "structlog", "--log-format", "json")
    assert program.wait() == 0, program.stderr
    stream = records(program.stdout)
    for name in ("thread", "async-process", "fork", "forkserver", "spawn"):
        events = [r for r in stream if r.get("worker") == name and r["event"] in ("hello", "bye")]
        assert [(r["event"], r["level"], r["phase"]) for r in events] == [
            ("hello", "info", "main"),
            ("bye", "warning", "teardown"),
        ], name
        assert events[0]["job"] == 3 and events[0]["logger"]
        (started,) = [r for r in stream if r.get("worker") == name and r.get("lifecycle") == "started"]
        assert {r["pid"] for r in events} == {started["pid"]}


def test_records_start_lines_of_their_own_whatever_else_writes_to_the_stream(spoc_app: type[App]) -> None:
    """A thread no worker owns writes parts of a line to stdout between a thread worker's records: each record
    still starts a line of its own and parses; bytes a thread worker writes to ``sys.stdout.buffer`` are its
    lines like its text; ``fileno()`` and ``isatty()`` answer as the real stream's."""
    program = spoc_run(spoc_app, "stray", "--log-format", "json")
    assert program.wait() == 0, program.stderr[-2000:]
    lines = program.stdout.splitlines()
    stray = [line for line in lines if not line.startswith("{")]
    assert not [line for line in stray if "{" in line], stray  # no record begun on a line of stray text
    assert "".join(stray) == "".join(f"helper part {i} " for i in range(50))  # in order, none lost
    mine = [r for r in records("\n".join(line for line in lines if line.startswith("{"))) if r.get("worker")]
    events = [r["event"] for r in mine if r.get("logger") == "app" or r.get("stream") == "stdout"]
    assert events == [
        *(f"record {i}" for i in range(50)),
        "bytes from a thread worker",
        "euro € cut between two writes",
        "fileno=1 isatty=False buffer.fileno=1",
    ]
    assert all(r["worker"] == "thread" for r in mine)
