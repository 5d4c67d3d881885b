"""`statemachine-cli` (also `statemachine-db`): jobs, events, machine status and history."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from statemachine_engine.cli.bulk import cmd_add_jobs
from statemachine_engine.cli.common import (
    CliParser,
    add_db_argument,
    add_json_flag,
    add_logging_arguments,
    add_payload_arguments,
    add_version_argument,
    cell,
    event_name_arg,
    fail,
    format_table,
    format_time,
    global_options_parent,
    job_id_arg,
    logging_configured,
    non_empty,
    non_negative_float,
    non_negative_int,
    opened_store,
    payload_from_args,
    point_in_time,
    positive_int,
    print_json,
    run_cli,
)
from statemachine_engine.cli.endjob import add_operator_commands, why_resettable
from statemachine_engine.cli.eventlist import add_event_commands, cmd_list_events, event_label
from statemachine_engine.cli.maintenance import add_maintenance_commands
from statemachine_engine.cli.released import (
    REMOVED,
    add_format_option,
    add_released_commands,
    apply_released_options,
    print_notes,
    v1_machine,
    v1_transition,
    with_input_file,
)
from statemachine_engine.cli.schedule import add_schedule_commands
from statemachine_engine.database.liveness import process_alive
from statemachine_engine.database.records import (
    JOB_STATUSES,
    Job,
    MachineStatus,
    TransitionRecord,
)
from statemachine_engine.database.store import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, Store
from statemachine_engine.errors import DuplicateJobError

log = logging.getLogger(__name__)

PROG_NAMES = ("statemachine-cli", "statemachine-db")
_PAGE = 500

Handler = Callable[[argparse.Namespace], int]


def cmd_add_job(args: argparse.Namespace) -> int:
    """Enqueue one job; an existing id is an error unless --if-absent."""
    data = payload_from_args(args)
    if args.input_file is not None:
        data = with_input_file(data, args.input_file)
    run_after = args.run_after
    if args.run_after is not None and args.delay:
        fail("give either --delay or --run-after, not both")
    with opened_store(args.db, create=True) as store:
        if args.delay:
            run_after = time.time() + args.delay  # from now, not from before the store opened
        try:
            job = store.add_job(
                args.job_type,
                data,
                job_id=args.job_id,
                machine_type=args.machine_type,
                priority=args.priority,
                max_attempts=args.max_attempts,
                run_after=run_after,
            )
            created = True
        except DuplicateJobError:
            if not args.if_absent:
                fail(
                    f"job {args.job_id!r} already exists (use --if-absent to accept an "
                    "existing job, or choose another id)"
                )
            existing = store.get_job(args.job_id)
            if existing is None:
                fail(f"job {args.job_id!r} existed a moment ago but is gone now; try again")
            job, created = existing, False
    if args.json:
        print_json({**job.to_dict(), "created": created})
        return 0
    print(job.job_id)
    if not created:
        print(f"job {job.job_id!r} already exists ({job.status}); left unchanged", file=sys.stderr)
    return 0


def _job_row(j: Job) -> tuple[object, ...]:
    attempts = f"{j.attempts}/{j.max_attempts}"
    return (j.job_id, j.job_type, j.status, j.priority, attempts, format_time(j.created_at))


def cmd_list_jobs(args: argparse.Namespace) -> int:
    """Jobs newest first, with a counts-by-status footer."""
    with opened_store(args.db) as store:
        jobs = store.list_jobs(
            status=args.status, job_type=args.job_type, limit=args.limit, offset=args.offset
        )
        counts = store.count_jobs(job_type=args.job_type)
    if args.json:
        print_json([job.to_dict() for job in jobs])
        return 0
    headers = ("id", "type", "status", "priority", "attempts", "created")
    print(format_table(headers, [_job_row(j) for j in jobs]) if jobs else "no jobs match")
    of_type = f" of type {args.job_type!r}" if args.job_type else ""
    by_status = ", ".join(f"{status} {n}" for status, n in counts.items())
    print(f"{len(jobs)} shown; {sum(counts.values())} jobs{of_type}: {by_status}")
    return 0


_TIME_FIELDS = frozenset({"created_at", "started_at", "completed_at", "lease_expires_at"})


def cmd_show_job(args: argparse.Namespace) -> int:
    """Every field of one job."""
    with opened_store(args.db) as store:
        job = store.get_job(args.job_id)
    if job is None:
        fail(f"no job {args.job_id!r}")
    fields = job.to_dict()
    if args.json:
        print_json(fields)
        return 0
    fields["run_after"] = job.run_after if job.run_after > job.created_at else None
    width = max(len(key) for key in fields) + 2
    for key, value in fields.items():
        text = format_time(value) if key in _TIME_FIELDS or key == "run_after" else cell(value)
        print(f"{key + ':':<{width}}{text}")
    return 0


def cmd_retry_job(args: argparse.Namespace) -> int:
    """Put a failed or cancelled job back in the queue with its attempts reset."""
    with opened_store(args.db) as store:
        job = store.retry_job(args.job_id)
    print(f"job {job.job_id!r} is pending again (attempts reset to 0 of {job.max_attempts})")
    return 0


def cmd_cancel_job(args: argparse.Namespace) -> int:
    """Cancel a pending job."""
    with opened_store(args.db) as store:
        job = store.cancel_job(args.job_id)
    print(f"job {job.job_id!r} cancelled")
    return 0


def cmd_send_event(args: argparse.Namespace) -> int:
    """Store an event for one or more machines (one transaction), then ring each that runs."""
    from statemachine_engine.database.records import OutgoingEvent
    from statemachine_engine.database.wakeups import ListeningStore
    from statemachine_engine.transport import ring
    from statemachine_engine.transport.runtime_dir import validate_machine_name

    targets = list(dict.fromkeys(args.target))
    for target in targets:
        validate_machine_name(target)
    payload = payload_from_args(args)
    outgoing = [OutgoingEvent(t, args.event_type, payload, args.job_id) for t in targets]
    with opened_store(args.db, create=True) as store:
        events = store.send_events(outgoing, source=args.source)
        notified = isinstance(store, ListeningStore)  # NOTIFY reached machines on any host
    results = []
    for event in events:
        try:
            woken = ring(event.target_machine, {"kind": "event"})
        except Exception as exc:
            log.warning("could not ring machine=%s: %s", event.target_machine, exc)
            woken = False
        results.append({**event.to_dict(), "woken": woken})
    if args.json:
        print_json(results[0] if len(results) == 1 else results)
        return 0
    for result in results:
        sent = f"event {result['id']} ({args.event_type})"
        target = result["target_machine"]
        if result["woken"]:
            print(f"{sent} sent to {target!r}; machine woken")
        elif notified:
            print(
                f"{sent} sent to {target!r}; notified on every host, and if it is not running"
                " it receives the event when it starts"
            )
        else:
            print(
                f"{sent} stored for {target!r}; it is not running and will receive the event"
                " when it starts"
            )
    return 0


def _alive(machine: MachineStatus) -> bool | None:
    """Whether a machine marked running still has a process; None when we cannot tell."""
    if machine.status != "running":
        return None
    return process_alive(machine.pid, machine.pid_start, machine.hostname)


def _machine_row(m: MachineStatus, alive: bool | None) -> tuple[object, ...]:
    status = "stale" if alive is False else m.status
    since = format_time(m.state_entered_at)
    return (m.machine_name, m.current_state, status, m.pid, since, m.current_job_id)


def cmd_machine_status(args: argparse.Namespace) -> int:
    """Where each machine is and whether its process runs."""
    with opened_store(args.db) as store:
        if args.name:
            found = store.get_machine(args.name)
            if found is None:
                fail(f"no machine {args.name!r} has run against this database")
            machines = [found]
        else:
            machines = store.list_machines()
    alive = [_alive(m) for m in machines]
    if args.json:
        rows = [{**m.to_dict(), "alive": a} for m, a in zip(machines, alive, strict=True)]
        if getattr(args, "v1_keys", False):
            rows = [v1_machine(row) for row in rows]
        print_json(rows[0] if args.name else rows)
        return 0
    if not machines:
        print("no machines have run against this database yet")
        return 0
    table = [_machine_row(m, a) for m, a in zip(machines, alive, strict=True)]
    print(format_table(("name", "state", "status", "pid", "since", "job"), table))
    if False in alive:
        print("stale: recorded as running, but its process is gone (killed or crashed)")
    return 0


def _transition_row(r: TransitionRecord) -> tuple[object, ...]:
    when = format_time(r.created_at)
    return (when, r.machine_name, r.step, r.from_state, r.to_state, event_label(r), r.job_id)


def cmd_history(args: argparse.Namespace) -> int:
    """The most recent transitions, oldest first."""
    with opened_store(args.db) as store:
        records = store.history(machine=args.machine, limit=args.limit)
    if args.hours:
        since = time.time() - args.hours * 3600
        records = [r for r in records if r.created_at >= since]
    records.reverse()
    if args.json:
        found = [r.to_dict() for r in records]
        v1 = getattr(args, "v1_keys", False)
        print_json([v1_transition(r) for r in found] if v1 else found)
        return 0
    if not records:
        print("no transitions recorded")
        return 0
    rows = [_transition_row(r) for r in records]
    print(format_table(("time", "machine", "step", "from", "to", "event", "job"), rows))
    return 0


def _processing_jobs(store: Store, job_type: str | None) -> list[Job]:
    found: list[Job] = []
    while True:
        page = store.list_jobs(
            status="processing", job_type=job_type, limit=_PAGE, offset=len(found)
        )
        found.extend(page)
        if len(page) < _PAGE:
            return found


def cmd_reset_processing(args: argparse.Namespace) -> int:
    """Return processing jobs whose lease expired or whose worker is gone to pending without
    counting the attempt; with --force also jobs of live workers, counting the attempt as
    failed with "reset by operator" (so a second run never shares an attempt number)."""
    released: list[Job] = []
    forced: list[tuple[Job, str | None]] = []
    kept: list[Job] = []
    with opened_store(args.db) as store:
        now = time.time()
        for job in _processing_jobs(store, args.job_type):
            owner = job.lease_owner or ""
            if why_resettable(store, job, now) is not None:
                if store.release_job(job.job_id, owner):
                    released.append(job)
            elif args.force:
                status = store.fail_job(job.job_id, owner, "reset by operator", retry_delay=0)
                if status is not None:
                    forced.append((job, status))
            else:
                kept.append(job)
    of_type = f" of type {args.job_type!r}" if args.job_type else ""
    print(f"released {len(released)} processing job(s){of_type} back to pending")
    for job, status in forced:
        print(f"job {job.job_id!r} taken from {job.lease_owner} (reset by operator): {status}")
    for job in kept:
        until = format_time(job.lease_expires_at)
        print(
            f"job {job.job_id!r} left alone: {job.lease_owner} is alive and its lease runs"
            f" until {until} (--force takes it anyway)",
            file=sys.stderr,
        )
    return 0


def cmd_mark_stopped(args: argparse.Namespace) -> int:
    """Record a machine as stopped whose process is gone but whose row says running (a host
    that died, a killed container), so the name can start again."""
    with opened_store(args.db) as store:
        machine = store.get_machine(args.name)
        if machine is None:
            fail(f"no machine {args.name!r} has run against this database")
        if machine.status != "running":
            print(f"machine {args.name!r} is already recorded as {machine.status}")
            return 0
        if process_alive(machine.pid, machine.pid_start, machine.hostname):
            fail(
                f"machine {args.name!r} is running (pid {machine.pid} on this host);"
                " stop it instead (SIGTERM)"
            )
        store.machine_stopped(args.name, "stopped", time.time())
    where = f"pid {machine.pid} on host {machine.hostname}"
    print(f"machine {args.name!r} ({where}) is now recorded as stopped")
    return 0


_COMMON = global_options_parent()


def _add_command(sub: Any, name: str, handler: Handler, help_text: str, *aliases: str) -> CliParser:
    parser: CliParser = sub.add_parser(
        name, help=help_text, description=help_text, aliases=list(aliases), parents=[_COMMON]
    )
    parser.set_defaults(handler=handler)
    return parser


def _add_type_filter(parser: CliParser) -> None:
    parser.add_argument(
        "--type", "--job-type", dest="job_type", type=non_empty, metavar="T", help="only type T"
    )


def _add_job_commands(sub: Any) -> None:
    p = _add_command(sub, "add-job", cmd_add_job, "enqueue a job")
    arg = p.add_argument
    arg("job_id", nargs="?", type=job_id_arg, metavar="JOB_ID", help="job id (default: generated)")
    arg(
        "--type",
        "--job-type",
        dest="job_type",
        required=True,
        type=non_empty,
        metavar="T",
        help="job type: machines claim jobs by type",
    )
    arg("--machine-type", type=non_empty, metavar="M", help="only machines of type M claim it")
    add_payload_arguments(p, "job data")
    arg(
        "--input-file",
        type=non_empty,
        metavar="PATH",
        help="add the absolute path of this existing file to the job data as input_file_path"
        " (the data must then be a JSON object; add-jobs reads jobs from a file)",
    )
    arg(
        "--priority",
        type=non_negative_int,
        default=DEFAULT_PRIORITY,
        metavar="N",
        help="lower runs first; 1 is highest (default %(default)s)",
    )
    arg(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="attempts before the job fails for good (default %(default)s)",
    )
    arg(
        "--delay",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="do not run it before SECONDS from now",
    )
    arg(
        "--run-after",
        type=point_in_time,
        metavar="TIME",
        help="do not run it before TIME (ISO 8601, e.g. 2026-01-31T08:00:00Z, or epoch seconds)",
    )
    arg(
        "--if-absent",
        action="store_true",
        help="if a job with this id exists, leave it unchanged and exit 0",
    )
    add_json_flag(p)

    p = _add_command(
        sub, "add-jobs", cmd_add_jobs, "enqueue the jobs of a JSON Lines file in one transaction"
    )
    arg = p.add_argument
    arg("--input-file", "-i", required=True, metavar="FILE", help="JSON Lines, - for stdin")
    arg(
        "--type",
        "--job-type",
        dest="job_type",
        type=non_empty,
        metavar="T",
        help="job type of lines that give none",
    )
    arg("--machine-type", type=non_empty, metavar="M", help="machine type of lines that give none")
    arg(
        "--priority",
        type=non_negative_int,
        default=DEFAULT_PRIORITY,
        metavar="N",
        help="priority of lines that give none (default %(default)s)",
    )
    arg(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="attempts of lines that give none (default %(default)s)",
    )
    arg(
        "--delay",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="delay of lines that give neither delay nor run_after",
    )
    arg("--if-absent", action="store_true", help="skip jobs whose id exists (exit 0)")
    add_json_flag(p)

    p = _add_command(sub, "list-jobs", cmd_list_jobs, "list jobs, newest first", "list")
    p.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this status")
    _add_type_filter(p)
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N (50)")
    p.add_argument("--offset", type=non_negative_int, default=0, metavar="N", help="skip N")
    add_json_flag(p)

    p = _add_command(sub, "show-job", cmd_show_job, "show every field of a job")
    p.add_argument("job_id", metavar="JOB_ID")
    add_json_flag(p)
    add_operator_commands(sub, _add_command)

    help_text = "requeue a failed or cancelled job with its attempts reset"
    p = _add_command(sub, "retry-job", cmd_retry_job, help_text)
    p.add_argument("job_id", metavar="JOB_ID")

    p = _add_command(sub, "cancel-job", cmd_cancel_job, "cancel a pending job")
    p.add_argument("job_id", metavar="JOB_ID")

    help_text = (
        "return processing jobs whose lease expired or whose worker process is gone to pending"
    )
    p = _add_command(sub, "reset-processing", cmd_reset_processing, help_text)
    _add_type_filter(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="also take jobs from live workers with valid leases (the attempt counts as"
        " failed, 'reset by operator'; the old worker's result is then discarded)",
    )


def _add_machine_commands(sub: Any) -> None:
    help_text = "send an event to a machine (kept until it starts, if it is down)"
    p = _add_command(sub, "send-event", cmd_send_event, help_text)
    arg = p.add_argument
    arg(
        "--target",
        required=True,
        action="append",
        metavar="MACHINE",
        help="receiving machine; repeat for several (all stored in one transaction)",
    )
    arg(
        "--type",
        "--event-type",
        dest="event_type",
        required=True,
        type=event_name_arg,
        metavar="E",
        help="event name, e.g. start or cancel",
    )
    add_payload_arguments(p, "event payload")
    arg("--source", metavar="MACHINE", help="sender shown to the receiver")
    arg("--job-id", metavar="JOB_ID", help="job the event is about")
    add_json_flag(p)

    help_text = "show machines: state, running or stopped, pid, current job"
    p = _add_command(
        sub, "machine-status", cmd_machine_status, help_text, "status", "machine-state"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="only this machine")
    p.add_argument("--machine", dest="machine_flag", metavar="NAME", help="1.0 spelling of NAME")
    add_json_flag(p)
    add_format_option(p)

    help_text = (
        "record a machine as stopped whose process is gone but which the database shows"
        " running (e.g. its host died), so the name can start again"
    )
    p = _add_command(sub, "mark-stopped", cmd_mark_stopped, help_text)
    p.add_argument("name", metavar="NAME", help="machine name")

    help_text = "show recent state transitions, oldest first"
    p = _add_command(sub, "history", cmd_history, help_text, "transition-history")
    p.add_argument("--machine", metavar="NAME", help="only this machine")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="last N (50)")
    p.add_argument("--hours", type=positive_int, metavar="N", help="only the last N hours")
    add_json_flag(p)
    add_format_option(p)


def build_parser(prog: str = PROG_NAMES[0]) -> CliParser:
    """The argument parser; global options are accepted before or after the command."""
    description = "Manage the job queue, send events to machines and inspect them."
    parser = CliParser(prog=prog, description=description)
    add_version_argument(parser)
    add_db_argument(parser)
    add_logging_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    _add_job_commands(sub)
    _add_machine_commands(sub)
    add_event_commands(sub, _add_command)
    add_maintenance_commands(sub, _add_command)
    add_schedule_commands(sub, _add_command)
    add_released_commands(sub, _add_command, cmd_show_job, cmd_list_events)
    return parser


def _main(argv: list[str], prog: str) -> int:
    parser = build_parser(prog)
    args, extras = parser.parse_known_args(argv)
    if args.command in REMOVED:
        fail(f"{args.command} was removed in 2.0: {REMOVED[args.command]}")
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command is None:
        fail("missing command (add-job, list-jobs, send-event, ...; see --help for all)")
    apply_released_options(args)
    with logging_configured(args.log_level, json_lines=args.log_json):
        handler: Handler = args.handler
        code = handler(args)
    print_notes(args)
    return code


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (2 for bad input)."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    prog = name if name in PROG_NAMES else PROG_NAMES[0]
    return run_cli(lambda args: _main(args, prog), argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
