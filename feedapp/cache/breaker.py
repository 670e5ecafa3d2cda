"""A circuit breaker for Redis: after a failure, skip Redis for a backoff period.

Requests then go straight past L2 instead of each waiting out a socket timeout on a dead or
paused server. After the period one request tries again (half-open); success closes the
breaker, failure reopens it for longer (redis-py's EqualJitterBackoff: base · 2^failures,
capped, with jitter so workers do not retry in lockstep).
"""
import logging
import threading
import time

from redis.backoff import EqualJitterBackoff

log = logging.getLogger(__name__)


def describe(error: BaseException | None) -> str:
    """`Type: message` (redis-py's repr of its errors hides the message, e.g. the address)."""
    return "unknown error" if error is None else f"{type(error).__name__}: {error}"


class CircuitBreaker:
    def __init__(self, base: float = 0.1, cap: float = 5.0, clock=time.monotonic, name: str = "L2 (Redis)"):
        self.name = name
        self._backoff = EqualJitterBackoff(cap=cap, base=base)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._degraded_since = None

    @property
    def is_open(self) -> bool:
        return self._failures > 0 and self._clock() < self._open_until

    def allow(self) -> bool:
        """True when a call may go to Redis now."""
        if self._failures == 0:
            return True
        with self._lock:
            now = self._clock()
            if now < self._open_until:
                return False
            # Half-open: let this one call through and keep the others out meanwhile.
            self._open_until = now + self._backoff.compute(self._failures)
            return True

    def success(self):
        if self._failures:
            with self._lock:
                if self._failures and self._degraded_since is not None:
                    log.warning("%s recovered after %.2f s and %d failed attempts; breaker closed",
                                self.name, self._clock() - self._degraded_since, self._failures)
                self._failures = 0
                self._open_until = 0.0
                self._degraded_since = None

    def failure(self, error: BaseException | None = None):
        with self._lock:
            self._failures += 1
            pause = self._backoff.compute(self._failures)
            self._open_until = self._clock() + pause
            if self._failures == 1:  # warn once per outage, not once per failed call
                self._degraded_since = self._clock()
                log.warning("%s degraded: %s; breaker open, skipping it for %.3f s, then retrying "
                            "with backoff (reads go to the next tier)", self.name, describe(error), pause)

    @property
    def state(self) -> str:
        if self._failures == 0:
            return "closed"
        return "open" if self.is_open else "half-open"
