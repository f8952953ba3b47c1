# SPDX-License-Identifier: Apache-2.0
# The C engine and an independent SimPy model of the same small line (tests/bench/simpy_line.py) agree within their 95 % intervals on throughput, lead time, WIP and every station's machine-time fractions.
"""A line without a closed form (tests/bench/models/line3.json: a source, lognormal, triangular
and uniform times, buffers of 2 and 3 with blocking after service, busy-basis failures on cut,
time-basis failures on pack, two weld machines, 2 % scrap) is simulated by the engine
(`scen-bench kpis`, the built program) and by SimPy (Debian's python3-simpy3) with independent
random numbers. For each compared KPI the two intervals must overlap, i.e. the difference of
the means is at most the sum of the half-widths, and each half-width must be at most 3 % of
the value so that the overlap means something.

To see the test fail, change the SimPy side only, e.g.
TWIN_SIMPY_SET=station.pack.mttr=8.5 (a 6 % longer repair: pack's down fraction moves by ~5 %).
"""

import json
import os
import subprocess
import sys
import unittest

import twinharness as th

MODEL = th.REPO_DIR / "tests" / "bench" / "models" / "line3.json"
SIMPY_LINE = th.REPO_DIR / "tests" / "bench" / "simpy_line.py"
# Enough for half-widths of at most ~2.5 % on every compared KPI (0.2 % on throughput).
RUN = ["--horizon", "30000", "--warmup", "1000", "--replications", "40", "--seed", "1"]
MAX_REL_HALF_WIDTH = 0.03
STATIONS = ("cut", "weld", "pack")


def compared_kpis():
    names = ["throughput", "lead_time", "wip"]
    for s in STATIONS:
        names += [f"station.{s}.{k}" for k in ("utilisation", "blocked", "starved", "down")]
    return names + ["buffer.b1.level", "buffer.b2.level"]


def by_name(doc):
    return {k["name"]: k for k in doc["kpis"]}


class ScenarioSimpyAgreementTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.engine = by_name(cls.run_json([str(th.BIN_DIR / "scen-bench"), "kpis", str(MODEL),
                                           *RUN, "--threads", "2"]))
        sets = [a for s in os.environ.get("TWIN_SIMPY_SET", "").split() for a in ("--set", s)]
        cls.simpy = by_name(cls.run_json([sys.executable, str(SIMPY_LINE), str(MODEL), *RUN,
                                          "--jobs", "2", *sets]))

    @staticmethod
    def run_json(argv):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=200)
        if p.returncode != 0:
            raise AssertionError(f"{argv[0]} {argv[1]} failed ({p.returncode}):\n{p.stderr}"
                                 + ("\n(SimPy: install python3-simpy3)"
                                    if "No module named 'simpy'" in p.stderr else ""))
        return json.loads(p.stdout)

    def test_every_kpi_of_both_simulators_is_known(self):
        self.assertEqual(set(self.engine), set(self.simpy))

    def test_intervals_overlap_and_are_narrow(self):
        problems = []
        print(f"\n  {'KPI':28s} {'engine':>24s} {'SimPy':>24s}  |diff|/(h1+h2)")
        for name in compared_kpis():
            a, b = self.engine[name], self.simpy[name]
            ha, hb = (a["hi"] - a["lo"]) / 2, (b["hi"] - b["lo"]) / 2
            diff = abs(a["mean"] - b["mean"])
            if a["mean"] == 0 and b["mean"] == 0:  # a fraction that is 0 by construction
                continue
            ratio = diff / (ha + hb) if ha + hb > 0 else float("inf")
            print(f"  {name:28s} {a['mean']:12.6g} ± {ha:<9.3g} {b['mean']:12.6g} ± {hb:<9.3g}"
                  f"  {ratio:.2f}")
            if ratio > 1:
                problems.append(f"{name}: engine {a['mean']:.6g} ± {ha:.3g}, SimPy "
                                f"{b['mean']:.6g} ± {hb:.3g}: the intervals do not overlap")
            for who, m, h in (("engine", a["mean"], ha), ("SimPy", b["mean"], hb)):
                if h > MAX_REL_HALF_WIDTH * abs(m):
                    problems.append(f"{name}: {who}'s half-width {h:.3g} is more than "
                                    f"{MAX_REL_HALF_WIDTH:.0%} of {m:.6g}")
        self.assertEqual(problems, [])

    def test_blocking_and_starving_are_exercised(self):
        """The line is meant to block and starve: otherwise the comparison proves less."""
        for name in ("station.cut.blocked", "station.weld.blocked", "station.weld.starved",
                     "station.pack.starved", "station.cut.down", "station.pack.down"):
            self.assertGreater(self.engine[name]["mean"], 0.02, name)
        self.assertEqual(self.engine["station.pack.blocked"]["mean"], 0)


if __name__ == "__main__":
    th.main()
