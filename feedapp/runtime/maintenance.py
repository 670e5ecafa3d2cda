"""One thread per worker for optional background work: refreshing L1 entries about to expire
(cache/refresh.py: RefreshAhead.run), every `interval` seconds. (Finishing what writes left
unfinished is the recovery's own thread: invalidation/recovery.py.)"""
import logging
import threading

from ..config import MAINTENANCE_INTERVAL_S

log = logging.getLogger(__name__)


class Maintenance(threading.Thread):
    def __init__(self, tasks, interval: float = MAINTENANCE_INTERVAL_S):
        super().__init__(name="feedapp-maintenance", daemon=True)
        self._tasks = list(tasks)
        self._interval = interval
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.wait(self._interval):
            for task in self._tasks:
                try:
                    task()
                except Exception as err:  # noqa: BLE001 - retried next tick; never dies
                    log.warning("maintenance task failed: %r", err)

    def stop(self):
        self._stopping.set()
