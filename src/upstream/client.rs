//! The proxy's own HTTP requests (challenges, GenerateIT, visitor data, re-issued media): the
//! same connector, overrides, egress and trust store as user traffic, bodies read fully up to a
//! cap.

use std::time::Duration;

use super::dial::{UpstreamConnector, connector_via};
use super::{Egress, UpstreamConfig, UpstreamError};

/// A small HTTP client for the proxy's own requests (challenges, GenerateIT, providers): the
/// same connector, overrides and trust store as user traffic, bodies read fully up to a cap.
#[derive(Clone)]
pub struct HttpClient {
    client:
        hyper_util::client::legacy::Client<UpstreamConnector, http_body_util::Full<bytes::Bytes>>,
    timeout: Duration,
}

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct FetchedResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("{method} {url}: {reason}")]
    Failed {
        method: http::Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: no answer within {after:?}")]
    Timeout {
        method: http::Method,
        url: String,
        after: Duration,
    },
    #[error("{method} {url}: body over {limit} bytes")]
    TooLarge {
        method: http::Method,
        url: String,
        limit: usize,
    },
}

/// Largest body the proxy's own requests read (the YouTube home page is ~1.5 MB).
const FETCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl HttpClient {
    pub fn new(cfg: &UpstreamConfig, timeout: Duration) -> Result<Self, UpstreamError> {
        Self::via(cfg, cfg.proxy.clone(), timeout)
    }

    /// A client whose connections leave through `egress`.
    pub fn via(
        cfg: &UpstreamConfig,
        egress: Egress,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        Ok(Self::over(connector_via(cfg, egress)?, timeout))
    }

    fn over(connector: super::UpstreamConnector, timeout: Duration) -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector);
        HttpClient { client, timeout }
    }

    /// A client for requests sent again on a client's behalf (re-issued media, continuations,
    /// a player request after a bot check): names that resolve to a destination `check`
    /// refuses are refused before they are dialled, as for the first send.
    pub fn checked(
        cfg: &UpstreamConfig,
        check: std::sync::Arc<crate::access::Destinations>,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        Ok(Self::over(
            super::dial::connector_checked(cfg, check)?,
            timeout,
        ))
    }

    /// Sends a bodiless request and returns the response as it streams (for re-issued media
    /// requests, whose bodies go straight to the client).
    pub async fn stream(
        &self,
        method: http::Method,
        uri: http::Uri,
        headers: http::HeaderMap,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        self.stream_with(method, uri, headers, bytes::Bytes::new())
            .await
    }

    /// Sends a request with a small body (a SABR request) and returns the response as it
    /// streams. `Content-Length` follows the body.
    pub async fn stream_with(
        &self,
        method: http::Method,
        uri: http::Uri,
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let url = uri.to_string();
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(http_body_util::Full::new(body))
            .map_err(|e| FetchError::Failed {
                method: method.clone(),
                url: url.clone(),
                reason: e.to_string(),
            })?;
        *req.headers_mut() = headers;
        req.headers_mut().remove(http::header::HOST);
        tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| FetchError::Timeout {
                method: method.clone(),
                url: url.clone(),
                after: self.timeout,
            })?
            .map_err(|e| FetchError::Failed {
                method,
                url,
                reason: crate::errtext::error_chain(&e),
            })
    }

    /// Sends a request and reads the whole response (up to 16 MiB).
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<FetchedResponse, FetchError> {
        use http_body_util::BodyExt;
        let failed = |reason: String| FetchError::Failed {
            method: method.clone(),
            url: url.to_string(),
            reason,
        };
        let mut req = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.unwrap_or_default(),
            )))
            .map_err(|e| failed(e.to_string()))?;
        let work = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| failed(crate::errtext::error_chain(&e)))?;
            let (parts, body) = res.into_parts();
            let limited = http_body_util::Limited::new(body, FETCH_BODY_LIMIT);
            let body = limited.collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    FetchError::TooLarge {
                        method: method.clone(),
                        url: url.to_string(),
                        limit: FETCH_BODY_LIMIT,
                    }
                } else {
                    failed(e.to_string())
                }
            })?;
            Ok(FetchedResponse {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout {
                method: method.clone(),
                url: url.to_string(),
                after: self.timeout,
            })?
    }
}
