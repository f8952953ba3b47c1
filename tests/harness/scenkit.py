# SPDX-License-Identifier: Apache-2.0
# Test kit for twin-scenario: the runner on a real broker and Redis (optionally behind its Redis ACL user of deploy/users.acl), a watcher of progress, results and Rejected, request builders and twinctl.
"""ScenarioStack: Redis + Mosquitto + twin-scenario with the demo plant, an operator
publisher and a watcher subscribed to every scenario topic; helpers to build, send and await
requests, read the stored results and run twinctl against the same stack."""

import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

import twinharness as th
import twinutil as tu

ROOT = "twin/v1"
REQUEST_TOPIC = f"{ROOT}/scenario/request"
REJECTED_TOPIC = f"{ROOT}/rejected/scenario"
DEMO_PLANT = th.DEPLOY_DIR / "plant.json"
USERS_ACL = th.DEPLOY_DIR / "users.acl"
SCENARIO_USER = "twin-scenario"


def dev_password(user):
    """The password a user of deploy/users.acl gets in ACL_FILE (tests only)."""
    return f"{user}-dev"


SCENARIO_PASSWORD = dev_password(SCENARIO_USER)


def test_acl_text(template=USERS_ACL):
    """deploy/users.acl made loadable for tests, as deploy/make-secrets.sh makes it but with
    known passwords (dev_password(user), in clear) and one change: the default user (off in
    a deployment) is an unauthenticated admin, so the harness's plain clients can set up and
    inspect keys. Every other user keeps exactly the shipped rights."""
    out = []
    for line in Path(template).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user = line.split()[1]
        if user == "default":
            out.append("user default on nopass ~* &* +@all")
        else:
            out.append(f"{line} >{dev_password(user)}")
    return "\n".join(out) + "\n"


def _write_test_acl():
    tmp = Path(tempfile.mkdtemp(prefix="twin-acl-"))
    atexit.register(shutil.rmtree, tmp, True)
    path = tmp / "users.acl"
    path.write_text(test_acl_text())
    return path


# The Redis ACL file for redis(aclfile=ACL_FILE): made once per test process.
ACL_FILE = _write_test_acl()

# Small, fast runs unless a test asks for more.
FAST = {"horizon_ms": 24 * 3600 * 1000, "replications": 5}


def result_topic(rid, root=ROOT):
    return f"{root}/scenario/{rid}/result"


def progress_topic(rid, root=ROOT):
    return f"{root}/scenario/{rid}/progress"


def result_key(rid):
    return f"twin:scenario:{rid}"


def hours_ms(h):
    return int(h * 3600 * 1000)


def shift_offset_ms(now_s=None, start_h=7, latest_h=16):
    """Milliseconds from now until the demo plant is surely working (its shifts run 06:00-22:00
    UTC): 0 between 06:00 and `latest_h`, else until the next `start_h` o'clock. A disruption
    started then hits working time whatever the hour the test runs at."""
    now_s = time.time() if now_s is None else now_s
    sod = now_s % 86400
    if 6 * 3600 <= sod <= latest_h * 3600:
        return 0
    return int(((start_h * 3600 - sod) % 86400) * 1000)


class ScenarioStack:
    """Redis (with ACL_FILE when acl=True) + Mosquitto + twin-scenario reading the demo
    plant; `watch` collects every result, progress and Rejected of the scenario topics."""

    def __init__(self, h, env=None, acl=False, start=True, model=DEMO_PLANT, redis=None,
                 broker=None):
        self.h = h
        self.acl = acl
        self.redis = redis or h.redis(**({"aclfile": ACL_FILE} if acl else {}))
        self.broker = broker or h.mosquitto()
        self.r = self.redis.client(decode=False)
        self.pb = th.load_proto()
        self.watch = h.mqtt(self.broker, client_id="scenario-watch")
        self.watch.subscribe(f"{ROOT}/scenario/+/result")
        self.watch.subscribe(f"{ROOT}/scenario/+/progress")
        self.watch.subscribe(REJECTED_TOPIC, qos=0)
        self.pub = h.mqtt(self.broker, client_id="operator-pub")
        self.model = model
        self.redis_url = (f"redis://{SCENARIO_USER}:{SCENARIO_PASSWORD}@{th.LOOPBACK}:"
                          f"{self.redis.port}" if acl else self.redis.url)
        self.env = {"TWIN_MODEL": str(model), "TWIN_SCENARIO_THREADS": 2,
                    "TWIN_REDIS_URL": self.redis_url}
        self.env.update(env or {})
        self.runner = None
        if start:
            self.start_runner()

    def start_runner(self, env=None, **kw):
        variables = dict(self.env)
        variables.update(env or {})
        self.runner = self.h.service("twin-scenario", broker=self.broker, redis=self.redis,
                                     env=variables, **kw)
        return self.runner

    # -- requests --

    def request(self, rid, perturbations=(), sweep=None, **fields):
        """A ScenarioRequest; perturbations are dicts of Perturbation fields with `kind` as a
        name ("MACHINE_DOWN"); sweep a dict of Sweep fields (parameters and constraints as
        lists of dicts, method as a name)."""
        pb = self.pb
        req = pb.ScenarioRequest(id=rid, **fields)
        for p in perturbations:
            p = dict(p)
            p["kind"] = pb.Perturbation.Kind.Value(p["kind"])
            req.perturbations.add(**p)
        if sweep is not None:
            sw = dict(sweep)
            params = sw.pop("parameters", [])
            constraints = sw.pop("constraints", [])
            if "method" in sw:
                sw["method"] = pb.Sweep.Method.Value(sw["method"])
            req.sweep.CopyFrom(pb.Sweep(**sw))
            for sp in params:
                req.sweep.parameters.add(**sp)
            for c in constraints:
                req.sweep.constraints.add(**c)
        return req

    def send(self, req, retain=False, timeout=10.0):
        """Publishes a request (message or bytes) with QoS 1 and waits for the PUBACK."""
        payload = req if isinstance(req, (bytes, bytearray)) else req.SerializeToString()
        info = self.pub.publish(REQUEST_TOPIC, payload, qos=1, retain=retain)
        tu.wait_until(info.is_published, timeout, what="PUBACK of a scenario request")
        return payload

    def submit(self, rid, perturbations=(), sweep=None, **fields):
        merged = dict(FAST)
        merged.update(fields)
        return self.send(self.request(rid, perturbations, sweep, **merged))

    def cancel(self, rid):
        return self.send(self.pb.ScenarioRequest(id=rid, cancel=True))

    # -- answers --

    def results(self, rid):
        return [self.pb.ScenarioResult.FromString(m.payload)
                for m in self.watch.messages(result_topic(rid)) if m.payload]

    def wait_result(self, rid, timeout=60.0):
        m = self.watch.wait_message(result_topic(rid), lambda m: bool(m.payload),
                                    timeout=timeout)
        return self.pb.ScenarioResult.FromString(m.payload)

    def result_message(self, rid):
        msgs = [m for m in self.watch.messages(result_topic(rid)) if m.payload]
        return msgs[0] if msgs else None

    def progress(self, rid):
        return [self.pb.ScenarioProgress.FromString(m.payload)
                for m in self.watch.messages(progress_topic(rid))]

    def wait_progress(self, rid, predicate, timeout=30.0):
        m = self.watch.wait_message(
            progress_topic(rid),
            lambda m: predicate(self.pb.ScenarioProgress.FromString(m.payload)),
            timeout=timeout)
        return self.pb.ScenarioProgress.FromString(m.payload)

    def wait_running(self, rid, timeout=30.0):
        return self.wait_progress(
            rid, lambda p: p.state == self.pb.ScenarioProgress.RUNNING, timeout)

    def rejected(self, start=0):
        return [self.pb.Rejected.FromString(m.payload)
                for m in self.watch.messages(REJECTED_TOPIC)[start:]]

    def wait_rejected(self, reason, start=0, timeout=10.0):
        m = self.watch.wait_message(
            REJECTED_TOPIC, lambda m: self.pb.Rejected.FromString(m.payload).reason == reason,
            start=start, timeout=timeout)
        return self.pb.Rejected.FromString(m.payload)

    def stored(self, rid):
        raw = self.r.get(result_key(rid))
        return None if raw is None else self.pb.ScenarioResult.FromString(raw)

    # -- twinctl --

    def twinctl(self, *args, timeout=120.0, redis_url=None):
        """Runs build/bin/twinctl against this stack: CompletedProcess with text output."""
        env = {"TWIN_MQTT_URL": self.broker.url, "TWIN_REDIS_URL": redis_url or self.redis.url,
               "TWIN_TOPIC_ROOT": ROOT}
        res = self.h.run("twinctl", [str(a) for a in args], env=env, timeout=timeout)
        res.stdout = res.stdout.decode("utf-8", "replace")
        res.stderr = res.stderr.decode("utf-8", "replace")
        return res

    def twinctl_json(self, *args, timeout=120.0):
        """twinctl scenario run ... --json: (exit status, parsed JSON or None, stderr)."""
        res = self.twinctl(*args, "--json", "--quiet", timeout=timeout)
        try:
            doc = json.loads(res.stdout)
        except ValueError:
            doc = None
        return res.returncode, doc, res.stderr


def kpi(result, name):
    """The Kpi named `name` of a ScenarioResult (or of a JSON result from twinctl)."""
    kpis = result["kpis"] if isinstance(result, dict) else result.kpis
    for k in kpis:
        if (k["name"] if isinstance(k, dict) else k.name) == name:
            return k
    raise AssertionError(f"no KPI {name!r} in the result")


def diff_excludes_zero(k):
    d = k["difference"] if isinstance(k, dict) else k.difference
    lo, hi = (d["lo"], d["hi"]) if isinstance(d, dict) else (d.lo, d.hi)
    return lo > 0 or hi < 0
