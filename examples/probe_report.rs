//! The differential probe report: runs tests/probes/probes.js in headless Chromium and in
//! potproxy's QuickJS runtime (env.js), compares every value, and writes docs/PROBES.md and
//! docs/probes-chromium.json (Chromium's values and which probes match; tests/probes.rs keeps
//! those matches from regressing without needing a browser).
//!
//! ```text
//! cargo run --example probe_report                # needs chromium (or --chromium PATH)
//! cargo run --example probe_report -- --record-baseline   # store QuickJS values as "before"
//! ```
//!
//! Chromium runs as a user would see it: `--headless=new` with its own user agent minus the
//! `Headless` marker and without the automation flag; QuickJS presents the same user agent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[path = "../tests/probes/harness.rs"]
mod harness;

use harness::{CHROMIUM_JSON, Committed, PROBES_JS, ProbeRun, find_chromium, run_chromium};

const REPORT_MD: &str = "docs/PROBES.md";
/// QuickJS values before this work (recorded once with `--record-baseline`), for the summary.
const BASELINE_JSON: &str = "docs/probes-quickjs-before.json";

/// Why a probe still diverges, and whether QuickJS can close it.
const NOTES: &[(&str, &str)] = &[
    (
        "canvas_data_url_prefix",
        "cannot be closed cheaply: env.js has a PNG encoder (stored deflate) but no JPEG/WebP \
         encoder, so `toDataURL(\"image/jpeg\")` returns a PNG (the spec's fallback for \
         unsupported types). The PNG bytes also differ from Chromium's (Skia + zlib compression).",
    ),
    (
        "document_all_quirk",
        "cannot be closed in QuickJS: `document.all` is the one object with [[IsHTMLDDA]] \
         (`typeof` is \"undefined\" yet it is not `undefined`); no JavaScript object can have \
         that slot, only the engine can create one.",
    ),
    (
        "es_globals_present",
        "cannot be closed in QuickJS: `WebAssembly` needs a WebAssembly engine; QuickJS has \
         none, and a stub would fail the first module a page compiles.",
    ),
    (
        "sort_inconsistent_comparator",
        "engine algorithm: with an inconsistent comparator the result is implementation-defined; \
         V8 uses TimSort, QuickJS its own merge sort. Closing it means replacing \
         `Array.prototype.sort` with a port of V8's TimSort (slower, for every page script).",
    ),
    (
        "thrown_type_error_message",
        "cannot be closed in QuickJS: the engine writes its own messages for errors it throws \
         (\"cannot read property 'x' of null\" vs V8's \"Cannot read properties of null \
         (reading 'x')\"); they are set inside the engine before any script sees the error.",
    ),
    (
        "undefined_function_message",
        "cannot be closed in QuickJS: engine-written message, as above (V8 names the callee \
         expression, QuickJS says \"not a function\").",
    ),
    (
        "webgl_context",
        "cannot be closed in QuickJS: WebGL needs a GPU or a software rasteriser (SwiftShader); \
         `getContext(\"webgl\")` returns null, as on a browser with WebGL disabled.",
    ),
];

/// Divergences no probe can show exactly but which matter, stated in the report.
const NOT_CLOSABLE: &str = "\
- **2D canvas text rendering (pixels).** `fillText`/`strokeText` draw nothing and paths are not \
  rasterised: glyph rasterisation (font files, hinting, anti-aliasing, Skia) cannot be reproduced \
  in QuickJS, so a canvas fingerprint hash (text drawn, then `toDataURL` or `getImageData`) \
  differs from any real browser's. Rectangles (`fillRect`, `clearRect`) and image data are exact. \
  The probes check the API's shape, not rendered text.\n\
- **Fonts and layout.** Metrics come from a nominal layout (16px text, 8px character width, 18px \
  lines, 8px body margin): offsets, rects and computed styles are consistent with each other and \
  with the viewport, not with any real font.\n\
- **Engine-level traits.** Error messages written by the engine, `document.all`, WebAssembly, \
  WebGL and the sort order for inconsistent comparators are QuickJS's own; `Math` functions \
  come from the C library (the probed values equal V8's; other inputs may differ in the last \
  bit).\n\
- **Timing.** The event loop's order matches (microtasks, timers, message events), but \
  `performance.now()` resolution and the speed of everything else are QuickJS's.\n";

fn compact(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap();
    let s = if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    };
    s.replace('|', "\\|")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut explicit = None;
    let mut record_baseline = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--chromium" => explicit = args.next(),
            "--record-baseline" => record_baseline = true,
            other => {
                panic!("unknown argument {other:?} (expected --chromium PATH, --record-baseline)")
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = find_chromium(explicit).expect("no chromium on PATH (pass --chromium PATH)");
    let version = Command::new(&chromium)
        .arg("--version")
        .output()
        .expect("chromium --version");
    let chromium_version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let dir = tempfile::tempdir().expect("temp dir");

    // Chromium's own user agent, minus the headless marker: what a real install presents.
    let own_ua = run_chromium(&chromium, dir.path(), "navigator.userAgent", None);
    let user_agent = own_ua
        .as_str()
        .expect("user agent")
        .replace("HeadlessChrome", "Chrome");
    eprintln!("{chromium_version}; user agent {user_agent}");

    let chrome: ProbeRun = serde_json::from_value(run_chromium(
        &chromium,
        dir.path(),
        &format!("({PROBES_JS})()"),
        Some(&user_agent),
    ))
    .expect("Chromium probe results");
    let quick = harness::run_in_quickjs(Some(&user_agent)).await;

    let baseline_path = root.join(BASELINE_JSON);
    if record_baseline {
        std::fs::write(
            &baseline_path,
            serde_json::to_string_pretty(&quick.values).unwrap() + "\n",
        )
        .expect("write baseline");
    }
    let baseline: Option<BTreeMap<String, Value>> = std::fs::read(&baseline_path)
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("baseline is JSON"));

    let notes: BTreeMap<&str, &str> = NOTES.iter().copied().collect();
    let mut matches = Vec::new();
    let mut before = 0;
    let mut rows = String::new();
    let mut divergences = String::new();
    for (name, kind) in &chrome.kinds {
        let c = &chrome.values[name];
        let q = quick.values.get(name).unwrap_or(&Value::Null);
        let ok = c == q;
        if ok {
            matches.push(name.clone());
        }
        if baseline.as_ref().and_then(|b| b.get(name)) == Some(c) {
            before += 1;
        }
        rows.push_str(&format!(
            "| `{name}` | {kind} | `{}` | `{}` | {} |\n",
            compact(c),
            compact(q),
            if ok { "match" } else { "**diverges**" }
        ));
        if !ok {
            divergences.push_str(&format!(
                "- `{name}` ({kind}): {}\n",
                notes
                    .get(name.as_str())
                    .copied()
                    .unwrap_or("not yet closed.")
            ));
        }
    }
    let total = chrome.kinds.len();
    let before_text = match &baseline {
        Some(_) => before.to_string(),
        None => "?".into(),
    };
    let summary = format!(
        "{total} probes, {before_text} match before, {} match after",
        matches.len()
    );
    let md = format!(
        "# Differential probes: QuickJS runtime vs headless Chromium\n\n\
         Generated by `cargo run --example probe_report` (do not edit by hand). The probes \
         (`tests/probes/probes.js`) are the kinds of checks bot detectors run; each returns a JSON \
         value that never depends on the URL, clock, randomness or installed fonts. They ran in \
         {chromium_version} (`--headless=new`, its own user agent without `Headless`, \
         `--disable-blink-features=AutomationControlled`) and in potproxy's QuickJS runtime \
         (`src/botguard/env.js`) presenting the same user agent:\n\n`{user_agent}`\n\n\
         **Summary: {summary}** (\"before\": the runtime before the probe work, \
         `{BASELINE_JSON}`).\n\n\
         `tests/probes.rs` fails when a probe listed as matching here stops matching \
         (Chromium's values: `{CHROMIUM_JSON}`).\n\n\
         ## Remaining divergences\n\n{divergences}\n\
         ## What cannot be closed in QuickJS\n\n{NOT_CLOSABLE}\n\
         ## All probes\n\n| probe | kind | Chromium | QuickJS | |\n|---|---|---|---|---|\n{rows}",
    );
    std::fs::write(root.join(REPORT_MD), md).expect("write report");
    let committed = Committed {
        chromium_version,
        user_agent,
        chromium: chrome.values.clone(),
        quickjs_matches: matches,
    };
    std::fs::write(
        root.join(CHROMIUM_JSON),
        serde_json::to_string_pretty(&committed).unwrap() + "\n",
    )
    .expect("write Chromium results");
    println!("{summary}");
}
