//! Side-by-side proxy benchmark: direct vs potproxy vs mitmdump (with an addon doing the same
//! rewrites, bench/mitm_addon.py), same origin, same client, same run.
//!
//! Run: `cargo bench --bench proxies` (env `POTPROXY_BENCH_SECS`, default 5, per load phase;
//! `POTPROXY_BENCH_BIG_MB`, default 1024). Origin: nginx (Debian) when installed, else the
//! in-process fake. mitmdump comes from `target/clients/mitm` (`.ci/run` setup, or
//! `python3 -m venv target/clients/mitm && target/clients/mitm/bin/pip install mitmproxy==11.0.2`).
//! Proxies run pinned to core 0 (`taskset`), this process (client) and nginx to core 1.
//!
//! `POTPROXY_BENCH_BASELINE=<path to another potproxy binary>` adds it as a column (a before/after
//! comparison in one run). `POTPROXY_BENCH_PEERS` (default `direct,potproxy,tunnel,mitmdump`) and `POTPROXY_BENCH_PHASES`
//! (default `small,new,player,50m,big,streams`; `POTPROXY_BENCH_CONC`, default `1,16,64`) pick columns
//! and rows, e.g. to profile one phase with
//! `perf record -C 0`. The big download runs `POTPROXY_BENCH_ROUNDS` times (default 3) per peer,
//! the peers taking turns; the table shows medians. The CPU row is the proxy process's user +
//! system time over the big download (from `/proc/<pid>/stat`), divided by the GiB moved.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/load.rs"]
mod load;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/run.rs"]
mod run;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use load::{Load, load};
use proxy::status_kib;
use run::{env_or, measuring};

const SMALL: &str = "/videoplayback?expire=1900000000&ei=Bench&ip=127.0.0.1&id=o-Bench&itag=140&source=youtube&c=MWEB&size=small";
const HOST: &str = "rr1---sn-bench.googlevideo.com";

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {addr}");
}

/// A memory figure of a process in MB: `field` of `/proc/<pid>/status` (`VmHWM:` the peak
/// resident set, `VmRSS:` the current one).
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    status_kib(pid, field).map(|kb| kb as f64 / 1024.0)
}

fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

fn rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

/// User + system CPU seconds a process has used so far.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn wanted(var: &str, default: &str, item: &str) -> bool {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .any(|x| x.trim() == item)
}

fn phase(item: &str) -> bool {
    wanted(
        "POTPROXY_BENCH_PHASES",
        "small,new,player,50m,big,streams",
        item,
    )
}

fn peer(item: &str) -> bool {
    wanted(
        "POTPROXY_BENCH_PEERS",
        "direct,potproxy,tunnel,mitmdump",
        item,
    )
}

/// The core the proxies run on (`POTPROXY_BENCH_PROXY_CORE`, default 0; 1 puts them beside the
/// client and origin, which removes the cross-core wake-ups from the latency figures).
fn proxy_core() -> String {
    std::env::var("POTPROXY_BENCH_PROXY_CORE").unwrap_or_else(|_| "0".into())
}

fn taskset(core: &str, program: &Path) -> Command {
    if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("taskset");
        c.args(["-c", core]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// nginx serving the files and a small JSON answer for the player path.
fn start_nginx(pki: &TestPki, dir: &Path, big_mb: u64) -> Option<(Proc, SocketAddr)> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("small.bin"), media_bytes(0, 100)).unwrap();
    std::fs::write(files.join("2m.bin"), media_bytes(0, 2 << 20)).unwrap();
    for (name, mb) in [("50m.bin", 50u64), ("big.bin", big_mb)] {
        let mut f = std::io::BufWriter::new(std::fs::File::create(files.join(name)).unwrap());
        let chunk = media_bytes(0, 1 << 20);
        for _ in 0..mb {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
        // On disk before anything is measured: writeback of a fresh gigabyte would otherwise
        // run under the first phases.
        f.into_inner().unwrap().sync_all().unwrap();
    }
    let port = free_port();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location = /videoplayback {{
      if ($arg_size = "2m") {{ rewrite ^ /files/2m.bin last; }}
      if ($arg_size = "50m") {{ rewrite ^ /files/50m.bin last; }}
      if ($arg_size = "big") {{ rewrite ^ /files/big.bin last; }}
      rewrite ^ /files/small.bin last;
    }}
    location /files/ {{ internal; alias {files}/; }}
    location = /youtubei/v1/player {{ default_type application/json; return 200 '{{"playabilityStatus":{{"status":"OK"}}}}'; }}
  }}
}}
"#,
        dir = dir.display(),
        cert = pki.leaf_cert_path.display(),
        key = pki.leaf_key_path.display(),
        files = files.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = taskset("1", &nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr);
    Some((Proc(child), addr))
}

/// potproxy; with `tunnel_only`, it intercepts none of the bench's hosts, so every request
/// crosses it as a blind byte tunnel: the floor of any proxy process on its own core.
fn start_potproxy(
    pki: &TestPki,
    origin: SocketAddr,
    dir: &Path,
    tunnel_only: bool,
) -> (Proc, SocketAddr, PathBuf) {
    start_potproxy_bin(
        Path::new(env!("CARGO_BIN_EXE_potproxy")),
        pki,
        origin,
        dir,
        tunnel_only,
    )
}

fn start_potproxy_bin(
    bin: &Path,
    pki: &TestPki,
    origin: SocketAddr,
    dir: &Path,
    tunnel_only: bool,
) -> (Proc, SocketAddr, PathBuf) {
    let port = free_port();
    let name = format!("{}-{port}", if tunnel_only { "tunnel" } else { "potproxy" });
    let ca_dir = dir.join(format!("{name}-ca"));
    let cfg = dir.join(format!("{name}.toml"));
    let intercept = if tunnel_only {
        "[intercept]\nhosts = [\"music.youtube.com\"]\n"
    } else {
        ""
    };
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\n{intercept}[api]\nenabled = false\n[ca]\ndir = {ca:?}\n[upstream]\nextra_ca_certs = [{cert:?}]\n[upstream.resolve]\n\"*.googlevideo.com\" = \"{origin}\"\n\"www.youtube.com\" = \"{origin}\"\n[tokens]\nsources = [\"static\"]\ncache_file = \"\"\n[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n",
            ca = ca_dir.to_str().unwrap(),
            cert = pki.ca_path.to_str().unwrap(),
        ),
    )
    .unwrap();
    let child = taskset(&proxy_core(), bin)
        .arg("--config")
        .arg(&cfg)
        .env("POTPROXY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr);
    (Proc(child), addr, ca_dir.join("ca.pem"))
}

fn start_mitmdump(
    pki: &TestPki,
    origin: SocketAddr,
    dir: &Path,
) -> Option<(Proc, SocketAddr, PathBuf)> {
    let bin = std::env::var_os("POTPROXY_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients"))
        .join("mitm/bin/mitmdump");
    if !bin.exists() {
        return None;
    }
    let port = free_port();
    let confdir = dir.join(format!("mitm-{port}"));
    std::fs::create_dir_all(&confdir).unwrap();
    let addon = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/mitm_addon.py");
    let child = taskset(&proxy_core(), &bin)
        .args([
            "-q",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .arg("--set")
        .arg(format!("confdir={}", confdir.display()))
        .arg("--set")
        .arg(format!(
            "ssl_verify_upstream_trusted_ca={}",
            pki.ca_path.display()
        ))
        .args(["--set", "stream_large_bodies=1m", "-s"])
        .arg(addon)
        .env("BENCH_TOKEN", STATIC_TOKEN)
        .env("BENCH_ORIGIN", origin.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr);
    let ca = confdir.join("mitmproxy-ca-cert.pem");
    for _ in 0..100 {
        if ca.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Proc(child), addr, ca))
}
/// How a client reaches the origin: through a proxy (address, its CA) or direct.
type Via<'a> = Option<(SocketAddr, &'a Path)>;

fn client(proxy: Via<'_>, origin: SocketAddr, pki: &TestPki, keep_alive: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .http1_only()
        .tls_built_in_root_certs(false);
    if !keep_alive {
        b = b.pool_max_idle_per_host(0);
    }
    match proxy {
        // The origin's CA too: a blind tunnel shows the client the origin's own certificate.
        Some((addr, ca)) => b
            .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap(),
            )
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()),
        None => b
            .resolve(HOST, origin)
            .resolve("www.youtube.com", origin)
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()),
    }
    .build()
    .unwrap()
}

async fn download(c: &reqwest::Client, url: &str) -> (f64, f64) {
    let t = Instant::now();
    let res = c.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let mut s = res.bytes_stream();
    let mut n = 0u64;
    let mut ttfb = None;
    while let Some(chunk) = s.next().await {
        ttfb.get_or_insert_with(|| t.elapsed().as_secs_f64() * 1e3);
        n += chunk.unwrap().len() as u64;
    }
    (
        n as f64 / t.elapsed().as_secs_f64() / 1e6,
        ttfb.unwrap_or(f64::NAN),
    )
}

#[derive(Debug, Default)]
struct Report {
    name: &'static str,
    small: Vec<(usize, Load)>,
    new_conn: Option<Load>,
    player: Option<Load>,
    mb50: Option<(f64, f64)>,
    big: Option<(f64, f64)>,
    /// Proxy CPU seconds per GiB over the big download.
    cpu_per_gib: Option<f64>,
    rss: Option<f64>,
    pid: Option<u32>,
}

async fn measure(
    name: &'static str,
    proxy: Via<'_>,
    origin: SocketAddr,
    pki: &TestPki,
    secs: f64,
    pid: Option<u32>,
) -> Report {
    let ka = client(proxy, origin, pki, true);
    let small_url = format!("https://{HOST}{SMALL}");
    let mut r = Report {
        name,
        pid,
        ..Default::default()
    };
    if phase("small") {
        for conc in concurrencies() {
            let u = small_url.clone();
            // Warm the pools first.
            let _ = load(&ka, conc, 0.3, Arc::new(move |c| c.get(&u))).await;
            let u = small_url.clone();
            r.small.push((
                conc,
                load(&ka, conc, secs, Arc::new(move |c| c.get(&u))).await,
            ));
        }
    }
    if phase("new") {
        let fresh = client(proxy, origin, pki, false);
        let u = small_url.clone();
        r.new_conn = Some(load(&fresh, 16, secs, Arc::new(move |c| c.get(&u))).await);
    }
    if phase("player") {
        let body = serde_json::to_vec(&player_body("MWEB", "jNQXAC9IVRw")).unwrap();
        r.player = Some(
            load(
                &ka,
                16,
                secs,
                Arc::new(move |c| {
                    c.post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
                        .header("content-type", "application/json")
                        .body(body.clone())
                }),
            )
            .await,
        );
    }
    if phase("50m") {
        r.mb50 = Some(
            download(
                &ka,
                &format!("https://{HOST}{}", SMALL.replace("size=small", "size=50m")),
            )
            .await,
        );
    }
    r.rss = pid.and_then(peak_rss_mb);
    r
}

/// The big download, `rounds` times per peer, the peers taking turns (so a slow minute of
/// this shared machine lands on all of them); each report gets its median MB/s, TTFB and
/// proxy CPU seconds per GiB.
async fn big_rounds(
    reports: &mut [Report],
    peers: &[(Via<'_>, Option<u32>)],
    origin: SocketAddr,
    pki: &TestPki,
    rounds: usize,
) {
    let big_url = format!("https://{HOST}{}", SMALL.replace("size=small", "size=big"));
    let clients: Vec<_> = peers
        .iter()
        .map(|(proxy, _)| client(*proxy, origin, pki, true))
        .collect();
    let mut samples = vec![Vec::new(); peers.len()];
    for _ in 0..rounds {
        for (i, (_, pid)) in peers.iter().enumerate() {
            let cpu_before = pid.and_then(cpu_secs);
            let (mbps, ttfb) = download(&clients[i], &big_url).await;
            let cpu = match (cpu_before, pid.and_then(cpu_secs)) {
                (Some(b), Some(a)) => Some((a - b) / (big_mb() as f64 / 1024.0)),
                _ => None,
            };
            samples[i].push((mbps, ttfb, cpu));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get(v.len() / 2).copied()
    };
    for (r, s) in reports.iter_mut().zip(samples) {
        let mbps = median(s.iter().map(|x| x.0).collect());
        let ttfb = median(s.iter().map(|x| x.1).collect());
        r.big = mbps.zip(ttfb);
        r.cpu_per_gib = median(s.iter().filter_map(|x| x.2).collect());
        if let Some(pid) = r.pid {
            r.rss = peak_rss_mb(pid);
        }
    }
}

/// Concurrencies of the small-GET phase (`POTPROXY_BENCH_CONC`, default `1,16,64`).
fn concurrencies() -> Vec<usize> {
    std::env::var("POTPROXY_BENCH_CONC")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect()
}

fn big_mb() -> u64 {
    env_or("POTPROXY_BENCH_BIG_MB", 1024)
}

fn print_table(reports: &[Report], big_mb: u64) {
    // One markdown row: the label, then each report's cell ("-" where not measured).
    let row = |label: &str, cell: &dyn Fn(&Report) -> Option<String>| {
        let cells: Vec<String> = reports
            .iter()
            .map(|r| cell(r).unwrap_or_else(|| "-".into()))
            .collect();
        if cells.iter().any(|c| c != "-") {
            println!("| {label} | {} |", cells.join(" | "));
        }
    };
    println!(
        "| figure | {} |",
        reports
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(reports.len()));
    for (i, conc) in concurrencies().iter().enumerate() {
        row(
            &format!("small GET, keep-alive, c={conc}: rps (p50 / p99 ms)"),
            &|r| {
                let l = r.small.get(i)?.1;
                let errors = if l.errors > 0 {
                    format!(" [{} errors]", l.errors)
                } else {
                    String::new()
                };
                Some(format!(
                    "{:.0} ({:.2} / {:.2}){errors}",
                    l.rps, l.p50_ms, l.p99_ms
                ))
            },
        );
    }
    row("new connection per request, c=16: rps (p50 ms)", &|r| {
        r.new_conn
            .map(|l| format!("{:.0} ({:.2})", l.rps, l.p50_ms))
    });
    row("player POST with rewrite, c=16: rps (p99 ms)", &|r| {
        r.player.map(|l| format!("{:.0} ({:.2})", l.rps, l.p99_ms))
    });
    row("50 MB download: MB/s (TTFB ms)", &|r| {
        r.mb50.map(|(m, t)| format!("{m:.0} ({t:.1})"))
    });
    row(
        &format!("{big_mb} MB download, median: MB/s (TTFB ms)"),
        &|r| r.big.map(|(m, t)| format!("{m:.0} ({t:.1})")),
    );
    row(
        &format!("proxy CPU seconds per GiB ({big_mb} MB download)"),
        &|r| r.cpu_per_gib.map(|c| format!("{c:.2}")),
    );
    // What one core of the proxy could move if nothing else limited it.
    row("one proxy core's capacity at that cost (MB/s)", &|r| {
        r.cpu_per_gib.map(|c| format!("{:.0}", 1073.741824 / c))
    });
    row("proxy peak RSS (MB)", &|r| r.rss.map(|m| format!("{m:.1}")));
}

/// The memory run: `n` concurrent 2 MiB downloads through a fresh proxy process, over HTTP/1.1
/// (one connection each) or HTTP/2 (one connection, `n` streams).
#[derive(Debug)]
struct Streams {
    name: String,
    /// Resident set after one warm-up request, before the load.
    baseline_mb: f64,
    peak_mb: f64,
    /// Resident set once the load has been gone for `STREAMS_IDLE`.
    after_mb: f64,
    secs: f64,
    failed: usize,
}

const STREAMS_IDLE: Duration = Duration::from_secs(10);

async fn streams(
    name: String,
    (addr, ca): (SocketAddr, &Path),
    pid: u32,
    pki: &TestPki,
    h2: bool,
    n: usize,
) -> Streams {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .pool_max_idle_per_host(n)
        .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    b = if h2 {
        b.http2_adaptive_window(true)
    } else {
        b.http1_only()
    };
    let c = b.build().unwrap();
    let url = format!("https://{HOST}{}", SMALL.replace("size=small", "size=2m"));
    // One warm-up download: TLS configs, pools and the leaf certificate exist before the baseline.
    let _ = c.get(&url).send().await.unwrap().bytes().await;
    let baseline_mb = rss_mb(pid).unwrap_or(f64::NAN);
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let res = c.get(&url).send().await.ok()?;
                if !res.status().is_success() {
                    return None;
                }
                let mut s = res.bytes_stream();
                let mut got = 0usize;
                while let Some(chunk) = s.next().await {
                    got += chunk.ok()?.len();
                }
                (got == 2 << 20).then_some(())
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if t.await.ok().flatten().is_none() {
            failed += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let peak_mb = peak_rss_mb(pid).unwrap_or(f64::NAN);
    drop(c);
    tokio::time::sleep(STREAMS_IDLE).await;
    Streams {
        name,
        baseline_mb,
        peak_mb,
        after_mb: rss_mb(pid).unwrap_or(f64::NAN),
        secs,
        failed,
    }
}

fn print_streams(rows: &[Streams], n: usize) {
    println!();
    println!(
        "| {n} concurrent 2 MiB downloads | MB/s | RSS before (MB) | peak (MB) | per stream (KB) | {}s after (MB) | failed |",
        STREAMS_IDLE.as_secs()
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {} |",
            r.name,
            (n * (2 << 20)) as f64 / r.secs / 1e6,
            r.baseline_mb,
            r.peak_mb,
            (r.peak_mb - r.baseline_mb) * 1024.0 / n as f64,
            r.after_mb,
            r.failed
        );
    }
}

/// AES-GCM seal speed of one core (this process's), in MB/s, on 16 KiB records as TLS sends
/// them, with the aws-lc-rs build rustls uses: the ceiling a MITM proxy (which decrypts and
/// re-encrypts every byte) is measured against.
fn aes_gcm_mb_s(alg: &'static aws_lc_rs::aead::Algorithm) -> f64 {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(alg, &vec![7u8; alg.key_len()]).unwrap());
    let mut record = vec![0u8; 16 * 1024];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(1) {
        let nonce = Nonce::assume_unique_for_key([(n % 251) as u8; 12]);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut record)
            .unwrap();
        let _ = std::hint::black_box(tag);
        n += 1;
    }
    (n * record.len() as u64) as f64 / t.elapsed().as_secs_f64() / 1e6
}

/// Lets this process (and the proxies and nginx it starts) hold a thousand connections each.
fn raise_nofile() {
    let lim = libc::rlimit {
        rlim_cur: 65536,
        rlim_max: 65536,
    };
    // SAFETY: setrlimit reads the struct; failure leaves the old limit.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
            cur.rlim_cur = cur.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
        }
    }
}

fn main() {
    if !measuring("proxies") {
        return;
    }
    let secs: f64 = env_or("POTPROXY_BENCH_SECS", 5.0);
    let big_mb = big_mb();
    // The client (this process) on core 1, the proxies on core 0.
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    common::install_provider();
    raise_nofile();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_nginx, origin, origin_name) = match start_nginx(&pki, dir.path(), big_mb) {
        Some((p, a)) => (Some(p), a, "nginx"),
        None => {
            let o = rt.block_on(FakeOrigin::start(&pki));
            (None, o.addr, "in-process fake")
        }
    };
    let pp = start_potproxy(&pki, origin, dir.path(), false);
    let floor = peer("tunnel").then(|| start_potproxy(&pki, origin, dir.path(), true));
    // Another build of potproxy side by side (before/after a change), same config.
    let baseline = std::env::var_os("POTPROXY_BENCH_BASELINE")
        .map(PathBuf::from)
        .map(|bin| start_potproxy_bin(&bin, &pki, origin, dir.path(), false));
    let mitm = peer("mitmdump")
        .then(|| start_mitmdump(&pki, origin, dir.path()))
        .flatten();
    println!(
        "origin: {origin_name} at {origin}; {secs} s per load phase; {big_mb} MB big download"
    );
    println!(
        "AES-GCM on one core (aws-lc-rs, 16 KiB records): AES-256 {:.0} MB/s, AES-128 {:.0} MB/s",
        aes_gcm_mb_s(&aws_lc_rs::aead::AES_256_GCM),
        aes_gcm_mb_s(&aws_lc_rs::aead::AES_128_GCM)
    );
    // The columns, in order: name, proxy (address, CA), proxy process.
    let mut columns: Vec<(&str, Via, Option<u32>)> = Vec::new();
    if peer("direct") {
        columns.push(("direct", None, None));
    }
    let started = [
        ("potproxy", Some(&pp)),
        ("potproxy, baseline build", baseline.as_ref()),
        ("potproxy blind tunnel (floor)", floor.as_ref()),
        ("mitmdump 11.0.2 + addon", mitm.as_ref()),
    ];
    for (name, proc) in started {
        if let Some((p, addr, ca)) = proc.filter(|_| name != "potproxy" || peer("potproxy")) {
            columns.push((name, Some((*addr, ca.as_path())), Some(p.0.id())));
        }
    }
    if peer("mitmdump") && mitm.is_none() {
        println!("mitmdump: skipped (not installed in target/clients/mitm)");
    }
    let mut reports: Vec<Report> = columns
        .iter()
        .map(|(name, proxy, pid)| rt.block_on(measure(name, *proxy, origin, &pki, secs, *pid)))
        .collect();
    if phase("big") {
        let rounds: usize = env_or("POTPROXY_BENCH_ROUNDS", 3);
        let peers: Vec<_> = columns
            .iter()
            .map(|(_, proxy, pid)| (*proxy, *pid))
            .collect();
        rt.block_on(big_rounds(&mut reports, &peers, origin, &pki, rounds));
    }
    print_table(&reports, big_mb);
    drop((pp, floor, mitm, baseline));
    if phase("streams") {
        let n: usize = env_or("POTPROXY_BENCH_STREAMS", 1000);
        let mut rows = Vec::new();
        for h2 in [false, true] {
            let proto = if h2 { "HTTP/2" } else { "HTTP/1.1" };
            if peer("potproxy") {
                let (p, addr, ca) = start_potproxy(&pki, origin, dir.path(), false);
                rows.push(rt.block_on(streams(
                    format!("potproxy, {proto}"),
                    (addr, &ca),
                    p.0.id(),
                    &pki,
                    h2,
                    n,
                )));
            }
            if let Some(bin) = std::env::var_os("POTPROXY_BENCH_BASELINE") {
                let (p, addr, ca) =
                    start_potproxy_bin(Path::new(&bin), &pki, origin, dir.path(), false);
                rows.push(rt.block_on(streams(
                    format!("potproxy baseline build, {proto}"),
                    (addr, &ca),
                    p.0.id(),
                    &pki,
                    h2,
                    n,
                )));
            }
            if let Some((p, addr, ca)) = peer("mitmdump")
                .then(|| start_mitmdump(&pki, origin, dir.path()))
                .flatten()
            {
                rows.push(rt.block_on(streams(
                    format!("mitmdump 11.0.2, {proto}"),
                    (addr, &ca),
                    p.0.id(),
                    &pki,
                    h2,
                    n,
                )));
            }
        }
        print_streams(&rows, n);
    }
}
