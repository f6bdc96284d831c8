//! The curl binary as a client (Debian `curl`, installed by `.ci/run`): whether it is there,
//! and one run of it.

use std::process::Output;

/// Whether curl runs here. A missing curl skips locally and fails under CI.
pub fn have_curl() -> bool {
    let ok = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !super::testutil::ci(),
            "curl is missing under CI (.ci/run installs it)"
        );
        eprintln!("skipping: curl is not installed");
    }
    ok
}

/// Runs curl with `args` (silent, errors shown, 20 s at most); its output and status.
pub async fn curl(args: &[&str]) -> Output {
    tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .await
        .expect("curl runs")
}
