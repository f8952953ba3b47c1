# SPDX-License-Identifier: Apache-2.0
# Deployment: docker-compose.yml and the Dockerfile hold together, make-secrets.sh and the entrypoint work, the shipped broker ACL and Redis users hold on real servers with every service running under its own users (and grant every command of ingest's apply script), and the scaled topology (docker-compose.scale.yml, run.sh --scaled) runs on a Redis Cluster.
"""The shipped deploy/ files on real mosquitto and redis-server: secrets made by
deploy/make-secrets.sh in the test's temp dir, the broker with the whole deploy/mosquitto.conf
(ports and paths rewritten as scripts/run.sh does) and deploy/mosquitto.acl, Redis with the
generated ACL file. There is no Docker engine in CI: the compose file is validated with
docker-compose itself and the Dockerfile is read, not built."""

import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import redis as redis_lib
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import yaml

import clusterkit as ck
import twinharness as th
from twinharness import TwinTestCase

ROOT = "twin/v1"
COMPOSE = th.REPO_DIR / "docker-compose.yml"
DOCKERFILE = th.DEPLOY_DIR / "Dockerfile"
MAKE_SECRETS = th.DEPLOY_DIR / "make-secrets.sh"
ENTRYPOINT = th.DEPLOY_DIR / "entrypoint.sh"
OUR_SERVICES = {"ingest": 9101, "predictor": 9102, "scenario": 9103, "devsim": 9104,
                "advisor": 9107}
# Our services with a Redis user of their own (devsim has none).
REDIS_SERVICES = ("ingest", "predictor", "scenario", "advisor")
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
        self.assertEqual(set(services), {"init", "broker", "redis", "ingest", "predictor",
                                         "scenario", "advisor", "devsim"})
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
        for name in REDIS_SERVICES:
            env = services[name]["environment"]
            self.assertEqual(env["TWIN_REDIS_USER"], f"twin-{name}")
            self.assertTrue(env["TWIN_REDIS_PASSWORD_FILE"]
                            .endswith(f"/redis/twin-{name}.password"))
            self.assertEqual(services[name]["depends_on"]["redis"]["condition"], "service_healthy")
        for name in ("broker", "redis"):
            self.assertEqual(services[name]["depends_on"]["init"]["condition"],
                             "service_completed_successfully")
        self.assertEqual(set(cfg["volumes"]),
                         {"secrets", "broker-auth", "redis-auth", "www", "broker-data",
                          "redis-data", "secrets-ingest", "secrets-predictor",
                          "secrets-scenario", "secrets-advisor", "secrets-devsim"})
        # twin-advisor: the demo plant (it has "actions"), advice only unless turned on.
        advisor_env = services["advisor"]["environment"]
        self.assertEqual(advisor_env["TWIN_ADVISOR_AUTONOMY"], "false")
        self.assertEqual(advisor_env["TWIN_MODEL"], "/opt/twinloop/deploy/plant.json")
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


# ---- the scaled topology: docker-compose.scale.yml and scripts/run.sh --scaled -------------


SCALE_COMPOSE = th.REPO_DIR / "docker-compose.scale.yml"
RUN_SH = th.REPO_DIR / "scripts" / "run.sh"
CLUSTER_URL = "redis+cluster://redis-1:6379,redis-2:6379,redis-3:6379"
REDIS_NODES = ["redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6"]
DEMO_ASSETS = sorted(json.loads((th.DEPLOY_DIR / "plant.json").read_text())["assets"])
ROLES_3_PLUS_3 = ["master"] * 3 + ["slave"] * 3


def scaled_compose_config(tc):
    """The merged config of docker-compose.yml + docker-compose.scale.yml, checked by
    docker-compose: (text, parsed)."""
    tc.assertIsNotNone(shutil.which("docker-compose"),
                       "docker-compose is missing: it is a test dependency (scripts/lib.sh)")
    argv = ["docker-compose", "-f", str(COMPOSE), "-f", str(SCALE_COMPOSE), "config"]
    res = subprocess.run(argv, cwd=th.REPO_DIR, capture_output=True, text=True, timeout=60,
                         check=False)
    tc.assertEqual(res.returncode, 0, res.stderr)
    quiet = subprocess.run(argv + ["-q"], cwd=th.REPO_DIR, capture_output=True, text=True,
                           timeout=60, check=False)
    tc.assertEqual(quiet.returncode, 0, quiet.stderr)
    return res.stdout, yaml.safe_load(res.stdout)


def services_up_would_start(files):
    """The services `docker-compose -f ... up` starts, by docker-compose 1.29's own selection
    (which refuses a dependency that its profiles leave out); no engine is asked."""
    from unittest import mock  # pylint: disable=import-outside-toplevel
    from compose.config import config as compose_config  # pylint: disable=import-outside-toplevel
    from compose.config.environment import Environment  # pylint: disable=import-outside-toplevel
    from compose.project import Project  # pylint: disable=import-outside-toplevel
    details = compose_config.find(str(th.REPO_DIR), [str(f) for f in files],
                                  Environment.from_env_file(str(th.REPO_DIR)))
    project = Project.from_config("twin", compose_config.load(details), mock.MagicMock())
    return {s.name for s in project.get_services(None, include_deps=True)}


def init_volumes(h, extra=None):
    """deploy/entrypoint.sh init natively, the volumes being dirs of h.dir: {volume: dir}."""
    home = h.dir / "home"
    (home / "dashboard").mkdir(parents=True)
    (home / "deploy").symlink_to(th.DEPLOY_DIR)
    (home / "dashboard" / "index.html").write_text("<title>dash</title>\n")
    vols = {k: h.dir / k for k in ("secrets", "broker", "redis", "redis-admin", "www",
                                   "services")}
    for v in vols.values():
        v.mkdir()
    env = {"TWIN_HOME": home, "TWIN_SECRETS_DIR": vols["secrets"],
           "TWIN_BROKER_AUTH_DIR": vols["broker"], "TWIN_REDIS_AUTH_DIR": vols["redis"],
           "TWIN_WWW_DIR": vols["www"], "TWIN_SERVICE_SECRETS_DIR": vols["services"]}
    env.update(extra or {})
    res = subprocess.run(["bash", str(ENTRYPOINT), "init"], env=th.clean_env(env),
                         capture_output=True, text=True, timeout=60, check=False)
    if res.returncode != 0:
        raise AssertionError(f"entrypoint init failed: {res.stderr}")
    return vols


def redis_cli(secrets_redis_dir, port, *args, user="twin-admin", timeout=60):
    """redis-cli as `user`, its password (from <dir>/<user>.password) in REDISCLI_AUTH."""
    password = (secrets_redis_dir / f"{user}.password").read_text().splitlines()[0]
    return subprocess.run(["redis-cli", "--no-auth-warning", "--user", user, "-p", str(port),
                           *args], env=th.clean_env({"REDISCLI_AUTH": password}),
                          capture_output=True, text=True, timeout=timeout, check=False)


def roles(secrets_redis_dir, ports):
    """ROLE of each node, sorted: ROLES_3_PLUS_3 for a healthy cluster."""
    return sorted((redis_cli(secrets_redis_dir, p, "ROLE").stdout.split() or ["?"])[0]
                  for p in ports)


def cluster_base_port():
    """P with P .. P+5 and their cluster-bus ports P+10000 .. P+10005 free, below the kernel's
    ephemeral range when it leaves room (there any outgoing connection could take one of them
    between this check and the node's bind)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    lo, hi = (10000, low - 10006) if low - 10006 > 11000 else (20000, 45000)
    for _ in range(50):
        base = random.randint(lo, hi)
        if all(ck.port_free(p) for i in range(6) for p in (base + i, base + i + 10000)):
            return base
    raise AssertionError("no free range of 6 Redis Cluster ports")


def assert_no_password_in_argv(tc, pids, passwords):
    """No process of `pids` has any of `passwords` in /proc/<pid>/cmdline; returns their
    names (/proc/<pid>/comm)."""
    names = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue  # gone meanwhile
        for pw in passwords:
            tc.assertNotIn(pw, cmdline)
    return names


class ScaledComposeTest(TwinTestCase):

    def test_scaled_override_has_a_cluster_second_instances_and_no_password(self):
        text, cfg = scaled_compose_config(self)
        services = cfg["services"]
        self.assertEqual(set(services), {"init", "broker", "ingest", "predictor", "scenario",
                                         "advisor", "devsim", "ingest-2", "predictor-2",
                                         "redis-cluster-init", *REDIS_NODES})
        # `up` starts every one of them: nothing left out by profiles, no missing dependency.
        self.assertFalse([n for n, s in services.items() if "profiles" in s])
        self.assertEqual(services_up_would_start([COMPOSE, SCALE_COMPOSE]), set(services))
        self.check_second_instances(services)
        self.check_cluster_nodes(services)
        self.check_cluster_init(services)
        # Every service names the cluster; those that use Redis start once it exists.
        twin = {"ingest", "ingest-2", "predictor", "predictor-2", "scenario", "advisor",
                "devsim"}
        for n in twin:
            self.assertEqual(services[n]["environment"]["TWIN_REDIS_URL"], CLUSTER_URL, n)
        with_user = {n for n, s in services.items()
                     if "TWIN_REDIS_USER" in s.get("environment", {})}
        self.assertEqual(with_user, twin - {"devsim"})
        for n in with_user:
            self.assertEqual(services[n]["depends_on"]["redis-cluster-init"]["condition"],
                             "service_completed_successfully", n)
        self.assertEqual(services["init"]["environment"]["TWIN_INIT_REDIS_URL"], CLUSTER_URL)
        self.assertTrue({"redis-admin", *(f"redis-cluster-{i}" for i in range(1, 7))}
                        <= set(cfg["volumes"]))
        self.check_no_password(text, services)

    def check_second_instances(self, services):
        """ingest-2 and predictor-2: copies of the first ones but for TWIN_INSTANCE."""
        for name in ("ingest", "predictor"):
            one, two = services[name], services[f"{name}-2"]
            self.assertEqual((one["environment"]["TWIN_INSTANCE"],
                              two["environment"]["TWIN_INSTANCE"]), ("c1", "c2"))
            for key in ("image", "command", "volumes", "healthcheck", "depends_on", "restart"):
                self.assertEqual(one[key], two[key], f"{name}-2: {key}")
            env_one, env_two = dict(one["environment"]), dict(two["environment"])
            del env_one["TWIN_INSTANCE"], env_two["TWIN_INSTANCE"]
            self.assertEqual(env_one, env_two)

    def check_cluster_nodes(self, services):
        """Six cluster nodes, each with its own data volume, the users file of the single
        Redis (copied from redis-auth, as there), the replication include and a healthcheck."""
        nodes = {n for n, s in services.items()
                 if s.get("image") == "redis:7" and "--cluster-enabled yes" in s["command"][-1]}
        self.assertEqual(nodes, set(REDIS_NODES))
        data = set()
        for n in REDIS_NODES:
            svc, script = services[n], services[n]["command"][-1]
            mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc["volumes"]}
            data.add(mounts["/data"])
            self.assertEqual(mounts["/twin/auth"], "redis-auth")
            self.assertEqual(mounts["/usr/local/etc/twin/redis.conf"],
                             str(th.DEPLOY_DIR / "redis.conf"))
            for want in ("cp /twin/auth/users.acl /usr/local/etc/twin/users.acl",
                         "--aclfile /usr/local/etc/twin/users.acl",
                         "--cluster-config-file nodes.conf",
                         "--include /usr/local/etc/twin/replication.conf"):
                self.assertIn(want, script, n)
            self.assertEqual(svc["healthcheck"], services["redis-2"]["healthcheck"])
            self.assertEqual(svc["restart"], "unless-stopped")
        self.assertEqual(len(data), 6)
        self.assertNotIn("redis-data", data)  # the single Redis's data never joins a cluster
        self.assertEqual(services["redis"]["networks"]["default"]["aliases"], ["redis-1"])
        self.assertEqual(len({services[n]["environment"]["TWIN_REDIS_NODE"]
                              for n in REDIS_NODES}), 6)

    def check_cluster_init(self, services):
        """The one-shot that creates the cluster: after every node, as twin-admin."""
        init = services["redis-cluster-init"]
        self.assertEqual(init["restart"], "no")
        self.assertEqual(set(init["depends_on"]), {"init", *REDIS_NODES})
        self.assertEqual(init["volumes"], ["redis-admin:/twin/admin:ro"])
        for want in ("--cluster create", "--cluster-replicas 1", "--cluster-yes",
                     "--user twin-admin", "REDISCLI_AUTH=", "cluster_state:ok"):
            self.assertIn(want, init["command"][-1])

    def check_no_password(self, text, services):
        """Only *_PASSWORD_FILE settings, no credentials in a URL, no password option of
        redis-cli or redis-server, and twin-admin's password volume (like `secrets`) mounted
        only where it is needed."""
        for n, svc in services.items():
            for key, value in svc.get("environment", {}).items():
                self.assertFalse("PASSWORD" in key and not key.endswith("_PASSWORD_FILE"),
                                 f"{n}: {key}")
                self.assertNotIn("@", str(value), f"{n}: {key}")
            argv = " ".join(svc.get("command", []) + svc.get("healthcheck", {}).get("test", []))
            self.assertNotRegex(argv, r"(^|\s)(-a|--pass|--masterauth|--requirepass)\s", n)
            mounts = [str(v).split(":")[0] for v in svc.get("volumes", [])]
            self.assertEqual("secrets" in mounts, n == "init", n)
            self.assertEqual("redis-admin" in mounts, n in ("init", "redis-cluster-init"), n)
        self.assertNotRegex(text, r"masterauth [^%]")  # only the printf format of the include

    def test_scaled_compose_nodes_and_cluster_init_run_natively(self):
        """The override's node and cluster-init scripts, run natively on loopback (paths and
        ports rewritten): the cluster is made once, replicas log in as `replication`, nothing
        is refused, no password is on a command line, and the store layer (twinctl) follows
        the announced host names."""
        _, cfg = scaled_compose_config(self)
        services = cfg["services"]
        # init with the scaled topology's setting: replication's password beside the users
        # file, twin-admin's in a directory of its own.
        vols = init_volumes(self.h, {"TWIN_REDIS_ADMIN_DIR": self.h.dir / "redis-admin"})
        self.assertEqual(sorted(p.name for p in vols["redis"].iterdir()),
                         ["healthcheck.password", "replication.password", "users.acl"])
        self.assertEqual([p.name for p in vols["redis-admin"].iterdir()],
                         ["twin-admin.password"])
        for p in list(vols["redis"].iterdir()) + list(vols["redis-admin"].iterdir()):
            self.assertEqual(stat.S_IMODE(p.stat().st_mode), 0o600, p)
        sec_redis = vols["secrets"] / "redis"
        self.check_entrypoint_cluster_url(vols["secrets"])
        base = cluster_base_port()
        ports = [base + i for i in range(6)]
        nodes = self.start_compose_nodes(services, vols, ports)
        res = self.run_cluster_init(services, vols["redis-admin"], ports)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("redis-cluster-init: the cluster is ok\n", res.stdout)
        res = self.run_cluster_init(services, vols["redis-admin"], ports)  # nothing to do
        self.assertEqual((res.returncode, res.stdout),
                         (0, "redis-cluster-init: the cluster is ok already\n"), res.stderr)

        def replicas_in_sync():
            infos = [redis_cli(sec_redis, p, "INFO", "replication").stdout for p in ports]
            return (roles(sec_redis, ports) == ROLES_3_PLUS_3 and
                    sum("master_link_status:up" in i for i in infos) == 3)
        th.wait_until(replicas_in_sync, 30, what="3 masters, each with a replica in sync")
        # Clients are sent to the announced name, which the store layer resolves.
        self.assertIn("localhost", redis_cli(sec_redis, ports[0], "CLUSTER", "SLOTS").stdout)
        for a in DEMO_ASSETS:
            res = redis_cli(sec_redis, ports[0], "-c", "HSET", f"twin:{{{a}}}:state",
                            "temp", "1", "_seq", "1")
            self.assertEqual(res.stdout.split()[-1:], ["2"], res.stderr)
            redis_cli(sec_redis, ports[0], "-c", "SADD", "twin:assets", a)
        op = (sec_redis / "operator.password").read_text().splitlines()[0]
        url = f"redis+cluster://operator:{op}@{th.LOOPBACK}:{ports[0]},{th.LOOPBACK}:{ports[1]}"
        ctl = self.h.run("twinctl", ["assets"], env={"TWIN_REDIS_URL": url})
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        for a in DEMO_ASSETS:
            self.assertIn(a, ctl.stdout.decode())
        slots = {redis_cli(sec_redis, ports[0], "CLUSTER", "KEYSLOT", f"twin:{{{a}}}:state")
                 .stdout.strip() for a in DEMO_ASSETS}
        self.assertGreater(len(slots), 1)
        # Replication, the cluster's creation and twinctl's reads: nothing refused.
        for p in ports:
            self.assertEqual(redis_cli(sec_redis, p, "ACL", "LOG").stdout.strip(), "", p)
        passwords = {f.read_text().splitlines()[0] for f in sec_redis.glob("*.password")}
        assert_no_password_in_argv(self, [pid for n in nodes for pid in n.members()], passwords)

    def check_entrypoint_cluster_url(self, secrets):
        """A service's entrypoint puts its user and password into the cluster URL."""
        env = {"TWIN_REDIS_URL": CLUSTER_URL, "TWIN_REDIS_USER": "twin-ingest",
               "TWIN_REDIS_PASSWORD_FILE": secrets / "redis" / "twin-ingest.password"}
        res = subprocess.run(["bash", str(ENTRYPOINT), "sh", "-c", 'echo "$TWIN_REDIS_URL"'],
                             env=th.clean_env(env), capture_output=True, text=True, timeout=30,
                             check=False)
        password = secret(secrets, "redis", "twin-ingest")
        self.assertEqual(res.stdout.strip(),
                         CLUSTER_URL.replace("://", f"://twin-ingest:{password}@"), res.stderr)

    def start_compose_nodes(self, services, vols, ports):
        """Each node's compose command with its container paths, user and address rewritten to
        this test's dirs and ports; ready when twin-admin gets a PONG."""
        nodes = []
        for name, port in zip(REDIS_NODES, ports):
            etc, data = self.h.dir / f"etc-{name}", self.h.dir / f"data-{name}"
            etc.mkdir()
            data.mkdir()
            shutil.copy(th.DEPLOY_DIR / "redis.conf", etc / "redis.conf")  # the bind mount
            script = services[name]["command"][-1].replace("$$", "$")
            for old, new in (("/usr/local/etc/twin", str(etc)), ("/twin/auth", str(vols["redis"])),
                             ("chown redis:redis", f"chown {os.getuid()}:{os.getgid()}"),
                             ("exec docker-entrypoint.sh redis-server", "exec redis-server"),
                             ("--bind 0.0.0.0 --dir /data",
                              f"--bind {th.LOOPBACK} --port {port} --dir {data}")):
                self.assertIn(old, script)
                script = script.replace(old, new)
            node = th.ManagedProcess(self.h, name, ["sh", "-c", script],
                                     env=th.clean_env({"TWIN_REDIS_NODE": "localhost"}))
            nodes.append(node.start())
        sec_redis = vols["secrets"] / "redis"
        for port in ports:
            th.wait_until(lambda port=port: redis_cli(sec_redis, port, "PING").stdout.strip()
                          == "PONG", th.START_TIMEOUT_S, what=f"node {port} to answer twin-admin")
        for name in REDIS_NODES:
            conf = self.h.dir / f"etc-{name}" / "replication.conf"
            self.assertEqual(stat.S_IMODE(conf.stat().st_mode), 0o600)
        return nodes

    def run_cluster_init(self, services, redis_admin, ports):
        """redis-cluster-init's command, its nodes being this test's."""
        init = services["redis-cluster-init"]
        self.assertEqual(init["environment"]["TWIN_REDIS_CLUSTER_NODES"].split(),
                         [f"redis-{i}:6379" for i in range(1, 7)])
        env = {"TWIN_REDIS_CLUSTER_NODES": " ".join(f"{th.LOOPBACK}:{p}" for p in ports),
               "TWIN_REDIS_ADMIN_PASSWORD_FILE": redis_admin / "twin-admin.password"}
        return subprocess.run(["sh", "-c", init["command"][-1].replace("$$", "$")],
                              env=th.clean_env(env), capture_output=True, text=True,
                              timeout=120, check=False)


class ScaledRunShTest(TwinTestCase):

    def test_run_sh_scaled_runs_a_cluster_two_ingest_and_two_predictors(self):
        """scripts/run.sh --scaled on free ports: 6 cluster nodes, 2 ingest, 2 predictors
        splitting the assets, scenario and devsim, all on the cluster; SIGTERM leaves nothing
        behind; a second start finds the cluster made."""
        base = cluster_base_port()
        ports = self.metrics_and_broker_ports(base)
        data = self.h.dir / "data"
        env = {f"TWIN_{k}_PORT": v for k, v in ports.items()}
        env.update({"TWIN_REDIS_PORT": base, "TWIN_DATA_DIR": data,
                    "TWIN_BUILD_DIR": th.BUILD_DIR, "TWIN_DEVSIM_PERIOD_MS": 200})
        run = th.ManagedProcess(self.h, "run-sh", ["bash", str(RUN_SH), "--scaled"],
                                env=th.clean_env(env), cwd=self.h.dir)
        run.start()
        self.wait_running(run)
        self.assertIn("creating the Redis Cluster", run.log_text())
        for var, port in ports.items():
            if var.endswith("_METRICS"):
                th.wait_until(lambda p=port: th.http_get(p, "/healthz")[0] == 200,
                              th.START_TIMEOUT_S, what=f"{var} /healthz", ignore=(OSError,))
        sec_redis = data / "secrets" / "redis"

        def op(*args):  # the operator, with redis-cli -c as run.sh's hint
            return redis_cli(sec_redis, base, "-c", *args, user="operator").stdout.strip()
        for key in ("twin:{press-1}:state", "twin:{press-1}:prediction"):
            th.wait_until(lambda key=key: op("EXISTS", key) == "1", 30, what=f"{key} in Redis")
        th.wait_until(lambda: sorted(op("SMEMBERS", "twin:assets").split()) == DEMO_ASSETS, 30,
                      what="every demo asset in twin:assets")
        self.wait_predictors_split(ports)
        self.assertEqual(roles(sec_redis, range(base, base + 6)), ROLES_3_PLUS_3)
        for p in range(base, base + 6):
            self.assertEqual(redis_cli(sec_redis, p, "ACL", "LOG").stdout.strip(), "")
        env_text = (data / "secrets" / "twin.env").read_text()
        self.assertIn("export TWIN_REDIS_URL='redis+cluster://operator:", env_text)
        self.assertIn(f"@{th.LOOPBACK}:{base},{th.LOOPBACK}:{base + 1},{th.LOOPBACK}:{base + 2}'",
                      env_text)
        self.assertEqual(stat.S_IMODE((data / "secrets" / "redis-replication.conf")
                                      .stat().st_mode), 0o600)
        passwords = {f.read_text().splitlines()[0] for f in (data / "secrets").rglob("*.password")}
        names = assert_no_password_in_argv(self, run.members(), passwords)
        self.assertEqual((names.count("redis-server"), names.count("twin-predictor"),
                          names.count("twin-advisor")), (6, 2, 1), names)
        self.assertIn("advice only; --autonomy lets it act", run.log_text())
        self.assertIn("instance=local2", run.log_text())
        self.stop_and_check_nothing_left(run)
        # A second start on the same data: the cluster is there, it is not created again,
        # and the stack works on it.
        mark = len(run.log_text())
        run.start()
        self.wait_running(run, since=mark)
        self.assertNotIn("creating the Redis Cluster", run.log_text()[mark:])
        self.assertEqual(roles(sec_redis, range(base, base + 6)), ROLES_3_PLUS_3)
        th.wait_until(lambda: op("EXISTS", "twin:{press-1}:state") == "1", 30,
                      what="press-1's state after the restart")
        self.stop_and_check_nothing_left(run)

    @staticmethod
    def metrics_and_broker_ports(base):
        """{TWIN_<X>_PORT suffix: port} for run.sh, none in the cluster's ranges."""
        taken = {base + i for i in range(6)} | {base + i + 10000 for i in range(6)}
        ports = {}
        for var in ("MQTT", "WS", "INGEST_METRICS", "PREDICTOR_METRICS", "SCENARIO_METRICS",
                    "DEVSIM_METRICS", "ADVISOR_METRICS", "INGEST2_METRICS",
                    "PREDICTOR2_METRICS"):
            port = th.free_port()
            while port in taken:
                port = th.free_port()
            ports[var] = port
        return ports

    def wait_predictors_split(self, ports):
        """The two predictors split the assets: each models some, together every one once."""
        def split():
            n = [th.parse_metrics(th.http_get(ports[v], "/metrics")[1])
                 .get("twin_predictor_assets", 0)
                 for v in ("PREDICTOR_METRICS", "PREDICTOR2_METRICS")]
            return all(n) and sum(n) == len(DEMO_ASSETS)
        th.wait_until(split, 30, what="the predictors to split the assets", ignore=(OSError,))

    def wait_running(self, run, since=0):
        def up():
            if not run.running:
                raise AssertionError(f"run.sh exited with {run.returncode}:\n{run.log_tail()}")
            return "Twinloop is running" in run.log_text()[since:]
        th.wait_until(up, 45, what="run.sh --scaled to say it is running")

    def stop_and_check_nothing_left(self, run):
        pgid = run.pgid
        run.send_signal(signal.SIGTERM)
        rc = run.wait_exit(40)
        self.assertIn(rc, (0, 130), run.log_tail())
        th.wait_until(lambda: not th.group_members(pgid), 10,
                      what="every process of run.sh to be gone")


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
        approval1, command1 = f"{ROOT}/asset/press-1/approval", f"{ROOT}/asset/press-1/command"
        denied = [("press-1", t2), ("press-1", state1), ("press-1", f"{ROOT}/scenario/request"),
                  ("dashboard", t2), ("dashboard", f"{ROOT}/asset/dashboard/telemetry"),
                  ("dashboard", state1), ("dashboard", f"{ROOT}/asset/press-1/prediction"),
                  ("healthcheck", t1), ("twin-ingest", f"{ROOT}/asset/twin-ingest/telemetry"),
                  ("twin-scenario", state1), ("twin-devsim", state1),
                  # Approvals make machines act: not the dashboard (its password is public),
                  # nor a device; commands come from twin-advisor alone.
                  ("dashboard", approval1), ("press-1", approval1), ("press-1", command1),
                  ("twin-devsim", command1), ("dashboard", command1),
                  ("press-1", f"{ROOT}/recommendation/request"),
                  ("twin-advisor", state1), ("twin-advisor", f"{ROOT}/asset/press-1/alert"),
                  ("twin-advisor", f"{ROOT}/asset/twin-advisor/telemetry")]
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
        dash.publish(f"{ROOT}/recommendation/request", b"asks")
        # The simulated plant may say it refused a command.
        s.mqtt("twin-devsim").connected().publish(f"{ROOT}/rejected/devsim", b"devsim-rejects")
        op.wait_payload(t1, b"own")
        op.wait_payload(f"{ROOT}/scenario/request", b"request")
        op.wait_payload(f"{ROOT}/recommendation/request", b"asks")
        op.wait_payload(f"{ROOT}/rejected/devsim", b"devsim-rejects")
        time.sleep(SETTLE_S)
        got = [p for t in set(op.topics()) for p in op.payloads(t)]
        self.assertEqual(sorted(got), [b"asks", b"devsim-rejects", b"own", b"request"])
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
                    ("twin-devsim", service_id), ("twin-advisor", service_id),
                    ("press-1", "press-2"), ("press-1", "twin-dashboard-1"),
                    ("twin-ingest", "press-1"), ("press-1", "twin-advisor-c1"),
                    ("dashboard", "twin-advisor-c1"), ("twin-advisor", "operator-1")]
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


class IngestScriptAclTest(TwinTestCase):

    def test_every_command_of_the_apply_script_is_granted_to_twin_ingest(self):
        # Redis checks a script's commands against the calling user: a command the apply
        # script gains must be granted in deploy/users.acl too, or every apply is refused.
        ingest = th.REPO_DIR / "services" / "ingest"
        src = (ingest / "apply.lua").read_text() + (ingest / "derive.lua").read_text()
        called = set(re.findall(r"redis\.call\('([A-Za-z]+)'", src))
        self.assertGreaterEqual(len(called), 8, called)  # the pattern still finds them
        line = next(ln for ln in (th.DEPLOY_DIR / "users.acl").read_text().splitlines()
                    if ln.startswith("user twin-ingest "))
        granted = {t[1:].lower() for t in line.split() if t.startswith("+")}
        self.assertEqual({c for c in called if c.lower() not in granted}, set())


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
        self.check_advisor_and_operator_rights(s, admin, nope)
        hc = s.redis_as("healthcheck")
        self.assertTrue(hc.ping())
        with self.assertRaises(nope):
            hc.get("twin:assets")
        self.assertEqual(admin.hgetall("twin:{press-1}:state"), {"temp": "1", "_seq": "1"})
        self.assertEqual(admin.get("twin:scenario:t"), "r")

    def check_advisor_and_operator_rights(self, s, admin, nope):
        """twin-advisor reads the twin, writes its recommendations, its guardrails' sorted set
        and the audit stream (append only) and nothing else; the operator reads them."""
        adv = s.redis_as("twin-advisor")
        self.assertEqual(adv.hgetall("twin:{press-1}:state")["temp"], "1")
        self.assertEqual(adv.hget("twin:{press-1}:state", "_seq"), "1")
        self.assertTrue(adv.set("twin:{press-1}:recommendation", "rec"))
        self.assertEqual(adv.get("twin:{press-1}:recommendation"), "rec")
        audit_id = adv.xadd("twin:audit", {"event": "advice", "asset": "press-1"},
                            maxlen=100, approximate=True)
        self.assertEqual(adv.zadd("twin:autonomy", {"press-1|maintain|cmd-1": 1000}), 1)
        self.assertEqual(adv.zrangebyscore("twin:autonomy", 0, "+inf"), ["press-1|maintain|cmd-1"])
        self.assertEqual(adv.zremrangebyscore("twin:autonomy", "-inf", "(0"), 0)
        for call in (lambda: adv.hset("twin:{press-1}:state", "temp", "2"),
                     lambda: adv.set("twin:{press-1}:prediction", "x"),
                     lambda: adv.set("twin:scenario:x", "1"),
                     lambda: adv.xadd("twin:{press-1}:history", {"seq": "9"}),
                     lambda: adv.xrange("twin:audit"),  # write only: it never reads it back
                     lambda: adv.delete("twin:audit"), lambda: adv.delete("twin:autonomy"),
                     lambda: adv.xtrim("twin:audit", maxlen=0),
                     lambda: adv.zadd("twin:{press-1}:state", {"x": 1}),
                     lambda: adv.sadd("twin:assets", "ghost"), lambda: adv.get("other"),
                     lambda: adv.eval("return 1", 0), lambda: adv.keys("*"),
                     lambda: adv.execute_command("SCRIPT", "FLUSH")):
            with self.assertRaises(nope):
                call()
        op = s.redis_as("operator")
        self.assertEqual([e[0] for e in op.xrevrange("twin:audit", count=5)], [audit_id])
        self.assertEqual(op.xrange("twin:audit")[0][1], {"event": "advice", "asset": "press-1"})
        self.assertEqual(op.get("twin:{press-1}:recommendation"), "rec")
        self.assertEqual(op.zcard("twin:autonomy"), 1)
        for call in (lambda: op.xadd("twin:audit", {"event": "forged"}),
                     lambda: op.set("twin:{press-1}:recommendation", "forged"),
                     lambda: op.zadd("twin:autonomy", {"x": 1})):
            with self.assertRaises(nope):
                call()
        self.assertEqual(admin.xlen("twin:audit"), 1)

    def test_transactions_and_scripts_survive_a_redis_restart(self):
        """Redis replays its AOF as the default user and (7.0, Debian 12) checks that user's
        rights again at EXEC (redis/redis#14541): with the default user stripped of them, every
        MULTI/EXEC block, which is how the AOF holds a script's writes (ingest's apply), was
        dropped at the next start. The shipped default user is off but keeps the rights."""
        s = self.stack()
        admin = s.redis_as("twin-admin")
        with admin.pipeline(transaction=True) as tx:
            tx.hset("twin:{m-1}:state", mapping={"temp": "20.5", "_seq": "7"})
            tx.xadd("twin:{m-1}:history", {"ts_ms": "1", "seq": "7", "temp": "20.5"})
            tx.execute()
        admin.eval("redis.call('HSET', KEYS[1], 'temp', ARGV[1]); "
                   "redis.call('XADD', KEYS[2], '*', 'seq', '8', 'temp', ARGV[1]); return 1",
                   2, "twin:{m-2}:state", "twin:{m-2}:history", "21.5")
        admin.set("twin:plain", "1")
        admin.close()
        self.assertEqual(s.redis.stop(), 0)  # SIGTERM: the AOF is flushed
        th.ManagedProcess.start(s.redis)
        th.wait_until(s._redis_up, th.START_TIMEOUT_S, what="redis back after the restart")
        admin = s.redis_as("twin-admin")
        self.assertEqual(admin.get("twin:plain"), "1")
        self.assertEqual(admin.hgetall("twin:{m-1}:state"), {"temp": "20.5", "_seq": "7"})
        self.assertEqual(admin.xlen("twin:{m-1}:history"), 1)
        self.assertEqual(admin.hget("twin:{m-2}:state", "temp"), "21.5")
        self.assertEqual(admin.xlen("twin:{m-2}:history"), 1)
        # Still nobody without a user.
        anon = redis_lib.Redis(host=th.LOOPBACK, port=s.redis.port, socket_timeout=5)
        with self.assertRaises(redis_lib.exceptions.AuthenticationError):
            anon.ping()
        with self.assertRaises(redis_lib.exceptions.RedisError):
            redis_lib.Redis(host=th.LOOPBACK, port=s.redis.port, username="default",
                            password="anything", socket_timeout=5).ping()


# ---- everything together -------------------------------------------------------------------


# twin-advisor in these tests: 2 simulation threads, 100 replications per candidate (an
# evaluation of the demo plant takes well under a second even so), advice only as shipped.
ADVISOR_ENV = {"TWIN_ADVISOR_THREADS": 2, "TWIN_ADVISOR_REPLICATIONS": 100,
               "TWIN_ADVISOR_AUTONOMY": "false"}


def wait_recommendation(pb, client, asset, predicate, timeout=90):
    """The first Recommendation on the asset's topic that `client` received and that
    satisfies predicate."""
    def found():
        for raw in client.payloads(f"{ROOT}/asset/{asset}/recommendation"):
            rec = pb.Recommendation.FromString(raw)
            if predicate(rec):
                return rec
        return None
    return th.wait_until(found, timeout, what=f"a Recommendation for {asset}")


def check_advisor_audited(tc, s, pb, rec, events):
    """As the operator (twin.env's Redis user): the audit stream holds `events` for the
    recommendation, and twin:{asset}:recommendation its last version."""
    op = s.redis_as("operator")
    entries = [f for _, f in op.xrange("twin:audit") if f.get("recommendation") == rec.id]
    tc.assertEqual([e["event"] for e in entries], events, entries)
    for e in entries:
        tc.assertEqual(e["asset"], rec.asset_id)
        tc.assertTrue(e["by"])
    tc.assertEqual(len(op.xrevrange("twin:audit", count=1)), 1)
    raw = redis_lib.Redis(host=th.LOOPBACK, port=s.redis.port, username="operator",
                          password=secret(s.secrets, "redis", "operator"),
                          socket_timeout=5).get(f"twin:{{{rec.asset_id}}}:recommendation")
    tc.assertIsNotNone(raw)
    tc.assertEqual(pb.Recommendation.FromString(raw).id, rec.id)


def check_advisor_log(tc, advisor):
    """Nothing twin-advisor asked for was refused: no NOPERM from Redis, no "not authorized"
    from the broker, no failed store, audit, guardrail or publish."""
    log = advisor.log_text()
    for word in ("NOPERM", "not authorized", "store_failed", "audit_failed", "limit_failed",
                 "publish_failed", "evaluation_failed"):
        tc.assertNotIn(word, log)
    m = advisor.metrics()
    tc.assertEqual(m.get("twin_advisor_store_errors_total", 0), 0, m)
    tc.assertEqual(m.get("twin_advisor_publish_failed_total", 0), 0, m)
    tc.assertEqual(m.get("twin_advisor_redis_connected", 0), 1, m)
    tc.assertEqual(m.get("twin_advisor_mqtt_connected", 0), 1, m)


class EndToEndUnderUsersTest(DeployTestCase):

    def test_services_run_end_to_end_under_their_users_and_nothing_is_refused(self):
        s = self.stack()
        pb = th.load_proto()
        admin = s.redis_as("twin-admin")
        admin.execute_command("ACL", "LOG", "RESET")
        op = s.mqtt("operator").connected()
        for topic in ("asset/+/state", "asset/+/prediction", "scenario/+/result",
                      "asset/+/recommendation", "service/+/+/status", "rejected/+"):
            op.subscribe(f"{ROOT}/{topic}")
        ingest = s.service("ingest")
        s.service("predictor")
        s.service("scenario", env={"TWIN_SCENARIO_THREADS": 2})
        advisor = s.service("advisor", env=ADVISOR_ENV)
        for svc in ("ingest", "predictor", "scenario", "advisor"):  # status (and Will) allowed
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
        self.check_mcp_as_operator(s)
        self.check_advisor_answers_the_operator(s, pb, op, advisor)
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

    def test_advisor_runs_under_its_users_and_an_operators_approval_reaches_the_plant(self):
        """twin-advisor with the shipped ACLs, every topic and key it uses: a forecast alert
        and requests in (the dashboard may ask, not approve), a Recommendation out, the
        operator's approval through the guardrails' Lua script on twin:autonomy to a Command
        that twin-devsim's user receives, each step in twin:audit, a Rejected for a bad
        request; Redis's ACL LOG stays empty."""
        s = self.stack()
        pb = th.load_proto()
        admin = s.redis_as("twin-admin")
        admin.execute_command("ACL", "LOG", "RESET")
        # A badly worn press-1, as ingest would have stored it: acting on it pays.
        now = th.now_ms()
        admin.hset("twin:{press-1}:state", mapping={"vibration": "10.5", "stroke_rate": "14",
                                                    "_ts_ms": str(now), "_seq": "1"})
        admin.sadd("twin:assets", "press-1")
        op = s.mqtt("operator").connected()
        for topic in ("asset/+/recommendation", "asset/+/command", "service/advisor/+/status",
                      "rejected/+"):
            op.subscribe(f"{ROOT}/{topic}")
        plant = s.mqtt("twin-devsim").connected().subscribe(f"{ROOT}/asset/+/command")
        advisor = s.service("advisor", env=ADVISOR_ENV)
        th.wait_until(lambda: any(t.startswith(f"{ROOT}/service/advisor/") for t in op.topics()),
                      15, what="twin-advisor's status")
        # An alert from the predictor's user reaches it (an ANOMALY: counted, not evaluated).
        alert = pb.Alert(asset_id="press-1", signal="vibration", kind=pb.Alert.ANOMALY,
                         severity=pb.Alert.WARNING, ts_ms=now, value=10.5)
        s.mqtt("twin-predictor").connected().publish(f"{ROOT}/asset/press-1/alert",
                                                     alert.SerializeToString())
        th.wait_until(lambda: advisor.metric('twin_advisor_alerts_skipped_total'
                                             '{reason="not_forecast"}') == 1, 15,
                      what="the alert to reach twin-advisor")
        # The dashboard asks (its password is public: asking is harmless).
        dash = s.mqtt("dashboard").connected()
        req = pb.RecommendationRequest(id="dash-1", asset_id="press-1", requested_by="dash")
        dash.publish(f"{ROOT}/recommendation/request", req.SerializeToString())
        rec = wait_recommendation(pb, op, "press-1", lambda r: r.request_id == "dash-1")
        self.assertEqual(rec.status, pb.Recommendation.OK, rec.error)
        self.assertIn(rec.action.kind, ("maintain", "slow"), rec.why)
        self.assertEqual(rec.decision, "advice")
        check_advisor_audited(self, s, pb, rec, ["advice"])
        # ... but cannot approve: the broker refuses the publish and closes the connection.
        approval = pb.Approval(recommendation_id=rec.id, asset_id="press-1",
                               approved_by="someone with the dashboard's password")
        try:
            s.mqtt("dashboard").connected().publish(f"{ROOT}/asset/press-1/approval",
                                                    approval.SerializeToString())
        except RuntimeError:
            pass
        time.sleep(SETTLE_S)
        self.assertEqual(advisor.metric("twin_advisor_approvals_total"), 0)
        self.assertFalse(plant.topics())
        # The operator approves: guardrails (EVALSHA on twin:autonomy), audit, Command.
        approval = pb.Approval(recommendation_id=rec.id, asset_id="press-1",
                               approved_by="alice")
        op.publish(f"{ROOT}/asset/press-1/approval", approval.SerializeToString())
        command_topic = f"{ROOT}/asset/press-1/command"
        raw = th.wait_until(lambda: plant.payloads(command_topic), 30,
                            what="the Command at the plant")[0]
        cmd = pb.Command.FromString(raw)
        self.assertEqual((cmd.asset_id, cmd.recommendation_id, cmd.issued_by, cmd.action.kind),
                         ("press-1", rec.id, "alice", rec.action.kind))
        self.assertEqual(op.payloads(command_topic), [raw])
        done = wait_recommendation(pb, op, "press-1",
                                   lambda r: r.id == rec.id and r.decision != "advice")
        self.assertEqual((done.decision, done.command_id),
                         ("executed: approved by alice", cmd.id))
        check_advisor_audited(self, s, pb, done, ["advice", "command"])
        self.assertEqual(admin.zcard("twin:autonomy"), 1)
        # A bad request: refused with a Rejected on rejected/advisor, which it may write.
        op.publish(f"{ROOT}/recommendation/request", b"\xff\xff not a request")
        raw = th.wait_until(lambda: op.payloads(f"{ROOT}/rejected/advisor"), 15,
                            what="a Rejected from twin-advisor")[0]
        self.assertEqual(pb.Rejected.FromString(raw).reason, "undecodable")
        self.assertEqual([t for t in op.topics() if "/rejected/" in t],
                         [f"{ROOT}/rejected/advisor"])
        check_advisor_log(self, advisor)
        self.assertEqual(admin.execute_command("ACL", "LOG"), [])

    def check_advisor_answers_the_operator(self, s, pb, op, advisor):
        """A RecommendationRequest for press-1 (with live telemetry) from the operator:
        twin-advisor evaluates it on the live state read as its Redis user, stores and
        publishes the Recommendation, audits it, and is refused nothing."""
        req = pb.RecommendationRequest(id="deploy-rec-1", asset_id="press-1",
                                       signal="vibration", requested_by="deploy-test")
        op.publish(f"{ROOT}/recommendation/request", req.SerializeToString())
        rec = wait_recommendation(pb, op, "press-1", lambda r: r.request_id == "deploy-rec-1")
        self.assertEqual(rec.status, pb.Recommendation.OK, rec.error)
        self.assertEqual((rec.asset_id, rec.trigger), ("press-1", "request"))
        self.assertTrue(rec.options)
        self.assertEqual(rec.decision, "advice")  # autonomy is off in every shipped setup
        check_advisor_audited(self, s, pb, rec, ["advice"])
        check_advisor_log(self, advisor)

    def check_mcp_as_operator(self, s):
        """twin-mcp with the operator's users (as twin.env gives them): it reads the twin from
        Redis and runs a scenario through the broker, and neither refuses it anything."""
        env = th.clean_env({
            "TWIN_MQTT_URL": s.broker.url, "TWIN_MQTT_USER": "operator",
            "TWIN_MQTT_PASSWORD": secret(s.secrets, "mqtt", "operator"),
            "TWIN_REDIS_URL": s.redis_url("operator"),
            "TWIN_MODEL": str(th.DEPLOY_DIR / "plant.json")})
        calls = [{"name": "get_state", "arguments": {"asset": "press-1"}},
                 {"name": "run_scenario", "arguments": {"ignore_live": True, "horizon_hours": 24,
                                                        "replications": 2}}]
        lines = "".join(json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                                    "params": c}) + "\n" for i, c in enumerate(calls))
        res = subprocess.run([str(th.BIN_DIR / "twin-mcp")], input=lines, capture_output=True,
                             text=True, timeout=120, env=env, check=False)
        self.assertEqual(res.returncode, 0, res.stderr[-2000:])
        answers = [json.loads(line) for line in res.stdout.splitlines()]
        self.assertEqual([a["result"]["isError"] for a in answers], [False, False],
                         res.stdout[-2000:])
        self.assertEqual(answers[1]["result"]["structuredContent"]["status"], "ok")

    def check_devsim(self, s, admin):
        """twin-devsim as the plant's gateway user: every demo asset reaches Redis."""
        s.service("devsim", redis_user=False, env={"TWIN_DEVSIM_PERIOD_MS": 200})
        th.wait_until(lambda: admin.scard("twin:assets") >= 7, 30,
                      what="the demo plant's assets in twin:assets")


if __name__ == "__main__":
    th.main()
