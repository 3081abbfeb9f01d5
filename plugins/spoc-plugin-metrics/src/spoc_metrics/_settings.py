"""Where the endpoint listens: the plugin's arguments, else SPOC_METRICS_ADDR / SPOC_METRICS_PORT, else defaults.

The defaults are for a plugin that is installed and nobody configured: the
loopback address, so that installing it exposes nothing on the network, and
port 9464, or a free port when 9464 is taken (see `ListenAddress.port_chosen`),
so that installing it never makes a second program on the machine fail.
"""

from __future__ import annotations

import os
from typing import NamedTuple

__all__ = [
    "ADDR_ENV",
    "DEFAULT_ADDR",
    "DEFAULT_PORT",
    "PORT_ENV",
    "ListenAddress",
    "check_addr",
    "check_port",
    "listen_address",
    "port_from_text",
]

ADDR_ENV = "SPOC_METRICS_ADDR"
PORT_ENV = "SPOC_METRICS_PORT"
DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 9464


def port_from_text(text: str, source: str) -> int:
    """The port number an environment variable holds; a ValueError naming `source` otherwise."""
    try:
        port = int(text.strip())
    except ValueError:
        raise ValueError(f"{source} must be a port number from 0 to 65535, got {text!r}") from None
    return check_port(port, source)


def check_port(port: object, source: str) -> int:
    """`port` as a port number (0 picks a free one); a ValueError or TypeError naming `source` otherwise."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{source} must be an int port number from 0 to 65535, got {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{source} must be a port number from 0 to 65535 (0 picks a free one), got {port}")
    return port


def check_addr(addr: object, source: str) -> str:
    if not isinstance(addr, str) or not addr.strip():
        raise TypeError(f"{source} must be a host name or IP address such as '127.0.0.1' or '::', got {addr!r}")
    return addr.strip()


class ListenAddress(NamedTuple):
    """Where to listen, and whether somebody chose the port."""

    host: str
    port: int
    port_chosen: bool
    """False for the default port: when it is taken, a free one is used instead (an explicit one fails loudly)."""


def listen_address(addr: str | None, port: int | None) -> ListenAddress:
    """What the plugin was given, else the environment's, else 127.0.0.1 and port 9464 (not chosen)."""
    if addr is None:
        addr = check_addr(os.environ[ADDR_ENV], ADDR_ENV) if os.environ.get(ADDR_ENV) else DEFAULT_ADDR
    chosen = port is not None or bool(os.environ.get(PORT_ENV))
    if port is None:
        port = port_from_text(os.environ[PORT_ENV], PORT_ENV) if os.environ.get(PORT_ENV) else DEFAULT_PORT
    return ListenAddress(addr, port, chosen)
