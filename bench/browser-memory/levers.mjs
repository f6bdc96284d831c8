// What one more browser context costs, and what a memory lever changes about it: Chromium started
// as potproxy starts it (the flags of `launch_args` in src/browser/mod.rs, DevTools on the pipe),
// N browser contexts each with a page at https://www.youtube.com/ (answered locally, as the
// minter answers it) holding Google's real BotGuard interpreter, then the PSS of the browser's
// process tree by process kind once it settles, and the page's window and screen.
//
// Usage: node bench/browser-memory/levers.mjs N ["extra flags"] [purge]
//   N       contexts (compare 1 and 10)
//   flags   space-separated, after potproxy's own (a --disable-features here replaces ours)
//   purge   "purge": a critical memory-pressure notification to every process before measuring
// Needs `chromium` on PATH and POTPROXY_FIXTURES (default ../shared/fixtures). Node 20+, no
// packages. Used for the lever table in BENCHMARKS.md "Browser: one Chromium for every egress".
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const N = Number(process.argv[2]) || 1;
const extra = (process.argv[3] || "").split(" ").filter(Boolean);
const purge = process.argv[4] === "purge";
const OURS = [
  "--headless=new", "--remote-debugging-pipe", "--disable-blink-features=AutomationControlled",
  "--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run", "--no-default-browser-check",
  "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
  "--disable-extensions", "--disable-sync", "--disable-breakpad", "--disable-dev-shm-usage",
  "--disable-gpu",
  "--disable-features=SpareRendererForSitePerProcess,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
  "--mute-audio", "--lang=en-US", "--window-size=1920,1080", "--window-position=0,0",
  "--screen-info={1920x1080}",
];
const PAGE = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>YouTube</title></head><body></body></html>';
const fixtures = process.env.POTPROXY_FIXTURES || path.resolve("../shared/fixtures");
const bg = path.join(fixtures, "botguard");
const interpreter = fs.readFileSync(
  path.join(bg, fs.readdirSync(bg).find((f) => f.startsWith("interpreter_"))), "utf8");

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "potproxy-levers-"));
const args = [...OURS, ...extra, `--user-data-dir=${profile}`, "about:blank"];
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
const browser = spawn("chromium", args, { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });

// CDP over the pipe: JSON messages, each ended by a NUL byte; sessions flattened.
let nextId = 0;
const waiting = new Map();
let pending = Buffer.alloc(0);
browser.stdio[4].on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (let end; (end = pending.indexOf(0)) >= 0;) {
    const msg = JSON.parse(pending.subarray(0, end).toString());
    pending = pending.subarray(end + 1);
    if (msg.id && waiting.has(msg.id)) {
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) w.reject(new Error(JSON.stringify(msg.error))); else w.resolve(msg.result);
    } else if (msg.method === "Fetch.requestPaused") {
      answer(msg.params, msg.sessionId);
    }
  }
});
function send(method, params = {}, sessionId) {
  return new Promise((resolve, reject) => {
    const id = ++nextId;
    waiting.set(id, { resolve, reject });
    browser.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  });
}
function answer(p, sessionId) {
  if (p.resourceType === "Document") {
    send("Fetch.fulfillRequest", {
      requestId: p.requestId, responseCode: 200,
      responseHeaders: [{ name: "content-type", value: "text/html; charset=utf-8" }],
      body: Buffer.from(PAGE).toString("base64"),
    }, sessionId);
  } else {
    send("Fetch.failRequest", { requestId: p.requestId, errorReason: "BlockedByClient" }, sessionId);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function treePids(root) {
  const children = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone meanwhile */ }
  }
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]) || []));
  return all;
}
function pss(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (k) => Number((text.match(new RegExp(`^${k}:\\s+(\\d+)`, "m")) || [0, 0])[1]);
    return { total: kb("Pss"), heap: kb("Pss_Anon"), files: kb("Pss_File"), shm: kb("Pss_Shmem") };
  } catch {
    return { total: 0, heap: 0, files: 0, shm: 0 };
  }
}
function byKind() {
  const kinds = {};
  let total = 0;
  for (const pid of treePids(browser.pid)) {
    let cmd = "";
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"); } catch { continue; }
    const type = (cmd.match(/--type=([a-z-]+)/) || [null, "browser"])[1];
    const sub = (cmd.match(/--utility-sub-type=([a-z_]+)/) || [null, ""])[1].split("_")[0];
    const kind = sub ? `${type}:${sub}` : type;
    const p = pss(pid);
    total += p.total;
    const k = (kinds[kind] ||= { n: 0, total: 0, heap: 0, files: 0, shm: 0 });
    k.n++;
    for (const f of ["total", "heap", "files", "shm"]) k[f] += p[f];
  }
  return { total, kinds };
}

const mb = (kb) => (kb / 1024).toFixed(1);
const sessions = [];
for (let i = 0; i < N; i++) {
  const { browserContextId } = await send("Target.createBrowserContext");
  const { targetId } = await send("Target.createTarget", { url: "about:blank", browserContextId });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  sessions.push(sessionId);
  await send("Fetch.enable", { patterns: [{ urlPattern: "*" }] }, sessionId);
  await send("Page.navigate", { url: "https://www.youtube.com/" }, sessionId);
  await sleep(300);
  await send("Runtime.evaluate", { expression: `${interpreter}\n;0` }, sessionId);
  if (i === 0) {
    // As the minter does: the start window goes once a context has its own.
    const { targetInfos } = await send("Target.getTargets");
    for (const t of targetInfos) {
      if (t.type === "page" && t.url === "about:blank" && t.browserContextId !== browserContextId) {
        await send("Target.closeTarget", { targetId: t.targetId });
      }
    }
  }
}
if (purge) await send("Memory.simulatePressureNotification", { level: "critical" }, sessions[0]);
let last = byKind().total;
for (let i = 0; i < 10; i++) {
  await sleep(1000);
  const now = byKind().total;
  if (Math.abs(now - last) * 50 <= last) break;
  last = now;
}
const { total, kinds } = byKind();
const seen = await send("Runtime.evaluate", {
  returnByValue: true,
  expression: "JSON.stringify({visibility: document.visibilityState, inner: [innerWidth, innerHeight], outer: [outerWidth, outerHeight], at: [screenX, screenY], screen: [screen.width, screen.height]})",
}, sessions[0]);
const heap = await send("Runtime.getHeapUsage", {}, sessions[0]);
console.log(`contexts ${N}: PSS ${mb(total)} MB`);
for (const [k, v] of Object.entries(kinds)) {
  console.log(`  ${k} x${v.n}: ${mb(v.total)} (heap ${mb(v.heap)}, files ${mb(v.files)}, shm ${mb(v.shm)})`);
}
console.log(`  first page: ${seen.result.value}; its JS heap ${(heap.totalSize / 1048576).toFixed(1)} MB, Blink ${(heap.embedderHeapUsedSize / 1048576).toFixed(1)} MB`);
browser.kill("SIGKILL");
await sleep(300);
fs.rmSync(profile, { recursive: true, force: true });
process.exit(0);
