//! The QuickJS runtime keeps passing for a browser: every probe of tests/probes/probes.js that
//! matched headless Chromium when docs/PROBES.md was generated (`cargo run --example
//! probe_report`) still returns Chromium's value. No browser needed: Chromium's values are
//! committed in docs/probes-chromium.json.

#[path = "probes/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{CHROMIUM_JSON, Committed};

fn committed() -> Committed {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CHROMIUM_JSON);
    serde_json::from_slice(&std::fs::read(&path).expect("committed Chromium probe results"))
        .expect("docs/probes-chromium.json parses")
}

#[tokio::test]
async fn probes_that_matched_chromium_still_match() {
    let c = committed();
    let quick = harness::run_in_quickjs(Some(&c.user_agent)).await;
    let mut regressed = Vec::new();
    for name in &c.quickjs_matches {
        let want = c
            .chromium
            .get(name)
            .expect("matching probe has a Chromium value");
        let got = quick.values.get(name);
        if got != Some(want) {
            regressed.push(format!(
                "{name}: Chromium {want}, QuickJS {}",
                got.map(|v| v.to_string())
                    .unwrap_or_else(|| "missing".into())
            ));
        }
    }
    assert!(
        regressed.is_empty(),
        "divergences from Chromium came back (see docs/PROBES.md):\n{}",
        regressed.join("\n")
    );
}

#[tokio::test]
async fn every_probe_has_a_committed_chromium_value() {
    // A probe added to probes.js without regenerating the report would never be compared.
    let c = committed();
    let quick = harness::run_in_quickjs(Some(&c.user_agent)).await;
    let missing: Vec<&String> = quick
        .kinds
        .keys()
        .filter(|k| !c.chromium.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "probes without a Chromium value; run `cargo run --example probe_report`: {missing:?}"
    );
    assert!(c.chromium.len() >= 60, "the suite has at least 60 probes");
}

/// With `POTPROXY_CHROMIUM=1` and the Chromium that produced the committed values: Chromium
/// still gives those values (the report is current and the probes are deterministic).
#[tokio::test]
async fn committed_chromium_values_are_current() {
    if std::env::var("POTPROXY_CHROMIUM").as_deref() != Ok("1") {
        eprintln!("skipping: set POTPROXY_CHROMIUM=1 to re-run the probes in Chromium");
        return;
    }
    let Some(chromium) = harness::find_chromium(None) else {
        eprintln!("skipping: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let c = committed();
    let version = std::process::Command::new(&chromium)
        .arg("--version")
        .output()
        .expect("chromium --version");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if version != c.chromium_version {
        eprintln!(
            "skipping: committed values are from {:?}, this is {version:?}; regenerate with \
             `cargo run --example probe_report`",
            c.chromium_version
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = format!("({})()", harness::PROBES_JS);
    let run = tokio::task::spawn_blocking(move || {
        harness::run_chromium(&chromium, dir.path(), &script, Some(&c.user_agent))
    })
    .await
    .unwrap();
    let run: harness::ProbeRun = serde_json::from_value(run).unwrap();
    let committed = committed();
    let stale: Vec<String> = run
        .values
        .iter()
        .filter(|(k, v)| committed.chromium.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: now {v}, committed {:?}", committed.chromium.get(k)))
        .collect();
    assert!(
        stale.is_empty(),
        "Chromium's values changed; regenerate docs/PROBES.md:\n{}",
        stale.join("\n")
    );
}
