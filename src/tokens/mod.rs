//! The token service: `get(request)` -> a token for the request's binding, asking each configured
//! source in order. A source answers, declines (it has nothing for this binding), or fails; a
//! decline or failure moves on to the next source. Callers never learn which source answered.

mod static_source;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use static_source::StaticSource;

use crate::token::{Binding, Token};

/// What a caller needs a token for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    pub binding: Binding,
    /// The InnerTube client the token is for (`MWEB`, `WEB_REMIX`, ...), when known.
    pub client: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no token source has a token for binding {0}")]
    NoToken(String),
    #[error("token source `{source_name}` failed: {reason}")]
    Source {
        source_name: &'static str,
        reason: String,
    },
}

/// One place tokens come from.
pub trait TokenSource: Send + Sync {
    /// Short name used in logs and in `[tokens] sources`.
    fn name(&self) -> &'static str;

    /// `Ok(Some)` answers, `Ok(None)` declines, `Err` failed (the service logs it and moves on).
    fn get<'a>(&'a self, req: &'a TokenRequest)
    -> BoxFuture<'a, Result<Option<Token>, TokenError>>;
}

/// Asks sources in order.
#[derive(Clone)]
pub struct TokenService {
    sources: Arc<Vec<Arc<dyn TokenSource>>>,
}

impl TokenService {
    pub fn new(sources: Vec<Arc<dyn TokenSource>>) -> Self {
        TokenService {
            sources: Arc::new(sources),
        }
    }

    pub async fn get(&self, req: &TokenRequest) -> Result<Token, TokenError> {
        let mut last_failure = None;
        for source in self.sources.iter() {
            match source.get(req).await {
                Ok(Some(token)) => {
                    tracing::debug!(source = source.name(), binding = ?req.binding, token = %token.redacted(), "token");
                    return Ok(token);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(source = source.name(), error = %e, "token source failed; trying the next");
                    last_failure = Some(e);
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| {
            TokenError::NoToken(match &req.binding {
                Binding::Video(v) => format!("video {v}"),
                Binding::Session(s) => format!("session {}", crate::redact::redact(s)),
                Binding::Unknown => "unknown".into(),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Option<Result<Token, ()>>);

    impl TokenSource for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn get<'a>(
            &'a self,
            _: &'a TokenRequest,
        ) -> BoxFuture<'a, Result<Option<Token>, TokenError>> {
            let out = match &self.1 {
                None => Ok(None),
                Some(Ok(t)) => Ok(Some(t.clone())),
                Some(Err(())) => Err(TokenError::Source {
                    source_name: self.0,
                    reason: "down".into(),
                }),
            };
            Box::pin(async move { out })
        }
    }

    fn req() -> TokenRequest {
        TokenRequest {
            binding: Binding::Video("abcdefghijk".into()),
            client: Some("MWEB".into()),
        }
    }

    #[tokio::test]
    async fn declining_and_failing_sources_fall_through_to_the_next() {
        let t = Token::from_bytes(&[0x32, 1, 2]);
        let svc = TokenService::new(vec![
            Arc::new(Fixed("a", None)),
            Arc::new(Fixed("b", Some(Err(())))),
            Arc::new(Fixed("c", Some(Ok(t.clone())))),
        ]);
        assert_eq!(svc.get(&req()).await.unwrap(), t);
    }

    #[tokio::test]
    async fn no_answer_is_an_error_naming_the_binding() {
        let svc = TokenService::new(vec![Arc::new(Fixed("a", None))]);
        let e = svc.get(&req()).await.unwrap_err().to_string();
        assert!(e.contains("abcdefghijk"), "{e}");
    }
}
