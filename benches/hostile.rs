//! Hostile answers, direct vs through potproxy (in-process, against the scripted origin): a
//! 2 MB page full of `ytcfg.set({` markers (issue 12 asks for within 2x of direct) and a 5 MB
//! player response (learned on the way back). Prints the median of each and the ratio.
//!
//! Run: `cargo bench --bench hostile` (env `POTPROXY_BENCH_ROUNDS`, default 20).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/run.rs"]
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::scripted::{SCRIPTED_VIDEO, Script, scripted_origin};
use common::{FakeOrigin, Fakes, Harness, TestPki, body_of, player_body};
use run::{env_or, median};

fn marker_page(size: usize) -> String {
    let mut page = String::from("<html><head><script>");
    while page.len() < size {
        page.push_str("ytcfg.set({\"A\":1 ");
    }
    page.push_str("</script></head></html>");
    page
}

async fn time_page(c: &reqwest::Client, rounds: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let body =
            body_of(c.get(format!("https://www.youtube.com/watch?v={SCRIPTED_VIDEO}"))).await;
        assert!(body.len() > 1024 * 1024);
        times.push(t.elapsed());
    }
    median(times)
}

async fn time_player(c: &reqwest::Client, rounds: usize) -> Duration {
    let body = serde_json::to_vec(&player_body("WEB", SCRIPTED_VIDEO)).unwrap();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let got = body_of(
            c.post("https://www.youtube.com/youtubei/v1/player")
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert!(got.len() > 4 * 1024 * 1024);
        times.push(t.elapsed());
    }
    median(times)
}

#[tokio::main]
async fn main() {
    let rounds: usize = env_or("POTPROXY_BENCH_ROUNDS", 20);
    common::install_provider();
    let pki = TestPki::new();
    let page = Arc::new(marker_page(2 * 1024 * 1024));
    let addr = scripted_origin(&pki, Script::BigPlayer(5 * 1024 * 1024), page).await;
    let direct = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("www.youtube.com", addr)
        .no_proxy()
        .build()
        .unwrap();
    let origin = FakeOrigin {
        addr,
        state: Default::default(),
    };
    let h = Harness::builder()
        .static_token()
        .start_on(Fakes { pki, origin })
        .await;
    let proxied = h.client();
    println!(
        "{:<28} {:>12} {:>12} {:>7}",
        "answer", "direct", "potproxy", "ratio"
    );
    let (d, p) = (
        time_page(&direct, rounds).await,
        time_page(&proxied, rounds).await,
    );
    println!(
        "{:<28} {:>10.1}ms {:>10.1}ms {:>6.2}x",
        "2 MB ytcfg-marker page",
        d.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        p.as_secs_f64() / d.as_secs_f64()
    );
    let (d, p) = (
        time_player(&direct, rounds).await,
        time_player(&proxied, rounds).await,
    );
    println!(
        "{:<28} {:>10.1}ms {:>10.1}ms {:>6.2}x",
        "5 MB player response",
        d.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        p.as_secs_f64() / d.as_secs_f64()
    );
}
