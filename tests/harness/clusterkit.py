# SPDX-License-Identifier: Apache-2.0
# A Redis Cluster for tests: cluster-enabled redis-server nodes on loopback, joined with redis-cli --cluster create, with resharding and node lookups.
"""RedisCluster(h, masters=3, replicas=0): redis-server nodes with deploy/redis.conf and
cluster mode on (each on a port whose cluster-bus port, +10000, is free too), joined by
`redis-cli --cluster create`, ready when every node reports cluster_state:ok (and every
replica is in sync). `url` names only the first two nodes: the services learn the rest from
CLUSTER SLOTS."""

import logging
import random
import socket
import subprocess

import redis as redis_lib
from redis.cluster import ClusterNode, RedisCluster as ClusterClient

import twinharness as th

CLUSTER_TIMEOUT_S = 60
# redis-py logs a traceback for every redirect its cluster client follows (MOVED/ASK while
# the tests reshard): expected here, and noise in the test output.
logging.getLogger("redis.cluster").setLevel(logging.CRITICAL)


def port_free(port):
    """Whether a TCP port of the loopback address can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((th.LOOPBACK, port))
            return True
        except OSError:
            return False


def safely(fn):
    """fn() while a cluster fails over: a connection error counts as 'not yet' (for wait_until)."""
    def probe():
        try:
            return fn()
        except Exception:  # pylint: disable=broad-except  (redis-py raises several kinds)
            return False
    return probe


def cluster_port():
    """A port P with P and its cluster-bus port P + 10000 both free."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        if port_free(port) and port_free(port + 10000):
            return port
    raise AssertionError("no free port pair for a Redis Cluster node")


class RedisCluster:
    def __init__(self, h, masters=3, replicas=0, name="rc"):
        self.h = h
        self.nodes = []
        for i in range(masters * (1 + replicas)):
            node = h.redis(start=False, name=f"{name}{i}", port=cluster_port(),
                           cluster_enabled="yes", cluster_config_file="nodes.conf",
                           cluster_node_timeout=2000)
            node.start()
            self.nodes.append(node)
        self.cli("--cluster", "create", *self.addrs(), "--cluster-replicas", str(replicas),
                 "--cluster-yes")
        th.wait_until(self.all_ok, CLUSTER_TIMEOUT_S, interval=0.2,
                      what="every cluster node to report cluster_state:ok")
        if replicas:
            th.wait_until(lambda: len(self.masters()) == masters and all(
                self.role(i) == "master" or self.replica_in_sync(i)
                for i in range(len(self.nodes))), CLUSTER_TIMEOUT_S, interval=0.2,
                what="every replica to be in sync with its master")
        self._clients = []

    def role(self, i):
        """'master' or 'slave' (what ROLE says), None when the node does not answer."""
        if not self.nodes[i].running:
            return None
        try:
            role = self.nodes[i].client().execute_command("ROLE")[0]
        except redis_lib.RedisError:
            return None
        return role.decode() if isinstance(role, bytes) else role

    def replica_in_sync(self, i):
        info = self.nodes[i].client().info("replication")
        return info.get("master_link_status") == "up"

    def masters(self):
        return [i for i in range(len(self.nodes)) if self.role(i) == "master"]

    def all_ok(self):
        """Every running node reports cluster_state:ok."""
        try:
            return all("cluster_state:ok" in self._info(n) for n in self.nodes if n.running)
        except redis_lib.RedisError:
            return False

    @staticmethod
    def _info(node):
        info = node.client().execute_command("CLUSTER", "INFO")
        return info.decode() if isinstance(info, bytes) else info

    def addrs(self):
        return [f"{th.LOOPBACK}:{n.port}" for n in self.nodes]

    @property
    def url(self):
        return "redis+cluster://" + ",".join(self.addrs()[:2])

    def cli(self, *args, timeout=CLUSTER_TIMEOUT_S):
        res = subprocess.run(["redis-cli", *args], capture_output=True, text=True,
                             timeout=timeout, check=False, env=th.clean_env())
        if res.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(args[:3])} failed ({res.returncode}):\n"
                                 f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        return res.stdout


    def node_id(self, i):
        return self.nodes[i].client().execute_command("CLUSTER", "MYID")

    def slot_of(self, key):
        alive = next(n for n in self.nodes if n.running)
        return int(alive.client().execute_command("CLUSTER", "KEYSLOT", key))

    def owner(self, key):
        """Index of the node that serves key now (from node 0's view of the map)."""
        slot = self.slot_of(key)
        alive = next(n for n in self.nodes if n.running)
        for lo, hi, master, *_ in alive.client().execute_command("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                port = int(master[1])
                return next(i for i, n in enumerate(self.nodes) if n.port == port)
        raise AssertionError(f"no node serves slot {slot}")

    def reshard(self, src, dst, slots, timeout=CLUSTER_TIMEOUT_S):
        """Moves `slots` slots (with their keys) from node src to node dst."""
        return self.cli("--cluster", "reshard", self.addrs()[src],
                        "--cluster-from", self.node_id(src), "--cluster-to", self.node_id(dst),
                        "--cluster-slots", str(slots), "--cluster-yes", timeout=timeout)

    def client(self):
        """A cluster-aware redis-py client (follows MOVED/ASK)."""
        c = ClusterClient(startup_nodes=[ClusterNode(th.LOOPBACK, n.port) for n in self.nodes],
                          decode_responses=True, socket_timeout=5)
        self._clients.append(c)
        return c

    def dbsize(self, i):
        return self.nodes[i].client().dbsize()

    def close(self):
        for c in self._clients:
            try:
                c.close()
            except redis_lib.RedisError:
                pass
        self._clients.clear()


class ClusterView:
    """What ingestkit's readers (total_history, history_seq_report) need of a stack: `r`, a
    client of the whole cluster (a fresh one knows the current slot map)."""

    def __init__(self, cluster):
        self.r = cluster.client()
