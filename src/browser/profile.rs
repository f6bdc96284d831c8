//! Browser profiles: private directories under a profile root (`[tokens.browser] profile_root`,
//! by default `<state dir>/browser`), 0700, each named `<pid>-<start>-<n>`: potproxy's pid, its
//! start time (clock ticks since boot, so a reused pid is not mistaken for the owner) and a
//! counter. [`sweep_orphans`] removes, at start, the profiles and browsers whose potproxy is
//! gone.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::procs::{command_lines, kill, process_runs, start_ticks};

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
pub(super) fn new_profile(root: &Path) -> io::Result<PathBuf> {
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
            let arg = format!("--user-data-dir={}", profile.display());
            let child = std::process::Command::new("sleep")
                .arg0(&arg)
                .arg("60")
                .spawn()
                .unwrap();
            // A browser the sweep meets has long been running; wait until this one's command
            // line shows its argument (right after the spawn, under load, it may not yet).
            let cmdline = format!("/proc/{}/cmdline", child.id());
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while !std::fs::read(&cmdline)
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                && std::time::Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            child
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
}
