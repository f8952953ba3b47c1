// SPDX-License-Identifier: Apache-2.0
// Checks the dashboard's reading of the plant model's shift calendar (public/js/shifts.js) in Node: "HH:MM" and duration-form times, windows that wrap midnight, other periods, and no answer for a calendar the model would refuse.
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "..", "..", "services", "dashboard", "public", "js", "shifts.js");
const ctx = vm.createContext({});
vm.runInContext(fs.readFileSync(src, "utf8"), ctx, { filename: src });
const { nextShift } = ctx.Twin.shifts;

const DAY = [["06:00", "14:00"], ["14:00", "22:00"]];
const at = (hhmm) => Date.UTC(2026, 10, 25, Number(hhmm.slice(0, 2)), Number(hhmm.slice(3)));
const H = 3600;
// [shifts, UTC time now, expected: "inside", a wait in seconds, or null (no hint)]
const cases = [
  [{ windows: DAY }, "10:00", "inside"],
  [{ windows: DAY }, "23:00", 7 * H],
  [{ windows: DAY }, "05:30", 0.5 * H],
  [{ period: "1d", windows: [["22:00", "06:00"]] }, "23:00", "inside"],
  [{ windows: [["22:00", "06:00"]] }, "03:00", "inside"],
  [{ windows: [["22:00", "06:00"]] }, "12:00", 10 * H],
  [{ windows: [["22:00", "00:00"]] }, "23:59", "inside"],
  [{ windows: [["6h", "14h"], ["14h", "22h"]] }, "05:00", 1 * H],
  [{ windows: [[21600, 50400]] }, "05:00", 1 * H],
  [{ windows: [["6h30m", "1000m"]] }, "06:45", "inside"],
  [{ windows: [["18:00", "24:00"]] }, "20:00", "inside"],
  [{ windows: [["0", "4h"]] }, "02:00", "inside"],
  [{ period: "12h", windows: [["0h", "4h"]] }, "05:00", 7 * H],
  [{ period: "12h", windows: [["0h", "4h"]] }, "13:00", "inside"],
  [{ period: 43200, windows: [["10:00", "02:00"]] }, "13:00", "inside"],
  [{ windows: [["6x", "7h"]] }, "05:00", null],
  [{ windows: [["25:00", "02:00"]] }, "05:00", null],
  [{ windows: [["6:00", "7:00"]] }, "05:00", null],
  [{ windows: [["06:00", "06:00"]] }, "05:00", null],
  [{ windows: [["06:00"]] }, "05:00", null],
  [{ windows: [] }, "05:00", null],
  [{ period: "0", windows: DAY }, "05:00", null],
  [{ period: "12h", windows: [["13:00", "14:00"]] }, "05:00", null],
  [{ windows: [[-5, 100]] }, "05:00", null],
  [null, "05:00", null],
];

let failed = 0;
for (const [shifts, now, want] of cases) {
  const r = nextShift(shifts, at(now));
  const got = r === null ? null : r.inside ? "inside" : r.waitS;
  const ok = typeof want === "number" && typeof got === "number" ? Math.abs(got - want) < 1e-6 : got === want;
  console.log(`${ok ? "ok" : "FAIL"}: ${JSON.stringify(shifts)} at ${now} UTC -> ${JSON.stringify(got)} (want ${JSON.stringify(want)})`);
  if (!ok) failed++;
}
process.exit(failed ? 1 : 0);
