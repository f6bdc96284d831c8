//! `POST /get_pot`: the request body validated into a [`GetPot`], then answered from the token
//! service (shared with the `mint` command). A proxy the request names is parsed here, once,
//! into the [`Egress`] every later step uses.

use std::net::SocketAddr;

use http::StatusCode;
use serde_json::{Value, json};

use super::responses::{ApiResponse, error, failure, json_response};
use super::{ApiError, ApiState, iso8601};
use crate::botguard::challenge::{Challenge, ChallengeError};
use crate::services::Services;
use crate::token::Binding;
use crate::tokens::TokenRequest;
use crate::upstream::Egress;

/// The parsed `/get_pot` request.
#[derive(Debug, Default, PartialEq)]
pub struct GetPot {
    pub content_binding: Option<String>,
    /// The upstream proxy to mint through (`None`: the configured egress).
    pub proxy: Option<Egress>,
    pub bypass_cache: bool,
    pub challenge: Option<Challenge>,
    pub innertube_visitor_data: Option<String>,
}

/// A `/get_pot` body the caller must fix (400). The texts of the deprecation messages are the
/// ones bgutil sends; plugins show them as they are.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot read request body: {0}")]
    Unreadable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("request body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Deprecated(&'static str),
    #[error("`{field}` must be {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("`challenge` is a string but not JSON: {0}")]
    ChallengeNotJson(#[source] serde_json::Error),
    #[error("`challenge`: {0}")]
    Challenge(#[source] ChallengeError),
}

/// Why fresh visitor data could not be had from InnerTube.
/// Validates a `/get_pot` body. Field errors are [`ApiError::BadRequest`] and name the field; a
/// `proxy` that cannot be used is checked last and is [`ApiError::Proxy`].
pub fn parse_get_pot(body: &[u8]) -> Result<GetPot, ApiError> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(RequestError::NotJson)?
    };
    let o = v.as_object().ok_or(RequestError::NotAnObject)?;
    if o.contains_key("data_sync_id") {
        return Err(RequestError::Deprecated(
            "data_sync_id is deprecated, use content_binding instead",
        )
        .into());
    }
    if o.contains_key("visitor_data") {
        return Err(RequestError::Deprecated(
            "visitor_data is deprecated, use content_binding instead",
        )
        .into());
    }
    if o.get("disable_innertube")
        .is_some_and(|d| !d.is_null() && d != &json!(false))
    {
        return Err(RequestError::Deprecated(
            "disable_innertube is deprecated because the /Create endpoint doesn't work anymore",
        )
        .into());
    }
    let wrong =
        |field: &'static str, expected: &'static str, got: &Value| RequestError::WrongType {
            field,
            expected,
            got: type_name(got),
        };
    let opt_string = |k: &'static str| -> Result<Option<String>, RequestError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(other) => Err(wrong(k, "a string", other)),
        }
    };
    let opt_bool = |k: &'static str| -> Result<bool, RequestError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong(k, "a boolean", other)),
        }
    };
    let challenge = match o.get("challenge") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let v: Value = serde_json::from_str(s).map_err(RequestError::ChallengeNotJson)?;
            Some(caller_challenge(&v)?)
        }
        Some(v @ Value::Object(_)) => Some(caller_challenge(v)?),
        Some(other) => {
            return Err(wrong("challenge", "an object, a JSON string or null", other).into());
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
            return Err(wrong("innertube_context", "an object", other).into());
        }
    };
    // Accepted for compatibility; see README (upstream TLS is always verified).
    opt_bool("disable_tls_verification")?;
    opt_string("source_address")?;
    let content_binding = opt_string("content_binding")?;
    let proxy_text = opt_string("proxy")?;
    let bypass_cache = opt_bool("bypass_cache")?;
    Ok(GetPot {
        content_binding,
        proxy: proxy_text.as_deref().map(Egress::parse).transpose()?,
        bypass_cache,
        challenge,
        innertube_visitor_data,
    })
}

/// A challenge from the caller. Its inline `interpreterJavascript` is the caller's code (the
/// hash next to it proves nothing: the caller wrote both), so it is dropped: the interpreter is
/// fetched from Google's `interpreterUrl` (only google.com / youtube.com hosts, see
/// [`Challenge::from_bg_challenge`]) and checked against the hash.
fn caller_challenge(v: &Value) -> Result<Challenge, RequestError> {
    let mut c = Challenge::from_bg_challenge(v).map_err(RequestError::Challenge)?;
    if c.interpreter_js.take().is_some() {
        tracing::debug!(
            "api: ignoring the challenge's inline interpreter; fetching it from its URL"
        );
    }
    if c.interpreter_url.is_none() {
        return Err(RequestError::Challenge(ChallengeError::Missing(
            "interpreterUrl",
        )));
    }
    Ok(c)
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

/// What a caller is told when minting through its own `proxy` failed. One text for every
/// cause, so unreachable, refused and closed ports read the same (no port-scan oracle); the
/// cause goes to the log.
pub const PROXY_FAILURE: &str = "token generation through the given proxy failed";

pub(super) async fn get_pot(body: &[u8], state: &ApiState) -> ApiResponse {
    let mut via_caller_proxy = false;
    let answer = match parse_get_pot(body) {
        Ok(parsed) => {
            via_caller_proxy = parsed.proxy.is_some();
            mint_for(state, parsed).await
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => {
            if e.status() == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::warn!(error = %crate::errtext::error_chain(&e), "api: /get_pot failed");
                if via_caller_proxy {
                    return error(e.status(), PROXY_FAILURE);
                }
            }
            failure(&e)
        }
    }
}

/// True when `proxy` is this process's own proxy listener. yt-dlp hands its `--proxy` to the
/// provider; when that is potproxy itself, minting through it would only loop back here.
pub fn names_own_proxy(proxy: &Egress, own: SocketAddr) -> bool {
    let Egress::Http { proxy: uri, .. } = proxy else {
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
pub async fn mint_for(state: &ApiState, mut req: GetPot) -> Result<Value, ApiError> {
    let services = &state.services;
    if let (Some(p), Some(own)) = (req.proxy.as_ref(), state.own_proxy) {
        if names_own_proxy(p, own) {
            tracing::debug!("api: `proxy` is this potproxy; minting through the configured egress");
            req.proxy = None;
        }
    }
    if let (Some(challenge), Some(pool)) = (req.challenge, &services.minters) {
        let bg = pool.for_egress(req.proxy.as_ref()).await?;
        if bg.ready().is_none() {
            bg.warm_with(challenge).await?;
        }
    }
    // Held until the token is issued: a minter or browser in use is never evicted to make room
    // for another egress, and when every one stays in use the caller gets a 503 naming the
    // setting instead of a token failure.
    let mut held_minter = None;
    let mut held_browser = None;
    if req.proxy.is_some() {
        if let Some(pool) = &services.minters {
            held_minter = Some(pool.for_egress(req.proxy.as_ref()).await?);
        }
        if let Some(pool) = &services.browsers {
            held_browser = Some(pool.for_egress(req.proxy.as_ref()).await?);
        }
    }
    let binding_text = match req.content_binding.or(req.innertube_visitor_data) {
        Some(b) => b,
        None => fresh_visitor_data(services, req.proxy.as_ref()).await?,
    };
    let issued = services
        .tokens
        .issue(&TokenRequest {
            egress: req.proxy,
            bypass_cache: req.bypass_cache,
            ..TokenRequest::new(binding_of(&binding_text))
        })
        .await?;
    drop((held_minter, held_browser));
    Ok(json!({
        "poToken": issued.token.as_str(),
        "contentBinding": binding_text,
        "expiresAt": iso8601(issued.expires_at),
    }))
}

/// Visitor data YouTube issues: from the minter's page when it has one, else InnerTube
/// `/youtubei/v1/visitor_id`.
pub(super) async fn fresh_visitor_data(
    services: &Services,
    proxy: Option<&Egress>,
) -> Result<String, ApiError> {
    if let Some(pool) = &services.minters {
        let bg = pool.for_egress(proxy).await?;
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
    let client = crate::innertube::DEFAULT_CLIENT;
    crate::innertube::visitor_id(&http, client, crate::innertube::client_version(client))
        .await
        .map_err(ApiError::VisitorData)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress(text: &str) -> Egress {
        Egress::parse(text).unwrap()
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
    fn a_proxy_naming_this_process_is_recognised() {
        let own: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(names_own_proxy(&egress("http://127.0.0.1:8080"), own));
        assert!(names_own_proxy(&egress("http://localhost:8080"), own));
        assert!(names_own_proxy(&egress("127.0.0.1:8080"), own));
        assert!(!names_own_proxy(&egress("http://127.0.0.1:3128"), own));
        assert!(!names_own_proxy(&egress("http://10.0.0.1:8080"), own));
        assert!(!names_own_proxy(&egress("socks5://127.0.0.1:8080"), own));
    }

    fn bad_request(body: &[u8]) -> String {
        let e = parse_get_pot(body).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
        e.to_string()
    }

    #[test]
    fn get_pot_errors_name_the_field() {
        let e = bad_request(br#"{"content_binding": 5}"#);
        assert!(
            e.contains("`content_binding`") && e.contains("a number"),
            "{e}"
        );
        let e = bad_request(br#"{"bypass_cache": "yes"}"#);
        assert!(e.contains("`bypass_cache`"), "{e}");
        let e = bad_request(br#"{"challenge": 3}"#);
        assert!(e.contains("`challenge`"), "{e}");
        let e = bad_request(b"{not json");
        assert!(e.contains("not valid JSON"), "{e}");
        let e = bad_request(b"[1]");
        assert!(e.contains("object"), "{e}");
        for (field, msg) in [
            ("visitor_data", "visitor_data is deprecated"),
            ("data_sync_id", "data_sync_id is deprecated"),
            ("disable_innertube", "disable_innertube is deprecated"),
        ] {
            let e = bad_request(format!(r#"{{"{field}": "x"}}"#).as_bytes());
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn an_unusable_proxy_is_a_failure_on_our_side_named_after_the_scheme() {
        let e = parse_get_pot(br#"{"content_binding": "x", "proxy": "ftp://nope"}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.to_string().contains("ftp"), "{e}");
        // A field the caller must fix still wins.
        let e = parse_get_pot(br#"{"bypass_cache": 1, "proxy": "ftp://nope"}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_plugins_body_parses() {
        let body = br#"{"bypass_cache": false, "challenge": null, "content_binding": "CgtAAA", "disable_tls_verification": false, "proxy": null, "innertube_context": {"client": {"clientName": "MWEB", "clientVersion": "2.2", "visitorData": "CgtBBB"}}, "source_address": null}"#;
        let p = parse_get_pot(body).unwrap();
        assert_eq!(p.content_binding.as_deref(), Some("CgtAAA"));
        assert_eq!(p.innertube_visitor_data.as_deref(), Some("CgtBBB"));
        assert!(!p.bypass_cache && p.proxy.is_none() && p.challenge.is_none());
        assert_eq!(parse_get_pot(b"").unwrap(), GetPot::default());
        let p = parse_get_pot(br#"{"proxy": "socks5h://127.0.0.1:1080"}"#).unwrap();
        assert_eq!(
            p.proxy.unwrap().key().as_deref(),
            Some("socks5h://127.0.0.1:1080")
        );
    }
}
