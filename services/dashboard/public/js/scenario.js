// SPDX-License-Identifier: Apache-2.0
// The what-if panel: builds a ScenarioRequest (machine down, supplier late, demand change, maintenance, slow-down), follows its progress and shows baseline vs scenario KPIs with 95 % intervals.
(function (T) {
  "use strict";

  const { el, num, duration, time } = T.fmt;
  const H = 3600000;
  const D = 86400000;
  const NO_ANSWER_MS = 15000;
  // KPIs shown first, in this order; the rest (per station, buffer, stock) behind "all".
  const MAIN_KPIS = ["throughput", "lead_time", "service_level", "orders_late", "backlog_end",
    "wip", "lost_fraction", "scrap"];

  const st = { types: null, root: "twin/v1", run: null, form: null };

  function form() {
    return document.getElementById("scenario-form");
  }

  function kind() {
    return form().elements.kind.value;
  }

  function showKindFields() {
    for (const f of form().querySelectorAll(".fields[data-for]")) f.hidden = f.dataset.for !== kind();
  }

  function fillList(id, values) {
    document.getElementById(id).replaceChildren(...values.map((v) => el("option", { value: v })));
  }

  // Stations, machines and suppliers of plant.json as choices (anything may still be typed).
  function usePlant(plant) {
    if (!plant) return;
    const stations = Object.keys(plant.stations || {});
    const machines = Object.entries(plant.assets || {}).filter(([, a]) => a.station).map(([id]) => id);
    const suppliers = Object.keys(plant.suppliers || {});
    fillList("targets", [...stations, ...machines]);
    fillList("suppliers", suppliers);
    const f = form().elements;
    if (!f.down_target.value && stations.length) f.down_target.value = stations[0];
    for (const name of ["maint_target", "slow_target"])
      if (!f[name].value && (machines.length || stations.length)) f[name].value = machines[0] || stations[0];
    if (!f.supplier.value && suppliers.length) f.supplier.value = suppliers[0];
    shiftHint(plant);
  }

  // The line works in shifts; a disruption while it is off costs nothing, which surprises.
  // Offer the start of the next shift (twin-scenario's reading of the calendar: shifts.js).
  // A calendar the page cannot read gives no hint rather than a wrong one.
  function shiftHint(plant) {
    const hint = document.getElementById("shift-hint");
    const shifts = plant.shifts;
    const next = shifts ? T.shifts.nextShift(shifts, Date.now()) : null;
    if (!next || next.inside) {
      hint.hidden = true;
      return;
    }
    const hours = Math.ceil((next.waitS / 3600) * 2) / 2;
    const wins = shifts.windows.map((w) => w.map((x) => (typeof x === "number" ? `${x} s` : x)).join("–"));
    const when = next.period === 86400 ? "UTC" : `into every ${duration(next.period * 1000)}`;
    hint.replaceChildren(`The line is off shift now (shifts ${wins.join(", ")} ${when}). `,
      el("button", { type: "button", class: "link", onclick: () => { form().elements.start_hours.value = hours; } },
        `start in ${hours} h`), " to hit working time.");
    hint.hidden = false;
  }

  function number(name) {
    const x = Number(form().elements[name].value);
    if (!Number.isFinite(x)) throw new Error(`${name.replace("_", " ")} is not a number`);
    return x;
  }

  function perturbation(startMs) {
    const f = form().elements;
    switch (kind()) {
      case "MACHINE_DOWN": {
        const target = f.down_target.value.trim();
        if (!target) throw new Error("name a station or a machine");
        const hours = number("down_hours");
        return [{ kind: "MACHINE_DOWN", target, start_ms: startMs, duration_ms: Math.round(hours * H) },
          `${target} down ${hours ? `${hours} h` : "to the end"}`];
      }
      case "SUPPLIER_LATE": {
        const target = f.supplier.value.trim();
        if (!target) throw new Error("name a supplier");
        const days = number("late_days");
        const n = Math.max(1, Math.round(number("late_count")));
        return [{ kind: "SUPPLIER_LATE", target, start_ms: startMs, delay_ms: Math.round(days * D), count: n },
          `${target} ${days} d late`];
      }
      case "MAINTAIN": {
        const target = f.maint_target.value.trim();
        if (!target) throw new Error("name a station or a machine");
        const hours = number("maint_hours");
        if (!(hours > 0)) throw new Error("a maintenance takes some time");
        return [{ kind: "MAINTAIN", target, start_ms: startMs, duration_ms: Math.round(hours * H) },
          `${target} maintained ${duration(Math.round(hours * H))}`];
      }
      case "SLOW": {
        const target = f.slow_target.value.trim();
        if (!target) throw new Error("name a station or a machine");
        const pct = number("slow_pct");
        if (!(pct > 0 && pct <= 100)) throw new Error("speed is a percentage from 1 to 100");
        const hours = number("slow_hours");
        const exponent = number("slow_exponent");
        if (hours < 0 || exponent < 0) throw new Error("hours and wear exponent cannot be negative");
        return [{ kind: "SLOW", target, start_ms: startMs, duration_ms: Math.round(hours * H), factor: pct / 100, value: exponent },
          `${target} at ${pct} % ${hours ? `for ${hours} h` : "to the end"}`];
      }
      default: {
        const pct = number("demand_pct");
        const hours = number("demand_hours");
        return [{ kind: "DEMAND_FACTOR", factor: 1 + pct / 100, start_ms: startMs, duration_ms: Math.round(hours * H) },
          `demand ${pct >= 0 ? "+" : ""}${pct} %`];
      }
    }
  }

  function buildRequest() {
    const startMs = Math.round(number("start_hours") * H);
    if (startMs < 0) throw new Error("the start cannot be in the past");
    const [p, name] = perturbation(startMs);
    const id = `dash-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    return {
      id,
      name: startMs ? `${name}, from +${number("start_hours")} h` : name,
      perturbations: [p],
      horizon_ms: Math.round(number("horizon_days") * D),
      replications: Math.round(number("replications")),
    };
  }

  function setState(text, cls) {
    const s = document.getElementById("scenario-state");
    s.textContent = text;
    s.className = `scenario-state ${cls || ""}`;
  }

  function setProgress(pct) {
    const p = document.getElementById("scenario-progress");
    p.hidden = pct === null;
    if (pct !== null) p.querySelector(".bar").style.width = `${Math.max(0, Math.min(100, pct))}%`;
  }

  function busy(on) {
    document.getElementById("scenario-run").disabled = on;
    document.getElementById("scenario-cancel").hidden = !on;
  }

  function topics(id) {
    return [`${st.root}/scenario/${id}/progress`, `${st.root}/scenario/${id}/result`];
  }

  function submit(ev) {
    ev.preventDefault();
    const client = T.net.client;
    if (!client || !client.connected) return setState("not connected to the broker", "error");
    let req;
    try {
      req = buildRequest();
      T.net.encode(st.types.ScenarioRequest, req); // validates before anything is sent
    } catch (err) {
      return setState(err.message, "error");
    }
    st.run = { id: req.id, req, started: Date.now(), answered: false };
    document.getElementById("scenario-result").replaceChildren();
    busy(true);
    setState(`sending ${req.id}…`);
    setProgress(0);
    // Subscribed before the request goes out, so the first progress cannot be missed.
    client.subscribe(topics(req.id), { qos: 1 }, (err) => {
      if (err) return fail(`subscribe: ${err.message}`);
      client.publish(`${st.root}/scenario/request`, T.net.encode(st.types.ScenarioRequest, req), { qos: 1 }, (perr) => {
        if (perr) return fail(`publish: ${perr.message}`);
        setState(`sent ${req.id}, waiting for twin-scenario…`);
      });
    });
    const run = st.run;
    setTimeout(() => {
      if (st.run === run && !run.answered) {
        setState(`no answer from twin-scenario after ${NO_ANSWER_MS / 1000} s: is it running, and may this user publish to ${st.root}/scenario/request?`, "error");
      }
    }, NO_ANSWER_MS);
  }

  function cancel() {
    if (!st.run || !T.net.client) return;
    const msg = T.net.encode(st.types.ScenarioRequest, { id: st.run.id, cancel: true });
    T.net.client.publish(`${st.root}/scenario/request`, msg, { qos: 1 });
    setState(`cancelling ${st.run.id}…`);
  }

  function fail(text) {
    setState(text, "error");
    finish();
  }

  function finish() {
    if (st.run && T.net.client) T.net.client.unsubscribe(topics(st.run.id));
    st.run = null;
    busy(false);
  }

  function onProgress(p) {
    st.run.answered = true;
    if (p.state === "QUEUED") {
      setState(`queued: ${p.queue_position} request${p.queue_position === 1 ? "" : "s"} ahead`);
      setProgress(0);
      return;
    }
    const eta = p.eta_ms >= 0 ? ` · about ${duration(p.eta_ms)} left` : "";
    setState(`running: ${Math.round(p.percent)} % · ${p.replications_done}/${p.replications_total} replications${eta}`);
    setProgress(p.percent);
  }

  // Topic <root>/scenario/<id>/<what>: progress and results of the run this page started.
  function onMessage(id, what, payload, packet) {
    if (!st.run || id !== st.run.id || packet.retain) return false;
    if (what === "progress") {
      onProgress(T.net.decode(st.types.ScenarioProgress, payload));
    } else if (what === "result") {
      const r = T.net.decode(st.types.ScenarioResult, payload);
      st.run.answered = true;
      setProgress(null);
      showResult(r);
      setState(r.status === "OK" ? `done in ${duration(Date.now() - st.run.started)}` : r.status.toLowerCase(),
        r.status === "OK" ? "ok" : "error");
      finish();
    }
    return true;
  }

  function ci(e) {
    return el("td", { class: "est" }, el("span", { class: "mean" }, num(e.mean)),
      el("span", { class: "ci" }, `[${num(e.lo)}, ${num(e.hi)}]`));
  }

  function diffCell(k) {
    const d = k.difference;
    const sig = d.lo > 0 || d.hi < 0;
    const rel = k.baseline.mean ? ` (${d.mean >= 0 ? "+" : ""}${num((100 * d.mean) / Math.abs(k.baseline.mean), 3)} %)` : "";
    const cell = ci(d);
    cell.classList.add(sig ? (d.mean > 0 ? "up" : "down") : "same");
    cell.title = sig ? "the 95 % interval excludes 0: a real change" : "no clear change (the interval includes 0)";
    cell.querySelector(".mean").textContent = `${sig ? (d.mean > 0 ? "▲ " : "▼ ") : ""}${num(d.mean)}${rel}`;
    return cell;
  }

  // A KPI name that may wrap after its dots and underscores ("station.press.utilisation").
  function kpiName(name) {
    const out = el("span", { class: "kpi-name" });
    for (const part of name.split(/(?<=[._])/)) out.append(part, el("wbr"));
    return out;
  }

  function kpiRow(k) {
    return el("tr", { dataset: { kpi: k.name } },
      el("th", { scope: "row" }, kpiName(k.name), k.unit && k.unit !== "1" ? el("span", { class: "unit" }, k.unit) : null),
      ci(k.baseline), ci(k.scenario), diffCell(k));
  }

  function table(kpis) {
    return el("table", { class: "kpis" },
      el("thead", {}, el("tr", {}, el("th", {}, "KPI"), el("th", {}, "baseline", el("br"), "[95 % CI]"),
        el("th", {}, "scenario", el("br"), "[95 % CI]"), el("th", {}, "difference", el("br"), "[95 % CI]"))),
      el("tbody", {}, ...kpis.map(kpiRow)));
  }

  function showResult(r) {
    const out = document.getElementById("scenario-result");
    const head = el("div", { class: "result-head", dataset: { status: r.status, id: r.id } },
      el("strong", {}, r.name || r.id), ` · ${r.status}`,
      el("div", { class: "result-meta" },
        `${r.replications} replications of ${duration(r.horizon_ms)} · seed ${r.seed} · ${num(r.events)} events in ${duration(r.wall_ms)}` +
        (r.snapshot_ms ? ` · from the live twin at ${time(r.snapshot_ms)}` : " · from the model file")));
    if (r.status !== "OK") {
      out.replaceChildren(head, el("p", { class: "error" }, r.error || "the run did not finish"));
      return;
    }
    const main = MAIN_KPIS.map((n) => r.kpis.find((k) => k.name === n)).filter(Boolean);
    const rest = r.kpis.filter((k) => !MAIN_KPIS.includes(k.name));
    out.replaceChildren(head, table(main),
      rest.length ? el("details", {}, el("summary", {}, `all ${r.kpis.length} KPIs`), table(rest)) : null);
  }

  function init(types, root, plant) {
    st.types = types;
    st.root = root;
    form().addEventListener("submit", submit);
    form().addEventListener("change", showKindFields);
    document.getElementById("scenario-cancel").addEventListener("click", cancel);
    showKindFields();
    usePlant(plant);
  }

  T.scenario = { init, onMessage };
})((window.Twin = window.Twin || {}));
