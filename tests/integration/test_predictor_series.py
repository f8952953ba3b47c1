# SPDX-License-Identifier: Apache-2.0
# The public reference series streamed through ingest and twin-predictor over MQTT: one-step MASE against seasonal naive, 95 % interval coverage, 24-month holdout.
import csv

import predkit as pk
import twinharness as th
from twinharness import TwinTestCase

# name: season length (0: yearly), as the series README gives them.
SERIES = {
    "airpassengers": 12, "co2": 12, "nottem": 12, "usaccdeaths": 12, "ukdriverdeaths": 12,
    "ldeaths": 12, "nile": 0, "sunspot_year": 0, "lynx": 0,
}
MONTHLY = [s for s, m in SERIES.items() if m]


def reference(name):
    with open(pk.SERIES_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


def streaming_reference():
    return {r["series"]: float(r["MASE_snaive"]) for r in reference("reference_streaming.csv")}


def best_holdout():
    """Per monthly series: the lower MAE of R's HoltWinters (either form) and seasonal naive."""
    best = {}
    for r in reference("reference_holdout.csv"):
        if r["method"] in ("hw_additive", "hw_multiplicative", "snaive"):
            mae = float(r["MAE"])
            best[r["series"]] = min(best.get(r["series"], mae), mae)
    return best


def model_for(names):
    kinds = {f"k-{n}": {"value": {"season_samples": SERIES[n]} if SERIES[n] else {}}
             for n in names}
    return pk.plant_model(kinds, {n.replace("_", "-"): f"k-{n}" for n in names})


class PredictorSeriesTest(TwinTestCase):

    def test_one_step_forecasts_beat_seasonal_naive_with_calibrated_intervals(self):
        s = pk.PredictorStack(self.h, model=model_for(SERIES),
                              env={"TWIN_PREDICTOR_HORIZON": "24steps"})
        ref = streaming_reference()
        for name, m in SERIES.items():
            asset = name.replace("_", "-")
            ts, xs = pk.read_series(name)
            t0 = m if m else 2
            point = {}  # i -> (mean, lo, hi) of the forecast of sample i + 1

            def keep(i, p, point=point):
                f = s.forecast(p, "value")
                if f is not None and f.points:
                    point[i] = (f.points[0].mean, f.points[0].lo, f.points[0].hi)
            s.stream(asset, "value", ts, xs, on_prediction=keep)
            err = naive = 0.0
            covered = 0
            for t in range(t0, len(xs)):
                mean, lo, hi = point.get(t - 1, (xs[t - 1], float("-inf"), float("-inf")))
                err += abs(xs[t] - mean)
                naive += abs(xs[t] - xs[t - 1])
                covered += lo <= xs[t] <= hi
            n = len(xs) - t0
            mase, coverage = err / naive, covered / n
            last = s.wait_prediction(asset, ts[-1])
            f = s.forecast(last, "value")
            self.h.note(f"{name}: one-step MASE {mase:.4f} (seasonal naive "
                        f"{ref[name] if m else 1.0:.4f}), coverage {coverage:.3f}, model {f.model}, "
                        f"quality n {f.quality.n} mase {f.quality.mase:.3f} "
                        f"coverage {f.quality.coverage:.3f}")
            self.assertLess(mase, ref[name] if m else 1.0, name)
            self.assertTrue(0.90 <= coverage <= 0.98, f"{name}: coverage {coverage:.3f}")
            self.assertEqual(f.quality.n, len(xs) - 1)
            self.assertTrue(0.0 <= f.quality.coverage <= 1.0)
            self.assertEqual(len(f.points), 24)

    def test_holdout_of_two_seasons_stays_near_the_better_of_holtwinters_and_snaive(self):
        s = pk.PredictorStack(self.h, model=model_for(MONTHLY),
                              env={"TWIN_PREDICTOR_HORIZON": "24steps",
                                   "TWIN_PREDICTOR_POINTS": 24})
        best = best_holdout()
        for name in MONTHLY:
            asset = name.replace("_", "-")
            ts, xs = pk.read_series(name)
            s.stream(asset, "value", ts[:-24], xs[:-24])
            f = s.forecast(s.wait_prediction(asset, ts[-25]), "value")
            self.assertEqual(len(f.points), 24)
            mae = sum(abs(x - p.mean) for x, p in zip(xs[-24:], f.points)) / 24
            self.h.note(f"{name}: holdout MAE {mae:.4g}, better of R's HoltWinters and seasonal "
                        f"naive {best[name]:.4g} ({100 * (mae / best[name] - 1):+.1f} %)")
            self.assertLessEqual(mae, 1.1 * best[name], name)  # acceptance: within 10 %
            stored = s.stored_prediction(asset)
            self.assertEqual(stored.basis_ts_ms, ts[-25])
        # The batch refits (at the end of seasons 6 to 12) ran and changed parameters.
        self.assertGreater(s.predictor.metric('twin_predictor_refits_total{result="changed"}'), 0)

    def test_warm_start_from_history_refits_and_forecasts_as_well_as_live_learning(self):
        s = pk.PredictorStack(self.h, model=model_for(["airpassengers"]), start_predictor=False,
                              env={"TWIN_PREDICTOR_HORIZON": "24steps",
                                   "TWIN_PREDICTOR_POINTS": 24})
        ts, xs = pk.read_series("airpassengers")
        # The training months reach Redis's history while no predictor runs ...
        for i in range(len(ts) - 25):
            s.send_value("airpassengers", "value", ts[i], xs[i], i + 1)
        th.wait_until(lambda: s.r.xlen("twin:{airpassengers}:history") == len(ts) - 25, 15,
                      what="the training months in history")
        # ... then the predictor starts: the retained TwinState brings the asset in, which warm
        # starts from its history and refits its models to it.
        s.start_predictor()
        th.wait_until(lambda: "event=warm_start" in s.predictor.log_text(), 10,
                      what="the warm start")
        self.assertEqual(
            s.predictor.metric('twin_predictor_refits_total{result="changed"}'), 1)
        s.send_value("airpassengers", "value", ts[-25], xs[-25], len(ts) - 24)
        f = s.forecast(s.wait_prediction("airpassengers", ts[-25]), "value")
        mae = sum(abs(x - p.mean) for x, p in zip(xs[-24:], f.points)) / 24
        best = best_holdout()["airpassengers"]
        self.h.note(f"airpassengers after a warm start: holdout MAE {mae:.4g} "
                    f"({100 * (mae / best - 1):+.1f} % against {best:.4g})")
        self.assertLessEqual(mae, 1.1 * best)
        self.assertEqual(f.quality.n, len(ts) - 25)


if __name__ == "__main__":
    th.main()
