//! The right binding for every request, end to end: the fake googlevideo enforces a regime
//! (video-bound, or session-bound logged out / logged in) and refuses wrong bindings with 403
//! or in-band (UMP StreamProtectionStatus 3). The proxy must deliver the media in every regime,
//! recover from a wrong guess with at most one retried request, and not guess wrong twice.

mod common;

use common::botguard::Verdict;
use common::youtube::{DATASYNC_ID, ISSUED_VISITOR_DATA, VISITOR_DATA};
use common::*;
use potproxy::config::SourceKind;

const V1: &str = "jNQXAC9IVRw";
const V2: &str = "9bZkp7q19f0";

/// Tokens minted by the simulated BotGuard; googlevideo refuses media without a valid one.
async fn minting_harness(extra_toml: &str) -> Harness {
    let h = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .toml(extra_toml)
        .start()
        .await;
    h.origin.behaviour().enforce_media = true;
    h
}

/// A player request through the proxy; returns the player response.
async fn player(
    h: &Harness,
    video: &str,
    logged_in: bool,
    visitor: Option<&str>,
) -> serde_json::Value {
    let mut body = player_body("MWEB", video);
    if let Some(v) = visitor {
        body["context"]["client"]["visitorData"] = serde_json::Value::String(v.into());
    }
    let mut rb = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json");
    if logged_in {
        rb = rb
            .header("authorization", "SAPISIDHASH 1700000000_0123456789abcdef")
            .header("cookie", "LOGIN_INFO=x; SAPISID=y");
    }
    let res = rb
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

fn audio_url(p: &serde_json::Value) -> String {
    p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// GETs a media URL through the proxy; returns the status and how many media requests the
/// fake saw for it.
async fn fetch_media(h: &Harness, url: &str) -> (u16, usize) {
    h.origin.take();
    let res = h
        .client()
        .get(url)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap();
    if status == 206 {
        assert!(body == media_bytes(0, 1000), "media bytes intact");
    }
    let n = h
        .origin
        .take()
        .iter()
        .filter(|s| s.path_and_query.starts_with("/videoplayback"))
        .count();
    (status, n)
}

#[tokio::test]
async fn video_bound_regime_is_right_first_time() {
    let h = minting_harness("").await;
    let url = audio_url(&player(&h, V1, false, None).await);
    assert_eq!(fetch_media(&h, &url).await, (206, 1));
}

#[tokio::test]
async fn session_bound_logged_out_recovers_after_one_retry_and_remembers() {
    let h = minting_harness("").await;
    h.origin.behaviour().gvs_regime = GvsRegime::Session;
    let url = audio_url(&player(&h, V1, false, None).await);
    assert_eq!(
        fetch_media(&h, &url).await,
        (206, 2),
        "one wrong guess, one retry"
    );
    // The second video of the same session needs no retry.
    let url2 = audio_url(&player(&h, V2, false, None).await);
    assert_eq!(fetch_media(&h, &url2).await, (206, 1));
    let accepted: Vec<_> = h
        .origin
        .verdicts()
        .into_iter()
        .filter(|(w, v)| w.starts_with("media") && *v == Verdict::Valid)
        .collect();
    assert_eq!(accepted.len(), 2);
    // A chunk of the first video again: no retry either.
    assert_eq!(fetch_media(&h, &url).await, (206, 1));
    let _ = VISITOR_DATA;
}

#[tokio::test]
async fn session_bound_logged_in_binds_to_the_datasync_id() {
    let h = minting_harness("").await;
    h.origin.behaviour().gvs_regime = GvsRegime::Session;
    let url = audio_url(&player(&h, V1, true, None).await);
    assert_eq!(fetch_media(&h, &url).await, (206, 2));
    let url2 = audio_url(&player(&h, V2, true, None).await);
    assert_eq!(fetch_media(&h, &url2).await, (206, 1));
    // What the fake accepted was bound to the DataSync ID.
    let v = h.origin.verdicts();
    assert!(
        v.iter()
            .any(|(w, v)| w == &format!("media {V2}") && *v == Verdict::Valid)
    );
    let _ = DATASYNC_ID;
}

#[tokio::test]
async fn a_session_default_that_is_wrong_falls_back_to_video() {
    let h = minting_harness("[bindings]\ndefault_regime = \"session\"\n").await;
    let url = audio_url(&player(&h, V1, false, Some(VISITOR_DATA)).await);
    assert_eq!(fetch_media(&h, &url).await, (206, 2));
    let url2 = audio_url(&player(&h, V2, false, Some(VISITOR_DATA)).await);
    assert_eq!(fetch_media(&h, &url2).await, (206, 1));
}

#[tokio::test]
async fn in_band_rejection_switches_the_regime_for_the_next_request() {
    let h = minting_harness("").await;
    {
        let mut b = h.origin.behaviour();
        b.gvs_regime = GvsRegime::Session;
        b.ump_rejections = true;
    }
    let url = audio_url(&player(&h, V1, false, None).await);
    let ump_url = format!("{url}&ump=1&srfvp=1&alr=yes&rn=1");
    let first = h
        .client()
        .post(&ump_url)
        .body(vec![0x78, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let bytes = first.bytes().await.unwrap();
    assert_eq!(
        bytes,
        ump_body(3, false),
        "the client gets the UMP bytes unchanged"
    );
    // The next request of the session carries a session-bound token and is accepted.
    let second = h
        .client()
        .post(format!("{url}&ump=1&srfvp=1&alr=yes&rn=2"))
        .body(vec![0x78, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(second.bytes().await.unwrap(), ump_body(1, true));
}

#[tokio::test]
async fn sabr_bodies_differ_from_the_clients_only_in_the_token() {
    let h = minting_harness("").await;
    let p = player(&h, V1, false, None).await;
    let sabr_url = p["streamingData"]["serverAbrStreamingUrl"]
        .as_str()
        .unwrap()
        .to_string();
    // A realistic request: client_abr_state, format id, ustreamer config, an unknown field,
    // and a streamer_context with client info and no token.
    let mut body = vec![0x0a, 0x05, 0x08, 0x90, 0x4e, 0x28, 0x01];
    body.extend([0x12, 0x05, 0x08, 0x8c, 0x01, 0x10, 0x02]);
    body.extend([0x2a, 0x04, 0xde, 0xad, 0xbe, 0xef]);
    body.extend([0xf8, 0x3e, 0x07]);
    body.extend([0x9a, 0x01, 0x05, 0x0a, 0x03, 0x80, 0x01, 0x02]);
    h.origin.take();
    let res = h
        .client()
        .post(format!("{sabr_url}&rn=1"))
        .header("content-type", "application/x-protobuf")
        .header("accept", "application/vnd.yt-ump")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap(), ump_body(1, true));
    let seen = h.origin.take();
    let got = &seen
        .iter()
        .find(|s| s.path_and_query.contains("sabr=1"))
        .unwrap();
    assert!(!got.path_and_query.contains("pot="), "no pot in a SABR URL");
    let token = potproxy::rewrite::sabr::po_token(&got.body).unwrap();
    // Every client byte kept, in order; the token joins the client's own streamer_context
    // (the last 8 bytes) after its client_info rather than arriving as a second one.
    let mut context = body[body.len() - 5..].to_vec();
    potproxy::wire::put_bytes(&mut context, 2, &token);
    let mut expected = body[..body.len() - 8].to_vec();
    potproxy::wire::put_bytes(&mut expected, 19, &context);
    assert_eq!(
        got.body, expected,
        "every client byte kept, in order, the token inside the client's streamer_context"
    );
    assert_eq!(
        h.origin
            .state
            .bg
            .verify(potproxy::token::Token::from_bytes(&token).as_str(), V1),
        Verdict::Valid
    );
}

#[tokio::test]
async fn captions_get_a_video_bound_token_with_potc() {
    let h = minting_harness("").await;
    let p = player(&h, V1, false, None).await;
    let base = p["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"][0]["baseUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let res = h
        .client()
        .get(format!("{base}&fmt=vtt"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = h.origin.take();
    let q = &seen
        .iter()
        .find(|s| s.path_and_query.starts_with("/api/timedtext"))
        .unwrap();
    assert_eq!(
        q.query_values("c"),
        vec!["MWEB"],
        "client learned from the player response"
    );
    assert!(
        h.origin
            .verdicts()
            .contains(&(format!("subs {V1}"), Verdict::Valid))
    );
}

#[tokio::test]
async fn player_response_urls_carry_tokens_when_opted_in() {
    let h = minting_harness("[rewrite]\nplayer_response = true\n").await;
    let p = player(&h, V1, false, None).await;
    let url = audio_url(&p);
    let pot = url
        .split('&')
        .find_map(|kv| kv.strip_prefix("pot="))
        .expect("pot in the response URL")
        .to_string();
    assert_eq!(h.origin.state.bg.verify(&pot, V1), Verdict::Valid);
    assert!(
        !p["streamingData"]["serverAbrStreamingUrl"]
            .as_str()
            .unwrap()
            .contains("pot="),
        "SABR URL left alone"
    );
    let caption = p["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"][0]["baseUrl"]
        .as_str()
        .unwrap();
    assert!(
        caption.contains("potc=1") && caption.contains("&c=MWEB"),
        "{caption}"
    );
}

#[tokio::test]
async fn a_session_bound_request_without_visitor_data_gets_one_issued() {
    let h = minting_harness("[bindings]\ndefault_regime = \"session\"\n").await;
    h.origin.behaviour().gvs_regime = GvsRegime::Session;
    let p = player(&h, V1, false, None).await;
    assert_eq!(h.origin.counts().visitor_id, 1);
    assert_eq!(p["responseContext"]["visitorData"], ISSUED_VISITOR_DATA);
    let seen = h.origin.take();
    let req = seen
        .iter()
        .find(|s| s.path_and_query.starts_with("/youtubei/v1/player"))
        .unwrap();
    assert_eq!(
        req.json()["context"]["client"]["visitorData"],
        ISSUED_VISITOR_DATA
    );
    assert_eq!(req.headers["x-goog-visitor-id"], ISSUED_VISITOR_DATA);
    // Media tokens are bound to the issued visitor data: accepted first time.
    assert_eq!(fetch_media(&h, &audio_url(&p)).await, (206, 1));
}

#[tokio::test]
async fn android_media_and_players_pass_untouched_whatever_the_regime() {
    let h = minting_harness("").await;
    let body = serde_json::to_vec(&player_body("ANDROID", V1)).unwrap();
    h.client()
        .post("https://youtubei.googleapis.com/youtubei/v1/player")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let seen = h.origin.take();
    assert_eq!(seen[0].body, body);
    assert!(
        h.origin.verdicts().is_empty(),
        "no token checked: none sent"
    );
}

#[tokio::test]
async fn web_remix_player_tokens_bind_to_the_account_an_innertube_response_named() {
    let h = minting_harness("").await;
    let auth = "SAPISIDHASH 1700000000_0123456789abcdef";
    // Any InnerTube call of the signed-in session tells the proxy the account's DataSync ID.
    let next = h
        .client()
        .post("https://music.youtube.com/youtubei/v1/next?prettyPrint=false")
        .header("authorization", auth)
        .header("x-goog-visitor-id", VISITOR_DATA)
        .body(r#"{"context":{"client":{"clientName":"WEB_REMIX"}},"videoId":"jNQXAC9IVRw"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    let mut body = player_body("WEB_REMIX", V1);
    body["context"]["client"]["visitorData"] = serde_json::Value::String(VISITOR_DATA.into());
    let res = h
        .client()
        .post("https://music.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("authorization", auth)
        .header("cookie", "LOGIN_INFO=x; SAPISID=y")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        h.origin
            .verdicts()
            .contains(&(format!("player {V1}"), Verdict::Valid)),
        "{:?}",
        h.origin.verdicts()
    );
}
