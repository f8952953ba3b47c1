# SPDX-License-Identifier: Apache-2.0
# Test kit for twinctl: a runner of build/bin/twinctl against a broker and Redis, a collector of a long-running twinctl's output, and a small plant model with limits.
import json
import math
import queue
import subprocess
import threading
import time

import ingestkit as ik
import predkit as pk
import twinharness as th

T0 = 1_700_000_000_000
STEP = 60_000
MODEL = pk.plant_model(
    {"press": {"temp": {"unit": "degC", "warn": {"above": 70}, "alarm": {"above": 90},
                        "season_samples": 12},
               "rpm": {"unit": "1/min"}}},
    {"press-1": "press", "press-2": "press"})


def wave(i):
    return 50.0 + 5.0 * math.sin(2 * math.pi * i / 12) + 0.3 * math.sin(7.3 * i)


class Ctl:
    """Runs build/bin/twinctl against a broker and Redis."""

    def __init__(self, h, broker=None, redis=None, env=None):
        self.h = h
        self.env = {"TWIN_TOPIC_ROOT": ik.ROOT}
        if broker is not None:
            self.env["TWIN_MQTT_URL"] = broker.url
        if redis is not None:
            self.env["TWIN_REDIS_URL"] = redis.url
        self.env.update(env or {})

    def run(self, *args, timeout=60.0, env=None):
        variables = dict(self.env)
        variables.update(env or {})
        res = self.h.run("twinctl", [str(a) for a in args], env=variables, timeout=timeout)
        res.stdout = res.stdout.decode("utf-8", "replace")
        res.stderr = res.stderr.decode("utf-8", "replace")
        return res

    def json_lines(self, *args, **kw):
        res = self.run(*args, "--json", **kw)
        docs = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
        return res, docs

    def start(self, *args):
        """A long-running twinctl (watch, alerts --follow) whose stdout and stderr lines are
        collected by threads."""
        return Running(self.h, [str(th.BIN_DIR / "twinctl"), *[str(a) for a in args]],
                       th.clean_env(self.env))


class Running:
    def __init__(self, h, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.err_lines = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line.decode("utf-8", "replace").rstrip("\n"))
        q.put(None)

    @staticmethod
    def _take(q, timeout):
        """Lines from q as they come until the stream ends (returns) or timeout passes
        (yields None once, then stops)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return
            yield line
        yield None

    def wait_stderr(self, needle, timeout=15.0):
        for line in self._take(self.err, timeout):
            if line is None:
                break
            self.err_lines.append(line)
            if needle in line:
                return line
        raise th.WaitTimeout(f"twinctl stderr never said {needle!r}: {self.err_lines}")

    def wait_line(self, predicate, timeout=20.0):
        seen = []
        for line in self._take(self.out, timeout):
            if line is None:
                break
            seen.append(line)
            if predicate(line):
                return line
        raise th.WaitTimeout(f"no matching line from twinctl within {timeout} s: {seen}")

    def lines(self, timeout=10.0):
        """Every remaining stdout line, until the process closes it."""
        out = []
        for line in self._take(self.out, timeout):
            if line is None:
                raise th.WaitTimeout(f"twinctl still writing after {timeout} s: {out}")
            out.append(line)
        return out

    def wait(self, timeout=15.0):
        return self.proc.wait(timeout=timeout)

    def stderr_lines(self, timeout=10.0):
        """Every stderr line (those seen by wait_stderr too), until the process closes it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.err.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return self.err_lines
            self.err_lines.append(line)
        raise th.WaitTimeout(f"twinctl still writing to stderr after {timeout} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
