//! Refused tokens, per (source, egress): googlevideo or the player refused a token, so the
//! source that made it is asked for a fresh minter once; a source whose fresh minter is refused
//! too (or that has no minter to renew) is set aside for that egress for a while, and the
//! sources after it answer meanwhile. The decision ([`judge`]) is pure; [`Refusals`] keeps the
//! state behind a lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a token came from: the source that made it and, for minting sources, which minter.
/// Kept in memory only (the cache file does not carry it: a token loaded from it has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provenance {
    pub source: &'static str,
    /// The minter (its id within the source, per egress), when the source mints.
    pub minter: Option<u64>,
}

/// What to do about a refused token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalAction {
    /// The same minter was already judged (a concurrent request refused the same token).
    AlreadyHandled,
    /// Drop the minter that made it; the same source mints again with a fresh one.
    FreshMinter,
    /// The source keeps being refused: ask the next sources for this egress for a while.
    SetAside,
}

/// What is remembered of one (source, egress).
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Refused minters (distinct ids) within the current window, and when the window began.
    strikes: u32,
    last_minter: Option<u64>,
    window_start: Option<Instant>,
    /// Set aside until then, and why.
    set_aside_until: Option<Instant>,
    reason: String,
}

/// Refusals of distinct minters (within `window`) that set a minting source aside.
pub const STRIKES_TO_SET_ASIDE: u32 = 2;

/// The decision for one refusal of a token from `minter` (`None`: the source has no minter
/// it could renew, such as a static token), given what is remembered. Pure: updates `rec`.
pub fn judge(
    rec: &mut Record,
    minter: Option<u64>,
    can_renew: bool,
    now: Instant,
    window: Duration,
    reason: &str,
) -> RefusalAction {
    if rec
        .window_start
        .is_none_or(|t| now.duration_since(t) > window)
    {
        rec.strikes = 0;
        rec.last_minter = None;
        rec.window_start = Some(now);
    }
    if minter.is_some() && rec.last_minter.is_some() && minter <= rec.last_minter {
        return RefusalAction::AlreadyHandled;
    }
    rec.strikes += 1;
    rec.last_minter = minter.or(rec.last_minter);
    if can_renew && minter.is_some() && rec.strikes < STRIKES_TO_SET_ASIDE {
        return RefusalAction::FreshMinter;
    }
    rec.set_aside_until = Some(now + window);
    rec.reason = reason.to_string();
    RefusalAction::SetAside
}

/// One source set aside for one egress, for `/minter_cache` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub source: &'static str,
    /// The egress key (`direct` for the configured egress).
    pub egress: String,
    pub remaining: Duration,
    pub reason: String,
}

/// Where refusal verdicts live. [`Refusals`] keeps them in this process; a fleet that shares
/// verdicts between nodes implements this over its shared store (minter ids are per process,
/// so a shared store shares the set-aside verdicts and keeps renewal decisions local, e.g. by
/// wrapping a [`Refusals`]).
pub trait RefusalStore: Send + Sync {
    /// Records a refusal of a token from `source` on `egress` and says what to do.
    fn refused(
        &self,
        source: &'static str,
        egress: &str,
        minter: Option<u64>,
        can_renew: bool,
        reason: &str,
    ) -> RefusalAction;

    /// Whether `source` is set aside for `egress` now.
    fn is_set_aside(&self, source: &'static str, egress: &str) -> bool;

    /// Every source set aside now.
    fn set_aside(&self) -> Vec<SetAside>;

    /// How long a source is set aside.
    fn window(&self) -> Duration;
}

/// The refusal records of every (source, egress).
pub struct Refusals {
    window: Duration,
    records: Mutex<HashMap<(&'static str, String), Record>>,
}

impl Refusals {
    pub fn new(window: Duration) -> Self {
        Refusals {
            window,
            records: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records a refusal and says what to do (see `judge`).
    pub fn refused(
        &self,
        source: &'static str,
        egress: &str,
        minter: Option<u64>,
        can_renew: bool,
        reason: &str,
    ) -> RefusalAction {
        let mut map = self.records.lock().expect("refusals lock");
        let rec = map.entry((source, egress.to_string())).or_default();
        judge(rec, minter, can_renew, Instant::now(), self.window, reason)
    }

    /// Whether `source` is set aside for `egress` now.
    pub fn is_set_aside(&self, source: &'static str, egress: &str) -> bool {
        let now = Instant::now();
        self.records
            .lock()
            .expect("refusals lock")
            .get(&(source, egress.to_string()))
            .and_then(|r| r.set_aside_until)
            .is_some_and(|t| t > now)
    }

    /// Every source set aside now.
    pub fn set_aside(&self) -> Vec<SetAside> {
        let now = Instant::now();
        let mut out: Vec<SetAside> = self
            .records
            .lock()
            .expect("refusals lock")
            .iter()
            .filter_map(|((source, egress), r)| {
                let until = r.set_aside_until.filter(|t| *t > now)?;
                Some(SetAside {
                    source,
                    egress: egress.clone(),
                    remaining: until - now,
                    reason: r.reason.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.source, &a.egress).cmp(&(b.source, &b.egress)));
        out
    }
}

impl RefusalStore for Refusals {
    fn refused(
        &self,
        source: &'static str,
        egress: &str,
        minter: Option<u64>,
        can_renew: bool,
        reason: &str,
    ) -> RefusalAction {
        Refusals::refused(self, source, egress, minter, can_renew, reason)
    }

    fn is_set_aside(&self, source: &'static str, egress: &str) -> bool {
        Refusals::is_set_aside(self, source, egress)
    }

    fn set_aside(&self) -> Vec<SetAside> {
        Refusals::set_aside(self)
    }

    fn window(&self) -> Duration {
        Refusals::window(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(1800);

    #[test]
    fn a_refused_minter_is_renewed_once_then_its_source_is_set_aside() {
        let mut r = Record::default();
        let t = Instant::now();
        assert_eq!(
            judge(&mut r, Some(1), true, t, W, "403"),
            RefusalAction::FreshMinter
        );
        // Another request refused with a token of the same minter: nothing new.
        assert_eq!(
            judge(&mut r, Some(1), true, t, W, "403"),
            RefusalAction::AlreadyHandled
        );
        assert_eq!(
            judge(&mut r, Some(2), true, t, W, "cut short"),
            RefusalAction::SetAside
        );
        assert_eq!(r.reason, "cut short");
    }

    #[test]
    fn a_source_without_a_minter_is_set_aside_at_once() {
        let mut r = Record::default();
        assert_eq!(
            judge(&mut r, None, false, Instant::now(), W, "403"),
            RefusalAction::SetAside
        );
    }

    #[test]
    fn strikes_older_than_the_window_are_forgotten() {
        let mut r = Record::default();
        let t = Instant::now();
        judge(&mut r, Some(1), true, t, W, "403");
        let later = t + W + Duration::from_secs(1);
        assert_eq!(
            judge(&mut r, Some(2), true, later, W, "403"),
            RefusalAction::FreshMinter
        );
    }

    #[test]
    fn set_aside_sources_are_listed_per_egress_until_their_time_is_up() {
        let refusals = Refusals::new(Duration::from_millis(50));
        assert_eq!(
            refusals.refused("static", "direct", None, false, "403"),
            RefusalAction::SetAside
        );
        assert!(refusals.is_set_aside("static", "direct"));
        assert!(!refusals.is_set_aside("static", "http://p:1"));
        let list = refusals.set_aside();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, "403");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!refusals.is_set_aside("static", "direct"));
        assert!(refusals.set_aside().is_empty());
    }
}
