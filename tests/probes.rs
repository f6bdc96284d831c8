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
