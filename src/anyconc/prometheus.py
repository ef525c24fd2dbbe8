"""
A Prometheus observer for anyconc's instrumentation events (the ``prometheus`` extra).

``pip install 'anyconc[prometheus]'``, then::

    import anyconc
    from anyconc.prometheus import PrometheusObserver

    anyconc.subscribe(PrometheusObserver())

``prometheus-client`` is imported when the observer is made, not when this module is
imported. The metrics (with the default ``namespace="anyconc"``):

* ``anyconc_retries_total{function}``: retries scheduled;
* ``anyconc_retries_given_up_total{function,reason}``: calls whose last failure was
  raised (``reason``: ``attempts``, ``not retryable``, ``timeout``);
* ``anyconc_circuit_breaker_state{breaker,anyconc_circuit_breaker_state}``: an Enum,
  ``closed`` / ``open`` / ``half-open`` (a breaker appears once it changed state);
* ``anyconc_circuit_breaker_opened_total{breaker}``: times a breaker opened;
* ``anyconc_background_tasks_started_total{supervisor}``,
  ``anyconc_background_tasks_failed_total{supervisor}``;
* ``anyconc_background_tasks_cancelled_at_shutdown_total{supervisor}``;
* ``anyconc_background_drain_seconds{supervisor}``: a histogram of drain durations;
* ``anyconc_fanout_children_total{operation,outcome}``: finished children of
  ``gather`` / ``amap`` / ``as_completed`` (``outcome``: ``ok`` or ``failed``).

An unnamed breaker or supervisor has the label value ``""``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from prometheus_client import Counter, Enum, Histogram

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

__all__ = ["PrometheusObserver"]


class PrometheusObserver:
    """
    Count anyconc's events in Prometheus metrics (see the module docstring).

    :param registry: the ``CollectorRegistry`` to register the metrics in (default:
        ``prometheus_client.REGISTRY``); one observer per registry and namespace
    :param namespace: the metric name prefix
    :raises ModuleNotFoundError: if ``prometheus-client`` is not installed (install
        ``anyconc[prometheus]``)

    """

    #: The event classes it uses: pass them as ``kinds=`` to :func:`anyconc.subscribe`
    #: (it ignores the others; :class:`BackgroundDrainStarted` is not counted).
    kinds: ClassVar[tuple[type[InstrumentEvent], ...]] = (
        RetryScheduled,
        RetryGaveUp,
        CircuitStateChanged,
        BackgroundTaskStarted,
        BackgroundTaskFailed,
        BackgroundDrainFinished,
        FanOutProgress,
    )

    def __init__(self, registry: Any = None, *, namespace: str = "anyconc") -> None:
        try:
            import prometheus_client as prom
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise ModuleNotFoundError(
                "PrometheusObserver needs prometheus-client: "
                "pip install 'anyconc[prometheus]'"
            ) from exc

        if registry is None:
            registry = prom.REGISTRY
        common: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.retries: Counter = prom.Counter(
            "retries", "Retries scheduled by anyconc.retry", ["function"], **common
        )
        self.retries_given_up: Counter = prom.Counter(
            "retries_given_up",
            "Calls whose last failure anyconc.retry raised",
            ["function", "reason"],
            **common,
        )
        self.circuit_state: Enum = prom.Enum(
            "circuit_breaker_state",
            "The state of each circuit breaker",
            ["breaker"],
            states=["closed", "open", "half-open"],
            **common,
        )
        self.circuit_opened: Counter = prom.Counter(
            "circuit_breaker_opened",
            "Times a circuit breaker opened",
            ["breaker"],
            **common,
        )
        self.tasks_started: Counter = prom.Counter(
            "background_tasks_started",
            "Background tasks started",
            ["supervisor"],
            **common,
        )
        self.tasks_failed: Counter = prom.Counter(
            "background_tasks_failed",
            "Background tasks that failed",
            ["supervisor"],
            **common,
        )
        self.tasks_cancelled: Counter = prom.Counter(
            "background_tasks_cancelled_at_shutdown",
            "Background tasks cancelled at the end of a supervisor's grace period",
            ["supervisor"],
            **common,
        )
        self.drain_seconds: Histogram = prom.Histogram(
            "background_drain_seconds",
            "Durations of background task supervisors' drains",
            ["supervisor"],
            **common,
        )
        self.fanout_children: Counter = prom.Counter(
            "fanout_children",
            "Finished children of gather, amap and as_completed",
            ["operation", "outcome"],
            **common,
        )

    def __repr__(self) -> str:
        return "<PrometheusObserver>"

    def __call__(self, event: InstrumentEvent) -> None:
        if isinstance(event, FanOutProgress):
            outcome = "failed" if event.child_failed else "ok"
            self.fanout_children.labels(event.operation, outcome).inc()
        elif isinstance(event, BackgroundTaskStarted):
            self.tasks_started.labels(event.supervisor or "").inc()
        elif isinstance(event, BackgroundTaskFailed):
            self.tasks_failed.labels(event.supervisor or "").inc()
        elif isinstance(event, RetryScheduled):
            self.retries.labels(event.function).inc()
        elif isinstance(event, RetryGaveUp):
            self.retries_given_up.labels(event.function, event.reason).inc()
        elif isinstance(event, CircuitStateChanged):
            breaker = event.breaker or ""
            self.circuit_state.labels(breaker).state(event.state)
            if event.state == "open":
                self.circuit_opened.labels(breaker).inc()
        elif isinstance(event, BackgroundDrainFinished):
            supervisor = event.supervisor or ""
            self.drain_seconds.labels(supervisor).observe(event.elapsed)
            if event.cancelled:
                self.tasks_cancelled.labels(supervisor).inc(event.cancelled)
