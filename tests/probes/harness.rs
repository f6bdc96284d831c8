//! Shared by tests/probes.rs and examples/probe_report.rs (included by path): the probe suite,
//! how it runs in potproxy's QuickJS runtime, and the committed Chromium results' format.

use std::collections::BTreeMap;
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
