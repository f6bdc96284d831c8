//! The browser minter: headless Chromium, driven over the DevTools protocol (chromiumoxide),
//! runs the same BotGuard flow as the QuickJS minter inside a real page whose origin is
//! `https://www.youtube.com`, so tokens come from a real engine (browser-grade trust).
//!
//! This module owns the browser's settings ([`BrowserSettings`], `[tokens.browser]`), its
//! errors ([`BrowserError`]), how it is launched (flags that keep the browser's own identity and
//! hide automation, [`launch_args`]), and its process life: `process` starts the one Chromium in
//! its own process group, drives it over a DevTools pipe only potproxy holds, kills the whole
//! group when it is dropped or potproxy dies, and reads its memory; `minter` keeps that browser
//! ([`minter::SharedBrowser`]: launched once, restarted when it crashes or hangs) and, per
//! egress, a browser context (own cookies, storage and cache) with a warm page minter; `pool`
//! keeps one context per egress, capped. Every request a page makes is intercepted (CDP `Fetch`)
//! and fulfilled by potproxy's own upstream client for that page's egress, so the browser never
//! reaches the network by itself and tokens are minted from the same egress as the download;
//! anything not fulfilled fails.

mod bridge;
pub mod minter;
pub mod pool;
pub mod process;
mod procs;
mod profile;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use minter::BrowserMinter;
pub use pool::BrowserPool;

/// Executables tried, in order, when `[tokens.browser] executable` is not set.
pub const CANDIDATES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// `[tokens.browser]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSettings {
    /// The browser binary; `None` when none was configured or found on `PATH`.
    pub executable: Option<PathBuf>,
    /// Extra command-line flags, appended after potproxy's own.
    pub args: Vec<String>,
    /// Start the browser and warm a minter at start-up instead of on the first request.
    pub prewarm: bool,
    /// Deadline for one mint; a browser that misses it is considered hung and restarted.
    pub mint_timeout: Duration,
    /// Deadline for starting the browser and warming a minter (challenge, VM, GenerateIT).
    pub warmup_timeout: Duration,
    /// Most browser contexts for request-named egresses (the provider API's `proxy`) open or
    /// being opened at once, all in the one browser; the configured egress has its own besides.
    pub max_contexts: usize,
    /// Where profile directories are made (`[tokens.browser] profile_root`, by default
    /// `<state dir>/browser`); `None`: the per-user runtime directory ([`runtime_profile_root`]).
    pub profile_root: Option<PathBuf>,
}

impl BrowserSettings {
    /// The directory browser profiles are made in.
    pub fn profile_root(&self) -> PathBuf {
        self.profile_root.clone().unwrap_or_else(|| {
            runtime_profile_root(
                std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
                &std::env::temp_dir(),
                rustix::process::geteuid().as_raw(),
            )
        })
    }
}

/// The profile root when no state directory is known (embedding, tests): in the user's runtime
/// directory when there is one (`$XDG_RUNTIME_DIR`, absolute), else a per-user directory in the
/// temp directory (its ownership is checked before use: /tmp is shared).
pub fn runtime_profile_root(xdg_runtime: Option<PathBuf>, tmp: &Path, euid: u32) -> PathBuf {
    match xdg_runtime.filter(|d| d.is_absolute()) {
        Some(d) => d.join("potproxy-browser"),
        None => tmp.join(format!("potproxy-browser-{euid}")),
    }
}

/// Default for `[tokens.browser] max_contexts`.
pub const DEFAULT_MAX_CONTEXTS: usize = 8;
/// Most `[tokens.browser] max_contexts` accepts.
pub const MAX_MAX_CONTEXTS: usize = 64;

impl Default for BrowserSettings {
    fn default() -> Self {
        BrowserSettings {
            executable: find_executable(std::env::var_os("PATH").as_deref()),
            args: Vec::new(),
            prewarm: true,
            mint_timeout: Duration::from_secs(10),
            warmup_timeout: Duration::from_secs(30),
            max_contexts: DEFAULT_MAX_CONTEXTS,
            profile_root: None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrowserError {
    /// No executable configured or found on `PATH`.
    #[error("no browser found (tried {} on PATH); set [tokens.browser] executable", CANDIDATES.join(", "))]
    NotFound,
    /// The process did not start or did not open its DevTools endpoint.
    #[error("could not start {exe}: {reason}")]
    Launch { exe: String, reason: String },
    /// The DevTools connection broke (the browser crashed or was killed).
    #[error("the browser went away: {0}")]
    Crashed(String),
    /// A step did not finish in time; the browser is treated as hung and restarted.
    #[error("browser step `{op}` timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// A script in the page threw or answered nonsense.
    #[error("in the page: {0}")]
    Script(String),
    /// The BotGuard flow's network side (challenge, interpreter, GenerateIT).
    #[error(transparent)]
    Flow(#[from] crate::botguard::error::BotGuardError),
}

impl BrowserError {
    /// True when the browser itself is unusable and must be restarted.
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            BrowserError::Crashed(_) | BrowserError::Timeout { .. } | BrowserError::Launch { .. }
        )
    }
}

/// The first of [`CANDIDATES`] found in `path` (a `PATH`-style list).
pub fn find_executable(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let path = path?;
    for name in CANDIDATES {
        for dir in std::env::split_paths(path) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The browser's command line: headless, DevTools on the pipe potproxy holds (fds 3 and 4; no TCP
/// port, no `DevToolsActivePort` file), its own identity kept (no automation switches,
/// `navigator.webdriver` false), no network of its own (every host resolves to nothing, so a
/// request that escaped interception fails instead of leaving by another path), no background
/// services that phone home. Memory: no spare renderer kept ready for the next navigation, and
/// no WebUI omnibox popups preloaded for each window (one per browser context); neither is
/// visible to a page. Geometry: a 1920x1080 window at the origin of a 1920x1080 screen, as a
/// maximized window on a common desktop (headless Chromium's own screen is 800x600, which a page
/// would see as a window larger than its screen). (Not `--disable-crashpad-for-testing`: with it, Chromium 156
/// crashes its new renderers with an "FD ownership violation"; the crash handlers it starts
/// exit with it.) `root` adds
/// `--no-sandbox`: Chromium refuses to run sandboxed as root, so it is the one case potproxy
/// turns the sandbox off (and says so in the log). `extra` comes last so the user
/// can override.
pub fn launch_args(profile: &Path, root: bool, extra: &[String]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--headless=new",
        "--remote-debugging-pipe",
        "--disable-blink-features=AutomationControlled",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-features=SpareRendererForSitePerProcess,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
        "--mute-audio",
        "--lang=en-US",
        "--window-size=1920,1080",
        "--window-position=0,0",
        "--screen-info={1920x1080}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(format!("--user-data-dir={}", profile.display()));
    if root {
        a.push("--no-sandbox".into());
    }
    a.extend(extra.iter().cloned());
    a.push("about:blank".into());
    a
}

/// The browser's own user agent without the headless marker (`HeadlessChrome/156` ->
/// `Chrome/156`): what the same browser reports with a window.
pub fn headful_user_agent(ua: &str) -> String {
    ua.replace("HeadlessChrome/", "Chrome/")
}

/// Client-hint brand names without the headless marker, deduplicated in order.
pub fn headful_brands(brands: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (b, v) in brands {
        let b = if b == "HeadlessChrome" {
            "Chromium".to_string()
        } else {
            b.clone()
        };
        if !out.iter().any(|(x, _)| *x == b) {
            out.push((b, v.clone()));
        }
    }
    out
}

/// `root` (if it exists) and its descendants, given `(pid, ppid, _)` for every process.
pub fn tree_members(procs: &[(u32, u32, u64)], root: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    let mut seen = std::collections::HashSet::new();
    while let Some(p) = frontier.pop() {
        if !seen.insert(p) {
            continue;
        }
        for &(pid, ppid, _) in procs {
            if pid == p {
                out.push(pid);
            }
            if ppid == p && pid != p {
                frontier.push(pid);
            }
        }
    }
    out
}

/// The `Pss:` line of a `/proc/<pid>/smaps_rollup` text, KiB.
pub fn smaps_pss_kib(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("Pss:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The renderer process that serves a page just opened (while no other page opened): the one
/// running after it opened that did not before. Empty when that is not exactly one process (a
/// renderer reused, or several started at once): the page is then not attributed.
pub fn new_renderers(before: &[u32], after: &[u32]) -> Vec<u32> {
    let fresh: Vec<u32> = after
        .iter()
        .copied()
        .filter(|p| !before.contains(p))
        .collect();
    if fresh.len() == 1 { fresh } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_flags_hide_automation_and_keep_the_browser_off_the_network() {
        let a = launch_args(Path::new("/tmp/p"), false, &["--foo".into()]);
        assert!(a.contains(&"--disable-blink-features=AutomationControlled".to_string()));
        assert!(a.contains(&"--host-resolver-rules=MAP * ~NOTFOUND".to_string()));
        assert!(a.contains(&"--user-data-dir=/tmp/p".to_string()));
        // DevTools over the pipe only: no port any local process could attach to.
        assert!(a.contains(&"--remote-debugging-pipe".to_string()));
        assert!(!a.iter().any(|f| f.starts_with("--remote-debugging-port")));
        assert!(!a.iter().any(|f| f.contains("enable-automation")));
        assert!(!a.contains(&"--no-sandbox".to_string()));
        // User flags come after ours (they win), the start URL last.
        assert_eq!(&a[a.len() - 2..], &["--foo", "about:blank"]);
        assert!(launch_args(Path::new("/p"), true, &[]).contains(&"--no-sandbox".to_string()));
    }

    #[test]
    fn the_headless_marker_is_removed_from_user_agent_and_brands() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        let h = headful_user_agent(ua);
        assert!(
            !h.contains("Headless") && h.contains("Chrome/156.0.0.0"),
            "{h}"
        );
        let b = |n: &str| (n.to_string(), "156".to_string());
        assert_eq!(
            headful_brands(&[b("Not)A;Brand"), b("HeadlessChrome"), b("Chromium")]),
            vec![b("Not)A;Brand"), b("Chromium")]
        );
    }

    #[test]
    fn the_first_candidate_on_path_is_found() {
        let dir = std::env::temp_dir().join(format!("pp-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(find_executable(Some(dir.as_os_str())), None);
        let exe = dir.join("google-chrome");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), &dir]).unwrap();
        assert_eq!(find_executable(Some(&path)), Some(exe));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(find_executable(None), None);
    }

    #[test]
    fn without_a_state_dir_profiles_go_to_the_users_runtime_dir_or_a_per_user_temp_dir() {
        let tmp = Path::new("/tmp");
        let cases: &[(Option<&str>, &str)] = &[
            (Some("/run/user/1000"), "/run/user/1000/potproxy-browser"),
            (Some("relative"), "/tmp/potproxy-browser-1000"),
            (None, "/tmp/potproxy-browser-1000"),
        ];
        for (xdg, want) in cases {
            assert_eq!(
                runtime_profile_root(xdg.map(PathBuf::from), tmp, 1000),
                PathBuf::from(want),
                "{xdg:?}"
            );
        }
    }

    #[test]
    fn pss_is_read_from_the_smaps_rollup_line() {
        let text = "00400000-7ffd [rollup]\nRss:              120000 kB\nPss:               51234 kB\nPss_Anon:          40000 kB\n";
        assert_eq!(smaps_pss_kib(text), Some(51234));
        assert_eq!(smaps_pss_kib("Rss: 1 kB\n"), None);
    }

    #[test]
    fn a_page_is_attributed_only_the_one_renderer_that_appeared_for_it() {
        let cases: &[(&[u32], &[u32], &[u32])] = &[
            // One new renderer: it serves the page.
            (&[5, 6], &[5, 6, 9], &[9]),
            // One new while another page's went away.
            (&[5, 6], &[6, 9], &[9]),
            // Nothing new (a renderer was reused): unknown.
            (&[5, 6], &[5, 6], &[]),
            // Two new: cannot tell which.
            (&[5], &[5, 8, 9], &[]),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                new_renderers(before, after),
                want.to_vec(),
                "{before:?} {after:?}"
            );
        }
    }

    #[test]
    fn a_process_tree_is_its_root_and_descendants_only() {
        let procs = [
            (10, 1, 0),
            (11, 10, 0),
            (12, 11, 0),
            (13, 1, 0),
            (14, 10, 0),
        ];
        let mut tree = tree_members(&procs, 10);
        tree.sort_unstable();
        assert_eq!(tree, [10, 11, 12, 14]);
        assert!(!tree_members(&procs, 13).contains(&10));
    }
}
