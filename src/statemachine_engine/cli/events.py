"""`statemachine-events`: tail the live event stream in the terminal (the released package's
command). It follows the stream the monitoring UI shows, read from the database by the UI's
own tailer (`monitoring.stream.Hub`), so no UI needs to run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import datetime
from typing import Any

from statemachine_engine.cli.common import (
    CliParser,
    add_db_argument,
    add_logging_arguments,
    add_version_argument,
    logging_configured,
    non_negative_float,
    opened_store,
    run_cli,
)
from statemachine_engine.cli.released import add_note, print_notes

PROG = "statemachine-events"
FORMATS = ("human", "json", "compact")


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Print the live event stream (state changes, jobs, events, errors, "
        "activity) as it happens, until interrupted.",
    )
    add_version_argument(parser)
    parser.add_argument("--machine", metavar="NAME", help="only events of this machine")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="human",
        help="human (default), json (one object per line) or compact",
    )
    parser.add_argument(
        "--duration",
        type=non_negative_float,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    add_db_argument(parser)
    add_logging_arguments(parser)
    return parser


def summary(event: dict[str, Any]) -> str:
    """What happened, in the words of the UI's event log."""
    p = event["payload"] if isinstance(event["payload"], dict) else {}
    kind = event["kind"]
    if kind == "state_change":
        job = f" (job {p['job_id']})" if p.get("job_id") else ""
        return f"{p.get('from_state') or '-'} --{p.get('event') or '?'}--> {p.get('to_state')}{job}"
    if kind == "job":
        error = f": {p['error']}" if p.get("error") else ""
        return f"job {p.get('job_id')} {p.get('status')}{error}"
    if kind == "event_sent":
        return f"{p.get('source') or 'cli'} -> {p.get('target')}: {p.get('event_type')}"
    if kind == "error":
        return f"error in {p.get('state')}: {p.get('error')}"
    if kind == "stuck":
        then = f"firing {p['event']}" if p.get("event") else "alert only"
        return f"stuck in {p.get('state')} for {p.get('seconds')} s (max_dwell): {then}"
    if kind == "activity":
        level = f"[{p['level']}] " if p.get("level") else ""
        return f"{level}{p.get('message')}"
    return f"{kind} {json.dumps(event['payload'], sort_keys=True)}"


def render(event: dict[str, Any], fmt: str) -> str:
    """One output line for a stream row: `human`, `compact` or `json` (with the 1.0 keys
    `type` and, for state changes, `payload.event_trigger`)."""
    machine = event["machine_name"] or "-"
    if fmt == "json":
        out = {**event, "type": event["kind"]}
        if event["kind"] == "state_change" and isinstance(event["payload"], dict):
            out["payload"] = {**event["payload"], "event_trigger": event["payload"].get("event")}
        return json.dumps(out)
    if fmt == "compact":
        p = event["payload"] if isinstance(event["payload"], dict) else {}
        if event["kind"] == "state_change":
            return f"{machine} -> {p.get('to_state')}"
        return f"{machine} {event['kind']}"
    at = datetime.fromtimestamp(event["created_at"]).strftime("%H:%M:%S.%f")[:-3]
    return f"[{at}] {machine}: {summary(event)}"


async def tail(url: str | None, machine: str | None, fmt: str, duration: float | None) -> None:
    """Print every stream row committed from now on, until `duration` seconds have passed."""
    from statemachine_engine.monitoring.db import Db
    from statemachine_engine.monitoring.stream import Hub

    db = Db(url, name="events-db")
    hub = Hub(db, doorbell_name=None)  # the UI keeps its doorbell; this tails at its fallback
    try:
        await hub.start()
        client = hub.subscribe()
        print(f"{PROG}: following {db.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        until = None if duration is None else loop.time() + duration
        while until is None or loop.time() < until:
            timeout = None if until is None else until - loop.time()
            try:
                message = await asyncio.wait_for(client.queue.get(), timeout)
            except TimeoutError:
                return
            if message["type"] == "overflow":
                print(f"{PROG}: some events were skipped (output too slow)", file=sys.stderr)
            for event in message.get("events", []) if message["type"] == "events" else []:
                if machine is None or event["machine_name"] == machine:
                    print(render(event, fmt), flush=True)
    finally:
        await hub.stop()
        db.close()


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.host is not None or args.port is not None:
        add_note(args, "--host/--port are ignored: the stream is read from the database (--db)")
    print_notes(args)
    with opened_store(args.db):  # a mistyped path fails here, and creates nothing
        pass
    logs = logging_configured(args.log_level, json_lines=args.log_json)
    with logs, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(args.db, args.machine, args.format, args.duration))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
