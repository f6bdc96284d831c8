//! The fuzz targets' committed inputs, replayed on the stable toolchain: every file under
//! `fuzz/corpus/<target>/` (seeds and what fuzzing kept) and `fuzz/regressions/<target>/`
//! (inputs that once failed) goes through the same checks the libFuzzer binaries run
//! (`fuzz/checks.rs`), so `cargo test` exercises them without nightly or cargo-fuzz.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("corpus entry").path()));
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let check = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("a known target");
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for file in files {
        let data = std::fs::read(&file).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", file.display());
    }
}

#[test]
fn every_target_has_a_committed_corpus() {
    for (target, _) in checks::TARGETS {
        assert!(!inputs(target).is_empty(), "no corpus for {target}");
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{target}.rs"));
        assert!(bin.exists(), "no fuzz target binary for {target}");
    }
}

#[test]
fn ump_reader_agrees_with_a_one_pass_walk_however_chunked() {
    replay("ump_scanner");
}

#[test]
fn sabr_token_edit_keeps_every_other_byte() {
    replay("sabr_set_po_token");
}

#[test]
fn page_parser_reads_any_page_and_round_trips_strings() {
    replay("page_parse");
}

#[test]
fn player_request_edit_sets_only_the_token() {
    replay("player_request");
}

#[test]
fn player_response_rewrite_changes_only_urls() {
    replay("player_response");
}

#[test]
fn media_url_rewrite_keeps_the_rest_of_the_url() {
    replay("media_url");
}

#[test]
fn cache_file_of_any_content_loads_within_bounds() {
    replay("cache_file");
}

#[test]
fn fleet_store_values_decode_or_are_refused() {
    replay("store_value");
}
