//! Self-healing end to end: the fake BotGuard grades where it runs (QuickJS fails its canvas
//! probe, so the built-in minter's tokens are low trust) and the fake googlevideo serves a
//! low-trust token 1 MiB, then cuts the response, answers 403, or (UMP) sends stream protection
//! status 2 then 3. A second source gives high-trust tokens (static per-video tokens signed by
//! the fake, standing in for a browser). The client must get every byte of a 20+ MiB format,
//! one response per request; BotGuard must be set aside after one lesson, and the next video
//! must see no refusal at all. Also: transparent resume of media broken by the origin itself,
//! and the player's bot check.
//!
//! The same with headless Chromium as the source that takes over (`["botguard", "browser"]`,
//! no static tokens: the browser's canvas passes the probe), and browser-first (the default
//! order with Chromium installed) never refused at all; these skip where no browser is
//! installed and fail instead under `CI`.

mod common;

use common::botguard::Trust;
use common::*;
use potproxy::config::SourceKind;

const V1: &str = "jNQXAC9IVRw";
const V2: &str = "9bZkp7q19f0";
/// A 21 MiB format.
const BIG: u64 = 21 * 1024 * 1024 + 4321;

/// `sources = ["botguard", "static"]`, grading on, the static source holding high-trust
/// tokens for [`V1`] and [`V2`]; googlevideo refuses invalid tokens.
async fn graded_harness(low_trust: LowTrust) -> Harness {
    let fakes = Fakes::start().await;
    let bg = &fakes.origin.state.bg;
    let toml = format!(
        "[tokens.static.bindings]\n\"{V1}\" = \"{}\"\n\"{V2}\" = \"{}\"\n",
        bg.signed_token(V1, Trust::High),
        bg.signed_token(V2, Trust::High)
    );
    {
        let mut b = fakes.origin.behaviour();
        b.grade_trust = true;
        b.low_trust = low_trust;
        b.enforce_media = true;
    }
    Harness::builder()
        .sources(&[SourceKind::BotGuard, SourceKind::Static])
        .api(true)
        .toml(&toml)
        .start_on(fakes)
        .await
}

/// A player request through the proxy; returns the player response.
async fn player(h: &Harness, video: &str) -> serde_json::Value {
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&player_body("MWEB", video)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

/// The audio URL of a player response, made `len` bytes long.
fn audio_url(p: &serde_json::Value, len: u64) -> String {
    p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .replace(&format!("clen={DEFAULT_MEDIA_LEN}"), &format!("clen={len}"))
}

/// GETs `url` (with `range` as a header when given); the status, the declared length and
/// the body, or the error that ended it and the bytes that came before.
async fn get(
    h: &Harness,
    url: &str,
    range: Option<&str>,
) -> (u16, Option<u64>, Result<Vec<u8>, Vec<u8>>) {
    let mut rb = h.client().get(url);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let mut res = rb.send().await.unwrap();
    let status = res.status().as_u16();
    let len = res.content_length();
    let mut got = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => return (status, len, Ok(got)),
            Err(_) => return (status, len, Err(got)),
        }
    }
}

/// Asserts a whole-file GET and ranged GETs (7 MiB each) of `url` arrive byte-exact; returns
/// how many requests the client made.
async fn download_every_way(h: &Harness, url: &str) -> usize {
    let mut requests = 1;
    let (status, len, body) = get(h, url, None).await;
    assert_eq!((status, len), (200, Some(BIG)));
    let body = body.expect("the whole-file body completes");
    assert!(body == media_bytes(0, BIG), "whole file byte-exact");
    let chunk = 7 * 1024 * 1024;
    let mut start = 0;
    while start < BIG {
        let end = (start + chunk - 1).min(BIG - 1);
        let (status, len, body) = get(h, url, Some(&format!("bytes={start}-{end}"))).await;
        assert_eq!((status, len), (206, Some(end - start + 1)), "{start}-{end}");
        let body = body.expect("the ranged body completes");
        assert!(
            body == media_bytes(start, end - start + 1),
            "{start}-{end} byte-exact"
        );
        start = end + 1;
        requests += 1;
    }
    requests
}

fn refusals(h: &Harness) -> usize {
    let c = h.origin.counts();
    c.low_trust_cuts + c.low_trust_403s + c.low_trust_ump + c.bot_checks
}

async fn minter_cache(h: &Harness) -> Vec<String> {
    let url = format!("http://{}/minter_cache", h.proxy.api_addr.unwrap());
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn botguard_is_set_aside(h: &Harness) {
    let aside = h.proxy.services.tokens.set_aside();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        (aside[0].source, aside[0].egress.as_str()),
        ("botguard", "direct")
    );
    let listed = minter_cache(h).await;
    assert!(
        listed
            .iter()
            .any(|k| k.starts_with("set aside: botguard @ direct for ")),
        "{listed:?}"
    );
}

/// The second video: every media request carries a high-trust token and nothing is refused.
async fn second_video_has_no_refusal(h: &Harness) {
    let before = refusals(h);
    let generate_it = h.origin.counts().generate_it;
    h.origin.take();
    let url = audio_url(&player(h, V2).await, BIG);
    let requests = download_every_way(h, &url).await;
    assert_eq!(refusals(h), before, "no refusal for the second video");
    assert_eq!(
        h.origin.counts().generate_it,
        generate_it,
        "no minter warmed"
    );
    let media: Vec<_> = h
        .origin
        .take()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/videoplayback"))
        .collect();
    let shown: Vec<_> = media
        .iter()
        .map(|s| (s.headers.get("range").cloned(), s.query_values("range")))
        .collect();
    assert_eq!(
        media.len(),
        requests,
        "one upstream request per client request: {shown:?}"
    );
    for s in media {
        let pot = &s.query_values("pot")[0];
        assert_eq!(h.origin.state.bg.trust(pot, V2), Some(Trust::High));
    }
}

#[tokio::test]
async fn quickjs_tokens_graded_low_are_replaced_mid_stream_and_botguard_is_set_aside() {
    let h = graded_harness(LowTrust::Cut).await;
    let url = audio_url(&player(&h, V1).await, BIG);
    download_every_way(&h, &url).await;
    assert!(h.origin.counts().low_trust_cuts >= 1, "the fake did cut");
    botguard_is_set_aside(&h).await;
    second_video_has_no_refusal(&h).await;
}

#[tokio::test]
async fn quickjs_tokens_answered_403_are_replaced_and_botguard_is_set_aside() {
    let h = graded_harness(LowTrust::Forbidden).await;
    let url = audio_url(&player(&h, V1).await, BIG);
    download_every_way(&h, &url).await;
    assert!(h.origin.counts().low_trust_403s >= 1, "the fake did refuse");
    botguard_is_set_aside(&h).await;
    second_video_has_no_refusal(&h).await;
}

#[tokio::test]
async fn ump_stream_protection_status_3_mid_stream_moves_to_a_trusted_token() {
    let h = graded_harness(LowTrust::Cut).await;
    h.origin.behaviour().ump_rejections = true;
    let url = audio_url(&player(&h, V1).await, BIG);
    let post = |rn: u32| {
        h.client()
            .post(format!("{url}&ump=1&srfvp=1&alr=yes&rn={rn}"))
            .body(vec![0x78, 0x00])
            .send()
    };
    // BotGuard's first minter, then its fresh one: both refused in-band; the client gets the
    // UMP bytes as they came.
    for rn in 1..=2 {
        let res = post(rn).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.unwrap(), ump_low_trust_body(), "rn={rn}");
    }
    assert_eq!(h.origin.counts().generate_it, 2, "a fresh minter was tried");
    botguard_is_set_aside(&h).await;
    let res = post(3).await.unwrap();
    assert_eq!(res.bytes().await.unwrap(), ump_body(1, true));
}

#[tokio::test]
async fn the_players_bot_check_makes_the_proxy_mint_afresh_and_ask_again() {
    let h = graded_harness(LowTrust::Cut).await;
    h.origin.behaviour().bot_check_low_trust = true;
    let p = player(&h, V1).await;
    assert_eq!(p["playabilityStatus"]["status"], "OK", "{p}");
    assert_eq!(
        h.origin.counts().bot_checks,
        2,
        "first minter, then a fresh one"
    );
    botguard_is_set_aside(&h).await;
    // The next video's player request goes straight to the trusted source.
    let p = player(&h, V2).await;
    assert_eq!(p["playabilityStatus"]["status"], "OK");
    assert_eq!(h.origin.counts().bot_checks, 2);
}

/// Static tokens, no grading: only the origin's own faults break responses.
async fn fault_harness() -> Harness {
    Harness::builder().static_token().start().await
}

fn media_requests(h: &Harness) -> Vec<Seen> {
    h.origin
        .take()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/videoplayback"))
        .collect()
}

#[tokio::test]
async fn a_response_reset_mid_body_is_resumed_byte_exact() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = 1_000_000;
    }
    h.origin.take();
    let (status, len, body) = get(&h, &url, None).await;
    assert_eq!((status, len), (200, Some(BIG)));
    assert!(body.unwrap() == media_bytes(0, BIG));
    let seen = media_requests(&h);
    assert_eq!(seen.len(), 2);
    // From the offset the client had reached (at most where the origin broke off).
    let range = seen[1].headers.get("range").unwrap();
    let from: u64 = range["bytes=".len()..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 0 && from <= 1_000_000, "{range}");
    assert_eq!(range, &format!("bytes={from}-{}", BIG - 1));
}

#[tokio::test]
async fn a_query_range_response_is_resumed_with_a_rewritten_range() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        // Large enough for the origin to have flushed the head and some body before closing.
        b.cut_at = 1_200_000;
    }
    h.origin.take();
    let (status, len, body) = get(&h, &format!("{url}&range=100000-3099999"), None).await;
    if status != 200 {
        panic!("{status}: {}", String::from_utf8_lossy(&body.unwrap()));
    }
    assert_eq!((status, len), (200, Some(3_000_000)));
    assert!(body.unwrap() == media_bytes(100_000, 3_000_000));
    let seen = media_requests(&h);
    assert_eq!(seen.len(), 2);
    let range = seen[1].query_values("range");
    let from: u64 = range[0].split('-').next().unwrap().parse().unwrap();
    assert!(from > 100_000 && from <= 1_300_000, "{range:?}");
    assert_eq!(range, [format!("{from}-3099999")]);
    assert!(!seen[1].headers.contains_key("range"));
}

#[tokio::test]
async fn a_continuation_refused_once_is_retried_and_the_body_is_byte_exact() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = 2_500_000;
        b.forbid_continuations = 1;
    }
    h.origin.take();
    let (status, _, body) = get(&h, &url, None).await;
    assert_eq!(status, 200);
    assert!(body.unwrap() == media_bytes(0, BIG));
    assert_eq!(media_requests(&h).len(), 3);
}

#[tokio::test]
async fn when_every_continuation_fails_the_client_gets_a_truncated_body_never_padding() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = 1_500_000;
        b.forbid_continuations = u32::MAX;
    }
    h.origin.take();
    let (status, len, body) = get(&h, &url, None).await;
    assert_eq!((status, len), (200, Some(BIG)));
    let got = body.expect_err("the response ends in an error");
    assert!(!got.is_empty() && got.len() <= 1_500_000, "{}", got.len());
    assert!(
        got == media_bytes(0, got.len() as u64),
        "exactly what came, nothing invented"
    );
    assert_eq!(
        media_requests(&h).len(),
        3,
        "a resume with the same token, one more after its refusal, then give up"
    );
}

#[tokio::test]
async fn a_reset_is_not_a_refusal_the_body_resumes_with_the_same_token_and_nothing_is_set_aside() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = 1_000_000;
    }
    h.origin.take();
    let (status, _, body) = get(&h, &url, None).await;
    assert_eq!(status, 200);
    assert!(body.unwrap() == media_bytes(0, BIG), "byte-exact");
    let seen = media_requests(&h);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].query_values("pot"),
        seen[1].query_values("pot"),
        "resumed with the token that was cut off"
    );
    assert!(
        h.proxy.services.tokens.set_aside().is_empty(),
        "no source set aside for a reset: {:?}",
        h.proxy.services.tokens.set_aside()
    );
}

/// A GET whose first response (the original object) is cut at `cut_at`, and whose
/// continuations meet the object that replaced it.
async fn resume_into_another_object(h: &Harness, url: &str, cut_at: u64) -> Vec<Seen> {
    {
        let mut b = h.origin.behaviour();
        b.cut_responses = 1;
        b.cut_at = cut_at;
        b.replace_object_after = Some(1);
    }
    h.origin.take();
    let (status, _, body) = get(h, url, None).await;
    assert_eq!(status, 200);
    let got = body.expect_err("the transfer fails visibly; it never completes");
    let start = common::media::requested_start(url);
    assert!(
        got == media_bytes(start, got.len() as u64),
        "only bytes of the first object, nothing of the other"
    );
    media_requests(h)
}

#[tokio::test]
async fn a_resume_answered_from_another_object_fails_the_transfer_never_splices_it() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    let seen = resume_into_another_object(&h, &url, 1_000_000).await;
    assert!(seen.len() >= 2, "a continuation was tried");
    let first_etag = format!("\"orig-{BIG}\"");
    assert_eq!(
        seen[1].headers.get("if-range"),
        Some(&first_etag),
        "the continuation names the object it continues"
    );
}

#[tokio::test]
async fn a_query_range_resume_answered_from_another_object_fails_the_transfer() {
    let h = fault_harness().await;
    let url = audio_url(&player(&h, V1).await, BIG);
    let url = format!("{url}&range=100000-3099999");
    let seen = resume_into_another_object(&h, &url, 1_200_000).await;
    assert!(seen.len() >= 2, "a continuation was tried");
    assert!(seen[1].query_values("range")[0].ends_with("-3099999"));
}

/// Runs the fake interpreter to its snapshot and returns the decoded snapshot text.
const SNAPSHOT_DRIVER: &str = r#"new Promise(function (resolve) {
  fakebg.a("PROG", function (asyncSnapshot) {
    asyncSnapshot(function (resp) { resolve(atob(resp.slice(1))); }, [null, null, []]);
  });
})"#;

/// Headless Chromium, when `POTPROXY_CHROMIUM=1` (as in tests/clients.rs); under `CI` with
/// that set, a missing binary fails instead of skipping.
fn chromium() -> Option<std::path::PathBuf> {
    if std::env::var("POTPROXY_CHROMIUM").as_deref() != Ok("1") {
        eprintln!("skipping the Chromium half: set POTPROXY_CHROMIUM=1");
        return None;
    }
    let p = std::path::PathBuf::from("/usr/bin/chromium");
    if !p.exists() {
        assert!(
            !common::testutil::ci(),
            "/usr/bin/chromium missing under CI"
        );
        eprintln!("skipping the Chromium half: /usr/bin/chromium not installed");
        return None;
    }
    Some(p)
}

#[tokio::test]
async fn the_fake_botguard_grades_quickjs_low_and_a_real_browser_high() {
    use potproxy::botguard::vm::{VmHandle, VmLimits};
    let vm = VmHandle::spawn(VmLimits::default()).unwrap();
    let js = common::botguard::INTERPRETER_JS;
    vm.eval(js).await.unwrap();
    let snap = vm.eval(SNAPSHOT_DRIVER).await.unwrap();
    assert_eq!(snap, "fake-botguard:PROG:low", "QuickJS cannot render text");

    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("probe.html");
    let html = format!(
        "<html><body><pre id=\"o\">pending</pre><script>{js}\n{SNAPSHOT_DRIVER}.then(function (s) {{ document.getElementById(\"o\").textContent = \"SNAP:\" + s; }});</script></body></html>"
    );
    std::fs::write(&page, html).unwrap();
    let out = tokio::process::Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("chromium finishes")
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("SNAP:fake-botguard:PROG:high"),
        "Chromium renders text: {dom}"
    );
}

/// `sources` (BotGuard and the browser, in some order), grading on, no static bindings: the
/// browser's canvas passes the fake's probe, so its tokens are high trust.
async fn browser_harness(sources: &[SourceKind]) -> Harness {
    let fakes = Fakes::start().await;
    {
        let mut b = fakes.origin.behaviour();
        b.grade_trust = true;
        b.low_trust = LowTrust::Cut;
        b.enforce_media = true;
    }
    Harness::builder()
        .sources(sources)
        .api(true)
        .start_on(fakes)
        .await
}

#[tokio::test]
async fn quickjs_tokens_graded_low_are_replaced_by_the_browsers_and_botguard_is_set_aside() {
    if !have_browser() {
        return;
    }
    let h = browser_harness(&[SourceKind::BotGuard, SourceKind::Browser]).await;
    let url = audio_url(&player(&h, V1).await, BIG);
    download_every_way(&h, &url).await;
    assert!(h.origin.counts().low_trust_cuts >= 1, "the fake did cut");
    botguard_is_set_aside(&h).await;
    second_video_has_no_refusal(&h).await;
}

#[tokio::test]
async fn with_the_browser_first_and_grading_on_nothing_is_ever_refused() {
    if !have_browser() {
        return;
    }
    let h = browser_harness(&[SourceKind::Browser, SourceKind::BotGuard]).await;
    for video in [V1, V2] {
        let url = audio_url(&player(&h, video).await, BIG);
        download_every_way(&h, &url).await;
        assert_eq!(refusals(&h), 0, "refusal during {video}");
    }
    assert!(h.proxy.services.tokens.set_aside().is_empty());
}
