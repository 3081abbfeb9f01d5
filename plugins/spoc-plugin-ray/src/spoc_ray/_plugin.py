"""The plugin: registers the ``ray`` backend, checks Ray workers' settings, and connects to Ray when needed."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import spoc

from ._backend import RayBackend
from ._settings import placement_of

__all__ = ["ADDRESS_ENV", "Ray", "plugin"]

ADDRESS_ENV = "RAY_ADDRESS"


class Ray:
    """spoc-plugin-ray: the ``ray`` backend, for workers that set ``backend = "ray"``.

    Installed, the entry point registers it with the defaults; give one to a
    server to choose. Ray is imported and connected only when a server starts
    a Ray worker, so a program without one never pays for it.

    Args:
        address: the cluster to join (``"ray://host:10001"``, ``"auto"``);
            None: `RAY_ADDRESS`, or a local Ray started for the process (and
            shut down once the last server using it has stopped).
        init: further keyword arguments for ``ray.init`` (``num_cpus``,
            ``namespace``, ``runtime_env``...).
    """

    name = "ray"

    def __init__(self, address: str | None = None, **init: Any) -> None:
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(f"Ray(address={address!r}): give a cluster address such as 'auto', or None")
        self.address = address
        self.init = init
        self._lock = threading.Lock()
        self._users = 0
        self._started_here = False

    def __repr__(self) -> str:
        return f"Ray(address={self.address!r})"

    @spoc.hookimpl
    def backend_register(self, server: spoc.Server) -> spoc.Backend:
        return RayBackend(self)

    @spoc.hookimpl
    def worker_check(self, server: spoc.Server, worker: spoc.AbstractWorker) -> None:
        if worker.backend == "ray":
            placement_of(worker)  # raises, naming the worker, the setting and its value

    def connect(self) -> Any:
        """The ray module, connected: the first Ray worker of a server joins the cluster (or starts a local one)."""
        import ray

        with self._lock:
            if not ray.is_initialized():
                address = self.address or os.environ.get(ADDRESS_ENV) or None
                init = dict(self.init)
                if address is None and "runtime_env" not in init:
                    init["runtime_env"] = {"env_vars": {"PYTHONPATH": _program_path()}}
                with _handlers_kept():
                    ray.init(address=address, **init)
                self._started_here = True
            self._users += 1
        return ray

    def disconnect(self) -> None:
        """A server's Ray workers have all ended: after the last, a Ray this plugin started is shut down."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users or not self._started_here:
                return
            self._started_here = False
        import ray

        ray.shutdown()


_HELD = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """Around ``ray.init``: it replaces the program's SIGTERM handler (``spoc run``'s, `run_forever`'s) with one
    that exits at once, and its core installs a C handler that dumps a stack on SIGTERM. Held meanwhile, a
    SIGTERM or SIGINT reaches the program's own handler once they are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {signum: signal.getsignal(signum) for signum in _HELD}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _program_path() -> str:
    """The program's own import directories (not the environment's packages), as a PYTHONPATH: a local Ray's
    actors then import the workers' modules as a spawned child would (``spoc run app.py`` puts its directory on
    sys.path). A cluster elsewhere needs the code shipped (Ray's ``runtime_env``: ``working_dir``, ``py_modules``)."""
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    own = [p for p in sys.path if p and os.path.isdir(p) and not os.path.abspath(p).startswith(prefixes)]
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([*own, inherited] if inherited else own)


plugin = Ray()
"""The instance the ``spoc`` entry point registers."""
