// SPDX-License-Identifier: Apache-2.0
// The dashboard's start: loads config, plant and schema, connects, routes each topic to its decoder and redraws what changed four times a second.
(function (T) {
  "use strict";

  const { el } = T.fmt;
  const store = T.store;
  const KNOWN_SERVICES = ["ingest", "predictor", "scenario"];
  const FULL_REDRAW_MS = 2000; // tiles' "updated … ago" and stale marks
  let cfg = null;
  let types = null;
  let lastFull = 0;
  let autoSelected = false;

  function setConn(state, detail) {
    const c = document.getElementById("conn");
    const words = { online: "connected", connecting: "connecting…", reconnecting: "reconnecting…",
      offline: "offline", refused: "refused", error: "error" };
    c.dataset.state = state;
    c.textContent = words[state] || state;
    c.title = detail || "";
  }

  function subscribe(client) {
    const r = cfg.topicRoot;
    client.subscribe([`${r}/asset/+/state`, `${r}/asset/+/prediction`, `${r}/asset/+/alert`,
      `${r}/asset/+/recommendation`, `${r}/asset/+/command`, `${r}/service/+/+/status`],
    { qos: 1 }, (err) => {
      if (err) setConn("error", `subscribe: ${err.message}`);
    });
  }

  function route(parts, payload, packet) {
    if (parts[0] === "asset" && parts.length === 3) {
      const [, id, what] = parts;
      if (what === "state") {
        const m = T.net.decode(types.TwinState, payload);
        store.applyState(Object.assign(m, { asset_id: m.asset_id || id }));
      } else if (what === "prediction") {
        const m = T.net.decode(types.Prediction, payload);
        store.applyPrediction(Object.assign(m, { asset_id: m.asset_id || id }));
      } else if (what === "alert") {
        const m = T.net.decode(types.Alert, payload);
        store.applyAlert(Object.assign(m, { asset_id: m.asset_id || id }));
      } else if (what === "recommendation") {
        const m = T.net.decode(types.Recommendation, payload);
        if (m.asset_id === id) T.decisions.onRecommendation(m);
      } else if (what === "command") {
        const m = T.net.decode(types.Command, payload);
        if (m.asset_id === id) T.decisions.onCommand(m);
      }
    } else if (parts[0] === "service" && parts.length === 4) {
      store.applyStatus(parts[1], parts[2], new TextDecoder().decode(payload).trim());
    } else if (parts[0] === "scenario" && parts.length === 3) {
      T.scenario.onMessage(parts[1], parts[2], payload, packet);
    }
  }

  // Every message goes through here; one that cannot be decoded is counted and shown in
  // the header, never allowed to stop the page.
  function onMessage(topic, payload, packet) {
    if (!payload || payload.length === 0) return; // a retained message being cleared
    const prefix = `${cfg.topicRoot}/`;
    if (!topic.startsWith(prefix)) return;
    try {
      route(topic.slice(prefix.length).split("/"), payload, packet);
    } catch (err) {
      store.decodeError(topic, err);
    }
  }

  function renderServices() {
    const groups = new Map(KNOWN_SERVICES.map((s) => [s, []]));
    for (const s of store.services.values()) {
      if (!groups.has(s.service)) groups.set(s.service, []);
      groups.get(s.service).push(s);
    }
    const badges = [];
    for (const [name, list] of groups) {
      const online = list.filter((s) => s.online).length;
      const state = list.length === 0 ? "unknown" : online > 0 ? "online" : "offline";
      const title = list.length ? list.map((s) => `${s.instance}: ${s.text}`).join("\n") : "not heard of";
      badges.push(el("span", { class: "svc", dataset: { service: name, state }, title },
        el("i", { class: "dot" }), name, list.length > 1 ? ` ${online}/${list.length}` : ""));
    }
    document.getElementById("services").replaceChildren(...badges);
  }

  function renderErrors() {
    const e = document.getElementById("decode-errors");
    e.hidden = store.decodeErrors === 0 && store.renderErrors === 0;
    const parts = [];
    if (store.decodeErrors) parts.push(`${store.decodeErrors} undecodable`);
    if (store.renderErrors) parts.push(`${store.renderErrors} drawing error${store.renderErrors === 1 ? "" : "s"}`);
    e.textContent = parts.join(" · ");
    e.dataset.renderErrors = String(store.renderErrors);
    e.title = [store.lastDecodeError && `last undecodable: ${store.lastDecodeError}`,
      store.lastRenderError && `last drawing error: ${store.lastRenderError}`].filter(Boolean).join("\n");
  }

  function select(id) {
    T.assets.select(id);
    T.charts.show(id);
    if (location.hash !== `#${id}`) history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  }

  function autoSelect() {
    if (autoSelected || T.charts.assetId) return;
    const wanted = decodeURIComponent(location.hash.slice(1));
    const a = store.assets.get(wanted) || [...store.assets.values()].find((x) => x.updates > 0);
    if (a && a.updates > 0) {
      autoSelected = true;
      select(a.id);
    }
  }

  // Runs one drawing step; one that throws (a payload nobody foresaw) is counted, shown in
  // the header and logged, and the other steps and later ticks still run.
  function step(name, fn) {
    try {
      fn();
    } catch (err) {
      store.renderError(name, err);
      console.warn(`dashboard: drawing ${name} failed:`, err);
    }
  }

  function tick() {
    const d = store.dirty;
    const now = Date.now();
    const alerts = d.alerts, services = d.services;
    d.alerts = d.services = false; // reset first: a step that throws must not stick them
    if (d.assets.size || now - lastFull > FULL_REDRAW_MS) {
      const full = now - lastFull > FULL_REDRAW_MS;
      const changed = [...d.assets];
      d.assets.clear();
      if (full) lastFull = now;
      step("assets", () => T.assets.render(full ? null : changed));
      step("selection", autoSelect);
      if (T.charts.assetId && (changed.includes(T.charts.assetId) || full)) step("charts", () => T.charts.update());
    }
    if (alerts) step("alerts", () => T.alerts.render());
    if (T.decisions.state.dirty) step("decisions", () => T.decisions.render());
    if (services) step("services", renderServices);
    if (d.errors) {
      d.errors = false;
      step("errors", renderErrors);
    }
  }

  function wireUi() {
    T.assets.onSelect(select);
    T.alerts.onSelect(select);
    T.decisions.onSelect(select);
    document.getElementById("hide-cleared").addEventListener("change", () => T.alerts.render());
    for (const b of document.querySelectorAll("[data-window]")) {
      b.addEventListener("click", () => {
        for (const o of document.querySelectorAll("[data-window]")) o.classList.toggle("on", o === b);
        T.charts.setWindow(Number(b.dataset.window));
      });
    }
    // The charts follow their container's width, whatever changed it (window, layout, fonts).
    let pending = 0;
    new ResizeObserver(() => {
      clearTimeout(pending);
      pending = setTimeout(T.charts.resize, 100);
    }).observe(document.getElementById("charts"));
  }

  async function boot() {
    cfg = await T.net.loadConfig();
    const plant = await T.net.loadJson("plant.json");
    if (plant) {
      store.setPlant(plant);
      document.getElementById("plant-name").textContent = plant.plant ? `plant ${plant.plant}` : "";
    }
    try {
      types = await T.net.loadProto();
    } catch (err) {
      setConn("error", `vendor/twin.proto: ${err.message} (run services/dashboard/vendor.sh)`);
      return;
    }
    wireUi();
    T.scenario.init(types, cfg.topicRoot, plant);
    renderServices();
    T.assets.render(null);
    T.net.client = T.net.connect(cfg, { state: setConn, connected: subscribe, message: onMessage });
    setInterval(tick, 250);
  }

  boot().catch((err) => {
    setConn("error", err.message);
    console.error(err);
  });
})((window.Twin = window.Twin || {}));
