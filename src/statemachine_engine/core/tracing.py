"""OpenTelemetry spans for steps and actions, or nothing: without the `[otel]` extra, or with
neither a tracer provider set by the application nor `OTEL_*` variables naming an OTLP
exporter, every call here is a no-op."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace
except ImportError:  # the [otel] extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from statemachine_engine.database.records import Job

log = logging.getLogger(__name__)
TRACER_NAME = "statemachine_engine"
_configured_from_env = False
#: Whether the OTEL_* variables ask for OTLP, read once per process (at the first span that
#: could be made), as the SDKs read them: this check runs for every action.
_otlp_wanted: bool | None = None
_cached: tuple[Any, Any] | None = None  # (provider, its tracer)


def _otlp_requested() -> bool:
    """Whether the standard variables ask for OTLP traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return "otlp" in exporter.split(",")
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _install_otlp() -> bool:
    """Set a global SDK provider exporting over OTLP (protocol from the OTEL_* variables)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables are set but opentelemetry-sdk is not installed")
        return False
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    try:
        if protocol.strip().lower() == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
    except ImportError:
        log.warning("OTEL_* variables are set but opentelemetry-exporter-otlp is not installed")
        return False
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": TRACER_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _tracer() -> Any | None:
    """The tracer to use, or None: no API, or no provider set and none asked for."""
    global _configured_from_env, _cached, _otlp_wanted
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        if _otlp_wanted is None:
            _otlp_wanted = _otlp_requested()
        if _configured_from_env or not _otlp_wanted:
            return None
        _configured_from_env = True
        if not _install_otlp():
            return None
        provider = trace.get_tracer_provider()
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, trace.get_tracer(TRACER_NAME))
    return _cached[1]


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def step(
    machine: str,
    source: str,
    target: str,
    event: str | None,
    job: Job | None,
) -> None:
    """Record one committed state change as a span, with the job it held and its attempt."""
    tracer = _tracer()
    if tracer is None:
        return
    attributes = {
        "statemachine.machine": machine,
        "statemachine.from_state": source,
        "statemachine.to_state": target,
        "statemachine.event": event,
        "statemachine.job_id": job.job_id if job is not None else None,
        "statemachine.attempt": job.attempts if job is not None else None,
    }
    tracer.start_span("statemachine.step", attributes=_clean(attributes)).end()


class ActionSpan:
    """The span of one running action; `outcome` records the event it returned."""

    def __init__(self, span: Any | None) -> None:
        self._span = span

    def outcome(self, event: str | None) -> None:
        if self._span is not None and event is not None:
            self._span.set_attribute("statemachine.event", event)


_NO_SPAN: contextlib.AbstractContextManager[ActionSpan] = contextlib.nullcontext(ActionSpan(None))


def action(
    machine: str, state: str, name: str, job: Job | None
) -> contextlib.AbstractContextManager[ActionSpan]:
    """A span around one action of `state`, run for `job` (if one is held); without a
    tracer a shared do-nothing context (this runs for every action)."""
    tracer = _tracer()
    if tracer is None:
        return _NO_SPAN
    return _action_span(tracer, machine, state, name, job)


@contextlib.contextmanager
def _action_span(
    tracer: Any, machine: str, state: str, name: str, job: Job | None
) -> Iterator[ActionSpan]:
    attributes = {
        "statemachine.machine": machine,
        "statemachine.state": state,
        "statemachine.action": name,
        "statemachine.job_id": job.job_id if job is not None else None,
    }
    with tracer.start_as_current_span(
        f"statemachine.action {name}", attributes=_clean(attributes)
    ) as span:
        yield ActionSpan(span)
