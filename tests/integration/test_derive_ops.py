# SPDX-License-Identifier: Apache-2.0
# The derived-signal operators, compiled by twin-ingest into its apply script and run by a real redis-server against hand-computed sequences (gaps, resets, wraps, missing values, windows sliding), with their state stored in Redis between updates as ingest stores it.
"""Each case is an expression over x and a sequence of (device time s, value of x or None). The
test writes a plant model whose kind has the measured signals raw and m, the derived signal
x = raw / m and the derived signal d = <expression>, takes the apply script twin-ingest builds
for it (--print-script) and runs it with EVALSHA update by update, as ingest calls it: x is
raw / 1 (exact), or raw / 0 (nothing) where the case says None, and the script's answer gives
d. (tests/unit/test_derive.c checks the parsing, test_apply.c the compiled script's form.)"""

import json
import math

import twinharness as th
from twinharness import TwinTestCase


class DeriveOpsTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.r = self.h.redis().client()
        self.scripts = {}
        self.asset = 0

    def script(self, expr):
        """The SHA of the apply script for a model where d = expr, loaded into Redis."""
        if expr not in self.scripts:
            model = {"version": 1,
                     "asset_kinds": {"k": {"signals": {
                         "raw": {}, "m": {}, "x": {"expr": "raw / m"}, "d": {"expr": expr}}}},
                     "assets": {"k-1": {"kind": "k"}}}
            path = self.h.dir / "ops-model.json"
            path.write_text(json.dumps(model))
            res = self.h.run("twin-ingest", ["--print-script"], env={"TWIN_MODEL": str(path)})
            self.assertEqual(res.returncode, 0, res.stderr)
            self.scripts[expr] = self.r.script_load(res.stdout)
        return self.scripts[expr]

    def run_expr(self, expr, seq):
        """d after each update of seq, on an asset of its own."""
        sha = self.script(expr)
        self.asset += 1
        keys = [f"twin:{{ops-{self.asset}}}:{k}" for k in ("state", "history", "replay",
                                                           "derived")]
        out = []
        for i, (t, x) in enumerate(seq):
            ts_ms = round(t * 1000)
            pairs = ["raw", "0", "m", "0"] if x is None else ["raw", repr(float(x)), "m", "1"]
            reply = self.r.evalsha(sha, 4, *keys, str(i + 1), str(ts_ms), "1", "1024", "100",
                                   "k", *pairs)
            self.assertEqual(reply[0], 1, reply)  # every update moves the state on
            fields = reply[1]
            values = dict(zip(fields[0::2], fields[1::2]))
            changed = values["_changed"].split(",")
            out.append(float(values["d"]) if "d" in changed else None)
        return out

    def check(self, expr, seq, want, places=9):
        got = self.run_expr(expr, seq)
        self.assertEqual(len(got), len(want), expr)
        for i, (g, w) in enumerate(zip(got, want)):
            if w is None:
                self.assertIsNone(g, f"{expr} step {i}: {got}")
            else:
                self.assertIsNotNone(g, f"{expr} step {i}: {got}")
                self.assertAlmostEqual(g, w, places, f"{expr} step {i}: {got}")

    def test_delta_and_rate_handle_resets_wraps_and_gaps(self):
        seq = [(0, 10), (10, 15), (20, 3), (30, 8), (40, None), (50, 9)]
        self.check("delta(x)", seq, [None, 5, 3, 5, None, 1])
        self.check("delta(x, 16)", seq, [None, 5, 4, 5, None, 1])
        # rate: per second of device time; a second update at the same time has no rate;
        # across a gap it is the mean rate over the gap.
        self.check("rate(x)",
                   [(0, 0), (10, 50), (20, 50), (20, 60), (100, 140)],
                   [None, 5, 0, None, 1])

    def test_integral_total_ewma_and_time_in(self):
        self.check("integral(x)",
                   [(0, 2), (10, 4), (20, None), (30, 4)], [0, 30, 30, 110])
        # A clock that goes back adds nothing and does not count twice afterwards.
        self.check("integral(x)",
                   [(0, 1), (10, 1), (5, 3), (20, 3)], [0, 10, 10, 40])
        self.check("time_in(x)", [(0, 1), (10, 0), (5, 1), (20, 1)], [0, 10, 10, 20])
        self.check("rate(x)", [(0, 0), (10, 10), (5, 20), (20, 30)],
                   [None, 1, None, 2])
        self.check("total(x)", [(0, 1), (1, 2), (2, None), (3, 3)], [1, 3, 3, 6])
        self.check("ewma(x, 10s)", [(0, 0), (10, 10), (30, 5), (40, 13)],
                   [0, 5, 5, 9])
        self.check("time_in(x > 1)",
                   [(0, 2), (10, 0), (25, 5), (30, 5), (40, None), (50, 2)],
                   [0, 10, 10, 15, 25, 25])

    def test_windows_slide_a_bucket_at_a_time(self):
        # 160 s in 16 buckets of 10 s: at 165 s the bucket [0, 10) has left the window.
        seq = [(0, 1), (5, 3), (20, 5), (100, 7), (165, 9), (400, None)]
        self.check("mean_over(x, 160s)", seq, [1, 2, 3, 4, 7, None])
        self.check("count_over(x, 160s)", seq, [1, 2, 3, 4, 3, 0])
        self.check("min_over(x, 160s)", seq, [1, 1, 1, 1, 5, None])
        self.check("max_over(x, 160s)", seq, [1, 3, 5, 7, 9, None])
        self.check("std_over(x, 160s)", seq,
                   [None, math.sqrt(2), 2, math.sqrt(20 / 3), 2, None])

    def test_windows_match_a_recount_of_their_samples(self):
        # Irregular updates over three windows (several in a bucket, empty buckets, a gap
        # longer than the window, missing values): each result against the samples whose
        # bucket lies in the window, counted again from scratch.
        w, width = 160, 10
        seq, t = [], 0.0
        for i in range(300):
            t += (0.3, 1.7, 4.1, 0.05, 9.9)[i % 5] + (170 if i == 200 else 0)
            seq.append((round(t, 3), None if i % 11 == 3 else math.sin(i * 0.7) * 50 + i * 0.01))

        def window_values(upto):
            now = math.floor(seq[upto][0] / width)
            return [x for tt, x in seq[:upto + 1]
                    if x is not None and now - 16 < math.floor(tt / width) <= now]

        def std(v):
            if len(v) < 2:
                return None
            m = sum(v) / len(v)
            return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
        reference = {
            "mean_over": lambda v: sum(v) / len(v) if v else None,
            "count_over": len,
            "min_over": lambda v: min(v) if v else None,
            "max_over": lambda v: max(v) if v else None,
            "std_over": std,
        }
        for op, f in reference.items():
            want = [f(window_values(i)) for i in range(len(seq))]
            self.check(f"{op}(x, {w}s)", seq, want, places=7)

    def test_a_window_forgets_buckets_ahead_of_a_clock_that_went_back(self):
        # 10 s buckets: at 30 s the bucket of 50-55 s lies ahead and is forgotten for good.
        seq = [(0, 1), (50, 2), (55, 3), (30, 4), (56, 5)]
        self.check("mean_over(x, 160s)", seq, [1, 1.5, 2, 2.5, 10 / 3])
        self.check("count_over(x, 160s)", seq, [1, 2, 3, 2, 3])
        self.check("max_over(x, 160s)", seq, [1, 2, 3, 4, 5])
        self.check("min_over(x, 160s)", seq, [1, 1, 1, 1, 1])

    def test_missing_values_and_bad_arithmetic_give_nothing(self):
        seq = [(0, 4), (1, None), (2, -1), (3, 0)]
        self.check("x / (x - x)", seq, [None, None, None, None])
        self.check("log(x)", seq, [math.log(4), None, None, None])
        self.check("sqrt(x)", seq, [2, None, None, 0])
        self.check("clamp(x, 0, 1)", seq, [1, None, 0, 0])
        self.check("min(x, 2, 3)", seq, [2, None, -1, 0])
        self.check("max(x, 2)", seq, [4, None, 2, 2])
        self.check("x * 2 + -1", seq, [7, None, -3, -1])
        self.check("exp(x * 1000)", seq, [None, None, 0, 1])  # e^4000: not finite
        self.check("x ^ 0.5", seq, [2, None, None, 0])  # (-1)^0.5 is NaN
        self.check("x >= 0", seq, [1, None, 0, 1])

    def test_state_survives_its_storage_exactly(self):
        # Three operators in one expression (three state slots), values that do not round in
        # decimal: stored in Redis between updates, the result is the same double as the same
        # arithmetic done here in one go.
        seq = [(t * 0.7, math.pi * t % 3) for t in range(40)]
        got = self.run_expr("integral(x) + ewma(x, 7s) + delta(x)", seq)
        want, total, mean, prev, t0 = [], None, None, None, None
        for t, x in seq:
            t = round(t * 1000) / 1000  # the device time the script sees
            if total is None:
                total, mean = 0, x
            else:
                if t > t0:
                    total = total + (prev + x) / 2 * (t - t0)
                    mean = mean + (1 - 2 ** (-(t - t0) / 7)) * (x - mean)
            d = None if prev is None else (x - prev if x >= prev else x)
            want.append(None if d is None else total + mean + d)
            prev, t0 = x, t
        self.assertEqual([repr(g) for g in got], [repr(w) for w in want])


if __name__ == "__main__":
    th.main()
