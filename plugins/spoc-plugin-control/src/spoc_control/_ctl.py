"""``spoc ctl``: the operator's side of the control socket (added to the ``spoc`` command by an entry point).

Light on purpose: it imports nothing of spoc's server (``spoc ctl status``
answers within 100 ms, a Python start included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from spoc.commands import Command

from ._client import ClientError, ask, choose, running_servers
from ._table import server_table, status_table

__all__ = ["command"]

WAITING_COMMANDS = ("restart", "stop", "start", "scale", "reload")
"""The commands that wait until what they asked is done (unless ``--no-wait``)."""
_ANSWER_TIMEOUT = 10.0
"""Seconds a request that does not wait for anything gets for its answer."""


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s",
        "--server",
        metavar="SERVER",
        help="the server's name, pid or socket path (needed when several servers run)",
    )
    sub = parser.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)

    def add(name: str, help: str, workers: str | None = None, wait: bool = False) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=help)
        command.add_argument("--json", action="store_true", help="print the server's reply as JSON")
        command.add_argument("-s", "--server", default=argparse.SUPPRESS, help="as before the command")
        if workers == "some":
            command.add_argument(
                "workers",
                nargs="+",
                metavar="WORKER",
                help="a worker's name (a replicated worker's name stands for all its replicas)",
            )
        elif workers == "any":
            command.add_argument("workers", nargs="*", metavar="WORKER", help="a worker's name (default: all)")
        if wait:
            command.add_argument("--no-wait", dest="wait", action="store_false", help="return once asked")
            command.add_argument(
                "--timeout",
                type=float,
                default=60.0,
                metavar="SECONDS",
                help="how long to wait before giving up (default: 60)",
            )
        return command

    add("ls", "list the running servers of this uid: name, pid, uptime, workers, socket")
    add("status", "show each worker: state, pid, uptime, restarts, last exit, memory, CPU", "any")
    add("restart", "replace workers gracefully by fresh instances (start ended ones)", "some", wait=True)
    add("stop", "stop workers gracefully; they stay stopped until `start`", "some", wait=True)
    add("start", "start stopped or given-up workers again", "some", wait=True)
    scale = add("scale", "run N replicas of a worker", wait=True)
    scale.add_argument("worker", metavar="NAME", help="the name the worker was added with")
    scale.add_argument("count", type=int, metavar="N", help="how many replicas (0 or more)")
    add("reload", "replace every worker by a fresh instance, one after another (as SIGHUP)", wait=True)
    add("stacks", "print where workers' Python code is (also logged by the server)", "any")


def _run(args: argparse.Namespace) -> int:
    name = args.ctl_command
    try:
        if name == "ls":
            return _ls(args)
        request: dict[str, Any] = {"command": name}
        if hasattr(args, "workers"):
            request["workers"] = args.workers
        if name == "scale":
            request.update(worker=args.worker, count=args.count)
        timeout = _ANSWER_TIMEOUT
        if name in WAITING_COMMANDS:
            if not args.timeout > 0:
                print(f"spoc ctl {name}: --timeout takes seconds > 0, got {args.timeout:g}", file=sys.stderr)
                return 2
            request.update(wait=args.wait, timeout=args.timeout)
            timeout = args.timeout + _ANSWER_TIMEOUT
        reply = ask(choose(args.server), request, timeout)
    except ClientError as exc:
        print(f"spoc ctl {name}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2))
    if not reply.get("ok"):
        print(f"spoc ctl {name}: {reply.get('error', 'the server said no, without a reason')}", file=sys.stderr)
        return 1
    if not args.json:
        _show(name, reply)
    return 0


def _ls(args: argparse.Namespace) -> int:
    rows = []
    for found in running_servers():
        try:
            info = ask(found.path, {"command": "info"}, _ANSWER_TIMEOUT)
        except ClientError as exc:
            info = {"server": found.name, "pid": found.pid, "socket": str(found.path), "error": str(exc)}
        info.pop("ok", None)
        rows.append(info)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(server_table(rows, time.time()))
    else:
        print("No spoc server of this uid is running.")
    return 0


def _show(name: str, reply: dict[str, Any]) -> None:
    if name in ("status", "restart", "stop", "start"):
        print(status_table(reply.get("workers", []), time.time(), sys.stdout.isatty()))
    elif name == "stacks":
        for entry in reply.get("stacks", []):
            head = f"worker {entry['name']!r} ({entry['state']}, pid {entry['pid']})"
            stack = entry.get("stack")
            print(f"--- {head}\n{stack.rstrip() if stack else '  <no stack: it is not running, or did not answer>'}")
    elif name == "scale":
        print(f"worker {reply['worker']!r}: {reply['count']} replicas")
    elif name == "reload":
        print(f"server {reply['server']!r}: reloaded")


command = Command(
    help="operate running servers: ls, status, restart, stop, start, scale, reload, stacks",
    run=_run,
    add_arguments=_add_arguments,
    description=(
        "Operate the running spoc servers of this uid through their control sockets (spoc-plugin-control). "
        "Each command that changes something waits until it is done (or --no-wait), and exits 1 with the "
        "reason when it could not be done."
    ),
)
