//! One minter per egress identity ([`Egress::key`]: the proxy and a fingerprint of its
//! credentials). Tokens are treated as bound to the address they were minted from, so
//! a request that names its own upstream proxy (the provider API's `proxy`) gets a minter whose
//! challenge, GenerateIT and interpreter fetch all leave through that proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::minter::{BotGuard, BotGuardSettings};
use crate::upstream::{Egress, HttpClient, UpstreamConfig, UpstreamError};

pub struct MinterPool {
    upstream: UpstreamConfig,
    settings: BotGuardSettings,
    default: Arc<BotGuard>,
    by_egress: Mutex<HashMap<String, Arc<BotGuard>>>,
}

/// Most minters kept for per-request proxies; the oldest are dropped beyond it.
const MAX_EGRESS_MINTERS: usize = 16;

impl MinterPool {
    pub fn new(
        upstream: UpstreamConfig,
        default_http: HttpClient,
        settings: BotGuardSettings,
    ) -> Self {
        MinterPool {
            default: BotGuard::new(default_http, settings.clone()),
            upstream,
            settings,
            by_egress: Mutex::new(HashMap::new()),
        }
    }

    /// The minter of the configured egress.
    pub fn default_minter(&self) -> Arc<BotGuard> {
        self.default.clone()
    }

    /// The minter for a request's egress (`None` or direct: the configured one).
    pub fn for_egress(&self, egress: Option<&Egress>) -> Result<Arc<BotGuard>, UpstreamError> {
        let Some((egress, key)) = egress.and_then(|e| Some((e, e.key()?))) else {
            return Ok(self.default.clone());
        };
        let mut map = self.by_egress.lock().expect("pool lock");
        if let Some(bg) = map.get(&key) {
            return Ok(bg.clone());
        }
        if map.len() >= MAX_EGRESS_MINTERS {
            map.clear();
        }
        let http = HttpClient::via(&self.upstream, egress.clone(), Duration::from_secs(30))?;
        let bg = BotGuard::new(http, self.settings.clone());
        map.insert(key, bg.clone());
        Ok(bg)
    }

    /// Egress keys with a warm minter (`direct` for the configured egress).
    pub fn warm_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.default.ready().is_some() {
            keys.push(self.upstream.proxy.key().unwrap_or_else(|| "direct".into()));
        }
        for (k, bg) in self.by_egress.lock().expect("pool lock").iter() {
            if bg.ready().is_some() {
                keys.push(k.clone());
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
                .lock()
                .expect("pool lock")
                .get(&key)
                .is_some_and(|bg| bg.invalidate_minter(id)),
        }
    }

    /// Each minter's state by egress key (`direct` for the configured egress, as
    /// [`warm_keys`](Self::warm_keys)).
    pub fn states(&self) -> Vec<(String, super::minter::MinterState)> {
        let mut out = vec![(
            self.upstream.proxy.key().unwrap_or_else(|| "direct".into()),
            self.default.state(),
        )];
        for (k, bg) in self.by_egress.lock().expect("pool lock").iter() {
            out.push((k.clone(), bg.state()));
        }
        out
    }

    pub fn invalidate_all(&self) {
        self.default.invalidate();
        for bg in self.by_egress.lock().expect("pool lock").values() {
            bg.invalidate();
        }
    }
}
