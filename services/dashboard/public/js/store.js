// SPDX-License-Identifier: Apache-2.0
// The dashboard's in-memory twin: assets with bounded per-signal history, forecasts, open alert episodes, services and health.
(function (T) {
  "use strict";

  const MAX_POINTS = 2000; // observed points kept per signal
  const MAX_ALERTS = 300; // alerts kept in the feed
  const LEVELS = ["OK", "WARN", "ALARM"];

  const store = {
    assets: new Map(),
    alerts: [],
    services: new Map(),
    plant: null,
    decodeErrors: 0,
    lastDecodeError: "",
    renderErrors: 0, // a drawing step that threw (the page goes on with the next)
    lastRenderError: "",
    dirty: { assets: new Set(), alerts: false, services: false, errors: false },
  };

  function plantAsset(id) {
    const p = store.plant;
    return (p && p.assets && p.assets[id]) || null;
  }

  function newAsset(id) {
    const meta = plantAsset(id) || {};
    return {
      id,
      kind: meta.kind || "",
      description: meta.description || "",
      station: meta.station || "",
      ts_ms: 0,
      ingest_ms: 0,
      received_ms: 0,
      updates: 0,
      values: new Map(),
      series: new Map(),
      forecasts: new Map(),
      basis_ts_ms: 0,
      episodes: new Map(),
    };
  }

  function asset(id) {
    let a = store.assets.get(id);
    if (!a) {
      a = newAsset(id);
      store.assets.set(id, a);
    }
    return a;
  }

  // Appends one observation; a point not newer than the last (a retained state delivered
  // again after a reconnect) is ignored so the series stays sorted for the charts.
  function pushPoint(a, signal, ts, value) {
    let s = a.series.get(signal);
    if (!s) {
      s = { t: [], v: [] };
      a.series.set(signal, s);
    }
    const n = s.t.length;
    if (n && ts <= s.t[n - 1]) return;
    s.t.push(ts);
    s.v.push(value);
    if (s.t.length > MAX_POINTS + 200) {
      s.t.splice(0, s.t.length - MAX_POINTS);
      s.v.splice(0, s.v.length - MAX_POINTS);
    }
  }

  function applyState(st) {
    if (!st.asset_id) return;
    const a = asset(st.asset_id);
    const changed = new Set(st.changed || []);
    // A device time the page cannot believe (a payload anyone may write) would stop the
    // charts (newer points only): the ingest time or the arrival stands in for it.
    const { plausibleMs } = T.fmt;
    const ts = plausibleMs(st.ts_ms) ? st.ts_ms : plausibleMs(st.ingest_ms) ? st.ingest_ms : Date.now();
    for (const smp of st.samples || []) {
      a.values.set(smp.signal, smp.value);
      if (changed.size === 0 || changed.has(smp.signal)) pushPoint(a, smp.signal, ts, smp.value);
    }
    a.ts_ms = Math.max(a.ts_ms, ts);
    a.ingest_ms = plausibleMs(st.ingest_ms) ? st.ingest_ms : a.ingest_ms;
    a.received_ms = Date.now();
    a.updates += 1;
    store.dirty.assets.add(a.id);
  }

  function applyPrediction(p) {
    if (!p.asset_id) return;
    if (p.basis_ts_ms && !T.fmt.plausibleMs(p.basis_ts_ms)) return; // would hide every later one
    const a = asset(p.asset_id);
    if (p.basis_ts_ms && p.basis_ts_ms < a.basis_ts_ms) return; // an older one, retained
    a.basis_ts_ms = p.basis_ts_ms || a.basis_ts_ms;
    for (const f of p.forecasts || []) a.forecasts.set(f.signal, f);
    store.dirty.assets.add(a.id);
  }

  // The kind of episode a CLEARED ends. The wire Alert does not say; twin-predictor's
  // messages do ("anomaly over…", "back inside the limits…", "…no longer forecast…").
  function clearedKind(msg) {
    const m = (msg || "").toLowerCase();
    if (m.includes("anomaly")) return "ANOMALY";
    if (m.includes("no longer forecast")) return "THRESHOLD_FORECAST";
    if (m.includes("inside the limits")) return "THRESHOLD_BREACH";
    return null;
  }

  function applyAlert(al) {
    if (!al.asset_id) return;
    const a = asset(al.asset_id);
    al.received_ms = Date.now();
    store.alerts.unshift(al);
    if (store.alerts.length > MAX_ALERTS) store.alerts.length = MAX_ALERTS;
    if (al.kind === "CLEARED") {
      const kind = clearedKind(al.message);
      for (const key of [...a.episodes.keys()]) {
        const [sig, k] = key.split("\u0000");
        if (sig === al.signal && (kind === null || k === kind)) a.episodes.delete(key);
      }
    } else {
      a.episodes.set(`${al.signal}\u0000${al.kind}`, al);
    }
    store.dirty.alerts = true;
    store.dirty.assets.add(a.id);
  }

  function applyStatus(service, instance, text) {
    store.services.set(`${service}/${instance}`, {
      service,
      instance,
      online: text === "online",
      text,
      since_ms: Date.now(),
    });
    store.dirty.services = true;
  }

  function decodeError(topic, err) {
    store.decodeErrors += 1;
    store.lastDecodeError = `${topic}: ${err && err.message ? err.message : err}`;
    store.dirty.errors = true;
  }

  function renderError(step, err) {
    store.renderErrors += 1;
    store.lastRenderError = `${step}: ${err && err.message ? err.message : err}`;
    store.dirty.errors = true;
  }

  // {unit, warn: {above, below}, alarm: {above, below}} of a signal from plant.json, or {}.
  function limits(a, signal) {
    const p = store.plant;
    const kind = p && p.asset_kinds && a.kind ? p.asset_kinds[a.kind] : null;
    return (kind && kind.signals && kind.signals[signal]) || {};
  }

  // The asset's signals in the plant model's order (as the kind lists them), then any
  // others alphabetically.
  function signalsOf(a) {
    const p = store.plant;
    const kind = p && p.asset_kinds && a.kind ? p.asset_kinds[a.kind] : null;
    const known = Object.keys((kind && kind.signals) || {});
    const seen = new Set([...a.values.keys(), ...a.forecasts.keys()]);
    const rest = [...seen].filter((s) => !known.includes(s)).sort();
    return [...known.filter((s) => seen.has(s)), ...rest];
  }

  function beyond(lim, x) {
    return !!lim && ((lim.above !== undefined && x > lim.above) ||
      (lim.below !== undefined && x < lim.below));
  }

  // 0 OK, 1 WARN, 2 ALARM for one signal: its open alert episodes and its current value
  // against the plant model's limits (when plant.json is there).
  function signalLevel(a, signal) {
    let lvl = 0;
    for (const [key, al] of a.episodes) {
      if (key.split("\u0000")[0] !== signal) continue;
      if (al.kind === "THRESHOLD_FORECAST") lvl = Math.max(lvl, 1);
      else lvl = Math.max(lvl, al.severity === "CRITICAL" ? 2 : 1);
    }
    const x = a.values.get(signal);
    if (x !== undefined) {
      const lim = limits(a, signal);
      if (beyond(lim.alarm, x)) lvl = 2;
      else if (beyond(lim.warn, x)) lvl = Math.max(lvl, 1);
    }
    return lvl;
  }

  function health(a) {
    let lvl = 0;
    const signals = new Set([...a.values.keys()]);
    for (const key of a.episodes.keys()) signals.add(key.split("\u0000")[0]);
    for (const s of signals) lvl = Math.max(lvl, signalLevel(a, s));
    return LEVELS[lvl];
  }

  function setPlant(p) {
    store.plant = p;
    for (const id of Object.keys((p && p.assets) || {})) asset(id);
    for (const a of store.assets.values()) {
      const meta = plantAsset(a.id) || {};
      a.kind = meta.kind || a.kind;
      a.description = meta.description || a.description;
      a.station = meta.station || a.station;
    }
  }

  Object.assign(store, {
    MAX_POINTS, LEVELS, applyState, applyPrediction, applyAlert, applyStatus, decodeError, renderError,
    limits, signalLevel, health, setPlant, signalsOf,
  });
  T.store = store;
})((window.Twin = window.Twin || {}));
