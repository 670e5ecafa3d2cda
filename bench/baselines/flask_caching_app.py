"""The Flask-Caching baseline: what a Flask user would write instead of feedapp's cache tiers.

The same queries as feedapp (feedapp's Repository over the same store) and the same
representations (feedapp's schemas), memoized with Flask-Caching's `RedisCache` and
`@cache.memoize(timeout=TTL)`; invalidation is TTL-only, as in most Flask apps: a write goes
to the store and the cached profile, feed, timeline or post stays as it was until it expires.
Auth is a minimal HS256 token with a session key in Redis (one JWT decode and one Redis
round trip per protected request, as in feedapp).

Served by gunicorn exactly as feedapp is (4 gthread workers, 4 threads each):
    gunicorn --worker-class gthread --threads 4 -w 4 bench.baselines.flask_caching_app:app
Environment: REDIS_URL (required), MONGO_URI / DATA_DIR (as feedapp), BASELINE_TTL (60 s),
BASELINE_SECRET.

To compare hit ratios it counts, per worker and without a Redis round trip on a hit, the
cacheable requests and those that ran at least one query (flushed to a Redis hash every
0.5 s), and answers GET /api/cache/stats in the subset of feedapp's shape the harness reads.
"""
import os
import secrets
import threading
import time
import uuid

import jwt
import redis
from bson import ObjectId
from bson.errors import InvalidId
from flask import Flask, g, jsonify, request
from flask_caching import Cache

from feedapp import listing
from feedapp.auth import verify_password
from feedapp.config import Config
from feedapp.infra.store import connect
from feedapp.repository import Repository
from feedapp.schemas import post_core_schema, post_representation, private_profile_schema, profile_schema

TTL = int(os.environ.get("BASELINE_TTL", "60"))
SECRET = os.environ.get("BASELINE_SECRET") or secrets.token_hex(32)
SESSION_TTL = 3600
STATS_KEY = "baseline:stats"

app = Flask(__name__)
app.json.sort_keys = False
app.json.compact = True
cache = Cache(app, config={
    "CACHE_TYPE": "RedisCache",
    "CACHE_REDIS_URL": os.environ["REDIS_URL"],
    "CACHE_DEFAULT_TIMEOUT": TTL,
    "CACHE_KEY_PREFIX": "baseline:",
})


class _PerProcess:
    """Store and Redis clients and counters, made after fork in the process that uses them."""

    def __init__(self):
        self.pid = None
        self.lock = threading.Lock()

    def get(self):
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.repo = Repository(connect(Config.from_env()))
                    self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
                    self.counts = {"requests": 0, "l3_requests": 0, "l3_reads": 0}
                    self.counts_lock = threading.Lock()
                    threading.Thread(target=self._flush_forever, daemon=True).start()
                    self.pid = os.getpid()
        return self

    def count(self, name, n=1):
        with self.counts_lock:
            self.counts[name] += n

    def _flush_forever(self):
        while True:
            time.sleep(0.5)
            with self.counts_lock:
                counts, self.counts = self.counts, dict.fromkeys(self.counts, 0)
            try:
                pipe = self.redis.pipeline(transaction=False)
                for name, n in counts.items():
                    if n:
                        pipe.hincrby(STATS_KEY, name, n)
                pipe.execute()
            except redis.RedisError:
                pass


local = _PerProcess()


def repo() -> Repository:
    g.l3_reads = g.get("l3_reads", 0) + 1  # called only when a memoized function misses
    return local.get().repo


def _oid(text):
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return None


def _error(status, code, message):
    return jsonify({"error": {"code": code, "message": message}}), status


# --- the memoized queries (each one key in Redis, expiring after TTL) -----------------------

@cache.memoize()
def profile(user_id: str):
    doc = repo().get_user(ObjectId(user_id))
    return None if doc is None else profile_schema.dump(doc)


def _compose(docs) -> list:
    cores = [post_core_schema.dump(doc) for doc in docs]
    return [post_representation(core, profile(core["author_id"])) for core in cores]


def _listing(docs, limit) -> dict:
    more = len(docs) > limit
    docs = docs[:limit]
    return {"items": _compose(docs), "next_cursor": listing.encode_post_cursor(docs[-1]) if more else None}


@cache.memoize()
def timeline(user_id: str, limit: int, before: str | None):
    position = listing.decode_post_cursor(before) if before else None
    return _listing(repo().timeline(ObjectId(user_id), limit + 1, position), limit)


@cache.memoize()
def feed(user_id: str, limit: int, before: str | None):
    position = listing.decode_post_cursor(before) if before else None
    return _listing(repo().feed(ObjectId(user_id), limit + 1, position), limit)


@cache.memoize()
def post(post_id: str):
    doc = repo().get_post(ObjectId(post_id))
    return None if doc is None else _compose([doc])[0]


# --- request accounting -------------------------------------------------------------------------

@app.before_request
def _start():
    local.get()


def _cacheable(body):
    state = local.get()
    state.count("requests")
    reads = g.get("l3_reads", 0)
    if reads:
        state.count("l3_requests")
        state.count("l3_reads", reads)
    if body is None:
        return _error(404, "not_found", "Not found")
    response = jsonify(body)
    response.headers["X-Cache"] = "L3" if reads else "L2"
    return response


def _page_args():
    try:
        limit = int(request.args.get("limit", 20))
    except ValueError:
        limit = 0
    return (limit if 1 <= limit <= 100 else None), request.args.get("before")


# --- reads --------------------------------------------------------------------------------------

@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@app.get("/api/users/<user_id>")
def get_user(user_id):
    if _oid(user_id) is None:
        return _error(400, "invalid_id", "Invalid id")
    return _cacheable(profile(user_id))


@app.get("/api/users/<user_id>/posts")
def get_timeline(user_id):
    limit, before = _page_args()
    if _oid(user_id) is None or limit is None:
        return _error(400, "invalid_id", "Invalid id or limit")
    return _cacheable(timeline(user_id, limit, before))


@app.get("/api/users/<user_id>/feed")
def get_feed(user_id):
    limit, before = _page_args()
    if _oid(user_id) is None or limit is None:
        return _error(400, "invalid_id", "Invalid id or limit")
    return _cacheable(feed(user_id, limit, before))


@app.get("/api/posts/<post_id>")
def get_post(post_id):
    if _oid(post_id) is None:
        return _error(400, "invalid_id", "Invalid id")
    return _cacheable(post(post_id))


@app.get("/api/cache/stats")
def stats():
    counts = {k.decode(): int(v) for k, v in local.get().redis.hgetall(STATS_KEY).items()}
    total, l3 = counts.get("requests", 0), counts.get("l3_requests", 0)
    return jsonify({
        "hit_ratio": round((total - l3) / total, 4) if total else 0.0,
        "requests": {"total": total, "l1": 0, "l2": total - l3, "l3": l3},
        "tiers": {"l3": {"reads": counts.get("l3_reads", 0)}},
    })


# --- auth and writes (store only: cached copies live on until their TTL) ----------------------

@app.post("/api/auth/login")
def login():
    body = request.get_json(silent=True) or {}
    user = local.get().repo.get_user_by_login(str(body.get("username", "")))
    if not verify_password(user["password_hash"] if user else None, str(body.get("password", ""))):
        return _error(401, "unauthorized", "Invalid username or password")
    session = uuid.uuid4().hex
    local.get().redis.set(f"baseline:session:{session}", str(user["_id"]), ex=SESSION_TTL)
    token = jwt.encode({"sub": str(user["_id"]), "sid": session, "exp": int(time.time()) + SESSION_TTL},
                       SECRET, algorithm="HS256")
    return jsonify({"access_token": token, "token_type": "bearer", "expires_in": SESSION_TTL})


def _caller():
    header = request.headers.get("Authorization", "")
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    if not local.get().redis.exists(f"baseline:session:{claims['sid']}"):
        return None
    return ObjectId(claims["sub"])


@app.post("/api/posts")
def create_post():
    caller = _caller()
    if caller is None:
        return _error(401, "unauthorized", "Bearer token required")
    content = str((request.get_json(silent=True) or {}).get("content", "")).strip()
    if not 1 <= len(content) <= 500:
        return _error(400, "validation_error", "content: 1-500 characters")
    doc = local.get().repo.create_post(caller, content)
    return jsonify(_compose([doc])[0]), 201


@app.post("/api/posts/<post_id>/like")
def like(post_id):
    caller, oid = _caller(), _oid(post_id)
    if caller is None:
        return _error(401, "unauthorized", "Bearer token required")
    count = local.get().repo.like(caller, oid) if oid else None
    if count is None:
        return _error(404, "not_found", "Post not found")
    return jsonify({"liked": True, "likes_count": count})


@app.patch("/api/me")
def patch_me():
    caller = _caller()
    if caller is None:
        return _error(401, "unauthorized", "Bearer token required")
    body = request.get_json(silent=True) or {}
    changes = {k: str(v)[:160] for k, v in body.items() if k in ("display_name", "bio")}
    doc = local.get().repo.update_profile(caller, changes)
    return jsonify(private_profile_schema.dump(doc))


@app.post("/api/users/<user_id>/follow")
def follow(user_id):
    caller, oid = _caller(), _oid(user_id)
    if caller is None:
        return _error(401, "unauthorized", "Bearer token required")
    if oid is None or oid == caller or local.get().repo.get_user(oid) is None:
        return _error(404, "not_found", "User not found")
    local.get().repo.follow(caller, oid)
    return jsonify({"following": True})
