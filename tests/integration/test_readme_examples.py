# SPDX-License-Identifier: Apache-2.0
# The device examples printed in README.md ("Connecting a real device"), extracted from the README and run as printed against a real broker and twin-ingest.
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import ingestkit as ik
import twinharness as th
from twinharness import TwinTestCase, wait_until

README = th.REPO_DIR / "README.md"
MARKER = re.compile(r"<!-- example: (\S+)[^>]*-->\s*\n```\w*\n(.*?)\n```", re.S)


def readme_examples():
    return {name: code + "\n" for name, code in MARKER.findall(README.read_text())}


class ReadmeDeviceExamplesTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.examples = readme_examples()
        self.s = ik.IngestStack(self.h, workers=1)
        self.work = Path(tempfile.mkdtemp(prefix="readme-", dir=self.h.dir))

    def wait_state(self, asset, signal, value):
        def arrived():
            return self.s.r.hget(ik.state_key(asset), signal) == value
        wait_until(arrived, 15, what=f"{asset}.{signal} = {value} in Redis")

    def test_both_examples_are_in_the_readme(self):
        self.assertIn("device.py", self.examples)
        self.assertIn("device.c", self.examples)

    def test_python_example_publishes_telemetry_that_ingest_applies(self):
        script = self.work / "device.py"
        script.write_text(self.examples["device.py"])
        env = dict(os.environ, ASSET="dev-py-1", COUNT="2", BROKER_HOST=th.LOOPBACK,
                   BROKER_PORT=str(self.s.broker.port))
        res = subprocess.run([sys.executable, script], env=env, capture_output=True, timeout=30,
                             check=False)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.wait_state("dev-py-1", "oil_temp", "52.5")
        self.wait_state("dev-py-1", "pressure", "190")
        self.assertEqual(len(self.s.history("dev-py-1")), 2)

    def test_c_example_compiles_as_printed_and_its_reading_is_applied(self):
        src = self.work / "device.c"
        src.write_text(self.examples["device.c"])
        build = [["protoc-c", "--c_out=.", f"-I{th.REPO_DIR / 'proto'}",
                  str(th.REPO_DIR / "proto/twin/v1/twin.proto")],
                 ["cc", "-Wall", "-Werror", "device.c", "twin/v1/twin.pb-c.c", "-I.",
                  "-lpaho-mqtt3c", "-lprotobuf-c", "-o", "device"]]
        for argv in build:
            res = subprocess.run(argv, cwd=self.work, capture_output=True, timeout=120, check=False)
            self.assertEqual(res.returncode, 0, f"{' '.join(argv)}:\n{res.stderr.decode()}")
        env = dict(os.environ, BROKER_URL=f"tcp://{th.LOOPBACK}:{self.s.broker.port}")
        res = subprocess.run([str(self.work / "device"), "dev-c-1"], env=env, capture_output=True,
                             timeout=30, check=False)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.wait_state("dev-c-1", "oil_temp", "52.5")


if __name__ == "__main__":
    th.main()
