//! What the proxy learns from the traffic it passes, kept for the requests that follow: pages
//! ([`page`]: ytcfg, inline challenge, initial player response), sessions ([`session`]: which
//! video and session each media URL belongs to, the account behind a visitor) and token regimes
//! ([`regimes`]: which binding googlevideo wants per session and client). The binding rules
//! themselves are pure and live in [`crate::bindings`]. Every store is bounded: when full, the
//! least recently used entries make room (never a wholesale clear).

pub mod page;
pub mod regimes;
pub mod session;

use std::time::Duration;

use futures::future::BoxFuture;
use moka::policy::EvictionPolicy;
use moka::sync::{Cache, CacheBuilder};

/// A cache of at most `capacity` entries (16 at least) that evicts the least recently used.
fn bounded<K, V>(capacity: usize) -> CacheBuilder<K, V, Cache<K, V>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity.max(16) as u64)
        .eviction_policy(EvictionPolicy::lru())
}

/// The fleet's tier behind the stores (`[cluster]`): what other nodes learned, asked when a
/// store misses locally, and told what this node learns. Lookups are bounded by the fleet
/// store's timeout and answer `None` when it is unreachable; writes are fire-and-forget, so
/// learning never delays a request. The store itself lives in `crate::cluster`.
pub trait SharedLearning: Send + Sync {
    /// The playback the first of `keys` (`ei:...`, `id:...`) that another node learned belongs to.
    fn playback<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Option<session::PlaybackInfo>>;
    /// Tells the fleet that `keys` belong to `info`, for `lifetime` (as long as the URLs live).
    fn learn_playback(&self, keys: &[String], info: &session::PlaybackInfo, lifetime: Duration);
    /// The regime googlevideo accepted for (session, client) on another node.
    fn regime<'a>(
        &'a self,
        session: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Option<crate::bindings::Regime>>;
    fn observe_regime(&self, session: &str, client: &str, regime: crate::bindings::Regime);
    /// (DataSync ID, signed in) another node saw for `visitor`.
    fn identity<'a>(&'a self, visitor: &'a str) -> BoxFuture<'a, Option<(Option<String>, bool)>>;
    fn learn_identity(&self, visitor: &str, datasync_id: Option<&str>, logged_in: bool);
}
