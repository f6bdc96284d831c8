//! Bounded per-egress state: the minters and browsers kept for egresses a request names itself
//! (the provider API's `proxy`). Each value holds one of `cap` slots (a semaphore permit) from
//! before it is made until it has been closed, so no more than `cap` exist or are being started
//! or shut down at any moment, however many callers arrive at once. A caller for a new egress
//! when every slot is taken evicts the least recently used value nobody is using (closed, logged
//! with its egress key, counted), or waits for one to come free, and gets [`PerEgressError::Busy`]
//! when none does in time. A value in use is never evicted, so a caller never finds its minter
//! closed under it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::UpstreamError;

/// How often a caller waiting for a slot looks again.
const POLL: Duration = Duration::from_millis(25);

/// Closes an evicted value: its process or thread is gone when the future resolves.
pub type Close<T> = fn(Arc<T>) -> BoxFuture<'static, ()>;

#[derive(Debug, thiserror::Error)]
pub enum PerEgressError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Every slot stayed in use for the whole wait; asking again later may work.
    #[error(
        "all {cap} {what}s for request-named proxies stayed in use for {waited:?}; raise {key} or retry later"
    )]
    Busy {
        what: &'static str,
        key: &'static str,
        cap: usize,
        waited: Duration,
    },
}

/// What a caller for an egress without a value does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Room {
    /// A slot is free: make the value.
    Free,
    /// Evict this egress's value (the least recently used one not in use), then look again.
    Evict(String),
    /// Every value is in use: wait.
    Wait,
}

/// One value as [`make_room`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub key: &'a str,
    /// When it was last handed out (a counter, higher is later).
    pub last_used: u64,
    /// Someone besides the pool holds it (a request, a warm-up).
    pub in_use: bool,
}

/// The cap and eviction decision: a free slot is used; else the least recently used value
/// not in use is evicted; else wait.
pub fn make_room(free_slots: usize, held: &[Held<'_>]) -> Room {
    if free_slots > 0 {
        return Room::Free;
    }
    held.iter()
        .filter(|h| !h.in_use)
        .min_by_key(|h| h.last_used)
        .map_or(Room::Wait, |h| Room::Evict(h.key.to_string()))
}

struct Entry<T> {
    value: Arc<T>,
    last_used: u64,
    slot: OwnedSemaphorePermit,
}

struct Inner<T> {
    clock: u64,
    entries: HashMap<String, Entry<T>>,
}

pub struct PerEgress<T> {
    /// What the values are, for logs and errors ("minter", "browser").
    what: &'static str,
    /// The setting that sets `cap`, named in the busy error.
    key: &'static str,
    cap: usize,
    wait: Duration,
    slots: Arc<Semaphore>,
    close: Close<T>,
    inner: Mutex<Inner<T>>,
    evictions: AtomicU64,
}

impl<T: Send + Sync + 'static> PerEgress<T> {
    /// At most `cap` values (at least one); a caller waits up to `wait` for a slot.
    pub fn new(
        what: &'static str,
        key: &'static str,
        cap: usize,
        wait: Duration,
        close: Close<T>,
    ) -> Self {
        let cap = cap.max(1);
        PerEgress {
            what,
            key,
            cap,
            wait,
            slots: Arc::new(Semaphore::new(cap)),
            close,
            inner: Mutex::new(Inner {
                clock: 0,
                entries: HashMap::new(),
            }),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Values evicted since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Values that exist now, including any being closed (never more than the cap).
    pub fn live(&self) -> usize {
        self.cap - self.slots.available_permits()
    }

    /// The value for `key`, made with `make` when there is none (within the cap).
    pub async fn get(
        &self,
        key: &str,
        make: impl Fn() -> Result<Arc<T>, UpstreamError>,
    ) -> Result<Arc<T>, PerEgressError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let evicted = {
                let mut inner = self.inner.lock().expect("pool lock");
                inner.clock += 1;
                let now = inner.clock;
                if let Some(e) = inner.entries.get_mut(key) {
                    e.last_used = now;
                    return Ok(e.value.clone());
                }
                let held: Vec<Held<'_>> = inner
                    .entries
                    .iter()
                    .map(|(k, e)| Held {
                        key: k,
                        last_used: e.last_used,
                        in_use: Arc::strong_count(&e.value) > 1,
                    })
                    .collect();
                // Slots are taken only under this lock, so a free one stays free until taken.
                match make_room(self.slots.available_permits(), &held) {
                    Room::Free => {
                        let slot = self
                            .slots
                            .clone()
                            .try_acquire_owned()
                            .expect("a free slot under the lock");
                        let value = make()?;
                        inner.entries.insert(
                            key.to_string(),
                            Entry {
                                value: value.clone(),
                                last_used: now,
                                slot,
                            },
                        );
                        return Ok(value);
                    }
                    Room::Evict(k) => inner.entries.remove_entry(&k),
                    Room::Wait => None,
                }
            };
            match evicted {
                Some((k, entry)) => {
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::EGRESS_EVICTIONS.with(&[self.what]).inc();
                    tracing::info!(
                        egress = %k,
                        cap = self.cap,
                        "evicted the least recently used {} of a request-named proxy to make room",
                        self.what
                    );
                    // The slot comes free only once the value is closed; dropped unfinished,
                    // the value's own drop still ends its process or thread.
                    (self.close)(entry.value).await;
                    drop(entry.slot);
                }
                None => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(PerEgressError::Busy {
                            what: self.what,
                            key: self.key,
                            cap: self.cap,
                            waited: self.wait,
                        });
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// The value for `key` if there is one (not counted as a use).
    pub fn peek(&self, key: &str) -> Option<Arc<T>> {
        let inner = self.inner.lock().expect("pool lock");
        inner.entries.get(key).map(|e| e.value.clone())
    }

    /// Every value with its egress key.
    pub fn entries(&self) -> Vec<(String, Arc<T>)> {
        let inner = self.inner.lock().expect("pool lock");
        inner
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(key: &str, last_used: u64, in_use: bool) -> Held<'_> {
        Held {
            key,
            last_used,
            in_use,
        }
    }

    #[test]
    fn a_full_pool_evicts_the_least_recently_used_value_nobody_is_using() {
        let cases: &[(usize, &[Held<'_>], Room)] = &[
            (1, &[held("a", 1, false)], Room::Free),
            (0, &[], Room::Wait),
            (
                0,
                &[
                    held("a", 3, false),
                    held("b", 1, false),
                    held("c", 2, false),
                ],
                Room::Evict("b".into()),
            ),
            (
                0,
                &[held("a", 3, false), held("b", 1, true), held("c", 2, false)],
                Room::Evict("c".into()),
            ),
            (0, &[held("a", 3, true), held("b", 1, true)], Room::Wait),
        ];
        for (free, held, want) in cases {
            assert_eq!(&make_room(*free, held), want, "{free} free, {held:?}");
        }
    }

    struct Thing;

    fn close(_: Arc<Thing>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    #[tokio::test]
    async fn values_never_exceed_the_cap_and_the_oldest_idle_one_goes_first() {
        let pool = PerEgress::new("thing", "test.max", 2, Duration::from_secs(1), close);
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = || {
            made.fetch_add(1, Ordering::Relaxed);
            Ok(Arc::new(Thing))
        };
        drop(pool.get("a", make).await.unwrap());
        drop(pool.get("b", make).await.unwrap());
        drop(pool.get("a", make).await.unwrap()); // a is now newer than b
        drop(pool.get("c", make).await.unwrap());
        assert_eq!(pool.live(), 2);
        assert_eq!(pool.evictions(), 1);
        assert!(pool.peek("b").is_none() && pool.peek("a").is_some());
        assert_eq!(made.load(Ordering::Relaxed), 3);
    }

    /// Collects what a test logs.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_eviction_is_logged_with_the_egress_key_and_never_its_credentials() {
        let logs = Logs::default();
        let writer = logs.clone();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        let first = super::super::Egress::parse("http://alice:hunter2@10.0.0.1:3128").unwrap();
        let key = first.key().unwrap();
        let pool = PerEgress::new("thing", "test.max", 1, Duration::from_secs(1), close);
        drop(pool.get(&key, || Ok(Arc::new(Thing))).await.unwrap());
        drop(
            pool.get("http://10.0.0.2:3128", || Ok(Arc::new(Thing)))
                .await
                .unwrap(),
        );
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("evicted the least recently used thing"))
            .unwrap_or_else(|| panic!("no eviction line in {text:?}"));
        assert!(line.contains(&key) && line.contains("INFO"), "{line}");
        assert!(
            !text.contains("hunter2") && !text.contains("alice"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_finding_every_value_in_use_is_told_the_pool_is_busy() {
        let pool = PerEgress::new("thing", "test.max", 1, Duration::from_secs(5), close);
        let held = pool.get("a", || Ok(Arc::new(Thing))).await.unwrap();
        let e = pool
            .get("b", || Ok(Arc::new(Thing)))
            .await
            .err()
            .expect("busy");
        assert!(matches!(e, PerEgressError::Busy { cap: 1, .. }), "{e}");
        assert!(e.to_string().contains("test.max"), "{e}");
        assert_eq!(pool.live(), 1);
        drop(held);
        // Once it is no longer in use it makes room.
        assert!(pool.get("b", || Ok(Arc::new(Thing))).await.is_ok());
        assert!(pool.peek("a").is_none());
    }
}
