"""Backends: the core's own come through backend_register, and a plugin's runs workers end to end."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pytest

from spoc import PluginError, Server, hookimpl
from spoc.backends import Backend, BackendError, Runner, WorkerChannel
from spoc.testing import HookRecorder, ServerFactory
from spoc.workers import ProcessWorker, ThreadWorker
from workers_for_tests import ExitsAtOnce, WaitsForStop


class FutureRunner:
    """A pool job as a `Runner`."""

    def __init__(self, future: concurrent.futures.Future[int]) -> None:
        self.future = future

    def is_alive(self) -> bool:
        return not self.future.done()

    def join(self, timeout: float | None = None) -> None:
        concurrent.futures.wait([self.future], timeout)


class PoolBackend(Backend):
    """Runs thread workers' bodies on a shared thread pool: a backend a plugin could ship."""

    name = "pool"
    worker_type = ThreadWorker

    def __init__(self) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="pool")
        self.launched: list[str] = []
        self.closed = False

    def launch(self, worker: Any, channel: WorkerChannel) -> Runner:
        self.launched.append(worker.name)
        return FutureRunner(self.executor.submit(channel.run_life))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.closed = True


class PoolPlugin:
    name = "pool-plugin"

    def __init__(self) -> None:
        self.backends: list[PoolBackend] = []

    @hookimpl
    def backend_register(self, server: Server) -> Backend:
        backend = PoolBackend()
        self.backends.append(backend)
        return backend


class Pooled(ThreadWorker):
    backend = "pool"

    def __init__(self, name: str, fail: bool = False) -> None:
        super().__init__(name)
        self.fail = fail
        self.ran_on: str | None = None
        self.ready = threading.Event()

    def main(self) -> None:
        self.ran_on = threading.current_thread().name
        self.send_record("pool.ran", thread=self.ran_on)
        self.ready.set()
        if self.fail:
            raise RuntimeError("pooled job failed")
        self.wait()


def test_hook_backend_register(spoc_server: ServerFactory, spoc_hooks: HookRecorder) -> None:
    plugin = PoolPlugin()
    pooled, failing = Pooled("pooled"), Pooled("failing", fail=True)
    workers = (pooled, failing, WaitsForStop("threaded"), ExitsAtOnce("process"))
    server = spoc_server(*workers, plugins=[plugin], allow_errors=True)  # "failing" fails on purpose
    server.start()
    assert server.backends == ("process", "thread", "pool")
    (backend,) = plugin.backends
    assert pooled.ready.wait(10) and failing.ready.wait(10)
    assert pooled.ran_on is not None and pooled.ran_on.startswith("pool")
    spoc_hooks.wait_for("worker_started", worker="pooled")
    error = spoc_hooks.wait_for("worker_error", worker="failing")["error"]
    assert (error.type_name, error.phase) == ("RuntimeError", "main") and "pooled job failed" in error.traceback
    assert spoc_hooks.wait_for("worker_record", worker="pooled")["data"] == {"thread": pooled.ran_on}
    assert pooled.is_alive() and pooled.exitcode is None
    spoc_hooks.wait_for("worker_exited", worker="process")  # ended by itself, before the stop below
    server.stop()
    assert server.join_all(10) == []
    assert sorted(backend.launched) == ["failing", "pooled"] and backend.closed
    assert (pooled.exitcode, failing.exitcode) == (0, 1) and not pooled.is_alive()
    outcomes = {c.worker: c["exit_info"].outcome for c in spoc_hooks.of("worker_exited")}
    assert outcomes == {"pooled": "stopped", "failing": "failed", "threaded": "stopped", "process": "clean"}
    assert spoc_hooks.names(worker="pooled") == [
        "worker_check",
        "worker_joined",
        "worker_event",  # startup
        "worker_started",
        "worker_event",  # the record
        "worker_record",
        "worker_event",  # stopping
        "worker_stopping",
        "worker_event",  # shutdown
        "worker_event",  # exit
        "worker_exited",
    ]


class Nowhere(ThreadWorker):
    backend = "nowhere"

    def main(self) -> None:
        pass


def test_an_unknown_backend_fails_start_listing_the_registered_ones() -> None:
    first = WaitsForStop("first")
    server = Server("s", plugins=[PoolPlugin()])
    server.add_worker(first)
    server.add_worker(Nowhere("lost"))
    with pytest.raises(BackendError) as failure:
        server.start()
    message = str(failure.value)
    assert "worker 'lost' names backend 'nowhere'" in message
    assert "'pool', 'process', 'thread'" in message and "backend_register" in message
    assert not first.started  # nothing started


def test_a_worker_added_later_with_an_unknown_backend_is_refused(spoc_server: ServerFactory) -> None:
    server = spoc_server(WaitsForStop("w"))
    server.start()
    with pytest.raises(BackendError, match="'nowhere', which is not registered"):
        server.add_worker(Nowhere("late"))
    assert [w.name for w in server.workers] == ["w"]


class ProcessOnThreads(ProcessWorker):
    backend = "thread"

    def main(self) -> None:
        pass


def test_a_backend_refuses_a_worker_of_a_kind_it_cannot_run() -> None:
    server = Server()
    server.add_worker(ProcessOnThreads("odd"))
    with pytest.raises(BackendError, match=r"'odd' is a ProcessOnThreads, but its backend 'thread' runs ThreadWorker"):
        server.start()


class Thief:
    name = "thief"

    @hookimpl
    def backend_register(self) -> list[Backend]:
        stolen = PoolBackend()
        stolen.name = "thread"
        return [stolen]


class Confused:
    name = "confused"

    @hookimpl
    def backend_register(self) -> object:
        return "pool"


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (Thief(), r"backend 'thread' is registered by both spoc plugin 'spoc.backends' and 'thief'"),
        (Confused(), r"plugin 'confused': backend_register returned 'pool'; return spoc.Backend instances"),
    ],
)
def test_a_backend_conflict_or_a_bad_result_names_the_plugin(plugin: object, message: str) -> None:
    server = Server(plugins=[plugin])
    server.add_worker(WaitsForStop("w"))
    with pytest.raises(PluginError, match=message):
        server.start()
    assert not server.workers[0].started


def test_a_worker_on_a_plugins_backend_cannot_start_without_a_server() -> None:
    with pytest.raises(BackendError, match=r"'alone' names backend 'pool', which only a Server provides"):
        Pooled("alone").start()


def test_plugin_options_backend_runs_one_worker_on_another_backend(
    spoc_server: ServerFactory, spoc_hooks: HookRecorder
) -> None:
    plugin = PoolPlugin()
    pooled = WaitsForStop("pooled", plugin_options={"backend": "pool"})
    plain = WaitsForStop("plain")
    assert (pooled.backend, plain.backend, WaitsForStop.backend) == ("pool", "thread", "thread")
    assert pooled.fresh_instance().backend == "pool"  # what a supervisor's restart runs
    server = spoc_server(pooled, plain, plugins=[plugin])
    server.start()
    spoc_hooks.wait_for("worker_started", worker="pooled")
    spoc_hooks.wait_for("worker_started", worker="plain")
    server.stop()
    assert server.join_all(10) == []
    assert plugin.backends[0].launched == ["pooled"]


def test_plugin_options_backend_must_name_a_backend() -> None:
    with pytest.raises(TypeError, match=r"WaitsForStop 'odd': plugin_options\['backend'\] must be the name of a "):
        WaitsForStop("odd", plugin_options={"backend": 3})
    server = Server()
    server.add_worker(WaitsForStop("lost", plugin_options={"backend": "nowhere"}))
    with pytest.raises(BackendError, match=r"backend 'nowhere'.*WaitsForStop.backend or the worker's plugin_options"):
        server.start()
