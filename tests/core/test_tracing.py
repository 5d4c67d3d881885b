"""Spans per step and per action (core/tracing.py) on a real engine run: collected with the
SDK's in-memory exporter, and exported over OTLP/HTTP when the OTEL_* variables ask for it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from statemachine_engine.core import tracing
from statemachine_engine.database.sqlite import SQLiteStore

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]
OTLP_PORT = 18431

WORKER = """
name: worker
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, job_done]
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: bash
      command: "true"
      success: job_done
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
"""


@pytest.fixture
def no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide tracer provider unset for this test (restored afterwards)."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(tracing, "_configured_from_env", False)
    monkeypatch.setattr(tracing, "_otlp_wanted", None)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exporter(no_provider: None) -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def run_one_job(store: SQLiteStore, machine: StartMachine, until: Until) -> None:
    store.add_job("task", job_id="j1")
    running = await machine(WORKER)
    await until(lambda: (job := store.get_job("j1")) is not None and job.status == "completed")
    await running.stop()


async def test_a_span_per_step_and_per_action(
    exporter: InMemorySpanExporter, store: SQLiteStore, machine: StartMachine, until: Until
) -> None:
    await run_one_job(store, machine, until)
    spans = exporter.get_finished_spans()
    steps = [attrs(s) for s in spans if s.name == "statemachine.step"]
    assert {
        "statemachine.machine": "worker",
        "statemachine.from_state": "waiting",
        "statemachine.to_state": "processing",
        "statemachine.event": "new_job",
        "statemachine.job_id": "j1",
        "statemachine.attempt": 1,
    } in steps
    back = [s for s in steps if s["statemachine.to_state"] == "waiting"]
    assert back[0]["statemachine.event"] == "job_done" and back[0]["statemachine.job_id"] == "j1"
    actions = [attrs(s) for s in spans if s.name.startswith("statemachine.action ")]
    bash = [a for a in actions if a["statemachine.state"] == "processing"]
    assert bash == [
        {
            "statemachine.machine": "worker",
            "statemachine.state": "processing",
            "statemachine.action": bash[0]["statemachine.action"],
            "statemachine.job_id": "j1",
            "statemachine.event": "job_done",
        }
    ]
    assert any(a.get("statemachine.event") == "new_job" for a in actions)
    history = store.history(machine="worker")
    assert len(steps) == len(history)  # one span per committed step


async def test_nothing_without_a_provider_or_variables(
    no_provider: None, store: SQLiteStore, machine: StartMachine, until: Until
) -> None:
    assert tracing._tracer() is None
    await run_one_job(store, machine, until)
    assert tracing._tracer() is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each request to /v1/traces."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.received.append(request)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[list[ExportTraceServiceRequest]]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", OTLP_PORT), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Collector.received
    server.shutdown()
    server.server_close()


async def test_exported_over_otlp_when_the_variables_say_so(
    no_provider: None,
    collector: list[ExportTraceServiceRequest],
    monkeypatch: pytest.MonkeyPatch,
    store: SQLiteStore,
    machine: StartMachine,
    until: Until,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{OTLP_PORT}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "metrics-test")
    await run_one_job(store, machine, until)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    try:
        assert provider.force_flush(30_000)
        names = {
            span.name
            for request in collector
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }
        services = {
            attr.value.string_value
            for request in collector
            for resource in request.resource_spans
            for attr in resource.resource.attributes
            if attr.key == "service.name"
        }
        assert "statemachine.step" in names and services == {"metrics-test"}
    finally:
        provider.shutdown()


def test_disabled_sdk_or_other_exporter_means_no_otlp(
    no_provider: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not tracing._otlp_requested()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    assert tracing._otlp_requested()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert not tracing._otlp_requested()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing._otlp_requested()


def test_without_the_extra_every_hook_is_a_no_op() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from statemachine_engine.core import tracing\n"
        "assert tracing.trace is None and tracing._tracer() is None\n"
        "tracing.step('m', 'a', 'b', 'go', None)\n"
        "with tracing.action('m', 'a', 'Bash', None) as span:\n"
        "    span.outcome('done')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr
