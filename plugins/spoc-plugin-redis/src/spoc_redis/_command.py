"""``spoc redis``: see a stream's queue and fix its dead letters without redis-cli (added by an entry point).

Light on purpose: redis is imported once a subcommand runs (``spoc --help`` imports this module).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spoc.commands import Command

__all__ = ["command"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="redis_command", metavar="COMMAND", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=help)
        command.add_argument("stream", metavar="STREAM", help="the stream the workers read")
        command.add_argument("--json", action="store_true", help="print the figures as JSON")
        command.add_argument(
            "--redis-url", metavar="URL", help="where Redis is (default: SPOC_REDIS_URL, else redis://localhost:6379/0)"
        )
        command.add_argument(
            "--dead-letter-stream", metavar="NAME", help="the stream's dead letters (default: STREAM:dead)"
        )
        return command

    stats = add("stats", "show a stream's backlog, pending jobs, dead letters, and each consumer's share")
    stats.add_argument("--group", metavar="GROUP", help="only this consumer group (default: every group)")
    dead = add("dead", "list a stream's dead letters with their error; move them back, or drop them")
    action = dead.add_mutually_exclusive_group()
    action.add_argument(
        "--requeue",
        nargs="+",
        metavar="ID",
        help="move these dead letters (ids, or `all`) back to the stream as new jobs, with their own fields",
    )
    action.add_argument("--drop", nargs="+", metavar="ID", help="delete these dead letters")


def _run(args: argparse.Namespace) -> int:
    import redis

    from ._queue import QueueError, dead_letters, drop, requeue, stats
    from ._settings import redis_url_or_default

    url = redis_url_or_default(args.redis_url)
    dead_stream = args.dead_letter_stream or f"{args.stream}:dead"
    name = f"spoc redis {args.redis_command}"
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5.0, socket_timeout=30.0)
    try:
        if args.redis_command == "stats":
            figures = stats(client, args.stream, dead_stream, args.group)
            print(json.dumps(figures, indent=2) if args.json else _stats_text(figures))
            return 0
        if args.requeue or args.drop:
            done = (requeue if args.requeue else drop)(client, args.stream, dead_stream, args.requeue or args.drop)
            verb = "requeued" if args.requeue else "dropped"
            gone = [dead_id for dead_id, now in done.items() if now is None]
            if args.json:
                print(json.dumps({verb: {k: v for k, v in done.items() if v is not None}, "gone": gone}, indent=2))
            else:
                for dead_id, now in done.items():
                    if now is not None:
                        print(f"{verb} {dead_id}" + (f" as job {now}" if args.requeue else ""))
            if gone:
                print(f"{name}: {', '.join(gone)} left {dead_stream!r} meanwhile (someone else)", file=sys.stderr)
                return 1
            return 0
        letters = dead_letters(client, dead_stream)
        print(json.dumps(letters, indent=2) if args.json else _dead_text(dead_stream, letters))
        return 0
    except QueueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"{name}: Redis at {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _stats_text(figures: dict[str, Any]) -> str:
    lines = [f"stream {figures['stream']!r}: {figures['length']} entries, {figures['dead_letters']} dead letters"]
    if not figures["groups"]:
        lines.append("  no consumer group")
    for group in figures["groups"]:
        oldest = group["oldest_pending_seconds"]
        lines.append(
            f"  group {group['group']!r}: backlog {group['backlog']}, pending {group['pending']}"
            + (f" (oldest {oldest:.1f}s)" if oldest is not None else "")
        )
        for consumer in group["consumers"]:
            lines.append(f"    {consumer['name']}: pending {consumer['pending']}, idle {consumer['idle_seconds']:.1f}s")
    return "\n".join(lines)


def _dead_text(stream: str, letters: list[dict[str, Any]]) -> str:
    if not letters:
        return f"no dead letters in {stream!r}"
    lines = []
    for letter in letters:
        fields = ", ".join(f"{key}={value!r}" for key, value in letter["fields"].items())
        lines.append(
            f"{letter['id']}  job {letter['job']} after {letter['deliveries']} deliveries: "
            f"{letter['error_type']}: {letter['error']}\n    {fields}"
        )
    return "\n".join(lines)


command = Command(
    help="see a Redis stream's queue (stats) and fix its dead letters (dead)",
    run=_run,
    add_arguments=_add_arguments,
    description=(
        "See a Redis stream's backlog, pending jobs and dead letters (spoc-plugin-redis), and move dead "
        "letters back to the stream or drop them. Exits 1 with the reason when something could not be done."
    ),
)
