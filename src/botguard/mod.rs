//! The built-in BotGuard minter: Google's challenge VM run inside an embedded QuickJS.
//!
//! `vm` owns the JavaScript runtime thread; `challenge` parses the three challenge sources and
//! checks interpreters; `minter` drives the whole flow (challenge, VM, GenerateIT, minter) and
//! mints per binding.

pub mod challenge;
pub mod minter;
pub mod pool;
pub mod vm;
