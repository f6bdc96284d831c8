//! What the proxy learns from the traffic it passes, kept for the requests that follow: pages
//! ([`page`]: ytcfg, inline challenge, initial player response), sessions ([`session`]: which
//! video and session each media URL belongs to, the account behind a visitor) and token regimes
//! ([`regimes`]: which binding googlevideo wants per session and client). The binding rules
//! themselves are pure and live in [`crate::bindings`]. Every store is bounded: when full, the
//! least recently used entries make room (never a wholesale clear).

pub mod page;
pub mod regimes;
pub mod session;

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
