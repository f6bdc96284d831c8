//! Large-download throughput: direct to the fake googlevideo origin vs through the release
//! `potproxy` binary, in the same run, plus the proxy's peak RSS while streaming.
//!
//! Run: `cargo bench --bench throughput` (env `POTPROXY_BENCH_MB`, default 1024, sets the size;
//! `POTPROXY_BENCH_ROUNDS`, default 3). The origin and the client share this process; the proxy
//! runs as its own process so its memory can be read from /proc.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;

struct ProxyProcess {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn start_proxy(pki: &TestPki, origin: &FakeOrigin) -> ProxyProcess {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let config = format!(
        "listen = \"{addr}\"\n[ca]\ndir = {ca:?}\n[upstream]\nextra_ca_certs = [{cert:?}]\n[upstream.resolve]\n\"*.googlevideo.com\" = \"{origin}\"\n[tokens]\nsources = [\"static\"]\n[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n",
        ca = dir.path().join("ca").to_str().unwrap(),
        cert = pki.ca_path.to_str().unwrap(),
        origin = origin.addr,
    );
    let cfg_path = dir.path().join("bench.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_potproxy"))
        .arg("--config")
        .arg(&cfg_path)
        .env("POTPROXY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the potproxy binary");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() && dir.path().join("ca/ca.pem").exists() {
            return ProxyProcess {
                child,
                addr,
                _dir: dir,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("potproxy did not start listening on {addr}");
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: only run the
    // measurement when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: run with `cargo bench --bench throughput`");
        return;
    }
    let mb: u64 = std::env::var("POTPROXY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let rounds: usize = std::env::var("POTPROXY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let len = mb * 1024 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let pki = TestPki::new();
        let origin = FakeOrigin::start(&pki).await;
        let proxy = start_proxy(&pki, &origin);
        let ca_pem = std::fs::read(proxy._dir.path().join("ca/ca.pem")).unwrap();
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
        let via = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{}", proxy.addr)).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
            .tls_built_in_root_certs(false)
            .http1_only()
            .build()
            .unwrap();

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
        let rss = peak_rss_kib(proxy.child.id());
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
