//! The bgutil-compatible provider API (`[api] listen`, default 127.0.0.1:4416), served from the
//! same token service as the proxy: `POST /get_pot`, `GET /ping`, `POST /invalidate_caches`,
//! `POST /invalidate_it`, `GET /minter_cache`, and `GET /session` (a ready visitor data + token
//! pair). Wire contract: `../shared/reference/provider-api.md`. Errors are JSON `{"error": ...}`:
//! 400 for requests the caller must fix, 500 for failures on our side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::Services;
use crate::botguard::challenge::Challenge;
use crate::token::Binding;
use crate::tokens::TokenRequest;

/// Header the provider source sends so an instance recognises calls from itself.
pub const HOP_HEADER: &str = "x-potproxy-instance";
const MAX_REQUEST_BODY: usize = 1024 * 1024;

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
}

impl ApiState {
    pub fn new(services: Services, compat_version: String, instance: String) -> Self {
        ApiState {
            services,
            started: Instant::now(),
            compat_version,
            instance,
            own_proxy: None,
        }
    }
}

type ApiResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, v: &Value) -> ApiResponse {
    Response::builder()
        .status(status)
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(Full::new(Bytes::from(serde_json::to_vec(v).expect("json"))))
        .expect("static response parts are valid")
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiResponse {
    json_response(status, &json!({"error": message.to_string()}))
}

fn no_content() -> ApiResponse {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}

/// `2026-11-21T18:00:00.000Z`, as a JS `Date` serialises.
pub fn iso8601(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// A content binding as given: an 11-character id is a video, anything else a session.
pub fn binding_of(text: &str) -> Binding {
    let is_video = text.len() == 11
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if is_video {
        Binding::Video(text.to_string())
    } else {
        Binding::Session(text.to_string())
    }
}

/// Serves the API on `listener` until the future `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "api: accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, &state, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn route(req: Request<Incoming>, state: &ApiState, peer: SocketAddr) -> ApiResponse {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    tracing::debug!(%method, %path, %peer, "api request");
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
        (Method::POST, "/get_pot") => get_pot(req, state).await,
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
            let keys = state
                .services
                .minters
                .as_ref()
                .map(|p| p.warm_keys())
                .unwrap_or_default();
            json_response(StatusCode::OK, &json!(keys))
        }
        (Method::GET, "/session") => session(state).await,
        (Method::GET, "/") => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"This server is not meant to be accessed directly. Point the bgutil yt-dlp plugin at it (youtubepot-bgutilhttp:base_url) or use it as a proxy.\n",
            )))
            .expect("static response parts are valid"),
        (_, "/get_pot" | "/ping" | "/invalidate_caches" | "/invalidate_it" | "/minter_cache" | "/session") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

/// The parsed `/get_pot` request.
#[derive(Debug, Default, PartialEq)]
pub struct GetPot {
    pub content_binding: Option<String>,
    pub proxy: Option<String>,
    pub bypass_cache: bool,
    pub challenge: Option<Challenge>,
    pub innertube_visitor_data: Option<String>,
}

/// Validates a `/get_pot` body; the error names the offending field.
pub fn parse_get_pot(body: &[u8]) -> Result<GetPot, String> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?
    };
    let o = v.as_object().ok_or("request body must be a JSON object")?;
    if o.contains_key("data_sync_id") {
        return Err("data_sync_id is deprecated, use content_binding instead".into());
    }
    if o.contains_key("visitor_data") {
        return Err("visitor_data is deprecated, use content_binding instead".into());
    }
    if o.get("disable_innertube")
        .is_some_and(|d| !d.is_null() && d != &json!(false))
    {
        return Err(
            "disable_innertube is deprecated because the /Create endpoint doesn't work anymore"
                .into(),
        );
    }
    let opt_string = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(other) => Err(format!("`{k}` must be a string, got {}", type_name(other))),
        }
    };
    let opt_bool = |k: &str| -> Result<bool, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("`{k}` must be a boolean, got {}", type_name(other))),
        }
    };
    let challenge = match o.get("challenge") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let v: Value = serde_json::from_str(s)
                .map_err(|e| format!("`challenge` is a string but not JSON: {e}"))?;
            Some(Challenge::from_bg_challenge(&v).map_err(|e| format!("`challenge`: {e}"))?)
        }
        Some(v @ Value::Object(_)) => {
            Some(Challenge::from_bg_challenge(v).map_err(|e| format!("`challenge`: {e}"))?)
        }
        Some(other) => {
            return Err(format!(
                "`challenge` must be an object, a JSON string or null, got {}",
                type_name(other)
            ));
        }
    };
    let innertube_visitor_data = match o.get("innertube_context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(ctx)) => ctx
            .get("client")
            .and_then(|c| c.get("visitorData"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        Some(other) => {
            return Err(format!(
                "`innertube_context` must be an object, got {}",
                type_name(other)
            ));
        }
    };
    // Accepted for compatibility; see README (upstream TLS is always verified).
    opt_bool("disable_tls_verification")?;
    opt_string("source_address")?;
    Ok(GetPot {
        content_binding: opt_string("content_binding")?,
        proxy: opt_string("proxy")?,
        bypass_cache: opt_bool("bypass_cache")?,
        challenge,
        innertube_visitor_data,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiResponse> {
    match Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {e}"),
        )),
    }
}

async fn get_pot(req: Request<Incoming>, state: &ApiState) -> ApiResponse {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed = match parse_get_pot(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match mint_for(state, parsed).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => {
            tracing::warn!(error = %e, "api: /get_pot failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// True when `proxy` is this process's own proxy listener. yt-dlp hands its `--proxy` to the
/// provider; when that is potproxy itself, minting through it would only loop back here.
pub fn names_own_proxy(proxy: &str, own: SocketAddr) -> bool {
    let Ok(crate::upstream::Egress::Http { proxy: uri, .. }) =
        crate::upstream::Egress::parse(proxy)
    else {
        return false;
    };
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return false;
    };
    let host = host.trim_matches(|c| c == '[' || c == ']');
    port == own.port()
        && (host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip == own.ip() || ip.is_loopback() || own.ip().is_unspecified()))
}

/// The `/get_pot` answer for a parsed request (shared with the `mint` command).
pub async fn mint_for(state: &ApiState, mut req: GetPot) -> Result<Value, String> {
    let services = &state.services;
    if let (Some(p), Some(own)) = (req.proxy.as_deref(), state.own_proxy) {
        if names_own_proxy(p, own) {
            tracing::debug!("api: `proxy` is this potproxy; minting through the configured egress");
            req.proxy = None;
        }
    }
    if let (Some(challenge), Some(pool)) = (req.challenge, &services.minters) {
        let bg = pool.for_egress(req.proxy.as_deref())?;
        if bg.ready().is_none() {
            bg.warm_with(challenge).await.map_err(|e| e.to_string())?;
        }
    }
    let binding_text = match req.content_binding.or(req.innertube_visitor_data) {
        Some(b) => b,
        None => fresh_visitor_data(services, req.proxy.as_deref()).await?,
    };
    let issued = services
        .tokens
        .issue(&TokenRequest {
            egress: req.proxy.clone(),
            bypass_cache: req.bypass_cache,
            ..TokenRequest::new(binding_of(&binding_text))
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "poToken": issued.token.as_str(),
        "contentBinding": binding_text,
        "expiresAt": iso8601(issued.expires_at),
    }))
}

/// Visitor data YouTube issues: from the minter's page when it has one, else InnerTube
/// `/youtubei/v1/visitor_id`.
async fn fresh_visitor_data(services: &Services, proxy: Option<&str>) -> Result<String, String> {
    if let Some(pool) = &services.minters {
        let bg = pool.for_egress(proxy)?;
        if let Ok(m) = bg.minter().await {
            if let Some(v) = m.page.as_ref().and_then(|p| p.visitor_data()) {
                return Ok(v.to_string());
            }
        }
    }
    let http = match proxy {
        Some(p) => services.http_via(p)?,
        None => services.http.clone(),
    };
    let body = json!({"context": {"client": {"clientName": "WEB", "clientVersion": "2.20260512.00.00", "hl": "en"}}});
    let res = http
        .send(
            Method::POST,
            "https://www.youtube.com/youtubei/v1/visitor_id?prettyPrint=false",
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&body).expect("json")),
        )
        .await
        .map_err(|e| format!("Unable to generate visitor data: {e}"))?;
    let v: Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("Unable to generate visitor data: {e}"))?;
    v["responseContext"]["visitorData"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "Unable to generate visitor data: no responseContext.visitorData".into())
}

async fn session(state: &ApiState) -> ApiResponse {
    match session_json(state).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// A ready session: visitor data (and rollout token) from the home page's ytcfg, and a token
/// bound to that visitor data.
pub async fn session_json(state: &ApiState) -> Result<Value, String> {
    let services = &state.services;
    let mut rollout = None;
    let mut visitor = None;
    if let Some(bg) = &services.botguard {
        let m = bg.minter().await.map_err(|e| e.to_string())?;
        if let Some(p) = &m.page {
            visitor = p.visitor_data().map(str::to_string);
            rollout = p
                .ytcfg
                .get("INNERTUBE_CONTEXT")
                .and_then(|c| c.get("client"))
                .and_then(|c| c.get("rolloutToken"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
    let visitor = match visitor {
        Some(v) => v,
        None => fresh_visitor_data(services, None).await?,
    };
    let issued = services
        .tokens
        .issue(&TokenRequest::new(Binding::Session(visitor.clone())))
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "visitorData": visitor,
        "poToken": issued.token.as_str(),
        "rolloutToken": rollout,
        "expiresAt": iso8601(issued.expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_has_milliseconds_and_z() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_300_000_123);
        assert_eq!(iso8601(t), "2026-11-21T22:26:40.123Z");
    }

    #[test]
    fn a_proxy_naming_this_process_is_recognised() {
        let own: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(names_own_proxy("http://127.0.0.1:8080", own));
        assert!(names_own_proxy("http://localhost:8080", own));
        assert!(names_own_proxy("127.0.0.1:8080", own));
        assert!(!names_own_proxy("http://127.0.0.1:3128", own));
        assert!(!names_own_proxy("http://10.0.0.1:8080", own));
        assert!(!names_own_proxy("socks5://127.0.0.1:8080", own));
    }

    #[test]
    fn bindings_are_typed_by_shape() {
        assert_eq!(
            binding_of("dQw4w9WgXcQ"),
            Binding::Video("dQw4w9WgXcQ".into())
        );
        assert!(matches!(binding_of("CgtAbc%3D%3D"), Binding::Session(_)));
        assert!(matches!(binding_of("12345||"), Binding::Session(_)));
    }

    #[test]
    fn get_pot_errors_name_the_field() {
        let e = parse_get_pot(br#"{"content_binding": 5}"#).unwrap_err();
        assert!(
            e.contains("`content_binding`") && e.contains("a number"),
            "{e}"
        );
        let e = parse_get_pot(br#"{"bypass_cache": "yes"}"#).unwrap_err();
        assert!(e.contains("`bypass_cache`"), "{e}");
        let e = parse_get_pot(br#"{"challenge": 3}"#).unwrap_err();
        assert!(e.contains("`challenge`"), "{e}");
        let e = parse_get_pot(b"{not json").unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse_get_pot(b"[1]").unwrap_err();
        assert!(e.contains("object"), "{e}");
        for (field, msg) in [
            ("visitor_data", "visitor_data is deprecated"),
            ("data_sync_id", "data_sync_id is deprecated"),
            ("disable_innertube", "disable_innertube is deprecated"),
        ] {
            let e = parse_get_pot(format!(r#"{{"{field}": "x"}}"#).as_bytes()).unwrap_err();
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn the_plugins_body_parses() {
        let body = br#"{"bypass_cache": false, "challenge": null, "content_binding": "CgtAAA", "disable_tls_verification": false, "proxy": null, "innertube_context": {"client": {"clientName": "MWEB", "clientVersion": "2.2", "visitorData": "CgtBBB"}}, "source_address": null}"#;
        let p = parse_get_pot(body).unwrap();
        assert_eq!(p.content_binding.as_deref(), Some("CgtAAA"));
        assert_eq!(p.innertube_visitor_data.as_deref(), Some("CgtBBB"));
        assert!(!p.bypass_cache && p.proxy.is_none() && p.challenge.is_none());
        assert_eq!(parse_get_pot(b"").unwrap(), GetPot::default());
    }
}
