"""`make demo`: the generator → processor → analyzer pipeline, on real processes.

Starts the three machines with the `statemachine` command, enqueues jobs with
`statemachine-cli add-job`, shows progress until every item has passed all three stages,
prints a summary with the commands to inspect the results, then stops the machines with
SIGTERM and checks that they exited cleanly. Everything it writes is under `data/demo/`
(removed at the start of each run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from statemachine_engine.database import Store, open_store

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = Path(sys.executable).parent
MACHINES = ("generator", "processor", "analyzer")
JOB_TYPE = "generate"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ENQUEUE_WORKERS = min(8, max(2, os.cpu_count() or 2))


class DemoError(Exception):
    """The demo cannot go on; the message says why and where to look."""


@dataclass
class Service:
    """A process the demo runs: a machine now, maybe the monitoring UI later (set `url`)."""

    name: str
    argv: list[str]
    machine: bool = True
    url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Layout:
    """Where the demo keeps its database, machine outputs and logs."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "data" / "demo"

    @property
    def db_file(self) -> Path:
        return self.root / "statemachine.db"

    @property
    def workdir(self) -> Path:
        return self.root / "pipeline"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def db_url(self) -> str:
        """The database URL, relative when the demo runs from its base directory."""
        if Path.cwd().resolve() == self.base.resolve():
            return "sqlite:///./" + self.db_file.relative_to(self.base).as_posix()
        return "sqlite:///" + str(self.db_file.resolve())

    def show(self, path: Path) -> str:
        """A path as the user can type it from where they started the demo."""
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
        except ValueError:
            return str(path)


def tool(name: str) -> str:
    """A console script of this environment, found next to the running interpreter."""
    path = BIN / name
    if not path.exists():
        raise DemoError(
            f"{name} not found next to {sys.executable}; run `make install` and start the demo "
            "with the project's .venv/bin/python"
        )
    return str(path)


def shown_tool(name: str) -> str:
    """How to spell a console script in printed commands."""
    found = shutil.which(name)
    if found and Path(found).resolve() == (BIN / name).resolve():
        return name
    try:
        return str((BIN / name).relative_to(Path.cwd()))
    except ValueError:
        return str(BIN / name)


def machine_services(layout: Layout, db_url: str) -> list[Service]:
    """One `statemachine` process per pipeline stage, writing under the demo's workdir."""
    context = json.dumps({"workdir": str(layout.workdir.relative_to(layout.base))})
    return [
        Service(
            name,
            [
                tool("statemachine"),
                str(HERE / f"{name}.yaml"),
                "--machine-name",
                name,
                "--db",
                db_url,
                "--initial-context",
                context,
            ],
        )
        for name in MACHINES
    ]


def monitor_services(layout: Layout, db_url: str) -> list[Service]:
    """Processes that watch the machines rather than run them: the monitoring UI on
    127.0.0.1:3001, or on a free port when 3001 is taken."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 3001))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [tool("statemachine-ui"), "--db", db_url, "--port", str(port)]
    return [Service("statemachine-ui", argv, machine=False, url=f"http://127.0.0.1:{port}/")]


def start(services: Sequence[Service], layout: Layout, env: dict[str, str]) -> None:
    """Start each service with its output going to `<logs>/<name>.log`."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    for service in services:
        service.log_path = layout.logs / f"{service.name}.log"
        service.log_file = service.log_path.open("wb")
        service.proc = subprocess.Popen(
            service.argv,
            cwd=layout.base,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=service.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def log_tail(service: Service, lines: int = 5) -> str:
    """The last lines a service wrote, indented, for error messages."""
    if service.log_path is None or not service.log_path.exists():
        return ""
    text = service.log_path.read_text(errors="replace").splitlines()[-lines:]
    return "".join(f"\n    {line}" for line in text)


def check_alive(services: Sequence[Service]) -> None:
    """Fail when a service has exited on its own."""
    for service in services:
        assert service.proc is not None
        code = service.proc.poll()
        if code is not None:
            raise DemoError(
                f"{service.name} exited early with code {code}; its log "
                f"({service.log_path}) ends with:{log_tail(service)}"
            )


def wait_until(
    condition: Callable[[], bool], deadline: float, services: Sequence[Service], failure: str
) -> None:
    """Poll `condition` (cheap reads) until it holds; past `deadline` fail with `failure`."""
    while not condition():
        check_alive(services)
        if time.monotonic() > deadline:
            raise DemoError(failure)
        time.sleep(0.05)


def machines_running(store: Store, services: Sequence[Service]) -> bool:
    """Every machine has registered this run's pid as running."""
    for service in (s for s in services if s.machine):
        status = store.get_machine(service.name)
        if status is None or service.proc is None:
            return False
        if status.status != "running" or status.pid != service.proc.pid:
            return False
    return True


def enqueue(db_url: str, env: dict[str, str], jobs: int) -> list[Future[str]]:
    """Enqueue `generate` jobs with the real CLI, a few at a time, in the background."""
    cli = tool("statemachine-cli")

    def add(index: int) -> str:
        job_id = f"gen-{index:03d}"
        data = json.dumps({"records": 2 + (index * 5) % 9})
        argv = [cli, "--db", db_url, "add-job", job_id, "--type", JOB_TYPE, "--data", data]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DemoError(f"add-job {job_id} failed: {done.stderr.strip()}")
        return job_id

    pool = ThreadPoolExecutor(max_workers=ENQUEUE_WORKERS)
    futures = [pool.submit(add, index) for index in range(1, jobs + 1)]
    pool.shutdown(wait=False)
    return futures


@dataclass
class Progress:
    """Items through each stage of the pipeline."""

    queued: int = 0
    generated: int = 0
    failed: int = 0
    processed: int = 0
    analyzed: int = 0

    def line(self, total: int, elapsed: float) -> str:
        return (
            f"queued {self.queued}/{total}  generated {self.generated}/{total}  "
            f"processed {self.processed}/{total}  analyzed {self.analyzed}/{total}  "
            f"[{elapsed:4.1f} s]"
        )

    def done(self, total: int) -> bool:
        return min(self.generated, self.processed, self.analyzed) >= total


def measure(store: Store, layout: Layout, futures: Sequence[Future[str]]) -> Progress:
    """Count each stage: jobs in the database, processed files, lines of the report."""
    for future in futures:
        if future.done() and future.exception() is not None:
            raise DemoError(str(future.exception()))
    counts = store.count_jobs(job_type=JOB_TYPE)
    report = layout.workdir / "report.txt"
    processed = layout.workdir / "processed"
    return Progress(
        queued=sum(counts.values()),
        generated=counts.get("completed", 0),
        failed=counts.get("failed", 0),
        processed=len(list(processed.glob("*.txt"))) if processed.is_dir() else 0,
        analyzed=len(report.read_text().splitlines()) if report.exists() else 0,
    )


def run_pipeline(
    store: Store,
    layout: Layout,
    services: Sequence[Service],
    futures: Sequence[Future[str]],
    total: int,
    deadline: float,
    timeout: float,
) -> float:
    """Show progress until all items are analyzed; returns the seconds it took."""
    started = time.monotonic()
    tty = sys.stdout.isatty()
    last_print = 0.0
    shown = ""
    while True:
        now = time.monotonic()
        progress = measure(store, layout, futures)
        line = progress.line(total, now - started)
        if tty:
            print("\r  " + line, end="", flush=True)
        elif now - last_print >= 1.0 or progress.done(total):
            print("  " + line, flush=True)
            last_print = now
        shown = line
        if progress.done(total):
            if tty:
                print()
            return now - started
        if progress.failed:
            raise DemoError(f"{progress.failed} job(s) failed for good; see the machine logs")
        check_alive(services)
        if now > deadline:
            if tty:
                print()
            raise DemoError(f"the pipeline did not finish within {timeout:g} s ({shown})")
        time.sleep(0.1)


def read_summary(layout: Layout) -> dict[str, Any] | None:
    """The analyzer's summary.json, or None while it is not written (or incomplete)."""
    try:
        value = json.loads((layout.workdir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def stop(services: Sequence[Service]) -> list[str]:
    """SIGTERM every running service, wait, and return the problems (empty when clean)."""
    problems: list[str] = []
    running = [s for s in services if s.proc is not None and s.proc.poll() is None]
    for service in running:
        assert service.proc is not None
        service.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for service in running:
        assert service.proc is not None
        try:
            service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()
            problems.append(f"{service.name} ignored SIGTERM for {STOP_TIMEOUT:g} s; killed")
    for service in services:
        if service.log_file is not None:
            service.log_file.close()
        code = None if service.proc is None else service.proc.returncode
        if code not in (0, None) and not any(p.startswith(service.name) for p in problems):
            problems.append(f"{service.name} exited with code {code}{log_tail(service)}")
    return problems


def print_summary(
    store: Store,
    layout: Layout,
    services: Sequence[Service],
    db_url: str,
    total: int,
    seconds: float,
    summary: dict[str, Any] | None,
) -> None:
    """Machines, counts, where the results are, and how to look at them."""
    print(
        f"\nAll {total} items went through generator -> processor -> analyzer in {seconds:.1f} s."
    )
    if summary is not None:
        print(f"Analyzer summary: {json.dumps(summary)}")
    counts = store.count_jobs(job_type=JOB_TYPE)
    print("Jobs: " + ", ".join(f"{status} {n}" for status, n in counts.items() if n))
    print("\nMachines:")
    for service in (s for s in services if s.machine):
        status = store.get_machine(service.name)
        if status is not None:
            print(
                f"  {service.name:<10} state {status.current_state:<8} {status.status:<8} "
                f"pid {status.pid}  {status.step} steps"
            )
    for service in (s for s in services if s.url):
        print(f"\nOpen {service.url} ({service.name})")
    work = layout.workdir
    print("\nResults:")
    for label, path in (
        ("raw files", work / "raw"),
        ("processed", work / "processed"),
        ("report", work / "report.txt"),
        ("summary", work / "summary.json"),
        ("database", layout.db_file),
        ("logs", layout.logs),
    ):
        print(f"  {label:<10} {layout.show(path)}")
    cli = f"{shown_tool('statemachine-cli')} --db {shlex.quote(db_url)}"
    print("\nInspect:")
    print(f"  {cli} list-jobs")
    print(f"  {cli} show-job gen-001")
    print(f"  {cli} history --machine processor")
    print(f"  {cli} machine-status")


def finish(services: Sequence[Service]) -> int:
    """Stop the services and report how they exited; returns the exit code."""
    problems = stop(services)
    if problems:
        print("demo: error: the machines did not stop cleanly:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    codes = ", ".join(f"{s.name} {s.proc.returncode}" for s in services if s.proc is not None)
    print(f"\nStopped the machines with SIGTERM; exit codes: {codes}.")
    return 0


def hold(services: Sequence[Service]) -> None:
    """Keep the system running for the user to explore until Ctrl-C or a service exits."""
    urls = ", ".join(s.url for s in services if s.url)
    where = f" Open {urls} to look around;" if urls else ""
    print(f"\nThe system keeps running.{where} try the commands above. Press Ctrl-C to stop.")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, interrupt)
    try:
        while all(s.proc is None or s.proc.poll() is None for s in services):
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()


def demo(jobs: int, timeout: float, base: Path, keep_running: bool = False) -> int:
    """Run the whole demo; returns the exit code. With keep_running the machines and the UI
    stay up after the jobs are done, until Ctrl-C."""
    layout = Layout(base.resolve())
    if layout.root.exists():
        shutil.rmtree(layout.root)
        print(f"Removed the previous demo data ({layout.show(layout.root)}).")
    layout.root.mkdir(parents=True)
    db_url = layout.db_url()
    services = machine_services(layout, db_url) + monitor_services(layout, db_url)
    rundir = tempfile.mkdtemp(prefix="smdemo-", dir="/tmp")  # short socket paths
    env = {k: v for k, v in os.environ.items() if k != "STATEMACHINE_DB"}
    env["STATEMACHINE_RUNTIME_DIR"] = rundir
    store = open_store(db_url)
    futures: list[Future[str]] = []
    started = time.monotonic()
    try:
        names = ", ".join(s.name for s in services)
        print(f"Starting {names} (database {db_url}) ...")
        start(services, layout, env)
        limit = min(START_TIMEOUT, timeout)
        wait_until(
            lambda: machines_running(store, services),
            started + limit,
            services,
            f"the machines did not start within {limit:g} s",
        )
        for service in (s for s in services if s.url):
            print(f"Watch it live: {service.url} ({service.name})")
        print(f"Enqueuing {jobs} '{JOB_TYPE}' jobs with statemachine-cli add-job ...")
        futures = enqueue(db_url, env, jobs)
        seconds = run_pipeline(store, layout, services, futures, jobs, started + timeout, timeout)
        print("Waiting for the analyzer's summary (written after 2 s without new items) ...")
        wait_until(
            lambda: (read_summary(layout) or {}).get("items") == jobs,
            started + timeout,
            services,
            f"the analyzer's summary did not appear within {timeout:g} s",
        )
        print_summary(store, layout, services, db_url, jobs, seconds, read_summary(layout))
        if keep_running:
            hold(services)
        return finish(services)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        print(f"demo: machine logs are in {layout.show(layout.logs)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping the machines", file=sys.stderr)
        return 130
    finally:
        for future in futures:
            future.cancel()
        stop(services)
        store.close()
        shutil.rmtree(rundir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=36, help="how many jobs (default 36)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds (120)"
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=REPO,
        help="directory that gets data/demo/ (default: the repository root)",
    )
    parser.add_argument(
        "--hold",
        action=argparse.BooleanOptionalAction,
        default=sys.stdin.isatty(),
        help="keep the system and the UI running after the jobs are done, until Ctrl-C"
        " (default: when run from a terminal)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.timeout <= 0:
        parser.error("--jobs and --timeout must be positive")
    try:
        return demo(args.jobs, args.timeout, args.base_dir, args.hold)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
