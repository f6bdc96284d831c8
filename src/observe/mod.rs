//! What the proxy tells its operator about each exchange: the access-log line (target
//! `potproxy::access`, one per request and per tunnel, at info) and the request/byte counters
//! of [`crate::metrics`], the ring of recent exchanges behind the live page ([`recent`]), and
//! what it publishes for clients to set themselves up: the PAC file ([`pac`]) and the CA page
//! ([`ca_page`]).
//!
//! An [`Exchange`] is opened when a request arrives; the handler marks on it what it did (the
//! route's kind, the outcome, what was rewritten). Bodies are counted as they stream through
//! ([`Exchange::count_request`], [`Exchange::finish`]): nothing is buffered, and the access line
//! is written when the response body ends, fails or is dropped, so bytes and time are true.

pub mod ca_page;
pub mod pac;
pub mod recent;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hudsucker::Body;

use crate::metrics;

/// What kind of traffic an exchange is: the access line's `kind` and the counters' label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Player,
    Media,
    Sabr,
    Captions,
    Page,
    InnerTube,
    Other,
    /// A blind tunnel after `CONNECT`.
    Tunnel,
    /// An upgraded (WebSocket-style) connection after its `101`.
    Upgrade,
    /// A blind tunnel after a SOCKS5 `CONNECT`.
    Socks5,
    /// A gateway URL answered from potproxy's own SABR session.
    SabrGateway,
}

impl Kind {
    /// The kind of a classified request (a SABR request is marked [`Kind::Sabr`] once its
    /// plan says so).
    pub fn of(route: &crate::classify::Route) -> Kind {
        use crate::classify::Route;
        match route {
            Route::Player => Kind::Player,
            Route::Media { .. } | Route::Manifest { .. } => Kind::Media,
            Route::Subtitles { .. } => Kind::Captions,
            Route::Page => Kind::Page,
            Route::InnerTube => Kind::InnerTube,
            Route::Other => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Player => "player",
            Kind::Media => "media",
            Kind::Sabr => "sabr",
            Kind::Captions => "captions",
            Kind::Page => "page",
            Kind::InnerTube => "innertube",
            Kind::Other => "other",
            Kind::Tunnel => "tunnel",
            Kind::Upgrade => "upgrade",
            Kind::Socks5 => "socks5",
            Kind::SabrGateway => "sabr_gateway",
        }
    }

    /// Requests that carry a token (a 403 to one of them is a refusal of it).
    pub fn carries_token(self) -> bool {
        matches!(
            self,
            Kind::Player | Kind::Media | Kind::Sabr | Kind::Captions | Kind::SabrGateway
        )
    }

    /// Answers buffered whole in the proxy (worth a trim of freed memory when large).
    fn buffered(self) -> bool {
        matches!(self, Kind::Player | Kind::Page | Kind::InnerTube)
    }
}

/// How a response body ended: the access line's `body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    Complete,
    /// It broke (upstream failed, or healing gave up).
    Error,
    /// Dropped before its end (the client went away).
    Aborted,
}

impl BodyEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyEnd::Complete => "complete",
            BodyEnd::Error => "error",
            BodyEnd::Aborted => "aborted",
        }
    }
}

/// What became of an exchange: the access line's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A token went in.
    Rewritten,
    /// The client's own token was kept.
    Kept,
    /// Forwarded untouched (not the proxy's business).
    Passed,
    /// Could not be rewritten; forwarded unchanged (or 502 under `strict`).
    GaveUp,
    /// Upstream answered 403 to a request carrying a token.
    RefusedUpstream,
    /// No response from upstream; for a tunnel, a socket error ended it.
    Error,
    /// A tunnel closed after `[timeouts] tunnel_idle_secs` without a byte either way.
    IdleTimeout,
    /// A tunnel whose server side was never opened (refused or unreachable).
    NotOpened,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rewritten => "rewritten",
            Outcome::Kept => "kept",
            Outcome::Passed => "passed",
            Outcome::GaveUp => "gave_up",
            Outcome::RefusedUpstream => "refused_upstream",
            Outcome::Error => "error",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::NotOpened => "not_opened",
        }
    }
}

/// Where a token was put: the access line's `rewrite` and the rewrite counter's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    Player,
    Media,
    Sabr,
    Captions,
    /// The URLs of a player response (does not make the request `rewritten` by itself).
    PlayerResponse,
    /// Gateway URLs given to a player response's SABR-only formats (likewise).
    GatewayUrls,
}

impl Rewrite {
    pub fn as_str(self) -> &'static str {
        match self {
            Rewrite::Player => "player",
            Rewrite::Media => "media",
            Rewrite::Sabr => "sabr",
            Rewrite::Captions => "captions",
            Rewrite::PlayerResponse => "player_response",
            Rewrite::GatewayUrls => "gateway_urls",
        }
    }
}

/// What the handler did with one request, for the access log and the counters.
#[derive(Debug)]
pub struct Exchange {
    method: String,
    host: String,
    /// Without the query: query strings carry tokens, `ip=` and visitor data.
    path: String,
    started: Instant,
    request_bytes: Arc<AtomicU64>,
    marks: Mutex<Marks>,
    /// What the live page shows beyond the access line ([`recent`]).
    detail: Mutex<recent::Detail>,
}

#[derive(Debug)]
struct Marks {
    kind: Kind,
    outcome: Outcome,
    rewrite: Vec<Rewrite>,
    /// A gateway stream: its format and the SABR requests it has made so far.
    gateway: Option<(u32, Arc<std::sync::atomic::AtomicU32>)>,
}

impl Exchange {
    /// Opens the record of a request to `host` (kind `other`, outcome `passed` until marked).
    pub fn open<B>(req: &Request<B>, host: &str) -> Arc<Exchange> {
        Arc::new(Exchange {
            method: req.method().to_string(),
            host: host.to_string(),
            path: req.uri().path().to_string(),
            started: Instant::now(),
            request_bytes: Arc::new(AtomicU64::new(0)),
            marks: Mutex::new(Marks {
                kind: Kind::Other,
                outcome: Outcome::Passed,
                rewrite: Vec::new(),
                gateway: None,
            }),
            detail: Mutex::new(recent::Detail::default()),
        })
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The route's kind.
    pub fn kind(&self, kind: Kind) {
        self.marks().kind = kind;
    }

    /// The kind marked so far.
    pub fn current_kind(&self) -> Kind {
        self.marks().kind
    }

    pub fn outcome(&self, outcome: Outcome) {
        self.marks().outcome = outcome;
    }

    /// A token was put into the traffic; the request's outcome becomes `rewritten` (a player
    /// response's URLs aside).
    pub fn rewrote(&self, what: Rewrite) {
        metrics::REWRITES.with(&[what.as_str()]).inc();
        let mut m = self.marks();
        if !m.rewrite.contains(&what) {
            m.rewrite.push(what);
        }
        if !matches!(what, Rewrite::PlayerResponse | Rewrite::GatewayUrls) {
            m.outcome = Outcome::Rewritten;
        }
    }

    /// A gateway stream for format `itag`; `requests` counts its SABR requests as it runs
    /// (read when the access line is written).
    pub fn gateway(&self, itag: u32, requests: Arc<std::sync::atomic::AtomicU32>) {
        self.marks().gateway = Some((itag, requests));
    }

    /// Counts the request body on its way upstream.
    pub fn count_request(self: &Arc<Self>, req: Request<Body>) -> Request<Body> {
        let kind = self.marks().kind;
        let total = self.request_bytes.clone();
        // Looked up once: the per-frame path is an atomic add, no label lookup.
        let counter = metrics::BYTES.with(&["upstream", kind.as_str()]);
        req.map(|b| {
            Body::from(BoxBody::new(Counted {
                inner: b,
                seen: Box::new(move |n| {
                    total.fetch_add(n, Ordering::Relaxed);
                    counter.inc_by(n);
                }),
                end: None,
            }))
        })
    }

    /// Hands back `res` with its body counted; the access line is written when the body ends.
    pub fn finish(self: Arc<Self>, res: Response<Body>) -> Response<Body> {
        let status = res.status().as_u16();
        let kind = self.marks().kind;
        let bytes = Arc::new(AtomicU64::new(0));
        let seen_bytes = bytes.clone();
        let counter = metrics::BYTES.with(&["downstream", kind.as_str()]);
        res.map(|b| {
            if b.is_end_stream() {
                self.log(status, 0, BodyEnd::Complete);
                return b;
            }
            Body::from(BoxBody::new(Counted {
                inner: b,
                seen: Box::new(move |n| {
                    seen_bytes.fetch_add(n, Ordering::Relaxed);
                    counter.inc_by(n);
                }),
                end: Some(Box::new(move |how| {
                    self.log(status, bytes.load(Ordering::Relaxed), how)
                })),
            }))
        })
    }

    /// The access line for an exchange that got no response from upstream.
    pub fn failed(self: Arc<Self>, status: u16) {
        self.outcome(Outcome::Error);
        self.log(status, 0, BodyEnd::Complete);
    }

    fn log(&self, status: u16, bytes_out: u64, body: BodyEnd) {
        // Read under the lock instead of copied out: nothing marks an exchange once it is logged.
        let m = self.marks();
        let (kind, outcome) = (m.kind.as_str(), m.outcome.as_str());
        if bytes_out >= LARGE_BUFFERED_BODY && m.kind.buffered() {
            // A moment later: the last frame's buffer is still being written when this runs.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    release_memory();
                });
            }
        }
        metrics::REQUESTS.with(&[kind, outcome]).inc();
        // Most requests rewrite nothing or one thing: only a combination allocates.
        let rewrite: std::borrow::Cow<'static, str> = match m.rewrite.as_slice() {
            [] => "-".into(),
            [one] => one.as_str().into(),
            many => many
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("+")
                .into(),
        };
        // A gateway stream adds its format and SABR request count (`-` elsewhere would put two
        // empty fields on every line).
        let gateway = m
            .gateway
            .as_ref()
            .map(|(itag, n)| (*itag, n.load(Ordering::Relaxed)));
        macro_rules! access {
            ($($extra:tt)*) => {
                tracing::info!(
                    target: "potproxy::access",
                    method = %self.method,
                    host = %self.host,
                    path = %recent::log_path(&self.path),
                    status,
                    bytes_in = self.request_bytes.load(Ordering::Relaxed),
                    bytes_out,
                    ms = self.started.elapsed().as_millis() as u64,
                    kind,
                    outcome,
                    rewrite = %rewrite,
                    body = body.as_str(),
                    $($extra)*
                    "access"
                )
            };
        }
        match gateway {
            Some((itag, requests)) => access!(format = itag, sabr_requests = requests,),
            None => access!(),
        }
        recent::record_exchange(
            self,
            recent::Line {
                status,
                bytes_out,
                body: body.as_str(),
                kind,
                outcome,
                rewrite: &rewrite,
            },
        );
    }
}

/// Buffered bodies (player responses, pages) at least this large are followed by a trim.
const LARGE_BUFFERED_BODY: u64 = 1024 * 1024;

/// Hands freed heap memory back to the OS after a large buffered body. glibc keeps freed
/// memory in its arenas (and raises its mmap threshold after the first large free, so later
/// large buffers land in the arenas too): without a trim, one 5 MB player response leaves
/// tens of MB resident for good. `malloc_trim` also releases free pages inside the arenas.
/// At most once a second; elsewhere than glibc a no-op (other allocators return memory on
/// their own schedule).
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static LAST: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if LAST.swap(now, Ordering::Relaxed) != now {
            // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// One blind tunnel (a `CONNECT` or an upgraded connection), once it closed.
#[derive(Debug)]
pub struct TunnelRecord<'a> {
    /// [`Kind::Tunnel`], [`Kind::Upgrade`] or [`Kind::Socks5`].
    pub kind: Kind,
    pub authority: &'a str,
    /// What the client was answered: 200 (CONNECT), 101 (upgrade), or the refusal.
    pub status: u16,
    pub started: Instant,
    /// Bytes from the client to the server, and back.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// [`Outcome::Passed`] (both sides closed), [`Outcome::IdleTimeout`], [`Outcome::Error`]
    /// or [`Outcome::NotOpened`].
    pub outcome: Outcome,
    /// The client the tunnel was opened for.
    pub client: Option<std::net::SocketAddr>,
}

/// The access line and counters of a blind tunnel, once it closed.
pub fn tunnel_closed(r: &TunnelRecord<'_>) {
    let (kind, outcome) = (r.kind.as_str(), r.outcome.as_str());
    metrics::REQUESTS.with(&[kind, outcome]).inc();
    metrics::BYTES.with(&["upstream", kind]).inc_by(r.bytes_in);
    metrics::BYTES
        .with(&["downstream", kind])
        .inc_by(r.bytes_out);
    tracing::info!(
        target: "potproxy::access",
        method = match r.kind {
            Kind::Upgrade => "GET",
            Kind::Socks5 => "SOCKS5",
            _ => "CONNECT",
        },
        host = %r.authority,
        path = "-",
        status = r.status,
        bytes_in = r.bytes_in,
        bytes_out = r.bytes_out,
        ms = r.started.elapsed().as_millis() as u64,
        kind,
        outcome,
        rewrite = "-",
        "access"
    );
    recent::record_tunnel(r, outcome);
}

type End = Box<dyn FnOnce(BodyEnd) + Send + Sync>;

/// A body passed through frame by frame, its data bytes reported as they go by; `end` runs
/// once with how the body ended.
struct Counted {
    inner: Body,
    seen: Box<dyn Fn(u64) + Send + Sync>,
    end: Option<End>,
}

impl Counted {
    fn end(&mut self, how: BodyEnd) {
        if let Some(end) = self.end.take() {
            end(how);
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    (self.seen)(data.len() as u64);
                }
                if self.inner.is_end_stream() {
                    self.end(BodyEnd::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => self.end(BodyEnd::Error),
            Poll::Ready(None) => self.end(BodyEnd::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.end(BodyEnd::Aborted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn bytes_are_counted_as_they_stream_and_the_body_is_unchanged() {
        let req = Request::builder()
            .uri("https://rr1---sn-x.googlevideo.com/videoplayback?pot=secret")
            .body(Body::empty())
            .unwrap();
        let ex = Exchange::open(&req, "rr1---sn-x.googlevideo.com");
        ex.kind(Kind::Media);
        assert_eq!(ex.path, "/videoplayback", "no query in the record");
        let before = metrics::BYTES.get(&["downstream", "media"]);
        let res = Response::new(Body::from(http_body_util::Full::new(Bytes::from_static(
            b"0123456789",
        ))));
        let res = ex.finish(res);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"0123456789");
        assert!(metrics::BYTES.get(&["downstream", "media"]) >= before + 10);
    }
}
