//! SOCKS5 as a way in: curl speaking `socks5h://` (names) and `socks5://` (addresses, judged by
//! their ClientHello's SNI) gets tokens put into player bodies and media URLs like an HTTP
//! proxy client; other hosts are tunnelled with their own certificate; `[auth] users` applies;
//! UDP ASSOCIATE is refused with "command not supported".

mod common;

use std::net::SocketAddr;
use std::process::Output;

use common::curl::{curl, have_curl};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VIDEO: &str = "dQw4w9WgXcQ";

async fn socks_harness(extra: &str) -> Harness {
    Harness::builder()
        .static_token()
        .toml(&format!("[socks]\nlisten = \"127.0.0.1:0\"\n{extra}"))
        .start()
        .await
}

fn socks_addr(h: &Harness) -> SocketAddr {
    h.proxy.socks_addr.expect("[socks] listen is set")
}

/// POSTs a WEB player body through the SOCKS listener; the body curl printed.
async fn player_through(h: &Harness, proxy: &str, extra: &[&str]) -> Output {
    let body = serde_json::to_string(&player_body("WEB", VIDEO)).unwrap();
    let ca = h.proxy.ca_cert_path.to_str().unwrap().to_string();
    let mut args = vec![
        "--proxy",
        proxy,
        "--cacert",
        &ca,
        "-H",
        "content-type: application/json",
        "--data",
        &body,
        "https://www.youtube.com/youtubei/v1/player",
    ];
    args.extend_from_slice(extra);
    curl(&args).await
}

fn player_token(h: &Harness) -> serde_json::Value {
    let seen = h
        .origin
        .take()
        .into_iter()
        .find(|s| s.path_and_query.contains("/youtubei/v1/player"))
        .expect("the player request reached the fake");
    seen.json()["serviceIntegrityDimensions"]["poToken"].clone()
}

#[tokio::test]
async fn socks5h_clients_get_player_and_media_tokens() {
    if !have_curl() {
        return;
    }
    let h = socks_harness("").await;
    let proxy = format!("socks5h://{}", socks_addr(&h));
    let out = player_through(&h, &proxy, &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(player_token(&h), static_token().as_str());

    let ca = h.proxy.ca_cert_path.to_str().unwrap();
    let url = "https://rr4---sn-u125g5-5p.googlevideo.com/videoplayback?expire=1900000000&ei=AbCdEf&ip=127.0.0.1&id=o-AKxyz&itag=140&source=youtube&c=MWEB&clen=4096&sparams=expire%2Cei%2Cip%2Cid%2Citag&sig=AJfQdSs%3D";
    let out = curl(&["--proxy", &proxy, "--cacert", ca, "-r", "0-4095", url]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        media_bytes(0, 4096),
        "media bytes through SOCKS5"
    );
    let seen = h.origin.take();
    let media = seen
        .iter()
        .find(|s| s.path_and_query.starts_with("/videoplayback"))
        .expect("the media request reached the fake");
    assert_eq!(
        media.query_values("pot"),
        vec![static_token().query_value()]
    );
}

#[tokio::test]
async fn socks5_by_address_is_intercepted_by_its_sni() {
    if !have_curl() {
        return;
    }
    let h = socks_harness("").await;
    let proxy = format!("socks5://{}", socks_addr(&h));
    // curl resolves the name itself and asks the proxy for the address: only the ClientHello
    // says it is YouTube. The address is never dialled (it is a documentation address).
    let out = player_through(&h, &proxy, &["--resolve", "www.youtube.com:443:192.0.2.10"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(player_token(&h), static_token().as_str());
}

#[tokio::test]
async fn other_hosts_are_tunnelled_untouched_with_their_own_certificate() {
    if !have_curl() {
        return;
    }
    let h = socks_harness("").await;
    let proxy = format!("socks5h://{}", socks_addr(&h));
    let body = serde_json::to_string(&player_body("WEB", VIDEO)).unwrap();
    // Trusting only the fake origin's CA: this works only if potproxy did not decrypt.
    let out = curl(&[
        "--proxy",
        &proxy,
        "--cacert",
        h.pki.ca_path.to_str().unwrap(),
        "--data",
        &body,
        "https://tunnel.example.org/youtubei/v1/player",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = h
        .origin
        .take()
        .pop()
        .expect("the tunnelled request arrived");
    assert!(
        seen.json().get("serviceIntegrityDimensions").is_none(),
        "tunnelled traffic must not be rewritten"
    );
}

#[tokio::test]
async fn socks5_auth_uses_the_proxy_users() {
    if !have_curl() {
        return;
    }
    let h = socks_harness("[auth]\nusers = [\"me:s3cret\"]\n").await;
    let addr = socks_addr(&h);
    let out = player_through(&h, &format!("socks5h://me:s3cret@{addr}"), &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(player_token(&h), static_token().as_str());

    for proxy in [
        format!("socks5h://me:wrong@{addr}"),
        format!("socks5h://{addr}"),
    ] {
        let out = player_through(&h, &proxy, &[]).await;
        assert!(!out.status.success(), "{proxy} was let in");
    }
    assert!(
        h.origin.take().is_empty(),
        "a refused client reached the origin"
    );
}

#[tokio::test]
async fn udp_associate_and_bind_are_refused_as_not_supported() {
    let h = socks_harness("").await;
    for command in [3u8, 2] {
        let mut s = tokio::net::TcpStream::connect(socks_addr(&h))
            .await
            .unwrap();
        s.write_all(&[5, 1, 0]).await.unwrap();
        let mut method = [0u8; 2];
        s.read_exact(&mut method).await.unwrap();
        assert_eq!(method, [5, 0]);
        s.write_all(&[5, command, 0, 1, 0, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        let mut reply = [0u8; 10];
        s.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[..2], [5, 7], "command {command}: {reply:?}");
    }
}
