//! The live page of what the proxy did: `GET /ui` (server-rendered HTML, escaped throughout),
//! its script `GET /ui/app.js` (plain JavaScript that polls and redraws, no build chain), the
//! state behind it `GET /ui/state` (egresses with their minter and browser, the token cache,
//! sessions, the fleet), and `GET /exchanges?limit=N` for scripts: the recent exchanges of
//! [`crate::observe::recent`], newest first.
//!
//! The routes sit behind the API's access checks like every other (a page from another origin
//! is refused; the page's own polls are same-origin GETs, which browsers send without an
//! `Origin`). Nothing here can show a token, visitor data or an `ip=` value: the summaries
//! never hold one, and egress keys have their passwords redacted.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

use super::ApiState;
use super::responses::{ApiResponse, error, json_response};
use crate::observe::ca_page::html_escape as escape;
use crate::observe::recent::{self, ExchangeSummary};

/// Rows `/exchanges` answers without `limit`, and the page shows.
pub const DEFAULT_LIMIT: usize = 100;

const SCRIPT: &str = include_str!("ui.js");

/// The page's own resources only, inline style, polls to this origin, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// Answers `/ui`, `/ui/app.js` and `/ui/state`.
pub(super) fn page(path: &str, state: &ApiState) -> ApiResponse {
    match path {
        "/ui/app.js" => text("text/javascript; charset=utf-8", SCRIPT.to_string()),
        "/ui/state" => json_response(StatusCode::OK, &json!(view(state))),
        _ => {
            let rows = recent::recent().latest(DEFAULT_LIMIT);
            text("text/html; charset=utf-8", render(&view(state), &rows))
        }
    }
}

/// `GET /exchanges?limit=N`: `{"capacity", "recorded", "exchanges": [...]}`, newest first.
pub(super) fn exchanges(query: Option<&str>) -> ApiResponse {
    let ring = recent::recent();
    let limit = match parse_limit(query, ring.capacity()) {
        Ok(n) => n,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let mut res = json_response(
        StatusCode::OK,
        &json!({
            "capacity": ring.capacity(),
            "recorded": ring.recorded(),
            "exchanges": ring.latest(limit),
        }),
    );
    no_store(&mut res);
    res
}

/// `limit` from a query: [`DEFAULT_LIMIT`] when absent, at most `capacity`; not a positive
/// number is the caller's mistake.
pub fn parse_limit(query: Option<&str>, capacity: usize) -> Result<usize, String> {
    let given = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.into_owned());
    let n = match given {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("limit must be a positive number, not `{v}`")),
        },
    };
    Ok(n.min(capacity))
}

/// What the page shows besides the exchanges.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct View {
    pub version: &'static str,
    pub uptime_secs: u64,
    /// The token sources, in order.
    pub sources: Vec<&'static str>,
    pub egresses: Vec<EgressView>,
    /// Sources set aside after refusals (`/minter_cache` lines).
    pub set_aside: Vec<String>,
    pub cache: CacheView,
    /// Proofs of new minters by outcome (`[tokens] prove_new_minters`; `None`: off).
    pub proofs: Option<ProofsView>,
    /// Entries in the session store (each learned playback under its `ei` and its `id`).
    pub sessions: i64,
    pub fleet: Option<FleetView>,
    pub capacity: usize,
    pub recorded: u64,
}

/// One egress: its BotGuard minter's state and its browser's, where those sources run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EgressView {
    /// `direct`, or the egress proxy's URL with any password redacted.
    pub egress: String,
    pub minter: Option<&'static str>,
    pub browser: Option<BrowserView>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BrowserView {
    pub running: bool,
    pub warm: bool,
    pub launches: u64,
    pub restarts: u64,
    pub mints: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProofsView {
    pub proven: u64,
    pub refused: u64,
    pub inconclusive: u64,
    pub no_target: u64,
}

impl ProofsView {
    fn line(&self) -> String {
        format!(
            "Proofs of new minters: {} proven · {} refused · {} inconclusive · {} with no media URL yet",
            self.proven, self.refused, self.inconclusive, self.no_target
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CacheView {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FleetView {
    /// The Redis URL, password redacted.
    pub redis: String,
    pub up: bool,
    pub calls: u64,
    pub failed_calls: u64,
    pub outages: u64,
}

fn view(state: &ApiState) -> View {
    let services = &state.services;
    let mut egresses: Vec<EgressView> = Vec::new();
    let mut slot = |key: &str| -> usize {
        let key = crate::redact::redact_url(key);
        match egresses.iter().position(|e| e.egress == key) {
            Some(i) => i,
            None => {
                egresses.push(EgressView {
                    egress: key,
                    ..EgressView::default()
                });
                egresses.len() - 1
            }
        }
    };
    let mut minters = Vec::new();
    if let Some(pool) = &services.minters {
        for (key, s) in pool.states() {
            minters.push((slot(&key), s.as_str()));
        }
    }
    let mut browsers = Vec::new();
    if let Some(pool) = &services.browsers {
        for (key, b) in pool.states() {
            let view = BrowserView {
                running: b.running,
                warm: b.warm,
                launches: b.stats.launches,
                restarts: b.stats.restarts,
                mints: b.stats.mints,
            };
            browsers.push((slot(&key), view));
        }
    }
    for (i, s) in minters {
        egresses[i].minter = Some(s);
    }
    for (i, b) in browsers {
        egresses[i].browser = Some(b);
    }
    let stats = services.tokens.cache().stats();
    let ring = recent::recent();
    View {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        sources: services.tokens.source_names(),
        egresses,
        set_aside: services
            .tokens
            .set_aside()
            .iter()
            .map(super::set_aside_entry)
            .collect(),
        cache: CacheView {
            entries: stats.entries,
            hits: stats.hits,
            misses: stats.misses,
        },
        proofs: services.tokens.prover().map(|p| {
            let [proven, refused, inconclusive, no_target] = p.counts();
            ProofsView {
                proven,
                refused,
                inconclusive,
                no_target,
            }
        }),
        sessions: crate::metrics::SESSIONS.get(&[]),
        fleet: state.cluster.as_ref().map(|c| FleetView {
            redis: crate::redact::redact_url(c.url()),
            up: c.available(),
            calls: c.calls(),
            failed_calls: c.failures(),
            outages: c.outages(),
        }),
        capacity: ring.capacity(),
        recorded: ring.recorded(),
    }
}

fn no_store(res: &mut ApiResponse) {
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
}

fn text(content_type: &'static str, body: String) -> ApiResponse {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-store")
        .header(http::header::CONTENT_SECURITY_POLICY, CSP)
        .header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(http::header::X_FRAME_OPTIONS, "DENY")
        .header(http::header::REFERRER_POLICY, "no-referrer")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// The table's columns, in order (the script draws the same ones).
const COLUMNS: [&str; 12] = [
    "time",
    "client",
    "kind",
    "request",
    "video",
    "binding",
    "token source",
    "outcome",
    "status",
    "refusals / resumes",
    "bytes in / out",
    "ms",
];

/// One exchange's cells, as text (escaped when written).
fn cells(s: &ExchangeSummary) -> [String; 12] {
    let dash = |o: Option<&str>| o.unwrap_or("-").to_string();
    let source = match (s.source, s.minter) {
        (Some(src), Some(m)) => format!("{src} #{m}"),
        (Some(src), None) => src.to_string(),
        (None, _) => "-".into(),
    };
    let source = match s.cached {
        Some(true) => format!("{source} (cached)"),
        _ => source,
    };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.at_ms);
    let outcome = match s.rewrite.as_str() {
        "-" => s.outcome.clone(),
        r => format!("{} ({r})", s.outcome),
    };
    [
        super::iso8601(at),
        dash(s.client.as_deref()),
        s.kind.clone(),
        format!(
            "{} {}{}",
            s.method,
            s.host,
            if s.path == "-" { "" } else { &s.path }
        ),
        dash(s.video.as_deref()),
        dash(s.binding),
        source,
        outcome,
        s.status.to_string(),
        format!("{} / {}", s.refusals, s.resumes),
        format!("{} / {}", s.bytes_in, s.bytes_out),
        s.ms.to_string(),
    ]
}

/// The whole page: the state and the newest `rows`, every value escaped.
pub fn render(view: &View, rows: &[ExchangeSummary]) -> String {
    let mut h = String::with_capacity(8192 + rows.len() * 400);
    h.push_str(HEAD);
    h.push_str(&format!(
        "<header><h1>potproxy</h1><span id=\"meta\">v{} · up {}s · sources: {} · <span id=\"live\">live</span></span></header>\n",
        escape(view.version),
        view.uptime_secs,
        escape(&view.sources.join(", ")),
    ));
    h.push_str("<section id=\"state\">\n");
    h.push_str(&render_state(view));
    h.push_str("</section>\n<h2>Recent exchanges <small id=\"count\">");
    h.push_str(&format!(
        "{} shown · {} recorded · {} kept at most",
        rows.len(),
        view.recorded,
        view.capacity
    ));
    h.push_str("</small></h2>\n<table id=\"exchanges\"><thead><tr>");
    for c in COLUMNS {
        h.push_str(&format!("<th>{}</th>", escape(c)));
    }
    h.push_str("</tr></thead><tbody>\n");
    for s in rows {
        h.push_str(&format!(
            "<tr class=\"{}\" data-id=\"{}\">",
            row_class(s),
            s.id
        ));
        for c in cells(s) {
            h.push_str(&format!("<td>{}</td>", escape(&c)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
    h.push_str("<script src=\"/ui/app.js\" defer></script>\n</body></html>\n");
    h
}

/// A row's class, for its colour: what happened to the token.
fn row_class(s: &ExchangeSummary) -> &'static str {
    match s.outcome.as_str() {
        "rewritten" if s.refusals > 0 => "healed",
        "rewritten" => "rewritten",
        "refused_upstream" | "error" | "gave_up" | "not_opened" => "bad",
        _ => "plain",
    }
}

/// The state panel (egresses, cache, sessions, fleet), redrawn by the script from `/ui/state`.
fn render_state(v: &View) -> String {
    let mut h = String::new();
    h.push_str("<div class=\"card\"><h3>Egresses</h3><table><thead><tr><th>egress</th><th>minter</th><th>browser</th></tr></thead><tbody>");
    if v.egresses.is_empty() {
        h.push_str("<tr><td colspan=\"3\">no minting source</td></tr>");
    }
    for e in &v.egresses {
        let browser = match &e.browser {
            None => "-".to_string(),
            Some(b) => format!(
                "{}{} · {} launches, {} restarts, {} mints",
                if b.running { "running" } else { "stopped" },
                if b.warm { ", warm" } else { "" },
                b.launches,
                b.restarts,
                b.mints
            ),
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.egress),
            escape(e.minter.unwrap_or("-")),
            escape(&browser)
        ));
    }
    h.push_str("</tbody></table>");
    for s in &v.set_aside {
        h.push_str(&format!("<p class=\"warn\">{}</p>", escape(s)));
    }
    if let Some(p) = &v.proofs {
        h.push_str(&format!("<p>{}</p>", escape(&p.line())));
    }
    h.push_str("</div>");
    h.push_str(&format!(
        "<div class=\"card\"><h3>Token cache</h3><p><b>{}</b> entries · {} hits · {} misses</p><h3>Sessions</h3><p><b>{}</b> entries (playbacks by ei and id)</p></div>",
        v.cache.entries, v.cache.hits, v.cache.misses, v.sessions
    ));
    h.push_str("<div class=\"card\"><h3>Fleet</h3>");
    match &v.fleet {
        None => h.push_str("<p>not configured</p>"),
        Some(f) => h.push_str(&format!(
            "<p>{} · Redis {} · {} calls, {} failed, {} outages</p>",
            escape(&f.redis),
            if f.up { "up" } else { "down" },
            f.calls,
            f.failed_calls,
            f.outages
        )),
    }
    h.push_str("</div>\n");
    h
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>potproxy</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0 16px 16px;color:#1d2330;background:#f6f7f9}
header{display:flex;align-items:baseline;gap:16px}
h1{font-size:20px;margin:12px 0}
h2{font-size:15px;margin:16px 0 6px}
h2 small,#meta{color:#5b6475;font-weight:normal}
h3{font-size:13px;margin:0 0 4px}
#state{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 12px}
.card p{margin:0 0 6px}
.warn{color:#a15c00}
table{border-collapse:collapse}
#exchanges{width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;white-space:nowrap}
th{background:#eef0f4;font-weight:600}
td:nth-child(4){white-space:normal;overflow-wrap:anywhere;min-width:24em}
tr.rewritten td:nth-child(8){color:#146c2e;font-weight:600}
tr.healed td:nth-child(8){color:#0b5cad;font-weight:600}
tr.bad td:nth-child(8){color:#b3261e;font-weight:600}
#live.stale{color:#b3261e}
</style></head><body>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, video: Option<&str>) -> ExchangeSummary {
        ExchangeSummary {
            id: 3,
            at_ms: 1_795_300_000_123,
            client: Some("127.0.0.1:50000".into()),
            kind: "media".into(),
            method: "GET".into(),
            host: host.into(),
            path: "/videoplayback".into(),
            status: 200,
            outcome: "rewritten".into(),
            rewrite: "media".into(),
            video: video.map(str::to_string),
            binding: Some("video"),
            source: Some("botguard"),
            minter: Some(4),
            cached: Some(true),
            refusals: 1,
            resumes: 2,
            bytes_in: 10,
            bytes_out: 2000,
            ms: 12,
            body: "complete",
        }
    }

    #[test]
    fn the_page_shows_each_exchange_and_escapes_what_it_did_not_write() {
        let view = View {
            egresses: vec![EgressView {
                egress: "http://u:***@p.example:3128/".into(),
                minter: Some("ready"),
                browser: None,
            }],
            set_aside: vec!["set aside: browser @ direct for 30s: <b>403</b>".into()],
            proofs: Some(ProofsView {
                proven: 2,
                refused: 1,
                inconclusive: 0,
                no_target: 3,
            }),
            ..View::default()
        };
        let page = render(
            &view,
            &[
                row("rr1---sn-x.googlevideo.com", Some("dQw4w9WgXcQ")),
                row("<script>alert(1)</script>", None),
            ],
        );
        assert!(page.contains("dQw4w9WgXcQ"));
        assert!(page.contains("botguard #4 (cached)"));
        assert!(page.contains("rewritten (media)"));
        assert!(page.contains("1 / 2"), "refusals / resumes");
        assert!(page.contains("2026-11-21T22:26:40.123Z"));
        assert!(page.contains("<td>ready</td>"));
        assert!(
            page.contains("Proofs of new minters: 2 proven · 1 refused · 0 inconclusive · 3 with no media URL yet"),
            "proof counts"
        );
        assert!(!page.contains("<script>alert"), "a host is escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            page.contains("&lt;b&gt;403&lt;/b&gt;"),
            "set-aside reasons are escaped"
        );
        assert_eq!(
            page.matches("<script").count(),
            1,
            "only the page's own script"
        );
    }

    #[test]
    fn limit_defaults_is_capped_and_must_be_a_positive_number() {
        assert_eq!(parse_limit(None, 500), Ok(DEFAULT_LIMIT));
        assert_eq!(parse_limit(Some("limit=7"), 500), Ok(7));
        assert_eq!(parse_limit(Some("x=1&limit=9000"), 500), Ok(500));
        assert_eq!(parse_limit(Some("limit=3"), 2), Ok(2));
        for bad in ["limit=0", "limit=-1", "limit=ten", "limit="] {
            assert!(parse_limit(Some(bad), 500).is_err(), "{bad}");
        }
    }

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
