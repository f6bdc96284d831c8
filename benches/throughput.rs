//! Large-download throughput: direct to the fake googlevideo origin vs through the release
//! `potproxy` binary, in the same run, plus the proxy's peak RSS while streaming.
//!
//! Run: `cargo bench --bench throughput` (env `POTPROXY_BENCH_MB`, default 1024, sets the size;
//! `POTPROXY_BENCH_ROUNDS`, default 3). The origin and the client share this process; the proxy
//! runs as its own process so its memory can be read from /proc.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/run.rs"]
mod run;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use proxy::{ProxyProcess, status_kib};
use run::{block_on, env_or, measuring, median};

fn start_proxy(pki: &TestPki, origin: &FakeOrigin) -> ProxyProcess {
    let rest = format!(
        "[upstream.resolve]\n\"*.googlevideo.com\" = \"{origin}\"\n[tokens]\nsources = [\"static\"]\n[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n",
        origin = origin.addr,
    );
    ProxyProcess::start(pki, &rest, false)
}

struct Run {
    mb_per_s: f64,
    ttfb: Duration,
}

async fn download(client: &reqwest::Client, url: &str, len: u64) -> Run {
    let start = Instant::now();
    let res = client.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let mut stream = res.bytes_stream();
    let mut got = 0u64;
    let mut ttfb = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        ttfb.get_or_insert_with(|| start.elapsed());
        got += chunk.len() as u64;
    }
    assert_eq!(got, len);
    let secs = start.elapsed().as_secs_f64();
    Run {
        mb_per_s: len as f64 / secs / 1e6,
        ttfb: ttfb.unwrap_or_default(),
    }
}

fn main() {
    if !measuring("throughput") {
        return;
    }
    let mb: u64 = env_or("POTPROXY_BENCH_MB", 1024);
    let rounds: usize = env_or("POTPROXY_BENCH_ROUNDS", 3);
    let len = mb * 1024 * 1024;
    block_on(async move {
        let pki = TestPki::new();
        let origin = FakeOrigin::start(&pki).await;
        let proxy = start_proxy(&pki, &origin);
        let host = "rr1---sn-bench.googlevideo.com";
        let url =
            format!("https://{host}/videoplayback?expire=1&ei=x&id=o-A&itag=140&c=MWEB&clen={len}");

        let direct = reqwest::Client::builder()
            .resolve(host, origin.addr)
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
            .tls_built_in_root_certs(false)
            .http1_only()
            .build()
            .unwrap();
        let via = proxy.client().build().unwrap();

        let (mut d, mut p) = (Vec::new(), Vec::new());
        let (mut dt, mut pt) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Interleave so both see the same machine conditions.
            let r = download(&direct, &url, len).await;
            d.push(r.mb_per_s);
            dt.push(r.ttfb.as_secs_f64() * 1e3);
            let r = download(&via, &url, len).await;
            p.push(r.mb_per_s);
            pt.push(r.ttfb.as_secs_f64() * 1e3);
        }
        let seen = origin.take();
        assert!(
            seen.iter()
                .filter(|s| s.query_values("pot").len() == 1)
                .count()
                == rounds,
            "every proxied download must carry one pot"
        );
        let rss = status_kib(proxy.pid(), "VmHWM:");
        println!("download of {mb} MiB, {rounds} rounds, median (all runs)");
        println!(
            "  direct        {:8.1} MB/s  ttfb {:6.2} ms   {:?}",
            median(d.clone()),
            median(dt),
            d.iter().map(|x| x.round()).collect::<Vec<_>>()
        );
        println!(
            "  via potproxy  {:8.1} MB/s  ttfb {:6.2} ms   {:?}",
            median(p.clone()),
            median(pt),
            p.iter().map(|x| x.round()).collect::<Vec<_>>()
        );
        println!("  ratio         {:8.2}", median(p) / median(d));
        match rss {
            Some(kib) => println!("  potproxy peak RSS {:.1} MiB", kib as f64 / 1024.0),
            None => println!("  potproxy peak RSS unavailable (no /proc)"),
        }
    });
}
