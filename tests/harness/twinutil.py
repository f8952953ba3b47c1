# SPDX-License-Identifier: Apache-2.0
# Small test helpers with no process of their own: clock, bounded waits, free loopback ports, Prometheus text and HTTP GET.
"""Helpers shared by every Twinloop test module (re-exported by twinharness)."""

import http.client
import re
import socket
import threading
import time

LOOPBACK = "127.0.0.1"


def now_ms():
    """Wall-clock Unix time in ms (device time, as devices send it)."""
    return time.time_ns() // 1_000_000


_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def duration_ms(text):
    """A plant-model duration ("45s", "8h", "1h30m", or seconds as a number) in ms."""
    if isinstance(text, (int, float)):
        return int(text * 1000)
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * _DURATION_MS[u] for n, u in parts)


class WaitTimeout(AssertionError):
    """A wait_until that ran out of time; an AssertionError so a test fails (not errors)."""


def wait_until(predicate, timeout=10.0, interval=0.05, what=None, ignore=()):
    """Calls predicate() until it returns a truthy value, which is returned.

    Bounded in time (timeout seconds) and in count (timeout / interval + 2 calls). Exceptions
    of the types in `ignore` count as a false answer (e.g. a service not listening yet).
    Raises WaitTimeout naming `what` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    max_calls = int(timeout / interval) + 2
    last, last_exc = None, None
    for _ in range(max_calls):
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except ignore as exc:  # pylint: disable=catching-non-exception
            last_exc = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
    raise WaitTimeout(f"timed out after {timeout:.1f} s waiting for {what or predicate}; {detail}")


# ---- ports ------------------------------------------------------------------------------------

_ports_lock = threading.Lock()
_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then closed).

    Never hands out the same port twice in one test process."""
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise RuntimeError("no free loopback port found in 100 attempts")


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- metrics and HTTP ---------------------------------------------------------------------

def parse_metrics(text):
    """Prometheus text format into {series: value}, the series being the full text before
    the value, e.g. 'twin_ingest_rejected_total{reason="oversize"}'."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            end = line.rindex("}")
            series, rest = line[:end + 1], line[end + 1:].split()
        else:
            series, *rest = line.split()
        if not rest:
            raise ValueError(f"metrics line without a value: {line!r}")
        out[series] = float(rest[0])
    return out


def metric_sum(metrics, name):
    """Sum of every series of metric `name` (all label sets)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def http_get(port, path, timeout=3.0):
    """(status, body text, headers dict) of GET http://127.0.0.1:port/path; raises OSError
    when nothing answers."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
