"""spoc.testing, as a plugin author uses it: the fixtures arrive with spoc (entry point pytest11) in a fresh pytest."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(120)

PLUGIN_AUTHORS_TESTS = textwrap.dedent(
    """
    from spoc import hookimpl
    from spoc.workers import ProcessWorker, ThreadWorker


    class Counter:
        name = "counter"

        def __init__(self):
            self.started = []

        @hookimpl
        def worker_started(self, worker):
            self.started.append(worker.name)


    class Job(ThreadWorker):
        def main(self):
            self.wait()


    class ProcessJob(ProcessWorker):
        def main(self):
            self.wait()


    class Broken(ThreadWorker):
        def main(self):
            raise ValueError("job 7 is corrupt")


    def test_counts_starts(spoc_server, spoc_hooks):
        counter = Counter()
        server = spoc_server(Job("job"), ProcessJob("process-job", start_method="fork"), plugins=[counter])
        server.start()
        spoc_hooks.wait_for("worker_started", worker="job")
        spoc_hooks.wait_for("worker_started", worker="process-job")
        assert sorted(counter.started) == ["job", "process-job"]


    def test_a_server_left_running_is_stopped_and_joined(spoc_server):
        spoc_server(Job("forgotten"), ProcessJob("forgotten-process", start_method="fork")).start()


    def test_a_worker_failure_fails_the_test(spoc_server, spoc_hooks):
        spoc_server(Broken("broken")).start()
        spoc_hooks.wait_for("worker_exited", worker="broken")


    def test_an_expected_failure_can_be_allowed(spoc_server, spoc_hooks):
        spoc_server(Broken("broken-on-purpose"), allow_errors=True).start()
        error = spoc_hooks.wait_for("worker_error", worker="broken-on-purpose")["error"]
        assert error.message == "job 7 is corrupt"


    def test_wait_for_takes_a_predicate(spoc_server, spoc_hooks):
        spoc_server(Job("first"), Job("second")).start()
        call = spoc_hooks.wait_for("worker_started", worker=lambda w: w.name.startswith("sec"))
        assert call.worker == "second"
        assert spoc_hooks.of("worker_started", event=lambda e: e.kind == "startup")


    def test_wait_for_says_what_it_saw(spoc_server, spoc_hooks):
        spoc_server(Job("quiet")).start()
        spoc_hooks.wait_for("worker_started", worker="quiet")
        try:
            spoc_hooks.wait_for("worker_exited", worker="quiet", timeout=0.05)
        except TimeoutError as exc:
            assert "worker_started(quiet)" in str(exc)
        else:
            raise AssertionError("no TimeoutError")
    """
)


def test_the_fixtures_as_a_plugin_author_uses_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_my_plugin=PLUGIN_AUTHORS_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6, errors=1)
    output = result.stdout.str()
    assert "ERROR at teardown of test_a_worker_failure_fails_the_test" in output
    assert "worker 'broken' of server 'test' ended failed (exitcode 1)" in output
    assert "job 7 is corrupt" in output and 'raise ValueError("job 7 is corrupt")' in output
    assert "broken-on-purpose" not in output
