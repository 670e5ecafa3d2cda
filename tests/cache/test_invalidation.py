"""Pub/sub invalidation against real redis-servers, with the faults a listener must survive."""
import socket
import threading
import time

import pytest
import redis as redis_lib

from feedapp.cache.keys import Keys
from feedapp.cache.local import MISSING, LocalCache
from feedapp.embedded_redis import EmbeddedRedis
from feedapp.invalidation import Listener, Publisher
from feedapp.stats import Stats

CHANNEL, ACKS = "t:invalidate", "t:ack:"


def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Worker:
    """What one gunicorn worker has: an L1, a listener thread, a publisher."""

    def __init__(self, connect, name):
        self.client = connect()
        self.stats = Stats(lambda: self.client, Keys())
        self.local = LocalCache(100, lambda key: 60)
        # The listener's own health settings: the ones every gunicorn worker runs with.
        self.listener = Listener(connect, CHANNEL, ACKS, self.local, self.stats, ack_client=self.client)
        self.publisher = Publisher(self.client, CHANNEL, ACKS, name, self.stats, ack_timeout=0.5)
        self.listener.start()
        assert self.listener.wait_live(5)

    def put(self, key, value):
        self.local.fill(key, self.local.begin(key), value)

    def stop(self):
        self.listener.stop()
        self.listener.join(3)


@pytest.fixture
def workers(redis_server, redis_client):
    made = [Worker(lambda: redis_lib.Redis.from_url(redis_server.url, socket_timeout=1), f"w{i}") for i in range(3)]
    yield made
    for worker in made:
        worker.stop()


def test_publish_returns_after_every_worker_evicted(workers):
    for worker in workers:
        worker.put("profile:1", "old")
        worker.put("feed:1:a", "old")
    assert workers[0].publisher.publish(["profile:1"], ["feed:1:"]) is True
    for worker in workers:  # no waiting: the acknowledgement means it is done
        assert worker.local.get("profile:1") is MISSING
        assert worker.local.get("feed:1:a") is MISSING
    assert workers[0].stats.pending()["invalidations.acknowledged"] == 3


def test_ack_timeout_is_counted_when_a_receiver_does_not_answer(workers, redis_server):
    silent = redis_lib.Redis.from_url(redis_server.url).pubsub()
    silent.subscribe(CHANNEL)  # a subscriber that never acknowledges
    silent.get_message(timeout=1)
    try:
        started = time.monotonic()
        assert workers[0].publisher.publish(["k"]) is False
        assert time.monotonic() - started < 1.5
        assert workers[0].stats.pending()["invalidations.ack_timeouts"] == 1
    finally:
        silent.close()


def test_when_the_acks_cannot_be_read_the_writer_gives_the_listeners_the_ack_timeout(workers):
    """A Redis Cluster that is down during a failover delivers PUBLISH but refuses BLPOP."""
    for worker in workers:
        worker.put("k", "old")
    writer = workers[0]

    def refused(*args, **kwargs):
        raise redis_lib.ConnectionError("test: the acks' node refuses")

    writer.client.blpop = refused
    started = time.monotonic()
    with pytest.raises(redis_lib.ConnectionError):
        writer.publisher.publish(["k"])
    assert time.monotonic() - started >= 0.45  # the ack timeout (0.5 s), not an early return
    assert all(worker.local.get("k") is MISSING for worker in workers)
    assert writer.stats.pending()["invalidations.ack_failures"] == 1


def test_client_kill_of_the_subscriber_clears_l1_then_resumes(workers, redis_client, caplog):
    worker = workers[0]
    worker.put("k", "v")
    with caplog.at_level("WARNING", logger="feedapp.invalidation"):
        redis_client.client_kill_filter(_type="pubsub")
        assert eventually(lambda: worker.local.get("k") is MISSING)
        assert eventually(lambda: worker.listener.live)
        every = len(workers)
        assert eventually(lambda: sum("resubscribed after" in r.getMessage() for r in caplog.records) >= every)
    lost = [r.getMessage() for r in caplog.records if "lost its subscription" in r.getMessage()]
    assert len(lost) >= every and all("L1 cleared" in m for m in lost)
    assert sum("ConnectionError" in m for m in lost) >= every  # each worker says why
    assert worker.listener.is_alive() and worker.listener.reconnects >= 2
    worker.put("k", "v2")  # and invalidation works again on the new subscription
    assert workers[1].publisher.publish(["k"]) is True
    assert worker.local.get("k") is MISSING


def test_redis_restart_clears_l1_and_the_listener_resubscribes(tmp_path):
    server = EmbeddedRedis(tmp_path / "r", persist=False).start()
    worker = Worker(lambda: redis_lib.Redis.from_url(server.url, socket_timeout=1), "solo")
    try:
        worker.put("k", "v")
        server.stop()
        assert eventually(lambda: not worker.listener.live)
        assert worker.local.get("k") is MISSING
        server.start()
        assert eventually(lambda: worker.listener.live, timeout=10)
        assert worker.listener.is_alive()
        worker.put("k", "v")
        assert worker.publisher.publish(["k"]) is True
        assert worker.local.get("k") is MISSING
    finally:
        worker.stop()
        server.stop()


class FreezableProxy:
    """TCP → Unix socket proxy whose forwarding can be frozen (a socket gone silent)."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.frozen = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.unix_path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, target):
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.01)
                target.sendall(data)
        except OSError:
            pass

    def close(self):
        self.server.close()


def test_silent_subscriber_socket_is_detected_by_the_health_check(redis_server):
    proxy = FreezableProxy(str(redis_server.socket_path))
    worker = Worker(lambda: redis_lib.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=1), "quiet")
    try:
        worker.put("k", "v")
        frozen_at = time.monotonic()
        proxy.frozen.set()  # the connection stays open but nothing comes through
        assert eventually(lambda: not worker.listener.live, timeout=3)
        detected_after = time.monotonic() - frozen_at
        print(f"\nsilent subscriber detected after {detected_after * 1000:.0f} ms")
        # The target is 1 s (0.3 s of silence, 0.5 s for the ping's answer, 0.1 s
        # polling: 0.8 s measured on a quiet machine); the bound leaves room for a loaded CI box.
        assert detected_after < 1.5
        assert worker.local.get("k") is MISSING
        proxy.frozen.clear()
        assert eventually(lambda: worker.listener.live, timeout=10)
        assert worker.listener.is_alive()
    finally:
        proxy.frozen.clear()
        worker.stop()
        proxy.close()


def test_sequence_gap_clears_l1(workers, redis_client):
    import orjson

    worker = workers[0]
    worker.put("a", 1)
    worker.put("b", 1)
    for seq in (1, 3):  # message 2 of origin "x" never arrives
        redis_client.publish(CHANNEL, orjson.dumps({"o": "x", "s": seq, "k": ["a"], "p": []}))
    assert eventually(lambda: worker.local.get("b") is MISSING)
