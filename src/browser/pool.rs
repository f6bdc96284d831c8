//! One browser context per egress identity ([`Egress::key`]: the proxy and a fingerprint of its
//! credentials), all in one shared Chromium ([`SharedBrowser`]): a token is minted from the
//! address its download leaves through, so a request naming its own upstream proxy (the provider
//! API's `proxy`) gets a context whose every request is fulfilled through that proxy, with
//! cookies, storage and cache of its own. Those contexts are bounded ([`PerEgress`]): at most
//! `[tokens.browser] max_contexts` are open or being opened at once; the least recently used
//! idle one is closed (logged, counted) to make room, and one nobody asked for in
//! [`CONTEXT_IDLE`] is closed too (its slot kept; it opens again on its next use). The browser
//! stops when its last context closes.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::BrowserSettings;
use super::minter::{BrowserMinter, SharedBrowser};
use crate::botguard::settings::BotGuardSettings;
use crate::upstream::{Egress, HttpClient, PerEgress, PerEgressError, UpstreamConfig};

/// A request-named egress's context unused this long is closed (its renderer's memory
/// returned); the configured egress's stays, warm for the next request.
pub const CONTEXT_IDLE: Duration = Duration::from_secs(15 * 60);
/// How often idle contexts are looked for.
const IDLE_SWEEP: Duration = Duration::from_secs(60);

/// One request-named egress's context as the idle rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Idle<'a> {
    pub key: &'a str,
    pub open: bool,
    pub in_use: bool,
    pub idle_for: Duration,
}

/// The contexts to close: open, nobody using them, unused for `idle` or longer.
pub fn idle_contexts<'a>(contexts: &[Idle<'a>], idle: Duration) -> Vec<&'a str> {
    contexts
        .iter()
        .filter(|c| c.open && !c.in_use && c.idle_for >= idle)
        .map(|c| c.key)
        .collect()
}

/// One egress's context as the live page shows it.
#[derive(Debug, Clone)]
pub struct BrowserState {
    /// The egress has a context open in the running browser.
    pub running: bool,
    pub warm: bool,
    pub stats: super::minter::BrowserStats,
}

/// Closes an evicted context (disposed of in the browser, which stops with its last one), so
/// its slot comes free only once its page and renderer are gone.
fn close(m: Arc<BrowserMinter>) -> BoxFuture<'static, ()> {
    Box::pin(async move { m.shutdown().await })
}

pub struct BrowserPool {
    upstream: UpstreamConfig,
    settings: BrowserSettings,
    flow: BotGuardSettings,
    browser: Arc<SharedBrowser>,
    default: Arc<BrowserMinter>,
    by_egress: Arc<PerEgress<BrowserMinter>>,
}

impl BrowserPool {
    pub fn new(
        upstream: UpstreamConfig,
        default_http: HttpClient,
        settings: BrowserSettings,
        flow: BotGuardSettings,
    ) -> Self {
        let browser = Arc::new(SharedBrowser::new(settings.clone()));
        let by_egress = Arc::new(PerEgress::new(
            "browser_context",
            "tokens.browser.max_contexts",
            settings.max_contexts,
            settings.warmup_timeout,
            close,
        ));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = Arc::downgrade(&by_egress);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(IDLE_SWEEP);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(pool) = pool.upgrade() else { return };
                    close_idle(&pool, CONTEXT_IDLE).await;
                }
            });
        }
        BrowserPool {
            default: Arc::new(BrowserMinter::new(
                default_http,
                settings.clone(),
                flow.clone(),
                browser.clone(),
            )),
            by_egress,
            browser,
            upstream,
            settings,
            flow,
        }
    }

    pub fn settings(&self) -> &BrowserSettings {
        &self.settings
    }

    /// The context of the configured egress.
    pub fn default_minter(&self) -> Arc<BrowserMinter> {
        self.default.clone()
    }

    /// The one browser every context lives in.
    pub fn browser(&self) -> &Arc<SharedBrowser> {
        &self.browser
    }

    /// The context for a request's egress (`None` or direct: the configured one); waits up to
    /// the warm-up timeout for room when every request-named egress's context is in use.
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
                    self.browser.clone(),
                )))
            })
            .await
    }

    /// The context for a request's egress if it has one (a refused token names it).
    pub fn existing(&self, egress: Option<&Egress>) -> Option<Arc<BrowserMinter>> {
        match egress.and_then(|e| e.key()) {
            None => Some(self.default.clone()),
            Some(key) => self.by_egress.peek(&key),
        }
    }

    /// Contexts of request-named egresses that exist now, opened or not (never more than the
    /// cap).
    pub fn live(&self) -> usize {
        self.by_egress.live()
    }

    /// Closes the request-named egresses' contexts nobody used for `idle` (they open again on
    /// their next use); how many it closed.
    pub async fn close_idle(&self, idle: Duration) -> usize {
        close_idle(&self.by_egress, idle).await
    }

    /// Contexts of request-named egresses closed to make room, since start.
    pub fn evictions(&self) -> u64 {
        self.by_egress.evictions()
    }

    fn all(&self) -> Vec<Arc<BrowserMinter>> {
        let mut v = vec![self.default.clone()];
        v.extend(self.by_egress.entries().into_iter().map(|(_, m)| m));
        v
    }

    /// Each egress's context state by egress key (`direct` for the configured egress, as the
    /// BotGuard pool names them): whether it is open, whether a minter is warm, its counts.
    pub fn states(&self) -> Vec<(String, BrowserState)> {
        let state = |m: &BrowserMinter| BrowserState {
            running: m.has_context(),
            warm: m.is_warm(),
            stats: m.stats(),
        };
        let mut out = vec![(self.upstream.proxy.key_or_direct(), state(&self.default))];
        for (k, m) in self.by_egress.entries() {
            out.push((k, state(&m)));
        }
        out
    }

    /// PSS of the browser's whole process tree now, bytes (0: not running).
    pub fn pss_bytes(&self) -> u64 {
        self.browser.pss_bytes()
    }

    /// PSS of the renderer serving each open context's page now, by egress key (as
    /// [`Self::states`]); contexts whose renderer could not be told apart are left out. At
    /// most `max_contexts` + 1 entries.
    pub fn context_pss(&self) -> Vec<(String, u64)> {
        let mut ms = vec![(self.upstream.proxy.key_or_direct(), self.default.clone())];
        ms.extend(self.by_egress.entries());
        ms.into_iter()
            .filter(|(_, m)| m.has_context())
            .filter_map(|(k, m)| Some((k, m.context_pss_bytes()?)))
            .collect()
    }

    /// Drops every warm minter; the browsers keep running.
    pub async fn invalidate_all(&self) {
        for m in self.all() {
            m.invalidate().await;
        }
    }

    /// Closes every context and the browser; no browser process is left afterwards.
    pub async fn shutdown(&self) {
        for m in self.all() {
            m.shutdown().await;
        }
        self.browser.shutdown().await;
    }
}

async fn close_idle(pool: &PerEgress<BrowserMinter>, idle: Duration) -> usize {
    let entries = pool.entries();
    let seen: Vec<Idle<'_>> = entries
        .iter()
        .map(|(k, m)| Idle {
            key: k,
            open: m.has_context(),
            // The pool's reference and `entries`' own: anyone else holds it for a request.
            in_use: Arc::strong_count(m) > 2,
            idle_for: m.idle_for(),
        })
        .collect();
    let close = idle_contexts(&seen, idle);
    let mut closed = 0;
    for (k, m) in entries.iter().filter(|(k, _)| close.contains(&k.as_str())) {
        let idle_secs = m.idle_for().as_secs();
        if m.close_if_idle(idle).await {
            tracing::info!(egress = %crate::redact::redact_url(k), idle_secs, "closed an idle browser context");
            closed += 1;
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_open_contexts_nobody_uses_past_the_idle_time_are_closed() {
        let c = |key, open, in_use, secs| Idle {
            key,
            open,
            in_use,
            idle_for: Duration::from_secs(secs),
        };
        let contexts = [
            c("old", true, false, 900),
            c("older", true, false, 5000),
            c("recent", true, false, 899),
            c("busy", true, true, 5000),
            c("closed", false, false, 5000),
        ];
        assert_eq!(
            idle_contexts(&contexts, Duration::from_secs(900)),
            vec!["old", "older"]
        );
        assert!(idle_contexts(&contexts, Duration::from_secs(6000)).is_empty());
    }
}
