// SPDX-License-Identifier: Apache-2.0
// Drives the dashboard in headless Chromium (playwright-core): page loads without errors, live values change, a forecast band is drawn, an alert shows, an outage and a maintenance scenario round-trip; saves a screenshot.
//
// Environment: DASH_URL (the page), DASH_ASSET (an asset the test feeds), DASH_SIGNAL (its
// signal that gets a forecast), DASH_ALERT_ASSET, DASH_SCREENSHOT (PNG path), CHROMIUM
// (executable, default /usr/bin/chromium), DASH_NODE_MODULES (where playwright-core is).
// Prints "READY" once live values flow (the Python side then sends the limit breach and an
// undecodable message), "POISON" later (the Python side then sends a TwinState and an Alert
// with times no Date can hold, then a normal Alert with the message "after-poison"), one
// "ok: …" line per passed check, and exits 1 with "FAIL: …" on the first failed one.
import { createRequire } from "node:module";
import path from "node:path";

const env = process.env;
const require = createRequire(path.join(env.DASH_NODE_MODULES, "noop.js"));
const { chromium } = require("playwright-core");

const URL = env.DASH_URL;
const ASSET = env.DASH_ASSET || "press-1";
const SIGNAL = env.DASH_SIGNAL || "pressure";
const DERIVED = env.DASH_DERIVED || "motor_power"; // a derived signal of ASSET's kind, in kW
const ALERT_ASSET = env.DASH_ALERT_ASSET || ASSET;
const SHOT = env.DASH_SCREENSHOT;
const T0 = Date.now();

function log(text) {
  console.log(`[${((Date.now() - T0) / 1000).toFixed(1)} s] ${text}`);
}

class CheckFailed extends Error {}

// Polls fn (in Node) until it returns a truthy value, or fails with what.
async function until(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new CheckFailed(`${what} (waited ${timeoutMs / 1000} s; last: ${JSON.stringify(last)})`);
}

const tileValues = (page, asset) =>
  page.$$eval(`.tile[data-asset="${asset}"] .val .v`, (els) => els.map((e) => e.textContent).join("|"));

// Columns of the chart's canvas crossed by the band's fill: a vertical run of at least 8
// translucent (the fill is 22 % opaque) sky-blue pixels. Lines, even the band's own edges,
// are 1-2 pixels thick across, and the grey grid does not match.
function bandColumns(page, signal) {
  return page.$eval(`.chart-card[data-signal="${signal}"] canvas`, (c) => {
    const { width, height } = c;
    const d = c.getContext("2d").getImageData(0, 0, width, height).data;
    let cols = 0;
    for (let x = 0; x < width; x++) {
      let run = 0;
      for (let y = 0; y < height && run < 8; y++) {
        const i = 4 * (y * width + x);
        const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        run = a >= 25 && a <= 120 && b > r + 60 && g > r + 40 ? run + 1 : 0;
      }
      if (run >= 8) cols++;
    }
    return cols;
  });
}

async function checkLive(page) {
  await until(() => page.$eval("#conn", (e) => e.dataset.state === "online"), 20000,
    "the page to connect to the broker (#conn data-state=online)");
  log("ok: page loaded and connected over MQTT-over-WebSockets");
  const first = await until(() => tileValues(page, ASSET), 20000, `values of ${ASSET} in its tile`);
  const changed = await until(async () => {
    const now = await tileValues(page, ASSET);
    return now && now !== first ? now : null;
  }, 10000, `the values of ${ASSET} to change`);
  log(`ok: live values change (${first} -> ${changed})`);
  // A derived signal of the plant model (twin-ingest computes it) shows like a measured one.
  const derived = await until(() => page.$eval(`.tile[data-asset="${ASSET}"] .val[data-signal="${DERIVED}"]`,
    (e) => e.textContent).catch(() => null), 10000, `${ASSET}'s derived ${DERIVED} in its tile`);
  if (!/kW/.test(derived)) throw new CheckFailed(`derived ${DERIVED} shown without its unit: ${derived}`);
  log(`ok: derived signal in the tile: ${derived}`);
  const services = await until(() => page.$$eval('.svc[data-state="online"]', (els) => els.length >= 3 && els.map((e) => e.dataset.service)),
    10000, "three services shown online");
  log(`ok: services online: ${services.join(", ")}`);
}

async function checkBand(page) {
  await page.click(`.tile[data-asset="${ASSET}"]`);
  const card = `.chart-card[data-signal="${SIGNAL}"]`;
  const pts = await until(() => page.$eval(card, (e) => Number(e.dataset.bandPoints) >= 3 && Number(e.dataset.observedPoints) >= 10 && e.dataset.bandPoints).catch(() => null),
    30000, `a chart of ${ASSET}/${SIGNAL} holding a forecast band and observations`);
  const dcard = `.chart-card[data-signal="${DERIVED}"]`;
  const dpts = await until(() => page.$eval(dcard, (e) => Number(e.dataset.bandPoints) >= 1 && Number(e.dataset.observedPoints) >= 3 && e.dataset.bandPoints).catch(() => null),
    30000, `a chart of the derived ${ASSET}/${DERIVED} with observations and a forecast`);
  log(`ok: the derived ${DERIVED} is charted with its forecast (${dpts} band points)`);
  const px = await until(async () => {
    const n = await bandColumns(page, SIGNAL);
    return n >= 20 ? n : null;
  }, 10000, `the band's fill in the ${SIGNAL} chart (20 pixel columns or more)`);
  const quality = await page.$eval(`${card} .sig-quality`, (e) => e.textContent);
  if (!/model \S+/.test(quality)) throw new CheckFailed(`no model name under the chart: "${quality}"`);
  log(`ok: forecast band drawn (${pts} band points, band fill across ${px} pixel columns; ${quality})`);
}

// Every chart stays inside its card: its canvas is sized to the card the grid laid out.
async function checkChartsFit(page, when) {
  const worst = await until(() => page.$$eval(".chart-card", (cards) => {
    if (!cards.length) return null;
    let over = 0;
    for (const c of cards) {
      const canvas = c.querySelector(".plot canvas");
      if (!canvas) return null;
      const inner = c.querySelector(".plot").getBoundingClientRect();
      over = Math.max(over, canvas.getBoundingClientRect().width - inner.width);
    }
    return over <= 1 ? String(over) : null;
  }), 5000, `every chart's canvas inside its card (${when})`);
  log(`ok: charts fit their cards (${when}; widest overflow ${worst} px)`);
}

async function checkAlert(page) {
  const sel = `#alerts li.alert[data-asset="${ALERT_ASSET}"][data-kind="THRESHOLD_BREACH"]`;
  const text = await until(() => page.$eval(sel, (e) => e.textContent).catch(() => null), 40000,
    `a THRESHOLD_BREACH alert of ${ALERT_ASSET} in the feed`);
  log(`ok: alert in the feed: ${text}`);
  const health = await page.$eval(`.tile[data-asset="${ALERT_ASSET}"]`, (e) => e.dataset.health);
  log(`   ${ALERT_ASSET} health: ${health}`);
}

// The Decisions panel: an executed recommendation with its command, and the real advisor's
// answer to a question about weld-1.
async function checkDecisions(page) {
  const sel = '#decisions li.decision[data-asset="press-1"][data-id="rec-e2e-1"]';
  const text = await until(() => page.$eval(sel, (e) => e.textContent).catch(() => null)
    .then((t) => (t && t.includes("cmd-e2e-1") ? t : null)), 40000,
  "press-1's executed recommendation with its command in the Decisions panel");
  for (const want of ["maintain now for 15 min", "executed", "station.press.downtime: -1.5",
    "by twin-advisor/e2e"]) {
    if (!text.includes(want)) throw new Error(`Decisions card lacks "${want}": ${text}`);
  }
  log(`ok: decision shown: ${text}`);
  const weld = await until(() => page.$eval('#decisions li.decision[data-asset="weld-1"]',
    (e) => e.textContent).catch(() => null), 60000, "twin-advisor's answer about weld-1");
  log(`ok: the advisor's answer shown: ${weld}`);
}

// A request the runner refuses comes back as an ERROR result whose reason the panel shows.
async function checkScenarioError(page) {
  await page.check('input[name="kind"][value="MACHINE_DOWN"]');
  await page.fill('input[name="down_target"]', "no-such-station");
  await page.fill('input[name="horizon_days"]', "1");
  await page.fill('input[name="replications"]', "2");
  await page.click("#scenario-run");
  const err = await until(() => page.$eval("#scenario-result", (e) => {
    const head = e.querySelector(".result-head");
    const p = e.querySelector("p.error");
    return head && head.dataset.status === "ERROR" && p && p.textContent;
  }), 60000, "an ERROR result for an unknown station");
  log(`ok: a refused scenario shows its reason: ${err}`);
}

// Runs the scenario the form holds and waits for its KPI table (with `row` in it): its status
// must be OK.
async function runScenario(page, row, what) {
  await page.click("#scenario-run");
  const done = await until(async () => {
    if (await page.$(row)) return "table";
    const err = await page.$eval("#scenario-state", (e) => e.classList.contains("error") && e.textContent);
    return err ? `error: ${err}` : null;
  }, 90000, what);
  if (done !== "table") throw new CheckFailed(`scenario panel says ${done}`);
  const status = await page.$eval("#scenario-result .result-head", (e) => e.dataset.status);
  if (status !== "OK") throw new CheckFailed(`scenario status ${status}`);
}

// The difference column of a KPI row as a number ("▲ 8 (+407 %)" -> 8).
async function kpiDiff(page, kpi) {
  const cells = await page.$$eval(`#scenario-result tr[data-kpi="${kpi}"] td.est .mean`,
    (els) => els.map((e) => e.textContent));
  return [Number((cells[2] || "").replace(/[▲▼\s]/g, "").replace(/\(.*\)$/, "").replace("−", "-")), cells];
}

async function checkScenario(page) {
  await page.check('input[name="kind"][value="MACHINE_DOWN"]');
  await page.fill('input[name="down_target"]', "press");
  await page.fill('input[name="down_hours"]', "4");
  await page.fill('input[name="horizon_days"]', "1");
  await page.fill('input[name="replications"]', "4");
  // At night the demo line is off shift: the panel offers the next shift's start, which
  // makes the outage cost something.
  if (await page.isVisible("#shift-hint button")) await page.click("#shift-hint button");
  const row = '#scenario-result table.kpis tr[data-kpi="throughput"]';
  await runScenario(page, row, "the KPI table of the scenario");
  const cells = await page.$$eval(`${row} td.est .mean`, (els) => els.map((e) => e.textContent));
  const nums = cells.map((c) => Number(c.replace(/[▲▼\s]/g, "").replace(/\(.*\)$/, "").replace("−", "-")));
  if (cells.length !== 3 || nums.some((x) => !Number.isFinite(x)) || !(nums[0] > 0))
    throw new CheckFailed(`throughput row is not numbers: ${JSON.stringify(cells)}`);
  const rows = await page.$$eval("#scenario-result table.kpis tbody tr", (els) => els.length);
  log(`ok: scenario round-trip: ${rows} KPI rows, throughput baseline/scenario/difference ${cells.join(" / ")}`);
  // The outage must show where it is certain to: the press station's downtime rises by
  // about the 4 hours asked for.
  const [diff, down] = await kpiDiff(page, "station.press.downtime");
  if (!(diff > 2)) throw new CheckFailed(`station.press.downtime difference is not about +4 h: ${JSON.stringify(down)}`);
  log(`ok: station.press.downtime baseline/scenario/difference ${down.join(" / ")}`);
}

// A planned maintenance of one press: 2 hours down, so the press station's downtime rises by
// about that (a new machine barely fails meanwhile).
async function checkMaintenance(page) {
  await page.click('.kinds label:has(input[value="MAINTAIN"])'); // the radio itself is hidden under its label
  await page.fill('input[name="maint_target"]', "press-1");
  await page.fill('input[name="maint_hours"]', "2");
  await page.fill('input[name="start_hours"]', "0");
  await runScenario(page, '#scenario-result tr[data-kpi="station.press.downtime"]',
    "the KPI table of the maintenance scenario");
  const name = await page.$eval("#scenario-result .result-head", (e) => e.textContent);
  if (!name.includes("press-1 maintained")) throw new CheckFailed(`maintenance result is named ${name}`);
  const [diff, down] = await kpiDiff(page, "station.press.downtime");
  if (!(diff > 1 && diff < 3)) throw new CheckFailed(`station.press.downtime difference is not about +2 h: ${JSON.stringify(down)}`);
  log(`ok: maintenance scenario: station.press.downtime baseline/scenario/difference ${down.join(" / ")}`);
}

// The Python side published bytes that are no protobuf at all on a prediction topic when
// it saw READY: the page counts them and keeps going.
async function checkUndecodable(page) {
  const text = await until(() => page.$eval("#decode-errors", (e) => !e.hidden && e.textContent), 10000,
    "the undecodable-message counter in the header");
  const before = await tileValues(page, ASSET);
  await until(async () => (await tileValues(page, ASSET)) !== before, 10000, "live values after the bad message");
  log(`ok: a bad payload is counted (${text}) and the page goes on`);
}

// Times beyond what a JS Date holds (|ms| > 8.64e15) in an Alert and a TwinState: the feed,
// the tiles and the charts go on, and no drawing step fails.
async function checkBadTimes(page) {
  const card = `.chart-card[data-signal="${SIGNAL}"]`;
  console.log("POISON");
  const after = `#alerts li.alert[data-asset="${ASSET}"][data-kind="ANOMALY"]`;
  const text = await until(() => page.$$eval(after, (els) => els.map((e) => e.textContent).find((t) => t.includes("after-poison"))),
    15000, "the alert sent after the one with a bad time in the feed");
  const bad = await page.$$eval(`#alerts li.alert[data-kind="THRESHOLD_FORECAST"]`,
    (els) => els.map((e) => e.textContent).find((t) => t.includes("poison-ts")));
  if (!bad || !bad.includes("?")) throw new CheckFailed(`the alert with ts_ms 9e15 is not shown with "?" as its time: ${bad}`);
  const before = await tileValues(page, ASSET);
  await until(async () => (await tileValues(page, ASSET)) !== before, 10000, "live values after the bad times");
  await page.waitForTimeout(1000);
  const observed = await page.$eval(card, (e) => Number(e.dataset.observedPoints));
  if (!(observed >= 10)) throw new CheckFailed(`the ${SIGNAL} chart lost its observations after a state with ts_ms 9e15 (${observed} points)`);
  const failures = await page.$eval("#decode-errors", (e) => Number(e.dataset.renderErrors || 0));
  if (failures) throw new CheckFailed(`${failures} drawing steps failed: ${await page.$eval("#decode-errors", (e) => e.title)}`);
  log(`ok: bad times shown as "?" and the page goes on (${text}; chart ${observed} points)`);
  // A drawing step that throws anyway is counted once (its dirty flag is reset) and the
  // other steps still run.
  const thrown = await page.evaluate(async () => {
    const T = window.Twin;
    const orig = T.alerts.render;
    T.alerts.render = () => { throw new Error("injected"); };
    T.store.dirty.alerts = true;
    await new Promise((r) => setTimeout(r, 700));
    T.alerts.render = orig;
    return T.store.renderErrors;
  });
  if (!(thrown >= 1 && thrown <= 2)) throw new CheckFailed(`an alerts drawing that throws counted ${thrown} times in 0.7 s`);
  const badge = await until(() => page.$eval("#decode-errors", (e) => !e.hidden && e.textContent.includes("drawing error") && e.textContent), 5000,
    "the drawing error counted in the header");
  const values = await tileValues(page, ASSET);
  await until(async () => (await tileValues(page, ASSET)) !== values, 10000, "live values after a drawing error");
  log(`ok: a drawing step that throws is counted (${badge}) and the page goes on`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: Number(env.DASH_WIDTH || 1500), height: 1100 } });
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
    await page.goto(URL, { waitUntil: "load", timeout: 20000 });
    await checkLive(page);
    console.log("READY");
    await checkBand(page);
    await checkChartsFit(page, "as first laid out");
    await checkAlert(page);
    await checkDecisions(page);
    await checkScenarioError(page);
    await checkScenario(page);
    await checkMaintenance(page);
    await checkUndecodable(page);
    await checkBadTimes(page);
    // A few more seconds of history and a 1-minute window make a readable picture.
    await page.click('[data-window="60"]');
    await page.waitForTimeout(Number(env.DASH_SETTLE_MS || 6000));
    await page.screenshot({ path: SHOT, fullPage: true });
    log(`screenshot: ${SHOT}`);
    // The same page on a phone, for a look at the narrow layout.
    const narrow = SHOT.replace(/\.png$/, "-narrow.png");
    await page.setViewportSize({ width: 414, height: 900 });
    await checkChartsFit(page, "after a resize to a phone's width");
    await page.screenshot({ path: narrow, fullPage: true });
    log(`screenshot: ${narrow}`);
    if (errors.length) throw new CheckFailed(`errors in the page:\n  ${errors.join("\n  ")}`);
    log("ok: no console errors");
  } catch (err) {
    if (SHOT) {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages.length) await pages[0].screenshot({ path: SHOT, fullPage: true }).catch(() => {});
      console.log(`screenshot (at failure): ${SHOT}`);
    }
    if (errors.length) console.log(`errors in the page:\n  ${errors.join("\n  ")}`);
    throw err;
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (err) => {
  console.log(`FAIL: ${err instanceof CheckFailed ? err.message : err.stack}`);
  process.exit(1);
});
