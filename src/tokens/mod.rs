//! The token service: `get(request)` -> a token for the request's binding. Answers come from a
//! cache keyed by (binding, egress) when fresh; otherwise each configured source is asked in
//! order. A source answers, declines (nothing for this binding), or fails; a decline or failure
//! moves on to the next source. Concurrent requests for one key mint once (single flight).
//! Owns its settings (`[tokens]`, [`TokensConfig`]) and the typed [`TokenError`] whose kind
//! says why no token came.

mod botguard_source;
mod browser_source;
mod cache;
mod cold_start;
mod provider_source;
mod refusals;
mod settings;
mod shared;
mod static_source;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

pub use crate::proof::Prover;
pub use botguard_source::BotGuardSource;
pub use browser_source::BrowserSource;
pub use cache::{CacheStats, TokenCache};
pub use cold_start::{ColdStartSource, cold_start_token, decode_cold_start};
pub use provider_source::{HOP_HEADER, ProviderError, ProviderSource};
pub use refusals::{
    Provenance, RefusalAction, RefusalStore, Refusals, STRIKES_TO_SET_ASIDE, SetAside,
};
pub use settings::{BotGuardConfig, SourceKind, TokensConfig};
pub use shared::{CLAIM_POLL, CLAIM_WAIT, Claim, Fleet, SharedTokens, shared_key};
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
    /// Which of the source's minters made it (minting sources), so a refusal can drop it.
    pub minter: Option<u64>,
}

impl Minted {
    pub fn lasting(token: Token) -> Self {
        Minted {
            token,
            expires_at: None,
            cacheable: true,
            minter: None,
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
    /// Where it came from (`None`: loaded from the cache file, or made without a source).
    pub provenance: Option<Provenance>,
}

/// What went wrong inside a source, shared so a [`TokenError`] stays cloneable.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Why no token was issued. The variant is the kind a caller acts on; the text has one shape
/// for every failed source, so logs and API answers read alike whichever source failed.
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

    /// A token this source made (with `minter`, as its [`Minted`] said) was refused upstream:
    /// drop that minter. Returns whether the source can mint a different token with a fresh
    /// one (a static token cannot).
    fn refused(&self, _req: &TokenRequest, _minter: Option<u64>) -> bool {
        false
    }

    /// Whether this source can serve a token now (`/readyz`): `Err` says why not. Sources
    /// that only fill in behind others (cold start) are never ready on their own.
    fn readiness(&self) -> BoxFuture<'_, Result<(), Unready>> {
        let source_name = self.name();
        Box::pin(async move { Err(Unready::NotOnItsOwn { source_name }) })
    }
}

/// Why a source cannot serve a token now (`/readyz` lists these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unready {
    /// It only fills in behind other sources (cold start).
    #[error("{source_name}: does not serve tokens on its own")]
    NotOnItsOwn { source_name: &'static str },
    /// Nothing it could serve is configured (a static source without a default token).
    #[error("{source_name}: no default token configured")]
    NotConfigured { source_name: &'static str },
    /// Its minter is not warm (yet, or its last warm-up failed): `state` says which.
    #[error("{source_name}: minter {state}")]
    Minter {
        source_name: &'static str,
        state: &'static str,
    },
    /// The service it asks does not answer.
    #[error("{source_name}: {target} does not answer /ping")]
    Unreachable {
        source_name: &'static str,
        target: String,
    },
}

/// Another node's token for `key`, or the go-ahead to mint: when the binding is claimed
/// elsewhere, waits (up to [`CLAIM_WAIT`]) for that node's token; when the claim is given up
/// without a token (its mint failed) takes it over. An unreachable store means mint here.
async fn from_fleet(shared: &dyn SharedTokens, key: &str) -> FromFleet {
    let found = |token, expires_at| {
        FromFleet::Token(Issued {
            token,
            expires_at,
            cached: true,
            // Minted by another node: its minters are not ours to blame.
            provenance: None,
        })
    };
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        match shared.fetch(key).await {
            Fleet::Found(t, exp) => return found(t, exp),
            Fleet::Unreachable => return FromFleet::Mint(None),
            Fleet::Missing => {}
        }
        match shared.claim(key).await {
            Claim::Ours(c) => {
                // A node may have published and released between our look and our claim.
                if let Fleet::Found(t, exp) = shared.fetch(key).await {
                    shared.release(key, c);
                    return found(t, exp);
                }
                return FromFleet::Mint(Some(c));
            }
            Claim::Unreachable => return FromFleet::Mint(None),
            Claim::Theirs => {}
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "cluster: another node's mint did not arrive within {CLAIM_WAIT:?}; minting here"
            );
            return FromFleet::Mint(None);
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}

/// Asks sources in order, through the cache.
#[derive(Clone)]
pub struct TokenService {
    sources: Arc<Vec<Arc<dyn TokenSource>>>,
    cache: TokenCache,
    ttl: Duration,
    /// The fleet's tier behind the cache (`[cluster]`), when there is one.
    shared: Option<Arc<dyn SharedTokens>>,
    /// Refused tokens and the sources set aside for them, per egress.
    refusals: Arc<dyn RefusalStore>,
    /// The last tokens refused here: the fleet's copy of one may outlive our delete of it (the
    /// delete is not awaited), and it must not come back from there.
    recently_refused: Arc<std::sync::Mutex<std::collections::VecDeque<Token>>>,
    /// Proves new minters (`[tokens] prove_new_minters`): learns its targets from media.
    prover: Option<Arc<Prover>>,
}

/// How many refused tokens [`TokenService`] remembers to keep them from coming back.
const RECENTLY_REFUSED: usize = 64;

/// What the fleet's tier said before minting.
enum FromFleet {
    /// Another node's token.
    Token(Issued),
    /// Mint here, holding the fleet's claim when there is one.
    Mint(Option<String>),
}

/// How long a source whose tokens keep being refused is set aside (`[tokens] set_aside_secs`).
pub const DEFAULT_SET_ASIDE: Duration = Duration::from_secs(1800);

/// The egress key refusals are kept under (`direct`: the configured egress).
fn egress_key(req: &TokenRequest) -> String {
    req.egress
        .as_ref()
        .map_or_else(|| "direct".into(), Egress::key_or_direct)
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
        // Whatever the cache file held, nothing outlives the TTL.
        cache.cap_lifetime(ttl);
        TokenService {
            sources: Arc::new(sources),
            cache,
            ttl,
            shared: None,
            refusals: Arc::new(Refusals::new(DEFAULT_SET_ASIDE)),
            recently_refused: Arc::default(),
            prover: None,
        }
    }

    /// The same service with a prover of new minters, which learns from forwarded media.
    pub fn with_prover(mut self, prover: Arc<Prover>) -> Self {
        self.prover = Some(prover);
        self
    }

    /// The prover of new minters, when `[tokens] prove_new_minters` is on.
    pub fn prover(&self) -> Option<&Arc<Prover>> {
        self.prover.as_ref()
    }

    /// The same service with the fleet's tier behind its cache: a local miss asks the fleet
    /// before minting, a mint is published to it, and nodes asked for one binding at once
    /// mint once.
    pub fn with_shared(mut self, shared: Arc<dyn SharedTokens>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Drops the token of `req` here and in the fleet (a token googlevideo refused).
    pub fn forget(&self, req: &TokenRequest) {
        self.cache.forget(req);
        if let (Some(shared), Some(key)) = (&self.shared, shared_key(req)) {
            shared.forget(&key);
        }
    }

    /// How long a source whose tokens keep being refused is set aside for an egress.
    pub fn with_set_aside(mut self, set_aside: Duration) -> Self {
        self.refusals = Arc::new(Refusals::new(set_aside));
        self
    }

    /// Keeps refusal verdicts in `store` instead of this process's own [`Refusals`] (a fleet
    /// sharing them between nodes).
    pub fn with_refusals(mut self, store: Arc<dyn RefusalStore>) -> Self {
        self.refusals = store;
        self
    }

    /// A token `issued` for `req` was refused upstream (`reason` says how): drop it from the
    /// cache, drop the minter that made it, and set its source aside for this egress when it
    /// keeps being refused. The next [`issue`](Self::issue) for `req` mints afresh (or asks
    /// the next source).
    pub fn refused(&self, req: &TokenRequest, issued: &Issued, reason: &str) -> RefusalAction {
        self.cache.forget_token(req, &issued.token);
        if let (Some(shared), Some(key)) = (&self.shared, shared_key(req)) {
            shared.forget(&key);
            let mut refused = self.recently_refused.lock().expect("refused tokens lock");
            if refused.len() >= RECENTLY_REFUSED {
                refused.pop_front();
            }
            refused.push_back(issued.token.clone());
        }
        let Some(p) = &issued.provenance else {
            // Loaded from the cache file: nothing to attribute; the next token is minted.
            return RefusalAction::FreshMinter;
        };
        let egress = egress_key(req);
        let Some(source) = self.sources.iter().find(|s| s.name() == p.source) else {
            return RefusalAction::FreshMinter;
        };
        let can_renew = source.refused(req, p.minter);
        let action = self
            .refusals
            .refused(p.source, &egress, p.minter, can_renew, reason);
        match action {
            RefusalAction::SetAside => tracing::warn!(
                source = p.source,
                %egress,
                %reason,
                for_secs = self.refusals.window().as_secs(),
                "token source set aside: its tokens keep being refused"
            ),
            RefusalAction::FreshMinter => tracing::info!(
                source = p.source,
                %egress,
                minter = ?p.minter,
                %reason,
                "token refused; minting a fresh one"
            ),
            RefusalAction::AlreadyHandled => {}
        }
        action
    }

    /// The sources set aside now, per egress.
    pub fn set_aside(&self) -> Vec<SetAside> {
        self.refusals.set_aside()
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
            let (m, source) = self.ask_sources(req).await?;
            return Ok(self.finish(m, source));
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
        let fleet_key = self.shared.as_ref().and_then(|_| shared_key(req));
        let mut claim = None;
        if let (Some(shared), Some(fk)) = (&self.shared, &fleet_key) {
            if !req.bypass_cache {
                match from_fleet(shared.as_ref(), fk).await {
                    FromFleet::Token(issued) if self.was_refused(&issued.token) => {
                        tracing::debug!(binding = %describe(&req.binding), "the fleet's token was refused here; minting");
                    }
                    FromFleet::Token(mut issued) => {
                        tracing::trace!(binding = %describe(&req.binding), "token from the fleet");
                        // The store's expiry is not trusted past our own TTL.
                        issued.expires_at = issued.expires_at.min(self.ttl_end());
                        self.cache
                            .store(key, issued.token.clone(), issued.expires_at);
                        return Ok(issued);
                    }
                    FromFleet::Mint(c) => claim = c,
                }
            }
        }
        let minted = self.ask_sources(req).await;
        let release = || {
            if let (Some(shared), Some(fk), Some(c)) = (&self.shared, &fleet_key, claim.clone()) {
                shared.release(fk, c);
            }
        };
        let (m, source) = match minted {
            Ok(m) => m,
            Err(e) => {
                release();
                return Err(e);
            }
        };
        let issued = self.finish(m.clone(), source);
        let stats = self.cache.stats();
        tracing::debug!(binding = %describe(&req.binding), cache_hits = stats.hits, cache_misses = stats.misses, "token minted");
        if m.cacheable {
            self.cache.store_traced(
                key,
                issued.token.clone(),
                issued.expires_at,
                issued.provenance.clone(),
            );
            if let (Some(shared), Some(fk)) = (&self.shared, &fleet_key) {
                shared.publish(fk, &issued.token, issued.expires_at);
            }
        }
        release();
        Ok(issued)
    }

    /// The names of the sources, in their order.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    fn was_refused(&self, token: &Token) -> bool {
        self.recently_refused
            .lock()
            .expect("refused tokens lock")
            .contains(token)
    }

    /// Shorthand for [`issue`](Self::issue) when only the token matters.
    pub async fn get(&self, req: &TokenRequest) -> Result<Token, TokenError> {
        self.issue(req).await.map(|i| i.token)
    }

    /// Now plus the TTL (now, should that be out of range).
    fn ttl_end(&self) -> SystemTime {
        let now = SystemTime::now();
        now.checked_add(self.ttl).unwrap_or(now)
    }

    /// A freshly minted answer, its expiry capped by the TTL.
    fn finish(&self, m: Minted, source: &'static str) -> Issued {
        let ttl_end = self.ttl_end();
        let expires_at = m.expires_at.map_or(ttl_end, |e| e.min(ttl_end));
        Issued {
            token: m.token,
            expires_at,
            cached: false,
            provenance: Some(Provenance {
                source,
                minter: m.minter,
            }),
        }
    }

    /// The sources in their order, those set aside for the request's egress last (asked only
    /// when no other answers: a refused token beats none).
    fn sources_for(&self, req: &TokenRequest) -> Vec<&Arc<dyn TokenSource>> {
        let egress = egress_key(req);
        let (aside, usable): (Vec<_>, Vec<_>) = self
            .sources
            .iter()
            .partition(|s| self.refusals.is_set_aside(s.name(), &egress));
        usable.into_iter().chain(aside).collect()
    }

    async fn ask_sources(&self, req: &TokenRequest) -> Result<(Minted, &'static str), TokenError> {
        let mut last_failure = None;
        for source in self.sources_for(req) {
            match source.get(req).await {
                Ok(Some(m)) => {
                    tracing::debug!(source = source.name(), binding = %describe(&req.binding), token = %m.token.redacted(), "token");
                    crate::metrics::TOKENS
                        .with(&[source.name(), "minted"])
                        .inc();
                    return Ok((m, source.name()));
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

    /// Mints with minter `gen`; a refusal drops it (the next mint uses a fresh one).
    struct Renewing(AtomicUsize);

    impl TokenSource for Renewing {
        fn name(&self) -> &'static str {
            "renewing"
        }
        fn get<'a>(
            &'a self,
            _: &'a TokenRequest,
        ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
            let generation = self.0.load(Ordering::SeqCst) as u64;
            Box::pin(async move {
                Ok(Some(Minted {
                    minter: Some(generation),
                    ..Minted::lasting(Token::from_bytes(&[0x32, 9, generation as u8]))
                }))
            })
        }
        fn refused(&self, _: &TokenRequest, minter: Option<u64>) -> bool {
            let _ = self.0.compare_exchange(
                minter.unwrap_or(0) as usize,
                minter.unwrap_or(0) as usize + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            true
        }
    }

    #[tokio::test]
    async fn a_refused_source_gets_a_fresh_minter_then_is_set_aside_for_the_next() {
        let fallback = Token::from_bytes(&[0x32, 1, 2]);
        let svc = TokenService::uncached(vec![
            Arc::new(Renewing(AtomicUsize::new(1))),
            Arc::new(Fixed("b", Some(Ok(fallback.clone())))),
        ]);
        let first = svc.issue(&req()).await.unwrap();
        let p = first.provenance.clone().unwrap();
        assert_eq!((p.source, p.minter), ("renewing", Some(1)));
        // Cached with its provenance.
        assert_eq!(svc.issue(&req()).await.unwrap().provenance, Some(p));
        assert_eq!(
            svc.refused(&req(), &first, "403"),
            RefusalAction::FreshMinter
        );
        let second = svc.issue(&req()).await.unwrap();
        assert_ne!(second.token, first.token, "a fresh minter's token");
        assert_eq!(second.provenance.as_ref().unwrap().minter, Some(2));
        // The same refused token reported again changes nothing.
        assert_eq!(
            svc.refused(&req(), &first, "403"),
            RefusalAction::AlreadyHandled
        );
        assert_eq!(
            svc.refused(&req(), &second, "cut short"),
            RefusalAction::SetAside
        );
        let third = svc.issue(&req()).await.unwrap();
        assert_eq!(third.token, fallback);
        assert_eq!(third.provenance.unwrap().source, "b");
        let aside = svc.set_aside();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            (aside[0].source, aside[0].egress.as_str()),
            ("renewing", "direct")
        );
        assert_eq!(aside[0].reason, "cut short");
        // Another egress still asks the set-aside source first.
        let mut other = req();
        other.egress = Some(Egress::parse("http://proxy.example:3128").unwrap());
        assert_eq!(
            svc.issue(&other).await.unwrap().provenance.unwrap().source,
            "renewing"
        );
    }

    fn req() -> TokenRequest {
        TokenRequest::new(Binding::Video("abcdefghijk".into()))
    }

    #[tokio::test]
    async fn readiness_reasons_are_typed_and_read_as_before() {
        let e = Fixed("coldstart", None).readiness().await.unwrap_err();
        assert_eq!(
            e,
            Unready::NotOnItsOwn {
                source_name: "coldstart"
            }
        );
        assert_eq!(e.to_string(), "coldstart: does not serve tokens on its own");
        let cases = [
            (
                Unready::NotConfigured {
                    source_name: "static",
                },
                "static: no default token configured",
            ),
            (
                Unready::Minter {
                    source_name: "botguard",
                    state: "warming",
                },
                "botguard: minter warming",
            ),
            (
                Unready::Unreachable {
                    source_name: "provider",
                    target: "http://127.0.0.1:4416".into(),
                },
                "provider: http://127.0.0.1:4416 does not answer /ping",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
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

    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
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

    /// The cache's expiry runs on the wall clock (`SystemTime`, the same time the cache file
    /// keeps), which a paused tokio clock does not move; so the entry's expiry is put in the
    /// past instead of waiting for it to pass. The TTL's cap is checked on the issued expiry.
    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_minted_again() {
        let slow = Arc::new(Slow(AtomicUsize::new(0)));
        let cache = TokenCache::in_memory();
        let ttl = Duration::from_secs(3600);
        let svc = TokenService::new(vec![slow.clone()], cache.clone(), ttl);
        let before = SystemTime::now();
        let first = svc.issue(&req()).await.unwrap();
        assert!(
            (before + ttl..=SystemTime::now() + ttl).contains(&first.expires_at),
            "the TTL caps a lasting token's expiry"
        );
        assert!(svc.issue(&req()).await.unwrap().cached);
        assert_eq!(slow.0.load(Ordering::SeqCst), 1);
        let key = cache::Key::of(&req()).unwrap();
        cache.store(key, first.token, SystemTime::now() - Duration::from_secs(1));
        let again = svc.issue(&req()).await.unwrap();
        assert!(!again.cached, "an expired entry is not served");
        assert_eq!(slow.0.load(Ordering::SeqCst), 2);
    }
}
