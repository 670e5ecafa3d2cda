"""Warm-up at start: the hottest profiles, timelines and home feeds, into L2 once and into
every worker's L1.

Every worker runs the same reads in a background thread right after it boots (so the first
request is not delayed). The reads go through the ordinary cascade, so the fill leases make
exactly one worker load each key from the store into L2; the others wait briefly for that fill
and take the value from L2 into their L1. Hot means most followed.
"""
import logging
import threading
import time

log = logging.getLogger(__name__)


def warm(res, users: int) -> dict:
    """Read the hottest users' profiles, first timeline page and first feed page."""
    started = time.monotonic()
    if res.listener is not None:
        res.listener.wait_live(2.0)
    hot = res.repo.most_followed(users)
    for user_id in hot:
        res.profiles.get(user_id)
        res.posts.timeline(user_id, 20, None)
        res.posts.feed(user_id, 20, None)
    summary = {"users": len(hot), "seconds": round(time.monotonic() - started, 3)}
    log.info("warm-up done: %s", summary)
    return summary


def start_warmup(res, users: int) -> threading.Thread:
    """Run `warm` in a daemon thread; failures are logged, never raised."""

    def run():
        try:
            warm(res, users)
        except Exception as err:  # noqa: BLE001 - warming is an optimisation
            log.warning("warm-up failed: %r", err)

    thread = threading.Thread(target=run, name="feedapp-warmup", daemon=True)
    thread.start()
    return thread
