# SPDX-License-Identifier: Apache-2.0
# A loopback TCP proxy for fault tests that can black-hole its connections (a network partition) and heal them.
"""TcpProxy: listens on a free 127.0.0.1 port and forwards every connection to an upstream
port on 127.0.0.1, two threads per connection (one per direction).

partition() stops forwarding in both directions without closing anything: the proxy stops
reading, so bytes wait in the kernel's socket buffers as packets would wait for a dead link,
and new connections wait in the listen backlog unanswered (no CONNACK ever comes). heal()
resumes: what waited is forwarded in order, a side that was closed meanwhile is closed on
the other side after its last bytes, and waiting connections whose client has already given
up (POLLRDHUP) are dropped instead of being replayed to the upstream.

Bounded: every wait is a select/poll with a 0.1 s timeout; close() ends all threads within
a few tenths of a second."""

import select
import socket
import threading

from twinutil import LOOPBACK, free_port

_TICK_S = 0.1
_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_port, name="proxy", port=None):
        self.name = name
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self._open = threading.Event()  # set: forwarding; clear: partitioned
        self._open.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._socks = set()
        self._threads = []
        self.accepted = 0
        self.dropped_waiting = 0  # connections given up by their client during a partition
        self.partitions = 0
        self.bytes = {"up": 0, "down": 0}
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, self.port))
        self._listener.listen(64)
        self._spawn(self._accept_loop, f"{name}-accept")

    @property
    def url(self):
        return f"mqtt://{LOOPBACK}:{self.port}"

    @property
    def partitioned(self):
        return not self._open.is_set()

    def partition(self):
        self.partitions += 1
        self._open.clear()

    def heal(self):
        self._open.set()

    def close(self):
        self._closed.set()
        self._open.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks + [self._listener]:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(2)

    # -- internals --

    def _spawn(self, target, name, *args):
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _track(self, s):
        with self._lock:
            self._socks.add(s)

    def _forget(self, *socks):
        with self._lock:
            for s in socks:
                self._socks.discard(s)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def _wait_open(self):
        """Blocks while partitioned; False once closed."""
        while not self._closed.is_set():
            if self._open.wait(_TICK_S):
                return not self._closed.is_set()
        return False

    @staticmethod
    def _peer_gone(sock):
        """True when the client shut its side down (it gave up while we held it)."""
        p = select.poll()
        p.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        return bool(p.poll(0))

    def _accept_loop(self):
        while self._wait_open():
            try:
                r, _, _ = select.select([self._listener], [], [], _TICK_S)
                if not r or not self._open.is_set():
                    continue  # a connection arriving in a partition waits in the backlog
                down, _ = self._listener.accept()
            except (OSError, ValueError):  # ValueError: select on the closed listener
                return
            if self._peer_gone(down):
                self.dropped_waiting += 1
                down.close()
                continue
            try:
                up = socket.create_connection((LOOPBACK, self.upstream_port), timeout=2)
            except OSError:
                down.close()
                continue
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
                self._track(s)
            self.accepted += 1
            n = self.accepted
            self._spawn(self._pump, f"{self.name}-{n}-up", down, up, "up")
            self._spawn(self._pump, f"{self.name}-{n}-down", up, down, "down")

    def _pump(self, src, dst, direction):
        """Copies src to dst until EOF or an error; reads nothing while partitioned."""
        try:
            while self._wait_open():
                r, _, _ = select.select([src], [], [], _TICK_S)
                if not r or not self._open.is_set():
                    continue
                data = src.recv(_CHUNK)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
                with self._lock:
                    self.bytes[direction] += len(data)
        except (OSError, ValueError):  # ValueError: the other pump closed the socket
            pass
        finally:
            # Either side ending ends the connection on both sides (MQTT has no half-close).
            self._forget(src, dst)
