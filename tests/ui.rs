//! The live page (`/ui`) and `/exchanges`: what the proxy did shows up there (video, kind,
//! outcome, token source), no token, visitor data or `ip=` value ever does, a page from another
//! origin is refused, and real Chromium renders it (a screenshot is written to
//! `target/ui-artifacts/ui.png`). The Chromium test skips where no browser is installed and
//! fails instead under `CI`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::youtube::{ISSUED_VISITOR_DATA, VISITOR_DATA};
use common::*;
use futures::StreamExt;
use potproxy::config::SourceKind;
use serde_json::Value;

fn api(h: &Harness, path: &str) -> String {
    format!("http://{}{path}", h.proxy.api_addr.expect("api enabled"))
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A player request for `video` through the proxy, carrying visitor data; the parsed answer.
async fn play(h: &Harness, video: &str) -> Value {
    let mut body = player_body("MWEB", video);
    body["context"]["client"]["visitorData"] = VISITOR_DATA.into();
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

/// The exchanges whose video is `video`.
fn for_video<'a>(exchanges: &'a [Value], video: &str) -> Vec<&'a Value> {
    exchanges.iter().filter(|e| e["video"] == video).collect()
}

/// Every token the fake origin received (player bodies, `pot` parameters, `/pot/` segments).
fn tokens_seen(h: &Harness) -> Vec<String> {
    let mut out = Vec::new();
    for s in h.origin.seen() {
        out.extend(s.query_values("pot"));
        if let Ok(v) = serde_json::from_slice::<Value>(&s.body) {
            if let Some(t) = v["serviceIntegrityDimensions"]["poToken"].as_str() {
                out.push(t.to_string());
            }
        }
        let path = s.path_and_query.split('?').next().unwrap_or("");
        let segs: Vec<&str> = path.split('/').collect();
        for w in segs.windows(2) {
            if w[0] == "pot" {
                out.push(w[1].to_string());
            }
        }
    }
    out.retain(|t| t.len() > 20);
    out
}

/// A host the proxy does not intercept (resolved to the fake origin).
const TUNNELLED: &str = "tunnel.example.org:443";

/// One request through a blind tunnel, the connection then closed.
async fn tunnel_through(h: &Harness) {
    let client = h.tunnel_client();
    let res = client
        .get("https://tunnel.example.org/")
        .send()
        .await
        .unwrap();
    res.bytes().await.unwrap();
    drop(client);
}

#[tokio::test]
async fn exchanges_show_what_was_done_and_never_a_token_visitor_data_or_address() {
    const VIDEO: &str = "uiJsonTst01";
    let h = Harness::builder().api(true).static_token().start().await;
    let player = play(&h, VIDEO).await;
    let url = player["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .replace("ip=127.0.0.1", "ip=203.0.113.77");
    let res = h
        .client()
        .get(&url)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    res.bytes().await.unwrap();
    let path_form =
        "/videoplayback/id/abc.1/ip/203.0.113.78/itag/140/source/yt_live_broadcast/c/WEB/sq/7";
    let res = h
        .client()
        .get(format!(
            "https://rr1---sn-abc.googlevideo.com{path_form}?clen=1000"
        ))
        .send()
        .await
        .unwrap();
    res.bytes().await.unwrap();

    tunnel_through(&h).await;

    // The tunnel's record is written when it closes: wait (bounded) for it.
    let mut text = String::new();
    for _ in 0..50 {
        let res = plain()
            .get(api(&h, "/exchanges?limit=500"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        text = res.text().await.unwrap();
        if text.contains(TUNNELLED) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let json: Value = serde_json::from_str(&text).unwrap();
    let all = json["exchanges"].as_array().unwrap();

    let mine = for_video(all, VIDEO);
    let player = mine
        .iter()
        .find(|e| e["kind"] == "player")
        .unwrap_or_else(|| panic!("player exchange for {VIDEO} in {text}"));
    assert_eq!(player["outcome"], "rewritten");
    assert_eq!(player["source"], "static");
    assert_eq!(player["binding"], "video");
    assert_eq!(player["host"], "www.youtube.com");
    assert_eq!(player["path"], "/youtubei/v1/player");
    assert!(player["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    let media = mine
        .iter()
        .find(|e| e["kind"] == "media")
        .unwrap_or_else(|| panic!("media exchange for {VIDEO} in {text}"));
    assert_eq!(media["outcome"], "rewritten");
    assert_eq!(media["source"], "static");
    assert_eq!(media["bytes_out"], 1000);
    assert!(
        all.iter()
            .any(|e| e["host"] == "rr1---sn-abc.googlevideo.com"
                && e["path"] == "/videoplayback/…"),
        "the path form is shown cut: {text}"
    );

    let tunnel = all
        .iter()
        .find(|e| e["host"] == TUNNELLED)
        .unwrap_or_else(|| panic!("tunnel in {text}"));
    assert_eq!(
        (tunnel["kind"].as_str(), tunnel["method"].as_str()),
        (Some("tunnel"), Some("CONNECT"))
    );
    assert!(tunnel["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(tunnel["bytes_out"].as_u64().unwrap() > 0);

    let t = static_token();
    for secret in [
        STATIC_TOKEN,
        t.as_str(),
        &t.query_value(),
        VISITOR_DATA,
        &VISITOR_DATA.replace("%3D", "="),
        ISSUED_VISITOR_DATA,
        "203.0.113.77",
        "203.0.113.78",
    ] {
        assert!(!text.contains(secret), "{secret} in /exchanges: {text}");
    }
    assert!(
        tokens_seen(&h).iter().all(|s| !text.contains(s.as_str())),
        "no token the origin saw is in /exchanges"
    );

    let res = plain()
        .get(api(&h, "/exchanges?limit=1"))
        .send()
        .await
        .unwrap();
    let one: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(
        one["exchanges"].as_array().unwrap().len(),
        1,
        "limit is kept"
    );
    let res = plain()
        .get(api(&h, "/exchanges?limit=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn the_page_is_refused_to_other_origins_and_foreign_hosts_and_served_to_loopback() {
    let h = Harness::builder().api(true).static_token().start().await;
    for path in ["/ui", "/ui/state", "/ui/app.js", "/exchanges"] {
        for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
            let res = plain()
                .get(api(&h, path))
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{path} with Origin {origin}");
        }
        let res = plain()
            .get(api(&h, path))
            .header("host", "rebind.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path} with a foreign Host");
    }
    let res = plain().get(api(&h, "/ui")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<table id=\"exchanges\">")
    );
}

#[tokio::test]
async fn with_an_api_token_the_page_needs_it() {
    let h = Harness::builder()
        .api(true)
        .static_token()
        .toml("[api]\ntoken = \"ui-test-token-0123456789\"\n")
        .start()
        .await;
    for path in ["/ui", "/exchanges"] {
        let res = plain().get(api(&h, path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} without the token");
        let res = plain()
            .get(api(&h, path))
            .bearer_auth("ui-test-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path} with the token");
    }
}

/// Whether a browser is installed; without one the test skips, or fails under CI.
fn chromium() -> Option<PathBuf> {
    let found = potproxy::browser::find_executable(std::env::var_os("PATH").as_deref());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        assert!(
            !ci,
            "no chromium on PATH and CI is set: the page test must not skip in CI"
        );
        eprintln!("skipping: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// Where the page's screenshot goes: `<target dir>/ui-artifacts/ui.png`.
fn artifact_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("ui-artifacts").join("ui.png")
}

#[tokio::test]
async fn chromium_renders_the_live_page_with_the_traffic_and_no_token() {
    use chromiumoxide::browser::{Browser, BrowserConfig};
    use chromiumoxide::page::ScreenshotParams;

    let Some(exe) = chromium() else {
        return;
    };
    const VIDEO: &str = "uiPageTst01";
    let h = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        .start()
        .await;
    // Some traffic: a watch page, a player request, its media and its captions.
    body_of(
        h.client()
            .get(format!("https://www.youtube.com/watch?v={VIDEO}")),
    )
    .await;
    let player = play(&h, VIDEO).await;
    let media = player["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap();
    let res = h
        .client()
        .get(media)
        .header("range", "bytes=0-65535")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    res.bytes().await.unwrap();
    let captions =
        player["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"][0]["baseUrl"]
            .as_str()
            .unwrap();
    h.client()
        .get(captions)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    tunnel_through(&h).await;
    let tokens = tokens_seen(&h);
    assert!(!tokens.is_empty(), "the proxy put tokens in");

    let profile = tempfile::tempdir().unwrap();
    let mut config = BrowserConfig::builder()
        .chrome_executable(exe)
        .new_headless_mode()
        .user_data_dir(profile.path())
        .window_size(1400, 400)
        .viewport(None)
        .arg("--disable-gpu")
        .arg("--no-first-run");
    if rustix::process::geteuid().is_root() {
        config = config.no_sandbox();
    }
    let (mut browser, mut handler) = Browser::launch(config.build().unwrap())
        .await
        .expect("chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser.new_page(api(&h, "/ui")).await.expect("page opens");
    // The script polls at once: wait (bounded) for its first redraw with our exchanges.
    let mut text = String::new();
    for _ in 0..100 {
        let polled: Option<String> = page
            .evaluate("document.body.dataset.polled || null")
            .await
            .unwrap()
            .into_value()
            .unwrap_or(None);
        text = page
            .evaluate("document.body.innerText")
            .await
            .unwrap()
            .into_value()
            .unwrap();
        if polled.is_some() && text.contains(VIDEO) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live: String = page
        .evaluate("document.getElementById('live').textContent")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(
        live.starts_with("live ·"),
        "the script's polls succeed: {live}"
    );
    let html = page.content().await.unwrap();
    let path = artifact_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .expect("screenshot");
    println!("ui screenshot: {}", path.display());
    browser.close().await.ok();
    browser.wait().await.ok();
    events.abort();

    assert!(text.contains(VIDEO), "the video id is on the page: {text}");
    for shown in [
        "www.youtube.com/youtubei/v1/player",
        "rewritten (player)",
        "rewritten (media)",
        "rewritten (captions)",
        "botguard #",
        "page",
        "ready",
    ] {
        assert!(text.contains(shown), "`{shown}` on the page: {text}");
    }
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain([VISITOR_DATA, ISSUED_VISITOR_DATA])
    {
        assert!(
            !text.contains(secret) && !html.contains(secret),
            "a token or visitor data on the page"
        );
    }
    assert!(
        std::fs::metadata(&path).unwrap().len() > 10_000,
        "a real screenshot"
    );
}

#[tokio::test]
async fn a_resumed_download_shows_its_resumes_and_the_refusal_on_its_way() {
    const VIDEO: &str = "uiHealTst01";
    let h = Harness::builder().api(true).static_token().start().await;
    let player = play(&h, VIDEO).await;
    let url = player["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = 1_000_000;
        b.forbid_continuations = 1;
    }
    let res = h.client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len() as u64, DEFAULT_MEDIA_LEN);

    let res = plain()
        .get(api(&h, "/exchanges?limit=500"))
        .send()
        .await
        .unwrap();
    let json: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let all = json["exchanges"].as_array().unwrap();
    let media = for_video(all, VIDEO)
        .into_iter()
        .find(|e| e["kind"] == "media")
        .unwrap_or_else(|| panic!("media exchange for {VIDEO} in {json}"));
    assert_eq!(media["outcome"], "rewritten");
    assert_eq!(media["bytes_out"], DEFAULT_MEDIA_LEN);
    assert!(media["resumes"].as_u64().unwrap() >= 1, "{media}");
    assert!(media["refusals"].as_u64().unwrap() >= 1, "{media}");
}
