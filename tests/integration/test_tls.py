# SPDX-License-Identifier: Apache-2.0
# MQTT over TLS: services, twinctl and twin-devsim work over mqtts:// with a CA file, refuse an untrusted or misnamed broker, and never show the broker password.
"""mqtts:// against a real mosquitto with TLS listeners (tests/harness/tlskit.py): a throwaway
CA and server certificates made by openssl in the test's temp dir, a second unrelated CA, and
a certificate for another host name ("other.example") signed by the right CA. The broker also
has its plain listener (and a password file), so telemetry arrives both ways and the checks
watch the topics without TLS."""

import os
import subprocess
import unittest

import twinharness as th
import tlskit
from twinharness import TwinTestCase

ROOT = "twin/v1"
USER = "svc"
# Long enough for the refused services to have retried at least twice (backoff 100 ms, 200 ms, …).
REFUSED_WAIT_S = 20


def state_key(asset):
    return f"twin:{{{asset}}}:state"


def telemetry_topic(asset):
    return f"{ROOT}/asset/{asset}/telemetry"


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


class TlsTestCase(TwinTestCase):

    def pki(self):
        """CA "ca" (trusted), CA "rogue" (unrelated), certificates for 127.0.0.1/localhost and
        for other.example, both signed by "ca"."""
        kit = tlskit.TlsKit(self.h.dir / "pki")
        self.ca = kit.ca("ca")
        self.rogue = kit.ca("rogue")
        self.good = kit.server_cert(self.ca, "broker")
        self.other = kit.server_cert(self.ca, "other", names=["DNS:other.example"])
        self.password = f"pw-{os.urandom(12).hex()}"
        self.passwd = tlskit.password_file(self.h.dir / "pki", {USER: self.password})

    def broker(self):
        """The open plain listener (anonymous allowed, but a user with a password must give
        the right one), a TLS listener with the good certificate and one with the
        other.example certificate (tls_version tlsv1.2 is Mosquitto's minimum: both
        negotiate TLS 1.3 with today's clients; tlskit.Tls12Terminator stands in for a TLS
        1.2-only broker)."""
        return tlskit.tls_mosquitto(self.h, {"main": self.good, "other": self.other},
                                    extra_conf=f"password_file {self.passwd}\n")

    def terminator(self, cert, broker):
        t = tlskit.Tls12Terminator(cert, broker.port)
        self.addCleanup(t.close)
        return t

    def tls_env(self, broker, label="main", ca=None, host=th.LOOPBACK, password=None,
                port=None):
        url = f"mqtts://{host}:{port}" if port else broker.tls_url(label, host)
        env = {"TWIN_MQTT_URL": url, "TWIN_MQTT_USER": USER,
               "TWIN_MQTT_PASSWORD": password or self.password}
        if ca is not None:
            env["TWIN_MQTT_CA_FILE"] = ca.cert
        return env

    def assert_password_hidden(self, *texts):
        for t in texts:
            self.assertNotIn(self.password, text(t))


class MqttsWorksTest(TlsTestCase):

    def test_ingest_twinctl_and_devsim_over_mqtts_with_a_ca_file(self):
        self.pki()
        redis = self.h.redis()
        broker = self.broker()
        watch = self.h.mqtt(broker, client_id="tls-watch")
        watch.subscribe(f"{ROOT}/asset/+/state")
        env = self.tls_env(broker, ca=self.ca)
        env["TWIN_INGEST_WORKERS"] = 2
        ingest = self.h.service("twin-ingest", broker=broker, redis=redis, env=env)
        log = ingest.log_text()
        self.assertRegex(log, rf"event=mqtt_connected .*broker=ssl://127\.0\.0\.1:"
                              rf"{broker.tls_port('main')}")
        self.assertIn("mqtt_password=***", log)  # the config line masks it
        r = redis.client()

        # (a) Telemetry over TLS (Python's ssl verifying the same CA) and over the plain port.
        self.assertEqual(tlskit.tls_version(broker.tls_port("main"), self.ca.cert), "TLSv1.3")
        dev = tlskit.TlsClient(broker.tls_port("main"), self.ca.cert)
        self.addCleanup(dev.close)
        self.assertEqual(dev.connect_result(), 0)
        dev.publish(telemetry_topic("tls-1"), th.telemetry({"temp": 41.5}, "tls-1", seq=1))
        self.h.mqtt(broker).publish(telemetry_topic("plain-1"),
                                    th.telemetry({"temp": 7.0}, "plain-1", seq=1))
        for asset, value in (("tls-1", "41.5"), ("plain-1", "7")):
            th.wait_until(lambda a=asset: r.hget(state_key(a), "temp"), 15,
                          what=f"state of {asset}")
            self.assertEqual(float(r.hget(state_key(asset), "temp")), float(value))
            th.wait_until(lambda a=asset: watch.messages(f"{ROOT}/asset/{a}/state"), 10,
                          what=f"TwinState of {asset}")

        # (d) twinctl publish with the CA file, to a TLS 1.2-only server; then twinctl state.
        tls12 = self.terminator(self.good, broker)
        ctl = self.tls_env(broker, ca=self.ca, port=tls12.port)
        res = self.h.run("twinctl", ["publish", "ctl-1", "temp=12.25", "--seq", "3"], env=ctl)
        self.assertEqual(res.returncode, 0, text(res.stderr))
        self.assertEqual(tls12.handshakes, 1)  # it did go through the TLS 1.2-only server
        th.wait_until(lambda: r.hget(state_key("ctl-1"), "_seq") == "3", 15,
                      what="ctl-1 applied")
        res_state = self.h.run("twinctl", ["state", "ctl-1"],
                               env={**ctl, "TWIN_REDIS_URL": redis.url})
        self.assertEqual(res_state.returncode, 0, text(res_state.stderr))
        self.assertIn("12.25", text(res_state.stdout))

        # (d) twin-devsim load mode over TLS, to the end, every message acknowledged.
        # By name this time: the certificate's DNS:localhost.
        sim_env = {**self.tls_env(broker, ca=self.ca, host="localhost"),
                   "TWIN_INSTANCE": "tls-sim"}
        res_sim = self.h.run("twin-devsim", ["--mode", "load", "--count", "50", "--assets", "5",
                                             "--rate", "500", "--json"], env=sim_env, timeout=60)
        self.assertEqual(res_sim.returncode, 0, text(res_sim.stderr))
        self.assertRegex(text(res_sim.stdout), r'"sent":\s*50\b')
        self.assertRegex(text(res_sim.stdout), r'"acked":\s*50\b')
        assets = [f"load-{i:06d}" for i in range(1, 6)]
        th.wait_until(lambda: all(r.exists(state_key(a)) for a in assets), 15,
                      what="state of the 5 load assets")
        th.wait_until(lambda: th.metric_sum(ingest.metrics(), "twin_ingest_applied_total")
                      + th.metric_sum(ingest.metrics(), "twin_ingest_late_total") == 53, 15,
                      what="53 applied (1 + 1 + 1 + 50)")

        # The other services over TLS too, with the same user and password.
        others = [self.h.service(binary, broker=broker, redis=redis,
                                 env={**env, "TWIN_SCENARIO_THREADS": 1,
                                      "TWIN_MODEL": th.DEPLOY_DIR / "plant.json"})
                  for binary in ("twin-predictor", "twin-scenario")]

        # 3. The password: never on a command line, never in a log or an output.
        pids = [ingest.pid, *ingest.children(), *(o.pid for o in others)]
        self.assertGreaterEqual(len(pids), 5, "ingest, its 2 workers, predictor, scenario")
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                self.assertNotIn(self.password.encode(), f.read())
        for svc in (ingest, *others):
            self.assertIn("mqtt_password=***", svc.log_text(), svc.name)
            self.assertRegex(svc.log_text(), r"event=mqtt_connected .*broker=ssl://", svc.name)
        self.assertIn("mqtt_password=***", text(res_sim.stderr))
        self.assert_password_hidden(ingest.log_text(), res.stdout, res.stderr, res_state.stdout,
                                    res_state.stderr, res_sim.stdout, res_sim.stderr,
                                    *(o.log_text() for o in others))
        # As a flag it is refused (it would show in ps), without echoing the value.
        for prog in ("twin-ingest", "twin-devsim"):
            for flag in ([f"--mqtt-password={self.password}"], ["--mqtt-password", self.password]):
                bad = self.h.run(prog, [*flag, "--check-config"])
                self.assertEqual(bad.returncode, 2, (prog, text(bad.stderr)))
                self.assertIn("set TWIN_MQTT_PASSWORD instead", text(bad.stderr), prog)
                self.assert_password_hidden(bad.stdout, bad.stderr)
        bad = self.h.run("twinctl", ["assets", "--mqtt-password", self.password])
        self.assertEqual(bad.returncode, 2, text(bad.stderr))
        self.assert_password_hidden(bad.stdout, bad.stderr)

    def test_twinctl_does_not_echo_a_password_flag(self):
        """`twinctl assets --mqtt-password=VALUE` is refused without repeating VALUE (it used
        to answer 'unexpected "--mqtt-password=VALUE"')."""
        secret = f"pw-{os.urandom(8).hex()}"
        for argv in (["assets", f"--mqtt-password={secret}"], [f"--mqtt-password={secret}"]):
            bad = self.h.run("twinctl", argv)
            self.assertEqual(bad.returncode, 2, text(bad.stderr))
            self.assertNotIn(secret, text(bad.stderr) + text(bad.stdout))


class MqttsRefusesTest(TlsTestCase):

    def test_untrusted_misnamed_or_unverified_brokers_are_refused(self):
        self.pki()
        redis = self.h.redis()
        broker = self.broker()
        # The certificates are what the cases say, seen by Python's ssl (not by our code):
        good, other = broker.tls_port("main"), broker.tls_port("other")
        other12 = self.terminator(self.other, broker)
        self.assertIsNone(tlskit.handshake(good, self.ca.cert, "127.0.0.1"))
        self.assertIsNone(tlskit.handshake(other, self.ca.cert, "other.example"))
        self.assertIn("certificate verify failed", tlskit.handshake(good, self.rogue.cert,
                                                                    "127.0.0.1"))
        self.assertIn("mismatch", tlskit.handshake(other, self.ca.cert, "127.0.0.1"))

        # twinctl with the rogue CA: started now, it gives up after its 10 s connect timeout.
        ctl_env = th.clean_env(self.tls_env(broker, ca=self.rogue))
        ctl = subprocess.Popen([str(th.BIN_DIR / "twinctl"), "publish", "ctl-x", "t=1"],
                               env=ctl_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
        self.addCleanup(lambda: ctl.poll() is None and ctl.kill())
        cases = {
            "rogue-ca": self.tls_env(broker, ca=self.rogue),           # (b) another CA
            "system-cas": self.tls_env(broker),                        # no CA file: system's
            "other-host": self.tls_env(broker, "other", ca=self.ca),   # (c) wrong name, by IP
            "other-name": self.tls_env(broker, "other", ca=self.ca, host="localhost"),
            "other-tls12": self.tls_env(broker, ca=self.ca, port=other12.port),
            "bad-password": self.tls_env(broker, ca=self.ca, password="wrong-" + self.password),
        }
        svcs = {}
        for name, env in cases.items():
            svcs[name] = self.h.service("twin-ingest", broker=broker, redis=redis, ready=False,
                                        env={**env, "TWIN_INGEST_WORKERS": 1},
                                        name=f"ingest-{name}")
        self.h.mqtt(broker).publish(telemetry_topic("plain-1"),
                                    th.telemetry({"temp": 1.0}, "plain-1", seq=1))

        def retried(svc):
            svc._alive()  # pylint: disable=protected-access
            log = svc.log_text()
            if "event=mqtt_connected" in log:
                raise AssertionError(f"{svc.name} connected to a broker it must refuse")
            return log.count("event=mqtt_connect_failed") >= 2
        for name, svc in svcs.items():
            th.wait_until(lambda s=svc: retried(s), REFUSED_WAIT_S,
                          what=f"ingest ({name}) to retry its connect twice")
        for name, svc in svcs.items():
            log = svc.log_text()
            self.assertNotIn("event=mqtt_connected", log, name)
            self.assertTrue(svc.running, name)
            status, body = svc.healthz()
            self.assertEqual((status, "mqtt disconnected" in body), (503, True), (name, body))
            self.assertEqual(svc.metric("twin_ingest_received_total"), 0, name)
            self.assertNotIn(self.password, log, name)
        for name in ("rogue-ca", "system-cas"):  # why: OpenSSL's reason, logged
            self.assertRegex(svcs[name].log_text(),
                             r"event=mqtt_tls_error .*certificate verify failed", name)
        for name in ("other-host", "other-name", "other-tls12"):  # refused for the name alone
            self.assertNotIn("certificate verify failed", svcs[name].log_text(), name)
        # Under TLS 1.2 the server's handshake completes only after the client accepted the
        # chain: the host name check (Paho's, after the handshake) is what refused it.
        self.assertGreaterEqual(other12.handshakes, 2)
        # CONNACK not authorized (0x87 = 135) or bad user name or password (0x86 = 134):
        # the TLS handshake went through, the broker refused the password.
        self.assertRegex(svcs["bad-password"].log_text(),
                         r"event=mqtt_connect_failed .* code=13[45] ")
        self.assertNotIn("wrong-" + self.password, svcs["bad-password"].log_text())
        self.assertEqual(redis.client().keys("twin:*"), [])

        out, err = ctl.communicate(timeout=30)
        self.assertEqual(ctl.returncode, 1, text(err))
        self.assertIn("certificate verify failed", text(err))
        self.assertIn("cannot reach the broker", text(err))
        self.assertEqual(text(out), "")
        self.assert_password_hidden(out, err)


if __name__ == "__main__":
    th.main()
