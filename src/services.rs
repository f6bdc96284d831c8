//! Everything that produces tokens, built once from the configuration: the token sources in
//! their configured order, the cache, the minters, the fleet's tier and verdicts when there is
//! one, and potproxy's own upstream client (a connection pool of its own, apart from the one
//! that forwards user traffic). The proxy and the provider API both serve from one
//! [`Services`].

use std::sync::Arc;
use std::time::Duration;

use crate::botguard::minter::BotGuard;
use crate::botguard::pool::MinterPool;
use crate::browser::BrowserPool;
use crate::tokens::{
    BotGuardSource, BrowserSource, ColdStartSource, Prover, ProviderSource, RefusalStore, Refusals,
    SharedTokens, SourceKind, StaticSource, TokenCache, TokenService, TokenSource, TokensConfig,
};
use crate::upstream::{Egress, HttpClient, UpstreamConfig, UpstreamError};

/// Everything that produces tokens, built from the configuration.
#[derive(Clone)]
pub struct Services {
    pub tokens: TokenService,
    /// The minter of the configured egress (when `botguard` is a source).
    pub botguard: Option<Arc<BotGuard>>,
    pub minters: Option<Arc<MinterPool>>,
    /// The browsers, one per egress (when `browser` is a source).
    pub browsers: Option<Arc<BrowserPool>>,
    pub http: HttpClient,
    pub upstream: UpstreamConfig,
}

/// Makes the fleet's refusal verdict store from this node's own and its sources' names.
pub type MakeVerdicts = Box<dyn FnOnce(Refusals, Vec<&'static str>) -> Arc<dyn RefusalStore>>;

/// What a fleet (`[cluster]`) lends the token service: its shared tier of tokens, and its
/// store of refusal verdicts.
pub struct FleetTokens {
    pub shared: Arc<dyn SharedTokens>,
    pub verdicts: MakeVerdicts,
}

impl Services {
    /// Builds the token sources in their configured order, the cache, the fleet's part when
    /// `fleet` is given, and potproxy's own upstream client. `instance` is this process's id
    /// (see [`instance_id`]).
    pub fn build(
        upstream: &UpstreamConfig,
        tokens: &TokensConfig,
        instance: &str,
        fleet: Option<FleetTokens>,
    ) -> Result<Services, UpstreamError> {
        let http = HttpClient::new(upstream, Duration::from_secs(30))?;
        let kinds = &tokens.sources;
        let mut sources: Vec<Arc<dyn TokenSource>> = Vec::new();
        let mut minters = None;
        let mut browsers = None;
        // Only where potproxy makes minters: a static or provider source has nothing to prove.
        let mints = kinds
            .iter()
            .any(|k| matches!(k, SourceKind::BotGuard | SourceKind::Browser));
        let prover = (tokens.prove_new_minters && mints)
            .then(|| Arc::new(Prover::new(upstream.proxy.key_or_direct())));
        for (i, kind) in kinds.iter().enumerate() {
            match kind {
                SourceKind::Static => sources.push(Arc::new(StaticSource::new(
                    tokens.static_default.clone(),
                    tokens.static_bindings.clone(),
                ))),
                SourceKind::BotGuard => {
                    let mut pool = MinterPool::new(
                        upstream.clone(),
                        http.clone(),
                        tokens.botguard.settings.clone(),
                        tokens.botguard.max_minters,
                    );
                    if let Some(p) = &prover {
                        pool = pool.with_prover(p.clone());
                    }
                    let pool = Arc::new(pool);
                    let cold_start_after = kinds[i + 1..].contains(&SourceKind::ColdStart);
                    sources.push(Arc::new(BotGuardSource::new(
                        pool.clone(),
                        cold_start_after,
                    )));
                    minters = Some(pool);
                }
                SourceKind::ColdStart => sources.push(Arc::new(ColdStartSource)),
                SourceKind::Browser => {
                    crate::browser::process::sweep_orphans(&tokens.browser.profile_root());
                    let pool = Arc::new(BrowserPool::new(
                        upstream.clone(),
                        http.clone(),
                        tokens.browser.clone(),
                        tokens.botguard.settings.clone(),
                    ));
                    let mut source = BrowserSource::new(pool.clone());
                    if let Some(p) = &prover {
                        source = source.with_prover(p.clone());
                    }
                    sources.push(Arc::new(source));
                    browsers = Some(pool);
                }
                SourceKind::Provider => {
                    let url = tokens
                        .provider_url
                        .as_ref()
                        .expect("validated: provider source has a URL");
                    sources.push(Arc::new(ProviderSource::new(
                        url,
                        tokens.provider_timeout,
                        instance.to_string(),
                    )));
                }
            }
        }
        let cache = match &tokens.cache_file {
            Some(path) => TokenCache::persistent(path),
            None => TokenCache::in_memory(),
        };
        let mut service =
            TokenService::new(sources, cache, tokens.ttl).with_set_aside(tokens.set_aside);
        if let Some(p) = prover {
            service = service.with_prover(p);
        }
        if let Some(fleet) = fleet {
            let verdicts =
                (fleet.verdicts)(Refusals::new(tokens.set_aside), service.source_names());
            service = service.with_shared(fleet.shared).with_refusals(verdicts);
        }
        Ok(Services {
            tokens: service,
            botguard: minters.as_ref().map(|p| p.default_minter()),
            minters,
            browsers,
            http,
            upstream: upstream.clone(),
        })
    }

    /// An upstream client leaving through `egress` instead of the configured one.
    pub fn http_via(&self, egress: &Egress) -> Result<HttpClient, UpstreamError> {
        HttpClient::via(&self.upstream, egress.clone(), Duration::from_secs(30))
    }
}

/// A random id for this process (provider loop detection).
pub fn instance_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
