//! Provider mode: the bgutil-compatible API's contract (every route and error case), the
//! external provider source (up, down, slow, erroring, pointing at itself), upstream chaining
//! through HTTP CONNECT and SOCKS5 proxies, and the `mint` command.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::botguard::Verdict;
use common::chain::{
    start_http_connect_proxy, start_http_connect_proxy_with_auth, start_socks5_proxy,
};
use common::youtube::VISITOR_DATA;
use common::*;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use potproxy::config::SourceKind;
use serde_json::{Value, json};

const V: &str = "jNQXAC9IVRw";

/// The API on, tokens minted by the simulated BotGuard.
async fn api_harness() -> Harness {
    Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        .start()
        .await
}

fn api(h: &Harness, path: &str) -> String {
    format!("http://{}{path}", h.proxy.api_addr.expect("api enabled"))
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(h: &Harness, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let res = plain().post(api(h, path)).body(body).send().await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get_json(h: &Harness, path: &str) -> Value {
    serde_json::from_slice(&body_of(plain().get(api(h, path))).await).unwrap()
}

async fn get_pot(h: &Harness, body: Value) -> (u16, Value) {
    post(h, "/get_pot", serde_json::to_vec(&body).unwrap()).await
}

#[tokio::test]
async fn get_pot_mints_a_token_the_fake_verifies() {
    let h = api_harness().await;
    let (status, v) = get_pot(&h, json!({"content_binding": V, "proxy": null, "bypass_cache": false, "innertube_context": {"client": {"clientName": "MWEB"}}})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["contentBinding"], V);
    assert_eq!(
        h.origin.state.bg.verify(v["poToken"].as_str().unwrap(), V),
        Verdict::Valid
    );
    let exp = v["expiresAt"].as_str().unwrap();
    assert!(
        exp.ends_with('Z') && exp.len() == 24 && exp.as_bytes()[19] == b'.',
        "{exp}"
    );
    // Cached: the same token again.
    let (_, again) = get_pot(&h, json!({"content_binding": V})).await;
    assert_eq!(again["poToken"], v["poToken"]);
    // bypass_cache mints anew (and stores it).
    let (_, fresh) = get_pot(&h, json!({"content_binding": V, "bypass_cache": true})).await;
    assert_ne!(fresh["poToken"], v["poToken"]);
    let (_, after) = get_pot(&h, json!({"content_binding": V})).await;
    assert_eq!(after["poToken"], fresh["poToken"]);
}

#[tokio::test]
async fn without_a_binding_the_visitor_data_is_used() {
    let h = api_harness().await;
    let (status, v) = get_pot(
        &h,
        json!({"innertube_context": {"client": {"visitorData": "CgtFromContext"}}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["contentBinding"], "CgtFromContext");
    let (status, v) = get_pot(&h, json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["contentBinding"], VISITOR_DATA,
        "fresh visitor data from the home page"
    );
    assert_eq!(
        h.origin
            .state
            .bg
            .verify(v["poToken"].as_str().unwrap(), VISITOR_DATA),
        Verdict::Valid
    );
}

#[tokio::test]
async fn a_supplied_challenge_is_used_instead_of_fetching_one() {
    let h = api_harness().await;
    let challenge = h.origin.bg_challenge();
    for c in [challenge.clone(), Value::String(challenge.to_string())] {
        let h = api_harness().await;
        let (status, v) = get_pot(&h, json!({"content_binding": V, "challenge": c})).await;
        assert_eq!(status, 200, "{v}");
        let counts = h.origin.counts();
        assert_eq!(
            (counts.page, counts.att_get, counts.create),
            (0, 0, 0),
            "{counts:?}"
        );
        assert_eq!(
            h.origin.state.bg.verify(v["poToken"].as_str().unwrap(), V),
            Verdict::Valid
        );
    }
    drop(h);
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_problem() {
    let h = api_harness().await;
    for (body, needle) in [
        (&b"{not json"[..], "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (br#"{"content_binding": 12}"#, "`content_binding`"),
        (br#"{"bypass_cache": "yes"}"#, "`bypass_cache`"),
        (br#"{"proxy": 5}"#, "`proxy`"),
        (br#"{"challenge": true}"#, "`challenge`"),
        (br#"{"challenge": "not json"}"#, "`challenge`"),
        (br#"{"innertube_context": "x"}"#, "`innertube_context`"),
        (
            br#"{"visitor_data": "x"}"#,
            "visitor_data is deprecated, use content_binding instead",
        ),
        (
            br#"{"data_sync_id": "x"}"#,
            "data_sync_id is deprecated, use content_binding instead",
        ),
        (
            br#"{"disable_innertube": true}"#,
            "disable_innertube is deprecated",
        ),
    ] {
        let (status, v) = post(&h, "/get_pot", body.to_vec()).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(needle), "{e}");
    }
}

/// A caller's `proxy` that fails reads the same whatever the cause (closed port, a port that
/// answers something else), so `/get_pot` cannot be used to scan ports.
#[tokio::test]
async fn an_unreachable_proxy_is_a_500_that_does_not_tell_ports_apart() {
    let h = api_harness().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, v) = get_pot(
        &h,
        json!({"content_binding": V, "proxy": format!("http://{closed}")}),
    )
    .await;
    assert_eq!(status, 500, "{v}");
    assert_eq!(
        v["error"].as_str().unwrap(),
        "token generation through the given proxy failed",
        "{v}"
    );
    // A port that is open but speaks something else (a banner server) answers alike.
    let banner = common::start_banner_server().await;
    let (status, open) = get_pot(
        &h,
        json!({"content_binding": V, "proxy": format!("http://{banner}")}),
    )
    .await;
    assert_eq!(status, 500, "{open}");
    assert_eq!(open["error"], v["error"]);
    let (status, v) = get_pot(&h, json!({"content_binding": V, "proxy": "ftp://nope"})).await;
    assert_eq!(status, 500, "{v}");
    assert!(v["error"].as_str().unwrap().contains("ftp"), "{v}");
}

#[tokio::test]
async fn ping_reports_the_compatible_version_and_ours() {
    let h = api_harness().await;
    let v: Value = get_json(&h, "/ping").await;
    assert_eq!(v["version"], "2.0.2");
    assert_eq!(v["potproxy_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["server_uptime"].as_f64().unwrap() >= 0.0);
    let custom = Harness::builder()
        .api(true)
        .toml("[api]\ncompat_version = \"1.3.1\"\n")
        .start()
        .await;
    let v: Value = get_json(&custom, "/ping").await;
    assert_eq!(v["version"], "1.3.1");
}

#[tokio::test]
async fn cache_routes_invalidate_and_list() {
    let h = api_harness().await;
    let bg = h.proxy.services.botguard.clone().unwrap();
    let (_, first) = get_pot(&h, json!({"content_binding": V})).await;
    let keys: Value = get_json(&h, "/minter_cache").await;
    assert_eq!(keys, json!(["direct"]));

    let res = plain()
        .post(api(&h, "/invalidate_caches"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    let (_, second) = get_pot(&h, json!({"content_binding": V})).await;
    assert_ne!(first["poToken"], second["poToken"], "token cache cleared");
    assert_eq!(h.origin.counts().generate_it, 2, "minter cleared too");

    let res = plain()
        .post(api(&h, "/invalidate_it"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (_, third) = get_pot(&h, json!({"content_binding": V})).await;
    assert_eq!(third["poToken"], second["poToken"], "tokens stay cached");
    get_pot(&h, json!({"content_binding": "anotherVid1"})).await;
    assert_eq!(
        h.origin.counts().generate_it,
        3,
        "a new integrity token for the next mint"
    );
    assert!(bg.ready().is_some());
}

#[tokio::test]
async fn session_returns_visitor_data_and_its_token() {
    let h = api_harness().await;
    let v: Value = get_json(&h, "/session").await;
    assert_eq!(v["visitorData"], VISITOR_DATA);
    assert_eq!(
        h.origin
            .state
            .bg
            .verify(v["poToken"].as_str().unwrap(), VISITOR_DATA),
        Verdict::Valid
    );
    assert!(v["expiresAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn root_and_unknown_routes_answer_like_bgutil() {
    let h = api_harness().await;
    let res = plain().get(api(&h, "/")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        plain().get(api(&h, "/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        plain()
            .get(api(&h, "/get_pot"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn two_hundred_concurrent_requests_for_twenty_bindings_mint_each_once() {
    let h = api_harness().await;
    let bindings: Vec<String> = (0..20).map(|i| format!("concurrent{i:02}")).collect();
    let base = api(&h, "/get_pot");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let b = bindings[i % 20].clone();
            let url = base.clone();
            tokio::spawn(async move {
                let res = plain()
                    .post(url)
                    .body(serde_json::to_vec(&json!({"content_binding": b})).unwrap())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
                (b, v["poToken"].as_str().unwrap().to_string())
            })
        })
        .collect();
    let mut by_binding = std::collections::HashMap::new();
    for t in tasks {
        let (b, tok) = t.await.unwrap();
        by_binding
            .entry(b)
            .or_insert_with(std::collections::HashSet::new)
            .insert(tok);
    }
    assert_eq!(by_binding.len(), 20);
    assert!(
        by_binding.values().all(|s| s.len() == 1),
        "one token per binding"
    );
    let bg = h.proxy.services.botguard.clone().unwrap();
    assert_eq!(bg.stats().mints, 20);
    assert_eq!(h.origin.counts().generate_it, 1);
}

/// A stub bgutil server: `mode` decides how it answers.
async fn stub_provider(mode: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let (status, body) = match (mode, path.as_str()) {
                            (_, "/ping") => {
                                (200, json!({"server_uptime": 1.0, "version": "2.0.2"}))
                            }
                            ("up", "/get_pot") => (
                                200,
                                json!({"poToken": "MnQLhidwfIVPEAu-woG_SQU69mfPclEz7kVUmC1dNP8EQN7NNyVdF3KcVIuKRKrcXlwOXEQg3hc5qXSBbbQU_M7lxx9zgQMelv9iZwWfWlLyI9RoZXB1wipAYHWNzxu7rMqDwRn5M6WS4RRIeHcld9P_YZRYdg==", "contentBinding": V, "expiresAt": "2099-01-01T00:00:00.000Z"}),
                            ),
                            ("slow", "/get_pot") => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                (200, json!({"poToken": "late"}))
                            }
                            ("error", "/get_pot") => (
                                500,
                                json!({"error": "Error: Failed to generate an integrity token."}),
                            ),
                            _ => (404, json!({})),
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

const PROVIDER_TOKEN_PREFIX: &str = "MnQLhi";

#[tokio::test]
async fn the_provider_source_answers_when_up_and_falls_through_otherwise() {
    let up = stub_provider("up").await;
    let slow = stub_provider("slow").await;
    let error = stub_provider("error").await;
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (addr, from_provider) in [(up, true), (slow, false), (error, false), (down, false)] {
        let h = Harness::builder()
            .sources(&[SourceKind::Provider, SourceKind::Static])
            .static_token()
            .toml(&format!(
                "[tokens.provider]\nurl = \"http://{addr}\"\ntimeout_secs = 1\n"
            ))
            .start()
            .await;
        let t = h
            .proxy
            .services
            .tokens
            .get(&potproxy::tokens::TokenRequest::new(
                potproxy::token::Binding::Video(V.into()),
            ))
            .await
            .unwrap();
        assert_eq!(
            t.as_str().starts_with(PROVIDER_TOKEN_PREFIX),
            from_provider,
            "{addr}: {t:?}"
        );
    }
}

#[tokio::test]
async fn a_provider_url_pointing_at_itself_does_not_loop() {
    // Reserve a port for the API, then point the provider source at it.
    let port = free_port();
    let h = Harness::builder()
        .api(true)
        .api_listen(format!("127.0.0.1:{port}").parse().unwrap())
        .sources(&[SourceKind::Provider, SourceKind::Static])
        .static_token()
        .toml(&format!(
            "[tokens.provider]\nurl = \"http://127.0.0.1:{port}\"\n"
        ))
        .start()
        .await;
    let t = tokio::time::timeout(
        Duration::from_secs(10),
        h.proxy
            .services
            .tokens
            .get(&potproxy::tokens::TokenRequest::new(
                potproxy::token::Binding::Video(V.into()),
            )),
    )
    .await
    .expect("no loop")
    .unwrap();
    assert_eq!(t, static_token());
}

#[tokio::test]
async fn mitm_traffic_is_chained_through_an_http_proxy() {
    let fakes = Fakes::start().await;
    let (chain, seen) = start_http_connect_proxy(fakes.origin.addr).await;
    let h = Harness::builder()
        .static_token()
        .upstream_proxy(&format!("http://{chain}"))
        .start_on(fakes)
        .await;
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player")
        .body(serde_json::to_vec(&player_body("WEB", V)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        seen.lock()
            .unwrap()
            .contains(&"www.youtube.com:443".to_string()),
        "{:?}",
        seen.lock().unwrap()
    );
    let got = h.origin.take();
    assert_eq!(
        got[0].json()["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );
}

#[tokio::test]
async fn get_pot_with_a_socks5_proxy_mints_through_it_and_keys_the_cache_by_egress() {
    let h = api_harness().await;
    let (socks, seen) = start_socks5_proxy(h.origin.addr).await;
    let proxy = format!("socks5h://{socks}");
    let (status, via) = get_pot(&h, json!({"content_binding": V, "proxy": proxy})).await;
    assert_eq!(status, 200, "{via}");
    assert_eq!(
        h.origin
            .state
            .bg
            .verify(via["poToken"].as_str().unwrap(), V),
        Verdict::Valid
    );
    let hosts = seen.lock().unwrap().clone();
    assert!(
        hosts.contains(&"www.youtube.com:443".to_string()),
        "{hosts:?}"
    );
    assert!(
        hosts.contains(&"www.google.com:443".to_string()),
        "interpreter fetched through it: {hosts:?}"
    );
    // A direct request for the same binding is a different cache entry.
    let (_, direct) = get_pot(&h, json!({"content_binding": V})).await;
    assert_ne!(direct["poToken"], via["poToken"]);
    let keys: Value = get_json(&h, "/minter_cache").await;
    let keys: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"direct") && keys.contains(&format!("socks5h://{socks}").as_str()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn the_mint_command_prints_json_last_and_fails_cleanly() {
    let fakes = Fakes::start().await;
    let origin = &fakes.origin;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.json");
    let cfg = dir.path().join("potproxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ca]\ndir = {ca:?}\n{upstream}\n[tokens]\nsources = [\"botguard\"]\ncache_file = {cache:?}\n",
            ca = dir.path().join("ca").to_str().unwrap(),
            upstream = fakes.upstream_toml(None, &[]),
            cache = cache.to_str().unwrap(),
        ),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_potproxy"))
                .arg("--config")
                .arg(&cfg)
                .args(&args)
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["mint".into(), "-c".into(), V.into()])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["contentBinding"], V);
    assert_eq!(
        origin.state.bg.verify(last["poToken"].as_str().unwrap(), V),
        Verdict::Valid
    );
    // The persisted cache is shared: a second run answers from it without a new mint.
    let before = origin.counts().generate_it;
    let out = run(vec!["mint".into(), "-c".into(), V.into()])
        .await
        .unwrap();
    let again: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["poToken"], last["poToken"]);
    assert_eq!(origin.counts().generate_it, before);
    // Failure: non-zero exit, `{}` last, a message on stderr.
    origin.behaviour().null_integrity_token = true;
    let out = run(vec![
        "mint".into(),
        "-c".into(),
        "otherVideo1".into(),
        "--bypass-cache".into(),
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().last(),
        Some("{}")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("integrity token"));
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Rotating-proxy services pick the exit address by user name: two callers naming one proxy
/// with different credentials must not share a connection, a minter or a cached token.
#[tokio::test]
async fn two_callers_naming_one_proxy_with_different_credentials_each_mint_with_their_own() {
    let h = api_harness().await;
    let (chain, seen) = start_http_connect_proxy_with_auth(h.origin.addr).await;
    let take = || std::mem::take(&mut *seen.lock().unwrap());
    let alice = format!("http://alice:pw-alice-1@{chain}");
    let bob = format!("http://bob:pw-bob-2@{chain}");

    let (status, a) = get_pot(&h, json!({"content_binding": V, "proxy": alice})).await;
    assert_eq!(status, 200, "{a}");
    let tunnels = take();
    assert!(!tunnels.is_empty(), "alice's mint went through the proxy");
    let want = format!("|{}", basic("alice", "pw-alice-1"));
    assert!(tunnels.iter().all(|t| t.ends_with(&want)), "{tunnels:?}");

    let (status, b) = get_pot(&h, json!({"content_binding": V, "proxy": bob})).await;
    assert_eq!(status, 200, "{b}");
    let tunnels = take();
    assert!(
        tunnels
            .iter()
            .any(|t| t.starts_with("www.youtube.com:443|")),
        "bob's mint went out through the proxy, not from alice's cache entry: {tunnels:?}"
    );
    let want = format!("|{}", basic("bob", "pw-bob-2"));
    assert!(
        tunnels.iter().all(|t| t.ends_with(&want)),
        "bob's mint carries bob's credentials: {tunnels:?}"
    );
    assert_ne!(a["poToken"], b["poToken"], "separate cache entries");
    for t in [&a, &b] {
        assert_eq!(
            h.origin.state.bg.verify(t["poToken"].as_str().unwrap(), V),
            Verdict::Valid
        );
    }
    // Each caller keeps getting its own token.
    let (_, again) = get_pot(&h, json!({"content_binding": V, "proxy": alice})).await;
    assert_eq!(again["poToken"], a["poToken"]);
    let (_, again) = get_pot(&h, json!({"content_binding": V, "proxy": bob})).await;
    assert_eq!(again["poToken"], b["poToken"]);

    // Two cache entries and two minters, named without the credentials.
    let keys: Vec<String> = h
        .proxy
        .services
        .tokens
        .cache()
        .keys()
        .iter()
        .filter(|k| k.binding() == V)
        .map(|k| serde_json::to_string(k).unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let minters = get_json(&h, "/minter_cache").await.to_string();
    for text in keys.iter().chain([&minters]) {
        for secret in ["pw-alice-1", "pw-bob-2", "alice", "bob"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
