//! An external bgutil-compatible provider as a token source (`[tokens.provider] url`). Its
//! `/ping` is checked at most once a minute (5 s timeout); while it is down the source declines,
//! so the next source answers. Tokens come from `POST /get_pot` (`timeout_secs`, default 20). The calls go
//! straight to the provider, never through the proxy or its upstream proxy, and carry this
//! instance's id so a provider URL pointing back at this very process is noticed, not looped.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{Minted, TokenError, TokenRequest, TokenSource};
use crate::token::{Token, TokenFormatError};
use crate::upstream::Egress;

/// Header the provider source sends so an instance recognises calls from itself; the provider
/// API refuses a call that carries its own instance id.
pub const HOP_HEADER: &str = "x-potproxy-instance";

const NAME: &str = "provider";
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(60);

/// Why a call to the provider gave no token.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Request(#[source] http::Error),
    #[error("Error reaching {method} {path}: {cause}")]
    Unreachable {
        method: http::Method,
        path: &'static str,
        #[source]
        cause: hyper_util::client::legacy::Error,
    },
    #[error("Error reading {method} {path}: {cause}")]
    Read {
        method: http::Method,
        path: &'static str,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{method} {path}: no answer within {after:?}")]
    TimedOut {
        method: http::Method,
        path: &'static str,
        after: Duration,
    },
    #[error("POST /get_pot answered {status}: {message}")]
    Status {
        status: http::StatusCode,
        message: String,
    },
    #[error("Server did not respond with a poToken")]
    NoToken,
    #[error("poToken: {0}")]
    BadToken(#[source] TokenFormatError),
}

/// The kind of a provider failure: no answer in time, an answer that says no, or a breakage.
fn token_error(e: ProviderError) -> TokenError {
    match e {
        ProviderError::TimedOut { .. } => TokenError::timed_out(NAME, e),
        ProviderError::Status { .. } => TokenError::refused(NAME, e),
        e => TokenError::failed(NAME, e),
    }
}

pub struct ProviderSource {
    base: String,
    timeout: Duration,
    instance: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// When `/ping` was last checked and whether the provider was usable then.
    last_ping: Mutex<Option<(Instant, bool)>>,
}

impl ProviderSource {
    pub fn new(base: &url::Url, timeout: Duration, instance: String) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(PING_TIMEOUT));
        ProviderSource {
            base: base.as_str().trim_end_matches('/').to_string(),
            timeout,
            instance,
            client: Client::builder(TokioExecutor::new()).build(http),
            last_ping: Mutex::new(None),
        }
    }

    async fn call(
        &self,
        method: http::Method,
        path: &'static str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, Value), ProviderError> {
        let url = format!("{}{path}", self.base);
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(HOP_HEADER, &self.instance)
            .header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(
                body.map(|b| serde_json::to_vec(&b).expect("json"))
                    .unwrap_or_default(),
            )))
            .map_err(ProviderError::Request)?;
        let work = async {
            let res =
                self.client
                    .request(req)
                    .await
                    .map_err(|cause| ProviderError::Unreachable {
                        method: method.clone(),
                        path,
                        cause,
                    })?;
            let status = res.status();
            let bytes = Limited::new(res.into_body(), 1024 * 1024)
                .collect()
                .await
                .map_err(|cause| ProviderError::Read {
                    method: method.clone(),
                    path,
                    cause,
                })?
                .to_bytes();
            let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, v))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ProviderError::TimedOut {
                method: method.clone(),
                path,
                after: timeout,
            })?
    }

    /// Whether the provider answered `/ping` (cached for a minute), and is not this process.
    async fn available(&self) -> bool {
        if let Some((at, ok)) = *self.last_ping.lock().expect("ping lock") {
            if at.elapsed() < PING_EVERY {
                return ok;
            }
        }
        let ok = match self
            .call(http::Method::GET, "/ping", None, PING_TIMEOUT)
            .await
        {
            Ok((status, v)) if status.is_success() => {
                if v["potproxy_instance"].as_str() == Some(self.instance.as_str()) {
                    tracing::warn!(url = %self.base, "[tokens.provider] url is this potproxy's own API; the provider source stays off");
                    false
                } else {
                    v["version"].as_str().is_some()
                }
            }
            Ok((status, _)) => {
                tracing::warn!(url = %self.base, %status, "provider /ping answered an error");
                false
            }
            Err(e) => {
                tracing::warn!(url = %self.base, error = %crate::errtext::error_chain(&e), "provider is not reachable");
                false
            }
        };
        *self.last_ping.lock().expect("ping lock") = Some((Instant::now(), ok));
        ok
    }
}

impl TokenSource for ProviderSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn readiness(&self) -> BoxFuture<'_, Result<(), super::Unready>> {
        Box::pin(async move {
            match self.available().await {
                true => Ok(()),
                false => Err(super::Unready::Unreachable {
                    source_name: NAME,
                    target: self.base.clone(),
                }),
            }
        })
    }

    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
        Box::pin(async move {
            let Some(binding) = req.binding.key() else {
                return Ok(None);
            };
            if !self.available().await {
                return Ok(None);
            }
            let body = json!({
                "content_binding": binding,
                "proxy": req.egress.as_ref().and_then(Egress::url),
                "bypass_cache": req.bypass_cache,
            });
            let (status, v) = self
                .call(http::Method::POST, "/get_pot", Some(body), self.timeout)
                .await
                .map_err(token_error)?;
            if !status.is_success() {
                // Check /ping again before the next request.
                *self.last_ping.lock().expect("ping lock") = None;
                return Err(token_error(ProviderError::Status {
                    status,
                    message: v["error"].as_str().unwrap_or("").to_string(),
                }));
            }
            let text = v["poToken"]
                .as_str()
                .ok_or(token_error(ProviderError::NoToken))?;
            let token = Token::parse(text).map_err(|e| token_error(ProviderError::BadToken(e)))?;
            Ok(Some(Minted::lasting(token)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_failures_keep_their_kind_and_message() {
        let e = token_error(ProviderError::Status {
            status: http::StatusCode::INTERNAL_SERVER_ERROR,
            message: "boom".into(),
        });
        assert!(matches!(e, TokenError::Refused { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "token source `provider` failed: POST /get_pot answered 500 Internal Server Error: boom"
        );
        let e = token_error(ProviderError::TimedOut {
            method: http::Method::POST,
            path: "/get_pot",
            after: Duration::from_secs(20),
        });
        assert!(matches!(e, TokenError::TimedOut { .. }), "{e:?}");
        assert!(matches!(
            token_error(ProviderError::NoToken),
            TokenError::Failed { .. }
        ));
    }
}
