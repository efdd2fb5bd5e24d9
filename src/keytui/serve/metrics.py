"""What ``GET /metrics`` shows, in Prometheus' text format (``prometheus-client``).

With several workers, each is its own process and a scrape reaches one of them, so the workers
write their figures to files in one directory (prometheus-client's multiprocess mode, switched
on by ``PROMETHEUS_MULTIPROC_DIR``, which the runner sets to a fresh directory before starting
them) and whichever worker answers a scrape adds up all of them: the counts are the server's,
not one worker's. With one worker, plain in-memory metrics.

Labels are a short, fixed vocabulary (the endpoint, the service's result codes, "inline" or
"thread", "memory" or "database"): never a key, a key ID, an owner or a path a client chose.
The service's own figures (answers from memory or after a read, argon2 runs, refusals by a
flood bucket, whether it answers from memory right now) are copied in with each push.

Requests are tallied in plain integers and pushed into prometheus-client's metrics by
:meth:`Metrics.push`: an increment there takes a lock and, in multiprocess mode, writes a mapped
file (measured ~3 us a counter and ~10 us a histogram observation, more than a warm verify, so
doing it per request halved ``/auth``'s rate). The app pushes half a second after the first
request since the last push, and before it renders a scrape, and when it stops: a scrape
answered by one worker sees the others' figures at most that much late.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From a verify answered on the event loop (~0.1 ms today) to a new secret's argon2 (~20 ms).
LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Metrics:
    def __init__(self) -> None:
        self.directory = os.environ.get(MULTIPROCESS_ENV) or None
        self._registry = CollectorRegistry()  # the metrics' own (in multiprocess mode: unused)
        self.verifications = Counter(
            "keytui_verifications",
            "Keys verified, by endpoint and result code (MISSING: no key was sent).",
            ["endpoint", "code"],
            registry=self._registry,
        )
        self.latency = Histogram(
            "keytui_verify_seconds",
            "Time of KeyService.verify, by where it ran: inline on the event loop (a secret "
            "this worker answered fast before, or a malformed one) or in the thread pool.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )

        self.answers = Counter(
            "keytui_verify_answers",
            "Verifies the service answered from memory (no query: the change signal is live) "
            "or after reading the key's row.",
            ["source"],
            registry=self._registry,
        )
        self.argon2 = Counter(
            "keytui_verify_argon2_runs",
            "argon2 verifications run (a secret not matched against its key's hash before).",
            registry=self._registry,
        )
        self.throttled = Counter(
            "keytui_verify_throttled",
            "Secrets refused unchecked because their key's flood bucket was empty.",
            registry=self._registry,
        )
        self.from_memory = Gauge(
            "keytui_verify_from_memory",
            "1 while the service answers known secrets from memory; 0 while it reads every "
            "verify (change signal not started or lost). With several workers: the lowest.",
            registry=self._registry,
            multiprocess_mode="min",
        )

        self._counts: dict[tuple[str, str], int] = {}
        # per "inline"/"thread": a count per bucket (the last is +Inf) and the sum of seconds
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        self._children: dict[Any, Any] = {}

    @property
    def pending(self) -> bool:
        return bool(self._counts or self._latency)

    def count(self, endpoint: str, code: str) -> None:
        key = (endpoint, code)
        self._counts[key] = self._counts.get(key, 0) + 1

    def observe(self, path: str, seconds: float) -> None:
        tally = self._latency.get(path)
        if tally is None:
            tally = self._latency[path] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0])
        tally[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bucket counts <= its bound
        tally[1][0] += seconds

    def push(self) -> None:
        """Add what was tallied since the last push to the metrics."""
        counts, self._counts = self._counts, {}
        latency, self._latency = self._latency, {}
        for labels, number in counts.items():
            self._child(self.verifications, labels).inc(number)
        for path, (buckets, total) in latency.items():
            child = self._child(self.latency, (path,))
            # What Histogram.observe does, once per bucket instead of once per request
            # (prometheus-client has no public call to add many observations).
            child._sum.inc(total[0])
            for value, number in zip(child._buckets, buckets, strict=True):
                if number:
                    value.inc(number)

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[metric, labels] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        if self.directory is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
