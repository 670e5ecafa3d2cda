"""In-process workers that share one real redis-server and one embedded store, each with its
own faults, and the truth they are checked against.

A `Worker` is the whole app (Flask test client, services, L1, listener, publisher) as a
gunicorn worker runs it, reaching Redis through its own `RedisProxy` and the store through its
own `StoreFaults`. `Truth` reads the store directly, past every cache and every fault.
"""
import time
from dataclasses import dataclass, field

from bson import ObjectId

from feedapp import create_app
from feedapp.config import Config
from feedapp.infra import store
from feedapp.infra.store import EmbeddedDatabase
from feedapp.repository import Repository
from feedapp.runtime.worker import build_worker
from feedapp.schemas import post_core_schema, post_representation, profile_schema

from .faults import FaultyDatabase, StoreFaults
from .proxy import RedisProxy

PASSWORD = "password123"


class Clock:
    """The L1's clock: real time plus whatever the simulation has skipped."""

    def __init__(self):
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def skip(self, seconds: float):
        self.skipped += seconds


@dataclass
class Worker:
    name: str
    app: object
    proxy: RedisProxy
    faults: StoreFaults
    clock: Clock
    client: object = field(init=False)

    def __post_init__(self):
        self.client = self.app.test_client()

    @property
    def res(self):
        return self.app.extensions["feedapp"]

    def close(self):
        self.res.close()
        self.proxy.close()


def make_worker(name, data_dir, redis_server, auth_url, **settings) -> Worker:
    """One worker: its own app and caches, Redis through its own proxy, the shared store."""
    proxy = RedisProxy(str(redis_server.socket_path))
    clock = Clock()
    config = Config(
        redis_url=proxy.url, auth_redis_url=auth_url, data_dir=data_dir,
        jwt_secret="sim-secret-" + "x" * 40, password_hash_method="pbkdf2:sha256:1000",
        warm_on_start=False, seed_on_start=False, register_address_limit=0, **settings,
    )
    faults = StoreFaults()
    # The store through the worker's faults, L1 on the simulation's clock.
    built = build_worker(config, database=FaultyDatabase(store.connect(config), faults), l1_clock=clock)
    app = create_app(worker=built.start())
    app.config["TESTING"] = True
    worker = Worker(name, app, proxy, faults, clock)
    wait_until_trusted(worker)
    return worker


def wait_until_trusted(worker: Worker):
    """Wait until the worker's listener is live (and so its caches are trusted)."""
    listener = worker.res.listener
    if listener is not None:
        assert listener.wait_live(10), f"{worker.name}: listener did not go live"


def settle(worker: Worker):
    """What the worker's maintenance thread does on its next tick (finish deferred work)."""
    worker.res.recovery.run()


class Truth:
    """The store itself, read past every cache."""

    def __init__(self, data_dir):
        self.repo = Repository(EmbeddedDatabase(data_dir / "store", "feedapp"))

    def profile(self, user_id):
        doc = self.repo.get_user(ObjectId(user_id))
        return None if doc is None else profile_schema.dump(doc)

    def post(self, post_id):
        doc = self.repo.get_post(ObjectId(post_id))
        return None if doc is None else self._compose([doc])[0]

    def timeline(self, user_id, limit=20):
        return self._compose(self.repo.timeline(ObjectId(user_id), limit))

    def feed(self, user_id, limit=20):
        return self._compose(self.repo.feed(ObjectId(user_id), limit))

    def _compose(self, docs):
        authors = self.repo.get_users({d["author_id"] for d in docs})
        return [post_representation(post_core_schema.dump(d), profile_schema.dump(authors[d["author_id"]])
                                    if d["author_id"] in authors else None) for d in docs]

    def counter_errors(self) -> list:
        """Every counter that differs from its source: [(what, stored, counted)]."""
        db, errors = self.repo.db, []
        for user in db.users.find({}):
            uid = user["_id"]
            truth = {
                "posts_count": db.posts.count_documents({"author_id": uid}),
                "followers_count": db.follows.count_documents({"followee_id": uid}),
                "following_count": db.follows.count_documents({"follower_id": uid}),
            }
            errors += [(f"user {uid} {name}", user.get(name, 0), n) for name, n in truth.items() if user.get(name, 0) != n]
        for post in db.posts.find({}):
            likes = db.likes.count_documents({"post_id": post["_id"]})
            if post.get("likes_count", 0) != likes:
                errors.append((f"post {post['_id']} likes_count", post.get("likes_count", 0), likes))
        return errors
