"""spoc.testing's kit, as a plugin's test suite uses it: a program in its own session, the leftover check, and a
test run once per start method."""

from __future__ import annotations

import re
import signal
import sys
import textwrap
from collections.abc import Callable

import pytest

from spoc.testing import START_METHODS, App

pytest_plugins = ["pytester"]


def test_an_app_runs_in_its_own_session_and_is_waited_for_by_its_output(spoc_app: Callable[..., App]) -> None:
    code = "import os, time\nprint('pgid', os.getpgid(0), flush=True)\ntime.sleep(60)"
    app = spoc_app(command=[sys.executable, "-c", code])
    (match,) = app.expect(r"pgid (\d+)")
    assert int(match.group(1)) == app.pid  # a session, and a process group, of its own
    app.signal_group(signal.SIGTERM)
    assert app.wait(30) == -signal.SIGTERM


def test_an_app_takes_a_script_or_a_command() -> None:
    with pytest.raises(TypeError, match=r"App\(\) takes script=, .* or command=\[...\]"):
        App()


def test_the_start_method_fixture_runs_a_test_once_per_start_method(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_each(spoc_start_method):
            print("METHOD", spoc_start_method)
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=len(START_METHODS))
    assert sorted(re.findall(r"METHOD (\w+)", result.stdout.str())) == sorted(START_METHODS)


def test_the_leftover_check_fails_a_test_that_leaves_a_process_or_a_thread_running(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True)
        def _no_leftovers(spoc_no_leftovers):
            pass
        """
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import subprocess, sys, threading

            def test_leaves_a_process():
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

            def test_leaves_a_thread():
                threading.Thread(target=threading.Event().wait, name="stuck", daemon=True).start()

            def test_leaves_nothing():
                subprocess.run([sys.executable, "-c", "pass"], check=True)
            """
        )
    )
    result = pytester.runpytest_subprocess("-o", "timeout=0")
    result.assert_outcomes(passed=3, errors=2)
    text = result.stdout.str()
    assert "processes left behind" in text and "thread left running: stuck" in text
