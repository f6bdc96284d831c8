//! The SABR gateway end to end: a fake YouTube that answers web clients SABR-only, a fake
//! googlevideo SABR server (tests/common/sabr.rs), and clients that have never heard of SABR
//! fetching the formats through potproxy. Every byte is compared with what the format's
//! progressive URL serves, and the fake's record of SABR requests says what potproxy sent.

mod common;

use common::sabr::{FORMATS, REDIRECT_HOST, SabrAnswer, SabrBehaviour, format};
use common::*;
use potproxy::config::SourceKind;
use serde_json::Value;

const V: &str = "jNQXAC9IVRw";

/// A proxy in front of a SABR-only fake; `sources` mint its tokens.
async fn sabr_only(sources: &[SourceKind]) -> Harness {
    let h = Harness::builder()
        .sources(sources)
        .static_token()
        .start()
        .await;
    {
        let mut b = h.origin.behaviour();
        b.sabr = SabrBehaviour::on();
        b.enforce_media = true;
    }
    h
}

async fn player(client: &reqwest::Client, headers: &[(&str, &str)]) -> Value {
    let mut rb = client
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&player_body("WEB", V)).unwrap());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let res = rb.send().await.unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

fn formats(pr: &Value) -> &Vec<Value> {
    pr["streamingData"]["adaptiveFormats"].as_array().unwrap()
}

/// The gateway URL the player response gave `itag`.
fn url_of(pr: &Value, itag: u32) -> String {
    formats(pr)
        .iter()
        .find(|f| f["itag"] == itag)
        .and_then(|f| f["url"].as_str())
        .unwrap_or_else(|| panic!("no url for {itag}: {pr:#}"))
        .to_string()
}

fn progressive(itag: u32, first: u64, len: u64) -> Vec<u8> {
    let f = format(itag);
    assert!(first + len <= f.clen);
    media_bytes(first, len)
}

async fn get(client: &reqwest::Client, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut rb = client.get(url);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    rb.send().await.unwrap()
}

/// A player request, then the whole of itag 137 from its gateway URL: 200 and the bytes the
/// progressive URL serves.
async fn whole_137_is_byte_exact(h: &Harness) {
    let client = h.client();
    let pr = player(&client, &[]).await;
    let res = get(&client, &url_of(&pr, 137), None).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert!(body[..] == progressive(137, 0, format(137).clen)[..]);
}

#[tokio::test]
async fn sabr_only_formats_get_gateway_urls_and_keep_every_other_field() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let pr = player(&h.client(), &[]).await;
    let sabr_url = pr["streamingData"]["serverAbrStreamingUrl"]
        .as_str()
        .unwrap();
    assert!(
        sabr_url.starts_with("https://rr1---sn-fake.googlevideo.com/"),
        "the SABR URL stays as it came: {sabr_url}"
    );
    assert_eq!(formats(&pr).len(), FORMATS.len());
    for f in formats(&pr) {
        let itag = f["itag"].as_u64().unwrap() as u32;
        let url = f["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://sabr.potproxy.googlevideo.com/videoplayback?"),
            "{url}"
        );
        let mut rest = f.clone();
        rest.as_object_mut().unwrap().remove("url");
        assert_eq!(rest, format(itag).json(None), "only `url` was added");
    }
}

#[tokio::test]
async fn a_browser_or_a_client_that_says_off_gets_the_sabr_only_response_as_it_came() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    for headers in [
        &[
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-dest", "empty"),
        ][..],
        &[("x-potproxy-gateway", "off")][..],
    ] {
        let pr = player(&h.client(), headers).await;
        assert!(
            formats(&pr).iter().all(|f| f.get("url").is_none()),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn a_whole_format_is_byte_exact_with_a_valid_token_on_every_sabr_request() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let client = h.client();
    let pr = player(&client, &[]).await;
    for itag in [140, 137] {
        let res = get(&client, &url_of(&pr, itag), None).await;
        assert_eq!(res.status(), 200);
        let clen = format(itag).clen;
        assert_eq!(res.content_length(), Some(clen));
        assert_eq!(res.headers()["accept-ranges"].to_str().unwrap(), "bytes");
        let body = res.bytes().await.unwrap();
        assert!(body[..] == progressive(itag, 0, clen)[..], "itag {itag}");
    }
    let requests = h.origin.sabr_requests();
    assert!(requests.len() >= 4, "{requests:#?}");
    assert!(requests.iter().all(|r| r.token_valid), "{requests:#?}");
    assert_eq!(h.origin.sabr_violations(), Vec::<String>::new());
    // Per session, rn counts 0, 1, 2, ...
    let rns: Vec<u64> = requests.iter().filter_map(|r| r.rn).collect();
    assert_eq!(rns.iter().filter(|&&rn| rn == 0).count(), 2, "{rns:?}");
    // Observability: the exchanges are gateway streams; the counters moved.
    let recent = potproxy::observe::recent::recent().latest(1000);
    assert!(
        recent.iter().any(|e| e.kind == "sabr_gateway"
            && e.status == 200
            && e.bytes_out == format(137).clen),
        "{recent:#?}"
    );
    let count = |event| potproxy::metrics::SABR_GATEWAY.get(&[event]);
    assert!(count("stream") >= 2 && count("complete") >= 2);
    assert!(count("sabr_request") >= requests.len() as u64);
}

#[tokio::test]
async fn ranges_mid_file_head_and_unsatisfiable_ranges_are_answered_like_googlevideo() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let client = h.client();
    let pr = player(&client, &[]).await;
    let url = url_of(&pr, 137);
    let clen = format(137).clen;

    let res = get(&client, &url, Some("bytes=1500000-1600000")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1500000-1600000/{clen}")
    );
    let body = res.bytes().await.unwrap();
    assert!(body[..] == progressive(137, 1_500_000, 100_001)[..]);
    // A mid-file range starts near its place, not from the first segment.
    let mid = h
        .origin
        .sabr_requests()
        .into_iter()
        .find(|r| r.player_time_ms > 0);
    assert!(mid.is_some(), "the session seeked by player time");

    let res = get(&client, &format!("{url}&range=2000000-2099999"), None).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert!(body[..] == progressive(137, 2_000_000, 100_000)[..]);

    let res = get(&client, &url, Some(&format!("bytes=-{}", 1000))).await;
    assert_eq!(res.status(), 206);
    assert!(res.bytes().await.unwrap()[..] == progressive(137, clen - 1000, 1000)[..]);

    let before = h.origin.sabr_requests().len();
    let res = client.head(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.content_length(), Some(clen));
    assert_eq!(
        h.origin.sabr_requests().len(),
        before,
        "HEAD makes no SABR request"
    );

    let res = get(&client, &url, Some(&format!("bytes={clen}-"))).await;
    assert_eq!(res.status(), 416);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{clen}")
    );
}

#[tokio::test]
async fn twenty_concurrent_ranges_of_one_format_and_another_format_are_each_byte_exact() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let client = h.client();
    let pr = player(&client, &[]).await;
    let url = url_of(&pr, 137);
    let clen = format(137).clen;
    let chunk = clen.div_ceil(20);
    // Another format of the same video at the same time.
    let audio = {
        let (client, url) = (client.clone(), url_of(&pr, 140));
        tokio::spawn(async move { get(&client, &url, None).await.bytes().await.unwrap() })
    };
    let fetches = (0..20u64).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let first = i * chunk;
            let last = (first + chunk - 1).min(clen - 1);
            let res = get(&client, &url, Some(&format!("bytes={first}-{last}"))).await;
            assert_eq!(res.status(), 206, "range {i}");
            let body = res.bytes().await.unwrap();
            assert!(
                body[..] == progressive(137, first, last - first + 1)[..],
                "range {i}"
            );
        }
    });
    futures::future::join_all(fetches).await;
    let audio = audio.await.unwrap();
    assert!(audio[..] == progressive(140, 0, format(140).clen)[..]);
    assert_eq!(h.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn protection_status_3_on_the_third_sabr_request_is_healed_without_the_client_noticing() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    h.origin.behaviour().sabr.protection_on = Some((3, 3));
    whole_137_is_byte_exact(&h).await;
    let requests = h.origin.sabr_requests();
    let refused = requests
        .iter()
        .position(|r| r.answer == SabrAnswer::Refused)
        .expect("the fake refused one request");
    let after = &requests[refused + 1];
    assert_ne!(
        after.token, requests[refused].token,
        "the request after the refusal carried another token"
    );
    assert!(after.token_valid);
}

#[tokio::test]
async fn a_redirect_mid_stream_is_followed() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    h.origin.behaviour().sabr.redirect_on = Some(2);
    whole_137_is_byte_exact(&h).await;
    let requests = h.origin.sabr_requests();
    assert!(
        requests.iter().skip(2).all(|r| r.host == REDIRECT_HOST),
        "{requests:#?}"
    );
    assert_eq!(h.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_sabr_error_mid_stream_starts_a_new_session_from_where_the_bytes_stopped() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    h.origin.behaviour().sabr.error_on = Some(3);
    whole_137_is_byte_exact(&h).await;
    let requests = h.origin.sabr_requests();
    let error = requests
        .iter()
        .position(|r| r.answer == SabrAnswer::Error)
        .expect("the fake answered one SABR_ERROR");
    let next = &requests[error + 1];
    assert_eq!(next.cookie, None, "a new session: no cookie");
    assert!(next.player_time_ms > 0, "it starts where the bytes stopped");
    assert_eq!(h.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn sabr_errors_past_the_budget_before_any_media_are_a_502_that_names_them() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    {
        let mut b = h.origin.behaviour();
        b.sabr.error_on = Some(1);
        b.sabr.error_persists = true;
    }
    let client = h.client();
    let pr = player(&client, &[]).await;
    let res = get(&client, &url_of(&pr, 140), None).await;
    assert_eq!(res.status(), 502);
    let text = res.text().await.unwrap();
    assert!(text.contains("SABR_ERROR"), "{text}");
    assert_eq!(
        h.origin.sabr_requests().len(),
        6,
        "the first try and 5 new sessions"
    );
}

#[tokio::test]
async fn reload_player_response_is_answered_and_the_download_goes_on() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    h.origin.behaviour().sabr.reload_on = Some(2);
    whole_137_is_byte_exact(&h).await;
    assert_eq!(h.origin.state.sabr.reloads_seen().len(), 1);
}

#[tokio::test]
async fn a_gateway_url_written_by_one_node_is_served_by_another() {
    let fakes = Fakes::start().await;
    let builder = Harness::builder().sources(&[SourceKind::BotGuard]);
    let dir_b = tempfile::tempdir().unwrap();
    let node_b = potproxy::start(builder.config(&fakes, dir_b.path()))
        .await
        .unwrap();
    let a = builder.start_on(fakes).await;
    a.origin.behaviour().sabr = SabrBehaviour::on();
    let pr = player(&a.client(), &[]).await;
    let url = url_of(&pr, 140);
    let via_b = client_via(node_b.addr, node_b.ca_cert_pem.as_bytes());
    let res = get(&via_b, &url, Some("bytes=1000-")).await;
    assert_eq!(res.status(), 206);
    let clen = format(140).clen;
    let body = res.bytes().await.unwrap();
    assert!(body[..] == progressive(140, 1000, clen - 1000)[..]);
    node_b.shutdown().await;
}

#[tokio::test]
async fn a_gateway_url_that_names_another_host_or_no_format_is_refused() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let client = h.client();
    let res = get(
        &client,
        "https://sabr.potproxy.googlevideo.com/videoplayback?itag=140",
        None,
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("gateway URL"));
    assert!(h.origin.sabr_requests().is_empty());
}

#[tokio::test]
async fn a_gateway_url_bound_to_another_address_is_flagged_before_googlevideo_refuses_it() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let client = h.client();
    let pr = player(&client, &[]).await;
    // As written by a node that leaves from another address.
    let url = url_of(&pr, 140);
    let mut gw = potproxy::sabr::gateway::Gateway::parse(url.split_once('?').unwrap().1).unwrap();
    assert!(gw.sabr_url.contains("&ip=127.0.0.1&"));
    gw.sabr_url = gw.sabr_url.replace("&ip=127.0.0.1&", "&ip=203.0.113.7&");
    let mismatches = || potproxy::metrics::SABR_GATEWAY.get(&["ip_mismatch"]);
    let before = mismatches();
    let res = get(&client, &gw.url(), Some("bytes=0-99")).await;
    assert_eq!(
        res.status(),
        206,
        "the fake does not check ip=; googlevideo would refuse"
    );
    assert!(mismatches() > before);
    // The node's own URLs are not flagged.
    let before = mismatches();
    let res = get(&client, &url, Some("bytes=0-99")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(mismatches(), before);
}

/// A player request over a raw `CONNECT` with `preamble`, TLS as www.youtube.com; the
/// response's formats with a `url`.
async fn format_urls_over(h: &Harness, preamble: &str) -> usize {
    let (stream, head) = raw_connect(h.proxy.addr, preamble).await;
    assert!(head.contains(" 200"), "{head}");
    let text = player_over_raw_tunnel(h, stream, "www.youtube.com", "WEB", V).await;
    let (_, json) = text.split_once("\r\n\r\n").unwrap();
    let pr: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"));
    formats(&pr)
        .iter()
        .filter(|f| f.get("url").is_some())
        .count()
}

#[tokio::test]
async fn a_client_that_resolved_the_name_itself_gets_no_gateway_urls_it_could_not_reach() {
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    // By name: the client leaves resolution to the proxy, which answers the gateway's name.
    let named = format_urls_over(&h, "CONNECT www.youtube.com:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(named, FORMATS.len());
    // By address (as transparent mode and SOCKS5 by address arrive): the client would
    // resolve sabr.potproxy.googlevideo.com itself and fail.
    let by_ip = format_urls_over(&h, "CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(by_ip, 0);
}

#[tokio::test]
async fn curl_fetches_a_range_mid_file_through_the_gateway() {
    use common::curl::{curl, have_curl};
    if !have_curl() {
        return;
    }
    let h = sabr_only(&[SourceKind::BotGuard]).await;
    let pr = player(&h.client(), &[]).await;
    let url = url_of(&pr, 140);
    let ca = h.proxy.ca_cert_path.to_str().unwrap().to_string();
    let proxy = format!("http://{}", h.proxy.addr);
    let out = curl(&["-x", &proxy, "--cacert", &ca, "-r", "200000-299999", &url]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == progressive(140, 200_000, 100_000));
}
