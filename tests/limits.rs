//! Bounded under abuse and a good service citizen: silent clients, tunnels and origins are cut
//! off on time; a process out of descriptors does not spin and serves again when they free up;
//! a connection over the cap gets a clear 503; SIGTERM lets a download finish and exits 0;
//! SIGHUP does not stop the proxy.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::binary::Binary;
use common::stalls::{Stall, start_silent_server, start_slow_http, start_stalling_http};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes (Ok(0) or a reset); `None` if still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|_| start.elapsed())
}

#[tokio::test]
async fn silent_client_is_disconnected_after_client_idle_secs() {
    let plain = start_plain_http().await;
    let h = Harness::builder()
        .resolve("plain.test", plain)
        .toml("[timeouts]\nclient_idle_secs = 1\n")
        .start()
        .await;
    let mut s = TcpStream::connect(h.proxy.addr).await.unwrap();
    let took = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("a client that never sends a byte is disconnected");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );

    // Idle between keep-alive requests counts the same.
    let mut s = TcpStream::connect(h.proxy.addr).await.unwrap();
    s.write_all(b"GET http://plain.test/a HTTP/1.1\r\nHost: plain.test\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("plain:/a") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "proxy closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("an idle keep-alive connection is closed");
}

#[tokio::test]
async fn silent_client_after_connect_is_disconnected() {
    let h = Harness::builder()
        .toml("[timeouts]\nclient_idle_secs = 1\n")
        .start()
        .await;
    // An intercepted host: the proxy waits for the client's TLS hello, which never comes.
    let (mut s, head) = raw_connect(
        h.proxy.addr,
        "CONNECT www.youtube.com:443 HTTP/1.1\r\nHost: www.youtube.com:443\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("a CONNECT that never sends its first byte is closed");
}

#[tokio::test]
async fn silent_blind_tunnel_is_closed_after_tunnel_idle_secs_not_client_idle() {
    let silent = start_silent_server().await;
    let banner = start_banner_server().await;
    let h = Harness::builder()
        .resolve("silent.test", silent)
        .resolve("ssh.test", banner)
        .toml("[timeouts]\nclient_idle_secs = 1\ntunnel_idle_secs = 3\n")
        .start()
        .await;
    let (mut s, head) = raw_connect(
        h.proxy.addr,
        "CONNECT silent.test:443 HTTP/1.1\r\nHost: silent.test:443\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let took = closed_within(&mut s, Duration::from_secs(15))
        .await
        .expect("a tunnel where nobody speaks is closed");
    assert!(
        took >= Duration::from_millis(2500),
        "a blind tunnel is timed by tunnel_idle_secs (3 s), not client_idle_secs: {took:?}"
    );

    // A tunnel with traffic outlives the idle limit.
    let (mut s, head) = raw_connect(
        h.proxy.addr,
        "CONNECT ssh.test:22 HTTP/1.1\r\nHost: ssh.test:22\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"SSH-2.0"));
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        s.write_all(b"ping").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping", "a busy tunnel stays open");
    }
}

#[tokio::test]
async fn stalled_origin_gives_504_within_upstream_headers_secs() {
    let stalled = start_stalling_http(Stall::BeforeHeaders).await;
    let h = Harness::builder()
        .resolve("stalled.test", stalled)
        .toml("[timeouts]\nupstream_headers_secs = 1\n")
        .start()
        .await;
    let start = Instant::now();
    let res = tokio::time::timeout(
        Duration::from_secs(15),
        h.client().get("http://stalled.test/video").send(),
    )
    .await
    .expect("the proxy answers instead of hanging")
    .unwrap();
    assert_eq!(res.status(), 504);
    assert!(start.elapsed() >= Duration::from_millis(900));
    let text = res.text().await.unwrap();
    assert!(text.contains("upstream_headers_secs"), "{text}");
}

#[tokio::test]
async fn origin_stalling_mid_body_aborts_the_response_instead_of_truncating_it() {
    let stalled = start_stalling_http(Stall::MidBody {
        len: 100_000,
        sent: 1000,
    })
    .await;
    let h = Harness::builder()
        .resolve("stalled.test", stalled)
        .toml("[timeouts]\nupstream_idle_secs = 1\n")
        .start()
        .await;
    let res = h
        .client()
        .get("http://stalled.test/file")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(15), res.bytes())
        .await
        .expect("a stalled body is cut off, not waited on forever");
    assert!(
        body.is_err(),
        "the client must see an aborted body, got {} bytes as if complete",
        body.map(|b| b.len()).unwrap_or_default()
    );
}

#[tokio::test]
async fn connection_over_the_cap_gets_a_503() {
    let h = Harness::builder()
        .toml("[limits]\nmax_connections = 2\n")
        .start()
        .await;
    let _a = TcpStream::connect(h.proxy.addr).await.unwrap();
    let _b = TcpStream::connect(h.proxy.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = TcpStream::connect(h.proxy.addr).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(text.contains("max_connections"), "{text:?}");
    drop((_a, _b));
}

// ---------------------------------------------------------------------------------------------
// The binary: descriptor limits and signals.
// ---------------------------------------------------------------------------------------------

/// The binary with text logs, under `prefix` when given.
fn start_binary(extra_toml: &str, resolve: &[(&str, SocketAddr)], prefix: &[&str]) -> Binary {
    Binary::start_with(extra_toml, resolve, prefix, false)
}

fn plain_client(proxy: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{proxy}")).unwrap())
        .no_gzip()
        .build()
        .unwrap()
}

fn have_prlimit() -> bool {
    let found = Path::new("/usr/bin/prlimit").exists() || Path::new("/bin/prlimit").exists();
    if !found {
        assert!(
            !common::testutil::ci(),
            "prlimit (util-linux) is required in CI"
        );
        eprintln!("skipping: prlimit (util-linux) not installed");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_out_of_descriptors_stays_idle_and_serves_again_when_they_free_up() {
    if !have_prlimit() {
        return;
    }
    let plain = start_plain_http().await;
    // A cap above the descriptor limit, so accept really runs out of descriptors.
    let bin = start_binary(
        "[limits]\nmax_connections = 100000\n",
        &[("plain.test", plain)],
        &["prlimit", "--nofile=256:256"],
    );
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(bin.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = bin.cpu();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = bin.cpu() - before;
    assert!(
        used < Duration::from_millis(500),
        "out of descriptors, the proxy used {used:?} of CPU in 3 s (spinning on accept?)"
    );
    let log = bin.log();
    let lines = log.matches("cannot accept connections").count();
    assert!(
        (1..=2).contains(&lines),
        "accept errors are seen and throttled, got {lines} lines:\n{log}"
    );

    drop(idle);
    let res = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match plain_client(bin.addr)
                .get("http://plain.test/again")
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => return r.text().await.unwrap(),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .expect("the proxy serves again once the idle connections are gone");
    assert_eq!(res, "plain:/again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_download_finish_then_exits_zero() {
    let (chunks, chunk_len) = (25usize, 4096usize);
    let slow = start_slow_http(chunks, chunk_len, Duration::from_millis(100)).await;
    let mut bin = start_binary("", &[("slow.test", slow)], &[]);
    let mut res = plain_client(bin.addr)
        .get("http://slow.test/big")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = Vec::new();
    body.extend_from_slice(&res.chunk().await.unwrap().expect("first bytes"));
    bin.signal(libc::SIGTERM);

    // The listener closes at once: new clients are refused while the download goes on.
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        while TcpStream::connect(bin.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the listener is closed after SIGTERM");

    while let Some(c) = tokio::time::timeout(Duration::from_secs(15), res.chunk())
        .await
        .expect("the download keeps flowing during the drain")
        .expect("the download is not cut by SIGTERM")
    {
        body.extend_from_slice(&c);
    }
    assert_eq!(body.len(), chunks * chunk_len, "the whole file arrives");
    assert!(
        body.chunks(chunk_len)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&b| b == b'a' + (i % 26) as u8)),
        "every byte in order"
    );
    let code = tokio::task::block_in_place(|| bin.exit_code(Duration::from_secs(15)));
    assert_eq!(code, Some(0), "exit 0 after draining:\n{}", bin.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_does_not_stop_the_proxy() {
    let plain = start_plain_http().await;
    let mut bin = start_binary("", &[("plain.test", plain)], &[]);
    bin.signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tokio::task::block_in_place(|| bin.exit_code(Duration::from_millis(10))),
        None,
        "SIGHUP must not end the process:\n{}",
        bin.log()
    );
    let res = plain_client(bin.addr)
        .get("http://plain.test/after-hup")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "plain:/after-hup");
    bin.signal(libc::SIGTERM);
    let code = tokio::task::block_in_place(|| bin.exit_code(Duration::from_secs(15)));
    assert_eq!(code, Some(0), "{}", bin.log());
}

#[tokio::test]
async fn silent_client_of_the_provider_api_is_disconnected() {
    let h = Harness::builder()
        .api(true)
        .toml("[timeouts]\nclient_idle_secs = 1\n")
        .start()
        .await;
    let mut s = TcpStream::connect(h.proxy.api_addr.unwrap()).await.unwrap();
    closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("the API closes a connection that never sends a byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drain_is_bounded_by_drain_secs() {
    // A download far longer than the drain time: cut off, and the process still exits 0.
    let slow = start_slow_http(200, 1024, Duration::from_millis(100)).await;
    let mut bin = start_binary("[timeouts]\ndrain_secs = 1\n", &[("slow.test", slow)], &[]);
    let mut res = plain_client(bin.addr)
        .get("http://slow.test/endless")
        .send()
        .await
        .unwrap();
    res.chunk().await.unwrap().expect("first bytes");
    let start = Instant::now();
    bin.signal(libc::SIGTERM);
    let code = tokio::task::block_in_place(|| bin.exit_code(Duration::from_secs(15)));
    assert_eq!(code, Some(0), "{}", bin.log());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the drain waits drain_secs, not for the download: {:?}",
        start.elapsed()
    );
    assert!(bin.log().contains("drain"), "{}", bin.log());
}

#[tokio::test]
async fn slow_origin_is_not_cut_by_the_client_idle_clock() {
    // The client waits on the origin, not the other way round: only the upstream clocks apply.
    let slow = start_slow_http(3, 100, Duration::from_millis(1500)).await;
    let h = Harness::builder()
        .resolve("slow.test", slow)
        .toml("[timeouts]\nclient_idle_secs = 1\n")
        .start()
        .await;
    let body = h
        .client()
        .get("http://slow.test/slow")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .expect("a response slower than client_idle_secs still completes");
    assert_eq!(body.len(), 300);
}
