//! The fuzz targets' properties as a library the one-line binaries in `fuzz_targets/` call;
//! the same file is compiled into `tests/fuzz_corpus.rs` for the stable replay.

#[path = "checks.rs"]
mod checks;
pub use checks::*;
