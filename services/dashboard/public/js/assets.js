// SPDX-License-Identifier: Apache-2.0
// The asset grid: one tile per asset with its live values, health (OK/WARN/ALARM) and age; a click selects the asset.
(function (T) {
  "use strict";

  const { el, num, ago } = T.fmt;
  const store = T.store;
  const STALE_MS = 60000; // a tile greys out when its asset said nothing for this long
  const tiles = new Map();
  let onSelect = () => {};
  let selected = null;

  function order() {
    const plantIds = Object.keys((store.plant && store.plant.assets) || {});
    const rest = [...store.assets.keys()].filter((id) => !plantIds.includes(id)).sort();
    return [...plantIds, ...rest];
  }

  function makeTile(id) {
    const tile = el("button", { type: "button", class: "tile", dataset: { asset: id, health: "NONE" } },
      el("div", { class: "tile-head" },
        el("span", { class: "tile-name" }, id),
        el("span", { class: "pill" }, "no data")),
      el("div", { class: "tile-desc" }),
      el("dl", { class: "vals" }),
      el("div", { class: "tile-foot" }, "no data yet"));
    tile.addEventListener("click", () => onSelect(id));
    return tile;
  }

  function valueRow(a, signal, x) {
    const lim = store.limits(a, signal);
    return el("div", { class: "val", dataset: { signal, level: store.signalLevel(a, signal) } },
      el("dt", {}, signal),
      el("dd", {}, el("span", { class: "v" }, num(x)), lim.unit ? el("span", { class: "u" }, lim.unit) : null));
  }

  function fillTile(tile, a) {
    const hasData = a.updates > 0;
    const h = hasData || a.episodes.size ? store.health(a) : "NONE";
    tile.dataset.health = h;
    tile.classList.toggle("stale", hasData && Date.now() - a.received_ms > STALE_MS);
    tile.classList.toggle("selected", a.id === selected);
    tile.querySelector(".pill").textContent = h === "NONE" ? "no data" : h;
    tile.querySelector(".tile-desc").textContent =
      [a.description, a.station && `station ${a.station}`].filter(Boolean).join(" · ") || a.kind || "";
    const dl = tile.querySelector(".vals");
    const rows = store.signalsOf(a).filter((s) => a.values.has(s))
      .map((s) => valueRow(a, s, a.values.get(s)));
    dl.replaceChildren(...rows);
    tile.querySelector(".tile-foot").textContent = hasData
      ? `updated ${ago(a.received_ms)} · ${a.updates} update${a.updates === 1 ? "" : "s"}`
      : "no data yet";
  }

  // Renders the tiles of the given asset ids (all when ids is null).
  function render(ids) {
    const container = document.getElementById("assets");
    const plantIds = Object.keys((store.plant && store.plant.assets) || {});
    for (const id of [...plantIds, ...store.assets.keys()]) {
      if (!tiles.has(id)) {
        const t = makeTile(id);
        tiles.set(id, t);
        container.append(t);
      }
    }
    const empty = document.getElementById("assets-empty");
    if (empty) empty.hidden = tiles.size > 0;
    for (const id of ids || tiles.keys()) {
      const a = store.assets.get(id);
      if (a && tiles.has(id)) fillTile(tiles.get(id), a);
    }
    summary();
  }

  function summary() {
    const counts = { OK: 0, WARN: 0, ALARM: 0 };
    for (const t of tiles.values()) {
      if (counts[t.dataset.health] !== undefined) counts[t.dataset.health] += 1;
    }
    const s = document.getElementById("health-summary");
    s.replaceChildren(
      el("span", { class: "count ok" }, `${counts.OK} OK`),
      el("span", { class: "count warn" }, `${counts.WARN} WARN`),
      el("span", { class: "count alarm" }, `${counts.ALARM} ALARM`));
  }

  function select(id) {
    selected = id;
    for (const [tid, t] of tiles) t.classList.toggle("selected", tid === id);
  }

  T.assets = {
    render,
    select,
    onSelect(fn) {
      onSelect = fn;
    },
  };
})((window.Twin = window.Twin || {}));
