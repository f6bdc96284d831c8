// potproxy's live page: polls /exchanges and /ui/state (same-origin GETs) and redraws the
// table and the state panel. Text only ever goes in through textContent.
"use strict";

const LIMIT = 100;
const EVERY_MS = 2000;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function dash(v) {
  return v === null || v === undefined ? "-" : String(v);
}

// The same columns and wording as the server's rendering (src/api/ui.rs, `cells`).
function cells(s) {
  let source = "-";
  if (s.source) source = s.minter !== null ? `${s.source} #${s.minter}` : s.source;
  if (s.cached === true) source += " (cached)";
  const outcome = s.rewrite === "-" ? s.outcome : `${s.outcome} (${s.rewrite})`;
  return [
    new Date(s.at_ms).toISOString(),
    dash(s.client),
    s.kind,
    `${s.method} ${s.host}${s.path === "-" ? "" : s.path}`,
    dash(s.video),
    dash(s.binding),
    source,
    outcome,
    String(s.status),
    `${s.refusals} / ${s.resumes}`,
    `${s.bytes_in} / ${s.bytes_out}`,
    String(s.ms),
  ];
}

function rowClass(s) {
  if (s.outcome === "rewritten") return s.refusals > 0 ? "healed" : "rewritten";
  if (["refused_upstream", "error", "gave_up", "not_opened"].includes(s.outcome)) return "bad";
  return "plain";
}

function drawExchanges(data) {
  const body = document.querySelector("#exchanges tbody");
  const rows = data.exchanges.map((s) => {
    const tr = el("tr", undefined, rowClass(s));
    tr.dataset.id = String(s.id);
    for (const c of cells(s)) tr.appendChild(el("td", c));
    return tr;
  });
  body.replaceChildren(...rows);
  document.getElementById("count").textContent =
    `${data.exchanges.length} shown · ${data.recorded} recorded · ${data.capacity} kept at most`;
}

function card(title) {
  const c = el("div", undefined, "card");
  c.appendChild(el("h3", title));
  return c;
}

function drawState(v) {
  const cards = [];
  const eg = card("Egresses");
  const t = el("table");
  const head = el("tr");
  for (const h of ["egress", "minter", "browser"]) head.appendChild(el("th", h));
  t.appendChild(el("thead")).appendChild(head);
  const tb = t.appendChild(el("tbody"));
  if (v.egresses.length === 0) {
    const td = el("td", "no minting source");
    td.colSpan = 3;
    tb.appendChild(el("tr")).appendChild(td);
  }
  for (const e of v.egresses) {
    const b = e.browser;
    const browser = b
      ? `${b.running ? "running" : "stopped"}${b.warm ? ", warm" : ""} · ${b.launches} launches, ${b.restarts} restarts, ${b.mints} mints`
      : "-";
    const tr = el("tr");
    for (const c of [e.egress, dash(e.minter), browser]) tr.appendChild(el("td", c));
    tb.appendChild(tr);
  }
  eg.appendChild(t);
  for (const s of v.set_aside) eg.appendChild(el("p", s, "warn"));
  if (v.proofs) {
    const q = v.proofs;
    eg.appendChild(el("p", `Proofs of new minters: ${q.proven} proven · ${q.refused} refused · ${q.inconclusive} inconclusive · ${q.no_target} with no media URL yet`));
  }
  cards.push(eg);

  const cache = card("Token cache");
  const p = el("p");
  p.append(el("b", String(v.cache.entries)), ` entries · ${v.cache.hits} hits · ${v.cache.misses} misses`);
  cache.appendChild(p);
  cache.appendChild(el("h3", "Sessions"));
  const ps = el("p");
  ps.append(el("b", String(v.sessions)), " entries (playbacks by ei and id)");
  cache.appendChild(ps);
  cards.push(cache);

  const fleet = card("Fleet");
  const f = v.fleet;
  fleet.appendChild(
    el("p", f ? `${f.redis} · Redis ${f.up ? "up" : "down"} · ${f.calls} calls, ${f.failed_calls} failed, ${f.outages} outages` : "not configured"),
  );
  cards.push(fleet);
  document.getElementById("state").replaceChildren(...cards);
  document.getElementById("meta").firstChild.textContent =
    `v${v.version} · up ${v.uptime_secs}s · sources: ${v.sources.join(", ")} · `;
}

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

async function poll() {
  const live = document.getElementById("live");
  try {
    const [ex, st] = await Promise.all([getJson(`/exchanges?limit=${LIMIT}`), getJson("/ui/state")]);
    drawExchanges(ex);
    drawState(st);
    live.textContent = `live · ${new Date().toLocaleTimeString()}`;
    live.className = "";
    document.body.dataset.polled = String(Number(document.body.dataset.polled || "0") + 1);
  } catch (e) {
    live.textContent = `not updating: ${e.message}`;
    live.className = "stale";
  }
  setTimeout(poll, EVERY_MS);
}

poll();
