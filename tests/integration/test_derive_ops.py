# SPDX-License-Identifier: Apache-2.0
# The derived-signal operators of services/ingest/derive.lua, run by a real redis-server's Lua against hand-computed sequences (gaps, resets, wraps, missing values, windows sliding), with their state encoded and decoded between updates.
"""Each case is an expression as twin/derive.h compiles it (tests/unit/test_derive.c checks the
compilation) and a sequence of (device time s, value of x or None); the script evaluates it
update by update, passing the operator state through D.encode / D.decode as ingest stores it."""

import math

import twinharness as th
from twinharness import TwinTestCase

DERIVE_LUA = th.REPO_DIR / "services" / "ingest" / "derive.lua"

DRIVER = """
local S = {}
local out = {}
for i = 1, #ARGV, 2 do
    D.t = tonumber(ARGV[i])
    local V = {}
    if ARGV[i + 1] ~= 'nil' then V['x'] = tonumber(ARGV[i + 1]) end
    local r = %s
    out[#out + 1] = r and string.format('%%.17g', r) or 'nil'
    S = D.decode(D.encode(S))
end
return out
"""


class DeriveOpsTest(TwinTestCase):

    def setUp(self):
        super().setUp()
        self.r = self.h.redis().client()
        self.lib = DERIVE_LUA.read_text()

    def run_expr(self, lua, seq):
        args = []
        for t, x in seq:
            args += [repr(float(t)), "nil" if x is None else repr(float(x))]
        out = self.r.eval(self.lib + DRIVER % lua, 0, *args)
        return [None if v == "nil" else float(v) for v in out]

    def check(self, lua, seq, want, places=9):
        got = self.run_expr(lua, seq)
        self.assertEqual(len(got), len(want), lua)
        for i, (g, w) in enumerate(zip(got, want)):
            if w is None:
                self.assertIsNone(g, f"{lua} step {i}: {got}")
            else:
                self.assertIsNotNone(g, f"{lua} step {i}: {got}")
                self.assertAlmostEqual(g, w, places, f"{lua} step {i}: {got}")

    def test_delta_and_rate_handle_resets_wraps_and_gaps(self):
        seq = [(0, 10), (10, 15), (20, 3), (30, 8), (40, None), (50, 9)]
        self.check("D.delta(S,1,V['x'])", seq, [None, 5, 3, 5, None, 1])
        self.check("D.delta(S,1,V['x'],16)", seq, [None, 5, 4, 5, None, 1])
        # rate: per second of device time; a second update at the same time has no rate;
        # across a gap it is the mean rate over the gap.
        self.check("D.rate(S,1,V['x'])",
                   [(0, 0), (10, 50), (20, 50), (20, 60), (100, 140)],
                   [None, 5, 0, None, 1])

    def test_integral_total_ewma_and_time_in(self):
        self.check("D.integral(S,1,V['x'])",
                   [(0, 2), (10, 4), (20, None), (30, 4)], [0, 30, 30, 110])
        # A clock that goes back adds nothing and does not count twice afterwards.
        self.check("D.integral(S,1,V['x'])",
                   [(0, 1), (10, 1), (5, 3), (20, 3)], [0, 10, 10, 40])
        self.check("D.time_in(S,1,V['x'])", [(0, 1), (10, 0), (5, 1), (20, 1)], [0, 10, 10, 20])
        self.check("D.rate(S,1,V['x'])", [(0, 0), (10, 10), (5, 20), (20, 30)],
                   [None, 1, None, 2])
        self.check("D.total(S,1,V['x'])", [(0, 1), (1, 2), (2, None), (3, 3)], [1, 3, 3, 6])
        self.check("D.ewma(S,1,V['x'],10)", [(0, 0), (10, 10), (30, 5), (40, 13)],
                   [0, 5, 5, 9])
        self.check("D.time_in(S,1,D.gt(V['x'],1))",
                   [(0, 2), (10, 0), (25, 5), (30, 5), (40, None), (50, 2)],
                   [0, 10, 10, 15, 25, 25])

    def test_windows_slide_a_bucket_at_a_time(self):
        # 160 s in 16 buckets of 10 s: at 165 s the bucket [0, 10) has left the window.
        seq = [(0, 1), (5, 3), (20, 5), (100, 7), (165, 9), (400, None)]
        self.check("D.mean_over(S,1,V['x'],160)", seq, [1, 2, 3, 4, 7, None])
        self.check("D.count_over(S,1,V['x'],160)", seq, [1, 2, 3, 4, 3, 0])
        self.check("D.min_over(S,1,V['x'],160)", seq, [1, 1, 1, 1, 5, None])
        self.check("D.max_over(S,1,V['x'],160)", seq, [1, 3, 5, 7, 9, None])
        self.check("D.std_over(S,1,V['x'],160)", seq,
                   [None, math.sqrt(2), 2, math.sqrt(20 / 3), 2, None])

    def test_windows_match_a_recount_of_their_samples(self):
        # Irregular updates over three windows (several in a bucket, empty buckets, a gap
        # longer than the window, missing values): each result against the samples whose
        # bucket lies in the window, counted again from scratch.
        w, width = 160, 10
        seq, t = [], 0.0
        for i in range(300):
            t += (0.3, 1.7, 4.1, 0.05, 9.9)[i % 5] + (170 if i == 200 else 0)
            seq.append((t, None if i % 11 == 3 else math.sin(i * 0.7) * 50 + i * 0.01))

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
            self.check(f"D.{op}(S,1,V['x'],{w})", seq, want, places=7)

    def test_a_window_forgets_buckets_ahead_of_a_clock_that_went_back(self):
        # 10 s buckets: at 30 s the bucket of 50-55 s lies ahead and is forgotten for good.
        seq = [(0, 1), (50, 2), (55, 3), (30, 4), (56, 5)]
        self.check("D.mean_over(S,1,V['x'],160)", seq, [1, 1.5, 2, 2.5, 10 / 3])
        self.check("D.count_over(S,1,V['x'],160)", seq, [1, 2, 3, 2, 3])
        self.check("D.max_over(S,1,V['x'],160)", seq, [1, 2, 3, 4, 5])
        self.check("D.min_over(S,1,V['x'],160)", seq, [1, 1, 1, 1, 1])

    def test_missing_values_and_bad_arithmetic_give_nothing(self):
        seq = [(0, 4), (1, None), (2, -1), (3, 0)]
        self.check("D.div(V['x'],D.sub(V['x'],V['x']))", seq, [None, None, None, None])
        self.check("D.log(V['x'])", seq, [math.log(4), None, None, None])
        self.check("D.sqrt(V['x'])", seq, [2, None, None, 0])
        self.check("D.clamp(V['x'],0,1)", seq, [1, None, 0, 0])
        self.check("D.min(V['x'],2,3)", seq, [2, None, -1, 0])
        self.check("D.max(V['x'],2)", seq, [4, None, 2, 2])
        self.check("D.add(D.mul(V['x'],2),D.neg(1))", seq, [7, None, -3, -1])
        self.check("D.exp(D.mul(V['x'],1000))", seq, [None, None, 0, 1])  # e^4000: not finite
        self.check("D.pow(V['x'],0.5)", seq, [2, None, None, 0])  # (-1)^0.5 is NaN
        self.check("D.ge(V['x'],0)", seq, [1, None, 0, 1])

    def test_state_survives_its_encoding_exactly(self):
        # Many slots, values that do not round in decimal, a hole in a window's buckets.
        lua = ("D.add(D.add(D.integral(S,1,V['x']),D.ewma(S,2,V['x'],7)),"
               "D.add(D.mean_over(S,3,V['x'],3600),D.delta(S,4,V['x'])))")
        seq = [(t * 0.7, math.pi * t % 3) for t in range(40)]
        got = self.run_expr(lua, seq)
        # The same with the state kept in Lua only (no encoding between updates).
        args = []
        for t, x in seq:
            args += [repr(float(t)), repr(float(x))]
        direct = self.r.eval(self.lib + DRIVER.replace("S = D.decode(D.encode(S))", "") % lua,
                             0, *args)
        self.assertEqual([repr(g) for g in got], [repr(float(v)) if v != "nil" else "None"
                                                  for v in direct])


if __name__ == "__main__":
    th.main()
