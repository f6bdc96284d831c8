//! One browser minter per egress identity ([`Egress::key`]: the proxy and a fingerprint of its
//! credentials): a token is minted from the address its download leaves
//! through, so a request naming its own upstream proxy (the provider API's `proxy`) gets a
//! browser whose every request is fulfilled through that proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::BrowserSettings;
use super::minter::BrowserMinter;
use crate::botguard::settings::BotGuardSettings;
use crate::upstream::{Egress, HttpClient, UpstreamConfig, UpstreamError};

/// One browser as the live page shows it.
#[derive(Debug, Clone)]
pub struct BrowserState {
    pub running: bool,
    pub warm: bool,
    pub stats: super::minter::BrowserStats,
}

/// Most browsers kept for per-request proxies; beyond it the others are closed.
const MAX_EGRESS_BROWSERS: usize = 4;

pub struct BrowserPool {
    upstream: UpstreamConfig,
    settings: BrowserSettings,
    flow: BotGuardSettings,
    default: Arc<BrowserMinter>,
    by_egress: Mutex<HashMap<String, Arc<BrowserMinter>>>,
}

impl BrowserPool {
    pub fn new(
        upstream: UpstreamConfig,
        default_http: HttpClient,
        settings: BrowserSettings,
        flow: BotGuardSettings,
    ) -> Self {
        BrowserPool {
            default: Arc::new(BrowserMinter::new(
                default_http,
                settings.clone(),
                flow.clone(),
            )),
            upstream,
            settings,
            flow,
            by_egress: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &BrowserSettings {
        &self.settings
    }

    /// The browser of the configured egress.
    pub fn default_minter(&self) -> Arc<BrowserMinter> {
        self.default.clone()
    }

    /// The browser for a request's egress (`None` or direct: the configured one).
    pub fn for_egress(&self, egress: Option<&Egress>) -> Result<Arc<BrowserMinter>, UpstreamError> {
        let Some((egress, key)) = egress.and_then(|e| Some((e, e.key()?))) else {
            return Ok(self.default.clone());
        };
        let mut map = self.by_egress.lock().expect("pool lock");
        if let Some(m) = map.get(&key) {
            return Ok(m.clone());
        }
        if map.len() >= MAX_EGRESS_BROWSERS {
            // Dropping the last handle closes a browser; close them explicitly in case a mint
            // still holds one.
            for (_, m) in map.drain() {
                tokio::spawn(async move { m.shutdown().await });
            }
        }
        let http = HttpClient::via(&self.upstream, egress.clone(), Duration::from_secs(30))?;
        let m = Arc::new(BrowserMinter::new(
            http,
            self.settings.clone(),
            self.flow.clone(),
        ));
        map.insert(key, m.clone());
        Ok(m)
    }

    fn all(&self) -> Vec<Arc<BrowserMinter>> {
        let mut v = vec![self.default.clone()];
        v.extend(self.by_egress.lock().expect("pool lock").values().cloned());
        v
    }

    /// Each browser's state by egress key (`direct` for the configured egress, as the
    /// BotGuard pool names them): whether it runs, whether a minter is warm, its counts.
    pub fn states(&self) -> Vec<(String, BrowserState)> {
        let state = |m: &BrowserMinter| BrowserState {
            running: m.pid() != 0,
            warm: m.is_warm(),
            stats: m.stats(),
        };
        let mut out = vec![(
            self.upstream.proxy.key().unwrap_or_else(|| "direct".into()),
            state(&self.default),
        )];
        for (k, m) in self.by_egress.lock().expect("pool lock").iter() {
            out.push((k.clone(), state(m)));
        }
        out
    }

    /// Resident memory of every running browser's process tree, bytes (for metrics).
    pub fn rss_bytes(&self) -> u64 {
        self.all().iter().map(|m| m.rss_bytes()).sum()
    }

    /// Drops every warm minter; the browsers keep running.
    pub async fn invalidate_all(&self) {
        for m in self.all() {
            m.invalidate().await;
        }
    }

    /// Closes every browser; no browser process is left afterwards.
    pub async fn shutdown(&self) {
        for m in self.all() {
            m.shutdown().await;
        }
    }
}
