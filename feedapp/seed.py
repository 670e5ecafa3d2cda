"""Demo data: users, a Zipf-like follow graph (a few very popular users), and posts."""
import itertools
import random
from datetime import timedelta

from bson import ObjectId

from .auth import hash_password
from .repository import utcnow

DEMO_PASSWORD = "password123"
WORDS = (
    "cache redis mongo feed latency worker tier coffee morning release deploy python flask "
    "graph follow like post weekend music travel photo garden city river book idea"
).split()


def zipf_weights(n: int, s: float = 1.1) -> list:
    return [1.0 / (rank + 1) ** s for rank in range(n)]


def seed_demo_data(repo, n_users: int, n_posts: int, random_seed: int = 1, days: int = 30,
                   fanout_limit: int = 1000) -> dict:
    """Insert demo data with exact counters and fan-out modes; return what was inserted."""
    rng = random.Random(random_seed)
    now = utcnow()
    password_hash = hash_password(DEMO_PASSWORD)  # one slow hash, shared by every demo user
    users = [_user(i, random_seed, password_hash, now - timedelta(days=days + 1)) for i in range(n_users)]
    ids = [u["_id"] for u in users]
    popularity = ids[:]
    rng.shuffle(popularity)
    cumulative = list(itertools.accumulate(zipf_weights(n_users)))

    follows = []
    for follower in ids:
        wanted = min(n_users - 1, rng.randint(3, 30))
        chosen = {f for f in rng.choices(popularity, cum_weights=cumulative, k=wanted * 2) if f != follower}
        for followee in list(chosen)[:wanted]:
            follows.append({"_id": ObjectId(), "follower_id": follower, "followee_id": followee, "created_at": now})

    by_id = {u["_id"]: u for u in users}
    for f in follows:
        by_id[f["follower_id"]]["following_count"] += 1
        by_id[f["followee_id"]]["followers_count"] += 1

    posts = []
    span_ms = days * 24 * 3600 * 1000
    for _ in range(n_posts):
        author = rng.choices(popularity, cum_weights=cumulative)[0] if rng.random() < 0.5 else rng.choice(ids)
        created = now - timedelta(milliseconds=rng.randrange(span_ms))
        content = " ".join(rng.choices(WORDS, k=rng.randint(3, 16))).capitalize() + "."
        posts.append({"_id": ObjectId(), "author_id": author, "content": content, "created_at": created, "likes_count": 0})
        by_id[author]["posts_count"] += 1

    for user in users:  # born popular: merged at read time from the start (services.fanout)
        if user["followers_count"] >= fanout_limit:
            user["fanout"] = "pull"
    for name, docs in (("users", users), ("follows", follows), ("posts", posts)):
        bulk_insert(repo, name, docs)
    return {"users": len(users), "follows": len(follows), "posts": len(posts), "password": DEMO_PASSWORD}


def bulk_insert(repo, name: str, docs: list, batch: int = 5000):
    """Insert seed documents; on an empty embedded store, many rows per SQLite transaction.

    litemongo inserts one document per transaction and checks every unique index by scanning
    the collection, which makes 200,000 posts take minutes. Seed documents are unique by
    construction, so into an *empty* embedded collection they are written as rows directly,
    under the store's cross-process write lock, encoded exactly as litemongo encodes them.
    Anything else (MongoDB, mongomock, a collection that already has documents) takes the
    ordinary `insert_many` path, which checks every unique index.
    """
    target = _empty_litemongo_collection(repo.db, name)
    if target is None:
        repo.insert_many(name, docs)
        return
    lock, store = target
    table = store._documents  # noqa: SLF001 - litemongo's SQLite table (see docstring)
    with lock.held():
        if len(table):  # filled meanwhile by another process: take the checked path
            target = None
        else:
            connection = table._connection  # noqa: SLF001
            sql = f"INSERT INTO {table._table_name} VALUES(?, ?)"  # noqa: S608, SLF001 - fixed name
            for start in range(0, len(docs), batch):
                rows = [(table.encode_key(d["_id"]), table._encode_doc(d))  # noqa: SLF001
                        for d in docs[start:start + batch]]
                with connection:
                    connection.executemany(sql, rows)
            store._query_index = None  # noqa: SLF001 - rebuilt from the rows on the next query
    if target is None:
        repo.insert_many(name, docs)


def _empty_litemongo_collection(db, name):
    """(write lock, litemongo CollectionStore) of an empty embedded collection, else None."""
    from .store import EmbeddedDatabase

    if not isinstance(db, EmbeddedDatabase):
        return None
    try:
        store = db._database()[name]._store  # noqa: SLF001
        table = store._documents  # noqa: SLF001
        table._connection, table._table_name, table.encode_key, table._encode_doc  # noqa: B018, SLF001
        empty = len(table) == 0
    except AttributeError:  # another litemongo version: the checked path still works
        return None
    return (db._lock, store) if empty else None  # noqa: SLF001


def _user(i, random_seed, password_hash, created_at):
    username = f"demo{random_seed}_{i:05d}"
    return {
        "_id": ObjectId(),
        "username": username,
        "username_lower": username.lower(),
        "email": f"{username}@example.com",
        "password_hash": password_hash,
        "display_name": f"Demo user {i}",
        "bio": "",
        "avatar_url": None,
        "role": "user",
        "followers_count": 0,
        "following_count": 0,
        "posts_count": 0,
        "created_at": created_at,
    }
