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
    fn playback<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Option<session::PlaybackInfo>>;
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::session::{Identities, PlaybackInfo, SessionStore, UrlKeys};
    use super::*;
    use crate::bindings::Regime;

    /// What another node taught the fleet, in memory.
    #[derive(Default)]
    struct Taught {
        playback: Mutex<Vec<(String, PlaybackInfo)>>,
        regimes: Mutex<Vec<(String, String, Regime)>>,
        identities: Mutex<Vec<(String, Option<String>, bool)>>,
    }

    impl SharedLearning for Taught {
        fn playback<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Option<PlaybackInfo>> {
            let found = self
                .playback
                .lock()
                .unwrap()
                .iter()
                .find(|(k, _)| keys.contains(k))
                .map(|(_, p)| p.clone());
            Box::pin(async move { found })
        }
        fn learn_playback(&self, keys: &[String], info: &PlaybackInfo, _: Duration) {
            let mut p = self.playback.lock().unwrap();
            p.extend(keys.iter().map(|k| (k.clone(), info.clone())));
        }
        fn regime<'a>(
            &'a self,
            session: &'a str,
            client: &'a str,
        ) -> BoxFuture<'a, Option<Regime>> {
            let found = self
                .regimes
                .lock()
                .unwrap()
                .iter()
                .find(|(s, c, _)| s == session && c == client)
                .map(|x| x.2);
            Box::pin(async move { found })
        }
        fn observe_regime(&self, session: &str, client: &str, regime: Regime) {
            let mut r = self.regimes.lock().unwrap();
            r.push((session.into(), client.into(), regime));
        }
        fn identity<'a>(
            &'a self,
            visitor: &'a str,
        ) -> BoxFuture<'a, Option<(Option<String>, bool)>> {
            let found = self
                .identities
                .lock()
                .unwrap()
                .iter()
                .find(|(v, _, _)| v == visitor)
                .map(|(_, d, l)| (d.clone(), *l));
            Box::pin(async move { found })
        }
        fn learn_identity(&self, visitor: &str, datasync_id: Option<&str>, logged_in: bool) {
            let mut i = self.identities.lock().unwrap();
            i.push((visitor.into(), datasync_id.map(str::to_string), logged_in));
        }
    }

    #[tokio::test]
    async fn what_one_node_learns_another_finds_on_a_local_miss() {
        let fleet = Arc::new(Taught::default());
        let a = SessionStore::new(16).with_shared(fleet.clone());
        let b = SessionStore::new(16).with_shared(fleet.clone());
        let info = PlaybackInfo {
            video_id: "aaaaaaaaaaa".into(),
            client: Some("MWEB".into()),
            visitor_data: Some("CgtV".into()),
            datasync_id: None,
            logged_in: false,
        };
        let keys = UrlKeys {
            ei: vec!["E1".into()],
            id: vec!["o-ID".into()],
            expire: None,
        };
        a.learn(&keys, info.clone());
        assert!(b.lookup(Some("E1"), None).is_none(), "not learned locally");
        assert_eq!(b.lookup_shared(None, Some("o-ID")).await, Some(info));
        assert!(b.lookup(None, Some("o-ID")).is_some(), "kept locally after");

        let ra = regimes::Regimes::new(Regime::Video, 16).with_shared(fleet.clone());
        let rb = regimes::Regimes::new(Regime::Video, 16).with_shared(fleet.clone());
        ra.observe("CgtV", "MWEB", Regime::Session);
        assert_eq!(rb.get(Some("CgtV"), "MWEB"), Regime::Video);
        assert_eq!(rb.get_shared(Some("CgtV"), "MWEB").await, Regime::Session);
        assert_eq!(rb.get_shared(Some("CgtV"), "WEB").await, Regime::Video);

        let ia = Identities::new(16).with_shared(fleet.clone());
        let ib = Identities::new(16).with_shared(fleet);
        ia.learn(&serde_json::json!({"responseContext": {"visitorData": "CgtV", "mainAppWebResponseContext": {"datasyncId": "1||", "loggedOut": false}}}));
        assert_eq!(ib.lookup("CgtV"), None);
        assert_eq!(
            ib.lookup_shared("CgtV").await,
            Some((Some("1||".into()), true))
        );
    }
}
