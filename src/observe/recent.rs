//! The recent exchanges, for the live page (`/ui`) and `GET /exchanges`: a bounded ring of
//! [`ExchangeSummary`] records, one per request the hook saw and per tunnel, written when its
//! access line is. The ring is process-wide, like the counters of [`crate::metrics`], and holds
//! at most `[api] ui_exchanges` records ([`set_capacity`]); the oldest go first.
//!
//! What a summary holds is what an operator may see on a page: never a token, visitor data, a
//! DataSync ID or an `ip=` value. The binding is kept as its kind (its key only when it is a
//! video id), a path as [`display_path`] shows it, and nothing of the query.
//!
//! The marks beyond the access line's (client address, video, binding, token source and
//! minter, refusals, resumes) are set by the handler through the `Exchange` methods here.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::{Exchange, TunnelRecord};
use crate::token::Binding;
use crate::tokens::Issued;

/// Records kept when `[api] ui_exchanges` is not set.
pub const DEFAULT_CAPACITY: usize = 500;

/// The most records `[api] ui_exchanges` may ask for (a few hundred bytes each).
pub const MAX_CAPACITY: usize = 100_000;

/// Longest host kept (a DNS name is at most 253 characters).
const MAX_HOST: usize = 253;

/// One finished exchange (or tunnel) as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeSummary {
    /// Increasing from 1 in the order exchanges finished.
    pub id: u64,
    /// When it started, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The client's address (`ip:port`).
    pub client: Option<String>,
    /// player, media, sabr, captions, page, innertube, other, tunnel, upgrade.
    pub kind: String,
    pub method: String,
    pub host: String,
    /// The path as [`display_path`] shows it: never a query, a token or an address.
    pub path: String,
    pub status: u16,
    /// rewritten, kept, passed, gave_up, refused_upstream, error; tunnels: passed,
    /// idle_timeout, error, not_opened.
    pub outcome: String,
    /// What was rewritten (`player`, `media+player_response`, ...), `-` for nothing.
    pub rewrite: String,
    /// The video, when the request was for one.
    pub video: Option<String>,
    /// The token's binding kind: `video`, `session` or `unknown`.
    pub binding: Option<&'static str>,
    /// The token source that made the token put in (`static`, `botguard`, `browser`, ...).
    pub source: Option<&'static str>,
    /// The minter within that source, when it mints.
    pub minter: Option<u64>,
    /// Whether the token came from the cache.
    pub cached: Option<bool>,
    /// Times upstream refused the proxy's token during this exchange.
    pub refusals: u32,
    /// Times a broken body was resumed.
    pub resumes: u32,
    /// Bytes from the client, and to it.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub ms: u64,
    /// How the response body ended: complete, error, aborted (`-` for tunnels).
    pub body: &'static str,
}

/// The marks an [`Exchange`] carries for its summary beyond its access line.
#[derive(Debug, Default)]
pub(super) struct Detail {
    client: Option<SocketAddr>,
    video: Option<String>,
    binding: Option<&'static str>,
    source: Option<&'static str>,
    minter: Option<u64>,
    cached: Option<bool>,
    refusals: u32,
    resumes: u32,
}

/// A bounded ring of summaries, newest last.
#[derive(Debug)]
pub struct Recent {
    inner: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    records: VecDeque<ExchangeSummary>,
    capacity: usize,
    /// Ids handed out so far.
    recorded: u64,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Recent {
            inner: Mutex::new(Ring {
                records: VecDeque::with_capacity(capacity.min(64)),
                capacity,
                recorded: 0,
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps at most `capacity` records from now on (at least one); the oldest go.
    pub fn set_capacity(&self, capacity: usize) {
        let mut r = self.ring();
        r.capacity = capacity.clamp(1, MAX_CAPACITY);
        while r.records.len() > r.capacity {
            r.records.pop_front();
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring().capacity
    }

    /// Adds `s` with the next id, dropping the oldest record when full.
    pub fn push(&self, mut s: ExchangeSummary) {
        let mut r = self.ring();
        r.recorded += 1;
        s.id = r.recorded;
        if r.records.len() >= r.capacity {
            r.records.pop_front();
        }
        r.records.push_back(s);
    }

    /// The newest `limit` records, newest first.
    pub fn latest(&self, limit: usize) -> Vec<ExchangeSummary> {
        self.ring()
            .records
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// Records ever pushed (the newest id).
    pub fn recorded(&self) -> u64 {
        self.ring().recorded
    }
}

static RECENT: LazyLock<Recent> = LazyLock::new(|| Recent::new(DEFAULT_CAPACITY));

/// The process's ring.
pub fn recent() -> &'static Recent {
    &RECENT
}

/// Sets the process's ring capacity (`[api] ui_exchanges`).
pub fn set_capacity(capacity: usize) {
    RECENT.set_capacity(capacity);
}

/// Path segments kept at most.
const MAX_SEGMENTS: usize = 3;
/// Longest segment kept.
const MAX_SEGMENT: usize = 40;

/// A request path as the page may show it: at most its first three segments, cut before any
/// segment that is not a plain word (a token, an address, an escaped value) and before
/// googlevideo's path-form parameters (`/videoplayback/ip/<address>/.../pot/<token>`), whose
/// values are tokens and addresses. `…` marks a cut.
pub fn display_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let plain = |s: &str| {
        s.len() <= MAX_SEGMENT
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    // googlevideo's path forms: everything after these prefixes is `key/value` pairs.
    let keep = match segments.as_slice() {
        ["videoplayback" | "initplayback", ..] => 1,
        ["api", "manifest", ..] => 3.min(segments.len()),
        _ => segments
            .iter()
            .take(MAX_SEGMENTS)
            .take_while(|s| plain(s) && !matches!(**s, "pot" | "ip"))
            .count(),
    };
    let keep = segments[..keep].iter().take_while(|s| plain(s)).count();
    let mut out = String::new();
    for s in &segments[..keep] {
        out.push('/');
        out.push_str(s);
    }
    if keep < segments.len() {
        out.push_str("/…");
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A request path for the access log: as sent, except googlevideo's path-form parameters
/// (`/videoplayback/ip/<address>/.../pot/<token>`, `/api/manifest/dash/.../ip/...`), whose
/// values are addresses and tokens, are cut (`…`). The log's escaping handles the rest.
pub fn log_path(path: &str) -> std::borrow::Cow<'_, str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let keep = match segments.as_slice() {
        ["videoplayback" | "initplayback", _, ..] => 1,
        ["api", "manifest", ..] => 3.min(segments.len()),
        _ => return path.into(),
    };
    format!("/{}/…", segments[..keep].join("/")).into()
}

/// A video id worth showing: 11 characters of base64url (anything else is not kept).
fn video_id(id: &str) -> Option<String> {
    let ok = id.len() == 11
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    ok.then(|| id.to_string())
}

/// The binding's kind, and its key only when it is a video id.
fn binding_kind(binding: &Binding) -> (&'static str, Option<String>) {
    match binding {
        Binding::Video(v) => ("video", video_id(v)),
        Binding::Session(_) => ("session", None),
        Binding::Unknown => ("unknown", None),
    }
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn host_shown(host: &str) -> String {
    host.chars().take(MAX_HOST).collect()
}

impl Exchange {
    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client the request came from.
    pub fn client(&self, client: SocketAddr) {
        self.detail().client = Some(client);
    }

    /// The video the request is for (kept only when it looks like a video id).
    pub fn video(&self, id: Option<&str>) {
        if let Some(v) = id.and_then(video_id) {
            self.detail().video = Some(v);
        }
    }

    /// The token put in: its binding (the kind; the key only for a video) and, when known,
    /// where it came from.
    pub fn token_from(&self, binding: &Binding, issued: Option<&Issued>) {
        let (kind, video) = binding_kind(binding);
        let mut d = self.detail();
        d.binding = Some(kind);
        if video.is_some() {
            d.video = video;
        }
        if let Some(i) = issued {
            d.source = i.provenance.as_ref().map(|p| p.source);
            d.minter = i.provenance.as_ref().and_then(|p| p.minter);
            d.cached = Some(i.cached);
        }
    }

    /// Upstream refused the proxy's token (a 403, the bot check, an in-band rejection).
    pub fn refused_token(&self) {
        self.detail().refusals += 1;
    }

    /// A body that broke was resumed with a continuation request.
    pub fn resumed(&self) {
        self.detail().resumes += 1;
    }
}

/// What an exchange's access line says, for its summary.
pub(super) struct Line<'a> {
    pub status: u16,
    pub bytes_out: u64,
    pub body: &'static str,
    pub kind: &'a str,
    pub outcome: &'a str,
    pub rewrite: &'a str,
}

/// When something that started at `started` (a monotonic instant) began, in milliseconds
/// since the Unix epoch.
fn started_at_ms(started: std::time::Instant) -> u64 {
    let at = SystemTime::now()
        .checked_sub(started.elapsed())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    millis_since_epoch(at)
}

/// Records a finished exchange in the process's ring.
pub(super) fn record_exchange(ex: &Exchange, line: Line<'_>) {
    let d = ex.detail();
    recent().push(ExchangeSummary {
        id: 0,
        at_ms: started_at_ms(ex.started),
        client: d.client.map(|c| c.to_string()),
        kind: line.kind.to_string(),
        method: ex.method.clone(),
        host: host_shown(&ex.host),
        path: display_path(&ex.path),
        status: line.status,
        outcome: line.outcome.to_string(),
        rewrite: line.rewrite.to_string(),
        video: d.video.clone(),
        binding: d.binding,
        source: d.source,
        minter: d.minter,
        cached: d.cached,
        refusals: d.refusals,
        resumes: d.resumes,
        bytes_in: ex.request_bytes.load(Ordering::Relaxed),
        bytes_out: line.bytes_out,
        ms: ex.started.elapsed().as_millis() as u64,
        body: line.body,
    });
}

/// Records a closed tunnel in the process's ring.
pub(super) fn record_tunnel(r: &TunnelRecord<'_>, outcome: &str) {
    recent().push(ExchangeSummary {
        id: 0,
        at_ms: started_at_ms(r.started),
        client: r.client.map(|c| c.to_string()),
        kind: r.kind.as_str().to_string(),
        method: match r.kind {
            super::Kind::Upgrade => "GET",
            super::Kind::Socks5 => "SOCKS5",
            _ => "CONNECT",
        }
        .to_string(),
        host: host_shown(r.authority),
        path: "-".to_string(),
        status: r.status,
        outcome: outcome.to_string(),
        rewrite: "-".to_string(),
        video: None,
        binding: None,
        source: None,
        minter: None,
        cached: None,
        refusals: 0,
        resumes: 0,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        ms: r.started.elapsed().as_millis() as u64,
        body: "-",
    });
}

#[cfg(test)]
mod log_path_tests {
    use super::log_path;

    #[test]
    fn the_access_log_keeps_paths_but_not_path_form_parameters() {
        assert_eq!(log_path("/youtubei/v1/player"), "/youtubei/v1/player");
        assert_eq!(log_path("/videoplayback"), "/videoplayback");
        assert_eq!(
            log_path("/videoplayback/id/x/ip/1.2.3.4/pot/MlM/itag/140"),
            "/videoplayback/…"
        );
        assert_eq!(
            log_path("/api/manifest/dash/id/x/ip/1.2.3.4/pot/MlM"),
            "/api/manifest/dash/…"
        );
        assert_eq!(log_path("/watch\u{202e}x"), "/watch\u{202e}x");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Token;
    use crate::tokens::Provenance;

    fn summary(host: &str) -> ExchangeSummary {
        ExchangeSummary {
            id: 0,
            at_ms: 0,
            client: None,
            kind: "media".into(),
            method: "GET".into(),
            host: host.into(),
            path: "/videoplayback".into(),
            status: 200,
            outcome: "rewritten".into(),
            rewrite: "media".into(),
            video: None,
            binding: None,
            source: None,
            minter: None,
            cached: None,
            refusals: 0,
            resumes: 0,
            bytes_in: 0,
            bytes_out: 0,
            ms: 0,
            body: "complete",
        }
    }

    #[test]
    fn the_ring_keeps_only_the_newest_records_newest_first() {
        let ring = Recent::new(3);
        for i in 0..5 {
            ring.push(summary(&format!("h{i}")));
        }
        let hosts: Vec<String> = ring.latest(10).into_iter().map(|s| s.host).collect();
        assert_eq!(hosts, ["h4", "h3", "h2"]);
        assert_eq!(
            ring.latest(1)[0].id,
            5,
            "ids keep counting past the capacity"
        );
        assert_eq!(ring.recorded(), 5);
        ring.set_capacity(1);
        assert_eq!(ring.latest(10).len(), 1, "shrinking drops the oldest");
        assert_eq!(ring.latest(10)[0].host, "h4");
    }

    #[test]
    fn paths_are_shown_without_tokens_addresses_or_path_form_parameters() {
        for (path, shown) in [
            ("/youtubei/v1/player", "/youtubei/v1/player"),
            ("/", "/"),
            ("/watch", "/watch"),
            ("/videoplayback", "/videoplayback"),
            (
                "/videoplayback/id/abc.1/ip/203.0.113.9/pot/MlMQUj3TTz08aRBu",
                "/videoplayback/…",
            ),
            (
                "/api/manifest/hls_variant/expire/1900000000/ip/203.0.113.9/pot/Mlx/file/index.m3u8",
                "/api/manifest/hls_variant/…",
            ),
            ("/api/timedtext", "/api/timedtext"),
            ("/a/b/c/d/e", "/a/b/c/…"),
            ("/x/pot/MlMQUj3TTz08aRBu", "/x/…"),
            ("/x/ip/203.0.113.9", "/x/…"),
            (
                "/s/MlMQUj3TTz08aRBuqkQKUJI8sgaSz5WHWnAeQjJN7Jv-qhe==",
                "/s/…",
            ),
            ("/s/a%2Fb", "/s/…"),
        ] {
            assert_eq!(display_path(path), shown, "{path}");
        }
    }

    #[test]
    fn a_finished_exchange_is_recorded_with_its_marks_and_never_its_binding_key() {
        let visitor = "CgtWaXNpdG9yRGF0YRIEGgAgOA%3D%3D";
        let token = "MlMQUj3TTz08aRBuqkQKUJI8sgaSz5WHWnAeQjJN7Jv-qhe-jZfl7VTihUv-RpMuTIpSK6hNhYf05Lt9IVFY-Gd4O1PI0miFlyOlU0zhdIr9Ac5aew==";
        let host = "rr9---sn-recent-test.googlevideo.com";
        let req = http::Request::builder()
            .uri(format!(
                "https://{host}/videoplayback/ip/203.0.113.9/pot/{token}?ip=203.0.113.9"
            ))
            .body(())
            .unwrap();
        let ex = Exchange::open(&req, host);
        ex.kind(crate::observe::Kind::Media);
        ex.client("192.0.2.7:50000".parse().unwrap());
        ex.video(Some("dQw4w9WgXcQ"));
        let issued = Issued {
            token: Token::parse(token).unwrap(),
            expires_at: SystemTime::now(),
            cached: false,
            provenance: Some(Provenance {
                source: "botguard",
                minter: Some(7),
            }),
        };
        ex.token_from(&Binding::Session(visitor.into()), Some(&issued));
        ex.refused_token();
        ex.resumed();
        ex.resumed();
        ex.failed(502);
        let s = recent()
            .latest(MAX_CAPACITY)
            .into_iter()
            .find(|s| s.host == host)
            .expect("recorded");
        assert_eq!(s.client.as_deref(), Some("192.0.2.7:50000"));
        assert_eq!((s.kind.as_str(), s.outcome.as_str()), ("media", "error"));
        assert_eq!(s.status, 502);
        assert_eq!(s.binding, Some("session"));
        assert_eq!(s.video.as_deref(), Some("dQw4w9WgXcQ"));
        assert_eq!((s.source, s.minter), (Some("botguard"), Some(7)));
        assert_eq!((s.refusals, s.resumes), (1, 2));
        assert_eq!(s.path, "/videoplayback/…");
        let json = serde_json::to_string(&s).unwrap();
        for secret in [visitor, &token[..12], "203.0.113.9"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }

    #[test]
    fn only_video_ids_are_kept_as_videos() {
        assert_eq!(video_id("dQw4w9WgXcQ").as_deref(), Some("dQw4w9WgXcQ"));
        for not in ["", "short", "CgtWaXNpdG9yRGF0YRIE", "dQw4w9WgXc/"] {
            assert_eq!(video_id(not), None, "{not}");
        }
        assert_eq!(
            binding_kind(&Binding::Video("dQw4w9WgXcQ".into())),
            ("video", Some("dQw4w9WgXcQ".into()))
        );
        assert_eq!(binding_kind(&Binding::Unknown), ("unknown", None));
    }
}
