// SPDX-License-Identifier: Apache-2.0
// Per-signal charts of the selected asset (uPlot): observed values, the forecast mean, its 95 % band and the plant model's limits.
(function (T) {
  "use strict";

  const { el, num, duration } = T.fmt;
  const store = T.store;
  const COLORS = {
    obs: "#fbbf24",
    mean: "#38bdf8",
    edge: "rgba(56,189,248,0.55)",
    band: "rgba(56,189,248,0.22)",
    warn: "rgba(251,146,60,0.85)",
    alarm: "rgba(248,113,113,0.95)",
    axis: "#94a3b8",
    grid: "rgba(148,163,184,0.13)",
  };
  const HEIGHT = 190;

  const view = { assetId: null, windowS: 300, cards: new Map() };

  function finite(x) {
    return typeof x === "number" && Number.isFinite(x) ? x : null;
  }

  // Aligned uPlot data [x s, observed, mean, lo, hi] from the observations inside the
  // window and the latest forecast; x is the sorted union of both time sets.
  function buildData(a, signal) {
    const s = a.series.get(signal) || { t: [], v: [] };
    let i0 = 0;
    if (view.windowS > 0 && s.t.length) {
      const from = s.t[s.t.length - 1] - view.windowS * 1000;
      while (i0 < s.t.length && s.t[i0] < from) i0++;
    }
    const f = a.forecasts.get(signal);
    const pts = f ? f.points.filter((p) => T.fmt.plausibleMs(p.ts_ms)).sort((p, q) => p.ts_ms - q.ts_ms) : [];
    const out = [[], [], [], [], []];
    let i = i0;
    let j = 0;
    while (i < s.t.length || j < pts.length) {
      const to = i < s.t.length ? s.t[i] : Infinity;
      const tf = j < pts.length ? pts[j].ts_ms : Infinity;
      const t = Math.min(to, tf);
      out[0].push(t / 1000);
      out[1].push(to === t ? finite(s.v[i++]) : null);
      if (tf === t) {
        const p = pts[j++];
        out[2].push(finite(p.mean));
        out[3].push(finite(p.lo));
        out[4].push(finite(p.hi));
      } else {
        out[2].push(null);
        out[3].push(null);
        out[4].push(null);
      }
    }
    return out;
  }

  function limitValues(lim) {
    const out = [];
    for (const level of ["warn", "alarm"]) {
      for (const side of ["above", "below"]) {
        if (lim[level] && typeof lim[level][side] === "number") out.push({ level, y: lim[level][side] });
      }
    }
    return out;
  }

  // The y range: the data with 8 % room, widened to show a limit that is close to it.
  function yRange(u, dmin, dmax, limits) {
    if (dmin === null || dmax === null) return [0, 1];
    const span = Math.max(dmax - dmin, Math.abs(dmax) * 0.02, 1e-9);
    let lo = dmin;
    let hi = dmax;
    for (const l of limits) {
      if (l.y >= dmin - span && l.y <= dmax + span) {
        lo = Math.min(lo, l.y);
        hi = Math.max(hi, l.y);
      }
    }
    const pad = (hi - lo || span) * 0.08;
    return [lo - pad, hi + pad];
  }

  function drawLimits(u, limits) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
    for (const l of limits) {
      const y = u.valToPos(l.y, "y", true);
      if (y < top || y > top + height) continue;
      ctx.strokeStyle = COLORS[l.level];
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
    }
    ctx.restore();
  }

  // x tick labels in local 24-hour time; seconds only when the view is short, the date
  // only when it spans days.
  function timeLabels(u, splits) {
    const span = (u.scales.x.max || 0) - (u.scales.x.min || 0);
    return splits.map((s) => {
      const d = new Date(s * 1000);
      const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
      if (span > 2 * 86400) return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
      return span <= 900 ? `${hm}:${String(d.getSeconds()).padStart(2, "0")}` : hm;
    });
  }

  function makeChart(card, limits, width) {
    const line = { width: 1.5, spanGaps: true, points: { show: false } };
    const axis = { stroke: COLORS.axis, grid: { stroke: COLORS.grid }, ticks: { stroke: COLORS.grid } };
    const opts = {
      width,
      height: HEIGHT,
      legend: { show: false },
      cursor: { points: { show: false } },
      scales: { x: { time: true }, y: { range: (u, mn, mx) => yRange(u, mn, mx, limits) } },
      series: [
        {},
        Object.assign({ label: "observed", stroke: COLORS.obs }, line),
        Object.assign({ label: "forecast", stroke: COLORS.mean, dash: [6, 4] }, line),
        Object.assign({ label: "lo", stroke: COLORS.edge }, line, { width: 1 }),
        Object.assign({ label: "hi", stroke: COLORS.edge }, line, { width: 1 }),
      ],
      bands: [{ series: [4, 3], fill: COLORS.band }],
      axes: [Object.assign({ values: timeLabels, size: 34, space: 70 }, axis), Object.assign({ size: 56 }, axis)],
      hooks: { draw: [(u) => drawLimits(u, limits)] },
    };
    return new uPlot(opts, [[], [], [], [], []], card.querySelector(".plot"));
  }

  function count(arr, k) {
    let n = 0;
    for (let i = 0; i < arr[0].length; i++) if (k.every((c) => arr[c][i] !== null)) n++;
    return n;
  }

  function qualityText(f) {
    if (!f) return "no forecast yet";
    const q = f.quality || {};
    const parts = [`model ${f.model || "?"}`];
    if (q.n) {
      parts.push(`MASE ${num(q.mase, 3)}`);
      if (q.coverage) parts.push(`coverage ${Math.round(q.coverage * 100)} %`);
      parts.push(`MAE ${num(q.mae, 3)}`, `n ${q.n}`);
    }
    return parts.join(" · ");
  }

  function outlookText(a, f) {
    const pts = f ? f.points.filter((p) => Number.isFinite(p.mean)) : [];
    if (!pts.length) return "";
    const last = pts[pts.length - 1];
    const ahead = T.fmt.between(last.ts_ms, a.basis_ts_ms || a.ts_ms);
    return `in ${ahead}: ${num(last.mean)} [${num(last.lo)}, ${num(last.hi)}]`;
  }

  function makeCard(a, signal) {
    const lim = store.limits(a, signal);
    const card = el("article", { class: "chart-card", dataset: { signal, bandPoints: 0, observedPoints: 0 } },
      el("header", {},
        el("span", { class: "sig-name" }, signal),
        el("span", { class: "sig-value" }, el("span", { class: "v" }, "–"), lim.unit ? el("span", { class: "u" }, lim.unit) : null),
        el("span", { class: "sig-outlook" })),
      el("div", { class: "plot" }),
      el("footer", { class: "sig-quality" }));
    const limits = limitValues(lim);
    card.uplot = makeChart(card, limits, chartWidth());
    return card;
  }

  function chartWidth() {
    const c = document.getElementById("charts");
    const cols = c.clientWidth >= 980 ? 2 : 1;
    return Math.max(240, Math.floor((c.clientWidth - (cols - 1) * 12) / cols) - 26);
  }

  function fillCard(card, a, signal) {
    const data = buildData(a, signal);
    card.uplot.setData(data);
    // What the chart really holds, read back from uPlot (the browser test checks these and
    // the pixels of the band).
    card.dataset.observedPoints = count(card.uplot.data, [1]);
    card.dataset.bandPoints = count(card.uplot.data, [3, 4]);
    card.dataset.level = store.signalLevel(a, signal);
    const f = a.forecasts.get(signal);
    card.querySelector(".sig-value .v").textContent = num(a.values.get(signal));
    card.querySelector(".sig-outlook").textContent = outlookText(a, f);
    card.querySelector(".sig-quality").textContent = qualityText(f);
  }

  function clear() {
    for (const card of view.cards.values()) card.uplot.destroy();
    view.cards.clear();
    document.getElementById("charts").replaceChildren();
  }

  function show(assetId) {
    if (view.assetId !== assetId) clear();
    view.assetId = assetId;
    update();
  }

  function header(a) {
    document.getElementById("detail-title").textContent = a.id;
    const h = a.updates ? store.health(a) : "no data";
    const sub = [a.description, a.kind && `kind ${a.kind}`, a.station && `station ${a.station}`, `health ${h}`];
    if (a.basis_ts_ms) sub.push(`forecast basis ${T.fmt.time(a.basis_ts_ms)}`);
    document.getElementById("detail-sub").textContent = sub.filter(Boolean).join(" · ");
    document.getElementById("legend").hidden = false;
    for (const l of document.querySelectorAll("#legend .lim")) l.hidden = !store.plant;
  }

  function update() {
    const a = view.assetId && store.assets.get(view.assetId);
    if (!a) return;
    header(a);
    const container = document.getElementById("charts");
    for (const signal of store.signalsOf(a)) {
      if (!view.cards.has(signal)) {
        const card = makeCard(a, signal);
        view.cards.set(signal, card);
        container.append(card);
        fit(card);
      }
      fillCard(view.cards.get(signal), a, signal);
    }
    if (!view.cards.size) container.replaceChildren(el("p", { class: "empty" }, `No values from ${a.id} yet.`));
  }

  function setWindow(seconds) {
    view.windowS = seconds;
    update();
  }

  // A chart takes the width its card really has once laid out (the grid decides the columns);
  // chartWidth() is only the first guess, made before the card is in the page.
  function fit(card) {
    const w = card.querySelector(".plot").clientWidth;
    if (w > 0 && Math.abs(w - card.uplot.width) > 1) card.uplot.setSize({ width: w, height: HEIGHT });
  }

  function resize() {
    for (const card of view.cards.values()) fit(card);
  }

  T.charts = {
    show,
    update,
    setWindow,
    resize,
    get assetId() {
      return view.assetId;
    },
  };
})((window.Twin = window.Twin || {}));
