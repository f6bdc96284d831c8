//! The SABR gateway's serving stage: a GET or HEAD on a gateway URL ([`crate::sabr::gateway`])
//! is answered here, never forwarded. Its bytes come from a SABR session potproxy runs to
//! googlevideo with its own token ([`crate::sabr::session::Pull`] decides, this stage sends):
//!
//! ```text
//!  parse     the gateway URL (400 naming a bad field)
//!  frame     Range header (206), range= query (200 with those bytes), neither (200); 416
//!  HEAD      headers only, no SABR request
//!  token     binding as for a SABR body (the playback learned for the SABR URL, else the
//!            video); the session's regime
//!  loop      next_request -> POST -> UMP parts -> Pull::on_event -> bytes to the client
//!            (a bounded channel: a slow client slows the SABR reads, memory stays a few
//!            chunks); after each response: done, back off, heal a refusal (heal::policy:
//!            other regime / fresh token), reload the player response, or fail
//! ```
//!
//! A SABR_ERROR ends a SABR session, not the stream: a new session with a fresh token goes on
//! from where the bytes stopped, within the stream's budget.
//!
//! The client gets its status and headers only once the first bytes are in hand, so a stream
//! that cannot start (a refused token no healing fixes, SABR_ERRORs past the budget) is a 502
//! naming why. A
//! stream that fails later ends the body in an error: the client sees a short transfer and asks
//! again from where it stopped, never bytes that were not received.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hudsucker::{Body, RequestOrResponse};
use tokio::sync::mpsc;

use super::stages::fresh_token;
use super::{PotHandler, Shared, text_response};
use crate::bindings::{Identity, Regime, TokenContext, binding_for};
use crate::classify::{query_param, split_path_query};
use crate::heal::{Decision, History, MAX_RESENDS, Outcome};
use crate::metrics;
use crate::observe::{Exchange, Kind};
use crate::sabr::gateway::Gateway;
use crate::sabr::range::{Wanted, wanted};
use crate::sabr::session::{Halt, Next, Pull, SabrFailure};
use crate::tokens::{Issued, TokenRequest};
use crate::ump::Reader;

/// Chunks in flight between the SABR reads and the client: the memory a stream holds beyond
/// one network read.
const CHANNEL_CHUNKS: usize = 4;
/// A SABR response that sends nothing for this long is treated as cut.
const READ_IDLE: Duration = Duration::from_secs(30);
/// While the minter warms up the token service answers with cold-start placeholders; a
/// stream waits this long for a real token, up to this many times (about 20 s).
const COLD_WAIT: Duration = Duration::from_millis(500);
const MAX_COLD_WAITS: u32 = 40;

type Chunk = Result<Bytes, std::io::Error>;

/// The `n` note is logged once per process: it is about the clients, not one stream.
static N_NOTED: AtomicBool = AtomicBool::new(false);

impl PotHandler {
    /// A request for a gateway URL: answered here.
    pub(super) async fn on_gateway_request(
        &mut self,
        req: http::Request<Body>,
        pq: &str,
    ) -> RequestOrResponse {
        if let Some(ex) = self.observed() {
            ex.kind(Kind::SabrGateway);
        }
        let answer =
            |status, text: String| RequestOrResponse::Response(text_response(status, text));
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "potproxy: a gateway URL answers GET and HEAD\n".into(),
            );
        }
        let (_, query) = split_path_query(pq);
        let query = query.unwrap_or("");
        let gw = match Gateway::parse(query) {
            Ok(gw) => gw,
            Err(e) => return answer(StatusCode::BAD_REQUEST, format!("potproxy: {e}\n")),
        };
        let requests = Arc::new(AtomicU32::new(0));
        if let Some(ex) = self.observed() {
            ex.video(Some(&gw.video_id));
            ex.gateway(gw.format.itag, requests.clone());
        }
        note_n(&gw);
        self.check_bound_ip(&gw);
        let range_header = req.headers().get(RANGE).and_then(|v| v.to_str().ok());
        let range_query = query_param(query, "range");
        let want = wanted(range_header, range_query, gw.content_length);
        let mut res = Response::builder();
        let headers = res.headers_mut().expect("a new builder has headers");
        object_headers(&gw, headers);
        let Some((first, last)) = want.span() else {
            let res = res
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(CONTENT_RANGE, format!("bytes */{}", gw.content_length))
                .body(Body::empty())
                .expect("valid response parts");
            return RequestOrResponse::Response(res);
        };
        let status = match want {
            Wanted::Partial { .. } => {
                res = res.header(
                    CONTENT_RANGE,
                    format!("bytes {first}-{last}/{}", gw.content_length),
                );
                StatusCode::PARTIAL_CONTENT
            }
            _ => StatusCode::OK,
        };
        let res = res.status(status).header(CONTENT_LENGTH, last - first + 1);
        if req.method() == Method::HEAD {
            return RequestOrResponse::Response(
                res.body(Body::empty()).expect("valid response parts"),
            );
        }
        metrics::SABR_GATEWAY.with(&["stream"]).inc();
        let streamer = self.streamer(&gw, requests).await;
        let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
        let pull = Pull::new(gw, first, last);
        tokio::spawn(streamer.run(pull, tx));
        match rx.recv().await {
            Some(Ok(head)) => {
                let rest = futures::stream::once(async move { Ok(head) })
                    .chain(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
                    .map(|c| c.map(http_body::Frame::data).map_err(hudsucker::Error::Io));
                let body = http_body_util::StreamBody::new(rest);
                RequestOrResponse::Response(
                    res.body(Body::from(http_body_util::combinators::BoxBody::new(body)))
                        .expect("valid response parts"),
                )
            }
            Some(Err(e)) => answer(
                StatusCode::BAD_GATEWAY,
                format!("potproxy: SABR gateway: {e}\n"),
            ),
            None => answer(
                StatusCode::BAD_GATEWAY,
                "potproxy: SABR gateway: the SABR session ended before any media\n".into(),
            ),
        }
    }

    /// The session's token side: who it is for (the playback learned for the SABR URL, else
    /// only the video), the regime, and a first token.
    async fn streamer(&self, gw: &Gateway, requests: Arc<AtomicU32>) -> Streamer {
        let sabr = gw.sabr_url();
        let (path, query) = sabr
            .split_once("googlevideo.com")
            .map(|(_, pq)| split_path_query(pq))
            .unwrap_or(("", None));
        let (ei, id, _) = crate::learn::session::media_url_keys(path, query);
        let playback = self
            .shared
            .sessions
            .lookup_shared(ei.as_deref(), id.as_deref())
            .await;
        let who = playback.as_ref().map(|p| p.identity()).unwrap_or_default();
        let regime = self.regime_for(&who, &gw.client).await;
        let mut s = Streamer {
            shared: self.shared.clone(),
            who,
            client: gw.client.clone(),
            client_version: gw.client_version.clone(),
            video: gw.video_id.clone(),
            regime,
            issued: None,
            history: History::new(true, false),
            regime_confirmed: false,
            heals: 0,
            cold_waits: 0,
            flipped: false,
            last_refusal: None,
            exchange: self.exchange.clone(),
            requests,
        };
        s.issued = match s.shared.tokens.issue(&s.request()).await {
            Ok(issued) => Some(issued),
            Err(e) => {
                // Without a token googlevideo may still send a little; the refusal then says
                // so, loudly, to the client.
                tracing::warn!(error = %crate::errtext::error_chain(&e), "SABR gateway: no token for the session; going on without one");
                None
            }
        };
        if let (Some(ex), Some(i)) = (self.observed(), s.issued.as_ref()) {
            ex.token_from(&s.binding(), Some(i));
        }
        s
    }

    /// Fleet nodes that leave from different addresses hand out URLs bound to different
    /// `ip=`: googlevideo refuses a SABR URL from another address. Said once per stream, with
    /// a metric, instead of a bare 403 later (the addresses themselves are never logged).
    fn check_bound_ip(&self, gw: &Gateway) {
        let own = self
            .shared
            .own_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (Some(own), Some(bound)) = (own, gw.bound_ip()) {
            if own != bound {
                metrics::SABR_GATEWAY.with(&["ip_mismatch"]).inc();
                tracing::warn!(
                    video = %gw.video_id,
                    "SABR gateway: this URL is bound to another address (ip=) than this node's own player responses show; googlevideo will likely refuse it. Fetch gateway URLs through the node that wrote them, or give the nodes one egress address (docs/fleet.md)"
                );
            }
        }
    }
}

/// Whether the client transformed `n`, said once at debug level.
fn note_n(gw: &Gateway) {
    if gw.n.is_some() && !gw.n_transformed() && !N_NOTED.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            "SABR gateway: the client did not transform the URL's `n`; googlevideo may throttle playback (potproxy has no n solver; a client that solves n, like yt-dlp with its JS runtime, hands the solved value back)"
        );
    }
}

/// The headers every answer about the object carries: what googlevideo sends for a
/// progressive format. The ETag names the object (format, its modification time, its size),
/// so a client's `If-Range` and potproxy's own resume checks hold across requests.
fn object_headers(gw: &Gateway, h: &mut HeaderMap) {
    let mime = gw.mime.split(';').next().unwrap_or("").trim();
    if let Ok(v) = HeaderValue::from_str(if mime.is_empty() {
        "application/octet-stream"
    } else {
        mime
    }) {
        h.insert(CONTENT_TYPE, v);
    }
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "\"{}-{}-{}\"",
        gw.format.itag, gw.format.lmt, gw.content_length
    )) {
        h.insert(ETAG, v);
    }
    let lmt = std::time::UNIX_EPOCH + Duration::from_micros(gw.format.lmt);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(lmt)) {
        h.insert(LAST_MODIFIED, v);
    }
}

/// One gateway stream's SABR session: its token state and the I/O loop.
struct Streamer {
    shared: Arc<Shared>,
    who: Identity,
    client: String,
    client_version: Option<String>,
    video: String,
    regime: Regime,
    issued: Option<Issued>,
    /// What the stream's 403s went through (regimes tried, the regime confirmed): one
    /// history for the whole stream, so a refusal under both regimes gives up.
    history: History,
    /// googlevideo sent media for this stream's tokens: a refusal is the token's.
    regime_confirmed: bool,
    /// Refusals healed so far (bounded by the policy's budget for the whole stream).
    heals: u32,
    /// Waits for a real token while the token service only had cold-start placeholders.
    cold_waits: u32,
    /// The stream switched regimes once already.
    flipped: bool,
    /// What the last refusal was, for the error when the budget runs out.
    last_refusal: Option<String>,
    exchange: Option<Arc<Exchange>>,
    requests: Arc<AtomicU32>,
}

impl Streamer {
    fn binding(&self) -> crate::token::Binding {
        binding_for(
            TokenContext::Gvs,
            &self.client,
            Some(&self.video),
            &self.who,
            self.regime,
        )
    }

    fn request(&self) -> TokenRequest {
        TokenRequest::new(self.binding())
    }

    /// Runs the session until the range is sent, the client goes away, or it fails (the
    /// failure goes to the client as the body's error).
    async fn run(mut self, mut pull: Pull, tx: mpsc::Sender<Chunk>) {
        match self.pull_all(&mut pull, &tx).await {
            Ok(()) => {
                metrics::SABR_GATEWAY.with(&["complete"]).inc();
            }
            Err(StreamError::ClientGone) => {
                tracing::debug!(video = %self.video, requests = pull.requests(), "SABR gateway: the client went away");
            }
            Err(f) => {
                tracing::warn!(video = %self.video, requests = pull.requests(), at = pull.position(), reason = %f, "SABR gateway: stream failed");
                metrics::SABR_GATEWAY.with(&["failed"]).inc();
                let _ = tx.send(Err(std::io::Error::other(f.to_string()))).await;
            }
        }
    }

    async fn pull_all(
        &mut self,
        pull: &mut Pull,
        tx: &mpsc::Sender<Chunk>,
    ) -> Result<(), StreamError> {
        loop {
            let token = self.issued.as_ref().map(|i| i.token.bytes());
            let (url, body) = pull.next_request(token.as_deref());
            self.requests.store(pull.requests(), Ordering::Relaxed);
            metrics::SABR_GATEWAY.with(&["sabr_request"]).inc();
            let next = match self.send(&url, body).await {
                Ok(res) if res.status() == StatusCode::FORBIDDEN => {
                    self.heal(&Outcome::Forbidden).await?;
                    continue;
                }
                Ok(res) if res.status().is_server_error() => {
                    // googlevideo's own trouble: asked again after a growing pause, within the
                    // stream's budget (as the reference client retries a failed attempt).
                    self.spend()?;
                    Next::Request {
                        backoff: Duration::from_millis(500 << self.heals.min(4)),
                    }
                }
                Ok(res) if !res.status().is_success() || !is_ump(res.headers()) => {
                    return Err(StreamError::Answered(res.status()));
                }
                Ok(res) => {
                    let before = pull.position();
                    let (halt, cut) = read_response(res, pull, tx).await?;
                    if pull.position() > before {
                        // googlevideo sent media for this token: its regime works.
                        self.history.accepted();
                        self.regime_confirmed = true;
                    }
                    if cut {
                        // A response that breaks costs the budget like an unanswered one,
                        // so one that keeps breaking ends the stream.
                        self.last_refusal = Some("SABR response cut".into());
                        self.spend()?;
                    }
                    pull.after_response(halt.as_ref())
                }
                Err(e) => {
                    let why = super::stages::not_sent(&e);
                    tracing::debug!(reason = %why, "SABR gateway: request not answered; trying again");
                    self.last_refusal = Some(why.to_string());
                    self.spend()?;
                    Next::Request {
                        backoff: Duration::from_millis(500),
                    }
                }
            };
            match next {
                Next::Done => return Ok(()),
                Next::Request { backoff } => {
                    if !backoff.is_zero() {
                        tokio::time::sleep(backoff).await;
                    }
                }
                Next::Refused { status, backoff } => {
                    self.heal(&Outcome::Protection(status as u64)).await?;
                    if !backoff.is_zero() {
                        tokio::time::sleep(backoff).await;
                    }
                }
                Next::Refresh { backoff } => {
                    // The stream moves on: a better token costs no re-send.
                    self.heals = self.heals.saturating_sub(1);
                    self.heal(&Outcome::Protection(2)).await?;
                    if !backoff.is_zero() {
                        tokio::time::sleep(backoff).await;
                    }
                }
                Next::Reload { token } => {
                    self.spend()?;
                    let (url, config) = self.reload(token.as_deref()).await?;
                    pull.reloaded(url, config);
                }
                Next::Failed(SabrFailure::Server { kind, code }) => {
                    // A SABR_ERROR ends that SABR session; a new one, with a fresh token, goes
                    // on from where the bytes stopped, within the stream's budget.
                    let why = format!("SABR_ERROR {kind} (code {code})");
                    self.last_refusal = Some(why.clone());
                    tracing::info!(video = %self.video, at = pull.position(), %why, "SABR gateway: starting a new SABR session with a fresh token");
                    self.fresh(&Outcome::Protection(3)).await?;
                    pull.restart();
                }
                Next::Failed(f) => return Err(StreamError::Sabr(f)),
            }
        }
    }

    fn is_cold_start(&self) -> bool {
        self.issued
            .as_ref()
            .and_then(|i| i.provenance.as_ref())
            .is_some_and(|p| p.source == "cold_start")
    }

    fn spend(&mut self) -> Result<(), StreamError> {
        self.heals += 1;
        if self.heals > MAX_RESENDS {
            return Err(StreamError::Budget {
                last: self
                    .last_refusal
                    .clone()
                    .unwrap_or_else(|| "no answer".into()),
            });
        }
        Ok(())
    }

    /// Another token for the session's binding after a failure that does not blame the
    /// token (a SABR_ERROR): the cached one is forgotten, not reported refused.
    async fn fresh(&mut self, outcome: &Outcome) -> Result<(), StreamError> {
        self.spend()?;
        let req = self.request();
        let issued = fresh_token(&self.shared.tokens, &req, None, outcome, true)
            .await
            .map_err(|s| StreamError::Token(s.to_string()))?;
        self.issued = Some(issued);
        Ok(())
    }

    /// A refusal, through the refusal policy: the other regime's token, or a fresh one.
    async fn heal(&mut self, outcome: &Outcome) -> Result<(), StreamError> {
        self.last_refusal = Some(outcome.to_string());
        metrics::SABR_GATEWAY.with(&["refusal"]).inc();
        if let Some(ex) = &self.exchange {
            ex.refused_token();
        }
        if self.is_cold_start() && self.cold_waits < MAX_COLD_WAITS {
            // A placeholder from while the minter warms up: refused as expected, nobody to
            // blame; wait a moment for a real token instead of spending the budget.
            self.cold_waits += 1;
            tokio::time::sleep(COLD_WAIT).await;
            let req = self.request();
            self.issued = Some(
                fresh_token(&self.shared.tokens, &req, None, outcome, true)
                    .await
                    .map_err(|s| StreamError::Token(s.to_string()))?,
            );
            return Ok(());
        }
        self.spend()?;
        // A 403 is judged with the stream's history (regimes tried); an in-band status on its
        // own, as each SABR response is a request of its own.
        let mut fresh = History::new(true, self.regime_confirmed);
        let history = match outcome {
            Outcome::Forbidden => &mut self.history,
            _ => &mut fresh,
        };
        let decision = match history.decide(outcome) {
            // Both regimes were tried in this stream: the token is to blame now, not the
            // binding (flipping back would only meet the token refused before).
            Decision::OtherRegime if self.flipped => Decision::FreshToken {
                from: None,
                same_ok: false,
            },
            d => d,
        };
        match decision {
            Decision::Deliver => Ok(()),
            Decision::OtherRegime => {
                self.flipped = true;
                self.regime = self.regime.other();
                tracing::info!(video = %self.video, ?self.regime, %outcome, "SABR gateway: trying the other regime's token");
                self.issued = Some(
                    self.shared
                        .tokens
                        .issue(&self.request())
                        .await
                        .map_err(|e| StreamError::Token(crate::errtext::error_chain(&e)))?,
                );
                Ok(())
            }
            Decision::FreshToken { same_ok, .. } => {
                let req = self.request();
                let issued = fresh_token(
                    &self.shared.tokens,
                    &req,
                    self.issued.as_ref(),
                    outcome,
                    same_ok,
                )
                .await
                .map_err(|s| StreamError::Token(s.to_string()))?;
                tracing::info!(video = %self.video, %outcome, "SABR gateway: fresh token for the next SABR request");
                self.issued = Some(issued);
                Ok(())
            }
            Decision::GiveUp(stop) => Err(StreamError::Token(stop.to_string())),
            Decision::Resume { .. } | Decision::ForNext(_) => Ok(()),
        }
    }

    async fn send(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Result<Response<hyper::body::Incoming>, crate::upstream::FetchError> {
        let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            crate::upstream::FetchError::Failed {
                method: Method::POST,
                url: crate::redact::redact_url(url),
                reason: e.to_string(),
            }
        })?;
        // What googlevideo's SABR clients send (LuanRT/googlevideo `SabrStream`).
        let headers: HeaderMap = [
            (CONTENT_TYPE, "application/x-protobuf"),
            (http::header::ACCEPT, "application/vnd.yt-ump"),
            (http::header::ACCEPT_ENCODING, "identity"),
            (http::header::ORIGIN, "https://www.youtube.com"),
            (http::header::REFERER, "https://www.youtube.com/"),
        ]
        .into_iter()
        .map(|(k, v)| (k, HeaderValue::from_static(v)))
        .collect();
        self.shared
            .http
            .stream_with(Method::POST, uri, headers, Bytes::from(body))
            .await
    }

    /// RELOAD_PLAYER_RESPONSE: a fresh player response for the same video with the original
    /// client's context and the reload token, as YouTube's players send it; its SABR URL and
    /// config carry the session on.
    async fn reload(&self, token: Option<&str>) -> Result<(String, Vec<u8>), StreamError> {
        let player_token = self
            .shared
            .tokens
            .get(&TokenRequest::new(binding_for(
                TokenContext::Player,
                &self.client,
                Some(&self.video),
                &self.who,
                self.regime,
            )))
            .await
            .ok();
        let version = self.client_version.clone().unwrap_or_default();
        let mut body = serde_json::json!({
            "context": crate::innertube::context(&self.client, &version),
            "videoId": self.video,
            "contentCheckOk": true,
            "racyCheckOk": true,
            "playbackContext": {"contentPlaybackContext": {"html5Preference": "HTML5_PREF_WANTS"}},
        });
        if let Some(t) = token {
            body["playbackContext"]["reloadPlaybackContext"] =
                serde_json::json!({"reloadPlaybackParams": {"token": t}});
        }
        if let Some(v) = &self.who.visitor_data {
            body["context"]["client"]["visitorData"] = v.clone().into();
        }
        if let Some(t) = &player_token {
            body["serviceIntegrityDimensions"] = serde_json::json!({"poToken": t.as_str()});
        }
        let id = crate::sabr::proto::client_name::id(&self.client)
            .unwrap_or(1)
            .to_string();
        let headers = [
            ("content-type", "application/json"),
            ("x-youtube-client-name", id.as_str()),
            ("x-youtube-client-version", version.as_str()),
            ("origin", "https://www.youtube.com"),
        ];
        let fetched = self
            .shared
            .http
            .send(
                Method::POST,
                "https://www.youtube.com/youtubei/v1/player?prettyPrint=false",
                &headers,
                Some(serde_json::to_vec(&body).expect("JSON value serialises")),
            )
            .await
            .map_err(|e| StreamError::Reload(super::stages::not_sent(&e).to_string()))?;
        if !fetched.status.is_success() {
            return Err(StreamError::Reload(format!(
                "the player answered {}",
                fetched.status
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&fetched.body)
            .map_err(|e| StreamError::Reload(format!("player response: {e}")))?;
        crate::sabr::formats::sabr_source(&v)
            .ok_or_else(|| StreamError::Reload("the new player response has no SABR URL".into()))
            .inspect(|_| tracing::info!(video = %self.video, "SABR gateway: reloaded the player response"))
    }
}

fn is_ump(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/vnd.yt-ump"))
}

/// Reads one SABR response into the session, passing bytes on as they come. A response cut
/// short (an error, a stall) ends like one read to its end: the session asks again from
/// where its segments stopped.
async fn read_response(
    res: Response<hyper::body::Incoming>,
    pull: &mut Pull,
    tx: &mpsc::Sender<Chunk>,
) -> Result<(Option<Halt>, bool), StreamError> {
    let mut body = res.into_body();
    let mut reader = Reader::default();
    loop {
        let frame = match tokio::time::timeout(READ_IDLE, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return Ok((None, false)),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "SABR gateway: response cut; asking again");
                return Ok((None, true));
            }
            Err(_) => {
                tracing::debug!("SABR gateway: response stalled; asking again");
                return Ok((None, true));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in reader.feed(data) {
            let step = pull.on_event(event);
            if let Some(bytes) = step.emit {
                if tx.send(Ok(bytes)).await.is_err() {
                    return Err(StreamError::ClientGone);
                }
            }
            if step.halt.is_some() {
                return Ok((step.halt, false));
            }
        }
    }
}

/// Why a gateway stream stopped early.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("{0}")]
    Sabr(SabrFailure),
    #[error("googlevideo answered {0} to a SABR request")]
    Answered(StatusCode),
    #[error("no usable token: {0}")]
    Token(String),
    #[error("every re-send this stream may cost ({MAX_RESENDS}) is spent; the last: {last}")]
    Budget { last: String },
    #[error("reloading the player response failed: {0}")]
    Reload(String),
    #[error("the client went away")]
    ClientGone,
}
