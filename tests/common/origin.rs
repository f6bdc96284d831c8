//! The fake origin server: one TLS listener that answers for every name in [`FAKE_NAMES`]
//! (YouTube, googlevideo, BotGuard's hosts), records each request as a [`Seen`], and hands it to
//! the fake that owns its route ([`super::media`] with [`super::sabr`], [`super::youtube`],
//! [`super::botguard`]);
//! anything unrouted is echoed back as JSON. It also holds the state the fakes share: the
//! switches tests flip ([`Behaviour`]), counters, and the verdict on every token checked.
//!
//! [`FAKE_NAMES`]: super::pki::FAKE_NAMES

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::net::TcpListener;

use super::botguard::{self, AttGetForm, CreateMode, FakeBotGuard, Verdict};
use super::media::{self, GvsRegime, LowTrust, Playbacks};
use super::pki::TestPki;
use super::sabr::{SabrBehaviour, SabrState};
use super::youtube;

/// What the fake serves; tests flip these (through [`FakeOrigin::behaviour`]).
#[derive(Debug, Clone)]
pub struct Behaviour {
    // Pages.
    pub page_challenge: bool,
    /// The home page answers with this status (a captcha or rate limit when not 200).
    pub page_status: u16,
    /// The page's embedded challenge inlines a no-op interpreter instead of naming one.
    pub page_interpreter_stub: bool,
    /// The page's embedded challenge was issued this long ago (its `c`).
    pub page_challenge_age_secs: u64,
    /// The `html5_generate_content_po_token` flag pages carry (`None`: absent).
    pub page_flag_video_bound: Option<bool>,
    // BotGuard.
    pub att_get: bool,
    /// How `/att/get` states its challenge (`bgChallenge`, or `botguardData` with `eats`).
    pub att_get_form: AttGetForm,
    /// The `t` of every challenge text: how long a challenge lives, seconds.
    pub challenge_ttl_secs: u64,
    pub create: CreateMode,
    /// Serve this script at the interpreter URL instead of the real fake interpreter.
    pub interpreter_override: Option<String>,
    /// Challenges name the override's hash (so it passes verification and runs).
    pub challenge_names_override: bool,
    pub null_integrity_token: bool,
    /// GenerateIT refuses a web challenge's snapshot made without the page's EVENT_ID in
    /// `yt.config_` (the Aug-2026 experiment); the TV client's challenge is not bound.
    pub require_event_id: bool,
    pub it_ttl_secs: u64,
    // googlevideo.
    /// googlevideo answers 403 to media without a valid token.
    pub enforce_media: bool,
    /// Which binding googlevideo expects of media tokens.
    pub gvs_regime: GvsRegime,
    /// UMP requests (`ump=1`, POST) are refused in-band (HTTP 200, StreamProtectionStatus 3)
    /// instead of with a 403.
    pub ump_rejections: bool,
    // Trust grading (off by default: every integrity token is high trust).
    /// `GenerateIT` grades the interpreter's environment (its canvas probe) and marks
    /// integrity tokens low or high trust.
    pub grade_trust: bool,
    /// What googlevideo does with a low-trust token's media once its budget is spent.
    pub low_trust: LowTrust,
    /// Media bytes a low-trust token gets before googlevideo cuts it off or refuses it.
    pub low_trust_budget: u64,
    /// The next this many `GenerateIT` answers are low-trust integrity tokens whatever the
    /// environment (YouTube distrusting one minter); googlevideo then judges their tokens as
    /// it judges graded ones (`low_trust`, `low_trust_budget`).
    pub distrust_next: u32,
    /// The player answers `LOGIN_REQUIRED` "confirm you're not a bot" to a low-trust player
    /// token.
    pub bot_check_low_trust: bool,
    // Faults of googlevideo itself, whatever the token.
    /// The next this many media responses end (connection closed) after `cut_at` bytes.
    pub cut_responses: u32,
    pub cut_at: u64,
    /// The next this many media requests that start past byte 0 (continuations, when the
    /// client itself asks for whole files) get a 403.
    pub forbid_continuations: u32,
    /// After this many more media responses, every media URL serves another object (other
    /// bytes, length, ETag and Last-Modified), as when a format is re-encoded.
    pub replace_object_after: Option<u32>,
    // SABR.
    /// SABR-only player responses and the SABR server ([`SabrBehaviour::on`]), its faults.
    pub sabr: SabrBehaviour,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            page_challenge: true,
            page_status: 200,
            page_interpreter_stub: false,
            page_challenge_age_secs: 0,
            page_flag_video_bound: Some(true),
            att_get: true,
            att_get_form: AttGetForm::BgChallenge,
            challenge_ttl_secs: 3600,
            create: CreateMode::Plain,
            interpreter_override: None,
            challenge_names_override: false,
            null_integrity_token: false,
            require_event_id: false,
            it_ttl_secs: 43_200,
            enforce_media: false,
            gvs_regime: GvsRegime::Video,
            ump_rejections: false,
            grade_trust: false,
            low_trust: LowTrust::Cut,
            low_trust_budget: 1024 * 1024,
            distrust_next: 0,
            bot_check_low_trust: false,
            cut_responses: 0,
            cut_at: 0,
            forbid_continuations: 0,
            replace_object_after: None,
            sabr: SabrBehaviour::default(),
        }
    }
}

/// Counters a test can assert on.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub visitor_id: usize,
    pub page: usize,
    pub att_get: usize,
    pub att_log: usize,
    pub create: usize,
    pub interpreter: usize,
    pub generate_it: usize,
    /// googlevideo refusals of low-trust tokens: responses cut, 403s, UMP status 2/3 bodies.
    pub low_trust_cuts: usize,
    pub low_trust_403s: usize,
    pub low_trust_ump: usize,
    /// Integrity tokens made low trust by [`Behaviour::distrust_next`].
    pub distrusted: usize,
    /// Player bot checks answered.
    pub bot_checks: usize,
    /// Media responses cut and continuations refused by the fault switches.
    pub faults: usize,
}

/// One request as the fake origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub host: String,
    pub path_and_query: String,
    pub version: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn query_values(&self, name: &str) -> Vec<String> {
        query_of(&self.path_and_query)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("fake received JSON")
    }
}

fn query_of(path_and_query: &str) -> &str {
    path_and_query.split_once('?').map(|x| x.1).unwrap_or("")
}

/// Shared state of the fake origin.
#[derive(Default)]
pub struct FakeState {
    seen: Mutex<Vec<Seen>>,
    pub bg: FakeBotGuard,
    pub(super) behaviour: Mutex<Behaviour>,
    pub(super) counts: Mutex<Counts>,
    /// (what, verdict) for every token the fake checked.
    pub verdicts: Mutex<Vec<(String, Verdict)>>,
    pub(super) playbacks: Playbacks,
    /// Media bytes served per low-trust token.
    pub(super) low_trust_served: Mutex<std::collections::HashMap<String, u64>>,
    /// The SABR server's record of requests and violations.
    pub sabr: SabrState,
}

impl FakeState {
    /// A snapshot of the switches, so a route reads one consistent set.
    pub(super) fn behaviour(&self) -> Behaviour {
        self.behaviour.lock().unwrap().clone()
    }

    pub(super) fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap());
    }

    pub(super) fn record_verdict(&self, what: String, verdict: Verdict) {
        self.verdicts.lock().unwrap().push((what, verdict));
    }
}

#[derive(Clone)]
pub struct FakeOrigin {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

impl FakeOrigin {
    pub async fn start(pki: &TestPki) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(FakeState::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
        let state2 = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = state2.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(serve(req, state).await) }
                    });
                    let _ = ServerBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        FakeOrigin { addr, state }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.seen.lock().unwrap())
    }

    pub fn verdicts(&self) -> Vec<(String, Verdict)> {
        self.state.verdicts.lock().unwrap().clone()
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.state.behaviour.lock().unwrap()
    }

    pub fn counts(&self) -> Counts {
        self.state.counts.lock().unwrap().clone()
    }

    /// Every SABR request the SABR server answered, in arrival order.
    pub fn sabr_requests(&self) -> Vec<super::sabr::SabrRequest> {
        self.state.sabr.requests()
    }

    /// SABR protocol slips of the clients (no `rn`, cookie not sent back, backoff not
    /// honoured...); empty for a well-behaved client.
    pub fn sabr_violations(&self) -> Vec<String> {
        self.state.sabr.violations()
    }

    /// The BotGuard challenge the fake currently hands out.
    pub fn bg_challenge(&self) -> serde_json::Value {
        self.state.bg.bg_challenge(&self.state.behaviour())
    }
}

pub(super) type FakeBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;
pub(super) type Reply = Response<FakeBody>;

pub(super) fn full(b: impl Into<Bytes>) -> FakeBody {
    Full::new(b.into()).boxed()
}

pub(super) fn status_body(status: u16, body: impl Into<Bytes>, content_type: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("access-control-allow-origin", "*")
        .body(full(body))
        .unwrap()
}

/// A request as the routes see it: the host without its port, the body already read (except
/// for media GETs, which never have one).
pub(super) struct FakeRequest {
    pub parts: http::request::Parts,
    pub host: String,
    pub path: String,
    pub path_and_query: String,
    pub body: Vec<u8>,
}

impl FakeRequest {
    /// The first value of query parameter `name`, as sent (not percent-decoded).
    pub fn param(&self, name: &str) -> Option<String> {
        query_of(&self.path_and_query)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn serve(req: Request<Incoming>, state: Arc<FakeState>) -> Reply {
    let req = record(req, &state).await;
    media::route(&state, &req)
        .or_else(|| youtube::route(&state, &req))
        .or_else(|| botguard::route(&state, &req))
        .unwrap_or_else(|| echo(&req))
}

/// Reads the request and appends it to what the fake has seen.
async fn record(req: Request<Incoming>, state: &FakeState) -> FakeRequest {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.host().map(str::to_string))
        .unwrap_or_default();
    // Media bodies stream; a GET's must not be awaited.
    let body = if media::is_media_path(parts.uri.path()) && parts.method != hyper::Method::POST {
        Vec::new()
    } else {
        body.collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        host: host.clone(),
        path_and_query: path_and_query.clone(),
        version: format!("{:?}", parts.version),
        headers,
        body: body.clone(),
    });
    FakeRequest {
        host: host.split(':').next().unwrap_or("").to_string(),
        path: parts.uri.path().to_string(),
        path_and_query,
        body,
        parts,
    }
}

/// Unrouted requests: what was asked, and the JSON body received, if any.
fn echo(req: &FakeRequest) -> Reply {
    let mut echo = serde_json::json!({"ok": true, "path": req.path_and_query});
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
        echo["received"] = v;
    }
    Response::builder()
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&echo).unwrap()))
        .unwrap()
}
