"""Prometheus metrics, kept in a registry owned by the app (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("kumpul_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("kumpul_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.in_flight = Gauge("kumpul_http_requests_in_flight", "Requests being served",
                               registry=self.registry)
        self.queue_depth = Gauge("kumpul_queue_jobs", "Jobs waiting per queue", ["queue"],
                                 registry=self.registry)
        self.logins = Counter("kumpul_logins_total", "Login attempts", ["outcome"],
                              registry=self.registry)
