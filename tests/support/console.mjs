// Drives the operator console in Debian's Chromium with playwright-core (installed by deploy/native/test-tools.sh
// into the folder given first). Usage: node console.mjs <playwright folder> <console URL> '<JSON plan>'; the plan
// may ask to {"search": "<id or name>"}, then {"replay": true} (click Replay, accept the dialog, wait for SUCCESS),
// {"job": "pause"|"resume"|"cancel"} (that button of the first job, then its items listed),
// at {"width": px}, with {"screenshot": "<path>"}. Prints one JSON line: the console errors, the requests that left
// the page's origin, whether the page is wider than the window, the task rows, the detail shown and its buttons,
// the charts' axis labels (and those cut off) and the queue table's rows.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, url, planText] = process.argv.slice(2);
const plan = JSON.parse(planText || "{}");
const { chromium } = await import(pathToFileURL(join(modules, "node_modules/playwright-core/index.mjs")).href);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const result = { errors: [], external: [], steps: [] };
try {
  const page = await browser.newPage({ viewport: { width: plan.width || 1100, height: 800 } });
  const origin = new URL(url).origin;
  page.on("console", (m) => m.type() === "error" && result.errors.push(m.text()));
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("response", (r) => r.status() >= 400 && result.errors.push(`${r.status()} ${r.request().method()} ${r.url()}`));
  page.on("request", (r) => !r.url().startsWith(origin) && !r.url().startsWith("data:") && result.external.push(r.url()));
  page.on("dialog", (d) => { result.steps.push("confirmed: " + d.message()); d.accept(); });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("updated").textContent.startsWith("updated"), null, { timeout: 20000 });
  await page.waitForFunction(() => document.querySelectorAll("#throughput polyline").length === 2, null, { timeout: 20000 });
  if (plan.search) {
    await page.fill("#query", plan.search);
    await page.click("#search button");
    await page.waitForFunction(() => !document.getElementById("detail").hidden, null, { timeout: 20000 });
    result.steps.push("found " + (await page.textContent("#detail-id")));
  }
  if (plan.job) {
    // {"job": "<action>"}: click that action's button on the first job, confirm, wait for the status it leads to.
    const expected = { pause: "PAUSED", resume: "RUNNING", cancel: "CANCELLED" }[plan.job];
    await page.waitForSelector("#jobs tr.job", { timeout: 20000 });
    await page.click(`#jobs tr.job button[data-act="${plan.job}"]`);
    await page.waitForFunction((s) => document.querySelector("#jobs tr.job .status")?.textContent === s, expected, { timeout: 20000 });
    result.steps.push(`job ${plan.job}: ${expected}`);
    await page.click('#jobs tr.job button[data-act="items"]');
    await page.waitForFunction(() => document.querySelectorAll("#tasks tr.task").length > 0, null, { timeout: 20000 });
  }
  if (plan.replay) {
    await page.click("#replay-one");
    await page.waitForFunction(() => document.querySelector("#detail-body .status")?.textContent === "SUCCESS", null, { timeout: 30000 });
    result.steps.push("replayed to SUCCESS");
  }
  result.rows = await page.$$eval("#tasks tr.task", (rows) => rows.map((r) => r.dataset.id));
  result.detail = await page.$eval("#detail", (d) => (d.hidden ? null : d.innerText));
  result.buttons = await page.$$eval("#detail-body .tools button", (buttons) => buttons.map((b) => b.id));
  result.too_wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  result.axes = await page.$$eval("#throughput text", (labels) => labels.map((l) => l.textContent));
  // Chart labels drawn (even partly) outside their chart, which the browser cuts off.
  result.clipped = await page.$$eval("svg.chart text", (labels) => labels.filter((l) => {
    const [box, chart] = [l.getBoundingClientRect(), l.ownerSVGElement.getBoundingClientRect()];
    return box.left < chart.left - 0.5 || box.right > chart.right + 0.5;
  }).map((l) => l.textContent));
  result.queues = await page.$$eval("#queues tr.lane", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  result.jobs = await page.$$eval("#jobs tr.job", (rows) => rows.map((r) => ({
    id: r.dataset.id, status: r.querySelector(".status").textContent,
    progress: [Number(r.querySelector("progress").value), Number(r.querySelector("progress").max)],
    actions: [...r.querySelectorAll("button")].map((b) => b.dataset.act),
  })));
  if (plan.screenshot) await page.screenshot({ path: plan.screenshot, fullPage: true });
} catch (e) {
  result.failed = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.failed ? 1 : 0);
