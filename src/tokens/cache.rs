//! The token cache: (binding, egress) -> token with its expiry, single-flight locks so
//! concurrent first requests mint once, and persistence to a JSON file (mode 0600, atomic
//! replace) so a restart serves warm.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Issued, Provenance, TokenRequest};
use crate::token::{Binding, Token};
use crate::upstream::Egress;

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
        // Credentials and spelling of the proxy URL do not make a different egress.
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

/// Counters for logs and `/minter_cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// A cached token, its expiry, and where it came from.
type Cached = (Token, SystemTime, Option<Provenance>);

struct Inner {
    /// Each token with its expiry and, for tokens minted by this process, where it came from.
    entries: Mutex<HashMap<Key, Cached>>,
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    file: Option<PathBuf>,
    write_lock: Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
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

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenCache {
    fn with_file(file: Option<PathBuf>) -> Self {
        TokenCache {
            inner: Arc::new(Inner {
                entries: Mutex::new(HashMap::new()),
                flights: Mutex::new(HashMap::new()),
                file,
                write_lock: Mutex::new(()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    pub fn in_memory() -> Self {
        Self::with_file(None)
    }

    /// A cache persisted to `path`; existing unexpired entries are loaded. A missing file is
    /// an empty cache; an unreadable one is logged and replaced on the next write.
    pub fn persistent(path: &Path) -> Self {
        let cache = Self::with_file(Some(path.to_path_buf()));
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<FileFormat>(&bytes) {
                Ok(f) => {
                    let now = unix(SystemTime::now());
                    let mut map = cache.inner.entries.lock().expect("entries lock");
                    for e in f.entries.into_iter().filter(|e| e.expires_at > now) {
                        if let Ok(t) = Token::parse(&e.token) {
                            map.insert(
                                e.key,
                                (t, UNIX_EPOCH + Duration::from_secs(e.expires_at), None),
                            );
                        }
                    }
                    tracing::info!(path = %path.display(), entries = map.len(), "token cache loaded");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "token cache file unreadable; starting empty")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read token cache file")
            }
        }
        cache
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
        {
            let mut map = self.inner.entries.lock().expect("entries lock");
            let now = SystemTime::now();
            map.retain(|_, (_, exp, _)| *exp > now);
            map.insert(key, (token, expires_at, provenance));
        }
        self.persist();
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
            self.persist();
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
            self.persist();
        }
    }

    pub fn clear(&self) {
        self.inner.entries.lock().expect("entries lock").clear();
        self.persist();
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

    /// Writes the cache file now (one-shot commands call this before exiting).
    pub fn flush(&self) {
        if let Some(path) = self.inner.file.clone() {
            Self::write_file(&self.inner, &path);
        }
    }

    fn write_file(inner: &Inner, path: &Path) {
        let _serial = inner.write_lock.lock().expect("write lock");
        let entries: Vec<Entry> = inner
            .entries
            .lock()
            .expect("entries lock")
            .iter()
            .map(|(k, (t, exp, _))| Entry {
                key: k.clone(),
                token: t.as_str().to_string(),
                expires_at: unix(*exp),
            })
            .collect();
        let body = serde_json::to_vec_pretty(&FileFormat {
            version: 1,
            entries,
        })
        .expect("cache entries serialise");
        if let Err(e) = write_private(path, &body) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write token cache file");
        }
    }

    fn persist(&self) {
        let Some(path) = self.inner.file.clone() else {
            return;
        };
        let inner = self.inner.clone();
        let write = move || Self::write_file(&inner, &path);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

/// Writes `data` to `path` atomically (temp file + rename), readable by the owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
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

    #[test]
    fn the_egress_key_ignores_credentials_and_spelling_and_is_stored_as_text() {
        let via = |text: &str| {
            Key::of(&TokenRequest {
                egress: Some(Egress::parse(text).unwrap()),
                ..TokenRequest::new(Binding::Video("aaaaaaaaaaa".into()))
            })
            .unwrap()
        };
        let k = via("http://user:secret@proxy.example:3128");
        assert_eq!(k, via("proxy.example:3128"));
        assert_ne!(k, key("aaaaaaaaaaa"));
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(json["egress"], "http://proxy.example:3128");
    }

    #[test]
    fn unbound_requests_have_no_key() {
        assert!(Key::of(&TokenRequest::new(Binding::Unknown)).is_none());
    }
}
