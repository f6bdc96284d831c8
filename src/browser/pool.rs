//! One browser minter per egress identity ([`Egress::key`]: the proxy and a fingerprint of its
//! credentials): a token is minted from the address its download leaves
//! through, so a request naming its own upstream proxy (the provider API's `proxy`) gets a
//! browser whose every request is fulfilled through that proxy. Those browsers are bounded
//! ([`PerEgress`]): at most `[tokens.browser] max_browsers` run or are being started at once; the
//! least recently used idle one is shut down (its process group killed) to make room.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::BrowserSettings;
use super::minter::BrowserMinter;
use crate::botguard::settings::BotGuardSettings;
use crate::upstream::{Egress, HttpClient, PerEgress, PerEgressError, UpstreamConfig};

/// One browser as the live page shows it.
#[derive(Debug, Clone)]
pub struct BrowserState {
    pub running: bool,
    pub warm: bool,
    pub stats: super::minter::BrowserStats,
}

/// Shuts an evicted browser down and waits until its processes are gone, so its slot comes
/// free only once its memory has been returned.
fn close(m: Arc<BrowserMinter>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let profile = m.profile_dir();
        m.shutdown().await;
        if let Some(profile) = profile {
            if !super::process::wait_gone(&profile, Duration::from_secs(10)).await {
                tracing::warn!(profile = %profile.display(), "an evicted browser's processes are still exiting");
            }
        }
    })
}

pub struct BrowserPool {
    upstream: UpstreamConfig,
    settings: BrowserSettings,
    flow: BotGuardSettings,
    default: Arc<BrowserMinter>,
    by_egress: PerEgress<BrowserMinter>,
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
            by_egress: PerEgress::new(
                "browser",
                "tokens.browser.max_browsers",
                settings.max_browsers,
                settings.warmup_timeout,
                close,
            ),
            upstream,
            settings,
            flow,
        }
    }

    pub fn settings(&self) -> &BrowserSettings {
        &self.settings
    }

    /// The browser of the configured egress.
    pub fn default_minter(&self) -> Arc<BrowserMinter> {
        self.default.clone()
    }

    /// The browser for a request's egress (`None` or direct: the configured one); waits up to
    /// the warm-up timeout for room when every request-named egress's browser is in use.
    pub async fn for_egress(
        &self,
        egress: Option<&Egress>,
    ) -> Result<Arc<BrowserMinter>, PerEgressError> {
        let Some((egress, key)) = egress.and_then(|e| Some((e, e.key()?))) else {
            return Ok(self.default.clone());
        };
        self.by_egress
            .get(&key, || {
                let http =
                    HttpClient::via(&self.upstream, egress.clone(), Duration::from_secs(30))?;
                Ok(Arc::new(BrowserMinter::new(
                    http,
                    self.settings.clone(),
                    self.flow.clone(),
                )))
            })
            .await
    }

    /// The browser for a request's egress if it has one (a refused token names it).
    pub fn existing(&self, egress: Option<&Egress>) -> Option<Arc<BrowserMinter>> {
        match egress.and_then(|e| e.key()) {
            None => Some(self.default.clone()),
            Some(key) => self.by_egress.peek(&key),
        }
    }

    /// Browsers of request-named egresses that exist now, started or not (never more than the
    /// cap).
    pub fn live(&self) -> usize {
        self.by_egress.live()
    }

    /// Browsers of request-named egresses shut down to make room, since start.
    pub fn evictions(&self) -> u64 {
        self.by_egress.evictions()
    }

    fn all(&self) -> Vec<Arc<BrowserMinter>> {
        let mut v = vec![self.default.clone()];
        v.extend(self.by_egress.entries().into_iter().map(|(_, m)| m));
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
        for (k, m) in self.by_egress.entries() {
            out.push((k, state(&m)));
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
