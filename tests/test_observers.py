"""The optional observers, with their real libraries: OpenTelemetry SDK, prometheus-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import BackgroundTasks, CircuitBreaker, retry, subscribe

prometheus_client = pytest.importorskip("prometheus_client")
otel_trace = pytest.importorskip("opentelemetry.trace")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
sdk_metrics_export = pytest.importorskip("opentelemetry.sdk.metrics.export")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_trace_export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory_span_exporter = pytest.importorskip(
    "opentelemetry.sdk.trace.export.in_memory_span_exporter"
)


async def exercise() -> None:
    """One event of every kind (but drain started, which the observers do not count)."""
    failures = [OSError("once")]

    @retry(attempts=2, delay=0)
    async def flaky() -> str:
        await checkpoint()
        if failures:
            raise failures.pop()
        return "ok"

    @retry(attempts=1)
    async def hopeless() -> None:
        raise KeyError("k")

    assert await flaky() == "ok"
    with pytest.raises(KeyError):
        await hopeless()

    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=0, name="db")
    with pytest.raises(OSError):
        await breaker.call(failing)
    assert await breaker.call(ok) == "ok"  # half-open, then closed

    async with BackgroundTasks(name="app", shutdown_timeout=0) as tasks:
        tasks.create_task(failing(), name="bad")
        tasks.create_task(anyio.sleep_forever(), name="forever")
        await anyio.wait_all_tasks_blocked()

    await anyconc.gather(ok(), failing(), return_exceptions=True)


async def failing() -> None:
    await checkpoint()
    raise OSError("down")


async def ok() -> str:
    await checkpoint()
    return "ok"


# -- Prometheus ------------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[Any]:
    from anyconc.prometheus import PrometheusObserver

    registry = prometheus_client.CollectorRegistry()
    observer = PrometheusObserver(registry)
    stop = subscribe(observer, kinds=PrometheusObserver.kinds)
    try:
        yield registry
    finally:
        stop()


async def test_prometheus_metrics(registry: Any) -> None:
    await exercise()

    def value(name: str, **labels: str) -> float | None:
        result: float | None = registry.get_sample_value(name, labels)
        return result

    flaky = [
        s.labels["function"]
        for s in registry.collect()
        if s.name == "anyconc_retries"
        for s in s.samples
        if s.name == "anyconc_retries_total"
    ]
    assert len(flaky) == 1 and flaky[0].endswith("flaky")
    assert value("anyconc_retries_total", function=flaky[0]) == 1
    hopeless = flaky[0].replace("flaky", "hopeless")
    assert (
        value("anyconc_retries_given_up_total", function=hopeless, reason="attempts")
        == 1
    )
    assert value("anyconc_circuit_breaker_opened_total", breaker="db") == 1
    assert (
        value(
            "anyconc_circuit_breaker_state",
            breaker="db",
            anyconc_circuit_breaker_state="closed",
        )
        == 1
    )
    assert (
        value(
            "anyconc_circuit_breaker_state",
            breaker="db",
            anyconc_circuit_breaker_state="open",
        )
        == 0
    )
    assert value("anyconc_background_tasks_started_total", supervisor="app") == 2
    assert value("anyconc_background_tasks_failed_total", supervisor="app") == 1
    assert (
        value("anyconc_background_tasks_cancelled_at_shutdown_total", supervisor="app")
        == 1
    )
    assert value("anyconc_background_drain_seconds_count", supervisor="app") == 1
    assert value("anyconc_fanout_children_total", operation="gather", outcome="ok") == 1
    assert (
        value("anyconc_fanout_children_total", operation="gather", outcome="failed")
        == 1
    )


def test_prometheus_observer_needs_its_own_registry_per_namespace() -> None:
    from anyconc.prometheus import PrometheusObserver

    registry = prometheus_client.CollectorRegistry()
    PrometheusObserver(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusObserver(registry)
    PrometheusObserver(registry, namespace="other")


# -- OpenTelemetry ---------------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[Any, Any, Any]]:
    from anyconc.otel import OpenTelemetryObserver

    reader = sdk_metrics_export.InMemoryMetricReader()
    meter_provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    exporter = in_memory_span_exporter.InMemorySpanExporter()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(sdk_trace_export.SimpleSpanProcessor(exporter))
    tracer = tracer_provider.get_tracer("test")
    stop = subscribe(OpenTelemetryObserver(meter_provider=meter_provider))
    try:
        yield reader, exporter, tracer
    finally:
        stop()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def metric_points(reader: Any) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    points: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted(point.attributes.items()))
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.count  # a histogram
                    points.setdefault(metric.name, {})[key] = value
    return points


async def test_opentelemetry_metrics_and_span_events(
    otel: tuple[Any, Any, Any],
) -> None:
    reader, exporter, tracer = otel
    with tracer.start_as_current_span("request"):
        await exercise()

    points = metric_points(reader)
    (retried,) = points["anyconc.retries"].items()
    assert retried[1] == 1 and dict(retried[0])["function"].endswith("flaky")
    (gave_up,) = points["anyconc.retries.given_up"]
    assert dict(gave_up)["reason"] == "attempts"
    transitions = points["anyconc.circuit_breaker.transitions"]
    assert transitions == {
        (("breaker", "db"), ("state", "open")): 1,
        (("breaker", "db"), ("state", "half-open")): 1,
        (("breaker", "db"), ("state", "closed")): 1,
    }
    app = (("supervisor", "app"),)
    assert points["anyconc.background_tasks.started"] == {app: 2}
    assert points["anyconc.background_tasks.failed"] == {app: 1}
    assert points["anyconc.background_tasks.cancelled_at_shutdown"] == {app: 1}
    assert points["anyconc.background_tasks.drain.duration"] == {app: 1}
    assert points["anyconc.fanout.children"] == {
        (("operation", "gather"), ("outcome", "ok")): 1,
        (("operation", "gather"), ("outcome", "failed")): 1,
    }

    (span,) = exporter.get_finished_spans()
    kinds = [event.name for event in span.events]
    # Background tasks run in the supervisor's tasks, outside the request's span
    # context... except their start, which happens in the request.
    assert kinds[:4] == [
        "retry.scheduled",
        "retry.gave_up",
        "circuit.state_changed",
        "circuit.state_changed",
    ]
    assert "fanout.progress" in kinds
    opened = span.events[2]
    assert opened.attributes["anyconc.breaker"] == "db"
    assert opened.attributes["anyconc.state"] == "open"
    assert opened.attributes["anyconc.reason"] == "1 consecutive failures"


async def test_opentelemetry_without_a_recording_span_records_metrics_only(
    otel: tuple[Any, Any, Any],
) -> None:
    reader, exporter, _ = otel
    await exercise()
    assert exporter.get_finished_spans() == ()
    assert metric_points(reader)["anyconc.background_tasks.started"] == {
        (("supervisor", "app"),): 2
    }
