//! One running Chromium: started in its own process group with a private profile directory,
//! connected over DevTools, and killed with its whole process group (renderers, zygotes, GPU and
//! network services) when dropped, so no process outlives it. Also reads its memory from /proc.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{BrowserError, launch_args};

/// A launched browser. Dropping it kills the process group and removes the profile.
pub struct BrowserProcess {
    pub browser: Browser,
    pid: u32,
    profile: PathBuf,
    child: tokio::process::Child,
    handler: tokio::task::JoinHandle<()>,
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
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        !matches!(state, None | Some("Z") | Some("X"))
    }

    /// Resolves once the browser is gone (checked every 100 ms).
    pub async fn died(&self) {
        while self.is_alive() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl BrowserProcess {
    /// Starts `exe` and connects to it within `timeout`.
    pub async fn launch(
        exe: &Path,
        extra_args: &[String],
        timeout: Duration,
    ) -> Result<BrowserProcess, BrowserError> {
        let launch_err = |reason: String| BrowserError::Launch {
            exe: exe.display().to_string(),
            reason,
        };
        let mut rnd = [0u8; 6];
        let _ = getrandom::fill(&mut rnd);
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let profile =
            std::env::temp_dir().join(format!("potproxy-browser-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&profile).map_err(|e| launch_err(e.to_string()))?;
        let root = rustix::process::geteuid().is_root();
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(launch_args(&profile, root, extra_args))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // Its own group: the whole tree can be killed at once, and a Ctrl-C at the terminal
            // reaches potproxy, which then closes the browser itself.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| launch_err(e.to_string()))?;
        let pid = child.id().unwrap_or(0);
        let stderr = child.stderr.take().expect("stderr piped");
        // The process is ours from here: a failure below drops it (group killed, profile gone).
        let mut guard = Cleanup {
            pid,
            profile: Some(profile.clone()),
        };
        let ws = tokio::time::timeout(timeout, devtools_url(stderr))
            .await
            .map_err(|_| launch_err(format!("no DevTools endpoint within {timeout:?}")))?
            .map_err(launch_err)?;
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
            tokio::time::timeout(timeout, Browser::connect_with_config(ws, config))
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
        // Launched: the process is owned by the returned value from here on.
        guard.pid = 0;
        guard.profile = None;
        tracing::info!(pid, exe = %exe.display(), "browser started");
        Ok(BrowserProcess {
            browser,
            pid,
            profile,
            child,
            handler,
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

    /// Resident memory of the browser and every process it started, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        tree_rss_bytes(self.pid)
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

/// Kills a half-started browser when launch fails.
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
            if let Some(p) = rustix::process::Pid::from_raw(stray as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = std::fs::remove_dir_all(profile);
    }
}

/// Reads the browser's stderr until it prints its DevTools WebSocket URL, then keeps draining
/// it (a full pipe would block the browser) into trace logs.
async fn devtools_url(stderr: tokio::process::ChildStderr) -> Result<String, String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut last = String::new();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(i) = line.find("ws://") {
                    let url = line[i..].trim().to_string();
                    tokio::spawn(async move {
                        while let Ok(Some(l)) = lines.next_line().await {
                            tracing::trace!(target: "potproxy::browser::stderr", "{l}");
                        }
                    });
                    return Ok(url);
                }
                last = line;
            }
            Ok(None) => return Err(format!("exited before DevTools was ready: {last}")),
            Err(e) => return Err(e.to_string()),
        }
    }
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
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if cmd.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

/// `(pid, ppid, rss bytes)` of every process (from /proc/<pid>/stat and statm).
fn processes() -> Vec<(u32, u32, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
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

/// Resident memory of `pid` and its descendants, in bytes.
pub fn tree_rss_bytes(pid: u32) -> u64 {
    super::tree_sum(&processes(), pid)
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
