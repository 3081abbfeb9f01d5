"""The fork server: a clean single-threaded process that makes a server's children once the server runs threads.

A fork of a process that runs threads can deadlock on a lock another thread
held. So the process backend forks this server in `Server.start()`, before
any thread, when it will be needed (see `ProcessBackend`); it then makes the
``fork`` children started later and the ``spawn`` ones. It has no other
thread and ignores the shutdown signals, so its children are born with
Ctrl+C ignored. Being a fork of the program at start, it hands a registered
worker to its child as it is, unpickled (sockets and queues included), and
the child sees ``__main__``; a worker added later is pickled to it, with the
fds of its pipes and queues passed along.

One that dies while the server runs is replaced by one `spawn`ed (a fresh
interpreter, started by fork and exec: safe from a program that runs
threads, where a plain fork is not). It holds no worker of the program's:
every worker is pickled to it, and it forks the ``fork`` children from its
own clean, single-threaded self.

Once it has made a ``fork`` child, it keeps the next one forked ahead of
need, its standby (`_Standby`): forked `STANDBY_DELAY` after the last
request, its start-up work done, it waits on a socket of its own, and the
next ``fork`` request is passed to it unread and makes it that worker's child.

Protocol: a request over a UNIX socket carries the child's control, event and
status pipes (SCM_RIGHTS), behind a header that says whether it asks for a
``fork`` child. The answer on the status pipe is the pid (or -1 and the
reason), then the exit status: that pipe is the server's sentinel
(`ForkedChild`). Once the server hangs up, it ends its standby and exits
after its last child.
"""

from __future__ import annotations

import array
import functools
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .. import _fds
from .._errors import WorkerStartError
from .._linux import set_parent_death_signal, set_process_title
from .._poll import Poller
from .._signals import CHILD_SIGNALS, blocked
from .._worker import AbstractWorker
from ._child import ChildOptions, flush_std_streams, reset_after_fork
from ._runners import STATUS, ForkedChild, forget_in_multiprocessing, pidfd, read_exactly
from ._start import end_forked_child, fork_child, run_forked, start_with_multiprocessing
from ._transfer import pickle_for_child, received_fds

__all__ = ["ForkServer", "ForkServerGone"]

_HEADER = struct.Struct("!I?")
"""A request's header: the length of its pickled body, and whether it asks for a ``fork`` child (which the
standby takes without the fork server reading the body)."""
_PID = struct.Struct("!q")
_MAX_FDS_PER_REQUEST = 253  # SCM_RIGHTS' limit on Linux
STANDBY_DELAY = 0.02
"""Seconds from the last ``fork`` request to the fork of the next standby: the children just made have
started by then (a fork competes with them for the CPUs, and delays them)."""


@dataclass(frozen=True)
class _Held:
    """What the server remembers of a worker the fork server holds: a weak reference (an ended worker must
    become garbage), its type and the very tuple of its constructor arguments (for its fresh instances)."""

    worker: weakref.ref[AbstractWorker]
    kind: type[AbstractWorker]
    init_args: object


class ForkServerGone(WorkerStartError):
    """The fork server died before it could take a request: another one may."""


class ForkServer:
    """One server's fork server; see the module docstring."""

    def __init__(self, registered: Mapping[str, AbstractWorker], server_name: str) -> None:
        self._registered = dict(registered)  # the fork server's copy, once forked; the server keeps only `_held`
        self._held: dict[str, _Held] = {}
        self._server_name = server_name
        self._sock: socket.socket | None = None
        self._hung_up = False
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None  # a spawned one's
        self.pid = 0

    def start(self) -> None:
        """Fork the fork server from the calling thread (do it before the server starts threads)."""
        flush_std_streams()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent_pid = os.getpid()
        from_main_thread = threading.current_thread() is threading.main_thread()
        with blocked():
            pid = os.fork()
            if pid == 0:  # the fork server
                code = 0
                try:
                    ours.close()
                    set_process_title(f"spoc: {self._server_name} fork server")
                    _serve(theirs, self._registered, parent_pid, from_main_thread, self._server_name)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
        theirs.close()
        self._held = {
            name: _Held(weakref.ref(worker), type(worker), worker._init_args)
            for name, worker in self._registered.items()
        }
        self._registered = {}
        self._sock = ours
        _fds.track(ours.fileno())
        self.pid = pid

    def spawn(self) -> None:
        """Start the fork server with multiprocessing's ``spawn`` (fork and exec: safe from any thread). It holds
        no worker: each is pickled to it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=serve_spawned, args=(theirs, os.getpid(), self._server_name), name="spoc-fork-server"
        )
        try:
            with blocked():  # born with the shutdown signals blocked: it ignores them before it unblocks them
                process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        forget_in_multiprocessing(process)
        assert process.pid is not None
        self._registered, self._held = {}, {}
        self._process = process
        self._sock = ours
        _fds.track(ours.fileno())
        self.pid = process.pid

    def holds(self, worker: AbstractWorker) -> bool:
        """Whether the fork server has `worker` in its memory (registered before start), so it is not pickled."""
        held = self._held.get(worker.name)
        return held is not None and held.worker() is worker

    def _rebuilds(self, worker: AbstractWorker) -> bool:
        """Whether `worker` is a fresh instance of one the fork server holds, which it then rebuilds from its own
        copy: nothing is pickled, and the constructor arguments are what a fork inherits."""
        held = self._held.get(worker.name)
        if held is None or held.worker() is worker or held.kind is not type(worker):
            return False
        return held.init_args is worker._init_args

    def launch(
        self, worker: AbstractWorker, method: str, control_fd: int, event_fd: int, options: ChildOptions
    ) -> ForkedChild:
        """Have the fork server make a child that runs `worker` with start `method`; return the server's runner."""
        passed: list[int] = []
        if self.holds(worker):
            request: dict[str, Any] = {"mode": "ref", "name": worker.name}
        elif method == "fork" and self._rebuilds(worker):
            request = {
                "mode": "fresh",
                "name": worker.name,
                "restarts": worker.restarts,
                "previous_exit": worker.previous_exit,
            }
        else:
            payload, passed = pickle_for_child(worker)
            request = {"mode": "pickle", "name": worker.name, "payload": payload}
        request["options"] = replace(options, stdio=()) if options.stdio else options
        request["stdio"] = [number for number, _ in options.stdio]  # their fds go first among the passed ones
        request["method"] = method
        body = pickle.dumps(request)
        status_r, status_w = os.pipe()
        try:
            with self._lock:
                if self._sock is None or self._hung_up:
                    raise WorkerStartError(f"worker {worker.name!r}: the server's fork server is closed")
                fds = [control_fd, event_fd, status_w, *(fd for _, fd in options.stdio), *passed]
                _send_request(self._sock, _Request(method == "fork", body, fds))
        except OSError as exc:
            os.close(status_r)
            raise ForkServerGone(f"worker {worker.name!r}: the fork server is gone ({exc})") from exc
        finally:
            os.close(status_w)
        data = read_exactly(status_r, _PID.size)
        if len(data) != _PID.size:
            os.close(status_r)
            raise ForkServerGone(f"worker {worker.name!r}: the fork server died before starting it")
        (pid,) = _PID.unpack(data)
        if pid < 0:
            reason = _read_to_end(status_r).decode(errors="replace")
            os.close(status_r)
            raise WorkerStartError(f"worker {worker.name!r} could not be started ({method}): {reason}")
        return ForkedChild(pid, _fds.track(status_r))

    def hang_up(self) -> None:
        """No request will come any more: the fork server exits after its last child (`close` reaps it)."""
        with self._lock:
            if self._sock is None or self._hung_up:
                return
            self._hung_up = True
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the fork server is gone already: close() reaps it

    def close(self) -> int | None:
        """Tell the fork server to exit and reap it; return its exit code (None: reaped already, or elsewhere)."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return None
        _fds.untrack(sock.fileno())
        sock.close()
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return None
        finally:
            self._process = None  # reaped here: multiprocessing forgot it at the start
        return os.waitstatus_to_exitcode(status)


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class _Request:
    """A request as it travels: whether it asks for a ``fork`` child, its pickled body, the fds it carries
    (the child's control and event pipes, the status pipe when it goes to the fork server, then the stdio
    fds and those the worker's pickle passes)."""

    forks: bool
    body: bytes
    fds: list[int]

    def parsed(self) -> dict[str, Any]:
        request = pickle.loads(self.body)
        assert isinstance(request, dict)
        return request


def _send_request(sock: socket.socket, request: _Request) -> None:
    fds = array.array("i", request.fds)
    sock.sendmsg([_HEADER.pack(len(request.body), request.forks)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    sock.sendall(request.body)


def _recv_request(sock: socket.socket) -> _Request | None:
    fds = array.array("i")
    header, ancdata, _, _ = sock.recvmsg(_HEADER.size, socket.CMSG_SPACE(_MAX_FDS_PER_REQUEST * fds.itemsize))
    if not header:
        return None
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    while len(header) < _HEADER.size:
        header += sock.recv(_HEADER.size - len(header))
    length, forks = _HEADER.unpack(header)
    body = b""
    while len(body) < length:
        chunk = sock.recv(min(1 << 20, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return _Request(forks, body, list(fds))


def serve_spawned(sock: socket.socket, parent_pid: int, server_name: str) -> None:
    """A spawned fork server's life (see `ForkServer.spawn`)."""
    set_process_title(f"spoc: {server_name} fork server")
    _serve(sock, {}, parent_pid, False, server_name)


def _serve(
    sock: socket.socket, registered: Mapping[str, AbstractWorker], parent_pid: int, from_main: bool, server_name: str
) -> None:
    """The fork server's life: take over its signals, then serve requests until the server hangs up."""
    for signum in CHILD_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    reset_after_fork(frozenset({sock.fileno()}))
    _renew_locks_it_needs()
    _forget_inherited_forkserver()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    for fd in (wake_r, wake_w):
        _fds.track(fd)
    signal.signal(signal.SIGCHLD, _ignore)
    signal.set_wakeup_fd(wake_w)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CHILD_SIGNALS)
    if from_main:
        set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        return
    _ForkServerLoop(sock, wake_r, registered, server_name).serve()


def _renew_locks_it_needs() -> None:
    """Fresh copies of the locks the fork server's work takes: one a thread of the program held at the fork
    (a queue's feeder, a finalizer in the resource tracker) would stay held for ever, and freeze every spawn."""
    import multiprocessing.forkserver as mp_forkserver
    import multiprocessing.resource_tracker as mp_resource_tracker

    _fds.renew_lock()
    tracker = getattr(mp_resource_tracker, "_resource_tracker", None)
    if tracker is not None and hasattr(tracker, "_lock"):
        tracker._lock = threading.RLock()
    forkserver = getattr(mp_forkserver, "_forkserver", None)
    if forkserver is not None and hasattr(forkserver, "_lock"):
        forkserver._lock = threading.Lock()


def _forget_inherited_forkserver() -> None:
    """Drop multiprocessing's record of the parent's forkserver, not this process's child (it would be waited
    on, and kept alive through the inherited pipe); this process starts its own when a worker needs one."""
    import multiprocessing.forkserver as mp_forkserver

    forkserver = getattr(mp_forkserver, "_forkserver", None)
    if forkserver is None or getattr(forkserver, "_forkserver_pid", None) is None:
        return
    alive_fd = getattr(forkserver, "_forkserver_alive_fd", None)
    if isinstance(alive_fd, int):
        try:
            os.close(alive_fd)
        except OSError:
            pass
    forkserver._forkserver_alive_fd = None
    forkserver._forkserver_address = None
    forkserver._forkserver_pid = None


class _ForkServerLoop:
    """The fork server's loop: make children on request, report their pids and exit statuses.

    ``fork`` children are forked and reaped here; ``spawn`` and ``forkserver``
    ones are made by multiprocessing called from here (so born with the
    shutdown signals ignored), and watched through their pidfd or sentinel.

    Once it has made a ``fork`` child, it keeps one forked ahead, its
    `_Standby`, which takes the next ``fork`` request: a restart then waits
    for no fork and none of a fresh fork's start-up work.
    """

    def __init__(
        self, sock: socket.socket, wake_r: int, registered: Mapping[str, AbstractWorker], server_name: str
    ) -> None:
        self.sock = sock
        self.registered = registered
        self.server_name = server_name
        self.forked: dict[int, int] = {}
        self.launched: dict[int, tuple[Any, int]] = {}
        self.standby: _Standby | None = None
        self.standby_due: float | None = None
        """When to fork the next standby (`STANDBY_DELAY`); None: it is there, or no ``fork`` request came."""
        self.hung_up = False
        self.poller = Poller()
        self.poller.watch(sock.fileno(), self._on_request)
        self.poller.watch(wake_r, functools.partial(_drain, wake_r))  # SIGCHLD: _reap_forked below

    def serve(self) -> None:
        """Serve until the server hangs up (no more requests) and every child made here has been reported."""
        while not (self.hung_up and not self.forked and not self.launched):
            due = self.standby_due
            self.poller.poll(None if due is None else due - time.monotonic())
            self._reap_forked()
            due = self.standby_due  # a request may have put it off
            if due is not None and time.monotonic() >= due:
                self._fork_standby()
        self._retire_standby()

    def _on_request(self) -> None:
        received = _recv_request(self.sock)
        if received is None:
            self.hung_up = True
            self.poller.unwatch(self.sock.fileno())
            self._retire_standby()
            return
        if not (received.forks and self._hand_to_standby(received)):
            self._handle(received.parsed(), received.fds)
        if received.forks and self.standby is None:
            self.standby_due = time.monotonic() + STANDBY_DELAY

    def _fork_standby(self) -> None:
        """Fork the next standby, `STANDBY_DELAY` after the last ``fork`` request: the next one, a restart
        say, then finds it ready."""
        self.standby_due = None
        if self.standby is None and not self.hung_up:
            self.standby = _new_standby(self.registered, self.server_name)

    def _hand_to_standby(self, received: _Request) -> bool:
        """Give a ``fork`` request to the standby, which becomes that child; False when there is none (or it
        is gone: the request is then served with a fork)."""
        standby, self.standby = self.standby, None
        if standby is None:
            return False
        control_fd, event_fd, status_fd, *rest = received.fds
        try:
            _send_request(standby.sock, _Request(True, received.body, [control_fd, event_fd, *rest]))
        except OSError:  # it died: a fork makes the child instead
            standby.retire()
            return False
        standby.close_socket()
        for fd in (control_fd, event_fd, *rest):
            os.close(fd)
        _fds.track(status_fd)
        self.forked[standby.pid] = status_fd
        _write_all(status_fd, _PID.pack(standby.pid))
        return True

    def _retire_standby(self) -> None:
        self.standby_due = None
        standby, self.standby = self.standby, None
        if standby is not None:
            standby.retire()

    def _handle(self, request: dict[str, Any], fds: list[int]) -> None:
        control_fd, event_fd, status_fd, *passed = fds
        _fds.track(status_fd)
        stdio, passed = _with_stdio(request, passed)
        try:
            if request["method"] == "fork":
                pid = self._fork(request, control_fd, event_fd, passed)
                self.forked[pid] = status_fd
            else:
                received_fds[:] = passed
                worker = _resolve(request, self.registered)
                process = start_with_multiprocessing(
                    request["method"], worker, control_fd, event_fd, request["options"]
                )
                assert process.pid is not None
                pid = process.pid
                sentinel = pidfd(pid)  # its own death, not a pipe its children may hold open
                sentinel = process.sentinel if sentinel is None else _fds.track(sentinel)
                self.launched[sentinel] = (process, status_fd)
                self.poller.watch(sentinel, functools.partial(self._launched_child_ended, sentinel))
        except BaseException as exc:
            _write_all(status_fd, _PID.pack(-1) + f"{type(exc).__name__}: {exc}".encode(errors="replace"))
            _fds.close_tracked(status_fd)
            return
        finally:
            for fd in (control_fd, event_fd, *stdio, *passed):
                os.close(fd)
        _write_all(status_fd, _PID.pack(pid))

    def _fork(self, request: dict[str, Any], control_fd: int, event_fd: int, passed: list[int]) -> int:
        def worker() -> AbstractWorker:
            received_fds[:] = passed
            return _resolve(request, self.registered)

        return fork_child(
            request["name"], worker, control_fd, event_fd, request["options"], frozenset(passed), _first_in_child
        )

    def _reap_forked(self) -> None:
        for pid in list(self.forked):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                _report_exit(self.forked.pop(pid), os.waitstatus_to_exitcode(status))
        standby = self.standby
        if standby is not None and os.waitpid(standby.pid, os.WNOHANG)[0]:  # killed from outside: replaced
            self.standby = None  # at the next fork request
            standby.close_socket()

    def _launched_child_ended(self, sentinel: int) -> None:
        process, status_fd = self.launched.pop(sentinel)
        self.poller.unwatch(sentinel)
        if sentinel != process.sentinel:
            _fds.close_tracked(sentinel)
        if process.exitcode is None:  # a forkserver child: multiprocessing's fork server reports it once reaped
            process.join(5.0)
        code = process.exitcode
        _report_exit(status_fd, code if code is not None else -signal.SIGKILL)
        process.close()


def _with_stdio(request: dict[str, Any], passed: list[int]) -> tuple[list[int], list[int]]:
    """Split the fds after a request's pipes into its stdio fds and those its worker's pickle passes, and put
    the stdio fds in its options; return both lists."""
    numbers = request["stdio"]
    stdio, passed = passed[: len(numbers)], passed[len(numbers) :]
    if stdio:  # restart time: no copy of the options when no plugin gave the child its fds
        request["options"] = replace(request["options"], stdio=tuple(zip(numbers, stdio, strict=True)))
    return stdio, passed


def _first_in_child() -> None:
    """The first thing a child of the fork server does: give up the fork server's signal handling."""
    signal.set_wakeup_fd(-1)  # before the fds are closed: the wake-up pipe is among them
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


@dataclass(frozen=True)
class _Standby:
    """A child the fork server forked ahead of need, its start-up work done, that waits on its socket for the
    next ``fork`` request and then becomes that worker's child (see `_stand_by`)."""

    pid: int
    sock: socket.socket

    def close_socket(self) -> None:
        _fds.untrack(self.sock.fileno())
        self.sock.close()

    def retire(self) -> None:
        """End it, unused (it runs nothing of anyone's yet), and reap it."""
        self.close_socket()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _new_standby(registered: Mapping[str, AbstractWorker], server_name: str) -> _Standby | None:
    """Fork the next ``fork`` child ahead of need (None when the fork fails: requests are then forked)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    flush_std_streams()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        end_forked_child(functools.partial(_stand_by, theirs, registered, parent, server_name))
    theirs.close()
    _fds.track(ours.fileno())  # closed in the children forked while it waits
    return _Standby(pid, ours)


def _stand_by(sock: socket.socket, registered: Mapping[str, AbstractWorker], parent: int, server_name: str) -> int:
    """A standby's life: the start-up work of a fork child, then wait for the request that says whose child it
    is, and run that worker as `_ForkServerLoop._fork` 's child would; exit unused when the fork server goes."""
    _first_in_child()
    reset_after_fork(frozenset({sock.fileno()}))
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        return 0
    set_process_title(f"spoc: {server_name} standby")
    received = _recv_request(sock)
    _fds.close_tracked(sock.detach())
    set_parent_death_signal(0)  # the child's own, if any, is set by run_child
    if received is None:
        return 0
    request = received.parsed()
    control_fd, event_fd, *rest = received.fds
    _, passed = _with_stdio(request, rest)

    def worker() -> AbstractWorker:
        received_fds[:] = passed
        return _resolve(request, registered)

    return run_forked(request["name"], worker, control_fd, event_fd, request["options"])


def _report_exit(status_fd: int, exitcode: int) -> None:
    try:
        os.write(status_fd, STATUS.pack(exitcode))
    except OSError:
        pass
    _fds.close_tracked(status_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _resolve(request: dict[str, Any], registered: Mapping[str, AbstractWorker]) -> AbstractWorker:
    if request["mode"] == "ref":
        return registered[request["name"]]
    if request["mode"] == "fresh":
        fresh = registered[request["name"]].fresh_instance()
        fresh.restarts, fresh.previous_exit = request["restarts"], request["previous_exit"]
        return fresh
    worker = pickle.loads(request["payload"])
    assert isinstance(worker, AbstractWorker)
    return worker


def _ignore(signum: int, frame: object) -> None:
    """SIGCHLD handler: its only job is to make the wake-up fd readable."""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
