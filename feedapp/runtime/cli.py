"""`flask --app feedapp ...`: `users promote <username>`, `seed`, `cache stats`, `cache invalidate` and
`recount`."""
import functools

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..config import ConfigError
from ..infra.mongo import MongoUnreachable, check_reachable, is_mongodb_uri, reported


def uses_store(command):
    """A MONGO_URI that cannot be used ends the command with one line, not a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        worker = current_app.extensions["feedapp"]
        config = worker.config
        try:
            if is_mongodb_uri(config.mongo_uri):
                check_reachable(config)  # before the first use logs its own warnings
            with reported(config):
                worker.ensure_indexes()  # a seed into a new store gets its unique indexes first
                return command(*args, **kwargs)
        except MongoUnreachable as err:
            raise click.ClickException(str(err)) from None

    return run

def needs_redis(command):
    """Without REDIS_URL (no server running beside the command), one line, not a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None

    return run


users = AppGroup("users", help="Manage users.")


@users.command("promote")
@click.argument("username")
@uses_store
def promote(username):
    """Make USERNAME an admin."""
    repo = current_app.extensions["feedapp"].repo
    doc = repo.set_role(username, "admin")
    if doc is None:
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"{doc['username']} is now an admin")


@click.command("seed")
@with_appcontext
@click.option("--users", "n_users", default=None, type=click.IntRange(min=1), help="How many users.")
@click.option("--posts", "n_posts", default=None, type=click.IntRange(min=0), help="How many posts.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the store already has users.")
@click.option("--seed", "random_seed", default=1, type=int, help="Random seed (same seed, same data).")
@uses_store
def seed(n_users, n_posts, if_empty, random_seed):
    """Fill the store with demo users, a Zipf-like follow graph and posts."""
    from .seed import seed_demo_data

    res = current_app.extensions["feedapp"]
    n_users = n_users or res.config.seed_users
    n_posts = res.config.seed_posts if n_posts is None else n_posts
    if if_empty and not res.repo.is_empty():
        click.echo("store already has data; nothing seeded")
        return
    summary = seed_demo_data(res.repo, n_users, n_posts, random_seed, fanout_limit=res.config.fanout_limit)
    click.echo(
        f"seeded {summary['users']} users, {summary['follows']} follows, {summary['posts']} posts "
        f"(password for every demo user: {summary['password']})"
    )


cache = AppGroup("cache", help="Look at and clear the cache tiers.")


@cache.command("stats")
@needs_redis
def cache_stats():
    """Print /api/cache/stats as a table (counters of every worker of the deployment)."""
    from ..observability.report import stats_report

    report = stats_report(current_app.extensions["feedapp"])
    tiers = report["tiers"]
    rows = [
        ("hit ratio (requests from L1 or L2)", f"{report['hit_ratio']:.2%}"),
        ("requests (L1 / L2 / L3)", "{l1} / {l2} / {l3}".format(**report["requests"])),
        ("L1 hits / misses", f"{tiers['l1']['hits']} / {tiers['l1']['misses']}"),
        ("L1 size / maxsize", f"{tiers['l1']['size']} / {tiers['l1']['maxsize']}"),
        ("L1 bytes / max bytes", f"{tiers['l1']['bytes']} / {tiers['l1']['max_bytes']}"),
        ("L2 hits / misses", f"{tiers['l2']['hits']} / {tiers['l2']['misses']}"),
        ("L2 keys, memory", f"{tiers['l2']['keys']}, {tiers['l2']['used_memory']}"),
        ("L3 reads", str(tiers["l3"]["reads"])),
        ("invalidations published / received", "{published} / {received}".format(**report["invalidations"])),
        ("acks / lease waits", "{acknowledged} / {lease_waits}".format(**report["invalidations"])),
        ("live workers", str(report["workers"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")


@cache.command("invalidate")
@click.option("--prefix", "prefixes", multiple=True, help='e.g. "profile:" or "feed:{<id>}"')
@click.option("--key", "keys", multiple=True, help='e.g. "profile:{<id>}"')
@needs_redis
def cache_invalidate(prefixes, keys):
    """Evict keys or prefixes from Redis and from every worker's L1."""
    res = current_app.extensions["feedapp"]
    if not prefixes and not keys:
        raise click.UsageError("give --key or --prefix")
    try:
        full_keys = [res.keys.from_client(k) for k in keys]
        full_prefixes = [res.keys.from_client(p) for p in prefixes]
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    count = res.start().writer.invalidate(keys=full_keys, prefixes=full_prefixes)
    click.echo(f"invalidated {count} Redis keys; every worker's L1 told")


@click.command("recount")
@with_appcontext
@uses_store
@needs_redis
def recount():
    """Recount every user's and post's counters from the source collections, and evict the
    cached profiles and posts whose counters changed (after a crash between a write and its
    counter update)."""
    res = current_app.extensions["feedapp"]
    targets = [("user", u["_id"]) for u in res.repo.db.users.find({}, {"_id": 1})]
    targets += [("post", p["_id"]) for p in res.repo.db.posts.find({}, {"_id": 1})]
    res.start().effects.verify(targets)
    click.echo(f"recounted {len(targets)} users and posts; those that changed are evicted from every cache")


def init_app(app):
    app.cli.add_command(users)
    app.cli.add_command(seed)
    app.cli.add_command(cache)
    app.cli.add_command(recount)
