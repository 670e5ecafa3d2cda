"""The write side of the caches: every eviction a write causes, its record, its retries and
its delivery to every worker's L1.

- `writer.Writer`: a write's evictions, in L2, this L1, every other L1 (the services call it);
- `publisher.Publisher` / `listener.Listener`: the pub/sub channel between workers, with
  acknowledgements from registered listeners;
- `trust.Trust`: the short lease under which a worker may use its L1 and L2;
- `recovery.Recovery` and `outbox.Outbox`: unfinished work (`tasks`: evictions, counters),
  kept until some worker finishes it.

The promise: once a write returns, no worker of any app server serves from its caches what
that write changed, whatever failed meanwhile (README, "When things fail").
"""
from .listener import Listener
from .outbox import Outbox
from .publisher import Publisher, Registry
from .recovery import Recovery, RecoveryThread
from .tasks import Bump, Eviction, Recount
from .trust import Trust
from .writer import Writer

__all__ = ["Bump", "Eviction", "Listener", "Outbox", "Publisher", "Recount", "Recovery", "RecoveryThread",
           "Registry", "Trust", "Writer"]
