"""`statemachine CONFIG --machine-name NAME`: run one machine as a long-lived process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from statemachine_engine.cli.common import (
    CliParser,
    add_actions_dir_argument,
    add_db_argument,
    add_logging_arguments,
    add_version_argument,
    fail,
    logging_configured,
    non_empty,
    non_negative_float,
    parse_json_arg,
    require_regular_file,
    run_cli,
)
from statemachine_engine.cli.released_tools import RUN_IGNORED, add_ignored_options, note_ignored

PROG = "statemachine"


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Run one state machine defined in YAML "
        "(`statemachine up SYSTEM.yaml` runs a whole system; `statemachine init [DIR]` writes"
        " a starter project).",
    )
    add_version_argument(parser)
    parser.add_argument("config", metavar="CONFIG", help="machine definition (YAML)")
    parser.add_argument(
        "--machine-name",
        type=non_empty,
        metavar="NAME",
        help="name of this machine (default: metadata.machine_name)",
    )
    add_db_argument(parser)
    add_actions_dir_argument(parser)
    parser.add_argument(
        "--initial-context",
        metavar="JSON",
        help="JSON object merged into the machine's context at start",
    )
    parser.add_argument(
        "--safety-interval",
        type=non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="slow re-check while parked, covering missed wake-ups (default 5)",
    )
    parser.add_argument(
        "--lease",
        type=non_negative_float,
        default=30.0,
        metavar="SECONDS",
        help="lease on a claimed job, renewed while the machine lives (default 30)",
    )
    parser.add_argument(
        "--heartbeat",
        type=non_negative_float,
        metavar="SECONDS",
        help="how often a held job's lease is renewed (default: a third of the lease)",
    )
    parser.add_argument(
        "--backoff-base",
        type=non_negative_float,
        default=1.0,
        metavar="SECONDS",
        help="retry delay after a failed attempt: base * 2^(attempt-1) (default 1)",
    )
    parser.add_argument(
        "--jitter",
        type=non_negative_float,
        default=0.1,
        metavar="FRACTION",
        help="spread each retry delay by a random factor in [1-j, 1+j] (default 0.1)",
    )
    # Set by start_fsm when it hands a job to the machine it starts (not for people).
    parser.add_argument("--hold-job", metavar="JOB_ID", help=argparse.SUPPRESS)
    parser.add_argument("--report-to", metavar="NAME", help=argparse.SUPPRESS)
    add_ignored_options(parser, RUN_IGNORED)
    add_logging_arguments(parser, level="INFO")
    return parser


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    note_ignored(args, RUN_IGNORED)
    from statemachine_engine.config import load_definition
    from statemachine_engine.core import ActionLoader, StateMachineEngine
    from statemachine_engine.core.loader import default_actions_dirs

    config = Path(args.config)
    require_regular_file(config, "a machine file")
    initial: dict[str, Any] = {}
    if args.initial_context:
        value = parse_json_arg(args.initial_context, "--initial-context")
        if not isinstance(value, dict):
            fail("--initial-context must be a JSON object")
        initial = value
    loader = ActionLoader(default_actions_dirs(args.actions_dir, config))
    definition = load_definition(config, loader, extra_context_keys=initial.keys())
    name = args.machine_name or definition.metadata.get("machine_name")
    if not name:
        fail(f"{config}: no --machine-name given and no metadata.machine_name in the file")
    if args.jitter >= 1:
        fail(f"--jitter must be a fraction below 1, got {args.jitter:g}")
    lease = args.lease or 30.0
    if args.heartbeat is not None and not 0 < args.heartbeat < lease:
        fail(f"--heartbeat must be above 0 and shorter than the lease ({lease:g} s)")
    with logging_configured(args.log_level, json_lines=args.log_json):
        engine = StateMachineEngine(
            definition,
            str(name),
            db_url=args.db,
            loader=loader,
            initial_context=initial,
            safety_interval=args.safety_interval or 5.0,
            lease_seconds=lease,
            heartbeat=args.heartbeat,
            backoff_base=args.backoff_base,
            jitter=args.jitter,
            hold_job=args.hold_job,
            tracebacks=args.debug,
            report_to=args.report_to,
        )
        return asyncio.run(_serve(engine))


#: After a stop signal, a machine still running this long exits without its cleanup, as
#: after a crash: the backstop for what no deadline reaches (an action that blocks the loop,
#: a database call on a network path that silently drops packets).
HARD_STOP_SECONDS = 5.0


async def _serve(engine: Any) -> int:
    # signal.signal, not loop.add_signal_handler: a Python-level handler runs even while the
    # loop is blocked in a store call (waiting for a lock or a reconnect), and stop_soon()
    # makes that call give up at the stop deadline, so SIGTERM acts within 2 s. The handler
    # only sets numbers and writes to pipes (no locks): it may interrupt any code.
    signalled, signal_pipe = os.pipe()
    os.set_blocking(signal_pipe, False)
    finished = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        engine.stop_soon()
        with contextlib.suppress(OSError):
            os.write(signal_pipe, b"s")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    threading.Thread(
        target=_hard_stop, args=(engine, signalled, finished), name="hard-stop", daemon=True
    ).start()
    try:
        code: int = await engine.run()
    finally:
        finished.set()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        os.close(signal_pipe)  # the watcher reads end-of-file and closes its end
    return code


def _hard_stop(engine: Any, signalled: int, finished: threading.Event) -> None:
    """Wait for a stop signal; exit the process if the machine has not ended
    HARD_STOP_SECONDS later (one WARNING; the held job's lease then expires)."""
    try:
        os.read(signalled, 1)
    finally:
        os.close(signalled)
    if finished.wait(HARD_STOP_SECONDS):
        return
    job = engine.runtime.job
    retry = f"; job {job.job_id} is retried when its lease expires, as after a crash" if job else ""
    logging.getLogger("statemachine_engine.core.engine").warning(
        "[%s] still stopping %g s after the signal (an action or a database call does not"
        " return): exiting without cleanup%s",
        engine.machine_name,
        HARD_STOP_SECONDS,
        retry,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(0)


#: `statemachine SUBCOMMAND ...`: the programs reached through the `statemachine` command
#: besides running one machine (a machine file is never named exactly like these).
SUBCOMMANDS = {
    "up": "statemachine_engine.cli.up",
    "init": "statemachine_engine.cli.init",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] and args[0] in SUBCOMMANDS:
        import importlib

        sub_main: Any = importlib.import_module(SUBCOMMANDS[args[0]]).main
        return int(sub_main(args[1:]))
    return run_cli(_main, args, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
