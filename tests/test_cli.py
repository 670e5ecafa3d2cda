"""`flask --app feedapp users promote` and `flask --app feedapp seed`, and start-up checks."""
import os
import subprocess
import sys
from pathlib import Path

from feedapp import create_app
from feedapp.config import Config
from feedapp.infra.store import close, connect

ROOT = Path(__file__).resolve().parents[1]


def test_promote_makes_an_admin(app, make_user, worker):
    user = make_user("carol")
    result = app.test_cli_runner().invoke(args=["users", "promote", "CAROL"])
    assert result.exit_code == 0, result.output
    assert worker.repo.get_user_by_username("carol")["role"] == "admin"
    assert user.username in result.output


def test_promote_an_unknown_user_fails_clearly(app):
    result = app.test_cli_runner().invoke(args=["users", "promote", "nobody"])
    assert result.exit_code != 0
    assert "no user named 'nobody'" in result.output


def test_seed_makes_exact_counters_and_a_skewed_graph(config, redis_client):
    app = create_app(config.with_overrides(fanout_limit=15))
    app.extensions["feedapp"].start()
    try:
        result = app.test_cli_runner().invoke(args=["seed", "--users", "60", "--posts", "300"])
        assert result.exit_code == 0, result.output
        db = app.extensions["feedapp"].repo.db
        users = list(db.users.find())
        assert len(users) == 60 and db.posts.count_documents({}) == 300
        for user in users:
            assert user["followers_count"] == db.follows.count_documents({"followee_id": user["_id"]})
            assert user["following_count"] == db.follows.count_documents({"follower_id": user["_id"]})
            assert user["posts_count"] == db.posts.count_documents({"author_id": user["_id"]})
            assert (user.get("fanout") == "pull") == (user["followers_count"] >= 15)
        followers = sorted((u["followers_count"] for u in users), reverse=True)
        assert followers[0] >= 5 * max(1, followers[len(followers) // 2])  # a few are very popular
        again = app.test_cli_runner().invoke(args=["seed", "--if-empty"])
        assert again.exit_code == 0 and "nothing seeded" in again.output
        assert db.users.count_documents({}) == 60
    finally:
        app.extensions["feedapp"].close()


def test_production_start_without_a_secret_fails_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "REDIS_URL", "MONGO_URI")}
    env.update(FEEDAPP_ENV="production", DATA_DIR=str(tmp_path / "var"), PORT="0", WORKERS="1")
    run = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "JWT_SECRET is not set" in run.stdout + run.stderr


def test_without_redis_store_commands_work_and_cache_commands_say_why_in_one_line(tmp_path):
    """A CLI command beside no running server: promoting needs only the store; evicting needs
    Redis and says so without a traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AUTH_REDIS_URL", "MONGO_URI")}
    env.update(DATA_DIR=str(tmp_path / "var"), SEED_ON_START="0")

    def flask(*args):
        return subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    seeded = flask("seed", "--users", "3", "--posts", "5")
    assert seeded.returncode == 0, seeded.stderr
    store = connect(Config(data_dir=tmp_path / "var"))
    try:  # the seed made the store's indexes first: usernames are unique from the start
        assert store.users.index_information()["username_unique"]["unique"]
    finally:
        close(store)
    promoted = flask("users", "promote", "demo1_00000")
    assert promoted.returncode == 0 and "now an admin" in promoted.stdout, promoted.stderr
    for command in (("cache", "invalidate", "--prefix", "profile:"), ("cache", "stats")):
        run = flask(*command)
        assert run.returncode != 0, command
        assert "REDIS_URL is not set" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_cache_stats_prints_a_table(app, client, make_user):
    user = make_user()
    client.get(f"/api/users/{user.id}")
    client.get(f"/api/users/{user.id}")
    result = app.test_cli_runner().invoke(args=["cache", "stats"])
    assert result.exit_code == 0, result.output
    assert "requests (L1 / L2 / L3)" in result.output and "1 / 0 / 1" in result.output


def test_cache_invalidate_evicts_and_refuses_auth_keys(app, client, make_user, redis_client):
    user = make_user()
    client.get(f"/api/users/{user.id}")
    key = f"feedapp:v1:cache:profile:{{{user.id}}}"
    assert redis_client.exists(key)
    result = app.test_cli_runner().invoke(args=["cache", "invalidate", "--prefix", "profile:"])
    assert result.exit_code == 0 and "invalidated 1" in result.output
    assert not redis_client.exists(key)
    assert client.get(f"/api/users/{user.id}").headers["X-Cache"] == "L3"
    refused = app.test_cli_runner().invoke(args=["cache", "invalidate", "--prefix", "auth:session:"])
    assert refused.exit_code != 0 and "Not a cache key" in refused.output


def test_recount_fixes_counters_from_the_source_and_evicts_their_caches(app, client, make_user, worker):
    from bson import ObjectId

    author, fan = make_user(), make_user()
    post_id = client.post("/api/posts", json={"content": "counted"}, headers=author.headers).get_json()["id"]
    client.post(f"/api/posts/{post_id}/like", headers=fan.headers)
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 1  # cached
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 1  # cached
    # A crash between writes and their counter updates, as the store would keep it:
    worker.repo.db.users.update_one({"_id": ObjectId(author.id)}, {"$set": {"posts_count": 7}})
    worker.repo.db.posts.update_one({"_id": ObjectId(post_id)}, {"$set": {"likes_count": 0}})
    worker.writer.invalidate(keys=[worker.keys.profile(ObjectId(author.id)), worker.keys.post(ObjectId(post_id))])
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 7
    result = app.test_cli_runner().invoke(args=["recount"])
    assert result.exit_code == 0, result.output
    assert client.get(f"/api/users/{author.id}").get_json()["posts_count"] == 1
    assert client.get(f"/api/posts/{post_id}").get_json()["likes_count"] == 1
