//! The bgutil-compatible provider API (`[api] listen`, default 127.0.0.1:4416), served from the
//! same token service as the proxy: `POST /get_pot`, `GET /ping`, `POST /invalidate_caches`,
//! `POST /invalidate_it`, `GET /minter_cache`, and `GET /session` (a ready visitor data + token
//! pair); for operators and clients `GET /metrics`, `/healthz`, `/readyz`, `/proxy.pac` and
//! `/ca.pem` (`observe`), and the live page `GET /ui` with `GET /exchanges` (`ui`). Wire contract: `../shared/reference/provider-api.md`. Errors are JSON `{"error": ...}`:
//! 400 for requests the caller must fix, 500 for failures on our side ([`ApiError::status`]).
//!
//! This module owns its settings ([`ApiConfig`]), state, serving and routing; `get_pot` and
//! `session` answer their routes, `responses` shapes the answers.

mod get_pot;
mod observe;
mod responses;
mod session;
mod ui;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;

/// The loop-detection header belongs to the provider protocol the token source speaks.
pub use crate::tokens::HOP_HEADER;
pub use get_pot::{GetPot, RequestError, binding_of, mint_for, names_own_proxy, parse_get_pot};
pub use responses::iso8601;
pub use session::session_json;

use crate::botguard::minter::BotGuardError;
use crate::services::Services;
use crate::tokens::TokenError;
use crate::upstream::{EgressError, UpstreamError};
use responses::{ApiResponse, error, failure, json_response, no_content};

const MAX_REQUEST_BODY: usize = 1024 * 1024;

pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:4416";
/// The bgutil plugin major this API is compatible with (PyPI bgutil-ytdlp-pot-provider 2.0.2).
pub const DEFAULT_COMPAT_VERSION: &str = "2.0.2";

/// The `[api]` settings, validated.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// The bgutil protocol version reported by `/ping`.
    pub compat_version: String,
    /// `[api] token`: when set, every route needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// `[api] ui_exchanges`: recent exchanges kept for `/ui` and `/exchanges`.
    pub ui_exchanges: usize,
}

/// Why an API call failed. The kind decides the status: a request the caller must fix is a
/// 400; anything else is a 500, as bgutil answers every failure, an unusable proxy included.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    #[error("proxy: {0}")]
    Proxy(#[from] EgressError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Minter(#[from] BotGuardError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("Unable to generate visitor data")]
    VisitorData(#[source] crate::innertube::InnerTubeError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Proxy(_)
            | ApiError::Upstream(_)
            | ApiError::Minter(_)
            | ApiError::Token(_)
            | ApiError::VisitorData(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What the API handlers share.
pub struct ApiState {
    pub services: Services,
    pub started: Instant,
    /// The bgutil protocol version `/ping` reports (plugins check its major part).
    pub compat_version: String,
    /// Random id of this process, to detect a provider source pointing at itself.
    pub instance: String,
    /// This process's proxy listener: a `proxy` naming it means "the configured egress".
    pub own_proxy: Option<SocketAddr>,
    /// The hosts the proxy intercepts (for `/proxy.pac`).
    pub intercept: Vec<crate::intercept::HostPattern>,
    /// The CA certificate in PEM (for `/ca.pem`).
    pub ca_pem: Option<String>,
    /// `[api] token`: required on every route when set.
    pub token: Option<String>,
    /// Where the API listens (Host header check; off loopback, mutating routes need a token).
    pub listen: SocketAddr,
    /// The fleet's Redis (`[cluster]`), for its health gauges on `/metrics`.
    pub cluster: Option<crate::cluster::Cluster>,
}

impl ApiState {
    pub fn new(services: Services, compat_version: String, instance: String) -> Self {
        ApiState {
            services,
            started: Instant::now(),
            compat_version,
            instance,
            own_proxy: None,
            intercept: Vec::new(),
            ca_pem: None,
            token: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 4416)),
            cluster: None,
        }
    }
}

/// Serves the API on `listener` until the future `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    serve_with(listener, state, shutdown, ServerSettings::default()).await
}

/// Connection limits of the API listener (the proxy's `[timeouts]`).
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// A connection with no byte either way for this long is closed.
    pub idle: std::time::Duration,
    /// A request's headers must arrive within this.
    pub header_read: std::time::Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            idle: std::time::Duration::from_secs(60),
            header_read: std::time::Duration::from_secs(60),
        }
    }
}

/// [`serve`] with explicit connection limits. Accept errors (out of descriptors) back off
/// instead of spinning.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    settings: ServerSettings,
) {
    let mut server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    server
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(settings.header_read);
    let mut failures = 0u32;
    let mut accept_log = crate::limits::LogThrottle::new(std::time::Duration::from_secs(10));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => {
                    failures = 0;
                    x
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if let Some(held) = accept_log.allow(std::time::Instant::now()) {
                        tracing::warn!(error = %e, repeated = held, "api: accept failed; backing off");
                    }
                    tokio::time::sleep(crate::limits::accept_backoff(failures)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let state = state.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, &state, peer).await) }
            });
            let activity = crate::limits::Activity::new(settings.idle);
            let io = crate::limits::IdleIo::new(tcp, activity);
            let _ = server.serve_connection(TokioIo::new(io), svc).await;
        });
    }
}

async fn route(req: Request<Incoming>, state: &ApiState, peer: SocketAddr) -> ApiResponse {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    tracing::debug!(%method, %path, %peer, "api request");
    if let Some(refused) = refuse(&req, state) {
        return refused;
    }
    if req
        .headers()
        .get(HOP_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == state.instance)
    {
        return error(
            StatusCode::LOOP_DETECTED,
            "this potproxy is its own provider: [tokens.provider] url points at its own API",
        );
    }
    match (method, path.as_str()) {
        (Method::POST, "/get_pot") => match read_body(req).await {
            Ok(body) => get_pot::get_pot(&body, state).await,
            Err(e) => failure(&e),
        },
        (Method::GET, "/ping") => json_response(
            StatusCode::OK,
            &json!({
                "server_uptime": state.started.elapsed().as_secs_f64(),
                "version": state.compat_version,
                "potproxy_version": env!("CARGO_PKG_VERSION"),
                "potproxy_instance": state.instance,
            }),
        ),
        (Method::POST, "/invalidate_caches") => {
            state.services.tokens.invalidate_caches();
            state.services.tokens.invalidate_integrity();
            no_content()
        }
        (Method::POST, "/invalidate_it") => {
            state.services.tokens.invalidate_integrity();
            no_content()
        }
        (Method::GET, "/minter_cache") => {
            let mut keys = state
                .services
                .minters
                .as_ref()
                .map(|p| p.warm_keys())
                .unwrap_or_default();
            // bgutil answers a list of strings; set-aside sources join it in the same shape.
            keys.extend(state.services.tokens.set_aside().iter().map(set_aside_entry));
            json_response(StatusCode::OK, &json!(keys))
        }
        (Method::GET, "/session") => session::session(state).await,
        (Method::GET, "/metrics") => observe::metrics(state),
        (Method::GET, "/healthz") => observe::healthz(),
        (Method::GET, "/readyz") => observe::readyz(state).await,
        (Method::GET, "/proxy.pac") => observe::proxy_pac(state, req.headers()),
        (Method::GET, "/ca.pem") => observe::ca_pem(state),
        (Method::GET, "/ui" | "/ui/app.js" | "/ui/state") => ui::page(&path, state),
        (Method::GET, "/exchanges") => ui::exchanges(req.uri().query()),
        (Method::GET, "/") => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"This server is not meant to be accessed directly. Point the bgutil yt-dlp plugin at it (youtubepot-bgutilhttp:base_url) or use it as a proxy.\n",
            )))
            .expect("static response parts are valid"),
        (_, "/get_pot" | "/ping" | "/invalidate_caches" | "/invalidate_it" | "/minter_cache" | "/session")
        | (_, "/metrics" | "/healthz" | "/readyz" | "/proxy.pac" | "/ca.pem")
        | (_, "/ui" | "/ui/app.js" | "/ui/state" | "/exchanges") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

/// A `/minter_cache` line for a source set aside: `set aside: <source> @ <egress> for <n>s:
/// <reason>`.
fn set_aside_entry(a: &crate::tokens::SetAside) -> String {
    format!(
        "set aside: {} @ {} for {}s: {}",
        a.source,
        a.egress,
        a.remaining.as_secs(),
        a.reason
    )
}

/// Routes that change state or hand out a whole session.
fn is_mutating(path: &str) -> bool {
    matches!(path, "/invalidate_caches" | "/invalidate_it" | "/session")
}

/// The API's own access checks: no browser (an `Origin` header means a web page is calling:
/// CSRF), no foreign Host (DNS rebinding), the bearer token when one is set, and a token for
/// mutating routes whenever the API listens off loopback.
fn refuse<B>(req: &Request<B>, state: &ApiState) -> Option<ApiResponse> {
    use crate::access::{api_host_allowed, bearer_matches, from_browser};
    if from_browser(req.headers()) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "requests from web pages (with an Origin header) are refused",
        ));
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !api_host_allowed(host, state.listen) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Host must name this API (a loopback name or address, or its listen address)",
        ));
    }
    match &state.token {
        Some(t) if !bearer_matches(req.headers(), t) => {
            let mut res = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"potproxy\""),
            );
            Some(res)
        }
        None if is_mutating(req.uri().path()) && !state.listen.ip().is_loopback() => Some(error(
            StatusCode::FORBIDDEN,
            "this route needs [api] token when the API listens off loopback",
        )),
        _ => None,
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| RequestError::Unreadable(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_on_our_side_are_500s_that_carry_their_cause() {
        let e = ApiError::from(TokenError::Unavailable {
            binding: "video abcdefghijk".into(),
        });
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let e = ApiError::VisitorData(crate::innertube::InnerTubeError::Malformed {
            endpoint: "visitor_id",
            missing: "responseContext.visitorData",
        });
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            crate::errtext::error_chain(&e),
            "Unable to generate visitor data: InnerTube visitor_id answer has no responseContext.visitorData"
        );
        let e = ApiError::from(RequestError::NotAnObject);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
