"""When a worker may use its caches: a short trust lease, renewed from two sources.

- The **stream** (its invalidation listener) renews it with each pong: a pong for a PING sent
  at `t` proves that every invalidation published before Redis saw that PING has been applied
  (pub/sub replies on one connection come in order, and the listener applies a message before
  it reads the next reply), so the worker may trust its L1 until `t + lease`.
- The **recovery** renews it each time it has found nothing left to apply (no invalidation of
  this worker pending, nothing in the outbox): a check begun at `t` vouches for L1 and L2
  until `t + recovery_lease` (half the lease: checks are cheap and run every eighth lease, and
  a write that could not reach Redis records itself in the outbox and waits one recovery
  lease before it returns, so by then every worker has seen it or stopped trusting).

L1 needs both; L2 needs the recovery only (it holds what writers delete, not what they
publish). A writer waits for acknowledgements from every registered listener, or one lease
after its PUBLISH returned; either way, once a write returns every worker has applied its
eviction or stopped trusting its caches. Checking costs a clock read and a compare.
"""
import math
import threading
import time


class Trust:
    def __init__(self, lease: float, clock=time.monotonic, stream: bool = True):
        """lease: seconds one pong vouches for (one recovery check: half of it); stream=False:
        no listener (no L1), so the recovery alone decides (L2-only mode)."""
        self.lease = lease
        self.recovery_lease = lease / 2
        self.clock = clock
        self._needs_stream = stream
        self._stream = 0.0
        self._recovery = 0.0
        self._revocations = 0
        self._lock = threading.Lock()
        self.l1_until = 0.0  # read on the L1-hit path: `clock() < trust.l1_until`
        self.l2_until = 0.0

    def l1(self) -> bool:
        return self.clock() < self.l1_until

    def l2(self) -> bool:
        return self.clock() < self.l2_until

    # --- the stream ----------------------------------------------------------------------------

    def stream_renewed(self, ping_sent_at: float):
        with self._lock:
            self._stream = max(self._stream, ping_sent_at + self.lease)
            self._publish()

    def stream_lost(self):
        with self._lock:
            self._stream = 0.0
            self._publish()

    # --- the recovery --------------------------------------------------------------------------

    def check_begins(self) -> tuple:
        """Call before a recovery check; pass what it returns to `recovery_renewed`."""
        with self._lock:
            return self.clock(), self._revocations

    def recovery_renewed(self, check: tuple):
        """The check found nothing left to apply: trust for a recovery lease from its
        beginning, unless trust was revoked since it began (something was recorded meanwhile)."""
        began, revocations = check
        with self._lock:
            if revocations == self._revocations:
                self._recovery = max(self._recovery, began + self.recovery_lease)
                self._publish()

    def revoke(self):
        """Something this worker wrote did not reach every cache: stop trusting until the
        recovery has applied it."""
        with self._lock:
            self._revocations += 1
            self._recovery = 0.0
            self._publish()

    def _publish(self):
        stream = self._stream if self._needs_stream else math.inf
        self.l2_until = self._recovery
        self.l1_until = min(stream, self._recovery)
