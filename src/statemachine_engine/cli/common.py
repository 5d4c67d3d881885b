"""Shared plumbing for the console scripts: one-line errors, JSON arguments, logging, tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import stat
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, NoReturn

from statemachine_engine import __version__
from statemachine_engine.core import logfields
from statemachine_engine.errors import StateMachineError, UsageError

if TYPE_CHECKING:
    from statemachine_engine.database.store import Store

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_ERROR_CHARS = 1000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become a UsageError instead of a usage dump and exit."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]
        raise UsageError(f"{command}: {message}" if command else message)


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error and exit code 2."""
    raise UsageError(message)


def one_line(text: str) -> str:
    """Collapse a message to a single bounded line."""
    flat = " ".join(text.split())
    if len(flat) > MAX_ERROR_CHARS:
        flat = flat[: MAX_ERROR_CHARS - 3] + "..."
    return flat or "unknown error"


def _report(prog: str, message: str) -> None:
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)


def run_cli(
    main_fn: Callable[[list[str]], int],
    argv: Sequence[str] | None = None,
    *,
    prog: str = "statemachine-cli",
) -> int:
    """Run `main_fn(argv)` and turn failures into one stderr line and an exit code.

    Bad input and every StateMachineError exit 2; an unexpected exception exits 1. The
    traceback is printed only when `--debug` is among the arguments.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return main_fn(args)
    except StateMachineError as exc:
        if debug:
            traceback.print_exc()
        _report(prog, str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _report(prog, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the flush at interpreter exit.
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (rerun with --debug for a traceback)"
        _report(prog, f"unexpected {type(exc).__name__}: {exc}{hint}")
        return EXIT_INTERNAL


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def require_regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Fail with one line when `path` exists but is not a regular file: opening a FIFO
    blocks until a writer comes (for ever), and a device such as /dev/zero never ends.
    A missing file is left to the reader, which names it in its own words."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode):
        return
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    fail(f"{os.fspath(path)}: {what} must be a regular file, but it is {kind}")


def read_bounded(source: str, what: str, limit: int) -> str:
    """The UTF-8 text of file `source` (`-` for stdin), read in chunks and refused as soon as
    it passes `limit` bytes, so /dev/zero or an endless pipe cannot exhaust memory."""
    chunks: list[bytes] = []
    size = 0
    try:
        if source == "-":
            stream: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
            if stream is None:  # a text stream put in place of stdin (tests, embedding)
                text: str = sys.stdin.read(limit + 1)
                if len(text.encode("utf-8")) > limit:
                    fail(f"{what} from stdin is more than the limit of {limit} bytes")
                return text
            handle, close = stream, False
        else:
            handle, close = open(source, "rb"), True  # noqa: SIM115 - closed below
        try:
            while chunk := handle.read(min(65536, limit + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    shown = "stdin" if source == "-" else source
                    fail(f"{what} from {shown} is more than the limit of {limit} bytes")
        finally:
            if close:
                handle.close()
        return b"".join(chunks).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        fail(f"cannot read {what} from {source or '(empty path)'}: {reason}")


def parse_json_arg(text: str, what: str) -> Any:
    """Parse a JSON command-line value; `@path` reads a file and `@-` reads stdin.

    Any JSON value is accepted (object, list, string, number, true/false, null). Invalid
    input raises UsageError with one line naming `what`.
    """
    if text.startswith("@"):
        from statemachine_engine.database.store import MAX_PAYLOAD_BYTES

        text = read_bounded(text[1:], what, MAX_PAYLOAD_BYTES)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        fail(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            f' (example: {what} \'{{"key": "value"}}\')'
        )
    except RecursionError:
        fail(f"{what} is nested too deeply")
    except ValueError as exc:
        fail(f"{what} is not valid JSON: {exc}")


def _type_error(expected: str, text: str) -> argparse.ArgumentTypeError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return argparse.ArgumentTypeError(f"expected {expected}, got {shown!r}")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise _type_error("a positive integer", text) from None
    if value < 1:
        raise _type_error("a positive integer", text)
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise _type_error("a non-negative integer", text) from None
    if value < 0:
        raise _type_error("a non-negative integer", text)
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise _type_error("a non-negative number", text) from None
    if not math.isfinite(value) or value < 0:
        raise _type_error("a non-negative number", text)
    return value


def non_empty(text: str) -> str:
    """argparse type: a string that is not empty or blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def job_id_arg(text: str) -> str:
    """argparse type: a job id following the name rule (see `statemachine_engine.names`)."""
    return _rule_name(text, "job id")


def event_name_arg(text: str) -> str:
    """argparse type: an event name following the name rule."""
    return _rule_name(text, "event name")


def _rule_name(text: str, what: str) -> str:
    from statemachine_engine.names import name_problem, shown

    problem = name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"invalid {what} {shown(text)}: {problem}")
    return text


def point_in_time(text: str) -> float:
    """argparse type: epoch seconds, or an ISO 8601 time (UTC unless it names a zone)."""
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            raise _type_error("an ISO 8601 time or epoch seconds", text) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = parsed.timestamp()
    if not math.isfinite(value) or value < 0:
        raise _type_error("an ISO 8601 time or epoch seconds", text)
    return value


def add_db_argument(parser: argparse.ArgumentParser, *, suppress_default: bool = False) -> None:
    """`--db URL`; the value None means `default_url()` (STATEMACHINE_DB or ./data)."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS if suppress_default else None,
        help="database URL (default: $STATEMACHINE_DB or sqlite:///./data/statemachine.db)",
    )


def add_actions_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--actions-dir DIR` (repeatable), for commands that load machine definitions."""
    parser.add_argument(
        "--actions-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="directory of custom actions (repeatable; default: ./actions and "
        "<config dir>/actions)",
    )


def add_logging_arguments(
    parser: argparse.ArgumentParser, *, suppress_default: bool = False, level: str = "WARNING"
) -> None:
    """`--debug`, `--log-level LEVEL` (default `level`) and `--log-json`."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress_default else value

    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="print a traceback when a command fails",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        default=default(level),
        help=f"log level: DEBUG, INFO, WARNING, ERROR or CRITICAL (default {level})",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=default(False),
        help="write log records to stderr as one JSON object per line",
    )


def add_payload_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """`--payload JSON` with `--data JSON` as its alias (the released package's spelling)."""
    group = parser.add_mutually_exclusive_group()
    hint = "any JSON value; @FILE reads a file, @- stdin"
    group.add_argument("--payload", metavar="JSON", help=f"{what} ({hint})")
    group.add_argument("--data", metavar="JSON", help="same as --payload")


def payload_from_args(args: argparse.Namespace) -> Any:
    """The parsed `--payload`/`--data` value; None when neither was given."""
    if args.payload is not None:
        return parse_json_arg(args.payload, "--payload")
    if args.data is not None:
        return parse_json_arg(args.data, "--data")
    return None


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """`--version`: print `statemachine-engine X.Y.Z` and exit 0, before any required
    argument is checked, so it works without a machine or system file."""
    parser.add_argument("--version", action="version", version=f"statemachine-engine {__version__}")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """`--json`: machine-readable output."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def global_options_parent() -> CliParser:
    """A parent parser repeating the global options on a subcommand, so they are accepted
    after the command name too; unset values do not override the top-level defaults."""
    parent = CliParser(add_help=False)
    add_db_argument(parent, suppress_default=True)
    add_logging_arguments(parent, suppress_default=True)
    return parent


@contextlib.contextmanager
def opened_store(url: str | None, *, create: bool = False) -> Iterator[Store]:
    """Open the store `url` names (None: `default_url()`) and close it afterwards.

    Commands that only read, or change rows that must already exist, never create a
    database: a missing SQLite file fails with one line. Commands that add rows pass
    create=True and say on stderr when they created the file."""
    from statemachine_engine.database.connect import default_url, open_store

    store = open_store(url or default_url(), create=create)
    if getattr(store, "created", False):
        print(f"created a new database at {getattr(store, 'path', store.url)}", file=sys.stderr)
    try:
        yield store
    finally:
        store.close()


_RECORD_ATTRS = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields of the machine
    running in the logging context (core/logfields.py) and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(logfields.current())
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


@contextlib.contextmanager
def logging_configured(level: str, *, json_lines: bool = False) -> Iterator[None]:
    """Send log records at `level` and above to stderr; undo it on exit (in-process runs)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def format_time(ts: float | None) -> str:
    """Epoch seconds as local `YYYY-MM-DD HH:MM:SS`; '-' for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: object) -> str:
    """A table cell: '-' for None, compact JSON for containers, str() otherwise."""
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, header first."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in texts:
        lines.append("  ".join(t.ljust(w) for t, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def print_json(value: object) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
