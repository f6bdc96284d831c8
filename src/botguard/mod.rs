//! The built-in BotGuard minter: Google's challenge VM run inside an embedded QuickJS.
//!
//! `vm` owns the JavaScript runtime thread; `challenge` parses challenges and checks
//! interpreters; `plan` makes the flow's decisions (which source next, which interpreter may
//! run, the `/att/log` body, a minter's life) without touching the network; `settings` and
//! `error` hold the vocabulary the others share (settings, error kinds); `waa` makes the network
//! calls (page, att/get, att/log, Create, interpreter, GenerateIT);
//! `minter` drives the whole flow (challenge, VM, GenerateIT, minter), renews it and mints per
//! binding; `pool` keeps one minter per egress.

pub mod challenge;
pub mod error;
pub mod minter;
pub mod plan;
pub mod pool;
pub mod settings;
pub mod vm;
pub mod waa;
