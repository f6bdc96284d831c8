//! Helpers for tests: whether this run is CI ([`ci`], the one meaning every test uses), where
//! the captured fixtures live (and what to do when they are missing), and small walkers over
//! them. Integration tests include this file by path
//! (`#[path = "../src/testutil.rs"] mod testutil;`), so it uses only std and serde_json.

use std::path::{Path, PathBuf};

/// True when this run is CI: `CI` is set to anything but `""`, `"0"` or `"false"`. Under CI a
/// test whose prerequisite (fixtures, a browser, redis-server, openssl, node, prlimit) is
/// missing fails instead of skipping: CI installs them, so their absence is a broken setup.
pub fn ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `POTPROXY_FIXTURES`, else `../shared/fixtures` beside the checkout. When they are absent a
/// fixture test must not pass silently: under CI ([`ci`]) this panics; locally it prints a
/// skip message and returns `None`, and the caller returns.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POTPROXY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.is_dir() {
        return Some(dir);
    }
    match when_missing(&dir, ci()) {
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
fn when_missing(dir: &Path, ci: bool) -> Missing {
    if ci {
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
    fn ci_means_set_to_anything_but_empty_zero_or_false() {
        for (value, ci) in [
            (None, false),
            (Some(""), false),
            (Some(" "), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(is_ci(value), ci, "CI={value:?}");
        }
    }

    #[test]
    fn missing_fixtures_fail_under_ci_and_skip_elsewhere() {
        let dir = Path::new("/nonexistent/fixtures");
        let Missing::Fail(m) = when_missing(dir, true) else {
            panic!("under CI a missing fixture must fail");
        };
        assert!(
            m.contains("/nonexistent/fixtures") && m.contains("CI"),
            "{m}"
        );
        let Missing::Skip(m) = when_missing(dir, false) else {
            panic!("outside CI a missing fixture must skip");
        };
        assert!(m.starts_with("skipping:"), "{m}");
    }
}
