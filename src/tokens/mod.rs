//! The token service: `get(request)` -> a token for the request's binding. Answers come from a
//! cache keyed by (binding, egress) when fresh; otherwise each configured source is asked in
//! order. A source answers, declines (nothing for this binding), or fails; a decline or failure
//! moves on to the next source. Concurrent requests for one key mint once (single flight).
//! Owns its settings (`[tokens]`, [`TokensConfig`]) and the typed [`TokenError`] whose kind
//! says why no token came.

mod botguard_source;
mod cache;
mod cold_start;
mod provider_source;
mod settings;
mod static_source;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

pub use botguard_source::BotGuardSource;
pub use cache::{CacheStats, TokenCache};
pub use cold_start::{ColdStartSource, cold_start_token, decode_cold_start};
pub use provider_source::{HOP_HEADER, ProviderError, ProviderSource};
pub use settings::{BotGuardConfig, SourceKind, TokensConfig};
pub use static_source::StaticSource;

use crate::token::{Binding, Token};
use crate::upstream::Egress;

/// What a caller needs a token for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    pub binding: Binding,
    /// The upstream proxy the token's traffic leaves through (`None`: the configured egress).
    /// Tokens are treated as egress-bound, so its key is part of the cache key.
    pub egress: Option<Egress>,
    /// Skip the cache lookup (the answer is still stored).
    pub bypass_cache: bool,
}

impl TokenRequest {
    pub fn new(binding: Binding) -> Self {
        TokenRequest {
            binding,
            egress: None,
            bypass_cache: false,
        }
    }
}

/// A source's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub token: Token,
    /// When the token stops being good; `None`: the service's TTL decides.
    pub expires_at: Option<SystemTime>,
    /// Placeholders (cold-start tokens) must not be cached: the next request should get a
    /// real token as soon as one can be minted.
    pub cacheable: bool,
}

impl Minted {
    pub fn lasting(token: Token) -> Self {
        Minted {
            token,
            expires_at: None,
            cacheable: true,
        }
    }
}

/// A token with its expiry, as the service hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: Token,
    pub expires_at: SystemTime,
    /// True when served from the cache.
    pub cached: bool,
}

/// What went wrong inside a source, shared so a [`TokenError`] stays cloneable.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Why no token was issued. The variant is the kind a caller acts on; the text stays the same
/// for every failed source so logs and API answers read as before.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Every source declined: nothing has a token for this binding.
    #[error("no token source has a token for binding {binding}")]
    Unavailable { binding: String },
    /// A source did not answer in time; asking again later may work.
    #[error("token source `{source_name}` failed: {cause}")]
    TimedOut {
        source_name: &'static str,
        #[source]
        cause: Cause,
    },
    /// A source's upstream answered and said no (an error status, no integrity token).
    #[error("token source `{source_name}` failed: {cause}")]
    Refused {
        source_name: &'static str,
        #[source]
        cause: Cause,
    },
    /// A source broke (network, interpreter, malformed answer).
    #[error("token source `{source_name}` failed: {cause}")]
    Failed {
        source_name: &'static str,
        #[source]
        cause: Cause,
    },
}

impl TokenError {
    /// The `outcome` label of `potproxy_tokens_total` for this failure.
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            TokenError::Refused { .. } => "refused",
            TokenError::Unavailable { .. } => "declined",
            TokenError::TimedOut { .. } | TokenError::Failed { .. } => "failed",
        }
    }

    pub fn timed_out(
        source_name: &'static str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TokenError::TimedOut {
            source_name,
            cause: Arc::new(cause),
        }
    }

    pub fn refused(
        source_name: &'static str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TokenError::Refused {
            source_name,
            cause: Arc::new(cause),
        }
    }

    pub fn failed(
        source_name: &'static str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TokenError::Failed {
            source_name,
            cause: Arc::new(cause),
        }
    }
}

/// One place tokens come from.
pub trait TokenSource: Send + Sync {
    /// Short name used in logs and in `[tokens] sources`.
    fn name(&self) -> &'static str;

    /// `Ok(Some)` answers, `Ok(None)` declines, `Err` failed (the service logs it and moves on).
    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>>;

    /// Drops whatever the source holds that produced tokens (an integrity token, a minter).
    fn invalidate(&self) {}

    /// Whether this source can serve a token now (`/readyz`): `Err` says why not. Sources
    /// that only fill in behind others (cold start) are never ready on their own.
    fn readiness(&self) -> BoxFuture<'_, Result<(), String>> {
        let name = self.name();
        Box::pin(async move { Err(format!("{name}: does not serve tokens on its own")) })
    }
}

/// Asks sources in order, through the cache.
#[derive(Clone)]
pub struct TokenService {
    sources: Arc<Vec<Arc<dyn TokenSource>>>,
    cache: TokenCache,
    ttl: Duration,
}

fn describe(binding: &Binding) -> String {
    match binding {
        Binding::Video(v) => format!("video {v}"),
        Binding::Session(s) => format!("session {}", crate::redact::redact(s)),
        Binding::Unknown => "unknown".into(),
    }
}

impl TokenService {
    pub fn new(sources: Vec<Arc<dyn TokenSource>>, cache: TokenCache, ttl: Duration) -> Self {
        TokenService {
            sources: Arc::new(sources),
            cache,
            ttl,
        }
    }

    /// A service without persistence and with the default TTL (tests, one-off use).
    pub fn uncached(sources: Vec<Arc<dyn TokenSource>>) -> Self {
        TokenService::new(
            sources,
            TokenCache::in_memory(),
            Duration::from_secs(6 * 3600),
        )
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    pub fn sources(&self) -> impl Iterator<Item = &Arc<dyn TokenSource>> {
        self.sources.iter()
    }

    /// The token for `req`: from the cache when fresh, else minted once however many callers
    /// ask at the same time.
    pub async fn issue(&self, req: &TokenRequest) -> Result<Issued, TokenError> {
        let key = cache::Key::of(req);
        let Some(key) = key else {
            // Nothing to key a cache on: ask the sources every time (static default only).
            let m = self.ask_sources(req).await?;
            return Ok(self.finish(m));
        };
        if !req.bypass_cache {
            if let Some(hit) = self.cache.lookup(&key) {
                tracing::trace!(binding = %describe(&req.binding), "token cache hit");
                crate::metrics::TOKENS.with(&["cache", "cached"]).inc();
                return Ok(hit);
            }
        }
        let _flight = self.cache.flight(&key).await;
        if !req.bypass_cache {
            // Someone else may have minted while we waited for the flight.
            if let Some(hit) = self.cache.lookup(&key) {
                crate::metrics::TOKENS.with(&["cache", "cached"]).inc();
                return Ok(hit);
            }
        }
        let m = self.ask_sources(req).await?;
        let issued = self.finish(m.clone());
        let stats = self.cache.stats();
        tracing::debug!(binding = %describe(&req.binding), cache_hits = stats.hits, cache_misses = stats.misses, "token minted");
        if m.cacheable {
            self.cache
                .store(key, issued.token.clone(), issued.expires_at);
        }
        Ok(issued)
    }

    /// Shorthand for [`issue`](Self::issue) when only the token matters.
    pub async fn get(&self, req: &TokenRequest) -> Result<Token, TokenError> {
        self.issue(req).await.map(|i| i.token)
    }

    /// A freshly minted answer, its expiry capped by the TTL.
    fn finish(&self, m: Minted) -> Issued {
        let ttl_end = SystemTime::now() + self.ttl;
        let expires_at = m.expires_at.map_or(ttl_end, |e| e.min(ttl_end));
        Issued {
            token: m.token,
            expires_at,
            cached: false,
        }
    }

    async fn ask_sources(&self, req: &TokenRequest) -> Result<Minted, TokenError> {
        let mut last_failure = None;
        for source in self.sources.iter() {
            match source.get(req).await {
                Ok(Some(m)) => {
                    tracing::debug!(source = source.name(), binding = %describe(&req.binding), token = %m.token.redacted(), "token");
                    crate::metrics::TOKENS
                        .with(&[source.name(), "minted"])
                        .inc();
                    return Ok(m);
                }
                Ok(None) => {
                    crate::metrics::TOKENS
                        .with(&[source.name(), "declined"])
                        .inc();
                }
                Err(e) => {
                    crate::metrics::TOKENS
                        .with(&[source.name(), e.metric_outcome()])
                        .inc();
                    tracing::warn!(source = source.name(), error = %crate::errtext::error_chain(&e), "token source failed; trying the next");
                    last_failure = Some(e);
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| TokenError::Unavailable {
            binding: describe(&req.binding),
        }))
    }

    /// Empties the token cache.
    pub fn invalidate_caches(&self) {
        self.cache.clear();
    }

    /// Makes every source drop its integrity token / minter.
    pub fn invalidate_integrity(&self) {
        for s in self.sources.iter() {
            s.invalidate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fixed(&'static str, Option<Result<Token, ()>>);

    impl TokenSource for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn get<'a>(
            &'a self,
            _: &'a TokenRequest,
        ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
            let out = match &self.1 {
                None => Ok(None),
                Some(Ok(t)) => Ok(Some(Minted::lasting(t.clone()))),
                Some(Err(())) => Err(TokenError::failed(self.0, std::io::Error::other("down"))),
            };
            Box::pin(async move { out })
        }
    }

    /// Counts mints and takes a while, so concurrent callers overlap.
    struct Slow(AtomicUsize);

    impl TokenSource for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn get<'a>(
            &'a self,
            req: &'a TokenRequest,
        ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
            Box::pin(async move {
                let n = self.0.fetch_add(1, Ordering::SeqCst) as u8;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut bytes = vec![0x32, 1, n];
                bytes.extend_from_slice(req.binding.key().unwrap_or("").as_bytes());
                Ok(Some(Minted::lasting(Token::from_bytes(&bytes))))
            })
        }
    }

    fn req() -> TokenRequest {
        TokenRequest::new(Binding::Video("abcdefghijk".into()))
    }

    #[tokio::test]
    async fn declining_and_failing_sources_fall_through_to_the_next() {
        let t = Token::from_bytes(&[0x32, 1, 2]);
        let svc = TokenService::uncached(vec![
            Arc::new(Fixed("a", None)),
            Arc::new(Fixed("b", Some(Err(())))),
            Arc::new(Fixed("c", Some(Ok(t.clone())))),
        ]);
        assert_eq!(svc.get(&req()).await.unwrap(), t);
    }

    #[tokio::test]
    async fn no_answer_is_an_error_naming_the_binding() {
        let svc = TokenService::uncached(vec![Arc::new(Fixed("a", None))]);
        let e = svc.get(&req()).await.unwrap_err();
        assert!(matches!(e, TokenError::Unavailable { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("abcdefghijk"), "{e}");
    }

    #[tokio::test]
    async fn the_last_failure_is_reported_with_its_kind_and_cause() {
        let svc = TokenService::uncached(vec![
            Arc::new(Fixed("a", Some(Err(())))),
            Arc::new(Fixed("b", None)),
        ]);
        let e = svc.get(&req()).await.unwrap_err();
        assert!(
            matches!(
                e,
                TokenError::Failed {
                    source_name: "a",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "token source `a` failed: down");
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "down");
    }

    #[tokio::test]
    async fn a_hundred_concurrent_requests_for_one_binding_mint_once() {
        let slow = Arc::new(Slow(AtomicUsize::new(0)));
        let svc = TokenService::uncached(vec![slow.clone()]);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move { svc.get(&req()).await.unwrap() })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap());
        }
        assert_eq!(slow.0.load(Ordering::SeqCst), 1);
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        // A different binding or egress is a different key.
        let mut other = req();
        other.egress = Some(Egress::parse("http://proxy.example:3128").unwrap());
        svc.get(&other).await.unwrap();
        assert_eq!(slow.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn bypass_cache_mints_again_and_stores_the_result() {
        let slow = Arc::new(Slow(AtomicUsize::new(0)));
        let svc = TokenService::uncached(vec![slow.clone()]);
        let a = svc.get(&req()).await.unwrap();
        let mut bypass = req();
        bypass.bypass_cache = true;
        let b = svc.get(&bypass).await.unwrap();
        assert_ne!(a, b);
        assert_eq!(svc.get(&req()).await.unwrap(), b);
    }

    #[tokio::test]
    async fn expired_entries_are_minted_again() {
        let slow = Arc::new(Slow(AtomicUsize::new(0)));
        let svc = TokenService::new(
            vec![slow.clone()],
            TokenCache::in_memory(),
            Duration::from_millis(30),
        );
        svc.get(&req()).await.unwrap();
        svc.get(&req()).await.unwrap();
        assert_eq!(slow.0.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        svc.get(&req()).await.unwrap();
        assert_eq!(slow.0.load(Ordering::SeqCst), 2);
    }
}
