"""KeyService.verify, called off or on the event loop.

``verify`` is synchronous. A secret this process has not answered before may cost an argon2 run
(about 20 ms), which must not stall every other request, so it goes to a small thread pool.
What the service can answer from memory (``Verifier.answer_in_memory``: a secret verified
before while its change watcher is live, a flood's guess refused by its check value, a
malformed secret) is answered on the loop at once: the hop to a thread cost more than that
answer (a flood's guesses each went through the pool, 40-60 us of CPU beyond a malformed
secret, against 4-6 us now).
Without a live watcher (read through), a valid secret whose last verify here needed no argon2
(judged by its CPU time in the pool) is verified inline too: one indexed read. What is remembered is
the SHA-256 of the secret and nothing else; an inline verify that turns out costly (it ran argon2,
by the service's count of runs: the key was replaced or the secret needs argon2 again; or the
database is slow) sends that secret back to the pool. Inline, the CPU time is not read: on this
project's VMs the thread-CPU clock is a system call that cost more than the warm verify itself under
load.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import anyio
import anyio.to_thread

from keytui.core.service import KeyService
from keytui.core.values import VerifyResult

from .metrics import Metrics

THREADS = 8  # argon2 takes 19 MiB a run; the pool bounds both memory and CPU per worker
REMEMBERED = 100_000  # secrets (as SHA-256) known to verify fast; ~10 MB at most


@dataclass(frozen=True)
class Verified:
    result: VerifyResult
    seconds: float
    inline: bool


class Verifier:
    def __init__(
        self,
        service: KeyService,
        *,
        inline_below: float = 0.001,
        stall_after: float = 0.05,
        threads: int = THREADS,
        remembered: int = REMEMBERED,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self._published = (0, 0, 0, 0)  # the service's figures already copied to the metrics
        self._from_memory: bool | None = None
        self.inline_below = inline_below  # CPU seconds: argon2 takes ~20 ms, a cached verify ~0.1
        self.stall_after = stall_after  # wall seconds: a database this slow is not for the loop
        self.remembered = remembered
        self._fast: dict[bytes, None] = {}  # insertion-ordered: the oldest goes first
        self._limiter = anyio.CapacityLimiter(threads)

    def _timed(self, secret: str, host: str | None) -> tuple[VerifyResult, float, float]:
        """The answer, its wall time and the CPU time this thread spent on it."""
        start, cpu = time.perf_counter(), time.thread_time()
        result = self.service.verify(secret, host=host)
        return result, time.perf_counter() - start, time.thread_time() - cpu

    def publish(self) -> None:
        """Copy the service's verify figures into the metrics (what moved since last time);
        with each push of the metrics, not per verify."""
        metrics = self.metrics
        if metrics is None:
            return
        stats = self.service.verifier.stats
        now = (stats.warm, stats.read, stats.argon2, stats.throttled)
        before, self._published = self._published, now
        if now != before:
            for counter, new, old in zip(
                (
                    metrics.answers.labels("memory"),
                    metrics.answers.labels("database"),
                    metrics.argon2,
                    metrics.throttled,
                ),
                now,
                before,
                strict=True,
            ):
                if new > old:
                    counter.inc(new - old)
        from_memory = self.service.verifier.answering_from_memory
        if from_memory != self._from_memory:
            self._from_memory = from_memory
            metrics.from_memory.set(1 if from_memory else 0)

    def _fast_enough(self, wall: float, cpu: float) -> bool:
        # CPU time, not wall time, tells whether argon2 ran: on a loaded machine a cached
        # verify can take milliseconds of wall time while it waits for a core. Wall time
        # still sends a verify back to the pool when the database itself is slow.
        return cpu < self.inline_below and wall < self.stall_after

    def _inline(self, secret: str, host: str | None) -> tuple[VerifyResult, float, bool]:
        """On the loop: the answer, its wall time and whether it ran argon2."""
        stats = self.service.verifier.stats
        runs = stats.argon2
        start = time.perf_counter()
        result = self.service.verify(secret, host=host)
        return result, time.perf_counter() - start, stats.argon2 != runs

    async def verify(self, secret: str, host: str | None) -> Verified:
        start = time.perf_counter()
        # From memory (a secret seen before, a flood's guess, a malformed secret): the common
        # case, and no read or argon2, so on the loop.
        answered = self.service.verifier.answer_in_memory(secret, host)
        if answered is not None:
            return Verified(answered, time.perf_counter() - start, True)
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        if digest in self._fast:  # read through (no live watcher), fast before
            result, wall, argon2 = self._inline(secret, host)
            # (a run counted by a pool thread meanwhile also sends it back: one hop, harmless)
            if argon2 or wall >= self.stall_after:
                del self._fast[digest]
            return Verified(result, wall, True)
        result, wall, cpu = await anyio.to_thread.run_sync(
            self._timed, secret, host, limiter=self._limiter
        )
        # Only a valid secret is remembered: a flood's guesses (each new, each refused fast
        # after a read) would otherwise crowd the real secrets out of the list.
        if result.valid and self._fast_enough(wall, cpu):
            self._fast[digest] = None
            if len(self._fast) > self.remembered:
                del self._fast[next(iter(self._fast))]
        return Verified(result, wall, False)
