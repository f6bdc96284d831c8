//! Side-by-side proxy benchmark: direct vs potproxy vs mitmdump (with an addon doing the same
//! rewrites, bench/mitm_addon.py), same origin, same client, same run.
//!
//! Run: `cargo bench --bench proxies` (env `POTPROXY_BENCH_SECS`, default 5, per load phase;
//! `POTPROXY_BENCH_BIG_MB`, default 1024). Origin: nginx (Debian) when installed, else the
//! in-process fake. mitmdump comes from `target/clients/mitm` (`.ci/run` setup, or
//! `python3 -m venv target/clients/mitm && target/clients/mitm/bin/pip install mitmproxy==11.0.2`).
//! Proxies run pinned to core 0 (`taskset`), this process (client) and nginx to core 1.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/load.rs"]
mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use load::{Load, load};

const SMALL: &str = "/videoplayback?expire=1900000000&ei=Bench&ip=127.0.0.1&id=o-Bench&itag=140&source=youtube&c=MWEB&size=small";
const HOST: &str = "rr1---sn-bench.googlevideo.com";

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
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
    for (name, mb) in [("50m.bin", 50u64), ("big.bin", big_mb)] {
        let mut f = std::io::BufWriter::new(std::fs::File::create(files.join(name)).unwrap());
        let chunk = media_bytes(0, 1 << 20);
        for _ in 0..mb {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    let port = free_port();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
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

fn start_potproxy(pki: &TestPki, origin: SocketAddr, dir: &Path) -> (Proc, SocketAddr, PathBuf) {
    let port = free_port();
    let ca_dir = dir.join("potproxy-ca");
    let cfg = dir.join("potproxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[api]\nenabled = false\n[ca]\ndir = {ca:?}\n[upstream]\nextra_ca_certs = [{cert:?}]\n[upstream.resolve]\n\"*.googlevideo.com\" = \"{origin}\"\n\"www.youtube.com\" = \"{origin}\"\n[tokens]\nsources = [\"static\"]\ncache_file = \"\"\n[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n",
            ca = ca_dir.to_str().unwrap(),
            cert = pki.ca_path.to_str().unwrap(),
        ),
    )
    .unwrap();
    let child = taskset("0", Path::new(env!("CARGO_BIN_EXE_potproxy")))
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
    let confdir = dir.join("mitm");
    std::fs::create_dir_all(&confdir).unwrap();
    let addon = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/mitm_addon.py");
    let child = taskset("0", &bin)
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

fn client(
    proxy: Option<(SocketAddr, &Path)>,
    origin: SocketAddr,
    pki: &TestPki,
    keep_alive: bool,
) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .http1_only()
        .tls_built_in_root_certs(false);
    if !keep_alive {
        b = b.pool_max_idle_per_host(0);
    }
    match proxy {
        Some((addr, ca)) => b
            .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap(),
            ),
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
    new_conn: Load,
    player: Load,
    mb50: (f64, f64),
    big: (f64, f64),
    rss: Option<f64>,
}

async fn measure(
    name: &'static str,
    proxy: Option<(SocketAddr, &Path)>,
    origin: SocketAddr,
    pki: &TestPki,
    secs: f64,
    pid: Option<u32>,
) -> Report {
    let ka = client(proxy, origin, pki, true);
    let small_url = format!("https://{HOST}{SMALL}");
    let mut r = Report {
        name,
        ..Default::default()
    };
    for conc in [1usize, 16, 64] {
        let u = small_url.clone();
        // Warm the pools first.
        let _ = load(&ka, conc, 0.3, Arc::new(move |c| c.get(&u))).await;
        let u = small_url.clone();
        r.small.push((
            conc,
            load(&ka, conc, secs, Arc::new(move |c| c.get(&u))).await,
        ));
    }
    let fresh = client(proxy, origin, pki, false);
    let u = small_url.clone();
    r.new_conn = load(&fresh, 16, secs, Arc::new(move |c| c.get(&u))).await;
    let body = serde_json::to_vec(&player_body("MWEB", "jNQXAC9IVRw")).unwrap();
    r.player = load(
        &ka,
        16,
        secs,
        Arc::new(move |c| {
            c.post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
                .header("content-type", "application/json")
                .body(body.clone())
        }),
    )
    .await;
    r.mb50 = download(
        &ka,
        &format!("https://{HOST}{}", SMALL.replace("size=small", "size=50m")),
    )
    .await;
    r.big = download(
        &ka,
        &format!("https://{HOST}{}", SMALL.replace("size=small", "size=big")),
    )
    .await;
    r.rss = pid.and_then(peak_rss_mb);
    r
}

fn print_table(reports: &[Report], big_mb: u64) {
    // One markdown row: the label, then each report's cell.
    let row = |label: &str, cell: &dyn Fn(&Report) -> String| {
        let cells: Vec<String> = reports.iter().map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("figure", &|r| r.name.to_string());
    println!("|---|{}", "---|".repeat(reports.len()));
    for (i, conc) in [1, 16, 64].iter().enumerate() {
        row(
            &format!("small GET, keep-alive, c={conc}: rps (p50 / p99 ms)"),
            &|r| {
                let l = r.small[i].1;
                let errors = if l.errors > 0 {
                    format!(" [{} errors]", l.errors)
                } else {
                    String::new()
                };
                format!("{:.0} ({:.2} / {:.2}){errors}", l.rps, l.p50_ms, l.p99_ms)
            },
        );
    }
    row("new connection per request, c=16: rps (p50 ms)", &|r| {
        format!("{:.0} ({:.2})", r.new_conn.rps, r.new_conn.p50_ms)
    });
    row("player POST with rewrite, c=16: rps (p99 ms)", &|r| {
        format!("{:.0} ({:.2})", r.player.rps, r.player.p99_ms)
    });
    row("50 MB download: MB/s (TTFB ms)", &|r| {
        format!("{:.0} ({:.1})", r.mb50.0, r.mb50.1)
    });
    row(&format!("{big_mb} MB download: MB/s (TTFB ms)"), &|r| {
        format!("{:.0} ({:.1})", r.big.0, r.big.1)
    });
    row("proxy peak RSS (MB)", &|r| {
        r.rss
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "-".into())
    });
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxies: run with `cargo bench --bench proxies`");
        return;
    }
    let secs: f64 = std::env::var("POTPROXY_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let big_mb: u64 = std::env::var("POTPROXY_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    // The client (this process) on core 1, the proxies on core 0.
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    common::install_provider();
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
    let (pp, pp_addr, pp_ca) = start_potproxy(&pki, origin, dir.path());
    let mitm = start_mitmdump(&pki, origin, dir.path());
    println!(
        "origin: {origin_name} at {origin}; {secs} s per load phase; {big_mb} MB big download"
    );
    let mut reports = Vec::new();
    reports.push(rt.block_on(measure("direct", None, origin, &pki, secs, None)));
    reports.push(rt.block_on(measure(
        "potproxy",
        Some((pp_addr, &pp_ca)),
        origin,
        &pki,
        secs,
        Some(pp.0.id()),
    )));
    match &mitm {
        Some((m, addr, ca)) => reports.push(rt.block_on(measure(
            "mitmdump 11.0.2 + addon",
            Some((*addr, ca)),
            origin,
            &pki,
            secs,
            Some(m.0.id()),
        ))),
        None => println!("mitmdump: skipped (not installed in target/clients/mitm)"),
    }
    print_table(&reports, big_mb);
}
