"""The pymongo client for a real MongoDB: a replica set, a sharded cluster, or `mongodb+srv`.

`connect_mongo(config)` promises a client that:
- has writes acknowledged by MONGO_WRITE_CONCERN (default `majority`, journaled) within
  MONGO_WTIMEOUT_MS, so an acknowledged write survives the loss of the primary;
- retries a write (and a read) once when a failover interrupts it (retryable writes: the
  server recognises the retry, so an `$inc` is never applied twice);
- reads from the primary, whatever the URI says: every read may refill a shared cache, and
  only the primary has every write that returned (docs/deploy.md, "Read preference").
  The one exception, `explore_read_preference(config)`, is for the explore queries alone;
- waits at most MONGO_TIMEOUT_MS for a suitable server (or a TCP connection) and
  MONGO_SOCKET_TIMEOUT_MS for an answer.
feedapp's settings override the same options written in the URI. Building the client does
not connect (pymongo connects in the background); a `mongodb+srv://` URI is resolved
through DNS (SRV and TXT records) when the client is built.

`reported(config)` turns a pymongo error into `MongoUnreachable`, whose message is one line
for operators: the URI without its password, what failed, and the timeout waited.
"""
import re
from contextlib import contextmanager

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.read_preferences import Nearest, Primary, PrimaryPreferred, Secondary, SecondaryPreferred

READ_PREFERENCES = {
    "primary": Primary,
    "primarypreferred": PrimaryPreferred,
    "secondary": Secondary,
    "secondarypreferred": SecondaryPreferred,
    "nearest": Nearest,
}


def is_mongodb_uri(uri: str | None) -> bool:
    return bool(uri) and uri.startswith(("mongodb://", "mongodb+srv://"))


def connect_mongo(config):
    """The Database named by the URI's path (else MONGO_DB) on a new, lazy client."""
    client = MongoClient(config.mongo_uri, **client_options(config))
    return client.get_default_database(default=config.mongo_db)


def client_options(config) -> dict:
    """MongoClient keyword arguments for `config` (they take precedence over the URI's)."""
    return {
        "tz_aware": False,
        "w": write_concern_w(config.mongo_write_concern),
        "journal": config.mongo_journal,
        "wTimeoutMS": config.mongo_wtimeout_ms,
        "retryWrites": True,
        "retryReads": True,
        "readPreference": "primary",
        "serverSelectionTimeoutMS": config.mongo_timeout_ms,
        "connectTimeoutMS": config.mongo_timeout_ms,
        "socketTimeoutMS": config.mongo_socket_timeout_ms,
        "appname": "feedapp",
    }


def write_concern_w(value: str):
    """"majority" stays a string, a member count becomes an int (pymongo wants either)."""
    return int(value) if value.isdigit() else value


def explore_read_preference(config):
    """The read preference of the explore queries, or None when they read the primary like
    everything else (the default, and always on the embedded or in-memory store)."""
    mode = config.mongo_explore_read_preference
    if mode == "primary" or not is_mongodb_uri(config.mongo_uri):
        return None
    return READ_PREFERENCES[mode](max_staleness=config.mongo_max_staleness_s)


class MongoUnreachable(RuntimeError):
    """MONGO_URI's MongoDB cannot be used; the message is one line that says why.

    A RuntimeError, so gunicorn prints it as one `Error:` line and exits 1."""


@contextmanager
def reported(config):
    """Raise MongoUnreachable, not a pymongo error, when MONGO_URI's MongoDB fails inside."""
    try:
        yield
    except PyMongoError as err:
        if not is_mongodb_uri(config.mongo_uri):
            raise
        raise MongoUnreachable(failure_message(config, err)) from None


def check_reachable(config):
    """Ping MONGO_URI's MongoDB on a client of its own; MongoUnreachable when it cannot."""
    with reported(config):
        client = MongoClient(config.mongo_uri, **client_options(config))
        try:
            client.admin.command("ping")
        finally:
            client.close()


def failure_message(config, err: PyMongoError) -> str:
    where = redact(config.mongo_uri)
    if isinstance(err, ConnectionFailure):
        return (f"cannot reach MongoDB at {where} within {config.mongo_timeout_ms} ms "
                f"(MONGO_TIMEOUT_MS): {_reason(err)}")
    return f"cannot use MongoDB at {where}: {_reason(err)}"


def redact(uri: str) -> str:
    """The URI without its password (nor a TLS key file's)."""
    uri = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", uri)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", uri)


def _reason(err: PyMongoError) -> str:
    # What follows ", Timeout:" is pymongo's topology description, and ", full error:" the
    # server's raw reply: useful in a debugger, noise in a start-up message.
    text = re.split(r", Timeout: |, full error: ", str(err), maxsplit=1)[0]
    text = re.sub(r" \(configured timeouts: [^)]*\)", "", text).strip()
    if text.startswith("No servers found yet"):  # connected (or still trying) and heard nothing
        return "no server answered"
    return text.splitlines()[0][:300] if text else type(err).__name__
