//! What an operator sees and what clients fetch: `/metrics`, `/healthz`, `/readyz`, the access
//! log and JSON logs, the PAC file and the CA page; and hostile answers: a player response cut
//! mid-body, a 5 MB player response, a page full of `ytcfg.set({` markers.
//!
//! Metrics are per process and tests in this file run in parallel, so counter assertions are
//! on increases, never on exact values.

mod common;

use common::scripted::{Script, scripted_origin};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{FakeOrigin, Fakes, Harness, STATIC_TOKEN, TestPki, player_body};

const VIDEO: &str = "dQw4w9WgXcQ";
const PLAYER_URL: &str = "https://www.youtube.com/youtubei/v1/player?prettyPrint=false";

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn get_text(url: String) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post_player(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_move_with_a_rewritten_player_request() {
    let h = Harness::builder().static_token().api(true).start().await;
    let api = h.proxy.api_addr.unwrap();
    let series = "potproxy_requests_total{kind=\"player\",outcome=\"rewritten\"}";
    let (_, before) = get_text(format!("http://{api}/metrics")).await;
    let res = post_player(&h.client(), PLAYER_URL).await;
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    // The request is counted when its response body has gone out; allow that a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let (status, text) = get_text(format!("http://{api}/metrics")).await;
        assert_eq!(status, 200);
        if metric(&text, series) > metric(&before, series) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metric(&after, series) > metric(&before, series),
        "{series} did not move:\n{after}"
    );
    for s in [
        "potproxy_rewrites_total{what=\"player\"}",
        "potproxy_tokens_total{source=\"static\",outcome=\"minted\"}",
        "potproxy_bytes_total{direction=\"downstream\",kind=\"player\"}",
        "potproxy_bytes_total{direction=\"upstream\",kind=\"player\"}",
    ] {
        assert!(metric(&after, s) > 0, "{s} missing:\n{after}");
    }
    assert!(after.contains("potproxy_token_cache_entries "), "{after}");
    assert!(after.contains("potproxy_sessions "), "{after}");
}

#[tokio::test]
async fn healthz_is_200_and_readyz_needs_a_token_source() {
    let not_ready = Harness::builder().api(true).start().await;
    let api = not_ready.proxy.api_addr.unwrap();
    assert_eq!(get_text(format!("http://{api}/healthz")).await.0, 200);
    let (status, text) = get_text(format!("http://{api}/readyz")).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no default token"), "{text}");

    let ready = Harness::builder().static_token().api(true).start().await;
    let api = ready.proxy.api_addr.unwrap();
    let (status, text) = get_text(format!("http://{api}/readyz")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("static"), "{text}");
}

/// node is needed to evaluate the PAC file: skipped without it, except under CI.
fn node() -> Option<&'static str> {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("node");
    }
    if common::testutil::ci() {
        panic!("node is required under CI (.ci/run installs nodejs)");
    }
    eprintln!("skipping: node is not installed");
    None
}

#[tokio::test]
async fn pac_file_sends_only_intercepted_hosts_through_the_proxy() {
    let h = Harness::builder().api(true).start().await;
    let api = h.proxy.api_addr.unwrap();
    let res = reqwest::get(format!("http://{api}/proxy.pac"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/x-ns-proxy-autoconfig"
    );
    let pac = res.text().await.unwrap();
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.pac");
    std::fs::write(&path, &pac).unwrap();
    // The PAC helpers browsers provide, as Mozilla's pac_utils define them.
    let script = r#"
const fs = require("fs");
function dnsDomainIs(host, domain) {
  return host.length >= domain.length && host.substring(host.length - domain.length) == domain;
}
function shExpMatch(s, p) {
  return new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$").test(s);
}
eval(fs.readFileSync(process.argv[1], "utf8"));
for (const host of process.argv.slice(2)) {
  console.log(host + " " + FindProxyForURL("https://" + host + "/", host));
}
"#;
    let hosts = [
        "www.youtube.com",
        "WWW.YouTube.com",
        "rr3---sn-abc.googlevideo.com",
        "googlevideo.com",
        "example.com",
        "notwww.youtube.com",
    ];
    let out = Command::new(node)
        .arg("-e")
        .arg(script)
        .arg(&path)
        .args(hosts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let proxy = format!("PROXY {}", h.proxy.addr);
    let answer = |host: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{host} ")))
            .unwrap_or_else(|| panic!("{host} not answered:\n{text}"))
            .to_string()
    };
    assert_eq!(answer("www.youtube.com"), proxy, "{pac}");
    assert_eq!(answer("WWW.YouTube.com"), proxy, "{pac}");
    assert_eq!(answer("rr3---sn-abc.googlevideo.com"), proxy, "{pac}");
    assert_eq!(answer("googlevideo.com"), "DIRECT", "{pac}");
    assert_eq!(answer("example.com"), "DIRECT", "{pac}");
    assert_eq!(answer("notwww.youtube.com"), "DIRECT", "{pac}");
}

#[tokio::test]
async fn ca_page_and_pem_are_served_through_the_proxy_and_on_the_api() {
    let h = Harness::builder().api(true).start().await;
    let pem = h.proxy.ca_cert_pem.clone();
    let client = h.client();
    let page = client.get("http://potproxy.invalid/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    for what in [
        "Linux",
        "macOS",
        "Windows",
        "Android",
        "iOS",
        "Firefox",
        "yt-dlp",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(page.contains(what), "{what} missing from the CA page");
    }
    let first_line = pem.lines().nth(1).unwrap();
    assert!(
        page.contains(first_line),
        "the page carries the certificate"
    );

    let via_proxy = client
        .get("http://potproxy.invalid/ca.pem")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(via_proxy, pem);
    let api = h.proxy.api_addr.unwrap();
    let (status, on_api) = get_text(format!("http://{api}/ca.pem")).await;
    assert_eq!(status, 200);
    assert_eq!(on_api, pem);
}

// ---- Hostile answers from a scripted origin ----

async fn harness_on_scripted(script: Script, page: String, api: bool) -> Harness {
    let pki = TestPki::new();
    let addr = scripted_origin(&pki, script, Arc::new(page)).await;
    let origin = FakeOrigin {
        addr,
        state: Default::default(),
    };
    Harness::builder()
        .static_token()
        .api(api)
        .start_on(Fakes { pki, origin })
        .await
}

#[tokio::test]
async fn a_player_response_cut_mid_body_is_an_error_at_the_client() {
    let h = harness_on_scripted(
        Script::CutPlayer {
            declared: 50_000,
            sent: 1_000,
        },
        String::new(),
        false,
    )
    .await;
    let res = post_player(&h.client(), PLAYER_URL).await;
    let status = res.status();
    let body = res.bytes().await;
    assert!(
        status == 502 || body.is_err(),
        "a broken answer must not pass for a complete one: {status}, {body:?}"
    );
}

#[tokio::test]
async fn a_page_full_of_ytcfg_markers_passes_intact() {
    let mut page = String::from("<html><head><script>");
    while page.len() < 2 * 1024 * 1024 {
        page.push_str("ytcfg.set({\"A\":1 ");
    }
    page.push_str("</script></head></html>");
    let h = harness_on_scripted(Script::BigPlayer(1000), page.clone(), false).await;
    // A bounded wait, not a timing claim (benches/proxies.rs measures against direct).
    let got = tokio::time::timeout(Duration::from_secs(60), async {
        h.client()
            .get(format!("https://www.youtube.com/watch?v={VIDEO}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
    .await
    .expect("the page came through within 60 s");
    assert_eq!(got.len(), page.len());
    assert!(got == page, "the page passes unchanged");
}

// ---- The binary, for what only a process shows: its logs and its memory ----

struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts the potproxy binary against `origin` with a static token and the API on; waits
    /// for both listeners.
    fn start(
        pki: &TestPki,
        origin: SocketAddr,
        env: &[(&str, &str)],
    ) -> (Spawned, SocketAddr, SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let fakes_upstream = upstream_toml(pki, origin);
        let config = format!(
            "listen = \"127.0.0.1:0\"\n\n[ca]\ndir = {ca:?}\n\n[tokens]\nsources = [\"static\"]\n\n[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n{fakes_upstream}",
            ca = dir.path().join("ca").to_str().unwrap(),
        );
        let config_path = dir.path().join("potproxy.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_potproxy"));
        cmd.arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env_remove("POTPROXY_LOG")
            .env_remove("POTPROXY_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let spawned = Spawned {
            child,
            lines,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let proxy = spawned.logged_addr("potproxy listening");
            let api = spawned.logged_addr("provider API listening");
            if let (Some(p), Some(a)) = (proxy, api) {
                return (spawned, p, a);
            }
            assert!(
                Instant::now() < deadline,
                "potproxy did not start:\n{}",
                spawned.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `addr` of the first line with `message` (text or JSON logs).
    fn logged_addr(&self, message: &str) -> Option<SocketAddr> {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().find(|l| l.contains(message))?;
        let at = line.find("addr")?;
        let rest = &line[at + 4..];
        let start = rest.find(|c: char| c.is_ascii_digit())?;
        let end = rest[start..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
            .map_or(rest.len(), |e| start + e);
        rest[start..end].parse().ok()
    }

    fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("ca").join("ca.pem")).unwrap()
    }

    /// `VmHWM` / `VmRSS` of the process, in KiB.
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upstream_toml(pki: &TestPki, origin: SocketAddr) -> String {
    let mut text = format!(
        "[upstream]\nextra_ca_certs = [{:?}]\n\n[upstream.resolve]\n",
        pki.ca_path.to_str().unwrap()
    );
    for host in common::FAKE_NAMES {
        text.push_str(&format!("\"{host}\" = \"{origin}\"\n"));
    }
    text
}

/// Waits (without blocking the runtime the scripted origin runs on) for a log line.
async fn wait_for(spawned: &Spawned, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !spawned.lines.lock().unwrap().iter().any(|l| pred(l)) {
        assert!(
            Instant::now() < deadline,
            "{what} never logged:\n{}",
            spawned.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn json_logs_parse_line_by_line_and_the_access_line_has_no_query() {
    let pki = TestPki::new();
    let origin = scripted_origin(
        &pki,
        Script::BigPlayer(10_000),
        Arc::new("<html></html>".into()),
    )
    .await;
    let (spawned, proxy, _api) = Spawned::start(&pki, origin, &[("POTPROXY_LOG_FORMAT", "json")]);
    let client = common::client_via(proxy, spawned.ca_pem().as_bytes());
    let res = post_player(
        &client,
        "https://www.youtube.com/youtubei/v1/player?key=SECRETQUERYVALUE&prettyPrint=false",
    )
    .await;
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    wait_for(&spawned, "the access line", |l| {
        l.contains("potproxy::access")
    })
    .await;
    // A blind tunnel (a name not intercepted) gets its line when it closes.
    let tunnel_client = common::client_via(proxy, pki.ca_pem.as_bytes());
    let page = tunnel_client
        .get("https://tunnel.example.org/?q=SECRETQUERYVALUE")
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.bytes().await.unwrap();
    drop(tunnel_client);
    wait_for(&spawned, "the tunnel's access line", |l| {
        l.contains("potproxy::access") && l.contains("\"tunnel\"")
    })
    .await;
    let text = spawned.stderr();
    assert!(
        !text.contains("SECRETQUERYVALUE"),
        "a query string was logged:\n{text}"
    );
    let mut access = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        if v["target"] == "potproxy::access" && v["kind"] == "player" {
            access = Some(v);
        }
    }
    let tunnel = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["target"] == "potproxy::access" && v["kind"] == "tunnel")
        .expect("a tunnel access line");
    assert_eq!(tunnel["method"], "CONNECT", "{tunnel}");
    assert_eq!(tunnel["host"], "tunnel.example.org:443", "{tunnel}");
    assert!(tunnel["bytes_out"].as_u64().unwrap() > 0, "{tunnel}");
    let access = access.expect("an access line");
    assert_eq!(access["path"], "/youtubei/v1/player", "{access}");
    assert_eq!(access["method"], "POST", "{access}");
    assert_eq!(access["host"], "www.youtube.com", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert_eq!(access["rewrite"], "player", "{access}");
    assert!(access["bytes_out"].as_u64().unwrap() > 5_000, "{access}");
    assert!(access["ms"].is_u64(), "{access}");
}

#[tokio::test]
async fn a_5_mb_player_response_costs_under_50_mb_and_logs_carry_no_ansi() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("skipping: no /proc to read memory from");
        return;
    }
    let pki = TestPki::new();
    let origin = scripted_origin(
        &pki,
        Script::BigPlayer(5 * 1024 * 1024),
        Arc::new(String::new()),
    )
    .await;
    let (spawned, proxy, _api) = Spawned::start(&pki, origin, &[]);
    let client = common::client_via(proxy, spawned.ca_pem().as_bytes());
    // Warm up TLS, the token path and the allocator with a small request first.
    let warm = client
        .get(format!("https://www.youtube.com/watch?v={VIDEO}"))
        .send()
        .await
        .unwrap();
    warm.bytes().await.unwrap();
    let baseline = spawned.memory_kib("VmHWM");
    let baseline_rss = spawned.memory_kib("VmRSS");
    let res = post_player(&client, PLAYER_URL).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert!(body.len() >= 5 * 1024 * 1024 - 100);
    wait_for(&spawned, "the player access line", |l| {
        l.contains("potproxy::access") && l.contains("/youtubei/v1/player")
    })
    .await;
    let peak = spawned.memory_kib("VmHWM");
    let grown_mb = (peak.saturating_sub(baseline)) / 1024;
    eprintln!("VmHWM baseline {baseline} KiB, after the 5 MB response {peak} KiB (+{grown_mb} MB)");
    assert!(
        grown_mb < 50,
        "peak memory grew by {grown_mb} MB for a 5 MB player response"
    );
    // Memory is handed back after the body (allocator trim), not kept for good.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rss = spawned.memory_kib("VmRSS");
    let kept_mb = rss.saturating_sub(baseline_rss) / 1024;
    eprintln!("VmRSS baseline {baseline_rss} KiB, after {rss} KiB (+{kept_mb} MB)");
    assert!(
        kept_mb < 50,
        "{kept_mb} MB still resident after the response"
    );
    let text = spawned.stderr();
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a log that is not a terminal:\n{text}"
    );
}

#[tokio::test]
async fn metrics_show_the_cluster_redis_health_after_traffic() {
    let Some(redis) = common::redis::RedisServer::start() else {
        return;
    };
    let toml = format!(
        "[cluster]\nredis = {:?}\nprefix = \"observe:\"\ntimeout_ms = 200\n",
        redis.url()
    );
    let h = Harness::builder()
        .static_token()
        .api(true)
        .toml(&toml)
        .start()
        .await;
    let res = post_player(&h.client(), PLAYER_URL).await;
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    let api = h.proxy.api_addr.unwrap();
    let (status, text) = get_text(format!("http://{api}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "potproxy_cluster_redis_up "), 1, "{text}");
    for s in [
        "potproxy_cluster_redis_calls_failed ",
        "potproxy_cluster_outages ",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
}

#[tokio::test]
async fn bidi_and_control_characters_from_a_client_reach_the_log_escaped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = TestPki::new();
    let origin = scripted_origin(&pki, Script::BigPlayer(1000), Arc::new(String::new())).await;
    // A path that would show as "...exe.jpg" to a reader and carries a C1 control. (ESC and
    // other C0 controls cannot reach a log through a request line or header: the HTTP parser
    // refuses them; the escaper's unit tests cover them.)
    let path = "/evil\u{202e}gpj.exe\u{200f}\u{85}end";
    let raw = ['\u{202e}', '\u{200f}', '\u{85}'];
    for format in ["text", "json"] {
        let (spawned, proxy, _api) =
            Spawned::start(&pki, origin, &[("POTPROXY_LOG_FORMAT", format)]);
        let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
        s.write_all(
            format!(
                "GET http://www.youtube.com{path} HTTP/1.1\r\nHost: www.youtube.com\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut reply)).await;
        wait_for(&spawned, "the access line", |l| {
            l.contains("potproxy::access") && l.contains("evil")
        })
        .await;
        let text = spawned.stderr();
        assert!(
            !text.contains(raw),
            "{format}: a raw control character was logged:\n{text}"
        );
        let access = text
            .lines()
            .find(|l| l.contains("potproxy::access") && l.contains("evil"))
            .unwrap();
        if format == "text" {
            assert!(
                access.contains(r"/evil\u{202e}gpj.exe\u{200f}\u{85}end"),
                "{access}"
            );
        } else {
            let v: serde_json::Value = serde_json::from_str(access).unwrap();
            assert_eq!(
                v["path"], path,
                "the JSON value is the path itself: {access}"
            );
        }
    }
}
