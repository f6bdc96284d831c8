#[path = "checks.rs"]
mod checks;
pub use checks::*;
