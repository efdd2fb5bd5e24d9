"""KeyService.verify, called off or on the event loop.

``verify`` is synchronous. A secret this process has not answered before may cost an argon2 run
(about 20 ms), which must not stall every other request, so it goes to a small thread pool. But
the hop to a thread costs more than a verify that needs no argon2 (measured: ~250 us through
the pool against ~100 us inline for a cached secret, whose only cost is one indexed read; the
warm path of the service will be cheaper still), so a secret whose last verify here was fast is
verified inline, on the loop. What is remembered is the SHA-256 of the secret and nothing else;
a verify that turns out slow (the key was replaced, the secret now needs argon2 again) sends
that secret back to the pool. A secret that is not even well-formed is answered inline: the
service rejects it without a database read.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import anyio
import anyio.to_thread

from keytui.core import keyformat
from keytui.core.service import KeyService
from keytui.core.values import VerifyResult

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
        threads: int = THREADS,
        remembered: int = REMEMBERED,
    ) -> None:
        self.service = service
        self.inline_below = inline_below
        self.remembered = remembered
        self._fast: dict[bytes, None] = {}  # insertion-ordered: the oldest goes first
        self._limiter = anyio.CapacityLimiter(threads)

    def _timed(self, secret: str, host: str | None) -> tuple[VerifyResult, float]:
        start = time.perf_counter()
        result = self.service.verify(secret, host=host)
        return result, time.perf_counter() - start

    async def verify(self, secret: str, host: str | None) -> Verified:
        if keyformat.parse_secret(secret) is None:
            result, seconds = self._timed(secret, host)  # MALFORMED: no database, no argon2
            return Verified(result, seconds, True)
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        if digest in self._fast:
            result, seconds = self._timed(secret, host)
            if seconds >= self.inline_below:
                self._fast.pop(digest, None)
            return Verified(result, seconds, True)
        result, seconds = await anyio.to_thread.run_sync(
            self._timed, secret, host, limiter=self._limiter
        )
        if seconds < self.inline_below:
            self._fast[digest] = None
            if len(self._fast) > self.remembered:
                del self._fast[next(iter(self._fast))]
        return Verified(result, seconds, False)
