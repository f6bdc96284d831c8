//! Helpers for tests: where the captured fixtures live (and what to do when they are missing),
//! and small walkers over them. Integration tests include this file by path
//! (`#[path = "../src/testutil.rs"] mod testutil;`), so it uses only std and serde_json.

use std::path::{Path, PathBuf};

/// `POTPROXY_FIXTURES`, else `../shared/fixtures` beside the checkout. When they are absent a
/// fixture test must not pass silently: under CI (`CI` set) this panics; locally it prints a
/// skip message and returns `None`, and the caller returns.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POTPROXY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.is_dir() {
        return Some(dir);
    }
    match when_missing(&dir, std::env::var("CI").ok().as_deref()) {
        Missing::Fail(message) => panic!("{message}"),
        Missing::Skip(message) => {
            eprintln!("{message}");
            None
        }
    }
}

/// What a fixture test does when its fixtures are absent.
#[derive(Debug, PartialEq, Eq)]
enum Missing {
    Fail(String),
    Skip(String),
}

/// CI checks out `../shared` beside the repository, so missing fixtures there mean a broken
/// setup, not a machine without them.
fn when_missing(dir: &Path, ci: Option<&str>) -> Missing {
    let running_in_ci = ci.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    if running_in_ci {
        Missing::Fail(format!(
            "fixtures not found at {} and CI is set: fixture tests must not skip in CI \
             (set POTPROXY_FIXTURES or check out ../shared beside the repository)",
            dir.display()
        ))
    } else {
        Missing::Skip(format!(
            "skipping: fixtures not found at {} (set POTPROXY_FIXTURES)",
            dir.display()
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fixtures_fail_under_ci_and_skip_elsewhere() {
        let dir = Path::new("/nonexistent/fixtures");
        for ci in ["true", "1", "yes"] {
            let Missing::Fail(m) = when_missing(dir, Some(ci)) else {
                panic!("CI={ci} must fail");
            };
            assert!(
                m.contains("/nonexistent/fixtures") && m.contains("CI"),
                "{m}"
            );
        }
        for ci in [None, Some(""), Some("false"), Some("0")] {
            let Missing::Skip(m) = when_missing(dir, ci) else {
                panic!("CI={ci:?} must skip");
            };
            assert!(m.starts_with("skipping:"), "{m}");
        }
    }
}
