"""Plugins: explicit and installed ones, blocking, isolation, and the hooks they see."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spoc import PluginError, Server, hookimpl
from spoc._plugins import _loaded_entry_points
from workers_for_tests import ExitsAtOnce, Raises, WaitsForStop


class Recorder:
    """Records every hook call as a tuple; hook calls of one server never overlap, so a list will do."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    @hookimpl
    def server_starting(self, server: Server) -> None:
        self.calls.append(("server_starting", server.name))

    @hookimpl
    def server_started(self, server: Server) -> None:
        self.calls.append(("server_started", server.name))

    @hookimpl
    def server_stopping(self, reason: str) -> None:
        self.calls.append(("server_stopping", reason))

    @hookimpl
    def server_stopped(self, exits: tuple[Any, ...]) -> None:
        self.calls.append(("server_stopped", ",".join(sorted(e.worker for e in exits))))

    @hookimpl
    def worker_started(self, worker: Any, event: Any) -> None:
        self.calls.append(("worker_started", worker.name, event.kind))

    @hookimpl
    def worker_error(self, worker: Any, error: Any) -> None:
        self.calls.append(("worker_error", worker.name, error.phase, error.type_name, error.traceback))

    @hookimpl
    def worker_stopping(self, worker: Any) -> None:
        self.calls.append(("worker_stopping", worker.name))

    @hookimpl
    def worker_exited(self, worker: Any, exit_info: Any) -> None:
        self.calls.append(("worker_exited", worker.name, exit_info.outcome))

    @hookimpl
    def worker_event(self, worker: Any, event: Any) -> None:
        self.calls.append(("worker_event", worker.name, event.kind))

    def of(self, hook: str) -> list[tuple[str, ...]]:
        return [call for call in self.calls if call[0] == hook]


def run(server: Server, *workers: Any) -> None:
    for worker in workers:
        server.add_worker(worker)
    server.start()
    for worker in workers:
        if isinstance(worker, WaitsForStop):
            assert worker.ready.wait(10)
    server.stop()
    assert server.join_all(30) == []


def test_hooks_see_thread_and_process_workers_in_order(spoc_start_method: str) -> None:
    recorder = Recorder()
    server = Server("hooked", plugins=[recorder])
    run(server, WaitsForStop("thread"), ExitsAtOnce("process", start_method=spoc_start_method))
    calls = recorder.calls
    assert calls[0] == ("server_starting", "hooked") and ("server_started", "hooked") in calls
    assert calls[-1] == ("server_stopped", "process,thread")
    for name in ("thread", "process"):
        mine = [c for c in calls if len(c) > 1 and c[1] == name and c[0] != "worker_stopping"]
        kinds = [c[2] for c in mine if c[0] == "worker_event" and c[2] != "stopping"]
        assert kinds[:2] == ["startup", "shutdown"], kinds
        (exited,) = [c for c in mine if c[0] == "worker_exited"]
        assert exited[2] in ("clean", "stopped")
        assert mine.index(("worker_started", name, "startup")) < mine.index(exited)
    assert recorder.of("server_stopping") == [("server_stopping", "stop")]
    assert ("worker_stopping", "thread") in calls  # it was still running when the server stopped it


def test_a_process_workers_exception_reaches_worker_error_with_its_traceback(spoc_start_method: str) -> None:
    recorder = Recorder()
    run(Server(plugins=[recorder]), Raises("broken", start_method=spoc_start_method))
    ((_, name, phase, type_name, traceback),) = recorder.of("worker_error")
    assert (name, phase, type_name) == ("broken", "main", "LookupError")
    assert "no such job: 42" in traceback and "def main" not in traceback and "raise LookupError" in traceback
    assert recorder.of("worker_exited") == [("worker_exited", "broken", "failed")]


class Explodes:
    name = "explodes"

    @hookimpl
    def worker_started(self, worker: Any) -> None:
        raise RuntimeError(f"plugin bug while {worker.name} started")


def test_a_raising_plugin_is_logged_once_and_the_others_still_run(caplog: Any) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.ERROR, logger="spoc"):
        run(Server(plugins=[Explodes(), recorder]), WaitsForStop("w"))
    assert recorder.of("worker_started") == [("worker_started", "w", "startup")]
    failures = [r for r in caplog.records if "raised in hook" in r.getMessage()]
    assert len(failures) == 1
    assert "'explodes'" in failures[0].getMessage() and "'worker_started'" in failures[0].getMessage()
    assert "plugin bug while w started" in caplog.text


def test_spoc_hookimpl_is_pluggys_marker_and_hands_back_what_it_raised() -> None:
    """Registered with pluggy as marked (spoc patches none of pluggy's objects); called through pluggy, what
    the implementation raised comes back among the hook's results, for the server to log (the test above)."""
    import pluggy

    from spoc import hookspecs

    manager = pluggy.PluginManager("spoc")
    manager.add_hookspecs(hookspecs)
    plugin = Explodes()
    manager.register(plugin, name="explodes")
    (impl,) = manager.hook.worker_started.get_hookimpls()
    assert impl.function == plugin.worker_started  # registered as marked: spoc patches none of pluggy's objects
    (failed,) = manager.hook.worker_started(server=None, worker=WaitsForStop("w"), event=None)
    assert isinstance(failed.exception, RuntimeError) and "plugin bug while w started" in str(failed.exception)


class MarkedByPluggy:
    """Marked with pluggy's own marker, not spoc.hookimpl: not isolated, and its failure is still logged."""

    name = "marked-by-pluggy"

    import pluggy as _pluggy

    @_pluggy.HookimplMarker("spoc")  # type: ignore[misc]
    def worker_started(self, worker: Any) -> None:
        raise RuntimeError("unisolated plugin bug")


def test_an_implementation_marked_by_pluggy_itself_is_logged_naming_the_hook(caplog: Any) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.ERROR, logger="spoc"):
        run(Server(plugins=[recorder, MarkedByPluggy()]), WaitsForStop("w"))
    assert "hook 'worker_started' raised outside its implementations" in caplog.text
    assert "unisolated plugin bug" in caplog.text
    assert recorder.of("worker_exited") == [("worker_exited", "w", "stopped")]


class Misspelled:
    name = "misspelled"

    @hookimpl
    def worker_strated(self) -> None:
        pass


def test_a_misspelled_hook_is_an_error_naming_the_plugin() -> None:
    server = Server(plugins=[Misspelled()])
    server.add_worker(WaitsForStop("never"))
    with pytest.raises(PluginError, match=r"'misspelled' implements 'worker_strated'.*Did you mean 'worker_started'"):
        server.start()
    assert not server.workers[0].started


class First:
    name = "first"

    def __init__(self, order: list[str]) -> None:
        self.order = order

    @hookimpl(tryfirst=True)
    def server_starting(self) -> None:
        self.order.append(self.name)


class Last(First):
    name = "last"

    @hookimpl(trylast=True)
    def server_starting(self) -> None:
        self.order.append(self.name)


class Plain(First):
    name = "plain"

    @hookimpl
    def server_starting(self) -> None:
        self.order.append(self.name)


def test_tryfirst_and_trylast_order_the_implementations() -> None:
    order: list[str] = []
    run(Server(plugins=[Last(order), Plain(order), First(order)]))
    assert order == ["first", "plain", "last"]


# ---------------------------------------------------------------------- installed plugins


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution `spoc-plugin-demo` 1.2.3 on sys.path, with an entry point `demo` in the group `spoc`."""
    (tmp_path / "spoc_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            from spoc import hookimpl

            seen = []

            @hookimpl
            def worker_started(worker):
                seen.append(worker.name)
            """
        )
    )
    info = tmp_path / "spoc_plugin_demo-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spoc-plugin-demo\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[spoc]\ndemo = spoc_demo_plugin\nbroken = spoc_broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SPOC_DISABLE_PLUGINS", "broken")  # each test unblocks it where it needs it
    yield tmp_path
    sys.modules.pop("spoc_demo_plugin", None)
    for key in [k for k in _loaded_entry_points if k[0] in ("demo", "broken")]:
        del _loaded_entry_points[key]


def test_an_installed_plugin_is_discovered_and_called(installed: Path) -> None:
    server = Server()
    (info,) = [p for p in server.plugins if p.name == "demo"]
    assert (info.source, info.distribution, info.version, info.hooks) == (
        "entry point",
        "spoc-plugin-demo",
        "1.2.3",
        ("worker_started",),
    )
    run(server, WaitsForStop("found"))
    assert sys.modules["spoc_demo_plugin"].seen == ["found"]


def test_autoload_off_and_blocking(installed: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    assert [p.name for p in Server(disable_plugins=["demo"]).plugins if p.name == "demo"] == []
    assert [p.name for p in Server(disable_plugins=["spoc-plugin-demo"]).plugins if p.name == "demo"] == []
    monkeypatch.setenv("SPOC_DISABLE_PLUGINS", "broken,demo")
    assert [p.name for p in Server().plugins if p.name == "demo"] == []
    monkeypatch.setenv("SPOC_DISABLE_PLUGINS", "")
    monkeypatch.setenv("SPOC_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert [p.name for p in Server(plugins=[Recorder()]).plugins] == ["spoc.backends", "recorder"]
    assert [(p.name, p.source) for p in Server().plugins] == [("spoc.backends", "builtin")]
    with caplog.at_level(logging.WARNING, logger="spoc"):
        Server(disable_plugins=["demmo"]).plugins  # noqa: B018
    assert "'demmo' is blocked but no such plugin is installed" in caplog.text


def test_a_plugin_that_fails_to_import_stops_the_server_from_starting(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOC_DISABLE_PLUGINS", "")
    server = Server()
    server.add_worker(ExitsAtOnce("never-started"))
    with pytest.raises(PluginError) as failure:
        server.start()
    message = str(failure.value)
    assert "'broken'" in message and "spoc-plugin-demo 1.2.3" in message
    assert "ModuleNotFoundError" in message and "spoc_broken_plugin" in message
    assert not server.workers[0].started


class ConfiguredDemo:
    """Stands for an installed plugin's object given with its own options: it takes the entry point's name."""

    name = "demo"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def worker_started(self, worker: Any) -> None:
        self.seen.append(worker.name)


def test_a_plugin_given_to_the_server_replaces_the_installed_one_of_the_same_name(installed: Path, caplog: Any) -> None:
    configured = ConfiguredDemo()
    server = Server(plugins=[configured])
    with caplog.at_level(logging.INFO, logger="spoc"):
        assert [(p.name, p.source) for p in server.plugins if p.name == "demo"] == [("demo", "explicit")]
    assert "installed spoc plugin 'demo' (spoc-plugin-demo) is replaced by the one given to server" in caplog.text
    run(server, WaitsForStop("configured"))
    assert configured.seen == ["configured"]
    assert "spoc_demo_plugin" not in sys.modules  # the installed one was not even imported


def test_spoc_plugins_loads_named_entry_points_even_with_autoload_off(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOC_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("SPOC_PLUGINS", " demo ,")
    assert [(p.name, p.source, p.distribution) for p in Server().plugins][1:] == [
        ("demo", "entry point", "spoc-plugin-demo")
    ]
    monkeypatch.setenv("SPOC_DISABLE_PLUGINS", "broken,demo")
    assert [p.name for p in Server().plugins] == ["spoc.backends"]  # blocking wins over naming


def test_spoc_plugins_loads_modules_and_module_attributes(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (installed / "spoc_local_plugins.py").write_text(
        textwrap.dedent(
            """
            from spoc import hookimpl

            class Named:
                name = "named"

                @hookimpl
                def server_started(self, server):
                    pass

            named = Named()

            @hookimpl
            def server_stopped(server, exits):
                pass
            """
        )
    )
    monkeypatch.setenv("SPOC_PLUGINS", "spoc_local_plugins,spoc_local_plugins:named")
    try:
        plugins = {p.name: (p.source, p.hooks) for p in Server().plugins}
        assert plugins["spoc_local_plugins"] == ("explicit", ("server_stopped",))
        assert plugins["named"] == ("explicit", ("server_started",))
        assert "demo" in plugins  # autoload is still on: SPOC_PLUGINS adds
        mine = ConfiguredDemo()
        mine.name = "named"
        assert [p.source for p in Server(plugins=[mine]).plugins if p.name == "named"] == ["explicit"]
    finally:
        sys.modules.pop("spoc_local_plugins", None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_thing", "SPOC_PLUGINS names 'no_such_thing', but no installed spoc plugin has that name"),
        ("spoc_demo_plugin:missing", "module 'spoc_demo_plugin' has no attribute 'missing'"),
    ],
)
def test_spoc_plugins_naming_nothing_is_an_error_that_says_so(
    installed: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("SPOC_PLUGINS", value)
    with pytest.raises(PluginError, match=re.escape(message)):
        Server().plugins  # noqa: B018


def test_disable_plugins_takes_a_list_not_a_string() -> None:
    with pytest.raises(TypeError, match=r"disable_plugins=\['metrics'\]"):
        Server(disable_plugins="metrics")


class Wraps:
    """A new-style hook wrapper: such hooks go through pluggy's own machinery; implementations stay isolated."""

    name = "wraps"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def worker_started(self, worker: Any) -> Any:
        self.seen.append(f"before {worker.name}")
        result = yield
        self.seen.append(f"after {worker.name}")
        return result


def test_a_hook_wrapper_runs_around_isolated_implementations(caplog: Any) -> None:
    wraps, recorder = Wraps(), Recorder()
    with caplog.at_level(logging.ERROR, logger="spoc"):
        run(Server(plugins=[wraps, Explodes(), recorder]), WaitsForStop("w"))
    assert wraps.seen == ["before w", "after w"]
    assert recorder.of("worker_started") == [("worker_started", "w", "startup")]
    assert "'explodes'" in caplog.text and "'worker_started'" in caplog.text
