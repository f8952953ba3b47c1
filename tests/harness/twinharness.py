# SPDX-License-Identifier: Apache-2.0
# Test harness for Twinloop's integration and fault tests: real redis-server, mosquitto and services on free loopback ports.
"""Runs the real programs a Twinloop service talks to, each test in its own temp dir.

Everything listens on 127.0.0.1 on ports picked by binding port 0, so tests may run in
parallel. Every process is started in its own process group and stopped (the whole group) at
teardown, even when a test fails; every wait has a timeout.

Typical use::

    class MyTest(TwinTestCase):
        def test_something(self):
            redis = self.h.redis()
            broker = self.h.mosquitto()
            svc = self.h.service("twin-ingest", broker=broker, redis=redis)
            pub = self.h.mqtt(broker)
            ...

Modules: twinutil (waits, ports, metrics, HTTP), twinwire (twin_pb2, hand-made wire
format), twinmqtt (MqttClient); this module runs the processes and re-exports the rest.

Environment: TWIN_BUILD_DIR (default <repo>/build) holds bin/ with the services;
TWIN_KEEP_TMP=1 keeps the temp dirs of passing tests too (failing ones are always kept);
TWIN_TEST_SLOW=<factor> (e.g. 5 under ThreadSanitizer) multiplies the harness's start and stop
bounds and is offered to tests as SLOW for their own time bounds. Children get our environment
without TWIN_* variables, so ASAN_OPTIONS, UBSAN_OPTIONS and TSAN_OPTIONS reach them. A
service's log that holds a sanitizer report (e.g. LeakSanitizer's at exit), or a service that
dies of a signal after the SIGTERM at teardown, fails the test (Harness.close). The
generated protobuf module ``twin.v1.twin_pb2`` is taken from PYTHONPATH or generated with
protoc on first use.
"""

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import redis as redis_lib

from twinmqtt import MqttClient, Msg
from twinutil import (LOOPBACK, WaitTimeout, free_port, http_get, metric_sum, now_ms,
                      parse_metrics, port_accepts, wait_until)
from twinwire import BUILD_DIR, PROTO_DIR, REPO_DIR, Wire, load_proto, telemetry

# Tests use one module: the helpers of twinutil, twinwire and twinmqtt are re-exported.
__all__ = [
    "BIN_DIR", "BUILD_DIR", "DEPLOY_DIR", "LOOPBACK", "MOSQUITTO_DEPLOY_MARKER", "PROTO_DIR",
    "REPO_DIR", "SHARED_DIR", "SLOW", "deploy_mosquitto_conf",
    "Harness", "ManagedProcess", "Mosquitto", "MqttClient", "Msg", "RedisServer",
    "ServiceProcess", "TwinTestCase", "WaitTimeout", "Wire", "clean_env", "free_port",
    "group_members", "http_get", "load_proto", "main", "metric_sum", "now_ms", "parse_metrics",
    "port_accepts", "telemetry", "wait_until",
]

BIN_DIR = BUILD_DIR / "bin"
DEPLOY_DIR = REPO_DIR / "deploy"
# deploy/mosquitto.conf: common settings above this line, the deployment's listeners,
# authentication and paths below it.
MOSQUITTO_DEPLOY_MARKER = "# ==== deployment"
SHARED_DIR = REPO_DIR.parent / "shared"



def _slowness():
    """TWIN_TEST_SLOW as a factor >= 1 (1 when unset or not a number)."""
    try:
        return max(1.0, float(os.environ.get("TWIN_TEST_SLOW", "1")))
    except ValueError:
        return 1.0


# How much slower than a plain build the services run (sanitizer builds): time bounds of the
# harness, and of tests that use it, are multiplied by it.
SLOW = _slowness()

# Upper bounds for waits that have no better-informed value.
START_TIMEOUT_S = 15.0 * SLOW
STOP_TIMEOUT_S = 15.0 * SLOW
LOG_TAIL_LINES = 40

# A sanitizer's report in a log: ASan/LSan/TSan headers and summaries, UBSan's runtime errors.
SANITIZER_REPORT = re.compile(r"==\d+==ERROR: \w+Sanitizer|WARNING: ThreadSanitizer:|"
                              r"SUMMARY: \w+Sanitizer|: runtime error: |"
                              r"ThreadSanitizer: .*Dying")
# Deaths after SIGTERM that are a crash of the service (abort_on_error=1 makes a sanitizer's
# report at exit a SIGABRT), not the harness's own SIGKILL after the stop bound.
CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


# ---- processes ----------------------------------------------------------------------------


def _proc_stat(pid):
    """(state, pgrp) of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


def group_members(pgid):
    """Live (not zombie) processes of process group pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st and st[1] == pgid and st[0] != "Z":
                pids.append(int(entry))
    return pids


def clean_env(extra=None):
    """The environment for a child: the basics of ours without any TWIN_* variable (so the
    developer's shell cannot leak settings into a test), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update({k: str(v) for k, v in (extra or {}).items() if v is not None})
    return env


class ManagedProcess:
    """One program run by a test: own process group, output appended to <tmp>/<name>.log."""

    def __init__(self, harness, name, argv, env=None, cwd=None):
        self.h = harness
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = env
        self.cwd = cwd
        self.log_path = harness.dir / f"{name}.log"
        self.proc = None
        self.pgid = None
        self.paused = False
        self.started_at = None
        self.starts = 0
        harness._register(self)

    # -- lifecycle --

    def start(self):
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with open(self.log_path, "ab") as log:
            log.write(f"==== {time.strftime('%H:%M:%S')} start #{self.starts + 1}: "
                      f"{' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                         start_new_session=True)
        self.pgid = self.proc.pid
        self.paused = False
        self.started_at = time.monotonic()
        self.starts += 1
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def send_signal(self, sig):
        if not self.running:
            raise RuntimeError(f"{self.name} is not running (exit status {self.returncode})")
        os.kill(self.proc.pid, sig)

    def pause(self):
        """SIGSTOP: the process stays, its sockets stay open, nothing is answered."""
        self.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.send_signal(signal.SIGCONT)
        self.paused = False

    def wait_exit(self, timeout):
        """The exit status, waiting up to timeout seconds (WaitTimeout if still running)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"{self.name} (pid {self.pid}) still running after {timeout} s")

    def kill9(self):
        """SIGKILL to the process alone (not its group): whatever it started must go down
        by its own means. Returns its exit status."""
        self.send_signal(signal.SIGKILL)
        return self.wait_exit(10)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Asks the process to stop with `sig`, SIGKILLs its group after `timeout`, and then
        SIGKILLs anything left in the group. Returns the exit status."""
        if self.proc is None:
            return None
        if self.running:
            if self.paused:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.paused = False
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.h.note(f"{self.name} did not stop within {timeout} s after "
                            f"{signal.Signals(sig).name}; killing its group")
                self.kill_group()
                self.proc.wait(timeout=10)
        self.kill_group()
        return self.proc.returncode

    def kill_group(self):
        if self.pgid is None:
            return
        try:
            os.killpg(self.pgid, signal.SIGCONT)
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # A zombie leader keeps the group id alive; reap ours.
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def members(self):
        """Live processes of this process's group (itself and the children it forked)."""
        return group_members(self.pgid) if self.pgid else []

    def children(self, name_prefix=None):
        """Direct children's pids (e.g. a service's worker processes); with name_prefix,
        only those whose process name (/proc/<pid>/comm) starts with it."""
        if not self.running:
            return []
        kids = []
        task_dir = Path(f"/proc/{self.pid}/task")
        try:
            for task in task_dir.iterdir():
                kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            return []
        if name_prefix is not None:
            def named(pid):
                try:
                    return Path(f"/proc/{pid}/comm").read_text().startswith(name_prefix)
                except OSError:
                    return False
            kids = [k for k in kids if named(k)]
        return sorted(kids)

    # -- logs --

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=LOG_TAIL_LINES):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_reports(self):
        """Lines of this process's log (every start) that begin or sum up a sanitizer report."""
        return [line for line in self.log_text().splitlines() if SANITIZER_REPORT.search(line)]


class RedisServer(ManagedProcess):
    """redis-server with deploy/redis.conf plus command-line overrides: own port and dir,
    appendonly yes and appendfsync everysec unless overridden."""

    def __init__(self, harness, name="redis", port=None, **overrides):
        self.port = port or free_port()
        self.dir = harness.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = {"port": self.port, "bind": LOOPBACK, "dir": self.dir, "daemonize": "no",
                    "appendonly": "yes", "appendfsync": "everysec"}
        settings.update({k.replace("_", "-"): v for k, v in overrides.items()})
        argv = ["redis-server", DEPLOY_DIR / "redis.conf"]
        for key, value in settings.items():
            argv += [f"--{key}", value]
        super().__init__(harness, name, argv, env=clean_env())
        self._clients = []

    @property
    def url(self):
        return f"redis://{LOOPBACK}:{self.port}"

    def ping(self):
        try:
            with redis_lib.Redis(host=LOOPBACK, port=self.port, socket_timeout=1,
                                 socket_connect_timeout=1) as r:
                return r.ping()
        except redis_lib.RedisError:
            return False

    def wait_ready(self, timeout=START_TIMEOUT_S):
        wait_until(lambda: self.running and self.ping() or self._dead(), timeout,
                   what=f"{self.name} on port {self.port} to answer PING")
        return self

    def _dead(self):
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.returncode}:\n{self.log_tail()}")
        return False

    def start(self):
        super().start()
        return self.wait_ready()

    def restart(self, down_s=0.0):
        """Clean stop (SIGTERM: Redis writes its AOF), optional pause, start on the same
        port and dir."""
        rc = self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()
        return rc

    def client(self, decode=True):
        """A redis-py client (5 s socket timeout); closed at teardown."""
        c = redis_lib.Redis(host=LOOPBACK, port=self.port, decode_responses=decode,
                            socket_timeout=5, socket_connect_timeout=5)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:  # pylint: disable=broad-except
                pass
        self._clients.clear()


def deploy_mosquitto_conf(text, port, ws_port, secrets, www, data_dir):
    """The shipped deploy/mosquitto.conf with only the deployment part's ports and paths
    rewritten, as scripts/run.sh does: listener 1883 -> port, 9001 -> ws_port (127.0.0.1)."""
    subst = {
        "listener 1883": f"listener {port} {LOOPBACK}",
        "listener 9001": f"listener {ws_port} {LOOPBACK}",
        "password_file ": f"password_file {Path(secrets) / 'mosquitto.passwd'}",
        "acl_file ": f"acl_file {DEPLOY_DIR / 'mosquitto.acl'}",
        "http_dir ": f"http_dir {www}",
        "persistence_location ": f"persistence_location {data_dir}/",
        "plugin ": f"plugin {BUILD_DIR / 'lib' / 'twin_clientid.so'}",
    }
    head, marker, deploy = text.partition(MOSQUITTO_DEPLOY_MARKER)
    if not marker:
        raise AssertionError(f"deploy/mosquitto.conf has no {MOSQUITTO_DEPLOY_MARKER!r} line")
    lines, seen = [], set()
    for line in deploy.splitlines():
        for key, value in subst.items():
            if line == key or line.startswith(key):
                line = value
                seen.add(key)
        lines.append(line)
    missing = set(subst) - seen
    if missing:
        raise AssertionError(f"deploy/mosquitto.conf lacks {sorted(missing)}")
    return head + marker + "\n".join(lines) + "\n"


class Mosquitto(ManagedProcess):
    """mosquitto with deploy/mosquitto.conf.

    By default (an open broker for tests): the file's common part only (above its
    "==== deployment" marker) plus a generated tail: listener, anonymous, persistence
    location, user root, log to stderr; `extra_conf` is appended.

    With `secrets` (a directory made by deploy/make-secrets.sh): the whole shipped file, as
    scripts/run.sh uses it: its deployment part's two listeners moved to `port` and `ws_port`
    on 127.0.0.1, the password file from `secrets`, the ACL deploy/mosquitto.acl, http_dir
    `http_dir` (default <dir>/www) and persistence in <dir>; nobody connects anonymously."""

    def __init__(self, harness, name="mosquitto", port=None, extra_conf="", secrets=None,
                 ws_port=None, http_dir=None):
        self.port = port or free_port()
        self.dir = harness.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "mosquitto.conf"
        self.secrets = Path(secrets) if secrets else None
        self.ws_port = None
        text = (DEPLOY_DIR / "mosquitto.conf").read_text()
        if self.secrets is None:
            base = text.split(MOSQUITTO_DEPLOY_MARKER, 1)[0]
            tail = (f"\n# ---- generated by twinharness ----\n"
                    f"listener {self.port} {LOOPBACK}\n"
                    f"allow_anonymous true\n"
                    f"persistence_location {self.dir}/\n")
        else:
            self.ws_port = ws_port or free_port()
            www = Path(http_dir) if http_dir else self.dir / "www"
            www.mkdir(parents=True, exist_ok=True)
            base = deploy_mosquitto_conf(text, self.port, self.ws_port, self.secrets, www,
                                         self.dir)
            tail = "\n# ---- generated by twinharness ----\n"
        tail += "user root\nlog_dest stderr\n"
        self.conf_path.write_text(base + tail + (extra_conf or ""))
        super().__init__(harness, name, ["mosquitto", "-c", self.conf_path], env=clean_env())

    @property
    def url(self):
        return f"mqtt://{LOOPBACK}:{self.port}"

    def wait_ready(self, timeout=START_TIMEOUT_S):
        def ready():
            if not self.running:
                raise AssertionError(f"{self.name} exited with {self.returncode}:\n"
                                     f"{self.log_tail()}")
            return port_accepts(self.port)
        wait_until(ready, timeout, what=f"{self.name} to accept on port {self.port}")
        return self

    def start(self):
        super().start()
        return self.wait_ready()

    def restart(self, down_s=0.0):
        rc = self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()
        return rc


class ServiceProcess(ManagedProcess):
    """A Twinloop program from build/bin, configured through TWIN_* variables.

    `service` is the short name used in topics and metrics ("ingest" for twin-ingest)."""

    _instance_counter = itertools.count(1)

    def __init__(self, harness, binary, broker=None, redis=None, instance=None, metrics=True,
                 env=None, args=(), topic_root="twin/v1", log_level="info", name=None,
                 service=None):
        path = Path(binary) if os.sep in str(binary) else BIN_DIR / binary
        self.binary = path
        self.service = service or path.name.replace("twin-", "")
        self.instance = instance or (f"t{os.getpid()}-{next(self._instance_counter)}-"
                                     f"{os.urandom(2).hex()}")
        self.metrics_port = free_port() if metrics is True else (metrics or 0)
        self._port_chosen = metrics is True
        self.topic_root = topic_root
        self.broker = broker
        variables = {
            "TWIN_INSTANCE": self.instance,
            "TWIN_TOPIC_ROOT": topic_root,
            "TWIN_LOG_LEVEL": log_level,
            "TWIN_METRICS_PORT": self.metrics_port,
        }
        if broker is not None:
            variables["TWIN_MQTT_URL"] = broker.url
        if redis is not None:
            variables["TWIN_REDIS_URL"] = redis.url
        variables.update(env or {})
        self.variables = variables
        super().__init__(harness, name or f"{path.name}-{self.instance}", [path, *args],
                         env=clean_env(variables))
        self._status = None

    @property
    def status_topic(self):
        return f"{self.topic_root}/service/{self.service}/{self.instance}/status"

    def start(self):
        if not self.binary.exists():
            raise AssertionError(f"{self.binary} does not exist: build the project first "
                                 f"(TWIN_BUILD_DIR={BUILD_DIR})")
        if self.broker is not None and self.broker.running and self._status is None:
            # Subscribed before the start, so the service's own "online" is seen live.
            self._status = self.h.mqtt(self.broker, client_id=f"status-{self.instance}-"
                                                               f"{os.urandom(3).hex()}")
            self._status.subscribe(self.status_topic)
        self._status_mark = self._status.count(self.status_topic) if self._status else 0
        return super().start()

    def healthz(self):
        """(status, body); (None, reason) when nothing answers."""
        try:
            status, body, _ = http_get(self.metrics_port, "/healthz")
            return status, body
        except OSError as exc:
            return None, repr(exc)

    def metrics(self):
        status, body, _ = http_get(self.metrics_port, "/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {body[:200]}")
        return parse_metrics(body)

    def metric(self, series, default=0.0):
        return self.metrics().get(series, default)

    def _alive(self):
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.returncode}:\n"
                                 f"{self.log_tail()}")
        return True

    def wait_healthy(self, timeout=START_TIMEOUT_S):
        return wait_until(lambda: self._alive() and self.healthz()[0] == 200, timeout,
                          what=f"{self.name} /healthz to answer 200 (last: {self.healthz()})")

    def wait_online(self, timeout=START_TIMEOUT_S):
        """Waits for the service's live (not retained) "online" on its status topic since the
        last start: its subscriptions were made before it (same connection, in order)."""
        if self._status is None:
            raise RuntimeError("no broker to watch the status topic on")

        def online():
            self._alive()
            msgs = self._status.messages(self.status_topic)[self._status_mark:]
            return any(m.payload == b"online" and not m.retain for m in msgs)
        return wait_until(online, timeout, what=f"{self.name} to publish 'online'")

    def wait_ready_or_move(self, attempts=3):
        """wait_ready; when the metrics port the harness chose was taken before the service
        bound it (errno 98: a client socket of another process got it as its ephemeral port in
        between), the service starts again on another one, up to `attempts` times in all."""
        for attempt in range(attempts):
            try:
                return self.wait_ready()
            except AssertionError:
                last_start = self.log_text().rsplit("\n==== ", 1)[-1]
                if (attempt + 1 == attempts or self.running or not self._port_chosen
                        or "listen_failed" not in last_start or "errno=98" not in last_start):
                    raise
                self.metrics_port = free_port()
                self.variables["TWIN_METRICS_PORT"] = self.metrics_port
                self.env = clean_env(self.variables)
                self.start()
        return None

    def wait_ready(self, timeout=START_TIMEOUT_S):
        if self.metrics_port:
            self.wait_healthy(timeout)
        if self._status is not None:
            self.wait_online(timeout)
        return self

    def restart(self, sig=signal.SIGTERM):
        rc = self.stop(sig)
        self.start()
        return rc

    def status_messages(self):
        return self._status.messages(self.status_topic) if self._status else []


# ---- the harness --------------------------------------------------------------------------


class Harness:
    """Owns one test's temp dir, processes and clients; close() stops all of them."""

    def __init__(self, test_id="test"):
        safe = "".join(c if c.isalnum() else "-" for c in test_id.split(".")[-1])[:40]
        self.dir = Path(tempfile.mkdtemp(prefix=f"twin-{safe}-"))
        self.processes = []
        self.clients = []
        self.notes = []
        self._closed = False

    def _register(self, proc):
        self.processes.append(proc)

    def _register_client(self, client):
        self.clients.append(client)

    def note(self, text):
        """A line for the failure report (and stderr)."""
        self.notes.append(text)
        print(f"[harness] {text}", file=sys.stderr, flush=True)

    # -- factories --

    def redis(self, start=True, **kw):
        r = RedisServer(self, **kw)
        return r.start() if start else r

    def mosquitto(self, start=True, **kw):
        m = Mosquitto(self, **kw)
        return m.start() if start else m

    def service(self, binary, start=True, ready=True, **kw):
        s = ServiceProcess(self, binary, **kw)
        if start:
            s.start()
            if ready:
                s.wait_ready_or_move()
        return s

    def mqtt(self, broker, **kw):
        """An MqttClient connected to broker, closed at teardown."""
        return MqttClient(broker, on_create=self._register_client, **kw)

    def run(self, binary, args=(), env=None, timeout=20.0, input_bytes=None):
        """Runs a program to completion (no broker needed): CompletedProcess with text
        stdout/stderr. `env` is added to a TWIN_*-free copy of ours."""
        path = Path(binary) if os.sep in str(binary) else BIN_DIR / binary
        if not path.exists():
            raise AssertionError(f"{path} does not exist: build the project first")
        return subprocess.run([str(path), *args], env=clean_env(env), capture_output=True,
                              timeout=timeout, input=input_bytes, check=False,
                              start_new_session=True)

    # -- teardown --

    def close(self):
        """Stops everything; then fails (AssertionError) when a service crashed at the stop or
        any service's log holds a sanitizer report (leaks at exit, races, UB)."""
        if self._closed:
            return
        self._closed = True
        for c in reversed(self.clients):
            c.close()
        problems = []
        # Services first (they talk to the others), then brokers and databases.
        order = sorted(self.processes, key=lambda p: 0 if isinstance(p, ServiceProcess) else 1)
        for p in order:
            try:
                was_running = p.running
                t0 = time.monotonic()
                rc = p.stop()
                if isinstance(p, ServiceProcess) and was_running and rc != 0:
                    self.note(f"{p.name} exited with status {rc} "
                              f"{time.monotonic() - t0:.1f} s after SIGTERM at teardown")
                    if rc is not None and -rc in CRASH_SIGNALS:
                        problems.append(f"{p.name} died of {signal.Signals(-rc).name} "
                                        f"after SIGTERM at teardown")
            except Exception as exc:  # pylint: disable=broad-except
                self.note(f"stopping {p.name}: {exc!r}")
                p.kill_group()
            if isinstance(p, RedisServer):
                p.close_clients()
        problems += self.sanitizer_problems()
        if problems:
            for problem in problems:
                self.note(problem)
            raise AssertionError("; ".join(problems))

    def sanitizer_problems(self):
        """One line per service log that holds a sanitizer report."""
        problems, seen = [], set()
        for p in self.processes:
            if not isinstance(p, ServiceProcess) or p.log_path in seen:
                continue
            seen.add(p.log_path)
            reports = p.sanitizer_reports()
            if reports:
                problems.append(f"{p.name}: sanitizer report in {p.log_path.name}: "
                                f"{reports[0].strip()[:200]}")
        return problems

    def report(self, stream=sys.stderr, lines=LOG_TAIL_LINES):
        """Tails of every process log, for a failed test."""
        print(f"\n---- harness dir: {self.dir}", file=stream)
        for note in self.notes:
            print(f"---- note: {note}", file=stream)
        seen = set()
        for p in self.processes:
            if p.log_path in seen:
                continue
            seen.add(p.log_path)
            print(f"---- last {lines} lines of {p.log_path.name}:", file=stream)
            print(p.log_tail(lines), file=stream)
        stream.flush()

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class TwinTestCase(unittest.TestCase):
    """A TestCase with a fresh Harness as self.h per test: everything is stopped after the
    test; when it failed, the tail of every log is printed and the temp dir is kept."""

    def setUp(self):
        super().setUp()
        self.h = Harness(self.id())
        self.addCleanup(self.h.close)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        started = time.monotonic()
        out = super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        h = getattr(self, "h", None)
        print(f"[timing] {self.id()}: {time.monotonic() - started:.1f} s"
              f"{' FAILED' if failed else ''}", file=sys.stderr, flush=True)
        if h is not None:
            if failed:
                h.report()
            elif not os.environ.get("TWIN_KEEP_TMP"):
                h.remove_dir()
        return out


def main():
    """unittest.main with verbose output, for `python3 test_x.py`."""
    unittest.main(verbosity=2)
