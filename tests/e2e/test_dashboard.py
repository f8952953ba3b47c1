# SPDX-License-Identifier: Apache-2.0
# End-to-end test of the web dashboard: the real stack behind mosquitto's websockets listener, plant-like telemetry, and headless Chromium checking what the page shows.
"""The dashboard (services/dashboard/public) served by mosquitto's http_dir on its
websockets listener, with redis, twin-ingest, twin-predictor and twin-scenario on the demo
plant (deploy/plant.json). A thread publishes steady noisy telemetry of three assets at 5 Hz
(device time = wall time); once the page shows live values, one signal goes above its alarm
limit for a few seconds and an undecodable message arrives. tests/e2e/dashboard_check.mjs
(playwright-core driving /usr/bin/chromium) checks the page and saves screenshots to
$TWIN_ARTIFACT_DIR (default <build dir>/artifacts/dashboard.png, dashboard-narrow.png)."""

import json
import math
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import twinharness as th

DASH_DIR = th.REPO_DIR / "services" / "dashboard"
PUBLIC_DIR = DASH_DIR / "public"
NODE_MODULES = DASH_DIR / "node_modules"
CHECK_SCRIPT = Path(__file__).resolve().parent / "dashboard_check.mjs"
PLANT = th.DEPLOY_DIR / "plant.json"
ROOT = "twin/v1"
CHROMIUM = os.environ.get("TWIN_CHROMIUM", "/usr/bin/chromium")
VENDORED = ("mqtt.min.js", "protobuf.min.js", "uPlot.iife.min.js", "uPlot.min.css", "twin.proto")
RATE_HZ = 5.0
BROWSER_TIMEOUT_S = 200

# Steady operating points inside the demo plant's limits: (mean, noise sd, slow swing).
SIGNALS = {
    "press-1": {"oil_temp": (48.0, 0.3, 1.5), "pressure": (190.0, 2.0, 6.0),
                "vibration": (3.2, 0.08, 0.3), "motor_current": (150.0, 2.0, 5.0),
                "stroke_rate": (12.0, 0.15, 0.4)},
    "weld-1": {"weld_current": (10.5, 0.1, 0.3), "electrode_temp": (190.0, 2.0, 8.0),
               "cooling_flow": (8.0, 0.1, 0.3), "vibration": (2.0, 0.05, 0.2),
               "motor_current": (18.0, 0.3, 1.0)},
    "compressor-1": {"discharge_pressure": (7.2, 0.03, 0.15), "discharge_temp": (86.0, 0.5, 2.0),
                     "vibration": (2.4, 0.05, 0.2), "motor_current": (80.0, 1.0, 3.0),
                     "dew_point": (3.0, 0.1, 0.3)},
}
# Wire type 7 does not exist: no protobuf decoder accepts this.
BAD_PAYLOAD = b"\xff\xff\xff\xff\x0f"
BREACH_ASSET, BREACH_SIGNAL, BREACH_VALUE, BREACH_SAMPLES = "press-1", "oil_temp", 76.0, 15
BAD_MS = 9_000_000_000_000_000  # beyond a JS Date (8.64e15 ms): toISOString() throws
SHIFTS_CHECK = Path(__file__).resolve().parent / "shifts_check.mjs"


def send_bad_times(client, asset):
    """A TwinState and an Alert with times no JS Date holds, then an ordinary Alert whose
    message is "after-poison": the page must show it."""
    pb = th.load_proto()
    state = pb.TwinState(asset_id=asset, ts_ms=BAD_MS, ingest_ms=-(1 << 63), seq=1,
                         samples=[pb.Sample(signal="pressure", value=190.0)])
    client.publish(f"{ROOT}/asset/{asset}/state", state.SerializeToString(), qos=1)
    bad = pb.Alert(asset_id=asset, signal="pressure", kind=pb.Alert.THRESHOLD_FORECAST,
                   severity=pb.Alert.WARNING, ts_ms=BAD_MS, eta_ms=BAD_MS + 60_000,
                   threshold=250.0, message="poison-ts")
    client.publish(f"{ROOT}/asset/{asset}/alert", bad.SerializeToString(), qos=1)
    time.sleep(1.0)
    good = pb.Alert(asset_id=asset, signal="pressure", kind=pb.Alert.ANOMALY,
                    severity=pb.Alert.INFO, ts_ms=th.now_ms(), value=190.0,
                    message="after-poison")
    client.publish(f"{ROOT}/asset/{asset}/alert", good.SerializeToString(), qos=1)


def send_decisions(client):
    """A question to the real twin-advisor about weld-1, and an executed recommendation of
    press-1 with its Command, as twin-advisor publishes them: the Decisions panel shows both."""
    pb = th.load_proto()
    req = pb.RecommendationRequest(id="e2e-ask", asset_id="weld-1", requested_by="e2e")
    client.publish(f"{ROOT}/recommendation/request", req.SerializeToString(), qos=1)
    now = th.now_ms()
    act = pb.Action(kind="maintain", asset_id="press-1", duration_ms=15 * 60000,
                    label="maintain now for 15 min")
    rec = pb.Recommendation(
        id="rec-e2e-1", asset_id="press-1", status=pb.Recommendation.OK,
        trigger="threshold_forecast", signal="vibration", ts_ms=now, created_ms=now,
        action=act, objective="station.press.downtime", decision="executed",
        command_id="cmd-e2e-1", why="vibration of press-1 is forecast to reach 7.1 in 2 h.",
        options=[pb.ActionOption(action=act, rank=1,
                                 effect=pb.Estimate(mean=-1.5, lo=-2.25, hi=-0.75, n=20))])
    client.publish(f"{ROOT}/asset/press-1/recommendation", rec.SerializeToString(), qos=1,
                   retain=True)
    cmd = pb.Command(id="cmd-e2e-1", asset_id="press-1", action=act,
                     recommendation_id="rec-e2e-1", issued_ms=now, issued_by="twin-advisor/e2e")
    client.publish(f"{ROOT}/asset/press-1/command", cmd.SerializeToString(), qos=1)


class Plant(threading.Thread):
    """Publishes one Telemetry per asset every 1/RATE_HZ s until stopped; after
    breach.set(), BREACH_SIGNAL reads BREACH_VALUE (above its alarm limit of 70) for
    BREACH_SAMPLES samples, then returns to normal."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stop_flag = threading.Event()
        self.breach = threading.Event()
        self.sent = 0
        self.breach_left = BREACH_SAMPLES
        self.rng = random.Random(6)

    def sample(self, asset, signal, spec, t_s):
        mean, sd, swing = spec
        if asset == BREACH_ASSET and signal == BREACH_SIGNAL and self.breach.is_set() \
                and self.breach_left > 0:
            self.breach_left -= 1
            return BREACH_VALUE + self.rng.gauss(0, sd)
        return mean + swing * math.sin(2 * math.pi * t_s / 40.0) + self.rng.gauss(0, sd)

    def run(self):
        seq = 0
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            seq += 1
            ts = th.now_ms()
            for asset, signals in SIGNALS.items():
                values = {s: self.sample(asset, s, spec, ts / 1000) for s, spec in signals.items()}
                payload = th.telemetry(values, seq=seq, ts_ms=ts)
                self.client.publish(f"{ROOT}/asset/{asset}/telemetry", payload, qos=1)
                self.sent += 1
            next_t += 1.0 / RATE_HZ
            self.stop_flag.wait(max(0.0, next_t - time.monotonic()))


def artifact_path():
    base = os.environ.get("TWIN_ARTIFACT_DIR") or str(th.BUILD_DIR / "artifacts")
    Path(base).mkdir(parents=True, exist_ok=True)
    return Path(base) / "dashboard.png"


class DashboardTest(th.TwinTestCase):
    def require_tools(self):
        missing = []
        if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
            missing.append(f"{CHROMIUM} (apt-get install chromium)")
        if shutil.which("node") is None:
            missing.append("node (apt-get install nodejs)")
        if not (NODE_MODULES / "playwright-core" / "package.json").exists():
            missing.append(f"{NODE_MODULES}/playwright-core (run services/dashboard/vendor.sh)")
        for f in VENDORED:
            if not (PUBLIC_DIR / "vendor" / f).exists():
                missing.append(f"{PUBLIC_DIR}/vendor/{f} (run services/dashboard/vendor.sh)")
        if missing:
            self.fail("the browser test needs: " + "; ".join(missing))

    def site(self):
        """A copy of the static site with the config.json and plant.json run.sh writes."""
        www = self.h.dir / "www"
        shutil.copytree(PUBLIC_DIR, www)
        (www / "config.json").write_text(json.dumps(
            {"username": "dashboard", "password": "not-checked-here", "topicRoot": ROOT}))
        shutil.copy(PLANT, www / "plant.json")
        return www

    def stack(self, www):
        ws_port = th.free_port()
        broker = self.h.mosquitto(extra_conf=f"listener {ws_port} {th.LOOPBACK}\n"
                                             f"protocol websockets\nhttp_dir {www}\n")
        redis = self.h.redis()
        model = {"TWIN_MODEL": str(PLANT)}
        for binary, env in (("twin-ingest", {"TWIN_INGEST_WORKERS": 2}),
                            ("twin-predictor", {}),
                            ("twin-scenario", {"TWIN_SCENARIO_THREADS": 2}),
                            ("twin-advisor", {"TWIN_ADVISOR_THREADS": 2,
                                              "TWIN_ADVISOR_REPLICATIONS": 4})):
            self.h.service(binary, broker=broker, redis=redis, env={**model, **env},
                           ready=False)
        for svc in [p for p in self.h.processes if isinstance(p, th.ServiceProcess)]:
            svc.wait_ready(timeout=30)
        return broker, ws_port

    def run_browser(self, url, plant, shot):
        env = dict(os.environ, DASH_URL=url, DASH_ASSET="press-1", DASH_SIGNAL="pressure",
                   DASH_ALERT_ASSET=BREACH_ASSET, DASH_SCREENSHOT=str(shot), CHROMIUM=CHROMIUM,
                   DASH_NODE_MODULES=str(NODE_MODULES))
        proc = subprocess.Popen(["node", str(CHECK_SCRIPT)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
        lines = []

        def reader():
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                print(f"[browser] {line}", end="", flush=True)
                if line.strip() == "READY":
                    plant.breach.set()
                    plant.client.publish(f"{ROOT}/asset/bogus/prediction", BAD_PAYLOAD, qos=1)
                    send_decisions(plant.client)
                elif line.strip() == "POISON":
                    send_bad_times(plant.client, "press-1")
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            rc = proc.wait(timeout=BROWSER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
            rc = None
        t.join(timeout=5)
        return rc, lines

    def test_dashboard_shows_live_twin_forecasts_alerts_and_scenarios(self):
        self.require_tools()
        www = self.site()
        broker, ws_port = self.stack(www)
        plant = Plant(self.h.mqtt(broker, client_id="e2e-plant"))
        plant.start()
        self.addCleanup(plant.stop_flag.set)
        shot = artifact_path()
        if shot.exists():
            shot.unlink()
        rc, lines = self.run_browser(f"http://{th.LOOPBACK}:{ws_port}/", plant, shot)
        plant.stop_flag.set()
        plant.join(timeout=5)
        print(f"telemetry messages published: {plant.sent}; screenshot: {shot}", flush=True)
        failure = next((l for l in lines if l.startswith("FAIL:")), None)
        self.assertEqual(rc, 0, failure or f"dashboard_check.mjs exited with {rc} "
                                            f"(None: killed after {BROWSER_TIMEOUT_S} s)")
        self.assertTrue(plant.breach.is_set(), "the page never reported READY")
        self.assertTrue(shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n",
                        f"no PNG screenshot at {shot}")
        self.assertGreater(shot.stat().st_size, 20000, "the screenshot is suspiciously small")


class ShiftCalendarTest(th.TwinTestCase):
    """The scenario panel's next-shift hint reads the calendar as twin-scenario does
    (shifts.js, in Node: no browser needed)."""

    def test_shift_windows_wrapping_and_duration_form(self):
        if shutil.which("node") is None:
            self.fail("the shift calendar check needs node (apt-get install nodejs)")
        res = subprocess.run(["node", str(SHIFTS_CHECK)], capture_output=True, text=True,
                             timeout=60, check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertGreaterEqual(res.stdout.count("ok: "), 20, res.stdout)


if __name__ == "__main__":
    th.main()
