# SPDX-License-Identifier: Apache-2.0
# Deployment: docker-compose.yml and the Dockerfile hold together, make-secrets.sh and the entrypoint work, and the shipped broker ACL and Redis users hold on real servers with every service running under its own users.
"""The shipped deploy/ files on real mosquitto and redis-server: secrets made by
deploy/make-secrets.sh in the test's temp dir, the broker with the whole deploy/mosquitto.conf
(ports and paths rewritten as scripts/run.sh does) and deploy/mosquitto.acl, Redis with the
generated ACL file. There is no Docker engine in CI: the compose file is validated with
docker-compose itself and the Dockerfile is read, not built."""

import os
import re
import shutil
import stat
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import redis as redis_lib
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import yaml

import twinharness as th
from twinharness import TwinTestCase

ROOT = "twin/v1"
COMPOSE = th.REPO_DIR / "docker-compose.yml"
DOCKERFILE = th.DEPLOY_DIR / "Dockerfile"
MAKE_SECRETS = th.DEPLOY_DIR / "make-secrets.sh"
ENTRYPOINT = th.DEPLOY_DIR / "entrypoint.sh"
OUR_SERVICES = {"ingest": 9101, "predictor": 9102, "scenario": 9103, "devsim": 9104}
# twin-ingest's subscription, which opens the broker plugin's hold (deploy/mosquitto.conf).
INGEST_FILTER = f"$share/twin-ingest/{ROOT}/asset/+/telemetry"
# How long a message that the broker should drop is given to show up anyway.
SETTLE_S = 1.0


def make_secrets(directory, *args):
    return subprocess.run(["bash", str(MAKE_SECRETS), *args, str(directory)],
                          capture_output=True, text=True, timeout=60, check=False)


def secret(secrets, kind, user):
    return (secrets / kind / f"{user}.password").read_text().splitlines()[0]


# Client id prefixes the shipped rules give the users that are not devices or services
# (deploy/mosquitto.conf, plugin_opt_clientid); a device's client id is its user name.
TOOL_ID_PREFIX = {"operator": "operator-", "dashboard": "twin-dashboard-",
                  "healthcheck": "healthcheck-"}


def own_client_id(user):
    """A client id the broker's rules let `user` connect with."""
    if user is None:
        return None
    if user in TOOL_ID_PREFIX:
        return TOOL_ID_PREFIX[user] + os.urandom(4).hex()
    if user.startswith("twin-"):
        return f"{user}-{os.urandom(4).hex()}"
    return user


class AuthClient:
    """A paho MQTT v5 client with a user name: connect result, received messages."""

    def __init__(self, port, user=None, password=None, transport="tcp", client_id=None,
                 session_expiry=None):
        """session_expiry (s): a persistent session (clean start off), else a clean one."""
        self.cond = threading.Condition()
        self.msgs = []
        self.reason = None
        self.subacks = {}
        self.c = mqtt.Client(client_id=client_id or f"t-{os.urandom(4).hex()}",
                             protocol=mqtt.MQTTv5, transport=transport)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        props = None
        if session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        self.c.connect_async(th.LOOPBACK, port, keepalive=30,
                             clean_start=session_expiry is None, properties=props)
        self.c.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties):
        with self.cond:
            if self.reason is None:
                self.reason = getattr(reason, "value", reason)
            self.cond.notify_all()

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.msgs.append((message.topic, bytes(message.payload), bool(message.retain)))
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.cond:
            self.subacks[mid] = [getattr(rc, "value", rc) for rc in reason_codes]
            self.cond.notify_all()

    def connect_result(self, timeout=10.0):
        """The first CONNACK's reason code (0: accepted)."""
        th.wait_until(lambda: self.reason is not None, timeout, what="CONNACK")
        return self.reason

    def connected(self, timeout=10.0):
        if self.connect_result(timeout) != 0:
            raise AssertionError(f"connect refused with reason {self.reason:#x}")
        return self

    def subscribe(self, topic):
        _, mid = self.c.subscribe(topic, 1)
        th.wait_until(lambda: mid in self.subacks, 10, what=f"SUBACK {topic}")
        return self

    def publish(self, topic, payload, retain=False):
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return info

    def topics(self):
        with self.cond:
            return [m[0] for m in self.msgs]

    def payloads(self, topic):
        with self.cond:
            return [m[1] for m in self.msgs if m[0] == topic]

    def wait_payload(self, topic, payload, timeout=10.0):
        return th.wait_until(lambda: payload in self.payloads(topic), timeout,
                             what=f"{payload!r} on {topic}")

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class DeployStack:
    """Secrets (make-secrets.sh, with device press-1) + the shipped broker + Redis with the
    generated users, in one test's temp dir."""

    def __init__(self, h, redis=True, secrets=None, broker_auth=None, redis_acl=None,
                 open_hold=True):
        """With `secrets`: an existing secrets dir (e.g. made by the entrypoint's init), the
        broker's password file from `broker_auth` and Redis's users from `redis_acl`. With
        `open_hold`, a twin-ingest client subscribes (and leaves) at once, so the broker
        plugin's hold lets telemetry senders connect without a running twin-ingest."""
        self.h = h
        self.secrets = secrets or h.dir / "secrets"
        if secrets is None:
            res = make_secrets(self.secrets, "--device", "press-1")
            if res.returncode != 0:
                raise AssertionError(f"make-secrets.sh failed: {res.stderr}")
        self.www = h.dir / "www"
        self.www.mkdir(exist_ok=True)
        (self.www / "index.html").write_text("<title>twin test page</title>\n")
        self.broker = h.mosquitto(secrets=broker_auth or self.secrets, http_dir=self.www)
        self.clients = []
        if open_hold:
            self.mqtt("twin-ingest").connected().subscribe(INGEST_FILTER).close()
        self.redis = None
        if redis:
            # Started here: the harness's readiness PING has no user, and the default user is
            # off in the shipped ACL.
            self.redis = h.redis(start=False,
                                 aclfile=redis_acl or self.secrets / "redis-users.acl")
            th.ManagedProcess.start(self.redis)
            th.wait_until(self._redis_up, th.START_TIMEOUT_S, what="redis to answer twin-admin")

    def _redis_up(self):
        if not self.redis.running:
            raise AssertionError(f"redis exited:\n{self.redis.log_tail()}")
        try:
            with self.redis_as("twin-admin") as r:
                return r.ping()
        except redis_lib.exceptions.ConnectionError:
            return False

    def mqtt(self, user, password=None, transport="tcp", port=None, client_id=None,
             session_expiry=None):
        """A client of `user` (password from the secrets), by default with a client id of its own."""
        if password is None and user is not None:
            password = secret(self.secrets, "mqtt", user)
        c = AuthClient(port or self.broker.port, user, password, transport,
                       client_id or own_client_id(user), session_expiry)
        self.clients.append(c)
        return c

    def redis_as(self, user):
        return redis_lib.Redis(host=th.LOOPBACK, port=self.redis.port, username=user,
                               password=secret(self.secrets, "redis", user),
                               socket_timeout=5, decode_responses=True)

    def redis_url(self, user):
        password = secret(self.secrets, "redis", user)
        return f"redis://{user}:{password}@{th.LOOPBACK}:{self.redis.port}"

    def service(self, name, redis_user=True, env=None, **kw):
        """build/bin/twin-<name> as MQTT user twin-<name> (and Redis user twin-<name>)."""
        user = f"twin-{name}"
        variables = {"TWIN_MQTT_URL": self.broker.url, "TWIN_MQTT_USER": user,
                     "TWIN_MQTT_PASSWORD": secret(self.secrets, "mqtt", user),
                     "TWIN_MODEL": str(th.DEPLOY_DIR / "plant.json")}
        if redis_user:
            variables["TWIN_REDIS_URL"] = self.redis_url(user)
        variables.update(env or {})
        return self.h.service(user, env=variables, **kw)

    def close(self):
        for c in self.clients:
            c.close()


class DeployTestCase(TwinTestCase):

    def stack(self, **kw):
        s = DeployStack(self.h, **kw)
        self.addCleanup(s.close)
        return s


# ---- the files: compose, Dockerfile ---------------------------------------------------------


class ComposeAndImageTest(TwinTestCase):

    def compose_config(self):
        self.assertIsNotNone(shutil.which("docker-compose"),
                             "docker-compose is missing: it is a test dependency (scripts/lib.sh)")
        res = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], cwd=th.REPO_DIR,
                             capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        quiet = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"],
                               cwd=th.REPO_DIR, capture_output=True, text=True, timeout=60,
                               check=False)
        self.assertEqual(quiet.returncode, 0, quiet.stderr)
        return yaml.safe_load(res.stdout)

    def test_compose_config_validates_and_every_service_is_watched(self):
        cfg = self.compose_config()
        services = cfg["services"]
        self.assertEqual(set(services),
                         {"init", "broker", "redis", "ingest", "predictor", "scenario", "devsim"})
        for name, svc in services.items():
            test = svc.get("healthcheck", {}).get("test")
            self.assertTrue(test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}")
            want = "no" if name == "init" else "unless-stopped"
            self.assertEqual(svc.get("restart"), want, name)
        for name, port in OUR_SERVICES.items():
            svc = services[name]
            env = svc["environment"]
            self.assertEqual(svc["command"], [f"twin-{name}"])
            self.assertEqual(env["TWIN_METRICS_PORT"], str(port))
            self.assertEqual(env["TWIN_METRICS_ADDR"], "0.0.0.0")
            self.assertEqual(env["TWIN_MQTT_URL"], "mqtt://broker:1883")
            self.assertEqual(env["TWIN_MQTT_USER"], f"twin-{name}")
            self.assertTrue(env["TWIN_MQTT_PASSWORD_FILE"].endswith(f"/mqtt/twin-{name}.password"))
            self.assertNotIn("TWIN_MQTT_PASSWORD", env)  # no password in the compose file
            self.assertNotIn("@", env["TWIN_REDIS_URL"])
            self.assertIn(f"http://127.0.0.1:{port}/healthz", svc["healthcheck"]["test"])
            self.assertEqual(svc["depends_on"]["init"]["condition"],
                             "service_completed_successfully")
            self.assertEqual(svc["depends_on"]["broker"]["condition"], "service_healthy")
            # Its own passwords only, read-only; the `secrets` volume is init's alone.
            self.assertEqual(svc["volumes"], [f"secrets-{name}:/var/lib/twinloop/secrets:ro"])
        for name in ("ingest", "predictor", "scenario"):
            env = services[name]["environment"]
            self.assertEqual(env["TWIN_REDIS_USER"], f"twin-{name}")
            self.assertEqual(services[name]["depends_on"]["redis"]["condition"], "service_healthy")
        for name in ("broker", "redis"):
            self.assertEqual(services[name]["depends_on"]["init"]["condition"],
                             "service_completed_successfully")
        self.assertEqual(set(cfg["volumes"]),
                         {"secrets", "broker-auth", "redis-auth", "www", "broker-data",
                          "redis-data", "secrets-ingest", "secrets-predictor",
                          "secrets-scenario", "secrets-devsim"})
        self.assertNotIn("TWIN_REDIS_PASSWORD_FILE", services["devsim"]["environment"])
        self.assertNotIn("TWIN_REDIS_USER", services["devsim"]["environment"])
        for name, svc in services.items():
            mounts = [str(v).split(":")[0] for v in svc.get("volumes", [])]
            self.assertEqual("secrets" in mounts, name == "init", name)
        init_mounts = {str(v).split(":")[0]: str(v).split(":")[1]
                       for v in services["init"]["volumes"]}
        for name in OUR_SERVICES:
            self.assertEqual(init_mounts[f"secrets-{name}"],
                             f"/var/lib/twinloop/service-secrets/{name}")
        self.check_ports(services["broker"]["ports"])
        # Healthchecks: no password on the command line (ps would show it).
        for name in ("broker", "redis"):
            text = " ".join(services[name]["healthcheck"]["test"])
            self.assertNotRegex(text, r"(^|\s)(-P|--pass|-a)\s", name)
        # The files the broker and Redis containers mount are the ones shipped here.
        mounts = " ".join(str(v) for s in ("broker", "redis")
                          for v in services[s]["volumes"])
        for f in ("deploy/mosquitto.conf", "deploy/mosquitto.acl", "deploy/redis.conf"):
            self.assertIn(str(th.REPO_DIR / f), mounts)

    def check_ports(self, ports):
        """1883 on every interface (devices), 9001 (the public dashboard password) on
        127.0.0.1 only. docker-compose 1.29.2 prints the short form for a host_ip."""
        seen = {}
        for p in ports:
            if isinstance(p, dict):
                seen[int(p["target"])] = (p.get("host_ip", ""), int(p["published"]))
            else:
                parts = str(p).split("/")[0].split(":")
                host = parts[0] if len(parts) == 3 else ""
                seen[int(parts[-1])] = (host, int(parts[-2]))
        self.assertEqual(seen, {1883: ("", 1883), 9001: ("127.0.0.1", 9001)})

    def test_dockerfile_is_multi_stage_debian_12_and_runs_as_a_user(self):
        text = DOCKERFILE.read_text()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
        self.assertEqual(froms, ["debian:bookworm", "debian:bookworm-slim"])
        users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
        self.assertTrue(users, "no USER: the image would run as root")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        self.assertIn("-DTWIN_TESTS=OFF", text)
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", text)
        self.assertIn("vendor.sh", text)
        self.assertNotRegex(text, r"(?i)password\s*=|ENV\s+TWIN_\w*PASSWORD")
        # Every file the build copies from the repository exists (the context is its root).
        joined = re.sub(r"\\\n", " ", text)
        for ln in joined.splitlines():
            parts = ln.split()
            if parts and parts[0] == "COPY" and not any(p.startswith("--from") for p in parts):
                for src in parts[1:-1]:
                    self.assertTrue((th.REPO_DIR / src).exists(), f"COPY source {src}")
        self.assertTrue(os.access(ENTRYPOINT, os.X_OK))
        self.assertTrue(os.access(MAKE_SECRETS, os.X_OK))
        # The compose services use the ports the image's programs are given there.
        self.assertIn('ENTRYPOINT ["/opt/twinloop/bin/twin-entrypoint"]', text)
        # The mount points of the per-service secrets volumes belong to the twin user (0700):
        # a named volume takes its first owner and mode from them.
        for name in OUR_SERVICES:
            self.assertIn(f"/var/lib/twinloop/service-secrets/{name}", joined)


# ---- secrets and entrypoint: tests/integration/test_deploy_secrets.py -------------------


# ---- the broker: listeners, users, ACL -----------------------------------------------------


class BrokerAclTest(DeployTestCase):

    def test_anonymous_and_wrong_passwords_are_refused_on_both_listeners(self):
        s = self.stack(redis=False)
        for transport, port in (("tcp", s.broker.port), ("websockets", s.broker.ws_port)):
            anon = s.mqtt(None, transport=transport, port=port)
            self.assertEqual(anon.connect_result(), 0x87, transport)  # not authorized
            wrong = s.mqtt("operator", "wrong-password", transport=transport, port=port)
            # 0x87 from Mosquitto 2.0.11; 0x86 (bad user name or password) would do too.
            self.assertIn(wrong.connect_result(), (0x86, 0x87), transport)
        # The dashboard's page and its MQTT endpoint share the websockets port.
        status, body, _ = th.http_get(s.broker.ws_port, "/index.html")
        self.assertEqual((status, "twin test page" in body), (200, True))
        s.mqtt("dashboard", transport="websockets", port=s.broker.ws_port).connected()

    def test_devices_publish_only_their_own_telemetry_and_the_dashboard_only_requests(self):
        s = self.stack(redis=False)
        op = s.mqtt("operator").connected().subscribe(f"{ROOT}/#")
        hc = s.mqtt("healthcheck").connected().subscribe(f"{ROOT}/#")
        t1, t2 = f"{ROOT}/asset/press-1/telemetry", f"{ROOT}/asset/press-2/telemetry"
        state1 = f"{ROOT}/asset/press-1/state"
        denied = [("press-1", t2), ("press-1", state1), ("press-1", f"{ROOT}/scenario/request"),
                  ("dashboard", t2), ("dashboard", f"{ROOT}/asset/dashboard/telemetry"),
                  ("dashboard", state1), ("dashboard", f"{ROOT}/asset/press-1/prediction"),
                  ("healthcheck", t1), ("twin-ingest", f"{ROOT}/asset/twin-ingest/telemetry"),
                  ("twin-scenario", state1), ("twin-devsim", state1)]
        # Mosquitto 2.0.11 answers a denied publish with PUBACK "not authorized" and then
        # closes the connection (eclipse/mosquitto#2579): one client per attempt.
        for i, (user, topic) in enumerate(denied):
            c = s.mqtt(user, transport="websockets" if user == "dashboard" else "tcp",
                       port=s.broker.ws_port if user == "dashboard" else None).connected()
            try:
                c.publish(topic, f"denied-{i}".encode(), retain=i % 2 == 0)
            except RuntimeError:
                pass  # the connection was closed before paho saw the PUBACK
            c.close()  # a device's next client takes the same client id
        # Allowed publishes after the denied ones: once these arrived, the others would have.
        s.mqtt("press-1").connected().publish(t1, b"own")
        dash = s.mqtt("dashboard", transport="websockets", port=s.broker.ws_port).connected()
        dash.publish(f"{ROOT}/scenario/request", b"request")
        op.wait_payload(t1, b"own")
        op.wait_payload(f"{ROOT}/scenario/request", b"request")
        time.sleep(SETTLE_S)
        got = [p for t in set(op.topics()) for p in op.payloads(t)]
        self.assertEqual(sorted(got), [b"own", b"request"])
        # Nor was anything retained: a new subscriber gets no retained message at all.
        late = s.mqtt("operator").connected().subscribe(f"{ROOT}/#")
        time.sleep(SETTLE_S)
        self.assertEqual(late.topics(), [])
        # healthcheck reads one $SYS topic and nothing of the twin.
        self.assertEqual(hc.topics(), [])
        hc.subscribe("$SYS/broker/uptime")
        th.wait_until(lambda: "$SYS/broker/uptime" in hc.topics(), 15, what="$SYS uptime")


    def test_telemetry_senders_wait_until_ingest_has_subscribed(self):
        s = self.stack(redis=False, open_hold=False)
        # Until twin-ingest subscribes, a device's CONNECT is closed unanswered (it retries:
        # paho's loop here), while other users connect.
        dev = s.mqtt("press-1")
        op = s.mqtt("operator", client_id="twin-dashboard-x")  # refused: not its id
        dash = s.mqtt("dashboard", transport="websockets", port=s.broker.ws_port).connected()
        time.sleep(SETTLE_S)
        self.assertIsNone(dev.reason, "the device got a CONNACK before ingest subscribed")
        self.assertEqual(op.connect_result(), 0x87)
        ingest = s.mqtt("twin-ingest").connected().subscribe(INGEST_FILTER)
        self.assertEqual(dev.connect_result(timeout=15), 0)  # its next try is let in
        dev.publish(f"{ROOT}/asset/press-1/telemetry", b"after the hold")
        ingest.wait_payload(f"{ROOT}/asset/press-1/telemetry", b"after the hold")
        log = s.broker.log_text()
        self.assertIn("twin_clientid: holding back", log)
        self.assertIn(f"{INGEST_FILTER} subscribed by user 'twin-ingest'", log)
        self.assertTrue(dash.reason == 0)

    def test_no_user_can_take_another_users_client_id_or_its_queued_messages(self):
        s = self.stack(redis=False)
        service_id, telemetry = "twin-ingest-c1-w0", f"{ROOT}/asset/press-1/telemetry"
        # A service's persistent session subscribes and goes away: the broker queues for it.
        s.mqtt("twin-ingest", client_id=service_id, session_expiry=600).connected() \
            .subscribe(f"{ROOT}/asset/+/telemetry").close()
        dev = s.mqtt("press-1").connected()
        for i in range(3):
            dev.publish(telemetry, f"queued-{i}".encode())
        # Every other user tries the service's id (the dashboard's password is public):
        # refused at CONNECT, before Mosquitto's session takeover could happen.
        attempts = [("press-1", service_id), ("dashboard", service_id),
                    ("operator", service_id), ("twin-predictor", service_id),
                    ("twin-devsim", service_id), ("press-1", "press-2"),
                    ("press-1", "twin-dashboard-1"), ("twin-ingest", "press-1")]
        for user, client_id in attempts:
            ws = user == "dashboard"
            c = s.mqtt(user, client_id=client_id, session_expiry=600,
                       transport="websockets" if ws else "tcp",
                       port=s.broker.ws_port if ws else None)
            self.assertEqual(c.connect_result(), 0x87, (user, client_id))  # not authorized
            c.close()
        # The service comes back to its whole queue, and the device was never disconnected.
        back = s.mqtt("twin-ingest", client_id=service_id, session_expiry=600).connected()
        for i in range(3):
            back.wait_payload(telemetry, f"queued-{i}".encode())
        dev.publish(telemetry, b"after")
        back.wait_payload(telemetry, b"after")
        # The broker's log says who was refused and why.
        self.assertIn("twin_clientid: refused user 'dashboard' with client id "
                      "'twin-ingest-c1-w0': client id not allowed for this user",
                      s.broker.log_text())


# ---- Redis users ---------------------------------------------------------------------------


class RedisAclTest(DeployTestCase):

    def test_each_redis_user_has_only_its_rights(self):
        s = self.stack()
        admin = s.redis_as("twin-admin")
        admin.hset("twin:{press-1}:state", mapping={"temp": "1", "_seq": "1"})
        admin.xadd("twin:{press-1}:history", {"ts_ms": "1", "seq": "1", "temp": "1"})
        admin.sadd("twin:assets", "press-1")
        nope = redis_lib.exceptions.NoPermissionError
        # Nobody without a user: the default user is off.
        with self.assertRaises(redis_lib.exceptions.AuthenticationError):
            redis_lib.Redis(host=th.LOOPBACK, port=s.redis.port, socket_timeout=5).ping()
        with self.assertRaisesRegex(redis_lib.exceptions.RedisError, "WRONGPASS"):
            redis_lib.Redis(host=th.LOOPBACK, port=s.redis.port, username="operator",
                            password="wrong", socket_timeout=5).ping()
        op = s.redis_as("operator")
        self.assertEqual(op.hgetall("twin:{press-1}:state")["temp"], "1")
        self.assertEqual(op.smembers("twin:assets"), {"press-1"})
        self.assertEqual(len(op.xrevrange("twin:{press-1}:history", count=5)), 1)
        for call in (lambda: op.hset("twin:{press-1}:state", "temp", "2"),
                     lambda: op.set("twin:scenario:x", "1"), lambda: op.delete("twin:assets"),
                     lambda: op.xadd("twin:{press-1}:history", {"seq": "2"}),
                     lambda: op.keys("*"), lambda: op.get("other"), lambda: op.flushall(),
                     lambda: op.config_get("*")):
            with self.assertRaises(nope):
                call()
        scen = s.redis_as("twin-scenario")
        for call in (lambda: scen.hset("twin:{x}:state", "a", "1"),
                     lambda: scen.set("twin:{x}:state", "1"),
                     lambda: scen.sadd("twin:assets", "ghost")):
            with self.assertRaises(nope):
                call()
        self.assertTrue(scen.set("twin:scenario:t", "r", ex=60))
        pred = s.redis_as("twin-predictor")
        for call in (lambda: pred.hset("twin:{press-1}:state", "temp", "9"),
                     lambda: pred.get("twin:{press-1}:prediction"),
                     lambda: pred.xadd("twin:{press-1}:history", {"seq": "9"}),
                     lambda: pred.set("twin:scenario:t", "x")):
            with self.assertRaises(nope):
                call()
        ing = s.redis_as("twin-ingest")
        for call in (lambda: ing.get("twin:scenario:t"), lambda: ing.set("twin:{a}:model", "x"),
                     lambda: ing.eval("return 1", 0), lambda: ing.set("twin:{a}:state", "x"),
                     lambda: ing.execute_command("SCRIPT", "FLUSH")):
            with self.assertRaises(nope):
                call()
        hc = s.redis_as("healthcheck")
        self.assertTrue(hc.ping())
        with self.assertRaises(nope):
            hc.get("twin:assets")
        self.assertEqual(admin.hgetall("twin:{press-1}:state"), {"temp": "1", "_seq": "1"})
        self.assertEqual(admin.get("twin:scenario:t"), "r")


# ---- everything together -------------------------------------------------------------------


class EndToEndUnderUsersTest(DeployTestCase):

    def test_services_run_end_to_end_under_their_users_and_nothing_is_refused(self):
        s = self.stack()
        pb = th.load_proto()
        admin = s.redis_as("twin-admin")
        admin.execute_command("ACL", "LOG", "RESET")
        op = s.mqtt("operator").connected()
        for topic in ("asset/+/state", "asset/+/prediction", "scenario/+/result",
                      "service/+/+/status", "rejected/+"):
            op.subscribe(f"{ROOT}/{topic}")
        ingest = s.service("ingest")
        s.service("predictor")
        s.service("scenario", env={"TWIN_SCENARIO_THREADS": 2})
        for svc in ("ingest", "predictor", "scenario"):  # status (and so the Last Will) allowed
            th.wait_until(lambda svc=svc: any(t.startswith(f"{ROOT}/service/{svc}/")
                                              for t in op.topics()), 15, what=f"{svc} status")
        dev = s.mqtt("press-1").connected()
        now = th.now_ms()
        for seq in range(1, 7):
            msg = pb.Telemetry(asset_id="press-1", ts_ms=now - (7 - seq) * 1000, seq=seq)
            msg.samples.add(signal="vibration", value=3.0 + 0.1 * seq)
            msg.samples.add(signal="stroke_rate", value=14.0)
            dev.publish(f"{ROOT}/asset/press-1/telemetry", msg.SerializeToString())
        # A device speaking for another asset: dropped by the broker, never applied.
        bad = pb.Telemetry(asset_id="press-2", ts_ms=now, seq=1)
        bad.samples.add(signal="vibration", value=99.0)
        try:
            dev.publish(f"{ROOT}/asset/press-2/telemetry", bad.SerializeToString())
        except RuntimeError:
            pass  # Mosquitto closes the connection after a denied publish
        th.wait_until(lambda: admin.hget("twin:{press-1}:state", "_seq") == "6", 20,
                      what="ingest to apply seq 6 of press-1")
        state = f"{ROOT}/asset/press-1/state"
        th.wait_until(lambda: op.payloads(state), 10, what="a TwinState")
        pred_topic = f"{ROOT}/asset/press-1/prediction"
        raw = th.wait_until(lambda: op.payloads(pred_topic), 30, what="a Prediction")[-1]
        pred = pb.Prediction.FromString(raw)
        self.assertEqual(pred.asset_id, "press-1")
        self.assertTrue(pred.forecasts)
        th.wait_until(lambda: admin.exists("twin:{press-1}:prediction", "twin:{press-1}:model")
                      == 2, 30, what="the predictor's prediction and model keys")
        # A scenario request from the dashboard's user, answered by twin-scenario.
        dash = s.mqtt("dashboard").connected()
        req = pb.ScenarioRequest(id="deploy-1", horizon_ms=24 * 3600 * 1000, replications=4)
        req.perturbations.add(kind=pb.Perturbation.Kind.Value("MACHINE_DOWN"), target="press-1",
                              duration_ms=4 * 3600 * 1000)
        dash.publish(f"{ROOT}/scenario/request", req.SerializeToString())
        raw = th.wait_until(lambda: op.payloads(f"{ROOT}/scenario/deploy-1/result"), 60,
                            what="the scenario result")[-1]
        res = pb.ScenarioResult.FromString(raw)
        self.assertEqual(res.status, pb.ScenarioResult.OK, res.error)
        self.assertEqual(admin.exists("twin:scenario:deploy-1"), 1)
        # What the broker dropped stayed dropped; no service was refused anything by Redis.
        self.assertFalse(admin.exists("twin:{press-2}:state"))
        self.assertEqual(admin.smembers("twin:assets"), {"press-1"})
        self.assertFalse(op.payloads(f"{ROOT}/asset/press-2/state"))
        self.assertEqual(admin.execute_command("ACL", "LOG"), [])
        # Six applied, as updates or (ingest's workers share the subscription) late ones.
        m = ingest.metrics()
        applied = m.get("twin_ingest_applied_total", 0) + m.get("twin_ingest_late_total", 0)
        self.assertEqual(applied, 6, m)
        self.assertFalse([t for t in op.topics() if "/rejected/" in t])
        if (th.BIN_DIR / "twin-devsim").exists():
            self.check_devsim(s, admin)
        self.assertEqual(admin.execute_command("ACL", "LOG"), [])

    def check_devsim(self, s, admin):
        """twin-devsim as the plant's gateway user: every demo asset reaches Redis."""
        s.service("devsim", redis_user=False, env={"TWIN_DEVSIM_PERIOD_MS": 200})
        th.wait_until(lambda: admin.scard("twin:assets") >= 7, 30,
                      what="the demo plant's assets in twin:assets")


if __name__ == "__main__":
    th.main()
