# SPDX-License-Identifier: Apache-2.0
# twin-ingest with a plant model (TWIN_MODEL): unknown assets rejected when the model says so, a bad model refused at start.
import json

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase

PLANT = {
    "version": 1,
    "plant": "test",
    "ingest": {"reject_unknown_assets": True},
    "asset_kinds": {"press": {"signals": {"temp": {"unit": "degC",
                                                   "alarm": {"above": 95}}}}},
    "assets": {"press-1": {"kind": "press"}},
}


class PlantModelTest(TwinTestCase):

    def write_model(self, doc, name="plant.json"):
        path = self.h.dir / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return str(path)

    def test_asset_missing_from_the_model_is_unknown_asset_when_the_model_says_so(self):
        s = ik.IngestStack(self.h, env={"TWIN_MODEL": self.write_model(PLANT)})
        pb = th.load_proto()
        s.send("press-1", {"temp": 20.0}, seq=1)
        self.assertEqual(s.state("press-1")["temp"], "20")
        mark = s.rejects.count(ik.REJECTED_TOPIC)
        payload = th.telemetry({"temp": 21.0}, seq=1)
        s.send_raw(ik.telemetry_topic("press-9"), payload)
        rej = pb.Rejected.FromString(
            s.rejects.wait_message(ik.REJECTED_TOPIC, start=mark, timeout=5).payload)
        self.assertEqual(rej.reason, "unknown_asset")
        self.assertIn("press-9", rej.detail)
        self.assertEqual(rej.payload_head, payload[:64])
        self.assertEqual(s.state("press-9"), {})
        self.assertFalse(s.r.sismember("twin:assets", "press-9"))
        self.assertEqual(s.ingest.metric(ik.rejected_series("unknown_asset")), 1)

    def test_unknown_assets_are_applied_when_the_model_allows_them(self):
        doc = dict(PLANT, ingest={"reject_unknown_assets": False})
        s = ik.IngestStack(self.h, env={"TWIN_MODEL": self.write_model(doc)})
        s.send("press-9", {"temp": 21.0}, seq=1)
        self.assertEqual(s.state("press-9")["temp"], "21")

    def test_bad_model_exits_2_naming_each_error_by_its_json_path(self):
        bad = dict(PLANT, version=2, assets={"press-1": {"kind": "lathe"}})
        path = self.write_model(bad, "bad.json")
        res = self.h.run("twin-ingest", ["--check-config"],
                         env={"TWIN_MODEL": path}, timeout=10)
        self.assertEqual(res.returncode, 2)
        err = res.stderr.decode() if isinstance(res.stderr, bytes) else res.stderr
        self.assertIn("$.version", err)
        self.assertIn("$.assets.press-1.kind", err)

    def test_shipped_demo_plant_is_a_valid_model(self):
        res = self.h.run("twin-ingest", ["--check-config"],
                         env={"TWIN_MODEL": str(th.DEPLOY_DIR / "plant.json")},
                         timeout=10)
        self.assertEqual(res.returncode, 0, res.stderr)


if __name__ == "__main__":
    th.main()
