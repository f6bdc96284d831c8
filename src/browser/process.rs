//! One running Chromium that only potproxy can drive: started in its own process group with a
//! private profile directory, driven over DevTools through a pipe (no TCP port), killed with its
//! whole process group (renderers, zygotes, GPU and network services) when dropped or when
//! potproxy dies, and swept away at the next start when potproxy was killed before it could
//! clean up. Also reads its memory from /proc.
//!
//! DevTools: Chromium is started with `--remote-debugging-pipe`, so it reads CDP commands from
//! its fd 3 and writes answers and events to its fd 4, each a JSON text ended by a NUL byte; it
//! opens no TCP port and writes no `DevToolsActivePort` file. chromiumoxide 0.9 only speaks
//! WebSocket (its connection type is fixed to a TCP WebSocket and its handler cannot be built
//! around another transport), so [`bridge`] relays in-process: a WebSocket server on
//! 127.0.0.1 whose path carries a random 128-bit secret accepts exactly one connection with that
//! path (anything else is refused and logged), stops listening at once, and relays text frames to
//! and from the pipes. The port is closed before launch returns, so before any page loads.
//!
//! Profiles live under a profile root (`[tokens.browser] profile_root`, by default
//! `<state dir>/browser`), 0700, each named `<pid>-<start>-<n>`: potproxy's pid, its start time
//! (clock ticks since boot, so a reused pid is not mistaken for the owner) and a counter.
//! [`sweep_orphans`] removes, at start, the profiles and browsers whose potproxy is gone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::handler::HandlerConfig;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_util::task::AbortOnDropHandle;

use super::{BrowserError, launch_args};

/// A launched browser. Dropping it kills the process group and removes the profile.
pub struct BrowserProcess {
    pub browser: Browser,
    pid: u32,
    profile: PathBuf,
    child: tokio::process::Child,
    handler: tokio::task::JoinHandle<()>,
    _bridge: AbortOnDropHandle<()>,
    liveness: Liveness,
}

/// Whether a browser still runs, checkable without holding it: its main process exists (not a
/// zombie) and its DevTools connection is open. A CDP command sent to a browser that died may
/// never be answered, so waits race against [`Liveness::died`].
#[derive(Clone)]
pub struct Liveness {
    pid: u32,
    closed: Arc<AtomicBool>,
}

impl Liveness {
    pub fn is_alive(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && process_runs(self.pid)
    }

    /// Resolves once the browser is gone (checked every 100 ms).
    pub async fn died(&self) {
        while self.is_alive() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `pid` exists and is not a zombie.
fn process_runs(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f.first().map(String::as_str), Some("Z" | "X")))
}

/// The fields of /proc/<pid>/stat after the command name (the first is the state, field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// When `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat).
fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

impl BrowserProcess {
    /// Starts `exe` with a new profile under `profile_root` and connects to it within
    /// `timeout`.
    pub async fn launch(
        exe: &Path,
        extra_args: &[String],
        profile_root: &Path,
        timeout: Duration,
    ) -> Result<BrowserProcess, BrowserError> {
        let launch_err = |reason: String| BrowserError::Launch {
            exe: exe.display().to_string(),
            reason,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let profile = new_profile(profile_root).map_err(|e| {
            launch_err(format!(
                "profile directory under {}: {e}",
                profile_root.display()
            ))
        })?;
        // From here a failure drops the guard: process group killed, profile gone.
        let mut guard = Cleanup {
            pid: 0,
            profile: Some(profile.clone()),
        };
        let root = rustix::process::geteuid().is_root();
        if let Some(why) = unsandboxed(root, extra_args) {
            if !NO_SANDBOX_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("{why}");
            }
        }
        // Pipe ends: Chromium reads commands from `cmd_r` (its fd 3) and writes to `out_w` (its
        // fd 4); potproxy keeps `cmd_w` and `out_r`.
        let (cmd_r, cmd_w) = cloexec_pipe().map_err(|e| launch_err(format!("pipe: {e}")))?;
        let (out_r, out_w) = cloexec_pipe().map_err(|e| launch_err(format!("pipe: {e}")))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(launch_args(&profile, root, extra_args))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // Its own group: the whole tree can be killed at once, and a Ctrl-C at the terminal
            // reaches potproxy, which then closes the browser itself.
            .process_group(0)
            .kill_on_drop(true);
        let setup = child_setup(cmd_r.as_raw_fd(), out_w.as_raw_fd(), std::process::id());
        // SAFETY: `setup` only makes async-signal-safe system calls (fcntl, dup2, prctl,
        // getppid) and allocates nothing, as required between fork and exec.
        unsafe {
            cmd.pre_exec(setup);
        }
        let mut child = spawn_on_launcher_thread(cmd)
            .await
            .map_err(|e| launch_err(e.to_string()))?;
        // The child has its copies; ours would hide its exit (no EOF on `out_r`).
        drop((cmd_r, out_w));
        let pid = child.id().unwrap_or(0);
        guard.pid = pid;
        let last_stderr = drain_stderr(child.stderr.take().expect("stderr piped"));
        let to_browser =
            pipe::Sender::from_owned_fd(cmd_w).map_err(|e| launch_err(e.to_string()))?;
        let from_browser =
            pipe::Receiver::from_owned_fd(out_r).map_err(|e| launch_err(e.to_string()))?;
        let (url, bridge) = bridge(to_browser, from_browser)
            .await
            .map_err(|e| launch_err(format!("DevTools bridge: {e}")))?;
        let config = HandlerConfig {
            // Keep the browser's own window metrics; chromiumoxide would emulate 800x600.
            viewport: None,
            ignore_https_errors: false,
            request_timeout: timeout,
            // Every page pauses every request (CDP Fetch, pattern `*`); the minter answers
            // them through potproxy's upstream client.
            request_intercept: true,
            ..HandlerConfig::default()
        };
        let (browser, mut handler) =
            tokio::time::timeout_at(deadline, Browser::connect_with_config(url, config))
                .await
                .map_err(|_| {
                    launch_err(format!("DevTools connection not ready within {timeout:?}"))
                })?
                .map_err(|e| launch_err(format!("DevTools: {e}")))?;
        let closed = Arc::new(AtomicBool::new(false));
        let liveness = Liveness {
            pid,
            closed: closed.clone(),
        };
        let handler = tokio::spawn(async move {
            while let Some(r) = handler.next().await {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "DevTools handler");
                }
            }
            closed.store(true, Ordering::Relaxed);
        });
        let handler = AbortOnDropHandle::new(handler);
        // The pipe is buffered: connecting proves nothing about the browser. One round trip
        // does; a browser that exits first is reported with its last words.
        let ready = tokio::select! {
            r = tokio::time::timeout_at(deadline, browser.version()) => match r {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("DevTools: {e}")),
                Err(_) => Err(format!("no DevTools answer within {timeout:?}")),
            },
            _ = liveness.died() => Err(format!(
                "exited before DevTools was ready: {}",
                last_stderr.lock().expect("stderr lock")
            )),
        };
        ready.map_err(launch_err)?;
        // Launched: the process is owned by the returned value from here on.
        guard.pid = 0;
        guard.profile = None;
        tracing::info!(pid, exe = %exe.display(), "browser started");
        Ok(BrowserProcess {
            browser,
            pid,
            profile,
            child,
            handler: handler.detach(),
            _bridge: bridge,
            liveness,
        })
    }

    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// False once the process exited or the DevTools connection ended.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && !self.handler.is_finished()
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        self.handler.abort();
        kill_tree(self.pid, Some(&self.profile));
        let _ = self.child.start_kill();
        // Reap it so it does not linger as a zombie; it is SIGKILLed, so this is quick.
        let _ = self.child.try_wait();
        tracing::info!(pid = self.pid, "browser stopped");
    }
}

static NO_SANDBOX_WARNED: AtomicBool = AtomicBool::new(false);

/// Why the browser runs without Chromium's sandbox, if it does (warned once per process): as
/// root, where Chromium refuses it, or because `--no-sandbox` is in `[tokens.browser] args`.
pub fn unsandboxed(root: bool, extra_args: &[String]) -> Option<&'static str> {
    if root {
        Some(
            "running as root: Chromium refuses its sandbox as root, so it runs with \
             --no-sandbox; run potproxy as an unprivileged user to keep the sandbox",
        )
    } else if extra_args.iter().any(|a| a == "--no-sandbox") {
        Some(
            "--no-sandbox is in [tokens.browser] args: Chromium runs without its sandbox, so a \
             compromised renderer is not contained",
        )
    } else {
        None
    }
}

/// Kills a half-started browser and removes its profile when launch fails.
struct Cleanup {
    pid: u32,
    profile: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_tree(self.pid, self.profile.as_deref());
    }
}

/// SIGKILL to the process group (pid 0: nothing), then to any process still naming our profile directory (one
/// that left the group), then removes the profile.
fn kill_tree(pid: u32, profile: Option<&Path>) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
    if let Some(profile) = profile {
        let needle = format!("--user-data-dir={}", profile.display());
        for stray in pids_with_arg(&needle) {
            kill(stray);
        }
        let _ = std::fs::remove_dir_all(profile);
    }
}

fn kill(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok())
}

// ---------------------------------------------------------------------------------------------
// Starting the process: pipes on fds 3 and 4, death with potproxy.
// ---------------------------------------------------------------------------------------------

/// A pipe whose both ends close on exec, so no other child inherits them: `(read, write)`.
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What the child runs between fork and exec: `commands` on fd 3 and `output` on fd 4 (as
/// `--remote-debugging-pipe` expects), and SIGKILL when its parent dies. Copies go above 10
/// first, so no `dup2` overwrites the other end; `dup2` clears close-on-exec on fds 3 and 4 only.
///
/// The parent-death signal fires when the *thread* that forked exits, not only the process:
/// [`spawn_on_launcher_thread`] therefore forks from one thread that lives as long as potproxy.
/// If potproxy died between fork and `prctl`, no signal would come, so the child checks its
/// parent is still potproxy and gives up otherwise.
fn child_setup(
    commands: RawFd,
    output: RawFd,
    parent: u32,
) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
    move || {
        // SAFETY: plain system calls on descriptors this process holds; no allocation.
        unsafe {
            let c = libc::fcntl(commands, libc::F_DUPFD_CLOEXEC, 10);
            let o = libc::fcntl(output, libc::F_DUPFD_CLOEXEC, 10);
            if c < 0 || o < 0 || libc::dup2(c, 3) < 0 || libc::dup2(o, 4) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    }
}

struct SpawnJob {
    cmd: tokio::process::Command,
    runtime: tokio::runtime::Handle,
    done: tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>,
}

/// Spawns `cmd` from potproxy's browser launcher thread, started on first use and never
/// stopped, so the parent-death signal set in [`child_setup`] fires only when potproxy itself
/// dies. (Spawning from a tokio worker would tie the browser's life to that thread: worker
/// threads are replaced after `block_in_place`, blocking-pool threads exit when idle.) The
/// child is registered with the caller's runtime, which reaps it.
async fn spawn_on_launcher_thread(
    cmd: tokio::process::Command,
) -> io::Result<tokio::process::Child> {
    static LAUNCHER: OnceLock<Mutex<Option<std::sync::mpsc::Sender<SpawnJob>>>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        let started = std::thread::Builder::new()
            .name("browser-launcher".into())
            .spawn(move || {
                for mut job in rx {
                    let _in_runtime = job.runtime.enter();
                    let _ = job.done.send(job.cmd.spawn());
                }
            });
        Mutex::new(started.ok().map(|_| tx))
    });
    let (done, result) = tokio::sync::oneshot::channel();
    let job = SpawnJob {
        cmd,
        runtime: tokio::runtime::Handle::current(),
        done,
    };
    let sent = launcher
        .lock()
        .expect("launcher lock")
        .as_ref()
        .map(|tx| tx.send(job).is_ok());
    if sent != Some(true) {
        return Err(io::Error::other(
            "the browser launcher thread could not be started",
        ));
    }
    result
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the browser launcher thread is gone")))
}

/// Drains the browser's stderr (a full pipe would block it) into trace logs; the last
/// non-empty line is kept for launch errors.
fn drain_stderr(stderr: tokio::process::ChildStderr) -> Arc<Mutex<String>> {
    let last = Arc::new(Mutex::new(String::new()));
    let keep = last.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::trace!(target: "potproxy::browser::stderr", "{l}");
            if !l.trim().is_empty() {
                *keep.lock().expect("stderr lock") = l;
            }
        }
    });
    last
}

// ---------------------------------------------------------------------------------------------
// The DevTools bridge: one WebSocket client, the pipes.
// ---------------------------------------------------------------------------------------------

/// Largest single message relayed from the browser; a browser that sends more without a NUL is
/// broken and its connection is ended.
const MAX_PIPE_MESSAGE: u64 = 512 << 20;
/// How long a connection to the bridge may take over its WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the bridge between a WebSocket on 127.0.0.1 and the browser's pipes. Returns the one
/// URL it serves (its path holds a random 128-bit secret; never logged) and its task, which
/// ends when either side closes.
pub(crate) async fn bridge(
    to_browser: pipe::Sender,
    from_browser: pipe::Receiver,
) -> io::Result<(String, AbortOnDropHandle<()>)> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
    let path = format!(
        "/devtools/browser/{}",
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("ws://{}{path}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        if let Some(ws) = accept_one(listener, &path).await {
            relay(ws, to_browser, from_browser).await;
        }
    });
    Ok((url, AbortOnDropHandle::new(task)))
}

type BridgeSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Accepts connections until one completes the WebSocket handshake on `path`, then closes the
/// listener (dropped here) and abandons every other handshake. Handshakes run side by side so a
/// connection that stalls cannot hold the real one back.
async fn accept_one(listener: tokio::net::TcpListener, path: &str) -> Option<BridgeSocket> {
    let (won_tx, mut won_rx) = tokio::sync::mpsc::channel::<BridgeSocket>(1);
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (path, won) = (path.to_string(), won_tx.clone());
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &path)).await {
                            Ok(Ok(ws)) => {
                                let _ = won.try_send(ws);
                            }
                            Ok(Err(e)) => tracing::warn!(
                                %peer,
                                error = %e,
                                "refused a connection to the browser's DevTools bridge"
                            ),
                            Err(_) => tracing::warn!(
                                %peer,
                                "refused a connection to the browser's DevTools bridge: no handshake within 5 s"
                            ),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DevTools bridge: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(ws) = won_rx.recv() => {
                drop(listener);
                handshakes.abort_all();
                return Some(ws);
            }
        }
    }
}

/// The server side of the WebSocket handshake, refusing (404) any path but `path`.
// The callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn handshake(
    stream: tokio::net::TcpStream,
    path: &str,
) -> Result<BridgeSocket, tokio_tungstenite::tungstenite::Error> {
    let check = |req: &Request, res: Response| -> Result<Response, ErrorResponse> {
        if same_secret(req.uri().path().as_bytes(), path.as_bytes()) {
            return Ok(res);
        }
        let mut refused = ErrorResponse::new(Some("not found".into()));
        *refused.status_mut() = http::StatusCode::NOT_FOUND;
        Err(refused)
    };
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await
}

/// Equality that takes as long whatever the first differing byte is, so the secret cannot be
/// guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Relays until either side ends: each WebSocket text frame is written to the browser followed
/// by a NUL; each NUL-ended message the browser writes becomes one text frame. When the browser
/// closes its pipe (it exited) the WebSocket is closed, so chromiumoxide's handler ends; when
/// the WebSocket ends, the pipe to the browser is closed, and Chromium exits on its own.
async fn relay(ws: BridgeSocket, mut to_browser: pipe::Sender, from_browser: pipe::Receiver) {
    let (mut sink, mut stream) = ws.split();
    let down = async {
        while let Some(Ok(msg)) = stream.next().await {
            let mut bytes = match msg {
                Message::Text(t) => Vec::from(t.as_bytes()),
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            bytes.push(0);
            if to_browser.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let up = async {
        let mut reader = BufReader::new(from_browser);
        loop {
            let mut buf = Vec::new();
            match (&mut reader)
                .take(MAX_PIPE_MESSAGE)
                .read_until(0, &mut buf)
                .await
            {
                Ok(_) if buf.last() == Some(&0) => {
                    buf.pop();
                    let text = String::from_utf8(buf)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Ok(n) => {
                    if n as u64 >= MAX_PIPE_MESSAGE {
                        tracing::warn!("the browser sent a DevTools message over 512 MiB; closing");
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles: private, owned, swept.
// ---------------------------------------------------------------------------------------------

/// The potproxy process a profile belongs to, from its directory name `<pid>-<start>-<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    /// This potproxy.
    fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_ticks(pid).unwrap_or(0),
        }
    }

    /// Whether this potproxy still runs: the pid exists, is not a zombie, and started when the
    /// profile's name says (a reused pid is another process).
    fn alive(self) -> bool {
        process_runs(self.pid) && start_ticks(self.pid) == Some(self.start)
    }
}

/// The owner named by a profile directory's name; `None` for a name potproxy does not make
/// (such a directory is never touched).
pub fn profile_owner(name: &str) -> Option<Owner> {
    let mut parts = name.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let _n: u64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(Owner { pid, start })
}

/// The profile name a browser's `--user-data-dir=` argument names under `root`, if any.
pub fn profile_in_root<'a>(arg: &'a str, root: &str) -> Option<&'a str> {
    let dir = arg.strip_prefix("--user-data-dir=")?;
    let rest = dir.strip_prefix(root)?.strip_prefix('/')?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// What is wrong with a profile root, from its metadata and its parent's mode; `None` when it
/// may hold profiles: a real directory (not a symlink) owned by the user potproxy runs as,
/// whose parent no other user can rename it out of (not group- or world-writable, or sticky
/// like /tmp). A group- or world-readable root is tightened, not refused.
pub fn root_problem(
    is_dir: bool,
    owner_uid: u32,
    euid: u32,
    parent_mode: u32,
) -> Option<&'static str> {
    if !is_dir {
        return Some("not a directory (a symlink is refused)");
    }
    if owner_uid != euid {
        return Some("owned by another user");
    }
    if parent_mode & 0o022 != 0 && parent_mode & 0o1000 == 0 {
        return Some("its parent directory is writable by other users");
    }
    None
}

/// Creates a new private (0700) profile directory under `root`, the root itself made private
/// first.
fn new_profile(root: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    crate::fsutil::create_private_dir(root)?;
    let meta = std::fs::symlink_metadata(root)?;
    let parent_mode = root
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.mode());
    let euid = rustix::process::geteuid().as_raw();
    if let Some(problem) = root_problem(meta.is_dir(), meta.uid(), euid, parent_mode) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, problem));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    let me = Owner::me();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("{}-{}-{n}", me.pid, me.start));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                // The umask can only remove bits; set exactly 0700 whatever it is.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What [`sweep_orphans`] cleaned up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Browser processes killed (every process of an orphaned browser counts).
    pub processes: usize,
    /// Profile directories removed.
    pub profiles: usize,
}

/// Cleans up after a potproxy that died without doing so (SIGKILL, OOM kill, power cut):
/// kills every process whose `--user-data-dir` is a profile under `root` whose potproxy is
/// gone, then removes those profiles. Profiles of a potproxy that still runs (another instance
/// sharing the root) and directories potproxy did not name are left alone. Logs one line.
pub fn sweep_orphans(root: &Path) -> Swept {
    let mut swept = Swept::default();
    let Some(root_text) = root.to_str() else {
        return swept;
    };
    let stale = |name: &str| profile_owner(name).is_some_and(|o| !o.alive());
    let mut killed = Vec::new();
    for (pid, args) in command_lines() {
        let orphan = args
            .iter()
            .any(|a| profile_in_root(a, root_text).is_some_and(stale));
        if orphan && kill(pid) {
            // The browser leads its own process group; its children rewrite their command
            // lines (space-joined), so they are found through the group, not by their args.
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
            }
            killed.push(pid);
        }
    }
    swept.processes = killed.len();
    // Killed processes stop at once; give the kernel a moment to tear them down before their
    // profile goes, so none writes into it again.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while killed.iter().any(|p| process_runs(*p)) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_str().is_some_and(stale) && std::fs::remove_dir_all(e.path()).is_ok() {
                swept.profiles += 1;
            }
        }
    }
    if swept != Swept::default() {
        tracing::info!(
            root = %root.display(),
            processes_killed = swept.processes,
            profiles_removed = swept.profiles,
            "removed the browsers and profiles of a potproxy that is gone"
        );
    } else {
        tracing::debug!(root = %root.display(), "no orphaned browsers or profiles");
    }
    swept
}

/// Every readable process's command line, split into arguments.
fn command_lines() -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let args = cmd
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push((pid, args));
        }
    }
    out
}

/// Waits until no process names `profile` any more (a killed browser's processes linger while
/// the kernel tears them down), at most `within`; returns whether they are all gone.
pub async fn wait_gone(profile: &Path, within: Duration) -> bool {
    let arg = format!("--user-data-dir={}", profile.display());
    let deadline = tokio::time::Instant::now() + within;
    while !pids_with_arg(&arg).is_empty() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Pids of processes whose command line contains `arg` exactly as one argument.
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    command_lines()
        .into_iter()
        .filter(|(_, args)| args.iter().any(|a| a == arg))
        .map(|(pid, _)| pid)
        .collect()
}

/// `(pid, ppid, rss bytes)` of every process (from /proc/<pid>/stat and status).
fn processes() -> Vec<(u32, u32, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        let ppid = fields.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let rss_kb = std::fs::read_to_string(e.path().join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
            })
            .unwrap_or(0u64);
        out.push((pid, ppid, rss_kb * 1024));
    }
    out
}

/// Proportional set size of one process, bytes (`Pss:` of /proc/<pid>/smaps_rollup: each page
/// shared between processes counted once across them, so sums over processes add up); 0 when
/// the process is gone or unreadable.
pub fn pss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| super::smaps_pss_kib(&s))
        .map_or(0, |kib| kib * 1024)
}

/// `root` and every process descended from it.
pub fn tree_pids(root: u32) -> Vec<u32> {
    let procs: Vec<(u32, u32, u64)> = processes()
        .into_iter()
        .map(|(pid, ppid, _)| (pid, ppid, 0))
        .collect();
    super::tree_members(&procs, root)
}

/// Proportional set size of `root` and its descendants, bytes.
pub fn tree_pss_bytes(root: u32) -> u64 {
    tree_pids(root).into_iter().map(pss_bytes).sum()
}

/// The renderer processes that serve pages (`--type=renderer`, not the browser's own UI)
/// among `root`'s descendants. Chromium rewrites its children's command lines as one
/// space-separated string, so arguments are split at spaces as well as NULs.
pub fn renderer_pids(root: u32) -> Vec<u32> {
    tree_pids(root)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let mut args = c.split(|b| *b == 0 || *b == b' ');
                let mut renderer = false;
                let mut ui = false;
                for a in &mut args {
                    renderer |= a == b"--type=renderer";
                    ui |= a == b"--top-chrome-webui" || a == b"--extension-process";
                }
                renderer && !ui
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_potproxy_makes_name_an_owner() {
        let cases: &[(&str, Option<(u32, u64)>)] = &[
            ("1234-98765-0", Some((1234, 98765))),
            ("1-0-17", Some((1, 0))),
            ("1234-98765", None),
            ("1234-98765-0-1", None),
            ("abc-1-2", None),
            ("potproxy-browser-1234-abcdef", None),
            ("", None),
            ("-1-2", None),
        ];
        for (name, want) in cases {
            let got = profile_owner(name).map(|o| (o.pid, o.start));
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn a_browser_is_tied_to_a_profile_only_inside_the_root() {
        let root = "/var/lib/potproxy/browser";
        let cases: &[(&str, Option<&str>)] = &[
            (
                "--user-data-dir=/var/lib/potproxy/browser/12-34-0",
                Some("12-34-0"),
            ),
            (
                "--user-data-dir=/var/lib/potproxy/browser/12-34-0/Default",
                Some("12-34-0"),
            ),
            ("--user-data-dir=/var/lib/potproxy/browser", None),
            ("--user-data-dir=/var/lib/potproxy/browser/", None),
            ("--user-data-dir=/var/lib/potproxy/browserx/12-34-0", None),
            ("--user-data-dir=/tmp/12-34-0", None),
            (
                "--profile-directory=/var/lib/potproxy/browser/12-34-0",
                None,
            ),
        ];
        for (arg, want) in cases {
            assert_eq!(profile_in_root(arg, root), *want, "{arg}");
        }
    }

    #[test]
    fn a_profile_root_is_refused_when_another_user_could_reach_into_it() {
        let cases: &[(bool, u32, u32, u32, bool)] = &[
            // is_dir, owner, euid, parent mode, accepted
            (true, 1000, 1000, 0o40700, true),
            (true, 1000, 1000, 0o40755, true),
            (true, 0, 0, 0o41777, true), // /tmp: sticky
            (true, 1000, 1000, 0o40777, false),
            (true, 1000, 1000, 0o40775, false),
            (true, 1001, 1000, 0o40700, false),
            (false, 1000, 1000, 0o40700, false),
        ];
        for &(is_dir, owner, euid, parent, ok) in cases {
            assert_eq!(
                root_problem(is_dir, owner, euid, parent).is_none(),
                ok,
                "{is_dir} {owner} {euid} {parent:o}"
            );
        }
    }

    #[test]
    fn the_sandbox_is_off_only_as_root_or_when_the_user_asks_and_either_is_said() {
        let no = vec!["--no-sandbox".to_string()];
        let other = vec!["--foo".to_string()];
        assert!(unsandboxed(true, &[]).is_some_and(|w| w.contains("root")));
        assert!(unsandboxed(false, &no).is_some_and(|w| w.contains("args")));
        assert_eq!(unsandboxed(false, &other), None);
        assert_eq!(unsandboxed(false, &[]), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(
            b"/devtools/browser/ab",
            b"/devtools/browser/ab"
        ));
        assert!(!same_secret(
            b"/devtools/browser/ab",
            b"/devtools/browser/ac"
        ));
        assert!(!same_secret(
            b"/devtools/browser/a",
            b"/devtools/browser/ab"
        ));
        assert!(!same_secret(b"/", b"/devtools/browser/ab"));
    }

    #[test]
    fn this_process_owns_the_profiles_it_names_and_a_dead_pid_owns_nothing() {
        let me = Owner::me();
        assert!(me.alive());
        assert!(
            !Owner {
                start: me.start + 1,
                ..me
            }
            .alive(),
            "same pid, another start: a reused pid"
        );
        assert!(
            !Owner {
                pid: u32::MAX - 1,
                start: 0
            }
            .alive()
        );
    }

    #[tokio::test]
    async fn profiles_of_a_dead_potproxy_are_swept_and_live_and_foreign_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let me = Owner::me();
        let mine = new_profile(root.path()).unwrap();
        let dead = root.path().join(format!("{}-{}-0", u32::MAX - 1, 5));
        let reused = root.path().join(format!("{}-{}-0", me.pid, me.start + 1));
        let foreign = root.path().join("not-ours");
        for d in [&dead, &reused, &foreign] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("Local State"), "{}").unwrap();
        }
        let swept = sweep_orphans(root.path());
        assert_eq!(
            swept,
            Swept {
                processes: 0,
                profiles: 2
            }
        );
        assert!(mine.exists() && foreign.exists());
        assert!(!dead.exists() && !reused.exists());
        let mode = std::fs::metadata(&mine).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "profile is private");
        assert_eq!(
            std::fs::metadata(root.path()).unwrap().mode() & 0o777,
            0o700,
            "root tightened"
        );
    }

    #[test]
    fn the_sweep_kills_a_browser_of_a_dead_potproxy_and_spares_a_live_ones() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let root = tempfile::tempdir().unwrap();
        let me = Owner::me();
        let dead = root.path().join(format!("{}-{}-0", u32::MAX - 1, 7));
        let live = root.path().join(format!("{}-{}-0", me.pid, me.start));
        // Stand-ins for browsers: `sleep` whose argv[0] is the argument Chromium carries.
        let start = |profile: &Path| {
            std::fs::create_dir(profile).unwrap();
            std::process::Command::new("sleep")
                .arg0(format!("--user-data-dir={}", profile.display()))
                .arg("60")
                .spawn()
                .unwrap()
        };
        let (mut orphan, mut ours) = (start(&dead), start(&live));
        let swept = sweep_orphans(root.path());
        let orphan_status = orphan.wait().unwrap();
        let ours_running = matches!(ours.try_wait(), Ok(None));
        let _ = ours.kill();
        let _ = ours.wait();
        assert_eq!(
            swept,
            Swept {
                processes: 1,
                profiles: 1
            }
        );
        assert_eq!(orphan_status.signal(), Some(libc::SIGKILL));
        assert!(ours_running, "a live potproxy's browser is left alone");
        assert!(!dead.exists() && live.exists());
    }

    #[tokio::test]
    async fn the_bridge_serves_one_client_on_the_secret_path_and_then_stops_listening() {
        use tokio_tungstenite::client_async;
        let (cmd_r, cmd_w) = cloexec_pipe().unwrap();
        let (out_r, out_w) = cloexec_pipe().unwrap();
        let (url, _task) = bridge(
            pipe::Sender::from_owned_fd(cmd_w).unwrap(),
            pipe::Receiver::from_owned_fd(out_r).unwrap(),
        )
        .await
        .unwrap();
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        // The wrong path is refused and the bridge keeps waiting for the right one.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let wrong = format!("ws://{addr}/devtools/browser/00000000000000000000000000000000");
        assert!(client_async(wrong, tcp).await.is_err());
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut ws, _) = client_async(url.as_str(), tcp)
            .await
            .expect("the right path");
        // Text frames become NUL-ended messages on the browser's command pipe...
        ws.send(Message::text("{\"id\":1}")).await.unwrap();
        let mut cmd_r = pipe::Receiver::from_owned_fd(cmd_r).unwrap();
        let mut got = [0u8; 9];
        cmd_r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"{\"id\":1}\0");
        // ...and the browser's NUL-ended messages become text frames, one each.
        let mut out_w = pipe::Sender::from_owned_fd(out_w).unwrap();
        out_w.write_all(b"{\"a\":1}\0{\"b\":2}\0").await.unwrap();
        let a = ws.next().await.unwrap().unwrap();
        let b = ws.next().await.unwrap().unwrap();
        assert_eq!(
            (a, b),
            (Message::text("{\"a\":1}"), Message::text("{\"b\":2}"))
        );
        // Nobody else gets in: the listener is closed.
        assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
        // The browser's pipe closing (it exited) closes the WebSocket.
        drop(out_w);
        assert!(matches!(
            ws.next().await,
            None | Some(Ok(Message::Close(_))) | Some(Err(_))
        ));
    }
}
