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

use crate::access::{ApiDenied, ApiRule, Bearer, api_access};
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
    /// `[api] public`: off loopback without a token, serve the reading routes to anyone who
    /// can reach the API (the operator said so); without it such an API does not start.
    pub public: bool,
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
    /// Every minter of request-named proxies is in use ([`PerEgressError::Busy`]: 503), or the
    /// proxy cannot be used.
    #[error(transparent)]
    PerEgress(#[from] crate::upstream::PerEgressError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("Unable to generate visitor data")]
    VisitorData(#[source] crate::innertube::InnerTubeError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PerEgress(crate::upstream::PerEgressError::Busy { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Proxy(_)
            | ApiError::Upstream(_)
            | ApiError::Minter(_)
            | ApiError::PerEgress(_)
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
    /// `[api] public`: off loopback without a token, the reading routes are served to anyone.
    pub public: bool,
    /// Where the API listens (Host header check; off loopback, routes need a token or
    /// `public`, and mutating routes a token).
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
            public: false,
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

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    GetPot,
    Ping,
    InvalidateCaches,
    InvalidateIt,
    MinterCache,
    Session,
    Metrics,
    Healthz,
    Readyz,
    ProxyPac,
    CaPem,
    /// The live page and what it polls (`/ui`, `/ui/app.js`, `/ui/state`).
    Ui,
    Exchanges,
    Root,
}

/// One route: its path, method, what answers it and what the token rule treats it as.
#[derive(Debug, PartialEq, Eq)]
struct Route {
    path: &'static str,
    method: Method,
    handler: Handler,
    rule: ApiRule,
}

const fn r(path: &'static str, method: Method, handler: Handler, rule: ApiRule) -> Route {
    Route {
        path,
        method,
        handler,
        rule,
    }
}

/// Every route of the API: dispatch, the 405 for a known path with another method, and the
/// token rule all read this one table.
static ROUTES: &[Route] = &[
    r("/get_pot", Method::POST, Handler::GetPot, ApiRule::Read),
    r("/ping", Method::GET, Handler::Ping, ApiRule::Read),
    r(
        "/invalidate_caches",
        Method::POST,
        Handler::InvalidateCaches,
        ApiRule::Mutating,
    ),
    r(
        "/invalidate_it",
        Method::POST,
        Handler::InvalidateIt,
        ApiRule::Mutating,
    ),
    r(
        "/minter_cache",
        Method::GET,
        Handler::MinterCache,
        ApiRule::Read,
    ),
    r("/session", Method::GET, Handler::Session, ApiRule::Mutating),
    r("/metrics", Method::GET, Handler::Metrics, ApiRule::Read),
    r("/healthz", Method::GET, Handler::Healthz, ApiRule::Read),
    r("/readyz", Method::GET, Handler::Readyz, ApiRule::Read),
    r("/proxy.pac", Method::GET, Handler::ProxyPac, ApiRule::Read),
    r("/ca.pem", Method::GET, Handler::CaPem, ApiRule::Read),
    r("/ui", Method::GET, Handler::Ui, ApiRule::Private),
    r("/ui/app.js", Method::GET, Handler::Ui, ApiRule::Private),
    r("/ui/state", Method::GET, Handler::Ui, ApiRule::Private),
    r(
        "/exchanges",
        Method::GET,
        Handler::Exchanges,
        ApiRule::Private,
    ),
    r("/", Method::GET, Handler::Root, ApiRule::Read),
];

/// Where a request lands in [`ROUTES`].
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Found(&'static Route),
    /// The path is a route, the method is not one of its methods: 405.
    WrongMethod(ApiRule),
    NotFound,
}

fn lookup(method: &Method, path: &str) -> Lookup {
    let mut known = None;
    for route in ROUTES.iter().filter(|r| r.path == path) {
        if route.method == method {
            return Lookup::Found(route);
        }
        known = Some(route.rule);
    }
    known.map_or(Lookup::NotFound, Lookup::WrongMethod)
}

async fn route(req: Request<Incoming>, state: &ApiState, peer: SocketAddr) -> ApiResponse {
    let path = req.uri().path().to_string();
    tracing::debug!(method = %req.method(), %path, %peer, "api request");
    let found = lookup(req.method(), &path);
    // An unknown path meets the reading rule: a refused caller learns nothing from a 404.
    let rule = match &found {
        Lookup::Found(r) => r.rule,
        Lookup::WrongMethod(rule) => *rule,
        Lookup::NotFound => ApiRule::Read,
    };
    if let Some(refused) = refuse(&req, state, rule) {
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
    let handler = match found {
        Lookup::Found(r) => r.handler,
        Lookup::WrongMethod(_) => {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        Lookup::NotFound => return error(StatusCode::NOT_FOUND, format!("no route {path}")),
    };
    match handler {
        Handler::GetPot => match read_body(req).await {
            Ok(body) => get_pot::get_pot(&body, state).await,
            Err(e) => failure(&e),
        },
        Handler::Ping => json_response(
            StatusCode::OK,
            &json!({
                "server_uptime": state.started.elapsed().as_secs_f64(),
                "version": state.compat_version,
                "potproxy_version": env!("CARGO_PKG_VERSION"),
                "potproxy_instance": state.instance,
            }),
        ),
        Handler::InvalidateCaches => {
            state.services.tokens.invalidate_caches();
            state.services.tokens.invalidate_integrity();
            no_content()
        }
        Handler::InvalidateIt => {
            state.services.tokens.invalidate_integrity();
            no_content()
        }
        Handler::MinterCache => {
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
        Handler::Session => session::session(state).await,
        Handler::Metrics => observe::metrics(state),
        Handler::Healthz => observe::healthz(),
        Handler::Readyz => observe::readyz(state).await,
        Handler::ProxyPac => observe::proxy_pac(state, req.headers()),
        Handler::CaPem => observe::ca_pem(state),
        Handler::Ui => ui::page(&path, state),
        Handler::Exchanges => ui::exchanges(req.uri().query()),
        Handler::Root => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"This server is not meant to be accessed directly. Point the bgutil yt-dlp plugin at it (youtubepot-bgutilhttp:base_url) or use it as a proxy.\n",
            )))
            .expect("static response parts are valid"),
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

/// The API's own access checks: no browser (an `Origin` header means a web page is calling:
/// CSRF), no foreign Host (DNS rebinding), then the token rule ([`api_access`]): the bearer
/// token when one is set; off loopback without one, nothing unless `[api] public = true`, and
/// never a mutating route.
fn refuse<B>(req: &Request<B>, state: &ApiState, rule: ApiRule) -> Option<ApiResponse> {
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
    let bearer = match &state.token {
        None => Bearer::Unset,
        Some(t) if bearer_matches(req.headers(), t) => Bearer::Right,
        Some(_) => Bearer::Wrong,
    };
    match api_access(rule, state.listen.ip(), bearer, state.public) {
        Ok(()) => None,
        Err(ApiDenied::Token) => {
            let mut res = error(StatusCode::UNAUTHORIZED, ApiDenied::Token.text());
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"potproxy\""),
            );
            Some(res)
        }
        Err(denied) => Some(error(StatusCode::FORBIDDEN, denied.text())),
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
    fn every_route_dispatches_and_other_methods_on_it_are_405() {
        for route in ROUTES {
            assert_eq!(
                lookup(&route.method, route.path),
                Lookup::Found(route),
                "{route:?}"
            );
            let other = if route.method == Method::GET {
                Method::POST
            } else {
                Method::GET
            };
            assert_eq!(
                lookup(&other, route.path),
                Lookup::WrongMethod(route.rule),
                "{route:?}"
            );
        }
        assert_eq!(lookup(&Method::GET, "/nope"), Lookup::NotFound);
        assert_eq!(lookup(&Method::GET, "/get_pot/"), Lookup::NotFound);
        let mutating: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.rule == ApiRule::Mutating)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            mutating,
            ["/invalidate_caches", "/invalidate_it", "/session"]
        );
    }

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
