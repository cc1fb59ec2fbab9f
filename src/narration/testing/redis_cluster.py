"""A private, throw-away Redis Cluster (3 primaries + 3 replicas) on free 127.0.0.1 ports.

    cluster = RedisCluster.start()           # redis-server and redis-cli found on PATH
    store_url = cluster.url(prefix="t1:")    # redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…
    ...
    cluster.stop()

Each node is a `redis-server --cluster-enabled yes` child process with a directory of its own
(removed by `stop()`); `redis-cli --cluster create … --cluster-replicas 1` joins them. Tests
use `failover()` to promote a primary's replica, or `kill()` a primary outright.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .._process import free_port, stop_process

__all__ = ["ClusterNode", "RedisCluster"]

_CREATE_OPTIONS = ("--cluster-replicas", "1", "--cluster-yes")
_NODE_OPTIONS = (
    *("--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
    *("--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"),
    *("--repl-ping-replica-period", "1", "--repl-diskless-sync-delay", "0"),
    *("--save", "", "--appendonly", "no"),
    *("--daemonize", "no", "--loglevel", "notice", "--logfile", "redis.log"),
)


@dataclass
class ClusterNode:
    """One `redis-server` of the cluster."""

    port: int
    process: subprocess.Popen[bytes]
    workdir: str


@dataclass
class RedisCluster:
    """Six `redis-server` processes forming one cluster (three primaries, one replica each)."""

    server: str
    cli: str
    nodes: list[ClusterNode] = field(default_factory=list)

    @classmethod
    def start(
        cls, server: str | None = None, cli: str | None = None, timeout: float = 30.0
    ) -> RedisCluster:
        """Start six nodes, create the cluster and wait (up to `timeout` s) until it is ok."""
        found_server = server or shutil.which("redis-server")
        found_cli = cli or shutil.which("redis-cli")
        if found_server is None or found_cli is None:
            raise FileNotFoundError("redis-server and redis-cli are needed (not on PATH)")
        cluster = cls(found_server, found_cli)
        try:
            deadline = time.monotonic() + timeout
            for _ in range(6):
                cluster.nodes.append(cluster._start_answering_node(deadline))
            addresses = [f"127.0.0.1:{node.port}" for node in cluster.nodes]
            subprocess.run(
                [found_cli, "--cluster", "create", *addresses, *_CREATE_OPTIONS],
                capture_output=True,
                timeout=timeout,
                check=True,
            )
            cluster._wait(cluster._ok_everywhere, deadline)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_answering_node(self, deadline: float) -> ClusterNode:
        """A node that answers PING; one that exits first (its port was taken between probing
        and binding) is started again on other ports, up to three times."""
        for _ in range(3):
            node = self._start_node()
            while time.monotonic() < deadline and node.process.poll() is None:
                if self.cli_call(node.port, "PING") == "PONG":
                    return node
                time.sleep(0.05)
            log = Path(node.workdir, "redis.log")
            said = log.read_text(errors="replace")[-500:] if log.exists() else ""
            stop_process(node.process, grace=1.0)
            shutil.rmtree(node.workdir, ignore_errors=True)
            if time.monotonic() >= deadline:
                break
        raise RuntimeError(f"a Redis Cluster node did not start in time; its log ends: {said}")

    def _start_node(self) -> ClusterNode:
        workdir = tempfile.mkdtemp(prefix="narration-cluster-")
        taken = {n.port for n in self.nodes}
        port = free_port(exclude=taken)
        bus = free_port(exclude={*taken, port})  # the cluster bus, not port + 10000
        ports = ("--port", str(port), "--cluster-port", str(bus))
        process = subprocess.Popen(
            [self.server, *ports, *_NODE_OPTIONS, "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ClusterNode(port, process, workdir)

    @staticmethod
    def _wait(check: object, deadline: float) -> None:
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not become ready in time")

    def cli_call(self, port: int, *args: str) -> str:
        """One command through `redis-cli` to the node on `port`; its reply, stripped."""
        try:
            done = subprocess.run(
                [self.cli, "-p", str(port), *args], capture_output=True, timeout=5, check=False
            )
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.decode(errors="replace").strip()

    def _ok_everywhere(self) -> bool:
        """Every live node sees the cluster ok, and every replica is in sync with its primary
        (until then a failover would promote a replica without the data)."""
        alive = [node for node in self.nodes if node.process.poll() is None]
        if not all("cluster_state:ok" in self.cli_call(n.port, "CLUSTER", "INFO") for n in alive):
            return False
        for node in alive:
            info = self.cli_call(node.port, "INFO", "replication")
            if "role:slave" in info and "master_link_status:up" not in info:
                return False
        return True

    def primaries(self) -> list[int]:
        """The ports of the nodes that are primaries now."""
        return [node.port for node in self.nodes if self.role(node.port) == "master"]

    def role(self, port: int) -> str:
        """`master` or `slave` (as `ROLE` says), or "" when the node does not answer."""
        reply = self.cli_call(port, "ROLE")
        return reply.splitlines()[0] if reply else ""

    def replica_of(self, primary_port: int) -> int:
        """The port of a replica of the primary on `primary_port`."""
        for node in self.nodes:
            if node.port == primary_port or node.process.poll() is not None:
                continue
            lines = self.cli_call(node.port, "ROLE").splitlines()
            if lines and lines[0] == "slave" and lines[2] == str(primary_port):
                return node.port
        raise LookupError(f"no replica of 127.0.0.1:{primary_port}")

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port` (its replica is promoted by the cluster, ~2 s later)."""
        for node in self.nodes:
            if node.port == port:
                node.process.kill()
                node.process.wait(timeout=10)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every live node says `cluster_state:ok`."""
        self._wait(self._ok_everywhere, time.monotonic() + timeout)

    def url(self, prefix: str | None = None, **options: object) -> str:
        """`redis+cluster://127.0.0.1:<port>,…` (every node a seed), with store options."""
        query = dict(options, prefix=prefix) if prefix is not None else dict(options)
        text = "&".join(f"{key}={quote(str(value), safe=':')}" for key, value in query.items())
        seeds = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{seeds}" + (f"/?{text}" if text else "")

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove their directories."""
        for node in self.nodes:
            if node.process.poll() is None:
                stop_process(node.process, grace=5)
            with contextlib.suppress(OSError):
                shutil.rmtree(Path(node.workdir))
        self.nodes.clear()
