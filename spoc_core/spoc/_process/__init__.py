"""The process backend: ProcessWorker and everything that runs it in a child process.

The rest of spoc reaches it only through the public `Backend` interface
(`ProcessBackend`, which the server registers) and the worker class; each
module's job is in docs/architecture.md.
"""

from ._backend import ProcessBackend
from ._worker import START_METHODS, ProcessWorker, default_start_method

__all__ = ["START_METHODS", "ProcessBackend", "ProcessWorker", "default_start_method"]
