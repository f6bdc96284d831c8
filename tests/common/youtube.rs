//! The fake YouTube: pages (home, watch, m., the browser test page, the player script stubs)
//! with their `ytcfg` and inline BotGuard challenge, and InnerTube (`player` with real-shaped
//! media URLs on the fake googlevideo and a check of the player token, `next`, `visitor_id`).
//! With SABR-only on, player responses (and the watch page's `ytInitialPlayerResponse`) carry
//! the [`sabr`] format catalog, without URLs for web clients.

use serde_json::{Value, json};

use super::media::{DEFAULT_MEDIA_LEN, FakePlayback};
use super::origin::{Behaviour, FakeRequest, FakeState, Reply, status_body};
use super::sabr;

/// The EVENT_ID the fake pages' ytcfg carries.
pub const EVENT_ID: &str = "FakeEventId0123456789ab";
pub const VISITOR_DATA: &str = "CgtGYWtlVmlzaXRvcijAgICAxjIKCgJERRIEEgAgNg%3D%3D";
/// What `/youtubei/v1/visitor_id` issues.
pub const ISSUED_VISITOR_DATA: &str = "CgtJc3N1ZWRWaXNpdG9yKMCAgIDGMgoKAkRFEgQSACA2";
/// The DataSync ID of the fake's signed-in account.
pub const DATASYNC_ID: &str = "FAKEDSID123||";

pub(super) fn route(state: &FakeState, req: &FakeRequest) -> Option<Reply> {
    let (host, path) = (req.host.as_str(), req.path.as_str());
    let get = req.parts.method == hyper::Method::GET;
    let html = "text/html; charset=utf-8";
    if host == "www.youtube.com" && path == "/youtubei/v1/visitor_id" {
        state.count(|c| c.visitor_id += 1);
        let body = json!({"responseContext": {"visitorData": ISSUED_VISITOR_DATA}});
        return Some(status_body(
            200,
            serde_json::to_vec(&body).unwrap(),
            "application/json",
        ));
    }
    if host == "www.youtube.com" && path == "/potproxy-test" {
        return Some(status_body(200, BROWSER_TEST_PAGE, html));
    }
    if host == "www.youtube.com" && path == "/watch" {
        let v = req.param("v").unwrap_or_else(|| "aaaaaaaaaaa".into());
        return Some(status_body(200, page(state, "WEB", Some(&v)), html));
    }
    if host == "www.youtube.com" && path == "/" && get {
        state.count(|c| c.page += 1);
        let status = state.behaviour().page_status;
        if status != 200 {
            return Some(status_body(
                status,
                "<html>Our systems have detected unusual traffic</html>",
                html,
            ));
        }
        return Some(status_body(200, page(state, "WEB", None), html));
    }
    // What yt-dlp fetches before the player request when nothing is skipped.
    if host == "m.youtube.com" && path == "/" && get {
        return Some(status_body(200, page(state, "MWEB", None), html));
    }
    if host == "www.youtube.com" && path == "/iframe_api" {
        return Some(status_body(
            200,
            "var scriptUrl = 'https:\\/\\/www.youtube.com\\/s\\/player\\/abcd1234\\/www-widgetapi.vflset\\/www-widgetapi.js';",
            "text/javascript",
        ));
    }
    if host == "www.youtube.com" && path.starts_with("/s/player/abcd1234/") {
        return Some(status_body(
            200,
            "var p={signatureTimestamp:20500};",
            "text/javascript",
        ));
    }
    if path == "/youtubei/v1/next" {
        return Some(next_response(req));
    }
    if path.ends_with("/youtubei/v1/player") && req.parts.method == hyper::Method::POST {
        if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
            return Some(player_response(state, &v, &req.parts.headers));
        }
    }
    None
}

/// The account context InnerTube responses carry.
fn main_app_context(logged_in: bool) -> Value {
    if logged_in {
        json!({"datasyncId": DATASYNC_ID, "loggedOut": false})
    } else {
        json!({"loggedOut": true})
    }
}

/// `next`: signed in when an `authorization` header is present.
fn next_response(req: &FakeRequest) -> Reply {
    let visitor = req.header("x-goog-visitor-id").unwrap_or(VISITOR_DATA);
    let main = main_app_context(req.parts.headers.contains_key("authorization"));
    let body = json!({
        "responseContext": {"visitorData": visitor, "mainAppWebResponseContext": main},
        "contents": {"twoColumnWatchNextResults": {"results": {"results": {"contents": []}}}}
    });
    status_body(200, serde_json::to_vec(&body).unwrap(), "application/json")
}

/// A page's ytcfg for `client` (`WEB` on www, `MWEB` on m.).
pub fn ytcfg(b: &Behaviour, client: &str) -> Value {
    let flags = match b.page_flag_video_bound {
        Some(v) => format!("html5_generate_content_po_token={v}&foo=1"),
        None => "foo=1".into(),
    };
    json!({
        "EVENT_ID": EVENT_ID,
        "VISITOR_DATA": VISITOR_DATA,
        "DATASYNC_ID": "V15f488c3||",
        "LOGGED_IN": false,
        "INNERTUBE_API_KEY": "AIzaSyFakeKeyForTests0000000000000000",
        "INNERTUBE_CLIENT_NAME": client,
        "INNERTUBE_CLIENT_VERSION": "2.20260512.00.00",
        "INNERTUBE_CONTEXT_CLIENT_NAME": if client == "MWEB" { 2 } else { 1 },
        "INNERTUBE_CONTEXT": {"client": {"clientName": client, "clientVersion": "2.20260512.00.00", "visitorData": VISITOR_DATA, "hl": "en", "gl": "US"}},
        "PLAYER_JS_URL": "/s/player/abcd1234/player_ias.vflset/en_US/base.js",
        "WEB_PLAYER_CONTEXT_CONFIGS": {"WEB_PLAYER_CONTEXT_CONFIG_ID_KEVLAR_WATCH": {"serializedExperimentFlags": flags, "jsUrl": "/s/player/abcd1234/player_ias.vflset/en_US/base.js"}}
    })
}

/// A page for `client` (`WEB` on www, `MWEB` on m.) with the inline `ytAtN` challenge (the
/// embedded `/att/get` answer and the eacrToken) in the same escaped form the real page uses; with `video`, a watch page carrying `ytInitialPlayerResponse`.
pub fn page(state: &FakeState, client: &str, video: Option<&str>) -> String {
    let b = state.behaviour();
    let mut html = format!(
        "<!DOCTYPE html><html><head><script nonce=\"x\">ytcfg.set({});</script></head><body>",
        ytcfg(&b, client)
    );
    if let Some(v) = video {
        let ipr = if b.sabr.only {
            player_json(state, v, VISITOR_DATA, false, client)
        } else {
            json!({"playabilityStatus": {"status": "OK"}, "videoDetails": {"videoId": v, "title": "Fake video", "lengthSeconds": "10"}})
        };
        html.push_str(&format!(
            "<script nonce=\"x\">var ytInitialPlayerResponse = {ipr};var meta = document.createElement('meta');</script><script nonce=\"x\">var ytInitialData = {{\"contents\": {{}}}};</script>"
        ));
    }
    if b.page_challenge {
        let r = serde_json::to_string(&state.bg.page_att_response(&b)).unwrap();
        let escaped: String = r
            .chars()
            .map(|c| match c {
                '"' => "\\x22".to_string(),
                '{' => "\\x7b".to_string(),
                '}' => "\\x7d".to_string(),
                '/' => "\\/".to_string(),
                c => c.to_string(),
            })
            .collect();
        html.push_str(&format!(
            "<script nonce=\"x\">(function() {{if (window.ytAtN) {{window.ytAtN({{'R': '{escaped}', 'T': 'eacr-token-fake'}});}}}})();</script>"
        ));
    }
    html.push_str("</body></html>");
    html
}

/// A page a browser loads from the fake www.youtube.com: it asks the player API, fetches the
/// first audio URL from googlevideo (cross-origin), and writes what it saw into the DOM (how
/// many formats had a URL; without one, as in a SABR-only response, it fetches nothing).
pub const BROWSER_TEST_PAGE: &str = r#"<!DOCTYPE html><html><head><title>potproxy test</title></head><body><pre id="out">pending</pre><script>
(async () => {
  const out = {};
  try {
    const r = await fetch('/youtubei/v1/player?prettyPrint=false', {method: 'POST', headers: {'content-type': 'application/json'},
      body: JSON.stringify({context: {client: {clientName: 'WEB', clientVersion: '2.20260512.00.00'}}, videoId: 'jNQXAC9IVRw'})});
    out.player = r.status;
    const p = await r.json();
    const f = p.streamingData.adaptiveFormats[0];
    // A SABR-only response: YouTube's player would speak SABR; the page reports what it got.
    out.format_urls = p.streamingData.adaptiveFormats.filter(x => x.url).length;
    out.sabr_url = !!p.streamingData.serverAbrStreamingUrl;
    if (!f.url) { document.getElementById('out').textContent = 'RESULT:' + JSON.stringify(out); return; }
    const m = await fetch(f.url);
    out.media = m.status;
    out.bytes = (await m.arrayBuffer()).byteLength;
  } catch (e) { out.error = String(e); }
  document.getElementById('out').textContent = 'RESULT:' + JSON.stringify(out);
})();
</script></body></html>"#;

/// The player's bot check, as YouTube words it (U+2019 apostrophe).
pub fn bot_check(visitor: &str) -> Value {
    json!({
        "responseContext": {"visitorData": visitor},
        "playabilityStatus": {
            "status": "LOGIN_REQUIRED",
            "reason": "Sign in to confirm you\u{2019}re not a bot",
            "messages": ["Sign in to confirm you\u{2019}re not a bot. This helps protect our community."]
        }
    })
}

/// A player response with real-shaped media URLs on the fake googlevideo, checking a player
/// token when one is present.
fn player_response(state: &FakeState, req: &Value, headers: &http::HeaderMap) -> Reply {
    state.sabr.player_request(req);
    let video = req["videoId"].as_str().unwrap_or("aaaaaaaaaaa").to_string();
    let header_visitor = headers
        .get("x-goog-visitor-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let visitor = req["context"]["client"]["visitorData"]
        .as_str()
        .map(str::to_string)
        .or(header_visitor)
        .unwrap_or_else(|| VISITOR_DATA.to_string());
    let logged_in = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("SAPISIDHASH"));
    let client = req["context"]["client"]["clientName"]
        .as_str()
        .unwrap_or("WEB")
        .to_string();
    if let Some(pot) = req["serviceIntegrityDimensions"]["poToken"].as_str() {
        // WEB_REMIX binds even player tokens to the session.
        let expected = if client == "WEB_REMIX" {
            if logged_in {
                DATASYNC_ID.to_string()
            } else {
                visitor.clone()
            }
        } else {
            video.clone()
        };
        let v = state.bg.verify(pot, &expected);
        state.record_verdict(format!("player {video}"), v);
        let b = state.behaviour();
        let low = state.bg.trust(pot, &expected) == Some(super::botguard::Trust::Low);
        if b.grade_trust && b.bot_check_low_trust && low {
            state.count(|c| c.bot_checks += 1);
            return status_body(
                200,
                serde_json::to_vec(&bot_check(&visitor)).unwrap(),
                "application/json; charset=UTF-8",
            );
        }
    }
    let body = player_json(state, &video, &visitor, logged_in, &client);
    status_body(
        200,
        serde_json::to_vec(&body).unwrap(),
        "application/json; charset=UTF-8",
    )
}

/// A player response for `client` with real-shaped media URLs on the fake googlevideo (with
/// [`sabr::SabrBehaviour::only`], the SABR format catalog, URL-less for web clients).
fn player_json(
    state: &FakeState,
    video: &str,
    visitor: &str,
    logged_in: bool,
    client: &str,
) -> Value {
    let (ei, id) = state.playbacks.issue(FakePlayback {
        video: video.to_string(),
        visitor: visitor.to_string(),
        logged_in,
    });
    let expire = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 6 * 3600;
    let url = |itag: u32, mime: &str, clen: u64| {
        format!(
            "https://rr1---sn-fake.googlevideo.com/videoplayback?expire={expire}&ei={ei}&ip=127.0.0.1&id={id}&itag={itag}&source=youtube&requiressl=yes&mime={mime}&clen={clen}&c={client}&sparams=expire%2Cei%2Cip%2Cid%2Citag%2Csource%2Crequiressl%2Cmime%2Cclen&sig=AJfQdSswRQIhAFake"
        )
    };
    let sabr_mode = state.behaviour().sabr;
    let mut body = json!({
        "responseContext": {
            "visitorData": visitor,
            "mainAppWebResponseContext": main_app_context(logged_in)
        },
        "playabilityStatus": {"status": "OK"},
        "captions": {"playerCaptionsTracklistRenderer": {"captionTracks": [
            {"baseUrl": format!("https://www.youtube.com/api/timedtext?v={video}&ei={ei}&caps=asr&opi=1&xoaf=5&lang=en"), "languageCode": "en"}
        ]}},
        "videoDetails": {"videoId": video, "title": "Fake video", "lengthSeconds": "10", "author": "fake"},
        "streamingData": {
            "expiresInSeconds": "21540",
            "formats": [{"itag": 18, "url": url(18, "video%2Fmp4", 400_000), "mimeType": "video/mp4; codecs=\"avc1.42001E, mp4a.40.2\"", "bitrate": 320_000, "width": 640, "height": 360, "contentLength": "400000", "quality": "medium", "qualityLabel": "360p", "approxDurationMs": "10000", "audioQuality": "AUDIO_QUALITY_LOW", "audioSampleRate": "44100", "audioChannels": 2}],
            "serverAbrStreamingUrl": format!("https://rr1---sn-fake.googlevideo.com/videoplayback?expire={expire}&ei={ei}&ip=127.0.0.1&id={id}&source=youtube&requiressl=yes&sabr=1&c={client}&sparams=expire%2Cei%2Cip%2Cid%2Csource%2Crequiressl%2Csabr&sig=AJfQdSabr"),
            "adaptiveFormats": [{"itag": 140, "url": url(140, "audio%2Fmp4", DEFAULT_MEDIA_LEN), "mimeType": "audio/mp4; codecs=\"mp4a.40.2\"", "bitrate": 130_000, "contentLength": DEFAULT_MEDIA_LEN.to_string(), "approxDurationMs": "10000", "audioQuality": "AUDIO_QUALITY_MEDIUM", "audioSampleRate": "44100", "audioChannels": 2}]
        },
        "playerConfig": {"mediaCommonConfig": {
            "dynamicReadaheadConfig": {"maxReadAheadMediaTimeMs": 120000, "minReadAheadMediaTimeMs": 15000, "readAheadGrowthRateMs": 1000},
            "mediaUstreamerRequestConfig": {"videoPlaybackUstreamerConfig": sabr::ustreamer_config_b64(&id)}
        }}
    });
    if sabr_mode.only {
        // The full catalog; web clients get no format URL, only the SABR URL.
        let web = sabr::is_web_client(client);
        let formats: Vec<Value> = sabr::FORMATS
            .iter()
            .map(|f| {
                let mime = f.mime.split(';').next().unwrap_or("").replace('/', "%2F");
                let url = format!(
                    "{}&lmt={}&dur=30.000",
                    url(f.itag, &mime, f.clen),
                    f.last_modified
                );
                f.json((!web).then_some(url))
            })
            .collect();
        let data = &mut body["streamingData"];
        data["adaptiveFormats"] = Value::Array(formats);
        let mut sabr_url = sabr::sabr_url(expire, &ei, &id, client);
        if !sabr_mode.n_param {
            sabr_url = sabr_url.replace(&format!("&n={}", sabr::SABR_N), "");
        }
        data["serverAbrStreamingUrl"] = sabr_url.into();
        body["videoDetails"]["lengthSeconds"] = (sabr::DURATION_MS / 1000).to_string().into();
    }
    body
}
