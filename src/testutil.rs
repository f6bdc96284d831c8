//! Helpers for unit tests: where the captured fixtures live, and small walkers over them.

use std::path::PathBuf;

/// `POTPROXY_FIXTURES`, else `../shared/fixtures` beside the checkout. `None` (with a message on
/// stderr) when absent, so fixture tests skip instead of failing on machines without them.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POTPROXY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: fixtures not found at {} (set POTPROXY_FIXTURES)",
            dir.display()
        );
        None
    }
}

/// Reads `innertube/<name>.{request,response}_body.json`.
pub fn innertube_fixture(name: &str, part: &str) -> Option<Vec<u8>> {
    let dir = fixtures_dir()?;
    Some(
        std::fs::read(dir.join(format!("innertube/{name}.{part}_body.json")))
            .unwrap_or_else(|e| panic!("fixture {name}.{part}: {e}")),
    )
}

/// Calls `f` on every string in a JSON value.
pub fn walk_strings(v: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}
