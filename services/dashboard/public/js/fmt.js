// SPDX-License-Identifier: Apache-2.0
// Formatting helpers of the dashboard: numbers, times, durations and safe DOM building.
(function (T) {
  "use strict";

  // A number with about 4 significant digits, no exponent for everyday magnitudes.
  function num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    const d = digits || 4;
    const a = Math.abs(x);
    if (a !== 0 && (a >= 1e7 || a < 1e-3)) return x.toExponential(2);
    if (a >= 10 ** d) return x.toFixed(0);
    return Number(x.toPrecision(d)).toString();
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  // Times come from payloads anyone on the broker may write: a Date holds ±8.64e15 ms, and
  // toISOString() throws a RangeError beyond that, so every time shown goes through here.
  const DATE_MAX_MS = 8.64e15;
  // Device times the page believes (charts, "newer than" checks): 1970 to the year 9999.
  const PLAUSIBLE_MAX_MS = 253402300799999;

  function validMs(ms) {
    return typeof ms === "number" && Number.isFinite(ms) && Math.abs(ms) <= DATE_MAX_MS;
  }

  function plausibleMs(ms) {
    return typeof ms === "number" && Number.isFinite(ms) && ms > 0 && ms <= PLAUSIBLE_MAX_MS;
  }

  // An ISO 8601 text for a datetime attribute; "" when the time is not one.
  function iso(ms) {
    return validMs(ms) ? new Date(ms).toISOString() : "";
  }

  // Local wall-clock time of a Unix-ms timestamp, HH:MM:SS (with the date when not today);
  // "?" for a number no Date can hold.
  function time(ms) {
    if (!ms) return "–";
    if (!validMs(ms)) return "?";
    const d = new Date(ms);
    const hms = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return hms;
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hms}`;
  }

  // "45 s", "12 min", "3.2 h", "2.5 d".
  function duration(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
    const s = Math.abs(ms) / 1000;
    let out;
    if (s < 90) out = `${Math.round(s)} s`;
    else if (s < 5400) out = `${Math.round(s / 60)} min`;
    else if (s < 172800) out = `${(s / 3600).toFixed(1)} h`;
    else out = `${(s / 86400).toFixed(1)} d`;
    return ms < 0 ? `−${out}` : out;
  }

  // The span between two times, "–" when either is not a time.
  function between(later, earlier) {
    return validMs(later) && validMs(earlier) ? duration(later - earlier) : "–";
  }

  function ago(ms, now) {
    if (!ms) return "never";
    if (!validMs(ms)) return "at an unknown time";
    const dt = (now || Date.now()) - ms;
    return dt < 1500 ? "just now" : `${duration(dt)} ago`;
  }

  // el("div", {class: "x", dataset: {a: 1}}, child, "text", …): children may be nodes or
  // strings (set as text, never parsed as HTML: payloads come from the network).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  const KIND_WORDS = {
    ANOMALY: "anomaly",
    THRESHOLD_FORECAST: "forecast crossing",
    THRESHOLD_BREACH: "limit breach",
    CLEARED: "cleared",
    KIND_UNSPECIFIED: "alert",
  };

  function kindWord(kind) {
    return KIND_WORDS[kind] || String(kind).toLowerCase();
  }

  T.fmt = { num, time, duration, between, ago, iso, validMs, plausibleMs, el, kindWord };
})((window.Twin = window.Twin || {}));
