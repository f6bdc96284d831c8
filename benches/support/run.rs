//! What the benchmarks' `main`s share: whether cargo asked for a measurement, the settings they
//! read from the environment, the runtime they measure on, and the median of their rounds.
// Each benchmark uses a different part of this.
#![allow(dead_code)]

/// Whether cargo runs `name` to measure (`cargo bench` passes `--bench`; `cargo test --benches`
/// passes nothing of the kind, and then only a line saying how to run it is printed).
pub fn measuring(name: &str) -> bool {
    let asked = std::env::args().any(|a| a == "--bench");
    if !asked {
        println!("{name}: run with `cargo bench --bench {name}`");
    }
    asked
}

/// The setting `name` from the environment, `default` when unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `work` to its end on a multi-threaded tokio runtime (a benchmark's `main` is not async:
/// it first decides whether to measure at all).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// The middle value of `v` (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
