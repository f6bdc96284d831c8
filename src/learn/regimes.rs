//! Which token regime (video- or session-bound GVS tokens) is known per session and client:
//! observed from googlevideo's verdicts, or flagged by a page's experiment flags; otherwise the
//! configured default. Bounded; the least recently used entries make room.

use std::sync::Arc;

use moka::sync::Cache;

use super::{SharedLearning, bounded};
use crate::bindings::Regime;

/// How a regime came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The experiment flag in a page's ytcfg.
    Flag,
    /// googlevideo accepted (or rejected) a token.
    Observed,
}

/// Known regimes per (session, client), bounded.
pub struct Regimes {
    default: Regime,
    map: Cache<(String, String), (Regime, Evidence)>,
    /// Flags seen on pages, by session (any client).
    flags: Cache<String, Regime>,
    /// The fleet's tier (`[cluster]`), when there is one.
    shared: Option<Arc<dyn SharedLearning>>,
}

impl Regimes {
    pub fn new(default: Regime, capacity: usize) -> Self {
        Regimes {
            default,
            map: bounded(capacity).build(),
            flags: bounded(capacity).build(),
            shared: None,
        }
    }

    /// The same store, also teaching and asking the fleet (observed regimes only: flags come
    /// with every page and each node sees them itself).
    pub fn with_shared(mut self, shared: Arc<dyn SharedLearning>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// [`get`](Self::get), asking the fleet when nothing was observed here for (session,
    /// client); a fleet answer is kept here as observed.
    pub async fn get_shared(&self, session: Option<&str>, client: &str) -> Regime {
        let (Some(s), Some(shared)) = (session, &self.shared) else {
            return self.get(session, client);
        };
        let key = (s.to_string(), client.to_string());
        if let Some((r, _)) = self.map.get(&key) {
            return r;
        }
        match shared.regime(s, client).await {
            Some(r) => {
                self.map.insert(key, (r, Evidence::Observed));
                r
            }
            None => self.get(session, client),
        }
    }

    pub fn default_regime(&self) -> Regime {
        self.default
    }

    /// The regime for (session, client): observed, else flagged, else the default.
    pub fn get(&self, session: Option<&str>, client: &str) -> Regime {
        let Some(s) = session else {
            return self.default;
        };
        if let Some((r, _)) = self.map.get(&(s.to_string(), client.to_string())) {
            return r;
        }
        self.flags.get(s).unwrap_or(self.default)
    }

    /// Records that googlevideo accepted `regime` for (session, client).
    pub fn observe(&self, session: &str, client: &str, regime: Regime) {
        if let Some(shared) = &self.shared {
            shared.observe_regime(session, client, regime);
        }
        self.map.insert(
            (session.to_string(), client.to_string()),
            (regime, Evidence::Observed),
        );
    }

    /// The regime googlevideo accepted for (session, client), when one was observed.
    pub fn observed(&self, session: &str, client: &str) -> Option<Regime> {
        self.map
            .get(&(session.to_string(), client.to_string()))
            .filter(|(_, e)| *e == Evidence::Observed)
            .map(|(r, _)| r)
    }

    /// Records the experiment flag seen for a session.
    pub fn flag(&self, session: &str, regime: Regime) {
        self.flags.insert(session.to_string(), regime);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_beats_flagged_beats_default() {
        let r = Regimes::new(Regime::Video, 100);
        assert_eq!(r.get(Some("s"), "WEB"), Regime::Video);
        r.flag("s", Regime::Session);
        assert_eq!(r.get(Some("s"), "WEB"), Regime::Session);
        r.observe("s", "WEB", Regime::Video);
        assert_eq!(r.get(Some("s"), "WEB"), Regime::Video);
        assert_eq!(r.get(Some("s"), "MWEB"), Regime::Session);
        assert_eq!(r.get(None, "WEB"), Regime::Video);
    }

    #[test]
    fn filling_past_capacity_keeps_the_recent_sessions() {
        let r = Regimes::new(Regime::Video, 16);
        for i in 0..100 {
            r.observe(&format!("s{i}"), "WEB", Regime::Session);
            r.flag(&format!("f{i}"), Regime::Session);
        }
        r.map.run_pending_tasks();
        r.flags.run_pending_tasks();
        assert!(r.map.entry_count() <= 16 && r.flags.entry_count() <= 16);
        for i in 90..100 {
            assert_eq!(r.get(Some(&format!("s{i}")), "WEB"), Regime::Session, "{i}");
            assert_eq!(r.get(Some(&format!("f{i}")), "WEB"), Regime::Session, "{i}");
        }
    }
}
