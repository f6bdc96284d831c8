//! One minter per egress identity ([`Egress::key`]: the proxy and a fingerprint of its
//! credentials). Tokens are treated as bound to the address they were minted from, so
//! a request that names its own upstream proxy (the provider API's `proxy`) gets a minter whose
//! challenge, GenerateIT and interpreter fetch all leave through that proxy. Those minters are
//! bounded ([`PerEgress`]): at most `[tokens.botguard] max_minters` exist at once, each with one
//! VM thread (two while a minter is renewed ahead of its integrity token's end); the least
//! recently used idle one is closed (its thread ended) to make room.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::minter::{BotGuard, BotGuardSettings};
use crate::proof::Prover;
use crate::upstream::{Egress, HttpClient, PerEgress, PerEgressError, UpstreamConfig};

pub struct MinterPool {
    upstream: UpstreamConfig,
    settings: BotGuardSettings,
    default: Arc<BotGuard>,
    by_egress: PerEgress<BotGuard>,
    /// Proves each new minter (`[tokens] prove_new_minters`).
    prover: Option<Arc<Prover>>,
}

/// Default for `[tokens.botguard] max_minters`.
pub const DEFAULT_MAX_MINTERS: usize = 16;
/// Most `[tokens.botguard] max_minters` accepts.
pub const MAX_MAX_MINTERS: usize = 1024;

fn close(bg: Arc<BotGuard>) -> BoxFuture<'static, ()> {
    Box::pin(bg.close())
}

impl MinterPool {
    /// `max_minters` bounds the minters of request-named egresses (the configured egress has
    /// its own besides).
    pub fn new(
        upstream: UpstreamConfig,
        default_http: HttpClient,
        settings: BotGuardSettings,
        max_minters: usize,
    ) -> Self {
        MinterPool {
            default: BotGuard::new(default_http, settings.clone()),
            by_egress: PerEgress::new(
                "minter",
                "tokens.botguard.max_minters",
                max_minters,
                settings.warmup_wait,
                close,
            ),
            upstream,
            settings,
            prover: None,
        }
    }

    /// The same pool proving each new minter with `prover`, under its egress's key.
    pub fn with_prover(mut self, prover: Arc<Prover>) -> Self {
        self.default.prove_with(prover.clone(), self.default_key());
        self.prover = Some(prover);
        self
    }

    /// The configured egress's key (`direct` without an upstream proxy).
    pub fn default_key(&self) -> String {
        self.upstream.proxy.key_or_direct()
    }

    /// The minter of the configured egress.
    pub fn default_minter(&self) -> Arc<BotGuard> {
        self.default.clone()
    }

    /// The minter for a request's egress (`None` or direct: the configured one); waits up to
    /// the warm-up wait for room when every request-named egress's minter is in use.
    pub async fn for_egress(
        &self,
        egress: Option<&Egress>,
    ) -> Result<Arc<BotGuard>, PerEgressError> {
        let Some((egress, key)) = egress.and_then(|e| Some((e, e.key()?))) else {
            return Ok(self.default.clone());
        };
        self.by_egress
            .get(&key, || {
                let http =
                    HttpClient::via(&self.upstream, egress.clone(), Duration::from_secs(30))?;
                let bg = BotGuard::new(http, self.settings.clone());
                if let Some(p) = &self.prover {
                    bg.prove_with(p.clone(), key.clone());
                }
                Ok(bg)
            })
            .await
    }

    /// Minters of request-named egresses that exist now (never more than the cap).
    pub fn live(&self) -> usize {
        self.by_egress.live()
    }

    /// Minters of request-named egresses closed to make room, since start.
    pub fn evictions(&self) -> u64 {
        self.by_egress.evictions()
    }

    /// Egress keys with a warm minter (`direct` for the configured egress).
    pub fn warm_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.default.ready().is_some() {
            keys.push(self.upstream.proxy.key_or_direct());
        }
        for (k, bg) in self.by_egress.entries() {
            if bg.ready().is_some() {
                keys.push(k);
            }
        }
        keys
    }

    /// Drops minter `id` of `egress`'s minter when it is still the current one (a token it made
    /// was refused); returns whether it was.
    pub fn invalidate_minter(&self, egress: Option<&Egress>, id: u64) -> bool {
        match egress.and_then(|e| e.key()) {
            None => self.default.invalidate_minter(id),
            Some(key) => self
                .by_egress
                .peek(&key)
                .is_some_and(|bg| bg.invalidate_minter(id)),
        }
    }

    /// Each minter's state by egress key (`direct` for the configured egress, as
    /// [`warm_keys`](Self::warm_keys)).
    pub fn states(&self) -> Vec<(String, super::minter::MinterState)> {
        let mut out = vec![(self.upstream.proxy.key_or_direct(), self.default.state())];
        for (k, bg) in self.by_egress.entries() {
            out.push((k, bg.state()));
        }
        out
    }

    pub fn invalidate_all(&self) {
        self.default.invalidate();
        for (_, bg) in self.by_egress.entries() {
            bg.invalidate();
        }
    }
}
