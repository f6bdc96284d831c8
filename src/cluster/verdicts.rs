//! Refusal verdicts shared by the fleet ([`FleetRefusals`]): renewal decisions stay with this
//! node's own [`Refusals`] (minter ids mean nothing on other nodes), a source set aside here is
//! published to the fleet (fire-and-forget), and a source any node set aside is set aside here
//! too, so the whole fleet stops using a refused source at once. The fleet's list is refreshed
//! in the background every [`REFRESH`], so the request path reads memory only; while Redis is
//! unreachable the last list ages out and local verdicts alone decide.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::{Cluster, SetAside as FleetAside};
use crate::tokens::{RefusalAction, RefusalStore, Refusals, SetAside};

/// How often the fleet's set-asides are read from Redis.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The egress key refusals use for the configured egress; the fleet stores it as `None`.
const DIRECT: &str = "direct";

fn fleet_egress(egress: &str) -> Option<&str> {
    (egress != DIRECT).then_some(egress)
}

#[derive(Default)]
struct View {
    asides: Vec<FleetAside>,
    /// When `asides` was read; a list older than a few refreshes (Redis gone) is ignored.
    fetched: Option<Instant>,
    /// The names of this node's sources (fleet entries map onto them for listing).
    known: Vec<&'static str>,
}

/// A [`RefusalStore`] over this node's [`Refusals`] and the fleet's shared set-asides.
pub struct FleetRefusals {
    local: Refusals,
    cluster: Cluster,
    view: Arc<Mutex<View>>,
}

impl FleetRefusals {
    /// `sources`: the names of this node's token sources. Starts the background refresh (needs
    /// a tokio runtime); it ends when the store is dropped.
    pub fn new(local: Refusals, cluster: Cluster, sources: Vec<&'static str>) -> Self {
        let view = Arc::new(Mutex::new(View {
            known: sources,
            ..View::default()
        }));
        tokio::spawn(refresh(Arc::downgrade(&view), cluster.clone()));
        FleetRefusals {
            local,
            cluster,
            view,
        }
    }

    /// The fleet's live entries for (`source`, `egress`), from the last read still fresh.
    fn fleet_has(&self, source: &'static str, egress: &str) -> bool {
        let mut view = self.view.lock().expect("fleet verdicts lock");
        if !view.known.contains(&source) {
            view.known.push(source);
        }
        if !fresh(view.fetched) {
            return false;
        }
        let now = SystemTime::now();
        let egress = fleet_egress(egress);
        view.asides
            .iter()
            .any(|a| a.source == source && a.egress.as_deref() == egress && a.until() > now)
    }
}

fn fresh(fetched: Option<Instant>) -> bool {
    fetched.is_some_and(|t| t.elapsed() < REFRESH * 5)
}

async fn refresh(view: Weak<Mutex<View>>, cluster: Cluster) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if view.strong_count() == 0 {
            return;
        }
        let got = cluster.set_asides().await;
        let Some(view) = view.upgrade() else { return };
        if let Some(asides) = got {
            let mut v = view.lock().expect("fleet verdicts lock");
            v.asides = asides;
            v.fetched = Some(Instant::now());
        }
    }
}

impl RefusalStore for FleetRefusals {
    fn refused(
        &self,
        source: &'static str,
        egress: &str,
        minter: Option<u64>,
        can_renew: bool,
        reason: &str,
    ) -> RefusalAction {
        let action = self
            .local
            .refused(source, egress, minter, can_renew, reason);
        if action == RefusalAction::SetAside {
            self.cluster
                .set_aside(source, fleet_egress(egress), self.local.window(), reason);
        }
        action
    }

    fn is_set_aside(&self, source: &'static str, egress: &str) -> bool {
        self.local.is_set_aside(source, egress) || self.fleet_has(source, egress)
    }

    fn set_aside(&self) -> Vec<SetAside> {
        let mut out = self.local.set_aside();
        let view = self.view.lock().expect("fleet verdicts lock");
        if fresh(view.fetched) {
            let now = SystemTime::now();
            for a in &view.asides {
                let Some(source) = view.known.iter().copied().find(|k| *k == a.source) else {
                    continue;
                };
                let egress = a.egress.clone().unwrap_or_else(|| DIRECT.into());
                let Ok(remaining) = a.until().duration_since(now) else {
                    continue;
                };
                if out.iter().any(|o| o.source == source && o.egress == egress) {
                    continue;
                }
                out.push(SetAside {
                    source,
                    egress,
                    remaining,
                    reason: format!("{} (fleet)", a.reason),
                });
            }
        }
        out.sort_by(|a, b| (a.source, &a.egress).cmp(&(b.source, &b.egress)));
        out
    }

    fn window(&self) -> Duration {
        self.local.window()
    }
}
