"""`statemachine-cli schedule add|list|pause|resume|remove`: schedules stored in the database,
fired by the running machine processes (docs/schedules.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from statemachine_engine.cli.common import (
    add_json_flag,
    add_payload_arguments,
    format_table,
    format_time,
    non_empty,
    opened_store,
    payload_from_args,
    print_json,
)
from statemachine_engine.database.schedules import Schedule, ScheduleSpec
from statemachine_engine.ticks import CATCH_UP, Timing, parse_every

AddCommand = Callable[..., Any]
_HEADERS = ("name", "when", "job type", "catch-up", "state", "next due", "last tick")


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    return schedule.to_dict()


def _row(s: Schedule) -> tuple[object, ...]:
    state = "paused" if s.paused else "active"
    due = "" if s.paused else format_time(s.next_due)
    spec = s.spec
    return (
        spec.name,
        spec.timing.describe(),
        spec.job_type,
        spec.catch_up,
        state,
        due,
        format_time(s.last_tick),
    )


def cmd_add(args: argparse.Namespace) -> int:
    every = None if args.every is None else parse_every(args.every)
    spec = ScheduleSpec(
        args.name,
        args.job_type,
        Timing(every, args.cron, args.timezone),
        payload_from_args(args),
        args.machine_type,
        args.catch_up,
    )
    with opened_store(args.db, create=True) as store:
        schedule = store.add_schedule(spec)
    _show(args, schedule, "added")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        schedules = store.list_schedules()
    if getattr(args, "json", False):
        print_json([schedule_dict(s) for s in schedules])
        return 0
    print(format_table(_HEADERS, [_row(s) for s in schedules]) if schedules else "no schedules")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        _show(args, store.pause_schedule(args.name), "paused")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        _show(args, store.resume_schedule(args.name), "resumed")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        store.remove_schedule(args.name)
    print(f"removed schedule {args.name}")
    return 0


def _show(args: argparse.Namespace, schedule: Schedule, verb: str) -> None:
    if getattr(args, "json", False):
        print_json(schedule_dict(schedule))
        return
    due = "" if schedule.paused else f", next tick {format_time(schedule.next_due)}"
    print(f"{verb} schedule {schedule.name} ({schedule.spec.timing.describe()}{due})")


def add_schedule_commands(sub: Any, add_command: AddCommand) -> None:
    """Register `schedule` and its actions with the CLI's subcommand parser."""
    help_text = "manage schedules: a job enqueued every interval or at cron times (default: list)"
    p = add_command(sub, "schedule", cmd_list, help_text)
    actions = p.add_subparsers(dest="schedule_command", metavar="ACTION", title="actions")

    help_text = "add a schedule; running machine processes enqueue one job per tick"
    p = add_command(actions, "add", cmd_add, help_text)
    arg = p.add_argument
    arg("name", metavar="NAME", help="schedule name (part of each tick's job id)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="N[smhd]", help="interval, e.g. 30s, 5m, 2h, 1d")
    when.add_argument("--cron", metavar="EXPR", help='cron expression, e.g. "*/5 * * * *"')
    arg(
        "--type",
        "--job-type",
        dest="job_type",
        required=True,
        type=non_empty,
        metavar="T",
        help="job type of the ticks' jobs",
    )
    add_payload_arguments(
        p, "job data, a JSON object (the tick is added as schedule, tick, tick_at)"
    )
    arg("--machine-type", metavar="M", help="only machines of this type claim the jobs")
    arg(
        "--catch-up",
        choices=CATCH_UP,
        default="latest",
        help="after downtime: enqueue no missed tick, the latest, or all (default %(default)s)",
    )
    arg("--timezone", default="UTC", metavar="TZ", help="time zone of --cron (default UTC)")
    add_json_flag(p)

    p = add_command(actions, "list", cmd_list, "list schedules: when, state, next due, last tick")
    add_json_flag(p)
    for name, handler, text in (
        ("pause", cmd_pause, "stop enqueueing ticks of a schedule"),
        ("resume", cmd_resume, "enqueue again from the next tick (ticks while paused are skipped)"),
        ("remove", cmd_remove, "delete a schedule (its jobs stay)"),
    ):
        p = add_command(actions, name, handler, text)
        p.add_argument("name", metavar="NAME", help="schedule name")
        if name != "remove":
            add_json_flag(p)
