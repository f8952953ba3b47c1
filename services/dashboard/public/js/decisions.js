// SPDX-License-Identifier: Apache-2.0
// The twin's decisions, newest first: each machine's Recommendation from twin-advisor (the action, its effect with the 95 % interval, why, and what was decided) and the Commands sent for it.
(function (T) {
  "use strict";

  const { el, time, iso, num } = T.fmt;
  const MAX = 100; // recommendations kept
  const recs = new Map(); // id -> {rec, commands: []}
  const orphans = new Map(); // recommendation id -> commands seen before their recommendation
  let onSelect = () => {};

  const state = { dirty: false };

  function decisionClass(d) {
    const w = String(d || "").split(/[:\s]/)[0];
    return ["advice", "executed", "awaiting_approval", "refused", "rejected"].includes(w) ? w : "other";
  }

  function onRecommendation(rec) {
    if (!rec.id || !rec.asset_id) return;
    const old = recs.get(rec.id);
    rec.received_ms = Date.now();
    recs.set(rec.id, { rec, commands: old ? old.commands : orphans.get(rec.id) || [] });
    orphans.delete(rec.id);
    if (recs.size > MAX) recs.delete(recs.keys().next().value); // the oldest first in
    state.dirty = true;
  }

  function onCommand(cmd) {
    if (!cmd.id) return;
    cmd.received_ms = Date.now();
    const entry = recs.get(cmd.recommendation_id);
    const list = entry ? entry.commands : orphans.get(cmd.recommendation_id) || [];
    if (!list.some((c) => c.id === cmd.id)) list.push(cmd);
    if (!entry) {
      orphans.set(cmd.recommendation_id, list);
      if (orphans.size > MAX) orphans.delete(orphans.keys().next().value);
    }
    state.dirty = true;
  }

  function effectText(opt, rec) {
    if (!opt || !opt.effect) return "";
    const e = opt.effect;
    return `${rec.objective}: ${num(e.mean)} (95 % ${num(e.lo)} to ${num(e.hi)})`;
  }

  function card({ rec, commands }) {
    const best = (rec.options || [])[0];
    const chosen = (rec.options || []).find((o) => o.action && rec.action &&
      o.action.label === rec.action.label) || best;
    const ok = rec.status === "OK";
    const item = el("li", {
      class: `alert decision dec-${decisionClass(rec.decision)}`,
      dataset: { asset: rec.asset_id, id: rec.id, decision: decisionClass(rec.decision) },
    },
      el("div", { class: "al-top" },
        el("time", { datetime: iso(rec.ts_ms) || null }, time(rec.ts_ms || rec.received_ms)),
        el("span", { class: "al-asset" }, rec.asset_id),
        el("span", { class: "badge" }, rec.trigger || ""),
        el("span", { class: "dec-word" }, ok ? rec.decision || "" : "error")),
      el("div", { class: "dec-action" }, ok ? (rec.action && rec.action.label) || "–" : rec.error || ""),
      ok && chosen && chosen.action && chosen.action.kind !== "none"
        ? el("div", { class: "dec-effect" }, effectText(chosen, rec)) : null,
      ok && rec.why ? el("details", { class: "dec-why" }, el("summary", {}, "why"), el("p", {}, rec.why)) : null,
      ...commands.map((c) => el("div", { class: "dec-cmd" },
        `command ${c.id}: ${(c.action && c.action.label) || (c.action && c.action.kind) || ""}` +
        ` by ${c.issued_by || "?"} at ${time(c.issued_ms || c.received_ms)}`)));
    item.addEventListener("click", () => onSelect(rec.asset_id));
    return item;
  }

  function render() {
    state.dirty = false;
    const list = document.getElementById("decisions");
    if (!list) return;
    const all = [...recs.values()].sort((a, b) => (b.rec.created_ms || 0) - (a.rec.created_ms || 0));
    if (!all.length) {
      list.replaceChildren(el("li", { class: "empty" }, "No recommendations yet."));
      return;
    }
    list.replaceChildren(...all.map(card));
  }

  T.decisions = {
    state,
    onRecommendation,
    onCommand,
    render,
    onSelect(fn) {
      onSelect = fn;
    },
  };
})((window.Twin = window.Twin || {}));
