// SPDX-License-Identifier: Apache-2.0
// The alerts feed, newest first: time, asset, signal, kind, severity, ETA of forecast crossings and the predictor's message.
(function (T) {
  "use strict";

  const { el, time, between, iso, kindWord, num } = T.fmt;
  const store = T.store;
  let onSelect = () => {};

  function etaLine(al) {
    if (al.kind !== "THRESHOLD_FORECAST" || !al.eta_ms) return null;
    const base = al.ts_ms || al.received_ms;
    return el("div", { class: "al-eta" },
      `ETA ${time(al.eta_ms)} (in ${between(al.eta_ms, base)} from the sample)`);
  }

  function row(al) {
    const sev = al.kind === "CLEARED" ? "CLEARED" : al.severity;
    const item = el("li", {
      class: `alert sev-${sev}`,
      dataset: { asset: al.asset_id, signal: al.signal, kind: al.kind, severity: al.severity },
      title: `value ${num(al.value)}${al.threshold ? `, threshold ${num(al.threshold)}` : ""}`,
    },
      el("div", { class: "al-top" },
        el("time", { datetime: iso(al.ts_ms || al.received_ms) || null }, time(al.ts_ms || al.received_ms)),
        el("span", { class: "al-asset" }, al.asset_id),
        el("span", { class: "al-signal" }, al.signal),
        el("span", { class: "badge" }, kindWord(al.kind)),
        al.kind === "CLEARED" ? null : el("span", { class: "sev" }, String(al.severity).toLowerCase())),
      al.message ? el("div", { class: "al-msg" }, al.message) : null,
      etaLine(al));
    item.addEventListener("click", () => onSelect(al.asset_id));
    return item;
  }

  function render() {
    const list = document.getElementById("alerts");
    const hide = document.getElementById("hide-cleared").checked;
    const shown = store.alerts.filter((al) => !(hide && al.kind === "CLEARED"));
    if (!shown.length) {
      list.replaceChildren(el("li", { class: "empty" }, store.alerts.length ? "Only cleared alerts." : "No alerts yet."));
      return;
    }
    list.replaceChildren(...shown.map(row));
  }

  T.alerts = {
    render,
    onSelect(fn) {
      onSelect = fn;
    },
  };
})((window.Twin = window.Twin || {}));
