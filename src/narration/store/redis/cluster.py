"""Redis Cluster URLs: `redis+cluster://host:port[,host:port…][/?options]`, and their clients.

Every `host:port` is a seed; redis-py's cluster client learns the rest of the cluster from
them and follows it through failovers and slot moves. `rediss+cluster://` uses TLS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .options import without_query_key

__all__ = ["CLUSTER_SCHEMES", "cluster_client", "is_cluster_url", "seeds_of"]

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """True for a `redis+cluster://` (or `rediss+cluster://`) URL."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


def seeds_of(url: str) -> tuple[str, list[tuple[str, int]]]:
    """(`url` as a plain `redis://` URL of its first seed, every seed as (host, port))."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for seed in hosts.split(","):
        host, _, port = seed.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Redis Cluster seed {seed!r} is not host:port (in {url!r})")
        seeds.append((host.strip("[]"), int(port)))
    scheme = "rediss" if parts.scheme == "rediss+cluster" else "redis"
    first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
    return urlunsplit((scheme, first, "/0", parts.query, "")), seeds


def cluster_client(url: str, per_node: int, **connection: Any) -> RedisCluster:
    """A cluster client of `url` with at most `per_node` connections to each node."""
    plain, seeds = seeds_of(url)
    return RedisCluster.from_url(
        without_query_key(plain, "max_connections"),
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        max_connections=per_node,
        protocol=2,
        decode_responses=False,
        socket_timeout=10.0,
        socket_connect_timeout=2.0,
        # A failover takes the cluster a few seconds: retry within a second or so, then the
        # store's own retries (writes buffered, reads waiting) take over.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
        **connection,
    )
