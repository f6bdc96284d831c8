//! One running Chromium that only potproxy can drive: started in its own process group with a
//! private profile directory, driven over DevTools through a pipe (no TCP port), killed with its
//! whole process group (renderers, zygotes, GPU and network services) when dropped or when
//! potproxy dies, and swept away at the next start when potproxy was killed before it could
//! clean up. Also reads its memory from /proc.
//!
//! DevTools goes over a pipe through [`super::bridge`]; profiles are [`super::profile`]'s; the
//! processes are read through [`super::procs`]. This file re-exports what callers use from
//! those, so the browser's process life has one face.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio_util::task::AbortOnDropHandle;

use super::bridge::{bridge, cloexec_pipe};
use super::procs::{kill, process_runs};
pub use super::procs::{
    pids_with_arg, pss_bytes, renderer_pids, tree_pids, tree_pss_bytes, wait_gone,
};
use super::profile::new_profile;
pub use super::profile::{
    Owner, Swept, profile_in_root, profile_owner, root_problem, sweep_orphans,
};
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

// ---------------------------------------------------------------------------------------------
// Starting the process: pipes on fds 3 and 4, death with potproxy.
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_is_off_only_as_root_or_when_the_user_asks_and_either_is_said() {
        let no = vec!["--no-sandbox".to_string()];
        let other = vec!["--foo".to_string()];
        assert!(unsandboxed(true, &[]).is_some_and(|w| w.contains("root")));
        assert!(unsandboxed(false, &no).is_some_and(|w| w.contains("args")));
        assert_eq!(unsandboxed(false, &other), None);
        assert_eq!(unsandboxed(false, &[]), None);
    }
}
