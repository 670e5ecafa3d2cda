"""Demo data: users, a Zipf-like follow graph (a few very popular users), and posts."""
import itertools
import random
from datetime import timedelta

from bson import ObjectId

from ..auth import hash_password
from ..repository import utcnow
from ..repository.users import new_user

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
        repo.insert_many(name, docs, batch=5000)
    return {"users": len(users), "follows": len(follows), "posts": len(posts), "password": DEMO_PASSWORD}


def _user(i, random_seed, password_hash, created_at):
    username = f"demo{random_seed}_{i:05d}"
    return {"_id": ObjectId(),
            **new_user(username, f"{username}@example.com", password_hash, f"Demo user {i}", created_at)}
