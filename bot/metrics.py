"""Prometheus metrics, one registry per process (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters the engine, channels and workers update; served at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates_in = Counter("tadamon_updates_in", "Messages received, by channel",
                                  ["channel"], registry=self.registry)
        self.updates_out = Counter("tadamon_updates_out", "Replies sent, by channel",
                                   ["channel"], registry=self.registry)
        self.duplicates = Counter("tadamon_duplicates", "Redelivered messages ignored",
                                  ["channel"], registry=self.registry)
        self.handler_errors = Counter("tadamon_handler_errors", "Messages that failed in a handler",
                                      ["channel"], registry=self.registry)
        self.handler_latency = Histogram(
            "tadamon_handler_latency_seconds", "Time to handle one message", ["channel"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.outbox_depth = Gauge("tadamon_outbox_depth", "Outbox messages waiting to be sent",
                                  registry=self.registry)
        self.intents = Counter("tadamon_intents", "Messages answered, by channel and by what "
                               "they were understood as (CONTRACT, section Intents)",
                               ["channel", "intent"], registry=self.registry)
        self.send_errors = Counter("tadamon_send_errors", "Failed sends to a platform",
                                   ["channel"], registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
