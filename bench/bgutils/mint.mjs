// BgUtils minting the same challenge potproxy mints, for a side-by-side benchmark.
// Usage: node mint.mjs <dir> <count>
//   <dir>/challenge.json  bgChallenge object (interpreterHash, program, globalName)
//   <dir>/interpreter.js  the interpreter script
//   <dir>/it.json         a GenerateIT answer [integrityToken, ttl, ...] for this VM's snapshot
// Prints one JSON line: {vm_setup_ms, snapshot_ms, minter_ms, mint_us_avg, rss_mb, tokens_ok}.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { JSDOM } from 'jsdom';
import { BotGuardClient } from 'bgutils-js/botguard';
import { WebPoMinter } from 'bgutils-js/webpo';

const [dir, countArg] = process.argv.slice(2);
const count = Number(countArg || 200);
const challenge = JSON.parse(fs.readFileSync(`${dir}/challenge.json`, 'utf8'));
const interpreter = fs.readFileSync(`${dir}/interpreter.js`, 'utf8');
const it = JSON.parse(fs.readFileSync(`${dir}/it.json`, 'utf8'));

const t0 = performance.now();
const userAgent = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36(KHTML, like Gecko)';
const dom = new JSDOM('<!DOCTYPE html><html lang="en"><head><title></title></head><body></body></html>', {
  url: 'https://www.youtube.com/', referrer: 'https://www.youtube.com/', userAgent,
});
Object.assign(globalThis, { window: dom.window, document: dom.window.document, location: dom.window.location, origin: dom.window.origin });
if (!Reflect.has(globalThis, 'navigator')) Object.defineProperty(globalThis, 'navigator', { value: dom.window.navigator });
// The 2026 interpreter listens on its global object; node's global is not an EventTarget.
for (const m of ['addEventListener', 'removeEventListener', 'dispatchEvent']) {
  if (!globalThis[m]) globalThis[m] = dom.window[m].bind(dom.window);
}
new Function(interpreter)();
const botguard = await BotGuardClient.create({ program: challenge.program, globalName: challenge.globalName, globalObject: globalThis });
const t1 = performance.now();
const webPoSignalOutput = [];
const response = await botguard.snapshot({ webPoSignalOutput });
const t2 = performance.now();
const minter = await WebPoMinter.create({ integrityToken: it[0] }, webPoSignalOutput);
const t3 = performance.now();
let ok = 0;
const m0 = performance.now();
for (let i = 0; i < count; i++) {
  const tok = await minter.mintAsWebsafeString(`vid${String(i).padStart(8, '0')}`);
  if (Buffer.from(tok.replace(/-/g, '+').replace(/_/g, '/'), 'base64')[0] === 0x32) ok++;
}
const m1 = performance.now();
console.log(JSON.stringify({
  vm_setup_ms: +(t1 - t0).toFixed(1), snapshot_ms: +(t2 - t1).toFixed(1), minter_ms: +(t3 - t2).toFixed(1),
  mint_us_avg: +(((m1 - m0) * 1000) / count).toFixed(1), rss_mb: +(process.memoryUsage().rss / 1048576).toFixed(1),
  response_len: response.length, tokens_ok: ok, count,
}));
process.exit(0);
