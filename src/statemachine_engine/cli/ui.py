"""`statemachine-ui`: serve the monitoring page, REST API and WebSocket stream."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Iterator
from typing import Any

from statemachine_engine.cli.common import (
    CliParser,
    add_db_argument,
    add_logging_arguments,
    add_version_argument,
    fail,
    logging_configured,
    run_cli,
)
from statemachine_engine.cli.released_tools import UI_IGNORED, add_ignored_options, note_ignored

PROG = "statemachine-ui"
TOKEN_ENV = "STATEMACHINE_UI_TOKEN"  # noqa: S105 - a variable name
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3001
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG, description="Live monitoring web UI: machines, diagrams, jobs and events."
    )
    add_version_argument(parser)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 3001)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"access token every request must present (default ${TOKEN_ENV}); "
        "required when binding to anything but loopback",
    )
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    add_db_argument(parser)
    add_logging_arguments(parser)
    add_ignored_options(parser, UI_IGNORED)
    return parser


def is_loopback_host(host: str) -> bool:
    """Whether binding to `host` keeps the UI on this machine (loopback literals, localhost)."""
    from statemachine_engine.monitoring.security import is_loopback_name

    return is_loopback_name(host.lower())


def check_port_free(host: str, port: int) -> None:
    """Fail with one line when the port is taken (uvicorn would log a traceback-ish error)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is already in use; pick another with --port")
            fail(f"cannot bind {host}:{port}: {exc.strerror or exc}")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    note_ignored(args, UI_IGNORED)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not 0 < args.port < 65536:
        fail(f"--port must be 1-65535, got {args.port}")
    if token is not None and not _TOKEN_RE.fullmatch(token):
        fail("the token must be 16-256 characters from A-Z a-z 0-9 . _ ~ -")
    if not is_loopback_host(args.host) and token is None:
        fail(f"binding to {args.host} needs --token (or ${TOKEN_ENV}); the UI can change jobs")
    import uvicorn

    from statemachine_engine.database.connect import check_backend
    from statemachine_engine.monitoring import UiConfig, create_app

    check_backend(args.db)
    check_port_free(args.host, args.port)
    app = create_app(UiConfig(db_url=args.db, host=args.host, token=token))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    with logging_configured(args.log_level, json_lines=args.log_json):
        print(f"{PROG}: serving {url}", file=sys.stderr, flush=True)
        if args.open:
            webbrowser.open(url + (f"?token={token}" if token else ""))
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level.lower() if args.log_level else "warning",
            ws_max_size=64 * 1024,
            ws="websockets-sansio",
            lifespan="on",
            access_log=False,
        )
        server = _Server(config)
        server.run()
        if not server.started:
            fail(f"could not serve {url}; see the log above")
    return 0


class _Server:
    """uvicorn's server, except that SIGTERM/SIGINT end it with exit code 0 after a graceful
    shutdown (uvicorn re-raises the signal, which makes supervisors report a failure)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                sigs = (signal.SIGINT, signal.SIGTERM)
                previous = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
                try:
                    yield
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)

        return Server(config)


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
