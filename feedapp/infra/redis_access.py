"""The one place feedapp makes Redis clients, and the one way it sends commands that touch
several keys, so that the same code runs on a single Redis and on a Redis Cluster.

URLs: `REDIS_URL` / `AUTH_REDIS_URL` of the form
`redis+cluster://[user:password@]host:port[,host:port...]` (or `rediss+cluster://` for TLS)
name a Redis Cluster, reached through redis-py's `RedisCluster` with those nodes as startup
nodes; every other URL (`redis://`, `rediss://`, `unix://`) names one Redis (`redis.Redis`).

Slots: a Redis Cluster refuses a script, a transaction or a multi-key command whose keys lie
in different hash slots. `Batch` is the mechanism for everything that touches several keys:
callers group keys with `slot_groups` and add one command (or script) per group; the batch
goes out as one non-transactional pipeline, which redis-py splits node by node on a cluster.
On a single Redis every key is in one group, so the commands sent are the ones sent before.
Keys that must change together atomically (a value and its lease) share a hash tag instead
(feedapp/cache/keys.py).
"""
import hashlib
import threading
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Encoder
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.retry import Retry

from ..config import ConfigError

# What a Redis call may raise: RedisCluster also raises RedisClusterException (e.g. a slot no
# live node covers during a failover), which is not a RedisError.
REDIS_ERRORS = (RedisError, RedisClusterException)
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
# A cluster call that meets a dead node or a moved slot refreshes the topology and tries again
# soon, twice at most: a cache call must fail fast (the breaker then skips Redis) rather than
# wait out a failover (about cluster-node-timeout plus an election).
CLUSTER_RETRY = Retry(EqualJitterBackoff(cap=0.05, base=0.01), 2)


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple:
    """(startup nodes [(host, port)], username, password, tls) of a cluster URL; ConfigError
    with the expected form when it is malformed."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"a Redis Cluster URL lists its nodes as host:port separated by commas, e.g. "
                f"redis+cluster://10.0.0.1:7000,10.0.0.2:7000; got {item.strip()!r}"
            )
        nodes.append((host.strip("[]"), int(port)))
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError("a Redis Cluster URL takes no database number, path or options (cluster mode has db 0 only)")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    return nodes, unquote(username) or None, unquote(password) or None, CLUSTER_SCHEMES[parts.scheme]


def check_url(url: str | None):
    """Raise ConfigError when url is a malformed cluster URL (checked once at start)."""
    if is_cluster_url(url):
        cluster_nodes(url)


def connect(url: str, timeout: float = 1.0, **options):
    """A client for url (a `redis.Redis`, or a `RedisCluster` for a cluster URL) whose calls
    fail within about `timeout` seconds instead of hanging on a dead server."""
    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout, **options}
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, health_check_interval=30, **common)
    nodes, username, password, tls = cluster_nodes(url)
    common.pop("retry", None)  # cluster mode has its own retry setting, below
    return LazyCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        username=username, password=password, ssl=tls, retry=CLUSTER_RETRY, **common,
    )


class LazyCluster(RedisCluster):
    """A RedisCluster that reaches its startup nodes on first use, not when it is built
    (redis-py's connects in its constructor). A worker then boots while the cluster cannot be
    reached: its Redis calls fail as Redis errors, so reads fall through to the store and
    writes degrade as with any Redis outage (docs/design.md, rule 9), and each use tries
    again until the cluster answers."""

    def __init__(self, **options):  # RedisCluster.__init__ runs on first use (__getattr__)
        self.__dict__.update(_lazy_options=options, _lazy_lock=threading.Lock(), _lazy_ready=False)

    def __getattr__(self, name):
        # Reached only for what RedisCluster.__init__ sets (methods are found on the class).
        if name.startswith("_lazy") or name.startswith("__") or self._lazy_ready:
            raise AttributeError(name)
        with self._lazy_lock:
            if not self._lazy_ready:
                RedisCluster.__init__(self, **self._lazy_options)
                self._lazy_ready = True
        return object.__getattribute__(self, name)

    def get_encoder(self):
        # Script objects (register_script) ask for it when made: answer without connecting.
        if self._lazy_ready:
            return super().get_encoder()
        options = self._lazy_options
        return Encoder(options.get("encoding", "utf-8"), options.get("encoding_errors", "strict"),
                       options.get("decode_responses", False))

    def close(self):
        if self._lazy_ready:
            super().close()

    def __del__(self):
        if self.__dict__.get("_lazy_ready"):
            super().__del__()


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def slot_groups(client, keys) -> list:
    """keys grouped by hash slot, each group in the keys' order; one group on a single Redis
    (and none for no keys)."""
    keys = list(keys)
    if not keys:
        return []
    if not is_cluster(client):
        return [keys]
    groups = {}
    for key in keys:
        groups.setdefault(client.keyslot(key), []).append(key)
    return list(groups.values())


class Script:
    """A Lua script for `Batch`; every key it is given must lie in one slot."""

    def __init__(self, text: str):
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


class Batch:
    """Commands sent together on one non-transactional pipeline; `execute` returns their
    replies in order (raising the first error, as a pipeline does).

    Scripts go as EVALSHA. A node that does not know one yet (a fresh or newly promoted
    node) answers NOSCRIPT and runs nothing; the script is then loaded and only those
    commands are sent again, so the commands of one batch must not depend on each other's
    effects (none of feedapp's do: each touches its own keys). A cluster pipeline refuses
    multi-key command methods, so every command is queued with `execute_command` and must
    name keys of one slot.
    """

    def __init__(self, client):
        self._client = client
        self._commands = []  # (args, script or None)

    def __len__(self):
        return len(self._commands)

    def command(self, *args) -> "Batch":
        self._commands.append((args, None))
        return self

    def script(self, script: Script, keys, args=()) -> "Batch":
        keys = list(keys)
        self._commands.append((("EVALSHA", script.sha, len(keys), *keys, *args), script))
        return self

    def execute(self) -> list:
        if not self._commands:
            return []
        replies = self._send([args for args, _ in self._commands])
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for script in {self._commands[i][1].sha: self._commands[i][1] for i in missing}.values():
                self._client.script_load(script.text)  # on every primary of a cluster
            for i, reply in zip(missing, self._send([self._commands[i][0] for i in missing])):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _send(self, commands) -> list:
        with self._client.pipeline(transaction=False) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            return pipe.execute(raise_on_error=False)


def publish(client, channel: str, message: bytes) -> int | None:
    """PUBLISH; the number of listeners that received it, or None when that is unknown.

    On a cluster every listener subscribes on the master that owns the channel name's slot
    (see `subscriber`), so PUBLISH goes there and its reply counts them all. When that node
    cannot be reached (it died, or our view of the cluster is older than a failover that
    listeners already followed), the topology is refreshed and the new owner tried; failing
    that, the message goes out through any other node, since a cluster forwards PUBLISH to
    every node, and the count is unknown (None). Raises when no node takes it.
    """
    if not is_cluster(client):
        return client.publish(channel, message)
    try:
        return _publish_on_owner(client, channel, message)
    except REDIS_ERRORS:
        try:
            client.nodes_manager.initialize()
            return _publish_on_owner(client, channel, message)
        except REDIS_ERRORS:
            pass
    for node in client.get_nodes():
        try:
            node.redis_connection.publish(channel, message)
            return None
        except REDIS_ERRORS:
            continue
    raise redis.ConnectionError(f"no node of the cluster took the PUBLISH on {channel!r}")


def _publish_on_owner(client, channel, message) -> int:
    return client.execute_command("PUBLISH", channel, message, target_nodes=client.get_node_from_key(channel))


def subscriber(url: str, timeout: float, channel: str, cluster=None):
    """A new single-node client for one listener's subscription, without silent retries (a
    broken subscription must surface so L1 gets cleared). On a cluster: a connection to the
    master that owns channel's slot, looked up afresh (after a failover it is another node).
    """
    no_retry = Retry(NoBackoff(), 0)
    if cluster is None:
        return connect(url, timeout, retry=no_retry)
    cluster.nodes_manager.initialize()
    node = cluster.get_node_from_key(channel)
    _, username, password, tls = cluster_nodes(url)
    return redis.Redis(host=node.host, port=node.port, username=username, password=password, ssl=tls,
                       socket_timeout=timeout, socket_connect_timeout=timeout, retry=no_retry)


def serves_slot_of(client, key: str) -> bool:
    """True while the node client is connected to is the master serving key's slot (asked
    of that node itself, on a connection of its own: a subscribed one cannot ask)."""
    slot = key_slot(key.encode())
    my_id = client.execute_command("CLUSTER MYID")
    my_id = my_id.decode() if isinstance(my_id, bytes) else my_id
    for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            owner = master[2]
            return (owner.decode() if isinstance(owner, bytes) else owner) == my_id
    return False


def subscription_check(client, channel: str):
    """The Listener's node_check for client: None on a single Redis."""
    return (lambda node_client: serves_slot_of(node_client, channel)) if is_cluster(client) else None


def primaries_total(client, *command, field=None) -> int:
    """A numeric reply (or one field of a dict reply) summed over every primary of a
    cluster; a single Redis's own value. E.g. ("DBSIZE",), ("INFO", "memory") "used_memory"."""
    def value(reply):
        return int(reply[field] if field else reply)

    if not is_cluster(client):
        return value(client.execute_command(*command))
    replies = client.execute_command(*command, target_nodes=RedisCluster.PRIMARIES)
    many = isinstance(replies, dict) and not (field and field in replies)  # {node: reply}
    return sum(value(reply) for reply in (replies.values() if many else [replies]))


def used_memory_human(client) -> str:
    """Memory used, as Redis writes it ("1.20M"); summed over the primaries of a cluster."""
    if not is_cluster(client):
        return client.info("memory").get("used_memory_human", "0B")
    total = float(primaries_total(client, "INFO", "memory", field="used_memory"))
    for unit in ("B", "K", "M", "G"):
        if total < 1024 or unit == "G":
            return f"{total:.2f}{unit}" if unit != "B" else f"{int(total)}B"
        total /= 1024
