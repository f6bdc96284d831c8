//! A fleet of nodes sharing what they learn and mint through Redis (or Valkey), configured by
//! `[cluster]` ([`ClusterConfig`]). Owns the connection (redis-rs's connection manager, which
//! reconnects by itself), the key namespace, and the fault rules: every call is bounded by
//! `timeout_ms`; a failed or timed-out call is counted ([`Cluster::failures`]) and answers
//! "unreachable", so callers serve from local state and mint locally; the state change is
//! logged once ("cluster: redis unavailable" / "cluster: redis back"), and while Redis is down
//! only one probe call every [`PROBE_EVERY`] goes out, so a dead Redis costs requests nothing.
//!
//! Nothing read from Redis is trusted: values are read with a size cap (never a whole large
//! value), every shape is checked, and whatever is not ours (a wrong type, junk, an absurd
//! expiry, a claim without TTL) is ignored or repaired, with one warning per kind
//! ([`Cluster::ignored`] counts them). See `docs/fleet.md` for what a hostile store can still do.
//!
//! What is shared ([`tier`]): minted tokens per (binding, egress) with their expiry, single-flight
//! claims, media-URL keys -> playback, observed regimes, visitor -> account, and verdicts about
//! token sources. Integrity tokens and minters stay per node: they live inside a VM or a browser.
//! Without `[cluster]` none of this exists and a node runs alone.

mod tier;
mod verdicts;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use tier::{SetAside, decode_token};
pub use verdicts::FleetRefusals;

/// The key namespace when `[cluster] prefix` is not set.
pub const DEFAULT_PREFIX: &str = "potproxy:";
/// Per-call bound when `[cluster] timeout_ms` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// While Redis is down, how often one call is let through to see whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The `[cluster]` settings, validated.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL, possibly with credentials (never logged: see
    /// [`ClusterConfig::redacted_url`]).
    pub url: String,
    pub prefix: String,
    pub timeout: Duration,
    /// PEM files trusted for `rediss://` (the `[upstream] extra_ca_certs`); empty: the system's
    /// roots.
    pub extra_ca_certs: Vec<PathBuf>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("extra_ca_certs", &self.extra_ca_certs)
            .finish()
    }
}

impl ClusterConfig {
    /// Checks a `[cluster] redis` URL: `redis://` or `rediss://`, a host, an optional numeric
    /// database. The error text never holds the password.
    pub fn check_url(url: &str) -> Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(format!(
                "scheme `{}` is not redis:// or rediss://",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("no host".into());
        }
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(format!("database `{db}` is not a number"));
        }
        Ok(())
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Why the cluster could not be set up (calls themselves never fail: they answer "unreachable").
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redis `{url}`: {source}")]
    Client {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("cluster.redis `{url}`: cannot read CA file {path}: {source}")]
    CaFile {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

struct Inner {
    client: redis::Client,
    url: String,
    prefix: String,
    timeout: Duration,
    conn: Mutex<Option<ConnectionManager>>,
    connecting: AtomicBool,
    state: AtomicU8,
    /// Milliseconds since `epoch` before which no probe goes out while down.
    next_probe: AtomicU64,
    epoch: Instant,
    failures: AtomicU64,
    calls: AtomicU64,
    outages: AtomicU64,
    /// Values read from Redis and ignored (or repaired) because they were not ours.
    ignored: AtomicU64,
    /// The kinds of ignored value already warned about (one warning each).
    warned: Mutex<HashSet<&'static str>>,
}

/// A call's outcome where a live server's "no" (a wrong type, a script error, a reply that
/// does not convert) must be told apart from an absent server.
enum Reply<T> {
    Value(T),
    Refused,
    Unreachable,
}

/// The node's handle on the fleet's Redis. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.inner.url)
            .field("available", &self.available())
            .finish()
    }
}

impl Cluster {
    /// Sets up the client and connects, waiting at most a few timeouts for the first
    /// connection; when Redis is not there yet the node starts alone and connects in the
    /// background. Must run inside a tokio runtime.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Cluster, ClusterError> {
        let url = cfg.redacted_url();
        let client = if cfg.url.starts_with("rediss://") && !cfg.extra_ca_certs.is_empty() {
            let mut pem = Vec::new();
            for path in &cfg.extra_ca_certs {
                let bytes = std::fs::read(path).map_err(|source| ClusterError::CaFile {
                    url: url.clone(),
                    path: path.clone(),
                    source,
                })?;
                pem.extend_from_slice(&bytes);
                pem.push(b'\n');
            }
            redis::Client::build_with_tls(
                cfg.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
        } else {
            redis::Client::open(cfg.url.as_str())
        }
        .map_err(|source| ClusterError::Client {
            url: url.clone(),
            source,
        })?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                url,
                prefix: cfg.prefix.clone(),
                timeout: cfg.timeout,
                conn: Mutex::new(None),
                connecting: AtomicBool::new(false),
                state: AtomicU8::new(UNKNOWN),
                next_probe: AtomicU64::new(0),
                epoch: Instant::now(),
                failures: AtomicU64::new(0),
                calls: AtomicU64::new(0),
                outages: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                warned: Mutex::new(HashSet::new()),
            }),
        };
        let first = cluster.clone();
        let wait = (cfg.timeout * 10).max(Duration::from_secs(1));
        if tokio::time::timeout(wait, first.try_connect())
            .await
            .is_err()
        {
            cluster.mark_down("no connection at start-up");
        }
        if cluster.conn().is_none() {
            cluster.spawn_connector();
        }
        Ok(cluster)
    }

    /// Redis calls that failed or timed out since start (for `/metrics`).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// How many times Redis became unavailable (each logged once) since start.
    pub fn outages(&self) -> u64 {
        self.inner.outages.load(Ordering::Relaxed)
    }

    /// Redis calls attempted since start.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Values read from Redis that were ignored or repaired (a wrong type, junk, oversized, an
    /// absurd expiry, a claim without TTL) since start.
    pub fn ignored(&self) -> u64 {
        self.inner.ignored.load(Ordering::Relaxed)
    }

    /// Counts a value of kind `what` that is not ours; warns the first time per kind (the
    /// key is not logged: keys hold visitor data).
    fn ignore(&self, what: &'static str, why: &str) {
        self.inner.ignored.fetch_add(1, Ordering::Relaxed);
        let first = self
            .inner
            .warned
            .lock()
            .expect("cluster warned lock")
            .insert(what);
        if first {
            tracing::warn!(redis = %self.inner.url, kind = what, reason = why, "cluster: ignoring a value in redis that potproxy did not write (further ones of this kind are logged at debug)");
        } else {
            tracing::debug!(
                kind = what,
                reason = why,
                "cluster: ignoring a value in redis"
            );
        }
    }

    /// Whether the last call reached Redis.
    pub fn available(&self) -> bool {
        self.inner.state.load(Ordering::Relaxed) == UP
    }

    /// The Redis URL with any password redacted.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// `prefix` + `name`: every key lives in the configured namespace.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    fn conn(&self) -> Option<ConnectionManager> {
        self.inner.conn.lock().expect("cluster conn lock").clone()
    }

    async fn try_connect(self) -> bool {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.inner.timeout.max(Duration::from_millis(500)))
            .set_response_timeout(self.inner.timeout)
            .set_number_of_retries(2)
            .set_max_delay(1000);
        match self
            .inner
            .client
            .get_connection_manager_with_config(config)
            .await
        {
            Ok(cm) => {
                *self.inner.conn.lock().expect("cluster conn lock") = Some(cm);
                self.mark_up();
                true
            }
            Err(e) => {
                self.mark_down(&e.to_string());
                false
            }
        }
    }

    /// Keeps trying to make the first connection (later reconnects are the manager's).
    fn spawn_connector(&self) {
        if self.inner.connecting.swap(true, Ordering::SeqCst) {
            return;
        }
        // Weak: a node that shuts down while Redis is away must not leave this loop behind.
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let me = Cluster { inner };
                if me.clone().try_connect().await {
                    me.inner.connecting.store(false, Ordering::SeqCst);
                    return;
                }
                drop(me);
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
    }

    fn mark_up(&self) {
        match self.inner.state.swap(UP, Ordering::SeqCst) {
            DOWN => {
                tracing::warn!(redis = %self.inner.url, failed_calls = self.failures(), "cluster: redis back; sharing resumed")
            }
            UNKNOWN => tracing::info!(redis = %self.inner.url, "cluster: connected to redis"),
            _ => {}
        }
    }

    fn mark_down(&self, why: &str) {
        self.schedule_probe();
        if self.inner.state.swap(DOWN, Ordering::SeqCst) != DOWN {
            self.inner.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(redis = %self.inner.url, reason = %why, "cluster: redis unavailable; serving from local state and minting locally until it is back");
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn schedule_probe(&self) {
        let at = self.now_ms().saturating_add(PROBE_EVERY.as_millis() as u64);
        self.inner.next_probe.store(at, Ordering::SeqCst);
    }

    /// Whether a call may go out now: always while up; while down, one probe per
    /// [`PROBE_EVERY`].
    fn may_call(&self) -> bool {
        if self.inner.state.load(Ordering::Relaxed) != DOWN {
            return true;
        }
        let now = self.now_ms();
        let due = self.inner.next_probe.load(Ordering::SeqCst);
        now >= due
            && self
                .inner
                .next_probe
                .compare_exchange(
                    due,
                    now.saturating_add(PROBE_EVERY.as_millis() as u64),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
    }

    /// Runs one command within the timeout: `None` when Redis is down, slow or refused it.
    async fn run<T: redis::FromRedisValue>(&self, what: &str, cmd: redis::Cmd) -> Option<T> {
        self.call(what, cmd).await.value()
    }

    /// [`run`](Self::run), telling a refusal from a live server apart from an absent server.
    async fn call<T: redis::FromRedisValue>(&self, what: &str, cmd: redis::Cmd) -> Reply<T> {
        let Some(mut conn) = self.ready() else {
            return Reply::Unreachable;
        };
        let res = tokio::time::timeout(self.inner.timeout, cmd.query_async::<T>(&mut conn)).await;
        self.settle_reply(what, res)
    }

    /// [`call`](Self::call) for a pipeline.
    async fn call_pipe<T: redis::FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Reply<T> {
        let Some(mut conn) = self.ready() else {
            return Reply::Unreachable;
        };
        let res = tokio::time::timeout(self.inner.timeout, pipe.query_async::<T>(&mut conn)).await;
        self.settle_reply(what, res)
    }

    /// Runs a script within the timeout (see [`run`](Self::run)).
    async fn run_script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        self.call_script(what, invocation).await.value()
    }

    /// [`run_script`](Self::run_script), telling a refusal apart from an absent server.
    async fn call_script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Reply<T> {
        let Some(mut conn) = self.ready() else {
            return Reply::Unreachable;
        };
        let res =
            tokio::time::timeout(self.inner.timeout, invocation.invoke_async::<T>(&mut conn)).await;
        self.settle_reply(what, res)
    }

    fn ready(&self) -> Option<ConnectionManager> {
        if !self.may_call() {
            return None;
        }
        let Some(conn) = self.conn() else {
            self.spawn_connector();
            return None;
        };
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        Some(conn)
    }

    fn settle<T>(
        &self,
        what: &str,
        res: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        self.settle_reply(what, res).value()
    }

    fn settle_reply<T>(
        &self,
        what: &str,
        res: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Reply<T> {
        match res {
            Ok(Ok(v)) => {
                self.mark_up();
                Reply::Value(v)
            }
            Ok(Err(e)) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(op = what, error = %e, "cluster: redis call failed");
                // A refusal from a live server (a wrong type, a script error) is not an outage.
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                {
                    self.mark_down(&e.to_string());
                    return Reply::Unreachable;
                }
                Reply::Refused
            }
            Err(_) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                self.mark_down(&format!(
                    "{what}: no answer within {:?}",
                    self.inner.timeout
                ));
                Reply::Unreachable
            }
        }
    }

    /// Runs `cmd` in the background: learning and publishing never wait for Redis.
    fn fire(&self, what: &'static str, cmd: redis::Cmd) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let _: Option<redis::Value> = me.run(what, cmd).await;
        });
    }
}

impl<T> Reply<T> {
    fn value(self) -> Option<T> {
        match self {
            Reply::Value(v) => Some(v),
            Reply::Refused | Reply::Unreachable => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert!(ClusterConfig::check_url("redis://127.0.0.1:6379").is_ok());
        assert!(ClusterConfig::check_url("rediss://u:p@redis.example:6380/2").is_ok());
        assert!(ClusterConfig::check_url("http://redis.example").is_err());
        assert!(ClusterConfig::check_url("redis://host:6379/db").is_err());
        assert!(ClusterConfig::check_url("not a url").is_err());
        let cfg = ClusterConfig {
            url: "redis://user:hunter2@redis.example:6379/0".into(),
            prefix: DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
            extra_ca_certs: vec![],
        };
        assert!(!cfg.redacted_url().contains("hunter2"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert!(cfg.redacted_url().contains("user:***@"));
    }

    #[tokio::test]
    async fn an_absent_redis_answers_unreachable_quickly_and_counts_failures() {
        // A port nothing listens on: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = ClusterConfig {
            url: format!("redis://:secret@127.0.0.1:{port}"),
            prefix: DEFAULT_PREFIX.into(),
            timeout: Duration::from_millis(100),
            extra_ca_certs: vec![],
        };
        let c = Cluster::connect(&cfg).await.unwrap();
        assert!(!c.available());
        let started = Instant::now();
        for _ in 0..100 {
            let v: Option<String> = c.run("get", redis::Cmd::get("k")).await;
            assert!(v.is_none());
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            c.outages(),
            1,
            "one outage, logged once, however many calls"
        );
        assert!(!format!("{c:?}").contains("secret"));
    }
}
