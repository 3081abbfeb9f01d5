"""A plugin the docs tests load into each documented program (``SPOC_PLUGINS=docs_probe``).

It prints a marker once a server has started its workers, so a test can
signal a program that prints nothing of its own at the right moment.
"""

from __future__ import annotations

from typing import Any

from spoc import hookimpl

MARKER = "docs-probe: server started"


@hookimpl
def server_started(server: Any) -> None:
    print(MARKER, flush=True)
