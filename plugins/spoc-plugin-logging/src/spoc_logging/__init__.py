"""spoc-plugin-logging: one ordered, structured log stream for every spoc worker, thread or process.

A process worker's fd 1 and 2 become pipes the server reads, so everything
its child writes arrives, attributed to the worker, its pid and the stream,
up to the last byte before a crash or a SIGKILL; what a thread worker prints
is attributed through `spoc.current_worker`. stdlib ``logging`` records
travel as data. Each worker's lines and its lifecycle (started, error,
exited, restarted) are written in order through one writer, as JSON,
console lines or logfmt; a failed or killed worker's last lines of output
come with its error.

Installed (``plugin``), it writes the stream of every server once asked:
``SPOC_LOG_FORMAT`` (``spoc run --log-format``) names the format, ``json``,
``console`` or ``logfmt``, when the plugin is first loaded in the process;
unasked, it is an object with no hooks, and changes nothing. A server given
``Server(plugins=[Logging(...)])`` always has it (default format: ``console``
on a terminal, ``json`` otherwise).
"""

from __future__ import annotations

from ._formats import FORMAT_ENV, FORMATS
from ._plugin import Logging, Unasked, installed_plugin
from ._structlog import add_worker_fields

__all__ = ["FORMATS", "FORMAT_ENV", "Logging", "add_worker_fields", "plugin"]


def __getattr__(name: str) -> Logging | Unasked:
    """``plugin``: what the entry point ``logging`` installs, chosen when it is first loaded in the process: a
    `Logging` when ``SPOC_LOG_FORMAT`` names a format, else an object with no hooks (not asked: it changes
    nothing)."""
    if name == "plugin":
        return installed_plugin()
    raise AttributeError(f"module 'spoc_logging' has no attribute {name!r}")
