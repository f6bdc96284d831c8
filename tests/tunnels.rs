//! Every blind path is the same tunnel: a `CONNECT` by name, an IP literal whose first bytes
//! name no intercepted host, and an upgraded (WebSocket-style) connection are each closed when
//! silent for `tunnel_idle_secs`, drained on SIGTERM, and logged with one access line carrying
//! the bytes that really moved. Run against the binary (its logs, its signals), with every
//! tunnel leaving through an upstream CONNECT proxy whose far end answers like a WebSocket
//! origin: `101` after a request head, then an echo.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::binary::Binary;
use common::chain::start_http_connect_proxy;
use common::egress::start_upgrade_echo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SWITCHED: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const HEAD: &[u8] = b"HELLO / HTTP/1.1\r\n\r\n";
const UPGRADE: &str = "GET http://ws.example.org/chat HTTP/1.1\r\nHost: ws.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Sends `preamble` to the proxy and reads its answer's head.
async fn open(proxy: SocketAddr, preamble: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(preamble.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    (s, head)
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert_eq!(n, 1, "closed mid-head: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Writes `data` and reads the same number of bytes back.
async fn echo(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back))
        .await
        .expect("the echo within 10 s")
        .unwrap();
    assert_eq!(back, data);
}

/// The three blind paths, each opened and used once: (kind, host, stream, bytes sent, bytes
/// received) as the client counted them.
async fn three_tunnels(
    proxy: SocketAddr,
) -> Vec<(&'static str, &'static str, TcpStream, u64, u64)> {
    let mut out = Vec::new();
    for (host, preamble) in [
        (
            "echo.example.org:443",
            "CONNECT echo.example.org:443 HTTP/1.1\r\nHost: echo.example.org:443\r\n\r\n",
        ),
        (
            "198.51.100.7:443",
            "CONNECT 198.51.100.7:443 HTTP/1.1\r\nHost: 198.51.100.7:443\r\n\r\n",
        ),
    ] {
        let (mut s, head) = open(proxy, preamble).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{host}: {head}");
        s.write_all(HEAD).await.unwrap();
        assert_eq!(read_head(&mut s).await, SWITCHED, "{host}");
        echo(&mut s, b"ping").await;
        out.push((
            "tunnel",
            host,
            s,
            (HEAD.len() + 4) as u64,
            (SWITCHED.len() + 4) as u64,
        ));
    }
    let (mut s, head) = open(proxy, UPGRADE).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    echo(&mut s, b"ping").await;
    out.push(("upgrade", "ws.example.org", s, 4, 4));
    out
}

async fn start_egress() -> String {
    let far_end = start_upgrade_echo().await;
    let (egress, _) = start_http_connect_proxy(far_end).await;
    format!("[upstream]\nproxy = \"http://{egress}\"\n")
}

#[tokio::test]
async fn every_blind_path_is_closed_when_silent_for_tunnel_idle_secs() {
    let upstream = start_egress().await;
    let bin = Binary::start(
        &format!("[timeouts]\nclient_idle_secs = 60\ntunnel_idle_secs = 2\n\n{upstream}"),
        &[],
    );
    let tunnels = three_tunnels(bin.addr).await;
    let started = Instant::now();
    for (kind, host, mut s, _, _) in tunnels {
        let mut b = [0u8; 16];
        // Generous: the idle clock is 2 s; anything under 30 s shows it ran at all (before,
        // IP-literal and upgraded tunnels were never closed for silence).
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut b))
            .await
            .unwrap_or_else(|_| panic!("{kind} {host} still open after {:?}", started.elapsed()));
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "{kind} {host} sent bytes: {n:?}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed before the idle limit: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn every_blind_path_writes_one_access_line_with_true_byte_counts() {
    let upstream = start_egress().await;
    let bin = Binary::start(&upstream, &[]);
    let tunnels = three_tunnels(bin.addr).await;
    let expected: Vec<_> = tunnels
        .iter()
        .map(|(kind, host, _, sent, got)| (*kind, *host, *sent, *got))
        .collect();
    drop(tunnels);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = bin.access_lines();
        let found = expected.iter().all(|(kind, host, _, _)| {
            lines
                .iter()
                .any(|l| l["kind"] == *kind && l["host"] == *host)
        });
        if found {
            for (kind, host, sent, got) in &expected {
                let line = lines
                    .iter()
                    .find(|l| l["kind"] == *kind && l["host"] == *host)
                    .unwrap();
                assert_eq!(line["bytes_in"], *sent, "{kind} {host}: {line}");
                assert_eq!(line["bytes_out"], *got, "{kind} {host}: {line}");
                assert_eq!(line["outcome"], "passed", "{kind} {host}: {line}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every tunnel logged an access line:\n{}",
            bin.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_blind_path_before_exiting() {
    let upstream = start_egress().await;
    let mut bin = Binary::start(&format!("[timeouts]\ndrain_secs = 30\n\n{upstream}"), &[]);
    let tunnels = three_tunnels(bin.addr).await;
    bin.signal(libc::SIGTERM);
    // Draining: each tunnel still carries bytes and the process waits for them.
    let mut open = Vec::new();
    for (kind, host, mut s, _, _) in tunnels {
        echo(&mut s, b"after SIGTERM").await;
        open.push((kind, host, s));
    }
    assert!(bin.running(), "exited with tunnels open:\n{}", bin.log());
    drop(open);
    let code = tokio::task::block_in_place(|| bin.exit_code(Duration::from_secs(20)));
    assert_eq!(code, Some(0), "{}", bin.log());
    assert!(bin.log().contains("drained"), "{}", bin.log());
}

/// This machine's own host name, when it resolves to a loopback address (Debian maps it to
/// 127.0.1.1, containers to 127.0.0.1): a name that is not `localhost` yet points at loopback.
fn loopback_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_string();
    let loopback = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 80))
        .ok()?
        .any(|a| a.ip().is_loopback());
    loopback.then_some(name)
}

/// A listener that counts the connections it accepts.
async fn counting_listener() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    (format!("127.0.0.1:{port}").parse().unwrap(), accepted)
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_before_any_connection_is_made() {
    let Some(name) = loopback_name() else {
        eprintln!("skipping: this machine's host name does not resolve to a loopback address");
        return;
    };
    let (target, accepted) = counting_listener().await;
    let h = common::Harness::builder().start().await;
    let authority = format!("{name}:{}", target.port());
    // A blind tunnel by name: 403, and the port never saw a connection (no oracle).
    let (_s, head) = open(
        h.proxy.addr,
        &format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // A plain request through the forwarding client: refused the same way.
    let (_s, head) = open(
        h.proxy.addr,
        &format!("GET http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
    )
    .await;
    assert!(!head.starts_with("HTTP/1.1 2"), "{head}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a refused destination was dialled"
    );
}

/// A plain-HTTP origin that answers 200 and reports each request head it read.
async fn head_recorder() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                let _ = tx.send(head);
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_host_header_naming_youtube_does_not_make_another_destination_youtubes() {
    let (origin, mut heads) = head_recorder().await;
    let h = common::Harness::builder()
        .static_token()
        .resolve("evil.example", origin)
        .start()
        .await;
    let (mut s, head) = open(
        h.proxy.addr,
        "GET http://evil.example/videoplayback?expire=1900000000&id=o-A&itag=140&c=WEB HTTP/1.1\r\nHost: rr1---sn-x.googlevideo.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    let seen = heads.recv().await.unwrap();
    assert!(
        !seen.contains("pot="),
        "a token went to a host that is not YouTube's: {seen}"
    );
}

#[tokio::test]
async fn userinfo_numeric_hosts_and_origin_form_requests_are_bad_requests() {
    let h = common::Harness::builder()
        .toml("[access]\nloopback_destinations = false\n")
        .start()
        .await;
    for preamble in [
        "CONNECT a@127.0.0.1:4416 HTTP/1.1\r\nHost: 127.0.0.1:4416\r\n\r\n",
        "GET http://a@127.0.0.1:4416/invalidate_caches HTTP/1.1\r\nHost: 127.0.0.1:4416\r\n\r\n",
        "CONNECT 2130706433:443 HTTP/1.1\r\nHost: 2130706433:443\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: www.youtube.com\r\n\r\n",
    ] {
        let (_s, head) = open(h.proxy.addr, preamble).await;
        assert!(
            head.starts_with("HTTP/1.1 400"),
            "{preamble:?} answered {head}"
        );
    }
}
