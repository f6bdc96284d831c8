//! This machine's processes as /proc shows them (state, start time, parents, command lines,
//! proportional memory) and the one signal potproxy sends them. Used to keep a browser's process
//! tree in view, to measure it, and to find and kill the browsers of a potproxy that is gone.

use std::path::Path;
use std::time::Duration;

/// Whether `pid` exists and is not a zombie.
pub(super) fn process_runs(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f.first().map(String::as_str), Some("Z" | "X")))
}

/// The fields of /proc/<pid>/stat after the command name (the first is the state, field 3).
pub(super) fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// When `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat).
pub(super) fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// SIGKILL to `pid`; whether it was sent.
pub(super) fn kill(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok())
}

/// Every pid /proc lists (none when /proc cannot be read).
fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Every readable process's command line, split into arguments.
pub(super) fn command_lines() -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    for pid in pids() {
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
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
pub(super) fn processes() -> Vec<(u32, u32, u64)> {
    let mut out = Vec::new();
    for pid in pids() {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        let ppid = fields.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
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
