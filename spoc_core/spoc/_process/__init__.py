"""The process backend: ProcessWorker and everything that runs it in a child process.

The rest of spoc reaches it only through the public `Backend` interface
(`ProcessBackend`, which the server registers) and the worker class itself.

- `_worker`: `ProcessWorker`, the user's class, and its start methods;
- `_link`: the parent's link to one child: its control and event pipes;
- `_backend`: `ProcessBackend`, which the server hands process workers to;
- `_runners`: how the parent waits on a child, however it was made;
- `_child`: the child's runtime: signals, the control pipe, the lifecycle body;
- `_fork_server`: the clean single-threaded process that makes children once the server runs threads;
- `_transfer`: sending a worker to a child that does not inherit it (pickling, fds);
- `_forkserver_preload`: what multiprocessing's fork server imports first.
"""

from ._backend import ProcessBackend
from ._worker import START_METHODS, ProcessWorker, default_start_method

__all__ = ["START_METHODS", "ProcessBackend", "ProcessWorker", "default_start_method"]
