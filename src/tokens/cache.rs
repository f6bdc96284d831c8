//! The token cache: (binding, egress) -> token with its expiry, single-flight locks so
//! concurrent first requests mint once, and persistence to a JSON file so a restart serves warm.
//!
//! The cache is bounded ([`CacheLimits`]: entries, binding length) so hostile or odd traffic
//! cannot grow it without end. The file is written by one background writer per cache, at most
//! once per debounce interval (and on [`TokenCache::flush`] and drop), never per store. Each write
//! takes an advisory lock beside the file (`<file>.lock`), reads what is there, merges by key
//! keeping the later expiry, and replaces the file atomically ([`crate::fsutil::write_private`]:
//! a temp file created exclusively, 0600, synced, renamed, the directory synced): so `potproxy
//! mint` and a running proxy sharing the file neither clobber each other nor follow a planted
//! temp file.
//!
//! Nothing in the file is trusted: entries are read one by one, a bad one (junk, an expiry out
//! of range) is skipped with one warning, never a failed start, and no expiry is kept past the
//! token service's TTL ([`TokenCache::cap_lifetime`]; [`MAX_LIFETIME`] until it is set).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Issued, Provenance, TokenRequest};
use crate::fsutil::{create_private_dir, write_private};
use crate::token::{Binding, Token};
use crate::upstream::Egress;

/// The file format version. Version 1 files may hold static tokens (persisted before static
/// answers stopped being cached): they are not loaded, so a changed static token takes effect.
const FILE_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    /// `video` or `session`.
    kind: String,
    binding: String,
    egress: Option<String>,
}

impl Key {
    /// `None` for requests without a binding: those are never cached.
    pub fn of(req: &TokenRequest) -> Option<Key> {
        let (kind, binding) = match &req.binding {
            Binding::Video(v) => ("video", v),
            Binding::Session(s) => ("session", s),
            Binding::Unknown => return None,
        };
        // Spelling of the proxy URL does not make a different egress; credentials do.
        let egress = req.egress.as_ref().and_then(Egress::key);
        Some(Key {
            kind: kind.into(),
            binding: binding.clone(),
            egress,
        })
    }

    /// The binding as a display/API string.
    pub fn binding(&self) -> &str {
        &self.binding
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    key: Key,
    token: String,
    /// Unix seconds.
    expires_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    entries: Vec<Entry>,
}

/// The file as read: entries are judged one by one.
#[derive(Debug, Deserialize)]
struct RawFile {
    version: u32,
    entries: Vec<serde_json::Value>,
}

/// The longest a cached token lives until the service sets its TTL: the longest `[tokens] ttl`
/// allows.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// `exp`, but no later than `now + lifetime`.
fn capped(exp: SystemTime, now: SystemTime, lifetime: Duration) -> SystemTime {
    exp.min(now.checked_add(lifetime).unwrap_or(now))
}

/// Counters for logs and `/minter_cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// How big the cache may grow and how often its file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Live entries kept; past it the soonest-expiring ones (the oldest, with one TTL) go.
    pub max_entries: usize,
    /// Longest binding (video id, visitor data, DataSync ID) worth caching; longer ones are
    /// served but not kept. Real ones are well under 200 characters.
    pub max_binding_len: usize,
    /// Stores within this interval make one file write.
    pub write_debounce: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 50_000,
            max_binding_len: 512,
            write_debounce: Duration::from_secs(1),
        }
    }
}

/// A cached token, its expiry, and (for tokens minted by this process) where it came from.
type Cached = (Token, SystemTime, Option<Provenance>);
type Entries = HashMap<Key, Cached>;
/// One entry as read from the file.
type LoadedEntry = (Key, (Token, SystemTime));
/// Entries as read from the file.
type Loaded = Vec<LoadedEntry>;

struct Inner {
    entries: Mutex<Entries>,
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    file: Option<Arc<Persist>>,
    limits: CacheLimits,
    /// The longest an entry lives, milliseconds ([`TokenCache::cap_lifetime`]).
    lifetime_ms: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Inner {
    fn lifetime(&self) -> Duration {
        Duration::from_millis(self.lifetime_ms.load(Ordering::Relaxed))
    }
}

/// The file side of a persistent cache, shared with its writer thread.
struct Persist {
    path: PathBuf,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Serialises this process's writes of the file (the file lock serialises processes).
    write_lock: Mutex<()>,
    writes: AtomicU64,
}

/// What changed since the last write.
#[derive(Default)]
struct Pending {
    dirty: bool,
    /// Keys forgotten since the last write: not taken back from the file.
    removed: HashSet<Key>,
    /// `clear()` since the last write: nothing is taken back from the file.
    cleared: bool,
    stop: bool,
}

#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

/// Held while minting for one key; dropping it lets waiting callers look again.
pub struct Flight {
    cache: TokenCache,
    key: Key,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut flights = self.cache.inner.flights.lock().expect("flights lock");
        if let Some(lock) = flights.get(&self.key) {
            // Ours plus the map's: nobody else is waiting.
            if Arc::strong_count(lock) <= 2 {
                flights.remove(&self.key);
            }
        }
    }
}

impl Drop for Inner {
    /// The last handle is gone: write what is pending and stop the writer thread.
    fn drop(&mut self) {
        if let Some(p) = &self.file {
            let dirty = p.pending.lock().map(|s| s.dirty).unwrap_or(false);
            if dirty {
                write_now(p, &self.entries, &self.limits, self.lifetime());
            }
            if let Ok(mut s) = p.pending.lock() {
                s.stop = true;
            }
            p.wake.notify_all();
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Key {
    /// Whether the cache should keep this key at all.
    fn fits(&self, limits: &CacheLimits) -> bool {
        self.binding.len() <= limits.max_binding_len
            && self
                .egress
                .as_ref()
                .is_none_or(|e| e.len() <= limits.max_binding_len)
    }
}

/// Inserts within the bound: when full, expired entries go first, then the soonest-expiring
/// sixteenth (so a full cache pays for the scan once per many stores).
fn insert_bounded(map: &mut Entries, limits: &CacheLimits, key: Key, value: Cached) {
    if !map.contains_key(&key) && map.len() >= limits.max_entries {
        let now = SystemTime::now();
        map.retain(|_, (_, exp, _)| *exp > now);
        if map.len() >= limits.max_entries {
            let mut expiries: Vec<SystemTime> = map.values().map(|(_, e, _)| *e).collect();
            let n = (limits.max_entries / 16).max(1).min(expiries.len() - 1);
            let (_, cutoff, _) = expiries.select_nth_unstable(n);
            let cutoff = *cutoff;
            map.retain(|_, (_, exp, _)| *exp > cutoff);
            // Many entries sharing the cutoff could all survive; make room regardless.
            while map.len() >= limits.max_entries {
                let Some(k) = map.keys().next().cloned() else {
                    break;
                };
                map.remove(&k);
            }
        }
    }
    map.insert(key, value);
}

impl TokenCache {
    fn build(file: Option<Arc<Persist>>, limits: CacheLimits) -> Self {
        TokenCache {
            inner: Arc::new(Inner {
                entries: Mutex::new(HashMap::new()),
                flights: Mutex::new(HashMap::new()),
                file,
                limits,
                lifetime_ms: AtomicU64::new(MAX_LIFETIME.as_millis() as u64),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    pub fn in_memory() -> Self {
        Self::build(None, CacheLimits::default())
    }

    /// A cache persisted to `path`; existing unexpired entries are loaded. A missing file is
    /// an empty cache; an unreadable one is logged and replaced on the next write.
    pub fn persistent(path: &Path) -> Self {
        Self::persistent_with(path, CacheLimits::default())
    }

    /// [`persistent`](Self::persistent) with its own limits.
    pub fn persistent_with(path: &Path, limits: CacheLimits) -> Self {
        let persist = Arc::new(Persist {
            path: path.to_path_buf(),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            write_lock: Mutex::new(()),
            writes: AtomicU64::new(0),
        });
        let cache = Self::build(Some(persist.clone()), limits);
        match read_entries(path) {
            Ok(Some(entries)) => {
                let now = SystemTime::now();
                let mut map = cache.inner.entries.lock().expect("entries lock");
                for (k, (t, exp)) in entries.into_iter().filter(|(k, _)| k.fits(&limits)) {
                    let exp = capped(exp, now, MAX_LIFETIME);
                    // A key listed twice: the later expiry wins, as in a write's merge.
                    if map.get(&k).is_some_and(|(_, kept, _)| *kept >= exp) {
                        continue;
                    }
                    insert_bounded(&mut map, &limits, k, (t, exp, None));
                }
                tracing::info!(path = %path.display(), entries = map.len(), "token cache loaded");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "token cache file unreadable; starting empty")
            }
        }
        let weak = Arc::downgrade(&cache.inner);
        let spawned = std::thread::Builder::new()
            .name("potproxy-token-cache".into())
            .spawn(move || writer_loop(persist, weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the token cache writer; the file is written on flush only");
        }
        cache
    }

    /// No entry lives longer than `lifetime` from now: those held are cut back, later ones are
    /// stored cut back (the token service sets its TTL here).
    pub fn cap_lifetime(&self, lifetime: Duration) {
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.inner.lifetime_ms.store(ms, Ordering::Relaxed);
        let now = SystemTime::now();
        for (_, exp, _) in self
            .inner
            .entries
            .lock()
            .expect("entries lock")
            .values_mut()
        {
            *exp = capped(*exp, now, lifetime);
        }
    }

    pub fn lookup(&self, key: &Key) -> Option<Issued> {
        let now = SystemTime::now();
        let map = self.inner.entries.lock().expect("entries lock");
        match map.get(key) {
            Some((t, exp, provenance)) if *exp > now => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                Some(Issued {
                    token: t.clone(),
                    expires_at: *exp,
                    cached: true,
                    provenance: provenance.clone(),
                })
            }
            _ => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Waits for and takes the single-flight lock of `key`.
    pub async fn flight(&self, key: &Key) -> Flight {
        let lock = {
            let mut flights = self.inner.flights.lock().expect("flights lock");
            flights
                .entry(key.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        let guard = lock.lock_owned().await;
        Flight {
            cache: self.clone(),
            key: key.clone(),
            _guard: guard,
        }
    }

    /// Keeps `token` for `key` until `expires_at`. Keys with an absurdly long binding are not
    /// kept (the token was still served). The file is written later, by the writer.
    pub fn store(&self, key: Key, token: Token, expires_at: SystemTime) {
        self.store_traced(key, token, expires_at, None);
    }

    /// [`store`](Self::store) with where the token came from (kept in memory, not in the file).
    pub fn store_traced(
        &self,
        key: Key,
        token: Token,
        expires_at: SystemTime,
        provenance: Option<Provenance>,
    ) {
        if !key.fits(&self.inner.limits) {
            tracing::debug!(
                len = key.binding.len(),
                "binding too long to cache; token served uncached"
            );
            return;
        }
        let expires_at = capped(expires_at, SystemTime::now(), self.inner.lifetime());
        {
            let mut map = self.inner.entries.lock().expect("entries lock");
            insert_bounded(
                &mut map,
                &self.inner.limits,
                key,
                (token, expires_at, provenance),
            );
        }
        self.mark_dirty(|_| {});
    }

    /// Drops the entry for a request's key only while it still holds `token` (a refused
    /// token; a fresh one stored meanwhile stays). Returns whether it was dropped.
    pub fn forget_token(&self, req: &TokenRequest, token: &Token) -> bool {
        let Some(key) = Key::of(req) else {
            return false;
        };
        let removed = {
            let mut map = self.inner.entries.lock().expect("entries lock");
            if map.get(&key).is_some_and(|(t, _, _)| t == token) {
                map.remove(&key).is_some()
            } else {
                false
            }
        };
        if removed {
            self.mark_dirty(|p| {
                p.removed.insert(key);
            });
        }
        removed
    }

    /// Drops the entry for a request's key (a token googlevideo rejected).
    pub fn forget(&self, req: &TokenRequest) {
        let Some(key) = Key::of(req) else { return };
        let removed = self
            .inner
            .entries
            .lock()
            .expect("entries lock")
            .remove(&key)
            .is_some();
        if removed {
            self.mark_dirty(|p| {
                p.removed.insert(key);
            });
        }
    }

    pub fn clear(&self) {
        self.inner.entries.lock().expect("entries lock").clear();
        self.mark_dirty(|p| {
            p.cleared = true;
            p.removed.clear();
        });
    }

    /// The keys of the live entries.
    pub fn keys(&self) -> Vec<Key> {
        let now = SystemTime::now();
        self.inner
            .entries
            .lock()
            .expect("entries lock")
            .iter()
            .filter(|(_, (_, exp, _))| *exp > now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            entries: self.inner.entries.lock().expect("entries lock").len(),
        }
    }

    /// How many times this cache has written its file (for logs, metrics and tests).
    pub fn file_writes(&self) -> u64 {
        self.inner
            .file
            .as_ref()
            .map_or(0, |p| p.writes.load(Ordering::Relaxed))
    }

    /// Writes the cache file now, merged with what other processes wrote (one-shot commands
    /// and shutdown call this before exiting).
    pub fn flush(&self) {
        if let Some(p) = &self.inner.file {
            write_now(
                p,
                &self.inner.entries,
                &self.inner.limits,
                self.inner.lifetime(),
            );
        }
    }

    /// Records a change for the writer and wakes it.
    fn mark_dirty(&self, change: impl FnOnce(&mut Pending)) {
        let Some(p) = &self.inner.file else { return };
        let mut pending = p.pending.lock().expect("pending lock");
        change(&mut pending);
        pending.dirty = true;
        drop(pending);
        p.wake.notify_all();
    }
}

/// The writer thread: waits for a change, lets stores gather for the debounce interval, then
/// writes once. Ends when the cache is dropped (it holds only a weak handle).
fn writer_loop(p: Arc<Persist>, cache: Weak<Inner>) {
    loop {
        {
            let mut pending = p.pending.lock().expect("pending lock");
            while !pending.dirty && !pending.stop {
                pending = p.wake.wait(pending).expect("pending lock");
            }
            if pending.stop {
                return;
            }
        }
        let debounce = match cache.upgrade() {
            Some(inner) => inner.limits.write_debounce,
            None => return,
        };
        {
            let pending = p.pending.lock().expect("pending lock");
            let _ = p.wake.wait_timeout_while(pending, debounce, |s| !s.stop);
        }
        let Some(inner) = cache.upgrade() else { return };
        if p.pending.lock().is_ok_and(|s| s.dirty) {
            write_now(&p, &inner.entries, &inner.limits, inner.lifetime());
        }
    }
}

/// One write: under the file lock, merge the file's entries with ours (later expiry wins;
/// keys we forgot or cleared stay gone), take the others' entries into memory, replace the
/// file.
fn write_now(p: &Persist, entries: &Mutex<Entries>, limits: &CacheLimits, lifetime: Duration) {
    let _serial = p.write_lock.lock().expect("write lock");
    let (removed, cleared) = {
        let mut pending = p.pending.lock().expect("pending lock");
        pending.dirty = false;
        (
            std::mem::take(&mut pending.removed),
            std::mem::take(&mut pending.cleared),
        )
    };
    let _file_lock = match lock_beside(&p.path) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::debug!(path = %p.path.display(), error = %e, "cannot lock the token cache file; writing without the lock");
            None
        }
    };
    let theirs = if cleared {
        Vec::new()
    } else {
        match read_entries(&p.path) {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(path = %p.path.display(), error = %e, "token cache file unreadable; replacing it");
                Vec::new()
            }
        }
    };
    let now = SystemTime::now();
    let body = {
        let mut map = entries.lock().expect("entries lock");
        for (k, (t, exp)) in theirs {
            if removed.contains(&k) || !k.fits(limits) {
                continue;
            }
            let exp = capped(exp, now, lifetime);
            let newer = map.get(&k).is_none_or(|(_, mine, _)| exp > *mine);
            if newer {
                insert_bounded(&mut map, limits, k, (t, exp, None));
            }
        }
        map.retain(|_, (_, exp, _)| *exp > now);
        let entries: Vec<Entry> = map
            .iter()
            .map(|(k, (t, exp, _))| Entry {
                key: k.clone(),
                token: t.as_str().to_string(),
                expires_at: unix(*exp),
            })
            .collect();
        serde_json::to_vec(&FileFormat {
            version: FILE_VERSION,
            entries,
        })
        .expect("cache entries serialise")
    };
    match write_private(&p.path, &body) {
        Ok(()) => {
            p.writes.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(path = %p.path.display(), error = %e, "cannot write token cache file")
        }
    }
}

/// The unexpired entries of the file at `path`; `None` when there is no file. A file of an
/// older version counts as empty.
fn read_entries(path: &Path) -> Result<Option<Loaded>, CacheFileError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CacheFileError::Read(e)),
    };
    let f: RawFile = serde_json::from_slice(&bytes).map_err(CacheFileError::Parse)?;
    if f.version != FILE_VERSION {
        tracing::info!(path = %path.display(), version = f.version, "token cache file of another version; not loaded");
        return Ok(Some(Vec::new()));
    }
    let now = SystemTime::now();
    let mut skipped = 0usize;
    let mut loaded = Vec::new();
    for raw in f.entries {
        match judge_entry(raw, now) {
            Ok(Some(entry)) => loaded.push(entry),
            Ok(None) => {}
            Err(()) => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(path = %path.display(), skipped, "token cache file: skipped entries that are not valid tokens with an expiry in range");
    }
    Ok(Some(loaded))
}

/// One entry of the file: `Ok(None)` when expired, `Err` when it is not an entry we write (a
/// wrong shape, a token that does not parse, an expiry out of range).
fn judge_entry(raw: serde_json::Value, now: SystemTime) -> Result<Option<LoadedEntry>, ()> {
    let e: Entry = serde_json::from_value(raw).map_err(|_| ())?;
    let expires_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(e.expires_at))
        .ok_or(())?;
    let token = Token::parse(&e.token).map_err(|_| ())?;
    Ok((expires_at > now).then_some((e.key, (token, expires_at))))
}

/// Why the cache file could not be read.
#[derive(Debug, thiserror::Error)]
enum CacheFileError {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("not a token cache: {0}")]
    Parse(#[source] serde_json::Error),
}

/// Takes the advisory lock `<path>.lock` (blocking), released when the file is dropped.
fn lock_beside(path: &Path) -> std::io::Result<File> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let f = opts.open(&lock_path)?;
    #[cfg(unix)]
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &str) -> Key {
        Key::of(&TokenRequest::new(Binding::Video(b.into()))).unwrap()
    }

    #[test]
    fn persisted_entries_survive_a_restart_and_expired_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let c = TokenCache::persistent(&path);
        let t = Token::from_bytes(&[0x32, 1, 9]);
        c.store(
            key("aaaaaaaaaaa"),
            t.clone(),
            SystemTime::now() + Duration::from_secs(3600),
        );
        c.store(
            key("bbbbbbbbbbb"),
            t.clone(),
            SystemTime::now() - Duration::from_secs(1),
        );
        drop(c); // the last handle writes what is pending
        let again = TokenCache::persistent(&path);
        assert_eq!(again.lookup(&key("aaaaaaaaaaa")).unwrap().token, t);
        assert!(again.lookup(&key("bbbbbbbbbbb")).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_cache_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        std::fs::write(&path, "{not json").unwrap();
        let c = TokenCache::persistent(&path);
        assert_eq!(c.stats().entries, 0);
    }

    /// Found with the `cache_file` fuzz target (`fuzz/regressions/cache_file`): an expiry
    /// beyond what `SystemTime` holds panicked at load (the proxy failed to start) and in the
    /// writer thread.
    #[test]
    fn an_expiry_too_far_for_the_clock_is_dropped_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let entry = |binding: &str, expires_at: u64| {
            serde_json::json!({"kind": "video", "binding": binding, "egress": null,
                "token": "AQID", "expires_at": expires_at})
        };
        let file = serde_json::json!({"version": FILE_VERSION, "entries": [
            entry("aaaaaaaaaaa", u64::MAX), entry("bbbbbbbbbbb", unix(later(3600)))]});
        std::fs::write(&path, file.to_string()).unwrap();
        let c = TokenCache::persistent(&path);
        assert!(c.lookup(&key("aaaaaaaaaaa")).is_none());
        assert!(c.lookup(&key("bbbbbbbbbbb")).is_some());
        c.flush();
        assert_eq!(file_keys(&path), ["bbbbbbbbbbb"]);
    }

    /// Found with the `cache_file` fuzz target (`fuzz/regressions/cache_file`): with a key listed
    /// twice, loading kept the last entry while a write's merge keeps the later expiry, so the
    /// token served changed after the first write.
    #[test]
    fn a_key_listed_twice_loads_with_its_later_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let entry = |token: &str, expires_at: SystemTime| {
            serde_json::json!({"kind": "video", "binding": "aaaaaaaaaaa", "egress": null,
                "token": token, "expires_at": unix(expires_at)})
        };
        let file = serde_json::json!({"version": FILE_VERSION, "entries": [
            entry("AQID", later(7200)), entry("BBBB", later(3600))]});
        std::fs::write(&path, file.to_string()).unwrap();
        let c = TokenCache::persistent(&path);
        assert_eq!(
            c.lookup(&key("aaaaaaaaaaa")).unwrap().token.as_str(),
            "AQID"
        );
        c.flush();
        drop(c);
        let again = TokenCache::persistent(&path);
        assert_eq!(
            again.lookup(&key("aaaaaaaaaaa")).unwrap().token.as_str(),
            "AQID"
        );
    }

    #[test]
    fn the_egress_key_counts_credentials_but_not_spelling_and_never_holds_the_password() {
        let via = |text: &str| {
            Key::of(&TokenRequest {
                egress: Some(Egress::parse(text).unwrap()),
                ..TokenRequest::new(Binding::Video("aaaaaaaaaaa".into()))
            })
            .unwrap()
        };
        let k = via("http://user:secret@proxy.example:3128");
        assert_eq!(k, via("user:secret@proxy.example:3128"));
        assert_ne!(k, via("http://user:other@proxy.example:3128"));
        assert_ne!(k, via("proxy.example:3128"));
        assert_ne!(k, key("aaaaaaaaaaa"));
        let json = serde_json::to_string(&k).unwrap();
        assert!(
            json.contains("http://proxy.example:3128#cred=") && !json.contains("secret"),
            "{json}"
        );
    }

    #[test]
    fn unbound_requests_have_no_key() {
        assert!(Key::of(&TokenRequest::new(Binding::Unknown)).is_none());
    }

    fn later(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    fn file_keys(path: &Path) -> Vec<String> {
        let f: FileFormat = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut keys: Vec<String> = f.entries.into_iter().map(|e| e.key.binding).collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_cache_stays_within_its_entry_bound_keeping_the_newest() {
        let limits = CacheLimits {
            max_entries: 100,
            ..CacheLimits::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let c = TokenCache::persistent_with(&dir.path().join("c.json"), limits);
        let t = Token::from_bytes(&[0x32, 1]);
        for i in 0..1000u64 {
            c.store(key(&format!("v{i:010}")), t.clone(), later(3600 + i));
        }
        assert!(c.stats().entries <= 100, "{:?}", c.stats());
        assert!(c.lookup(&key("v0000000999")).is_some());
        assert!(c.lookup(&key("v0000000000")).is_none());
    }

    #[test]
    fn an_absurdly_long_binding_is_served_but_not_cached() {
        let c = TokenCache::in_memory();
        let long = "x".repeat(10_000);
        c.store(key(&long), Token::from_bytes(&[0x32, 1]), later(3600));
        assert!(c.lookup(&key(&long)).is_none());
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn five_thousand_stores_make_a_handful_of_file_writes_not_thousands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let c = TokenCache::persistent(&path);
        let t = Token::from_bytes(&[0x32, 1]);
        for i in 0..5000 {
            c.store(key(&format!("v{i:010}")), t.clone(), later(3600));
        }
        c.flush();
        let writes = c.file_writes();
        assert!((1..=10).contains(&writes), "{writes} writes");
        assert_eq!(file_keys(&path).len(), 5000);
    }

    #[test]
    fn the_writer_writes_a_store_without_being_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let c = TokenCache::persistent_with(
            &path,
            CacheLimits {
                write_debounce: Duration::from_millis(50),
                ..CacheLimits::default()
            },
        );
        c.store(
            key("aaaaaaaaaaa"),
            Token::from_bytes(&[0x32, 1]),
            later(3600),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !(path.exists() && file_keys(&path) == vec!["aaaaaaaaaaa".to_string()]) {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.file_writes(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn planted_temp_files_are_neither_reused_nor_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let mut planted = vec![path.with_extension("tmp")];
        planted.extend((0..3).map(|i| crate::fsutil::temp_name(&path, i)));
        for p in &planted {
            std::fs::write(p, "planted").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        std::os::unix::fs::symlink(&victim, crate::fsutil::temp_name(&path, 3)).unwrap();
        let c = TokenCache::persistent(&path);
        c.store(
            key("aaaaaaaaaaa"),
            Token::from_bytes(&[0x32, 1]),
            later(3600),
        );
        c.flush();
        for p in &planted {
            assert_eq!(std::fs::read_to_string(p).unwrap(), "planted");
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o666);
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(file_keys(&path), vec!["aaaaaaaaaaa".to_string()]);
    }

    #[tokio::test]
    async fn static_tokens_are_never_persisted_so_a_changed_one_takes_effect() {
        use super::super::{StaticSource, TokenService};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let old = Token::from_bytes(&[0x32, 1]);
        let new = Token::from_bytes(&[0x32, 2]);
        let serve = |t: &Token| {
            TokenService::new(
                vec![Arc::new(StaticSource::new(
                    Some(t.clone()),
                    Default::default(),
                ))],
                TokenCache::persistent(&path),
                Duration::from_secs(3600),
            )
        };
        let req = TokenRequest::new(Binding::Video("aaaaaaaaaaa".into()));
        let svc = serve(&old);
        assert_eq!(svc.get(&req).await.unwrap(), old);
        svc.cache().flush();
        assert!(file_keys(&path).is_empty());
        drop(svc);
        assert_eq!(serve(&new).get(&req).await.unwrap(), new);
    }

    #[test]
    fn two_writers_on_one_file_merge_instead_of_clobbering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let proxy = TokenCache::persistent(&path);
        let mint = TokenCache::persistent(&path);
        let (a, b) = (Token::from_bytes(&[0x32, 1]), Token::from_bytes(&[0x32, 2]));
        proxy.store(key("proxyvideo1"), a.clone(), later(3600));
        proxy.store(key("sharedvideo"), a.clone(), later(3600));
        mint.store(key("mintvideo01"), b.clone(), later(3600));
        mint.store(key("sharedvideo"), b.clone(), later(7200));
        mint.flush();
        proxy.flush();
        assert_eq!(
            file_keys(&path),
            vec!["mintvideo01", "proxyvideo1", "sharedvideo"]
        );
        // The later expiry wins, and the proxy now serves what the mint wrote.
        assert_eq!(proxy.lookup(&key("sharedvideo")).unwrap().token, b);
        assert_eq!(proxy.lookup(&key("mintvideo01")).unwrap().token, b);
        // A token the proxy forgot (refused) is not brought back from the file.
        proxy.forget(&TokenRequest::new(Binding::Video("mintvideo01".into())));
        proxy.flush();
        assert_eq!(file_keys(&path), vec!["proxyvideo1", "sharedvideo"]);
    }

    #[test]
    fn concurrent_writers_lose_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let c = TokenCache::persistent(&path);
                    for i in 0..200 {
                        c.store(
                            key(&format!("w{w}v{i:08}")),
                            Token::from_bytes(&[0x32, 1]),
                            later(3600),
                        );
                        if i % 20 == 0 {
                            c.flush();
                        }
                    }
                    c.flush();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(file_keys(&path).len(), 400);
    }

    #[test]
    fn a_version_1_file_which_may_hold_static_tokens_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let file = |version: u32| {
            format!(
                r#"{{"version":{version},"entries":[{{"kind":"video","binding":"aaaaaaaaaaa","egress":null,"token":"{}","expires_at":{}}}]}}"#,
                Token::from_bytes(&[0x32, 1]).as_str(),
                unix(later(3600))
            )
        };
        std::fs::write(&path, file(1)).unwrap();
        assert_eq!(TokenCache::persistent(&path).stats().entries, 0);
        std::fs::write(&path, file(FILE_VERSION)).unwrap();
        assert_eq!(TokenCache::persistent(&path).stats().entries, 1);
    }

    /// A cache file entry that is out of range or not an entry at all is skipped: the good ones
    /// load and the start goes on (an out-of-range expiry used to panic, junk dropped the file).
    #[test]
    fn bad_entries_in_the_cache_file_are_skipped_and_the_good_ones_load() {
        let tok = Token::from_bytes(&[0x32, 1]);
        let entry = |binding: &str, expires_at: &str| {
            format!(
                r#"{{"kind":"video","binding":"{binding}","egress":null,"token":"{}","expires_at":{expires_at}}}"#,
                tok.as_str()
            )
        };
        let good = entry("aaaaaaaaaaa", &unix(later(3600)).to_string());
        let files: [Vec<String>; 4] = [
            vec![entry("bbbbbbbbbbb", &u64::MAX.to_string())],
            vec![
                entry("ccccccccccc", "1e300"),
                entry("ddddddddddd", "\"soon\""),
            ],
            vec![r#""garbage""#.into(), r#"{"kind":"video"}"#.into()],
            vec![entry("fffffffffff", &unix(later(3600)).to_string()).replace(tok.as_str(), "!!")],
        ];
        for (i, bad) in files.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.json");
            let mut entries = vec![good.clone()];
            entries.extend(bad.iter().cloned());
            std::fs::write(
                &path,
                format!(
                    r#"{{"version":{FILE_VERSION},"entries":[{}]}}"#,
                    entries.join(",")
                ),
            )
            .unwrap();
            let c = TokenCache::persistent(&path);
            let bindings: Vec<String> = c.keys().iter().map(|k| k.binding.clone()).collect();
            assert_eq!(bindings, ["aaaaaaaaaaa"], "file {i}");
        }
    }

    /// An expiry far out but in range (year 5138) is cut back: to the longest TTL on load, to
    /// the service's TTL once it is set, and so in the file.
    #[test]
    fn no_entry_outlives_the_lifetime_cap_in_memory_or_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"version":{FILE_VERSION},"entries":[{{"kind":"video","binding":"eeeeeeeeeee","egress":null,"token":"{}","expires_at":100000000000}}]}}"#,
                Token::from_bytes(&[0x32, 1]).as_str()
            ),
        )
        .unwrap();
        let c = TokenCache::persistent(&path);
        let cap = later(MAX_LIFETIME.as_secs() + 60);
        assert!(c.lookup(&key("eeeeeeeeeee")).unwrap().expires_at <= cap);
        c.cap_lifetime(Duration::from_secs(3600));
        assert!(c.lookup(&key("eeeeeeeeeee")).unwrap().expires_at <= later(3660));
        c.store(
            key("zzzzzzzzzzz"),
            Token::from_bytes(&[0x32, 2]),
            later(1_000_000),
        );
        assert!(c.lookup(&key("zzzzzzzzzzz")).unwrap().expires_at <= later(3660));
        c.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let f: FileFormat = serde_json::from_str(&text).unwrap();
        assert_eq!(f.entries.len(), 2);
        assert!(
            f.entries.iter().all(|e| e.expires_at <= unix(later(3660))),
            "{text}"
        );
    }
}
