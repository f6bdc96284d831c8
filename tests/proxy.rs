//! End to end: a real HTTP client talks to the proxy through CONNECT, the proxy talks over real TLS
//! to the in-process fake YouTube, and the tests assert on what the fake received.

mod common;

use std::io::Write;

use common::*;
use potproxy::config::SourceKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VIDEO: &str = "dQw4w9WgXcQ";
const MEDIA_QUERY: &str = "expire=1900000000&ei=AbCdEf&ip=127.0.0.1&id=o-AKxyz&itag=140&source=youtube&requiressl=yes&mime=audio%2Fmp4&c=MWEB&n=nchal&sparams=expire%2Cei%2Cip%2Cid%2Citag&sig=AJfQdSs%3D";

async fn post_player(
    h: &Harness,
    host: &str,
    query: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> reqwest::Response {
    let mut rb = h
        .client()
        .post(format!("https://{host}/youtubei/v1/player{query}"))
        .header("content-type", "application/json")
        .header("x-youtube-client-name", "2")
        .header("cookie", "PREF=hl=en&tz=UTC; SOCS=CAI")
        .header("authorization", "SAPISIDHASH 123_abc");
    if let Some(e) = encoding {
        rb = rb.header("content-encoding", e);
    }
    rb.body(body).send().await.unwrap()
}

fn only_player(h: &Harness) -> Seen {
    let seen: Vec<Seen> = h
        .origin
        .take()
        .into_iter()
        .filter(|s| s.path_and_query.contains("/youtubei/v1/player"))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    seen.into_iter().next().unwrap()
}

#[tokio::test]
async fn webpo_player_request_gets_the_static_token_and_keeps_auth_headers() {
    let h = Harness::builder().static_token().start().await;
    let body = serde_json::to_vec(&player_body("MWEB", VIDEO)).unwrap();
    let res = post_player(&h, "www.youtube.com", "?prettyPrint=false", body, None).await;
    assert_eq!(res.status(), 200);
    let seen = only_player(&h);
    let json = seen.json();
    assert_eq!(
        json["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );
    assert_eq!(json["videoId"], VIDEO);
    assert_eq!(seen.headers["authorization"], "SAPISIDHASH 123_abc");
    assert_eq!(seen.headers["cookie"], "PREF=hl=en&tz=UTC; SOCS=CAI");
    assert_eq!(
        seen.headers["content-length"],
        seen.body.len().to_string(),
        "Content-Length must match the rewritten body"
    );
}

#[tokio::test]
async fn every_innertube_host_and_query_form_is_rewritten() {
    let h = Harness::builder().static_token().start().await;
    for (host, query) in [
        ("www.youtube.com", "?prettyPrint=false&alt=json"),
        ("music.youtube.com", "?key=AIzaFAKE&prettyPrint=false"),
        ("youtubei.googleapis.com", "?$fields=streamingData"),
        ("m.youtube.com", ""),
    ] {
        let body = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
        post_player(&h, host, query, body, None).await;
        let seen = only_player(&h);
        assert_eq!(
            seen.json()["serviceIntegrityDimensions"]["poToken"],
            static_token().as_str(),
            "{host}{query}"
        );
        assert!(
            seen.path_and_query.ends_with(query),
            "query kept: {}",
            seen.path_and_query
        );
    }
}

#[tokio::test]
async fn compressed_player_bodies_are_decoded_and_rewritten() {
    let h = Harness::builder().static_token().start().await;
    let plain = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let encoded = [
        ("gzip", gz.finish().unwrap()),
        ("zstd", zstd::encode_all(&plain[..], 3).unwrap()),
        ("br", {
            let mut out = Vec::new();
            brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
                .write_all(&plain)
                .unwrap();
            out
        }),
    ];
    for (enc, body) in encoded {
        post_player(&h, "www.youtube.com", "", body, Some(enc)).await;
        let seen = only_player(&h);
        assert!(!seen.headers.contains_key("content-encoding"), "{enc}");
        assert_eq!(
            seen.json()["serviceIntegrityDimensions"]["poToken"],
            static_token().as_str(),
            "{enc}"
        );
    }
}

#[tokio::test]
async fn android_ios_visionos_player_bodies_arrive_byte_identical() {
    let h = Harness::builder().static_token().start().await;
    for client in ["ANDROID", "ANDROID_VR", "IOS", "VISIONOS", "SOMETHING_NEW"] {
        let body = serde_json::to_vec_pretty(&player_body(client, VIDEO)).unwrap();
        post_player(
            &h,
            "youtubei.googleapis.com",
            "?prettyPrint=false",
            body.clone(),
            None,
        )
        .await;
        assert_eq!(only_player(&h).body, body, "{client}");
    }
}

#[tokio::test]
async fn a_clients_own_token_is_kept_and_a_sentinel_is_replaced() {
    let h = Harness::builder()
        .static_token()
        .toml("[tokens]\nsentinels = [\"POTPROXYSENTINEL\"]\n")
        .start()
        .await;
    let own = "MnQLhidwfIVPEAu-woG_SQU69mfPclEz7kVUmC1dNP8EQN7NNyVdF3KcVIuKRKrcXlwOXEQg3hc5qXSBbbQU_M7lxx9zgQMelv9iZwWfWlLyI9RoZXB1wipAYHWNzxu7rMqDwRn5M6WS4RRIeHcld9P_YZRYdg==";
    let mut b = player_body("MWEB", VIDEO);
    b["serviceIntegrityDimensions"] = serde_json::json!({"poToken": own});
    let body = serde_json::to_vec(&b).unwrap();
    post_player(&h, "www.youtube.com", "", body.clone(), None).await;
    assert_eq!(only_player(&h).body, body, "own token must pass unchanged");

    b["serviceIntegrityDimensions"] = serde_json::json!({"poToken": "POTPROXYSENTINEL"});
    post_player(
        &h,
        "www.youtube.com",
        "",
        serde_json::to_vec(&b).unwrap(),
        None,
    )
    .await;
    assert_eq!(
        only_player(&h).json()["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );
}

#[tokio::test]
async fn media_download_gets_exactly_one_pot_and_identical_bytes() {
    let h = Harness::builder().static_token().start().await;
    let url = format!(
        "https://rr4---sn-u125g5-5p.googlevideo.com/videoplayback?{MEDIA_QUERY}&pot=POTPROXYSENTINEL&clen=5000000"
    );
    // Several Range chunks, like yt-dlp's http downloader.
    let mut got = Vec::new();
    for (a, b) in [
        (0u64, 2_000_000u64),
        (2_000_001, 4_000_000),
        (4_000_001, 4_999_999),
    ] {
        let res = h
            .client()
            .get(&url)
            .header("range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 206);
        got.extend_from_slice(&res.bytes().await.unwrap());
    }
    assert_eq!(got.len(), 5_000_000);
    assert!(got == media_bytes(0, 5_000_000), "media bytes differ");

    let seen = h.origin.take();
    assert_eq!(seen.len(), 3);
    for s in seen {
        assert_eq!(s.query_values("pot"), vec![static_token().query_value()]);
        let expected = format!(
            "/videoplayback?{MEDIA_QUERY}&pot={}&clen=5000000",
            static_token().query_value()
        );
        assert_eq!(
            s.path_and_query, expected,
            "order and encoding of other params kept"
        );
    }
}

#[tokio::test]
async fn head_and_path_form_and_manifests_carry_the_token() {
    let h = Harness::builder().static_token().start().await;
    let c = h.client();
    let t = static_token();

    let res = c
        .head(format!(
            "https://rr1---sn-abc.googlevideo.com/videoplayback?{MEDIA_QUERY}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s = h.origin.take().pop().unwrap();
    assert_eq!(s.method, "HEAD");
    assert_eq!(s.query_values("pot"), vec![t.query_value()]);

    let path = "/videoplayback/id/abc.1/itag/140/source/yt_live_broadcast/c/WEB/sq/7";
    c.get(format!(
        "https://rr1---sn-abc.googlevideo.com{path}?clen=1000"
    ))
    .send()
    .await
    .unwrap();
    let s = h.origin.take().pop().unwrap();
    assert_eq!(
        s.path_and_query,
        format!("{path}/pot/{}?clen=1000", t.as_str())
    );

    let hls = "/api/manifest/hls_variant/expire/1900000000/ei/AbC/c/MWEB/lsig/XYZ/file/index.m3u8";
    c.get(format!("https://manifest.googlevideo.com{hls}?clen=100"))
        .send()
        .await
        .unwrap();
    let s = h.origin.take().pop().unwrap();
    assert_eq!(
        s.path_and_query,
        format!(
            "/api/manifest/hls_variant/expire/1900000000/ei/AbC/c/MWEB/lsig/XYZ/pot/{}/file/index.m3u8?clen=100",
            t.as_str()
        )
    );

    let dash = "/api/manifest/dash/expire/1900000000/c/TVHTML5/itag/0";
    c.get(format!("https://manifest.googlevideo.com{dash}"))
        .send()
        .await
        .unwrap();
    let s = h.origin.take().pop().unwrap();
    assert_eq!(s.path_and_query, format!("{dash}/pot/{}", t.as_str()));
}

#[tokio::test]
async fn non_webpo_and_sabr_media_urls_pass_untouched() {
    let h = Harness::builder().static_token().start().await;
    for q in [
        "expire=1&ei=x&id=o-A&itag=18&c=ANDROID&clen=100",
        "expire=1&ei=x&id=o-A&itag=18&c=IOS&clen=100",
        "expire=1&ei=x&id=o-A&itag=18&c=VISIONOS&clen=100",
        "expire=1&ei=x&id=o-A&itag=18&clen=100",
        "expire=1&ei=x&id=o-A&sabr=1&c=WEB&rn=1&clen=100",
    ] {
        h.client()
            .get(format!(
                "https://rr2---sn-x.googlevideo.com/videoplayback?{q}"
            ))
            .send()
            .await
            .unwrap();
        let s = h.origin.take().pop().unwrap();
        assert_eq!(s.path_and_query, format!("/videoplayback?{q}"));
    }
}

#[tokio::test]
async fn http2_clients_are_served_and_rewritten() {
    let h = Harness::builder().static_token().start().await;
    let body = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
    let res = post_player(&h, "www.youtube.com", "", body, None).await;
    assert_eq!(
        res.version(),
        reqwest::Version::HTTP_2,
        "client side should negotiate h2"
    );
    assert_eq!(
        only_player(&h).json()["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );
}

#[tokio::test]
async fn non_youtube_hosts_are_tunnelled_with_the_origin_certificate() {
    let h = Harness::builder().static_token().start().await;
    // This client trusts only the fake origin's CA: it succeeds only if the proxy does not
    // substitute its own certificate.
    let res = h
        .tunnel_client()
        .post("https://tunnel.example.org/youtubei/v1/player")
        .body(serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s = h.origin.take().pop().unwrap();
    assert!(
        s.json().get("serviceIntegrityDimensions").is_none(),
        "tunnelled traffic must not be rewritten"
    );

    // And the intercepted hosts really are intercepted: the same client fails there.
    assert!(
        h.tunnel_client()
            .get("https://www.youtube.com/")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_server_that_speaks_first_works_through_connect() {
    let banner = start_banner_server().await;
    let h = Harness::builder()
        .static_token()
        .resolve("ssh.example.org", banner)
        .start()
        .await;
    let (mut s, head) = raw_connect(
        h.proxy.addr,
        "CONNECT ssh.example.org:22 HTTP/1.1\r\nHost: ssh.example.org:22\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut buf = [0u8; 14];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("banner must arrive without the client sending first")
        .unwrap();
    assert_eq!(&buf, b"SSH-2.0-fake\r\n");
    s.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}

/// Sends `preamble` as the CONNECT, then TLS and a player request as `www.youtube.com`: the
/// proxy must intercept and add its token.
async fn assert_intercepted_after(preamble: &str) {
    let h = Harness::builder().static_token().start().await;
    let (s, head) = raw_connect(h.proxy.addr, preamble).await;
    assert!(head.contains(" 200"), "{head}");
    let resp = player_over_raw_tunnel(&h, s, "www.youtube.com", "MWEB", VIDEO).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(
        only_player(&h).json()["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );
}

#[tokio::test]
async fn http10_connect_without_headers_is_intercepted() {
    assert_intercepted_after("CONNECT www.youtube.com:443 HTTP/1.0\r\n\r\n").await;
}

#[tokio::test]
async fn undici_style_connect_with_portless_host_and_connection_close_is_intercepted() {
    assert_intercepted_after(
        "CONNECT www.youtube.com:443 HTTP/1.1\r\nhost: www.youtube.com\r\nconnection: close\r\nproxy-connection: keep-alive\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn connect_to_an_ip_is_classified_by_sni() {
    assert_intercepted_after("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n").await;
}

#[tokio::test]
async fn absolute_form_plain_http_is_forwarded() {
    let plain = start_plain_http().await;
    let h = Harness::builder()
        .resolve("connectivitycheck.gstatic.com", plain)
        .start()
        .await;
    let (mut s, _) = (
        tokio::net::TcpStream::connect(h.proxy.addr).await.unwrap(),
        (),
    );
    s.write_all(b"GET http://connectivitycheck.gstatic.com/generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("plain:/generate_204"), "{out}");
}

#[tokio::test]
async fn malformed_and_oversized_player_bodies_arrive_unchanged() {
    let h = Harness::builder().static_token().start().await;
    let bad = br#"{"context":{"client":{"clientName":"WEB"}},"videoId":"#.to_vec();
    post_player(&h, "www.youtube.com", "", bad.clone(), None).await;
    assert_eq!(only_player(&h).body, bad);

    // 5 MiB: over the 1 MiB cap, forwarded as it came (and not buffered whole by the proxy).
    let mut big = player_body("WEB", VIDEO);
    big["padding"] = serde_json::Value::String("x".repeat(5 * 1024 * 1024));
    let big = serde_json::to_vec(&big).unwrap();
    post_player(&h, "www.youtube.com", "", big.clone(), None).await;
    let seen = only_player(&h);
    assert!(seen.body == big, "5 MiB body changed");

    // Claims gzip, is not gzip: forwarded with its header and bytes intact.
    let plain = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
    post_player(&h, "www.youtube.com", "", plain.clone(), Some("gzip")).await;
    let seen = only_player(&h);
    assert_eq!(seen.body, plain);
    assert_eq!(seen.headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn oversized_chunked_player_body_is_forwarded_whole() {
    let h = Harness::builder().static_token().start().await;
    let mut big = player_body("WEB", VIDEO);
    big["padding"] = serde_json::Value::String("y".repeat(3 * 1024 * 1024));
    let big = serde_json::to_vec(&big).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    h.client()
        .post("https://www.youtube.com/youtubei/v1/player")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert!(only_player(&h).body == big);
}

#[tokio::test]
async fn without_a_token_requests_pass_unchanged_and_strict_refuses_them() {
    let h = Harness::builder().start().await;
    let body = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
    let res = post_player(&h, "www.youtube.com", "", body.clone(), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(only_player(&h).body, body);

    let strict = Harness::builder().strict(true).start().await;
    let res = post_player(&strict, "www.youtube.com", "", body.clone(), None).await;
    assert_eq!(res.status(), 502);
    assert!(res.text().await.unwrap().contains("no token source"));
    assert!(strict.origin.seen().is_empty(), "strict must not forward");

    let res = post_player(&strict, "www.youtube.com", "", b"{not json".to_vec(), None).await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn connect_to_a_closed_port_is_a_502_and_the_proxy_keeps_serving() {
    let h = Harness::builder().static_token().start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h2 = Harness::builder()
        .static_token()
        .resolve("closed.example.org", closed)
        .start()
        .await;
    let (_, head) = raw_connect(
        h2.proxy.addr,
        "CONNECT closed.example.org:443 HTTP/1.1\r\nHost: closed.example.org:443\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");

    // Garbage request line.
    let (_, head) = raw_connect(h.proxy.addr, "THIS IS NOT HTTP\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 400") || head.is_empty(),
        "{head}"
    );

    let body = serde_json::to_vec(&player_body("WEB", VIDEO)).unwrap();
    let res = post_player(&h, "www.youtube.com", "", body, None).await;
    assert_eq!(res.status(), 200, "proxy must keep serving");
    only_player(&h);
}

#[tokio::test]
async fn a_clients_own_media_token_is_kept() {
    let h = Harness::builder().static_token().start().await;
    let own = "MnQLhidwfIVPEAu-woG_SQU69mfPclEz7kVUmC1dNP8EQN7NNyVdF3KcVIuKRKrcXlwOXEQg3hc5qXSBbbQU_M7lxx9zgQMelv9iZwWfWlLyI9RoZXB1wipAYHWNzxu7rMqDwRn5M6WS4RRIeHcld9P_YZRYdg%3D%3D";
    let q = format!("{MEDIA_QUERY}&pot={own}&clen=1000");
    h.client()
        .get(format!(
            "https://rr4---sn-u125g5-5p.googlevideo.com/videoplayback?{q}"
        ))
        .send()
        .await
        .unwrap();
    let s = h.origin.take().pop().unwrap();
    assert_eq!(s.path_and_query, format!("/videoplayback?{q}"));
}

#[tokio::test]
async fn the_harness_defaults_to_static_tokens_only_and_its_typed_options_win_over_toml() {
    let fakes = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = Harness::builder().config(&fakes, dir.path());
    assert_eq!(c.tokens.sources, vec![SourceKind::Static]);
    assert_eq!(c.tokens.cache_file, None);
    assert!(!c.tokens.botguard.prewarm);
    assert!(!c.api.enabled);
    assert!(!c.strict);

    let cache = dir.path().join("cache.json");
    let c = Harness::builder()
        .sources(&[SourceKind::BotGuard, SourceKind::ColdStart])
        .api(true)
        .cache_file(&cache)
        .prewarm(true)
        .strict(true)
        .toml("[tokens]\nsources = [\"provider\"]\ncache_file = \"\"\n[tokens.provider]\nurl = \"http://127.0.0.1:9\"\n[api]\nenabled = false\nlisten = \"127.0.0.1:4416\"\n")
        .config(&fakes, dir.path());
    assert_eq!(
        c.tokens.sources,
        vec![SourceKind::BotGuard, SourceKind::ColdStart]
    );
    assert_eq!(c.tokens.cache_file, Some(cache));
    assert!(c.tokens.botguard.prewarm);
    assert!(c.api.enabled);
    assert_eq!(c.api.listen.port(), 0, "never a fixed port");
    assert!(c.strict);
}

#[tokio::test]
async fn websocket_upgrade_through_the_proxy_carries_bytes_both_ways() {
    let echo = common::servers::start_upgrade_echo().await;
    let h = Harness::builder().resolve("ws.test", echo).start().await;
    let mut s = tokio::net::TcpStream::connect(h.proxy.addr).await.unwrap();
    s.write_all(
        b"GET http://ws.test/socket HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "proxy closed during the upgrade"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"frame bytes").await.unwrap();
    let mut echoed = [0u8; 11];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut echoed))
        .await
        .expect("the origin's echo comes back")
        .unwrap();
    assert_eq!(&echoed, b"frame bytes");
}
