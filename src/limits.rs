//! Bounds on what one client or one upstream can hold: the timeouts (`[timeouts]`), the
//! connection cap and descriptor limit (`[limits]`), and the pieces that enforce them on live
//! connections — an idle clock over a socket ([`IdleIo`]), over a response body ([`IdleBody`]),
//! a byte tunnel that closes both sides when neither speaks ([`tunnel`]), and the accept loop's
//! back-off and log throttle. The decisions (what cap, how long to back off, whether to log)
//! are pure functions; the wrappers only keep time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `[timeouts]`: how long each kind of silence is tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// A client socket with no byte either way (before the first request, between keep-alive
    /// requests, after CONNECT, inside TLS), or whose client stops reading a response, is
    /// closed after this long. Waiting for the upstream's answer does not count.
    pub client_idle: Duration,
    /// A blind tunnel with no byte in either direction for this long is closed on both sides.
    pub tunnel_idle: Duration,
    /// Upstream TLS plus response headers must arrive within this; else 504.
    pub upstream_headers: Duration,
    /// An upstream response body silent for this long is aborted (the client sees the abort).
    pub upstream_idle: Duration,
    /// On SIGTERM/SIGINT, in-flight requests and streams get this long to finish.
    pub drain: Duration,
    /// A programmatic shutdown (an embedding application, the tests) waits this long for
    /// in-flight work before closing the browsers.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_idle: Duration::from_secs(60),
            tunnel_idle: Duration::from_secs(600),
            upstream_headers: Duration::from_secs(30),
            upstream_idle: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            shutdown: Duration::from_secs(5),
        }
    }
}

/// `[limits]`: how much the proxy holds at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Client connections served at once; `None` derives the cap from the descriptor limit at
    /// start ([`connection_cap`]).
    pub max_connections: Option<usize>,
    /// Media URLs remembered with the playback they belong to, and sessions' binding regimes
    /// (least recently used dropped first).
    pub sessions: usize,
    /// Visitor data remembered with the account behind it.
    pub identities: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: None,
            sessions: 50_000,
            identities: 10_000,
        }
    }
}

/// Most response bytes an HTTP/1.1 client connection queues in the proxy while its socket is
/// full (hyper's default is 400 KiB). Past this the upstream read pauses, so a slow client
/// holds at most this much here; 64 KiB is four TLS records, enough to keep a fast socket fed.
pub const CLIENT_H1_BUFFER: usize = 64 * 1024;

/// The same bound per HTTP/2 stream (hyper's default is 400 KiB per stream: a thousand streams
/// on one client connection could hold 400 MB).
pub const CLIENT_H2_STREAM_BUFFER: usize = 128 * 1024;

/// Largest read buffer of an upstream HTTP/1.1 connection (hyper's default is 400 KiB).
pub const UPSTREAM_H1_BUFFER: usize = 64 * 1024;

/// Whether to hand freed heap memory back to the system: when the open connections fell to
/// half of the most seen since the last hand-back, and that peak was a real load (a burst of
/// streams leaves glibc's arenas holding their buffers after the connections are gone).
pub fn should_release_memory(peak_since: usize, open_now: usize) -> bool {
    peak_since >= 64 && open_now <= peak_since / 2
}

/// Default connection cap when `[limits] max_connections` is not set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Descriptors kept for everything that is not a client socket (listeners, the token cache,
/// DNS, the minter's fetches, log files).
const RESERVED_FDS: u64 = 64;

/// The connection cap: the configured one, else [`DEFAULT_MAX_CONNECTIONS`] lowered so that
/// every served client can also hold one upstream socket within the descriptor limit — a
/// refused connection is a clear 503, running out of descriptors is not.
pub fn connection_cap(configured: Option<usize>, fd_limit: u64) -> usize {
    if let Some(n) = configured {
        return n;
    }
    let by_fds = fd_limit.saturating_sub(RESERVED_FDS) / 2;
    (by_fds as usize).clamp(8, DEFAULT_MAX_CONNECTIONS)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
pub fn raise_fd_limit() -> io::Result<u64> {
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Ok(lim.rlim_max as u64);
            }
        }
        Ok(lim.rlim_cur as u64)
    }
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> io::Result<u64> {
    Ok(DEFAULT_MAX_CONNECTIONS as u64 * 2)
}

/// How long the accept loop sleeps after its `failures`-th accept error in a row: a process
/// out of descriptors must not spin; the delay doubles from 10 ms up to 1 s.
pub fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1u64 << (failures.clamp(1, 8) - 1));
    Duration::from_millis(ms.min(1000))
}

/// Lets a repeated warning through at most once per interval and counts what it held back.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now (`n` = lines held back since the last one).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The last moment bytes moved on one or more sockets, and how much silence is allowed.
/// Shared by both halves of a tunnel, and handed to the request handler as a
/// [`ClientConn`] so a CONNECT that becomes a blind tunnel can lift the client's idle limit.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    last_ms: AtomicU64,
    /// 0 = no limit.
    idle_ms: AtomicU64,
    /// Requests being served on this connection: while one is, the client waiting for its
    /// response is not idle (the upstream clocks bound it), but a client that stops reading
    /// what is written to it still is.
    busy: AtomicU64,
    /// The connection's own limit, in force again once its last tunnel has ended.
    client_idle_ms: u64,
    /// Blind tunnels running on this connection (HTTP/2 carries several): while one is, the
    /// connection's own clock is lifted, each tunnel keeping its own.
    tunnels: AtomicU64,
}

impl Activity {
    pub fn new(idle: Duration) -> Arc<Self> {
        Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            idle_ms: AtomicU64::new(idle.as_millis() as u64),
            busy: AtomicU64::new(0),
            client_idle_ms: idle.as_millis() as u64,
            tunnels: AtomicU64::new(0),
        })
    }

    /// Marks a request in flight until the returned guard is dropped (with its response body).
    pub fn begin_request(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    fn touch(&self) {
        self.last_ms
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When silence becomes too long, or `None` when there is no limit.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        let idle = self.idle_ms.load(Ordering::Relaxed);
        (idle != 0).then(|| {
            let last = self.last_ms.load(Ordering::Relaxed);
            tokio::time::Instant::from_std(self.base + Duration::from_millis(last + idle))
        })
    }

    /// Replaces the allowed silence (`Duration::ZERO` = none).
    pub fn set_idle(&self, idle: Duration) {
        self.idle_ms
            .store(idle.as_millis() as u64, Ordering::Relaxed);
        self.touch();
    }
}

/// A request in flight on a connection ([`Activity::begin_request`]); dropping it ends it.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The client connection a request arrived on. A CONNECT that turns into a blind tunnel calls
/// [`ClientConn::into_tunnel`], which lifts the client socket's idle limit (the tunnel keeps its
/// own, over both sides) until the [`TunnelOpen`] it returns is dropped.
#[derive(Debug, Clone)]
pub struct ClientConn {
    pub activity: Arc<Activity>,
    pub tunnel_idle: Duration,
}

impl ClientConn {
    /// Stops timing the client socket alone while the returned guard lives; returns the
    /// tunnel's idle limit. The connection's own limit comes back when its last tunnel ends
    /// (an HTTP/2 connection outlives its tunnels).
    pub fn into_tunnel(&self) -> (Duration, TunnelOpen) {
        self.activity.tunnels.fetch_add(1, Ordering::Relaxed);
        self.activity.set_idle(Duration::ZERO);
        (self.tunnel_idle, TunnelOpen(self.activity.clone()))
    }
}

/// A tunnel running on a client connection ([`ClientConn::into_tunnel`]); dropping it ends it.
#[derive(Debug)]
pub struct TunnelOpen(Arc<Activity>);

impl Drop for TunnelOpen {
    fn drop(&mut self) {
        if self.0.tunnels.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0
                .set_idle(Duration::from_millis(self.0.client_idle_ms));
        }
    }
}

#[cfg(test)]
mod tunnel_clock_tests {
    use super::*;

    #[test]
    fn a_connections_own_idle_limit_is_back_once_its_last_tunnel_ends() {
        let conn = ClientConn {
            activity: Activity::new(Duration::from_secs(60)),
            tunnel_idle: Duration::from_secs(600),
        };
        let idle = |c: &ClientConn| c.activity.idle_ms.load(Ordering::Relaxed);
        let (limit, first) = conn.into_tunnel();
        assert_eq!(limit, Duration::from_secs(600));
        let (_, second) = conn.into_tunnel();
        assert_eq!(idle(&conn), 0, "lifted while tunnels run");
        drop(first);
        assert_eq!(idle(&conn), 0, "still lifted: one tunnel runs");
        drop(second);
        assert_eq!(idle(&conn), 60_000, "the connection is timed again");
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle timeout: no bytes moved")
}

/// A socket (or any byte stream) that fails with `TimedOut` once no byte has moved in either
/// direction for the [`Activity`]'s idle limit. The clock is checked only while an operation
/// waits, so it costs nothing on a busy connection.
pub struct IdleIo<I> {
    inner: I,
    activity: Arc<Activity>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<I> IdleIo<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        activity.touch();
        IdleIo {
            inner,
            activity,
            sleep: None,
        }
    }

    /// Called when an operation is pending: `Ready(err)` once the silence is too long. A read
    /// waiting while a request is in flight is not idleness (the client waits for us).
    fn poll_idle(&mut self, cx: &mut Context<'_>, writing: bool) -> Poll<io::Error> {
        if !writing && self.activity.is_busy() {
            return Poll::Pending;
        }
        let Some(deadline) = self.activity.deadline() else {
            self.sleep = None;
            return Poll::Pending;
        };
        match &mut self.sleep {
            Some(s) if s.deadline() == deadline => {}
            Some(s) => s.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let sleep = self.sleep.as_mut().expect("set above");
        ready!(sleep.as_mut().poll(cx));
        // Another half of a shared activity may have moved bytes since the deadline was read.
        let still_idle = writing || !self.activity.is_busy();
        match self.activity.deadline() {
            Some(d) if still_idle && d <= tokio::time::Instant::now() => Poll::Ready(idle_error()),
            _ => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

use std::future::Future;

impl<I: AsyncRead + Unpin> AsyncRead for IdleIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.activity.touch();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, false).map(Err),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.activity.touch();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, true).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.activity.touch();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx, true).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx, true).map(Err),
            r => r,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Copies bytes both ways until either side closes, or until no byte has moved in either
/// direction for `idle` (then both sides are dropped, i.e. closed). Returns the bytes copied
/// (client to server, server to client).
pub async fn tunnel<A, B>(client: A, server: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new(idle);
    let mut a = IdleIo::new(client, activity.clone());
    let mut b = IdleIo::new(server, activity);
    relay(&mut a, &mut b).await
}

/// Buffer per direction of a byte relay. tokio's default of 8 KiB costs a bulk transfer four
/// times the syscalls; 32 KiB keeps an idle tunnel at 64 KiB (`cargo bench --bench proxies`,
/// blind-tunnel column).
pub const RELAY_BUFFER: usize = 32 * 1024;

/// Copies bytes both ways until both sides close; the bytes moved (a to b, b to a).
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy_bidirectional_with_sizes(a, b, RELAY_BUFFER, RELAY_BUFFER).await
}

/// A response body that fails once the upstream has sent nothing for `idle` while the client
/// waits for more: hyper then aborts the response (reset, or a chunked body without its end),
/// so a stalled origin never looks like a complete, shorter response. Time the client itself
/// takes to read does not count: the clock starts only when the body is asked for data it
/// does not have.
pub struct IdleBody<B> {
    inner: B,
    idle: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The request this body answers, in flight until the body is dropped.
    _busy: Option<Busy>,
    /// Counts this response among the server's work in flight (drain, memory hand-back).
    _tracked: Option<tokio_util::task::task_tracker::TaskTrackerToken>,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleBody {
            inner,
            idle,
            sleep: None,
            _busy: None,
            _tracked: None,
        }
    }

    /// Keeps `busy` (the request in flight) until this body is finished with.
    pub fn holding(mut self, busy: Busy) -> Self {
        self._busy = Some(busy);
        self
    }

    /// Keeps `token` (this response, counted in a task tracker) until the body is finished.
    pub fn tracked(mut self, token: tokio_util::task::task_tracker::TaskTrackerToken) -> Self {
        self._tracked = Some(token);
        self
    }
}

impl<B> HttpBody for IdleBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: From<io::Error>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.sleep = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("upstream sent no body bytes for {}s", idle.as_secs()),
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_goes_back_after_a_load_has_halved() {
        assert!(!should_release_memory(10, 0), "no real load");
        assert!(!should_release_memory(1000, 700), "still busy");
        assert!(should_release_memory(1000, 500));
        assert!(should_release_memory(64, 0));
    }

    #[test]
    fn cap_follows_the_descriptor_limit_unless_configured() {
        assert_eq!(connection_cap(Some(10), 256), 10);
        assert_eq!(connection_cap(None, 1024), 480);
        assert_eq!(connection_cap(None, 1 << 20), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_cap(None, 16), 8);
    }

    #[test]
    fn accept_errors_back_off_up_to_a_second() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert!(accept_backoff(5) > accept_backoff(4));
        assert_eq!(accept_backoff(50), Duration::from_secs(1));
    }

    #[test]
    fn throttle_lets_one_line_per_interval_and_counts_the_rest() {
        let mut t = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(11)), Some(2));
    }

    #[tokio::test]
    async fn silent_tunnel_closes_and_busy_one_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (server, mut server_peer) = tokio::io::duplex(64);
        let t = tokio::spawn(tunnel(client, server, Duration::from_millis(300)));
        // Bytes flowing keep it open past the idle limit.
        for _ in 0..5 {
            client_peer.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            server_peer.read_exact(&mut b).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!t.is_finished());
        let r = tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("a silent tunnel is closed")
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
