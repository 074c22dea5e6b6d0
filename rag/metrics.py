"""Prometheus metrics, in a registry owned by the runtime (no module-level globals)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, index_size: Callable[[], float] | None = None):
        self.registry = CollectorRegistry()
        self.requests = Counter("openops_requests_total", "HTTP requests.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("openops_request_seconds", "HTTP request latency.",
                                 ["route"], registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.ttft = Histogram("openops_time_to_first_token_seconds",
                              "Time from a question to the first token of its answer.",
                              registry=self.registry,
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16))
        self.index_chunks = Gauge("openops_index_chunks", "Chunks in the vector index.",
                                  registry=self.registry)
        if index_size is not None:
            self.index_chunks.set_function(index_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
