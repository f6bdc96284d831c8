//! Bounded per-egress state: callers cycling through many proxies at once (the provider API's
//! `proxy`, here one chained proxy named with 200 different credentials, so 200 distinct egress
//! identities) cannot grow minters, their VM threads, browsers or metric labels past the caps.
//! Its own test binary: it counts this process's threads, which other tests would disturb.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::botguard::Verdict;
use common::chain::start_http_connect_proxy_with_auth;
use common::*;
use futures::StreamExt;
use potproxy::config::SourceKind;
use potproxy::upstream::Egress;
use serde_json::{Value, json};

const V: &str = "jNQXAC9IVRw";
const EGRESSES: usize = 200;
const AT_ONCE: usize = 50;

/// Threads of this process running a BotGuard VM (thread names are cut to 15 bytes).
fn vm_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with("potproxy-botgua"))
        })
        .count()
}

/// Samples `count` every few milliseconds until `stop`, keeping the highest value seen.
fn watch_peak(
    count: impl Fn() -> usize + Send + 'static,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let peak = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (peak.clone(), stop.clone());
    let sampler = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(count(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (peak, stop, sampler)
}

/// The distinct `egress` label values of `potproxy_minter_state` in a metrics text.
fn minter_state_egresses(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("potproxy_minter_state{"))
        .filter_map(|l| l.split("egress=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_proxies_fifty_at_once_never_exceed_the_minter_cap_and_all_get_tokens() {
    const CAP: usize = 4;
    let h = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        // Long enough that every caller is served in turn on a slow machine.
        .toml(&format!(
            "[tokens.botguard]\nmax_minters = {CAP}\nwarmup_wait_secs = 300\n"
        ))
        .start()
        .await;
    let (chain, _seen) = start_http_connect_proxy_with_auth(h.origin.addr).await;
    let api = format!("http://{}", h.proxy.api_addr.expect("api on"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let pool = h.proxy.services.minters.clone().expect("botguard pool");

    let (peak_threads, stop, sampler) = watch_peak(vm_threads);
    let pool_peak = Arc::new(AtomicUsize::new(0));
    let labels_peak = Arc::new(AtomicUsize::new(0));
    let answers: Vec<(usize, u16, Value)> = futures::stream::iter(0..EGRESSES)
        .map(|i| {
            let (client, api, pool) = (client.clone(), api.clone(), pool.clone());
            let (pool_peak, labels_peak) = (pool_peak.clone(), labels_peak.clone());
            async move {
                let proxy = format!("http://user{i}:secret-{i}@{chain}");
                let res = client
                    .post(format!("{api}/get_pot"))
                    .body(json!({"content_binding": V, "proxy": proxy}).to_string())
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body: Value =
                    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap_or(Value::Null);
                pool_peak.fetch_max(pool.live(), Ordering::Relaxed);
                if i % 10 == 0 {
                    let text = client
                        .get(format!("{api}/metrics"))
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    labels_peak.fetch_max(minter_state_egresses(&text).len(), Ordering::Relaxed);
                }
                (i, status, body)
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    for (i, status, body) in &answers {
        assert_eq!(*status, 200, "egress {i}: {body}");
        let token = body["poToken"].as_str().expect("a token");
        assert_eq!(
            h.origin.state.bg.verify(token, V),
            Verdict::Valid,
            "egress {i}"
        );
    }
    let tokens: BTreeSet<&str> = answers
        .iter()
        .map(|(_, _, b)| b["poToken"].as_str().unwrap())
        .collect();
    assert_eq!(
        tokens.len(),
        EGRESSES,
        "each egress minted with its own minter"
    );

    let peak = peak_threads.load(Ordering::Relaxed);
    assert!(
        (1..=CAP).contains(&peak),
        "{peak} VM threads at once, cap {CAP}"
    );
    assert!(vm_threads() <= CAP, "{} VM threads after", vm_threads());
    assert!(pool_peak.load(Ordering::Relaxed) <= CAP);
    assert!(pool.live() <= CAP);
    assert!(
        pool.evictions() >= (EGRESSES - CAP) as u64,
        "{} evictions",
        pool.evictions()
    );

    let text = client
        .get(format!("{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = minter_state_egresses(&text);
    // The configured egress (`direct`) and at most CAP request-named ones, never credentials.
    assert!(labels.len() <= CAP + 1, "{labels:?}");
    assert!(labels_peak.load(Ordering::Relaxed) <= CAP + 1);
    assert!(labels.iter().all(|l| !l.contains("secret")), "{labels:?}");
    assert!(
        counter(&text, "potproxy_egress_evictions_total{what=\"minter\"}")
            >= (EGRESSES - CAP) as u64,
        "{text}"
    );
}

#[tokio::test]
async fn when_every_minter_is_in_use_a_caller_for_another_proxy_gets_a_503_naming_the_setting() {
    let h = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        .toml("[tokens.botguard]\nmax_minters = 1\nwarmup_wait_secs = 1\n")
        .start()
        .await;
    let pool = h.proxy.services.minters.clone().expect("botguard pool");
    // Someone is using the only minter of a request-named proxy.
    let busy = pool
        .for_egress(Some(&Egress::parse("http://10.255.0.1:3128").unwrap()))
        .await
        .unwrap();
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{}/get_pot", h.proxy.api_addr.unwrap()))
        .body(json!({"content_binding": V, "proxy": "http://10.255.0.2:3128"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(body.contains("tokens.botguard.max_minters"), "{body}");
    assert_eq!(pool.live(), 1);
    drop(busy);
}

/// Browsers of this test process with a live process: distinct profile directories named on
/// running processes' command lines (every process of one browser names its own).
fn browsers_running() -> usize {
    let prefix = format!(
        "--user-data-dir={}",
        profile_root()
            .join(format!("{}-", std::process::id()))
            .display()
    );
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter_map(|cmd| {
            cmd.split(|b| *b == 0)
                .find(|a| a.starts_with(prefix.as_bytes()))
                .map(<[u8]>::to_vec)
        })
        .collect::<BTreeSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_proxies_at_once_never_run_more_browsers_than_the_cap_and_evicted_ones_are_killed() {
    if !have_browser() {
        return;
    }
    const CAP: usize = 2;
    // Browsers are heavy: fewer egresses than the minter test, still several times the cap and
    // all at once.
    const BROWSER_EGRESSES: usize = 10;
    let fakes = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (chain, _seen) = start_http_connect_proxy_with_auth(fakes.origin.addr).await;
    let config = Harness::builder()
        .sources(&[SourceKind::Browser])
        .toml(&format!(
            "[tokens.browser]\nmax_contexts = {CAP}\nprewarm = false\nwarmup_timeout_secs = 120\nmint_timeout_secs = 60\n"
        ))
        .config(&fakes, dir.path());
    let services = potproxy::build_services(&config).unwrap();
    let pool = services.browsers.clone().expect("browser pool");

    let (peak, stop, sampler) = watch_peak(browsers_running);
    let minted: Vec<Result<String, String>> = futures::stream::iter(0..BROWSER_EGRESSES)
        .map(|i| {
            let pool = pool.clone();
            async move {
                let egress = Egress::parse(&format!("http://user{i}:secret-{i}@{chain}")).unwrap();
                let m = pool
                    .for_egress(Some(&egress))
                    .await
                    .map_err(|e| e.to_string())?;
                let (token, _, _) = m.mint(V).await.map_err(|e| e.to_string())?;
                Ok(token.as_str().to_string())
            }
        })
        .buffer_unordered(BROWSER_EGRESSES)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    for (i, r) in minted.iter().enumerate() {
        let token = r.as_ref().unwrap_or_else(|e| panic!("egress {i}: {e}"));
        assert_eq!(fakes.origin.state.bg.verify(token, V), Verdict::Valid);
    }
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        (1..=CAP).contains(&peak),
        "{peak} browsers at once, cap {CAP}"
    );
    assert!(pool.live() <= CAP);
    assert!(pool.evictions() >= (BROWSER_EGRESSES - CAP) as u64);
    assert!(browsers_running() <= CAP);
    pool.shutdown().await;
    assert_eq!(browsers_running(), 0, "no browser left after shutdown");
    assert!(no_profiles_left(&profile_root()));
}

/// Where this test's browsers keep their profiles (the harness sets no state directory).
fn profile_root() -> std::path::PathBuf {
    potproxy::browser::BrowserSettings::default().profile_root()
}

/// No profile directory of this process's evicted or closed browsers remains.
fn no_profiles_left(root: &Path) -> bool {
    let prefix = format!("{}-", std::process::id());
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(&prefix))
}
