"""`flask --app feedapp users promote <username>` and `flask --app feedapp seed`."""
import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

users = AppGroup("users", help="Manage users.")


@users.command("promote")
@click.argument("username")
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


def init_app(app):
    app.cli.add_command(users)
    app.cli.add_command(seed)
