#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The scenario engine's production line rebuilt in SimPy, to check the C engine's KPIs against an
independent simulator and to time both on the same model.

Reads the production part of a plant model JSON (the schema of README.md, "Production"), runs
replications in SimPy 3 (Debian's python3-simpy3, `import simpy`) and prints the engine's KPIs
(same names and units as `scen-bench kpis`) with 95 % intervals, or events per second.

Supported: station input "source", "demand" or a buffer; outputs to a buffer, "sink" or a split;
parallel machines; buffers with a capacity >= 1 (or unbounded) and blocking after service;
cycle, setup, failure and repair times fixed/exp/uniform/triangular/normal/lognormal; failures
on the busy or the time basis, pre-empting the part, which resumes after the repair; scrap;
Poisson or renewal demand with an optional capped backlog; stocks consumed per part with
reorder-point or periodic suppliers (lead time, reliability, late delay); a shift calendar.
Not supported (refused): staff limits, seasonal demand, buffers of capacity 0. Live settings
(which matter only when a run starts from the live twin) are ignored.

The model follows the engine's semantics (services/scenario/sim.h): a machine takes the oldest
part of its input when it is up, inside a shift and has material; holds a finished part while
its output is full; machine time is down > busy > blocked > off shift > starved; lead time runs
from the order's arrival (or the release from the source) to the sink; statistics restart at
the warm-up. Stock-out accounting is approximate (a machine that already holds a part when the
material runs out waits with it); the agreement test does not compare it.

Events are counted two ways: "model" events are counted as the engine counts them (order
arrivals, part completions, failures, repairs, deliveries, periodic orders, shift changes, the
warm-up), "simpy" events are the events SimPy's scheduler processed (read from its event
counter after the run, so counting costs nothing).
"""

import argparse
import json
import math
import multiprocessing
import os
import random
import re
import sys
import time

import simpy

DOWN, BUSY, BLOCKED, OFF, STARVED = range(5)
NCAT = 5
SOURCE, DEMAND, SINK = "source", "demand", "sink"
FAIL_NONE, FAIL_BUSY, FAIL_TIME = 0, 1, 2

# ---- the model file ----------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(v):
    """Seconds from a number or text such as "45s", "1d18h", "90m"."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        groups = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", v)
        if groups and "".join(a + u for a, u in groups) == v:
            return sum(float(a) * _UNITS[u] for a, u in groups)
        if re.fullmatch(r"\d+(\.\d+)?", v):
            return float(v)
    raise ValueError(f"not a duration: {v!r}")


def time_of_day(v):
    if isinstance(v, str) and re.fullmatch(r"\d\d:\d\d", v):
        return int(v[:2]) * 3600 + int(v[3:]) * 60
    return duration(v)


class Dist:
    """A random duration as the engine draws it (lognormal: mean and sd of the value)."""

    def __init__(self, spec, plain="fixed"):
        if not isinstance(spec, dict):
            spec = {"dist": plain, ("value" if plain == "fixed" else "mean"): spec}
        self.kind = spec["dist"]
        g = {k: duration(v) for k, v in spec.items() if k != "dist"}
        self.scale = 1.0
        if self.kind == "fixed":
            self.mean = g["value"]
        elif self.kind == "exp":
            self.mean = g["mean"]
        elif self.kind == "uniform":
            self.lo, self.hi = g["min"], g["max"]
            self.mean = (self.lo + self.hi) / 2
        elif self.kind == "triangular":
            self.lo, self.mode, self.hi = g["min"], g["mode"], g["max"]
            self.mean = (self.lo + self.mode + self.hi) / 3
        elif self.kind == "normal":
            self.mean, self.sd = g["mean"], g["sd"]
        elif self.kind == "lognormal":
            self.mean, self.sd = g["mean"], g["sd"]
            self.sigma = math.sqrt(math.log1p(self.sd ** 2 / self.mean ** 2))
            self.mu = math.log(self.mean) - self.sigma ** 2 / 2
        else:
            raise ValueError(f"unknown distribution {self.kind!r}")

    def set_mean(self, m):
        self.scale = m / self.mean

    def draw(self, r):
        k = self.kind
        if k == "fixed":
            x = self.mean
        elif k == "exp":
            x = r.expovariate(1.0 / self.mean)
        elif k == "uniform":
            x = r.uniform(self.lo, self.hi)
        elif k == "triangular":
            x = r.triangular(self.lo, self.hi, self.mode)
        elif k == "normal":
            for _ in range(16):
                x = r.gauss(self.mean, self.sd)
                if x >= 0:
                    break
            else:
                x = 0.0
        else:
            x = r.lognormvariate(self.mu, self.sigma)
        return x * self.scale


class Plant:
    """The production part of a model file, with the engine's defaults."""

    def __init__(self, doc):
        seasonal = "season" in (doc.get("demand") or {})
        if seasonal or any("staff" in s for s in doc["stations"].values()):
            raise ValueError("staff limits and seasonal demand are not supported here")
        assets = doc.get("assets", {})
        self.buffers = {}
        for name, b in doc.get("buffers", {}).items():
            cap = b.get("capacity", math.inf)
            if cap == 0:
                raise ValueError(f"buffer {name}: capacity 0 (direct handover) is not supported")
            self.buffers[name] = {"capacity": cap, "initial": b.get("initial", 0)}
        self.stations = {n: self._station(n, s, assets) for n, s in doc["stations"].items()}
        self.stocks = {n: float(s.get("initial", 0)) for n, s in doc.get("stocks", {}).items()}
        self.suppliers = {n: self._supplier(s) for n, s in doc.get("suppliers", {}).items()}
        self.demand = self._demand(doc.get("demand"))
        self.shifts = self._shifts(doc.get("shifts"))

    @staticmethod
    def _station(name, s, assets):
        n_assets = sum(1 for a in assets.values() if a.get("station") == name)
        out = s["output"]
        outs = [(out, 1.0)] if isinstance(out, str) else [(o["to"], o["share"]) for o in out]
        total = sum(w for _, w in outs)
        st = {
            "name": name,
            "input": s["input"],
            "outputs": [(o, w / total) for o, w in outs],
            "machines": s.get("machines", max(n_assets, 1)),
            "cycle": Dist(s["cycle_time"]),
            "setup": None,
            "setup_every": 0,
            "scrap": s.get("scrap", 0.0),
            "basis": FAIL_NONE,
            "stock": None,
            "consume": 0.0,
            "shifts": s.get("shifts", True),
        }
        if "setup" in s:
            st["setup"] = Dist(s["setup"]["time"])
            st["setup_every"] = s["setup"].get("every", 1)
        if "failures" in s:
            f = s["failures"]
            st["ttf"], st["ttr"] = Dist(f["mtbf"], "exp"), Dist(f["mttr"], "exp")
            st["basis"] = FAIL_TIME if f.get("basis", "busy") == "time" else FAIL_BUSY
        if "consumes" in s:
            st["stock"] = s["consumes"]["stock"]
            st["consume"] = s["consumes"].get("per_part", 1.0)
        return st

    @staticmethod
    def _supplier(s):
        periodic = s.get("policy", "reorder") == "periodic"
        sup = {
            "stock": s["stock"],
            "periodic": periodic,
            "lot": float(s["lot"]),
            "reorder": float(s.get("reorder_point", 0)),
            "lead": Dist(s["lead_time"]) if "lead_time" in s else Dist(0),
            "reliability": s.get("reliability", 1.0),
            "late": Dist(s["late"]) if "late" in s else None,
        }
        if periodic:
            sup["period"] = duration(s["period"])
            sup["first"] = duration(s["first"]) if "first" in s else sup["period"]
        return sup

    @staticmethod
    def _demand(d):
        if d is None:
            return None
        out = {"due": duration(d["due"]) if "due" in d else 0.0, "cap": math.inf, "lose": False}
        if "rate_per_hour" in d:
            out["rate"] = d["rate_per_hour"] / 3600.0
        else:
            out["interarrival"] = Dist(d["interarrival"])
        if "backlog" in d:
            out["cap"] = d["backlog"]["capacity"]
            out["lose"] = d["backlog"].get("when_full") == "lose"
        return out

    @staticmethod
    def _shifts(s):
        if not s:
            return None
        period = duration(s.get("period", "1d"))
        wins = []
        for a, b in s["windows"]:
            a, b = time_of_day(a), time_of_day(b)
            wins += [(a, b)] if a < b else [(a, period), (0.0, b)]
        wins.sort()
        merged = []
        for a, b in wins:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return {"period": period, "windows": [w for w in merged if w[1] > w[0]]}

    def set(self, path, value):
        """A parameter change, for checking that the agreement test can fail."""
        kind, name, field = path.split(".")
        if kind == "buffer" and field == "capacity":
            self.buffers[name]["capacity"] = int(value)
        elif kind == "station" and field == "machines":
            self.stations[name]["machines"] = int(value)
        elif kind == "station" and field in ("cycle_time", "mtbf", "mttr"):
            key = {"cycle_time": "cycle", "mtbf": "ttf", "mttr": "ttr"}[field]
            self.stations[name][key].set_mean(value)
        else:
            raise ValueError(f"--set: unsupported path {path}")


# ---- one replication -----------------------------------------------------------------------


class Part:
    __slots__ = ("t_arr", "t_in", "order")

    def __init__(self, t_arr, order=False):
        self.t_arr, self.t_in, self.order = t_arr, t_arr, order


class Buffer(simpy.Store):
    """A SimPy store that integrates its level over time and stamps when a part moved in."""

    def __init__(self, env, capacity, on_change):
        super().__init__(env, capacity)
        self.on_change = on_change  # called before every change of the level
        self.acc, self.last = 0.0, 0.0

    def touch(self):
        now = self._env.now
        self.acc += len(self.items) * (now - self.last)
        self.last = now

    def _do_put(self, event):
        if len(self.items) < self._capacity:
            self.touch()
            self.on_change()
            event.item.t_in = self._env.now
            self.items.append(event.item)
            event.succeed()

    def _do_get(self, event):
        if self.items:
            self.touch()
            self.on_change()
            event.succeed(self.items.pop(0))


class Machine:
    __slots__ = ("st", "k", "proc", "fail", "process", "state", "wake", "broken", "busy",
                 "holding", "cat", "ttf_left", "since_setup")

    def __init__(self, st, k, proc_rng, fail_rng):
        self.st, self.k, self.proc, self.fail = st, k, proc_rng, fail_rng
        self.process = self.wake = None
        self.state = "wait"
        self.broken = self.busy = self.holding = False
        self.cat = STARVED
        self.ttf_left = math.inf
        self.since_setup = 0


class Station:
    def __init__(self, spec):
        self.spec = spec
        self.machines = []
        self.acc = [0.0] * NCAT
        self.count = [0] * NCAT
        self.last = 0.0
        self.wait_sum = 0.0
        self.started = self.waited = self.parts = 0
        self.mat_wait = False


class Replication:
    def __init__(self, plant, seed, rep, horizon, warmup):
        self.p, self.horizon, self.warmup = plant, horizon, warmup
        self.env = env = simpy.Environment()
        self.events = 0
        self.wip = 0.0
        self.acc_wip = self.acc_backlog = self.last_glob = 0.0
        self.completed = self.orders = self.lost = self.late = self.ontime = self.scrap = 0
        self.lead_sum = 0.0
        self.on_shift = True

        def rng(source):
            return random.Random(f"{seed}:{rep}:{source}")

        self.dem_rng = rng("demand")
        self.backlog = Buffer(env, math.inf, self.glob_touch)
        self.buffers = {n: Buffer(env, b["capacity"], lambda: None)
                        for n, b in plant.buffers.items()}
        for n, b in plant.buffers.items():
            self.buffers[n].items.extend(Part(0.0) for _ in range(b["initial"]))
            self.wip += b["initial"]
        self.stocks = {n: {"level": v, "on_order": 0.0, "acc": 0.0, "acc_out": 0.0, "last": 0.0,
                           "min": v, "waiting": 0, "outs": 0, "users": []}
                       for n, v in plant.stocks.items()}
        self.stations = {}
        for name, spec in plant.stations.items():
            st = self.stations[name] = Station(spec)
            for k in range(spec["machines"]):
                m = Machine(st, k, rng(f"proc:{name}:{k}"), rng(f"fail:{name}:{k}"))
                st.machines.append(m)
                st.count[STARVED] += 1
            if spec["stock"] is not None:
                self.stocks[spec["stock"]]["users"].append(st)
        self.sup_rng = {n: rng(f"supplier:{n}") for n in plant.suppliers}

    # ---- statistics

    def glob_touch(self):
        now = self.env.now
        dt = now - self.last_glob
        self.acc_wip += self.wip * dt
        self.acc_backlog += len(self.backlog.items) * dt
        self.last_glob = now

    def st_touch(self, st):
        now = self.env.now
        dt = now - st.last
        if dt > 0:
            for c in range(NCAT):
                st.acc[c] += st.count[c] * dt
            st.last = now

    def stock_touch(self, s):
        now = self.env.now
        dt = now - s["last"]
        s["acc"] += s["level"] * dt
        if s["waiting"]:
            s["acc_out"] += dt
        s["last"] = now

    def may_work(self, st):
        return self.on_shift or not st.spec["shifts"]

    def account(self, m):
        if m.broken:
            cat = DOWN
        elif m.busy:
            cat = BUSY
        elif m.holding:
            cat = BLOCKED
        elif not self.may_work(m.st):
            cat = OFF
        else:
            cat = STARVED
        if cat != m.cat:
            st = m.st
            self.st_touch(st)
            st.count[m.cat] -= 1
            st.count[cat] += 1
            m.cat = cat

    def set_mat_wait(self, st, waiting):
        if st.mat_wait == waiting:
            return
        s = self.stocks[st.spec["stock"]]
        self.stock_touch(s)
        st.mat_wait = waiting
        if waiting:
            if s["waiting"] == 0:
                s["outs"] += 1
            s["waiting"] += 1
        else:
            s["waiting"] -= 1

    @staticmethod
    def wake(m):
        if m.wake is not None and not m.wake.triggered:
            m.wake.succeed()

    # ---- machines

    def has_material(self, st):
        k = st.spec["stock"]
        return k is None or self.stocks[k]["level"] + 1e-9 >= st.spec["consume"]

    def wait_wake(self, m, state):
        """Sleeps until a repair, a shift start or a delivery wakes the machine."""
        m.state = state
        m.wake = self.env.event()
        try:
            yield m.wake
        except simpy.Interrupt:
            pass

    def take(self, m, store):
        """The next part of the station's input, or None when a failure or the shift's end
        interrupted the wait."""
        if store is None:  # the source: a part is released now
            self.glob_touch()
            self.wip += 1
            return Part(self.env.now)
        m.state = "get"
        req = store.get()
        try:
            part = yield req
        except simpy.Interrupt:
            if not req.triggered:
                req.cancel()
                return None
            part = req.value  # it came at the very instant of the interrupt: keep it
        if store is self.backlog:
            self.glob_touch()
            self.wip += 1
        return part

    def consume(self, m):
        st = m.st
        name = st.spec["stock"]
        s = self.stocks[name]
        while s["level"] + 1e-9 < st.spec["consume"]:  # another machine took the last units
            self.set_mat_wait(st, True)
            yield from self.wait_wake(m, "wait")
        self.set_mat_wait(st, False)
        self.stock_touch(s)
        s["level"] -= st.spec["consume"]
        s["min"] = min(s["min"], s["level"])
        self.reorder_check(name)

    def busy_failure(self, m):
        spec = m.st.spec
        self.events += 1  # the failure
        m.broken, m.ttf_left, m.state = True, 0.0, "repair"
        self.account(m)
        yield self.env.timeout(spec["ttr"].draw(m.fail))
        self.events += 1  # the repair
        m.broken = False
        m.ttf_left = spec["ttf"].draw(m.fail)
        self.account(m)

    def process(self, m, t):
        """Processes for t seconds; failures pre-empt and the rest resumes after the repair."""
        env, basis = self.env, m.st.spec["basis"]
        remaining = t
        while remaining > 0:
            fail_first = basis == FAIL_BUSY and m.ttf_left < remaining
            run = m.ttf_left if fail_first else remaining
            start = env.now
            m.state = "run"
            try:
                yield env.timeout(run)
            except simpy.Interrupt:  # a failure on the clock
                remaining -= env.now - start
                while m.broken:
                    yield from self.wait_wake(m, "down")
                continue
            remaining -= run
            if basis == FAIL_BUSY:
                m.ttf_left -= run
            if fail_first:
                yield from self.busy_failure(m)

    def output(self, m, part):
        spec, st = m.st.spec, m.st
        self.events += 1  # the completion
        m.busy = False
        st.parts += 1
        if spec["scrap"] > 0 and m.proc.random() < spec["scrap"]:
            self.glob_touch()
            self.wip -= 1
            self.scrap += 1
            self.account(m)
            return
        out = spec["outputs"][0][0]
        if len(spec["outputs"]) > 1:
            u, acc = m.proc.random(), 0.0
            for out, share in spec["outputs"]:
                acc += share
                if u < acc:
                    break
        if out == SINK:
            self.sink(part)
            self.account(m)
            return
        m.holding, m.state = True, "put"
        self.account(m)
        yield self.buffers[out].put(part)  # blocking after service
        m.holding = False
        self.account(m)

    def sink(self, part):
        self.glob_touch()
        self.wip -= 1
        self.completed += 1
        lead = self.env.now - part.t_arr
        self.lead_sum += lead
        due = self.p.demand["due"] if self.p.demand else 0.0
        if part.order and due > 0:
            if lead > due:
                self.late += 1
            else:
                self.ontime += 1

    def machine(self, m):
        st, spec = m.st, m.st.spec
        inp = spec["input"]
        store = None if inp == SOURCE else self.backlog if inp == DEMAND else self.buffers[inp]
        while True:
            while m.broken or not self.may_work(st) or not self.has_material(st):
                if not m.broken and self.may_work(st) and (store is None or store.items):
                    self.set_mat_wait(st, True)
                yield from self.wait_wake(m, "wait")
            part = yield from self.take(m, store)
            if part is None:
                continue
            while m.broken:
                yield from self.wait_wake(m, "down")
            if spec["stock"] is not None:
                yield from self.consume(m)
            wait = self.env.now - part.t_in
            st.wait_sum += wait
            st.started += 1
            st.waited += wait > 0
            m.busy = True
            self.account(m)
            t = spec["cycle"].draw(m.proc)
            if spec["setup_every"]:
                m.since_setup += 1
                if m.since_setup >= spec["setup_every"]:
                    m.since_setup = 0
                    t += spec["setup"].draw(m.proc)
            yield from self.process(m, t)
            yield from self.output(m, part)

    def time_failures(self, m):
        spec, env = m.st.spec, self.env
        while True:
            yield env.timeout(spec["ttf"].draw(m.fail))
            self.events += 1
            m.broken = True
            self.account(m)
            if m.state in ("run", "get"):
                m.state = "interrupted"
                m.process.interrupt()
            yield env.timeout(spec["ttr"].draw(m.fail))
            self.events += 1
            m.broken = False
            self.account(m)
            self.wake(m)

    # ---- demand, supply, shifts, warm-up

    def arrivals(self):
        d, env, r = self.p.demand, self.env, self.dem_rng
        while True:
            if "rate" in d:
                yield env.timeout(r.expovariate(d["rate"]))
            else:
                yield env.timeout(d["interarrival"].draw(r))
            self.events += 1
            self.orders += 1
            if len(self.backlog.items) >= d["cap"] and d["lose"]:
                self.lost += 1
            else:
                self.backlog.put(Part(env.now, order=True))

    def supply_delay(self, name):
        sup, r = self.p.suppliers[name], self.sup_rng[name]
        d = sup["lead"].draw(r)
        if sup["reliability"] < 1 and r.random() >= sup["reliability"]:
            d += sup["late"].draw(r)
        return d

    def delivery(self, name, qty, delay):
        yield self.env.timeout(delay)
        self.events += 1
        sup = self.p.suppliers[name]
        s = self.stocks[sup["stock"]]
        self.stock_touch(s)
        s["level"] += qty
        if not sup["periodic"]:
            s["on_order"] -= qty
        for st in s["users"]:
            for m in st.machines:
                self.wake(m)
        self.reorder_check(sup["stock"])

    def reorder_check(self, stock):
        s = self.stocks[stock]
        for name, sup in self.p.suppliers.items():
            if sup["stock"] != stock or sup["periodic"]:
                continue
            for _ in range(1000):
                if s["level"] + s["on_order"] > sup["reorder"]:
                    break
                s["on_order"] += sup["lot"]
                self.env.process(self.delivery(name, sup["lot"], self.supply_delay(name)))

    def periodic(self, name):
        sup = self.p.suppliers[name]
        yield self.env.timeout(sup["first"])
        while True:
            self.events += 1
            self.env.process(self.delivery(name, sup["lot"], self.supply_delay(name)))
            yield self.env.timeout(sup["period"])

    def shift_state(self, now):
        """The engine's shift_state with epoch 0: on or off at now, and the next change."""
        sh = self.p.shifts
        period = sh["period"]
        base = math.floor(now / period) * period
        off = now - base
        nxt = base + period + min(a for a, _ in sh["windows"])
        on = False
        for a, b in sh["windows"]:
            if a <= off < b:
                on, nxt = True, base + b
                break
            if off < a and base + a < nxt:
                nxt = base + a
        return on, (nxt if nxt > now else now + 1e-6)

    def shifts(self, nxt):
        env = self.env
        while True:
            yield env.timeout(nxt - env.now)
            self.events += 1
            on, nxt = self.shift_state(env.now)
            if on == self.on_shift:
                continue
            self.on_shift = on
            for st in self.stations.values():
                if not st.spec["shifts"]:
                    continue
                for m in st.machines:
                    self.account(m)
                    if on:
                        self.wake(m)
                    elif m.state == "get":  # stop waiting for a part: none starts off shift
                        m.state = "interrupted"
                        m.process.interrupt()

    def restart_stats(self):
        yield self.env.timeout(self.warmup)
        self.events += 1
        self.glob_touch()
        self.acc_wip = self.acc_backlog = self.lead_sum = 0.0
        self.completed = self.orders = self.lost = self.late = self.ontime = self.scrap = 0
        for st in self.stations.values():
            self.st_touch(st)
            st.acc = [0.0] * NCAT
            st.wait_sum = 0.0
            st.started = st.waited = st.parts = 0
        for b in list(self.buffers.values()) + [self.backlog]:
            b.touch()
            b.acc = 0.0
        for s in self.stocks.values():
            self.stock_touch(s)
            s["acc"] = s["acc_out"] = 0.0
            s["outs"] = 1 if s["waiting"] else 0
            s["min"] = s["level"]

    # ---- the run

    def start(self):
        env, p = self.env, self.p
        if p.shifts:
            self.on_shift, nxt = self.shift_state(0.0)
            env.process(self.shifts(nxt))
        for st in self.stations.values():
            for m in st.machines:
                self.account(m)
                basis = st.spec["basis"]
                if basis == FAIL_TIME:
                    env.process(self.time_failures(m))
                elif basis == FAIL_BUSY:
                    m.ttf_left = st.spec["ttf"].draw(m.fail)
        for name, sup in p.suppliers.items():
            if sup["periodic"]:
                env.process(self.periodic(name))
        for name in self.stocks:
            self.reorder_check(name)
        if p.demand:
            env.process(self.arrivals())
        if self.warmup > 0:
            env.process(self.restart_stats())
        for st in self.stations.values():
            for m in st.machines:
                m.process = env.process(self.machine(m))

    def run(self):
        """Runs to the horizon; returns the KPIs (name -> value) and SimPy's events processed."""
        self.start()
        self.env.run(until=self.horizon)
        # SimPy numbers every event it schedules; those still queued were not processed, and
        # one is run()'s own stop event.
        simpy_events = next(self.env._eid) - len(self.env._queue) - 1
        return self.results(), simpy_events

    def results(self):
        T = self.horizon - self.warmup
        self.glob_touch()
        nan = float("nan")

        def ratio(a, b):
            return a / b if b > 0 else nan

        k = {"throughput": self.completed / T * 3600, "lead_time": ratio(self.lead_sum,
             self.completed) / 3600, "wip": self.acc_wip / T, "orders": self.orders,
             "orders_lost": self.lost, "lost_fraction": ratio(self.lost, self.orders),
             "orders_late": self.late, "service_level": ratio(self.ontime, self.ontime + self.late),
             "backlog": self.acc_backlog / T, "backlog_end": len(self.backlog.items),
             "scrap": self.scrap}
        for name, st in self.stations.items():
            self.st_touch(st)
            mt = T * len(st.machines)
            pre = f"station.{name}."
            k[pre + "utilisation"] = st.acc[BUSY] / mt
            k[pre + "blocked"] = st.acc[BLOCKED] / mt
            k[pre + "starved"] = st.acc[STARVED] / mt
            k[pre + "down"] = st.acc[DOWN] / mt
            k[pre + "downtime"] = st.acc[DOWN] / 3600
            k[pre + "wait"] = ratio(st.wait_sum, st.started) / 3600
            k[pre + "wait_probability"] = ratio(st.waited, st.started)
            k[pre + "parts"] = st.parts
            k[pre + "off"] = st.acc[OFF] / mt
        for name, b in self.buffers.items():
            b.touch()
            k[f"buffer.{name}.level"] = b.acc / T
        for name, s in self.stocks.items():
            self.stock_touch(s)
            k[f"stock.{name}.level"] = s["acc"] / T
            k[f"stock.{name}.stockout"] = s["acc_out"] / T
            k[f"stock.{name}.stockouts"] = s["outs"]
            k[f"stock.{name}.min_level"] = s["min"]
        return k


# ---- replications and intervals -------------------------------------------------------------

_UNIT_OF = {"throughput": "parts/h", "lead_time": "h", "wip": "parts", "orders": "orders",
            "orders_lost": "orders", "lost_fraction": "1", "orders_late": "orders",
            "service_level": "1", "backlog": "orders", "backlog_end": "orders", "scrap": "parts",
            "utilisation": "1", "blocked": "1", "starved": "1", "down": "1", "downtime": "h",
            "wait": "h", "wait_probability": "1", "parts": "parts", "off": "1", "level": "units",
            "stockout": "1", "stockouts": "episodes", "min_level": "units"}


def unit(name):
    if name.startswith("buffer."):
        return "parts"
    return _UNIT_OF[name.rsplit(".", 1)[-1]]


def t975(df):
    """Two-sided 95 % quantile of Student's t (the engine's table and expansion)."""
    table = [0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
             2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]
    if df < len(table):
        return table[df]
    z, n = 1.959963984540054, float(df)
    return (z + (z ** 3 + z) / (4 * n) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * n * n)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * n ** 3))


def estimate(xs):
    xs = [x for x in xs if not math.isnan(x)]
    n = len(xs)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = sum(xs) / n
    h = t975(n - 1) * math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1) / n) if n > 1 else 0
    return {"mean": mean, "lo": mean - h, "hi": mean + h, "n": n}


def load_plant(path, sets):
    with open(path, encoding="utf-8") as f:
        plant = Plant(json.load(f))
    for s in sets:
        key, value = s.split("=", 1)
        plant.set(key, float(value))
    return plant


_worker_plant = {}


def replicate(task):
    """One replication in a worker process: (KPIs, model events, SimPy events, seconds)."""
    path, sets, seed, rep, horizon, warmup = task
    key = (path, tuple(sets))
    if key not in _worker_plant:
        _worker_plant[key] = load_plant(path, sets)
    t0 = time.perf_counter()
    r = Replication(_worker_plant[key], seed, rep, horizon, warmup)
    kpis, simpy_events = r.run()
    return kpis, r.events, simpy_events, time.perf_counter() - t0


def run_kpis(a):
    tasks = [(a.model, a.set, a.seed, rep, a.horizon, a.warmup) for rep in range(a.replications)]
    t0 = time.perf_counter()
    if a.jobs > 1:
        with multiprocessing.Pool(a.jobs) as pool:
            out = pool.map(replicate, tasks, chunksize=1)
    else:
        out = [replicate(t) for t in tasks]
    wall = time.perf_counter() - t0
    names = list(out[0][0])
    kpis = [dict(name=n, unit=unit(n), **estimate([float(o[0][n]) for o in out])) for n in names]
    model_events = sum(o[1] for o in out)
    doc = {"model": a.model, "simulator": f"simpy {simpy.__version__}", "horizon": a.horizon,
           "warmup": a.warmup, "replications": a.replications, "seed": a.seed,
           "events": model_events, "simpy_events": sum(o[2] for o in out),
           "cpu_s": sum(o[3] for o in out), "wall_s": wall, "sets": a.set, "kpis": kpis}
    json.dump(doc, sys.stdout, indent=1)
    print()


def run_events(a):
    """One process, replications 0, 1, ... for about a.seconds (at most a.replications)."""
    plant = load_plant(a.model, a.set)
    model_events = simpy_events = reps = 0
    t0 = time.perf_counter()
    while reps < a.replications and time.perf_counter() - t0 < a.seconds:
        r = Replication(plant, a.seed, reps, a.horizon, a.warmup)
        _, steps = r.run()
        model_events += r.events
        simpy_events += steps
        reps += 1
    el = time.perf_counter() - t0
    print(f"model {a.model}: horizon {a.horizon:g} s, {reps} replications in {el:.3f} s "
          f"on one core (simpy {simpy.__version__}, python {sys.version.split()[0]})")
    print(f"events: {model_events} model events ({model_events / max(reps, 1):.1f} per "
          f"replication), {simpy_events} SimPy events")
    print(f"model events/s/core: {model_events / el:.6g} (counted as the engine counts: "
          "arrivals, completions, failures, repairs, deliveries, periodic orders, shifts, "
          "warm-up)")
    print(f"simpy events/s/core: {simpy_events / el:.6g} (events SimPy's scheduler processed)")


def textbook_run(plant, seed, rep, horizon):
    """The textbook SimPy queue (a Resource, a process per order, no statistics) for a plant
    that is one station fed by Poisson demand: the least work SimPy can do for that model."""
    env = simpy.Environment()
    st = next(iter(plant.stations.values()))
    r_dem, r_proc = random.Random(f"{seed}:{rep}:demand"), random.Random(f"{seed}:{rep}:proc")
    server = simpy.Resource(env, st["machines"])
    events = [0]

    def order():
        with server.request() as req:
            yield req
            yield env.timeout(st["cycle"].draw(r_proc))
        events[0] += 1

    def arrivals():
        while True:
            yield env.timeout(r_dem.expovariate(plant.demand["rate"]))
            events[0] += 1
            env.process(order())

    env.process(arrivals())
    env.run(until=horizon)
    return events[0]


def run_textbook(a):
    plant = load_plant(a.model, a.set)
    (st,) = plant.stations.values()
    if (st["input"], st["outputs"][0][0], st["basis"]) != (DEMAND, SINK, FAIL_NONE) or \
            "rate" not in (plant.demand or {}):
        raise ValueError("--textbook needs one station without failures fed by Poisson demand")
    events = reps = 0
    t0 = time.perf_counter()
    while reps < a.replications and time.perf_counter() - t0 < a.seconds:
        events += textbook_run(plant, a.seed, reps, a.horizon)
        reps += 1
    el = time.perf_counter() - t0
    print(f"model {a.model}: textbook SimPy queue (Resource, no statistics), {reps} "
          f"replications in {el:.3f} s on one core")
    print(f"model events/s/core: {events / el:.6g} (arrivals and completions)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="plant model JSON")
    ap.add_argument("--horizon", type=duration, default=86400.0, help="duration (1d)")
    ap.add_argument("--warmup", type=duration, default=0.0, help="duration (0)")
    ap.add_argument("--replications", type=int, default=20,
                    help="replications (events mode: the most it runs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes for replications (kpis mode)")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="change a parameter: station.S.cycle_time|mtbf|mttr (mean, s), "
                         "station.S.machines, buffer.B.capacity")
    ap.add_argument("--events", action="store_true",
                    help="time replications on one core instead of printing KPIs")
    ap.add_argument("--textbook", action="store_true",
                    help="events mode for a one-station queue written as SimPy's textbook "
                         "example (no statistics): a lower bound of SimPy's cost")
    ap.add_argument("--seconds", type=float, default=5.0, help="events mode: run time (5)")
    a = ap.parse_args()
    if not 0 <= a.warmup < a.horizon or a.replications < 1:
        ap.error("need 0 <= warmup < horizon and replications >= 1")
    try:
        if a.textbook:
            run_textbook(a)
        elif a.events:
            run_events(a)
        else:
            run_kpis(a)
    except (ValueError, KeyError, OSError) as e:
        print(f"simpy_line.py: {a.model}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
