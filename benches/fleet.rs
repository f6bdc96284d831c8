//! Fleet benchmark (`[cluster]`, docs/fleet.md), against a real `redis-server` on loopback:
//!
//! 1. a token-cache hit served from the node's own cache vs one served through Redis (the
//!    local cache emptied before every call, so each answer is a Redis GET plus bookkeeping);
//! 2. throughput of a 3-node fleet (one Redis) vs one node alone, on the same mixed load:
//!    `/get_pot` for 100 bindings over the nodes' APIs and ranged media GETs through the
//!    nodes' proxies (media URLs learned on node 0, looked up by the others through Redis).
//!
//! Run: `cargo bench --bench fleet` (env `POTPROXY_BENCH_SECS`, default 5, per load phase;
//! `POTPROXY_BENCH_HITS`, default 2000, cache hits timed). Needs redis-server installed.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/load.rs"]
mod load;
#[path = "support/run.rs"]
mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::redis::RedisServer;
use common::*;
use load::{Load, load};
use potproxy::RunningProxy;
use potproxy::config::SourceKind;
use potproxy::token::Binding;
use potproxy::tokens::TokenRequest;
use run::{block_on, env_or};

/// `n` nodes on `fakes`, with `[cluster]` on `redis` when given.
async fn nodes(fakes: &Fakes, n: usize, redis: Option<&RedisServer>) -> Vec<RunningProxy> {
    let ca_dir = tempfile::tempdir().unwrap();
    let mut builder = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard]);
    if let Some(r) = redis {
        builder = builder.toml(&format!(
            "[cluster]\nredis = {:?}\nprefix = \"bench{}:\"\n",
            r.url(),
            std::process::id()
        ));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            potproxy::start(builder.config(fakes, ca_dir.path()))
                .await
                .unwrap(),
        );
    }
    // The CA dir must outlive the nodes' start only.
    drop(ca_dir);
    out
}

async fn cache_hits(redis: &RedisServer, hits: usize) {
    let fakes = Fakes::start().await;
    let n = nodes(&fakes, 2, Some(redis)).await;
    let req = TokenRequest::new(Binding::Video("benchfleet1".into()));
    let (a, b) = (&n[0].services.tokens, &n[1].services.tokens);
    let t = a.get(&req).await.unwrap();
    a.get(&req).await.unwrap();
    let started = Instant::now();
    for _ in 0..hits {
        assert_eq!(a.get(&req).await.unwrap(), t);
    }
    let local = started.elapsed().as_secs_f64() * 1e6 / hits as f64;
    let started = Instant::now();
    for _ in 0..hits {
        b.invalidate_caches();
        let issued = b.issue(&req).await.unwrap();
        assert!(issued.cached && issued.token == t, "served by the fleet");
    }
    let fleet = started.elapsed().as_secs_f64() * 1e6 / hits as f64;
    println!("| token-cache hit | µs per hit |");
    println!("|---|---:|");
    println!("| local (in-process) | {local:.1} |");
    println!("| through Redis (local miss) | {fleet:.1} |");
}

/// The mixed load over `n` nodes for `secs`: get_pot and media GETs, round robin.
async fn mixed_load(fakes: &Fakes, n: &[RunningProxy], secs: f64) -> (Load, Load) {
    let first = client_via(n[0].addr, n[0].ca_cert_pem.as_bytes());
    let p = player_response(&first, &player_body("MWEB", "jNQXAC9IVRw")).await;
    let media = p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = fakes;
    let apis: Arc<Vec<String>> = Arc::new(
        n.iter()
            .map(|x| format!("http://{}/get_pot", x.api_addr.unwrap()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let get_pot = {
        let (apis, next) = (apis.clone(), next.clone());
        load(
            &plain,
            16,
            secs,
            Arc::new(move |c: &reqwest::Client| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                c.post(&apis[i % apis.len()]).body(format!(
                    "{{\"content_binding\": \"benchbind{:03}\"}}",
                    i % 100
                ))
            }),
        )
    };
    let media_loads = n.iter().map(|node| {
        let c = client_via(node.addr, node.ca_cert_pem.as_bytes());
        let url = media.clone();
        async move {
            load(
                &c,
                (16 / n.len()).max(1),
                secs,
                Arc::new(move |c: &reqwest::Client| c.get(&url).header("range", "bytes=0-65535")),
            )
            .await
        }
    });
    let (pot, media) = tokio::join!(get_pot, futures::future::join_all(media_loads));
    let media = media.iter().fold(Load::default(), |acc, l| Load {
        rps: acc.rps + l.rps,
        p50_ms: acc.p50_ms.max(l.p50_ms),
        p99_ms: acc.p99_ms.max(l.p99_ms),
        errors: acc.errors + l.errors,
    });
    (pot, media)
}

async fn throughput(redis: &RedisServer, secs: f64) {
    println!();
    println!("| setup | get_pot req/s | p99 ms | media req/s | p99 ms (worst node) | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, count, fleet) in [
        ("1 node, no cluster", 1, false),
        ("3 nodes + Redis", 3, true),
    ] {
        let fakes = Fakes::start().await;
        let n = nodes(&fakes, count, fleet.then_some(redis)).await;
        let (pot, media) = mixed_load(&fakes, &n, secs).await;
        println!(
            "| {name} | {:.0} | {:.1} | {:.0} | {:.1} | {} |",
            pot.rps,
            pot.p99_ms,
            media.rps,
            media.p99_ms,
            pot.errors + media.errors
        );
        for node in n {
            node.shutdown().await;
        }
    }
}

fn main() {
    install_provider();
    let Some(redis) = RedisServer::start() else {
        eprintln!("fleet bench: redis-server not installed; nothing to measure");
        return;
    };
    let secs: f64 = env_or("POTPROXY_BENCH_SECS", 5.0);
    let hits = env_or("POTPROXY_BENCH_HITS", 2000.0) as usize;
    block_on(async {
        cache_hits(&redis, hits).await;
        throughput(&redis, secs).await;
    });
}
