//! Shared by tests/probes.rs and examples/probe_report.rs (included by path): the probe suite,
//! how it runs in potproxy's QuickJS runtime, and the committed Chromium results' format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use potproxy::botguard::vm::{VmHandle, VmLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The probe suite: one JS expression evaluating to `runProbes(only?)`.
pub const PROBES_JS: &str = include_str!("probes.js");

/// Where the committed Chromium results live, relative to the crate root.
pub const CHROMIUM_JSON: &str = "docs/probes-chromium.json";

/// What `runProbes` resolves to.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProbeRun {
    pub kinds: BTreeMap<String, String>,
    pub values: BTreeMap<String, Value>,
}

/// The committed Chromium results and which probes matched in QuickJS when they were recorded.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Committed {
    /// `chromium --version` of the browser that produced the values.
    pub chromium_version: String,
    /// The user agent both sides presented (Chromium's own, without the headless marker).
    pub user_agent: String,
    /// Probe name -> Chromium's value.
    pub chromium: BTreeMap<String, Value>,
    /// Probes whose QuickJS value equalled Chromium's when the report was generated.
    pub quickjs_matches: Vec<String>,
}

/// Runs every probe in a fresh QuickJS VM (env.js presenting `user_agent`).
pub async fn run_in_quickjs(user_agent: Option<&str>) -> ProbeRun {
    let vm = VmHandle::spawn_as(
        VmLimits {
            op_timeout: Duration::from_secs(60),
            ..VmLimits::default()
        },
        user_agent,
    )
    .expect("QuickJS VM starts");
    let out = vm
        .eval(&format!("({PROBES_JS})().then((r) => JSON.stringify(r))"))
        .await
        .expect("the probe suite runs in QuickJS");
    serde_json::from_str(&out).expect("probe results are JSON")
}

/// The browser to compare with: `explicit`, else the first Chromium or Chrome on PATH.
pub fn find_chromium(explicit: Option<String>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A page that runs `script` (an expression resolving to a JSON-able value) on load and writes
/// the result, base64 of UTF-8 JSON, into `<pre id="probe-out">`.
fn page(script: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>probes</title></head><body><script>\n\
         const __probe = () => ({script});\n\
         window.addEventListener('load', () => {{ Promise.resolve().then(__probe).then((r) => {{ \
           const p = document.createElement('pre'); p.id = 'probe-out'; \
           p.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(r)))); \
           document.documentElement.appendChild(p); }}); }});\n\
         </script></body></html>"
    )
}

/// Runs `script` in a page of headless Chromium as a user would see it (no headless marker when
/// `user_agent` is given, no automation flag) and returns its JSON value. Gives up after a
/// minute.
pub fn run_chromium(chromium: &Path, dir: &Path, script: &str, user_agent: Option<&str>) -> Value {
    let file = dir.join("probe-page.html");
    std::fs::write(&file, page(script)).expect("write probe page");
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-blink-features=AutomationControlled",
        "--no-first-run",
        "--virtual-time-budget=30000",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()));
    if let Some(ua) = user_agent {
        cmd.arg(format!("--user-agent={ua}"));
    }
    cmd.arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run chromium");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for chromium").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium output");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"probe-out\">").unwrap_or_else(|| {
        panic!(
            "no probe output in Chromium's DOM: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rest = &dom[start + "<pre id=\"probe-out\">".len()..];
    let b64 = &rest[..rest.find('<').expect("end of probe output")];
    use base64::Engine;
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("probe output is base64");
    serde_json::from_slice(&json).expect("probe output is JSON")
}
