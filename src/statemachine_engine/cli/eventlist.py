"""`statemachine-cli list-events`, and how `history` names a redelivered event: where each
event stands (pending, handling, processed, unhandled, failed), how many runs it was handed
to, and why it was handed again (DESIGN §13.5)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from statemachine_engine.cli.common import (
    add_json_flag,
    format_table,
    format_time,
    opened_store,
    positive_int,
    print_json,
)
from statemachine_engine.database.records import EVENT_STATUSES, MachineEvent, TransitionRecord

AddCommand = Callable[..., Any]
_HEADERS = ("id", "target", "event", "status", "deliveries", "source", "created", "note")


def event_label(record: TransitionRecord) -> str | None:
    """The event column of a history row: the event, with its id and delivery when the step
    took it again after a crash (`go #12, delivery 2`)."""
    if record.event_delivery is not None and record.event_delivery > 1:
        return f"{record.event} #{record.event_id}, delivery {record.event_delivery}"
    return record.event


def _row(e: MachineEvent) -> tuple[object, ...]:
    note = e.error_message or ""
    return (
        e.id,
        e.target_machine,
        e.event_type,
        e.status,
        e.deliveries,
        e.source_machine,
        format_time(e.created_at),
        note,
    )


def cmd_list_events(args: argparse.Namespace) -> int:
    """Events newest first; an event handed again after a crash says why in NOTE."""
    with opened_store(args.db) as store:
        events = store.list_events(target=args.target, status=args.status, limit=args.limit)
    if args.json:
        print_json([event.to_dict() for event in events])
        return 0
    print(format_table(_HEADERS, [_row(e) for e in events]) if events else "no events match")
    return 0


def add_event_commands(sub: Any, add_command: AddCommand) -> None:
    """Register `list-events` with the CLI's subcommand parser."""
    help_text = (
        "list events sent to machines, newest first: status (pending, handling, processed,"
        " unhandled, failed), deliveries, and why an event was delivered again"
    )
    p = add_command(sub, "list-events", cmd_list_events, help_text, "events")
    p.add_argument("--target", metavar="MACHINE", help="only events for this machine")
    p.add_argument("--status", choices=EVENT_STATUSES, help="only this status")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="last N (50)")
    add_json_flag(p)
