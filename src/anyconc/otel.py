"""
An OpenTelemetry observer for anyconc's instrumentation events (the ``otel`` extra).

``pip install 'anyconc[otel]'``, then::

    import anyconc
    from anyconc.otel import OpenTelemetryObserver

    anyconc.subscribe(OpenTelemetryObserver())

Only ``opentelemetry-api`` is needed (configure the SDK, exporters and providers as
usual); it is imported when the observer is made, not when this module is imported.

Spans: each event is added as a *span event* (named after ``event.kind``, e.g.
``retry.scheduled``, with the event's fields as ``anyconc.*`` attributes) to the span
that is current where it happened — the observer runs in the task that caused it, so a
retry's attempts and a breaker opening show up on the request's span. No span is
started by the observer.

Metrics (instruments of the meter ``anyconc``):

* ``anyconc.retries`` (counter; ``function``), ``anyconc.retries.given_up``
  (counter; ``function``, ``reason``);
* ``anyconc.circuit_breaker.transitions`` (counter; ``breaker``, ``state``);
* ``anyconc.background_tasks.started`` / ``.failed`` / ``.cancelled_at_shutdown``
  (counters; ``supervisor``), ``anyconc.background_tasks.drain.duration`` (histogram,
  seconds; ``supervisor``);
* ``anyconc.fanout.children`` (counter; ``operation``, ``outcome``).

An unnamed breaker or supervisor has the attribute value ``""``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram

from ._instrument import (
    BackgroundDrainFinished,
    BackgroundTaskFailed,
    BackgroundTaskStarted,
    CircuitStateChanged,
    FanOutProgress,
    InstrumentEvent,
    RetryGaveUp,
    RetryScheduled,
)

__all__ = ["OpenTelemetryObserver"]


def _attribute(value: object) -> str | int | float | bool:
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, BaseException):
        return repr(value)
    return "" if value is None else str(value)


class OpenTelemetryObserver:
    """
    Report anyconc's events as OpenTelemetry span events and metrics.

    :param meter_provider: the ``MeterProvider`` of the metrics (default: the global
        one)
    :param span_events: ``False`` to record metrics only
    :raises ModuleNotFoundError: if ``opentelemetry-api`` is not installed (install
        ``anyconc[otel]``)

    """

    def __init__(self, *, meter_provider: Any = None, span_events: bool = True) -> None:
        try:
            from opentelemetry import metrics, trace
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise ModuleNotFoundError(
                "OpenTelemetryObserver needs opentelemetry-api: "
                "pip install 'anyconc[otel]'"
            ) from exc

        self._get_current_span = trace.get_current_span
        self._span_events = bool(span_events)
        meter = metrics.get_meter("anyconc", meter_provider=meter_provider)
        self.retries: Counter = meter.create_counter(
            "anyconc.retries", description="Retries scheduled by anyconc.retry"
        )
        self.retries_given_up: Counter = meter.create_counter(
            "anyconc.retries.given_up",
            description="Calls whose last failure anyconc.retry raised",
        )
        self.circuit_transitions: Counter = meter.create_counter(
            "anyconc.circuit_breaker.transitions",
            description="Circuit breaker state changes, by the state entered",
        )
        self.tasks_started: Counter = meter.create_counter(
            "anyconc.background_tasks.started", description="Background tasks started"
        )
        self.tasks_failed: Counter = meter.create_counter(
            "anyconc.background_tasks.failed",
            description="Background tasks that failed",
        )
        self.tasks_cancelled: Counter = meter.create_counter(
            "anyconc.background_tasks.cancelled_at_shutdown",
            description="Background tasks cancelled at the end of a grace period",
        )
        self.drain_duration: Histogram = meter.create_histogram(
            "anyconc.background_tasks.drain.duration",
            unit="s",
            description="Durations of background task supervisors' drains",
        )
        self.fanout_children: Counter = meter.create_counter(
            "anyconc.fanout.children",
            description="Finished children of gather, amap and as_completed",
        )

    def __repr__(self) -> str:
        return "<OpenTelemetryObserver>"

    def __call__(self, event: InstrumentEvent) -> None:
        if self._span_events:
            span = self._get_current_span()
            if span.is_recording():
                span.add_event(
                    event.kind,
                    {
                        f"anyconc.{field.name}": _attribute(getattr(event, field.name))
                        for field in dataclasses.fields(event)
                    },
                )

        if isinstance(event, FanOutProgress):
            self.fanout_children.add(
                1,
                {
                    "operation": event.operation,
                    "outcome": "failed" if event.child_failed else "ok",
                },
            )
        elif isinstance(event, BackgroundTaskStarted):
            self.tasks_started.add(1, {"supervisor": event.supervisor or ""})
        elif isinstance(event, BackgroundTaskFailed):
            self.tasks_failed.add(1, {"supervisor": event.supervisor or ""})
        elif isinstance(event, RetryScheduled):
            self.retries.add(1, {"function": event.function})
        elif isinstance(event, RetryGaveUp):
            self.retries_given_up.add(
                1, {"function": event.function, "reason": event.reason}
            )
        elif isinstance(event, CircuitStateChanged):
            self.circuit_transitions.add(
                1, {"breaker": event.breaker or "", "state": event.state}
            )
        elif isinstance(event, BackgroundDrainFinished):
            supervisor = {"supervisor": event.supervisor or ""}
            self.drain_duration.record(event.elapsed, supervisor)
            if event.cancelled:
                self.tasks_cancelled.add(event.cancelled, supervisor)
