# SPDX-License-Identifier: Apache-2.0
# Deployment secrets: make-secrets.sh and the image's entrypoint give each service only its own passwords, never put a password on a command line, refuse bad files and settings with one line and exit 2, and cannot be injected into twin.env or config.json.
"""deploy/make-secrets.sh and deploy/entrypoint.sh run natively, the compose volumes being
temp dirs; the compose healthchecks run against the real mosquitto and redis-server with the
files init made. Command lines are watched with strace (skipped where ptrace is not allowed)."""

import json
import os
import shutil
import stat
import subprocess

import yaml

import twinharness as th
from twinharness import TwinTestCase
from test_deploy import (COMPOSE, ENTRYPOINT, MAKE_SECRETS, OUR_SERVICES, DeployStack,
                         make_secrets, secret)

RUN_SH = th.REPO_DIR / "scripts" / "run.sh"
INJECT = "mqtt://h'; echo INJECTED; : '"


def all_passwords(secrets):
    return {p.read_text().splitlines()[0] for p in secrets.rglob("*.password")}


def assert_one_line_error(tc, res, *words):
    tc.assertEqual(res.returncode, 2, res.stderr)
    tc.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
    for w in words:
        tc.assertIn(str(w), res.stderr)


class InitVolumes:
    """deploy/entrypoint.sh with the image's layout in a temp dir: TWIN_HOME with deploy/ and a
    small dashboard, and one dir per volume init fills."""

    def __init__(self, h):
        self.h = h
        home = h.dir / "home"
        (home / "dashboard" / "js").mkdir(parents=True)
        (home / "deploy").symlink_to(th.DEPLOY_DIR)
        (home / "dashboard" / "index.html").write_text("<title>dash</title>\n")
        self.vols = {k: h.dir / k for k in ("secrets", "broker", "redis", "www", "services")}
        for v in self.vols.values():
            v.mkdir()
        self.env = {"TWIN_HOME": home, "TWIN_SECRETS_DIR": self.vols["secrets"],
                    "TWIN_BROKER_AUTH_DIR": self.vols["broker"],
                    "TWIN_REDIS_AUTH_DIR": self.vols["redis"], "TWIN_WWW_DIR": self.vols["www"],
                    "TWIN_SERVICE_SECRETS_DIR": self.vols["services"]}

    def argv(self, *args):
        return ["bash", str(ENTRYPOINT), *[str(a) for a in args]]

    def run(self, *args, extra=None):
        e = dict(self.env)
        e.update(extra or {})
        return subprocess.run(self.argv(*args), env=th.clean_env(e), capture_output=True,
                              text=True, timeout=60, check=False)

    def config_json(self):
        return json.loads((self.vols["www"] / "config.json").read_text())


class Tracer:
    """Runs a command under `strace -f -e trace=execve`: every program's argv, no environment."""

    def __init__(self, tc):
        if not shutil.which("strace"):
            tc.skipTest("strace is not installed")
        probe = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True,
                               timeout=30, check=False)
        if probe.returncode != 0:
            tc.skipTest(f"strace cannot trace here: {probe.stderr.decode(errors='replace')}")
        self.log = tc.h.dir / "strace.log"
        self.text = ""

    def run(self, argv, env):
        res = subprocess.run(["strace", "-f", "-qq", "-s", "65535", "-e", "trace=execve",
                              "-o", str(self.log), *argv], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
        self.text += self.log.read_text()
        return res


# ---- make-secrets.sh ---------------------------------------------------------------------


class SecretsTest(TwinTestCase):

    def test_make_secrets_is_idempotent_private_and_hashes_what_servers_load(self):
        d = self.h.dir / "s"
        res = make_secrets(d, "--mqtt-url", "mqtt://10.0.0.1:1884", "--redis-url",
                           "redis://10.0.0.2:6380/1")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(stat.S_IMODE(d.stat().st_mode), 0o700)
        files = [p for p in d.rglob("*") if p.is_file()]
        self.assertGreaterEqual(len(files), 16)
        for p in files:
            self.assertEqual(stat.S_IMODE(p.stat().st_mode), 0o600, p)
            self.assertFalse(p.name.endswith((".tmp", ".plain")), p)  # no plain-text leftovers
        before = {p: p.read_bytes() for p in files if p.suffix == ".password"}
        env = (d / "twin.env").read_text()
        op = secret(d, "redis", "operator")
        self.assertIn("export TWIN_MQTT_URL='mqtt://10.0.0.1:1884'", env)
        self.assertIn("export TWIN_MQTT_USER='operator'", env)
        self.assertIn(f"export TWIN_MQTT_PASSWORD='{secret(d, 'mqtt', 'operator')}'", env)
        self.assertIn(f"export TWIN_REDIS_URL='redis://operator:{op}@10.0.0.2:6380/1'", env)
        self.assertIn(f"export REDISCLI_AUTH='{op}'", env)
        self.assertEqual((d / "mosquitto-clients" / "mosquitto_sub").read_text(),
                         f"-u operator\n-P {secret(d, 'mqtt', 'operator')}\n-I operator-\n")
        acl = (d / "redis-users.acl").read_text()
        self.assertNotIn("#", acl.replace(" #", ""))  # no comment lines left
        for line in acl.splitlines():
            user = line.split()[1]
            if user == "default":
                # off (no one logs in as it), with the rights the AOF replay needs
                self.assertEqual(line, "user default reset off ~* &* +@all")
            else:
                self.assertRegex(line, r" #[0-9a-f]{64}$")
                self.assertNotIn(secret(d, "redis", user), acl)
        passwd = (d / "mosquitto.passwd").read_text()
        self.assertEqual(sorted(ln.split(":")[0] for ln in passwd.splitlines()),
                         sorted(["dashboard", "healthcheck", "operator", "twin-advisor",
                                 "twin-devsim", "twin-ingest", "twin-predictor",
                                 "twin-scenario"]))
        for ln in passwd.splitlines():  # every password hashed (PBKDF2-SHA512)
            self.assertRegex(ln, r"^[^:]+:\$7\$")
        # Again, with a device: passwords kept, twin.env unchanged, the device added.
        res = make_secrets(d, "--mqtt-url", "mqtt://10.0.0.1:1884", "--redis-url",
                           "redis://10.0.0.2:6380/1", "--device", "press-9")
        self.assertEqual(res.returncode, 0, res.stderr)
        for p, data in before.items():
            self.assertEqual(p.read_bytes(), data, p)
        self.assertEqual((d / "twin.env").read_text(), env)
        self.assertIn("press-9:", (d / "mosquitto.passwd").read_text())
        res = make_secrets(d)  # the device stays without being named again
        self.assertIn("press-9:", (d / "mosquitto.passwd").read_text())

    def test_make_secrets_refuses_bad_arguments_with_one_line(self):
        d = self.h.dir / "s"
        cases = [
            (["--device", "bad/name"], "an asset id"),
            (["--device", "twin-ingest"], "a service's user"),
            (["--device", "twin-ingest-c1-w0"], "client ids twin-ingest-* belong to another user"),
            (["--device", "operator-1"], "client ids operator-* belong to another user"),
            (["--redis-url", "redis://u:p@h:1"], "must not carry a user"),
            (["--mqtt-url", "mqtt://u:p@h:1"], "must not carry a user"),
            (["--redis-url", "http://h:1"], "redis://"),
            (["--redis-url", "rediss://h:1"], "not supported"),
            (["--redis-url", "redis://h:1/x"], "redis://HOST"),
            (["--mqtt-url", "http://h:1"], "mqtt://HOST"),
            (["--mqtt-url", "mqtt://h:0"], "port 0"),
            (["--mqtt-url", "mqtt://h:65536"], "port 65536"),
            (["--mqtt-url", "mqtt://h/path"], "mqtt://HOST"),
            (["--mqtt-url", "mqtt://h\nx"], "mqtt://HOST"),
            (["--bogus"], "unknown option"),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                assert_one_line_error(self, make_secrets(d, *args), words)
        self.assertFalse(d.exists())  # refused before anything was written
        res = subprocess.run(["bash", str(MAKE_SECRETS)], capture_output=True, text=True,
                             timeout=30, check=False)
        assert_one_line_error(self, res, "usage")

    def test_bad_password_files_exit_2_with_one_line_and_change_nothing(self):
        d = self.h.dir / "s"
        self.assertEqual(make_secrets(d).returncode, 0)
        derived = {n: (d / n).read_bytes() for n in ("mosquitto.passwd", "redis-users.acl",
                                                     "twin.env")}
        bad = [("redis/operator.password", "has space and 'quote'\n"),
               ("mqtt/twin-ingest.password", ""), ("mqtt/dashboard.password", "short\n"),
               ("redis/twin-admin.password", b"\xff\xfe" * 8 + b"\n"),
               ("mqtt/twin-scenario.password", "$(id)xxxxxxxxxxxx\n"),
               ("mqtt/healthcheck.password", None),  # a directory
               ("mqtt/bad name.password", "goodpassword123\n")]
        for rel, content in bad:
            with self.subTest(file=rel):
                p = d / rel
                old = p.read_bytes() if p.is_file() else None
                if content is None:
                    p.unlink()
                    p.mkdir()
                else:
                    p.write_bytes(content if isinstance(content, bytes) else content.encode())
                try:
                    res = make_secrets(d)
                    assert_one_line_error(self, res, rel.split("/")[1])
                    for n, data in derived.items():
                        self.assertEqual((d / n).read_bytes(), data, n)
                finally:
                    if content is None:
                        p.rmdir()
                    else:
                        p.unlink()
                    if old is not None:
                        p.write_bytes(old)
        self.assertEqual(sorted(p.name for p in d.iterdir()),
                         ["mosquitto-clients", "mosquitto.passwd", "mqtt", "redis",
                          "redis-users.acl", "twin.env"])
        self.assertEqual(make_secrets(d).returncode, 0)

    def test_urls_are_checked_and_twin_env_sources_back_exactly(self):
        d = self.h.dir / "s"
        assert_one_line_error(self, make_secrets(d, "--mqtt-url", INJECT), "--mqtt-url")
        assert_one_line_error(self, make_secrets(d, "--redis-url", "redis://h'$(id)"),
                              "--redis-url")
        self.assertFalse(d.exists())
        urls = {"TWIN_MQTT_URL": "mqtts://[fd00::1]:8883", "TWIN_REDIS_URL": "redis://r_1.b-c:6380/2"}
        res = make_secrets(d, "--mqtt-url", urls["TWIN_MQTT_URL"], "--redis-url",
                           urls["TWIN_REDIS_URL"])
        self.assertEqual(res.returncode, 0, res.stderr)
        op = secret(d, "redis", "operator")
        for shell in ("bash", "sh"):
            out = subprocess.run([shell, "-c", '. ./twin.env && printf "%s\\n" "$TWIN_MQTT_URL" '
                                  '"$TWIN_REDIS_URL" "$REDISCLI_AUTH"'], cwd=d,
                                 env=th.clean_env(), capture_output=True, text=True, timeout=30,
                                 check=False)
            self.assertEqual(out.stdout.splitlines(),
                             [urls["TWIN_MQTT_URL"], f"redis://operator:{op}@r_1.b-c:6380/2", op],
                             out.stderr)


# ---- the entrypoint: init and the services' password files -------------------------------


class EntrypointTest(TwinTestCase):

    def test_init_gives_each_service_only_its_own_passwords(self):
        iv = InitVolumes(self.h)
        vols = iv.vols
        (vols["www"] / "stale.txt").write_text("from an older image\n")
        (vols["broker"] / "healthcheck.password").write_text("an older init's\n")
        res = iv.run("init")
        self.assertEqual(res.returncode, 0, res.stderr)
        sec = vols["secrets"]
        self.assertEqual(sorted(p.name for p in vols["broker"].iterdir()),
                         ["mosquitto.passwd", "mosquitto_sub"])
        self.assertEqual((vols["broker"] / "mosquitto_sub").read_text(),
                         f"-u healthcheck\n-P {secret(sec, 'mqtt', 'healthcheck')}\n-I healthcheck-\n")
        self.assertEqual(sorted(p.name for p in vols["redis"].iterdir()),
                         ["healthcheck.password", "users.acl"])
        self.assertEqual(sorted(p.name for p in vols["www"].iterdir()),
                         ["config.json", "index.html", "js", "plant.json"])
        self.assertEqual((vols["www"] / "plant.json").read_bytes(),
                         (th.DEPLOY_DIR / "plant.json").read_bytes())
        self.assertEqual(iv.config_json(), {"username": "dashboard", "topicRoot": "twin/v1",
                                            "password": secret(sec, "mqtt", "dashboard")})
        self.assertEqual(stat.S_IMODE((vols["www"] / "config.json").stat().st_mode), 0o644)
        self.assertIn("mqtt://broker:1883", (sec / "twin.env").read_text())
        self.check_service_dirs(vols)
        # A device added through init: a broker user; no service's directory changes.
        res = iv.run("init", "--device", "press-7")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("press-7:", (vols["broker"] / "mosquitto.passwd").read_text())
        self.assertTrue((sec / "mqtt" / "press-7.password").is_file())
        self.check_service_dirs(vols)
        for args in (["--bogus"], ["--device"], ["press-7"]):
            assert_one_line_error(self, iv.run("init", *args), "usage")
        assert_one_line_error(self, iv.run("init", "--device", "a/b"), "asset id")

    def check_service_dirs(self, vols):
        """Each service: its MQTT password, and its Redis one unless it is devsim; 0700/0600."""
        for name in OUR_SERVICES:
            d = vols["services"] / name
            want = {f"mqtt/twin-{name}.password"}
            if name != "devsim":
                want.add(f"redis/twin-{name}.password")
            got = {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()}
            self.assertEqual(got, want, name)
            self.assertEqual(stat.S_IMODE(d.stat().st_mode), 0o700, name)
            for rel in want:
                self.assertEqual((d / rel).read_bytes(), (vols["secrets"] / rel).read_bytes())
                self.assertEqual(stat.S_IMODE((d / rel).stat().st_mode), 0o600, rel)

    def test_topic_root_is_checked_and_cannot_change_config_json(self):
        iv = InitVolumes(self.h)
        for root in ('x","username":"operator', 'a\\b"c/d', "fab/line 1/ü"):
            with self.subTest(root=root):
                res = iv.run("init", extra={"TWIN_TOPIC_ROOT": root})
                self.assertEqual(res.returncode, 0, res.stderr)
                cfg = iv.config_json()
                self.assertEqual(cfg, {"username": "dashboard", "topicRoot": root,
                                       "password": secret(iv.vols["secrets"], "mqtt",
                                                          "dashboard")})
        before = (iv.vols["www"] / "config.json").read_bytes()
        for root, words in [("a/#", "wildcards"), ("a/+/b", "wildcards"), ("$SYS/x", "$"),
                            ("/a", "start or end"), ("a/", "start or end"),
                            ("a\nb", "control"), ("a\tb", "control"), ("x" * 129, "longer"),
                            (os.fsdecode(b"a\xffb"), "UTF-8")]:
            with self.subTest(root=root):
                res = iv.run("init", extra={"TWIN_TOPIC_ROOT": root})
                assert_one_line_error(self, res, "TWIN_TOPIC_ROOT", words)
        self.assertEqual((iv.vols["www"] / "config.json").read_bytes(), before)

    def test_services_get_their_passwords_from_files(self):
        iv = InitVolumes(self.h)
        self.assertEqual(iv.run("init").returncode, 0)
        own = iv.vols["services"] / "ingest"
        res = iv.run("sh", "-c", 'echo "$TWIN_MQTT_PASSWORD|$TWIN_REDIS_URL|${TWIN_REDIS_USER:-}"',
                     extra={"TWIN_MQTT_PASSWORD_FILE": own / "mqtt" / "twin-ingest.password",
                            "TWIN_REDIS_USER": "twin-ingest", "TWIN_REDIS_URL": "redis://redis:6379",
                            "TWIN_REDIS_PASSWORD_FILE": own / "redis" / "twin-ingest.password"})
        self.assertEqual(res.returncode, 0, res.stderr)
        sec = iv.vols["secrets"]
        self.assertEqual(res.stdout.strip(),
                         f"{secret(sec, 'mqtt', 'twin-ingest')}|redis://twin-ingest:"
                         f"{secret(sec, 'redis', 'twin-ingest')}@redis:6379|")
        bad = self.h.dir / "bad.password"
        bad.write_text("two words\n")
        for extra, words in [({"TWIN_MQTT_PASSWORD_FILE": self.h.dir / "nope"}, "cannot read"),
                             ({"TWIN_MQTT_PASSWORD_FILE": bad}, "one line of"),
                             ({"TWIN_REDIS_PASSWORD_FILE": bad}, "one line of"),
                             ({"TWIN_REDIS_PASSWORD_FILE": own / "redis" / "twin-ingest.password",
                               "TWIN_REDIS_URL": "redis://a:b@x:1"}, "already holds")]:
            assert_one_line_error(self, iv.run("true", extra=extra), words)
        self.assertEqual(iv.run().returncode, 2)


# ---- no password on a command line -------------------------------------------------------


class ArgvTest(TwinTestCase):

    def test_no_password_is_ever_a_program_argument(self):
        tracer = Tracer(self)
        iv = InitVolumes(self.h)
        res = tracer.run(iv.argv("init", "--device", "press-1"), th.clean_env(iv.env))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("mosquitto_passwd", tracer.text)  # the trace saw the programs
        self.check_run_sh_start(tracer, iv.vols["secrets"])
        for pw in all_passwords(iv.vols["secrets"]):
            self.assertNotIn(pw, tracer.text)

    def check_run_sh_start(self, tracer, secrets):
        """scripts/run.sh's own start() and secret(), with stand-ins for the programs."""
        funcs = subprocess.run(["sed", "-n", "-e", "/^secret() /p", "-e", "/^start() {/,/^}/p",
                                str(RUN_SH)], capture_output=True, text=True, timeout=10,
                               check=True).stdout
        self.assertIn("start() {", funcs)
        bin_dir, out = self.h.dir / "bin", self.h.dir / "out"
        bin_dir.mkdir()
        out.mkdir()
        for name in ("ingest", "devsim"):
            prog = bin_dir / f"twin-{name}"
            prog.write_text('#!/bin/sh\nprintf "%s|%s|%s" "$TWIN_MQTT_USER" "$TWIN_MQTT_PASSWORD" '
                            '"${TWIN_REDIS_URL:-}" >"$OUT/$TWIN_MQTT_USER"\n')
            prog.chmod(0o755)
        script = (f"set -euo pipefail\nSECRETS={secrets}\nBIN={bin_dir}\nREDIS_PORT=6390\n"
                  f"pids=()\n{funcs}\nstart ingest 9101 twin-ingest\nstart devsim 9104\n"
                  'wait "${pids[@]}"\n')
        res = tracer.run(["bash", "-c", script], th.clean_env({"OUT": out}))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual((out / "twin-ingest").read_text(),
                         f"twin-ingest|{secret(secrets, 'mqtt', 'twin-ingest')}|redis://twin-ingest:"
                         f"{secret(secrets, 'redis', 'twin-ingest')}@127.0.0.1:6390")
        self.assertEqual((out / "twin-devsim").read_text(),
                         f"twin-devsim|{secret(secrets, 'mqtt', 'twin-devsim')}|")


# ---- the compose healthchecks on the real servers ----------------------------------------


class HealthcheckTest(TwinTestCase):

    def test_compose_healthchecks_log_in_with_the_files_init_made(self):
        iv = InitVolumes(self.h)
        self.assertEqual(iv.run("init").returncode, 0)
        vols = iv.vols
        s = DeployStack(self.h, secrets=vols["secrets"], broker_auth=vols["broker"],
                        redis_acl=vols["redis"] / "users.acl")
        self.addCleanup(s.close)
        res = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], cwd=th.REPO_DIR,
                             capture_output=True, text=True, timeout=60, check=True)
        services = yaml.safe_load(res.stdout)["services"]

        def check(name, auth_dir, port_from, port_to):
            test = services[name]["healthcheck"]["test"]
            self.assertEqual(test[0], "CMD-SHELL")
            cmd = test[1].replace("$$", "$").replace("/twin/auth", str(auth_dir))
            self.assertIn(port_from, cmd)
            cmd = cmd.replace(port_from, port_to)
            return subprocess.run(["sh", "-c", cmd], env=th.clean_env(), capture_output=True,
                                  text=True, timeout=30, check=False)
        broker = ("broker", "-p 1883", f"-p {s.broker.port}")
        redis = ("redis", "redis-cli ", f"redis-cli -p {s.redis.port} ")
        self.assertEqual(check(broker[0], vols["broker"], *broker[1:]).returncode, 0)
        self.assertEqual(check(redis[0], vols["redis"], *redis[1:]).returncode, 0)
        # With a wrong password in the same files, both fail: the files are what logs them in.
        wrong = self.h.dir / "wrong"
        shutil.copytree(vols["broker"], wrong / "broker")
        shutil.copytree(vols["redis"], wrong / "redis")
        (wrong / "broker" / "mosquitto_sub").write_text(
            "-u healthcheck\n-P wrong-password-1\n-I healthcheck-\n")
        (wrong / "redis" / "healthcheck.password").write_text("wrong-password-1\n")
        self.assertNotEqual(check(broker[0], wrong / "broker", *broker[1:]).returncode, 0)
        self.assertNotEqual(check(redis[0], wrong / "redis", *redis[1:]).returncode, 0)


if __name__ == "__main__":
    th.main()
