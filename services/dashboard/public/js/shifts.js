// SPDX-License-Identifier: Apache-2.0
// The plant model's shift calendar read the way twin-scenario reads it (windows as "HH:MM" or durations, wrapping windows, any period) to tell whether the line works now and when the next shift starts.
(function (T) {
  "use strict";

  const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const MAX_DURATION_S = 366 * 86400;
  const DAY_S = 86400;

  // A duration in seconds: a number, or text of <digits><unit> groups ("8h", "1h30m"); NaN
  // when it is neither (as the model checker would refuse it).
  function durationS(v) {
    if (typeof v === "number") return Number.isFinite(v) && v >= 0 && v <= MAX_DURATION_S ? v : NaN;
    if (typeof v !== "string" || !/^(\d+(ms|s|m|h|d|w))+$/.test(v)) return v === "0" ? 0 : NaN;
    let s = 0;
    for (const [, n, unit] of v.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) s += Number(n) * UNITS[unit];
    return s <= MAX_DURATION_S ? s : NaN;
  }

  // A time into the period: "HH:MM" (00:00 to 24:00) or a duration.
  function clockS(v) {
    if (typeof v !== "string" || !v.includes(":")) return durationS(v);
    const m = /^(\d\d):(\d\d)$/.exec(v);
    if (!m) return NaN;
    const h = Number(m[1]), min = Number(m[2]);
    return min < 60 && (h < 24 || (h === 24 && min === 0)) ? h * 3600 + min * 60 : NaN;
  }

  // [[start, end], …] in seconds into the period, wrapping windows split in two; null when
  // the calendar is not one the model allows.
  function windowsOf(shifts) {
    const period = shifts.period === undefined ? DAY_S : durationS(shifts.period);
    const wins = shifts.windows;
    if (!(period > 0) || !Array.isArray(wins) || !wins.length) return null;
    const out = [];
    for (const w of wins) {
      if (!Array.isArray(w) || w.length !== 2) return null;
      const [a, b] = w.map(clockS);
      if (!(a >= 0 && b >= 0 && a < period && b <= period && a !== b)) return null;
      if (a < b) out.push([a, b]);
      else {
        out.push([a, period]);
        if (b > 0) out.push([0, b]);
      }
    }
    return { period, windows: out };
  }

  // {inside, waitS, period} at nowMs (the calendar runs on the Unix clock: with a period of a
  // day, on UTC time of day), or null for a calendar that cannot be read.
  function nextShift(shifts, nowMs) {
    const cal = shifts && typeof shifts === "object" ? windowsOf(shifts) : null;
    if (!cal) return null;
    const pos = (((nowMs / 1000) % cal.period) + cal.period) % cal.period;
    const inside = cal.windows.some(([a, b]) => pos >= a && pos < b);
    const waitS = inside ? 0 : Math.min(...cal.windows.map(([a]) => (a - pos + cal.period) % cal.period));
    return { inside, waitS, period: cal.period };
  }

  T.shifts = { durationS, clockS, nextShift };
})((typeof window !== "undefined" ? (window.Twin = window.Twin || {}) : globalThis.Twin = globalThis.Twin || {}));
