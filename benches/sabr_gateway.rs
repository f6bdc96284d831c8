//! The SABR gateway against the progressive path, in the same run: one 50 MiB format (the fake's
//! itag 160) downloaded through the release `potproxy` binary from a gateway URL (potproxy runs
//! the SABR session) and from a progressive URL of the same bytes (potproxy streams
//! googlevideo's answer through), then 100 gateway streams at once for the proxy's peak RSS per
//! stream.
//!
//! Run: `cargo bench --bench sabr_gateway` (env `POTPROXY_BENCH_ROUNDS`, default 3;
//! `POTPROXY_BENCH_STREAMS`, default 100). Targets (issue 18): throughput ratio >= 0.8, peak RSS
//! < 2 MiB per stream at 100 streams.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/run.rs"]
mod run;

use std::time::{Duration, Instant};

use common::sabr::{SabrBehaviour, format};
use common::*;
use futures::StreamExt;
use proxy::{ProxyProcess, status_kib};
use run::{block_on, env_or, measuring, median};

const ITAG: u32 = 160;

/// The release binary minting with the built-in minter against the fake BotGuard (the fake's
/// SABR server takes only valid tokens), every fake name resolved to the fake origin.
fn start_proxy(pki: &TestPki, origin: &FakeOrigin) -> ProxyProcess {
    let mut resolve = String::new();
    for host in FAKE_NAMES {
        resolve.push_str(&format!("\"{host}\" = \"{}\"\n", origin.addr));
    }
    let rest = format!("[upstream.resolve]\n{resolve}[tokens]\nsources = [\"botguard\"]\n");
    // Its own state: tokens cached by another run were minted against another fake.
    ProxyProcess::start(pki, &rest, true)
}

/// Downloads `url` to the end; MB/s. `check` compares every byte with the format's.
async fn download(client: &reqwest::Client, url: &str, len: u64, check: bool) -> f64 {
    let start = Instant::now();
    let res = client.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let mut stream = res.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if check {
            assert!(
                chunk[..] == media_bytes(got, chunk.len() as u64)[..],
                "at {got}"
            );
        }
        got += chunk.len() as u64;
    }
    assert_eq!(got, len);
    len as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    if !measuring("sabr_gateway") {
        return;
    }
    let rounds: usize = env_or("POTPROXY_BENCH_ROUNDS", 3);
    let streams: usize = env_or("POTPROXY_BENCH_STREAMS", 100);
    block_on(async move {
        let pki = TestPki::new();
        let origin = FakeOrigin::start(&pki).await;
        origin.behaviour().sabr = SabrBehaviour::on();
        let proxy = start_proxy(&pki, &origin);
        let via = proxy.client().no_gzip().build().unwrap();
        let pr = player_response(&via, &player_body("WEB", "jNQXAC9IVRw")).await;
        let gateway = pr["streamingData"]["adaptiveFormats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["itag"] == ITAG)
            .and_then(|f| f["url"].as_str())
            .expect("a gateway URL for the bench format")
            .to_string();
        let len = format(ITAG).clen;
        // The same format's progressive URL of the same player response (its `ei` and `id`),
        // so potproxy puts its token on it as on any learned media URL.
        let sabr_url = potproxy::sabr::gateway::Gateway::parse(gateway.split_once('?').unwrap().1)
            .unwrap()
            .sabr_url;
        let param = |name: &str| {
            url::Url::parse(&sabr_url)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let progressive = format!(
            "https://rr1---sn-fake.googlevideo.com/videoplayback?expire=4102444800&ei={}&ip=127.0.0.1&id={}&itag={ITAG}&source=youtube&mime=video%2Fmp4&clen={len}&c=WEB",
            param("ei"),
            param("id")
        );
        // The minter warms up first (until then the token service answers with cold-start
        // placeholders, which the fake's SABR server refuses).
        for attempt in 0.. {
            let res = via.head(&gateway).send().await.unwrap();
            assert!(res.status().is_success());
            let probe = via
                .get(&gateway)
                .header("range", "bytes=0-0")
                .send()
                .await
                .unwrap();
            if probe.status().is_success() {
                break;
            }
            assert!(
                attempt < 60,
                "the gateway never answered: {}",
                probe.status()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Both paths serve the same bytes: checked once, outside the timed rounds.
        download(&via, &gateway, len, true).await;
        download(&via, &progressive, len, true).await;

        let (mut g, mut p) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Interleaved, so both see the same machine conditions.
            g.push(download(&via, &gateway, len, false).await);
            p.push(download(&via, &progressive, len, false).await);
        }
        let pid = proxy.pid();
        let before = status_kib(pid, "VmRSS:").unwrap_or(0);
        let hwm_before = status_kib(pid, "VmHWM:").unwrap_or(0);
        let started = Instant::now();
        let all = (0..streams).map(|_| {
            let (via, gateway) = (via.clone(), gateway.clone());
            async move { download(&via, &gateway, len, false).await }
        });
        futures::future::join_all(all).await;
        let wall = started.elapsed();
        let hwm = status_kib(pid, "VmHWM:").unwrap_or(0);
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "SABR gateway vs progressive, {:.0} MiB format (itag {ITAG}), {rounds} rounds, median (all runs)",
            len as f64 / 1048576.0
        );
        println!(
            "  progressive via potproxy {:8.1} MB/s   {:?}",
            median(p.clone()),
            p.iter().map(|x| x.round()).collect::<Vec<_>>()
        );
        println!(
            "  gateway via potproxy     {:8.1} MB/s   {:?}",
            median(g.clone()),
            g.iter().map(|x| x.round()).collect::<Vec<_>>()
        );
        println!("  ratio gateway/progressive {:7.2}", median(g) / median(p));
        println!(
            "  {streams} gateway streams at once: {:.1} s; RSS before {:.1} MiB, peak {:.1} MiB (peak before {:.1} MiB); {:.2} MiB per stream over the resting RSS",
            wall.as_secs_f64(),
            mib(before),
            mib(hwm),
            mib(hwm_before),
            mib(hwm.saturating_sub(before)) / streams as f64
        );
        let seen = origin.take();
        let with_pot = seen
            .iter()
            .filter(|s| s.path_and_query.contains(&format!("itag={ITAG}")))
            .filter(|s| s.query_values("pot").len() == 1)
            .count();
        println!("  progressive downloads that carried potproxy's token: {with_pot}");
        let sabr = origin.sabr_requests();
        assert!(
            sabr.iter().all(|r| r.token.is_some()),
            "every SABR request carried a token"
        );
        println!("  SABR requests answered by the fake: {}", sabr.len());
    });
}
