//! Giving SABR-only formats a URL: which player responses and which clients get gateway URLs,
//! and the rewrite of the response's `adaptiveFormats` (pure; the handler reads and writes the
//! body).
//!
//! A format is SABR-only when it has neither `url` nor `signatureCipher` while the response's
//! `streamingData` has a `serverAbrStreamingUrl`. Such a format gets a `url`: a gateway URL
//! ([`super::gateway`]); every other field stays as YouTube sent it. Formats without a
//! `contentLength` (live, post-live) and DRM formats are left alone: the gateway serves sized,
//! clear objects only.

use base64::Engine;
use serde_json::Value;

use super::gateway::{FormatRef, Gateway, is_sabr_url};
use crate::classify::{is_webpo_client, query_param};

/// Which requests get gateway URLs in their player responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRule {
    /// A client that speaks SABR itself, or gateway URLs turned off: the response passes as
    /// it came.
    Leave,
    /// A client that cannot speak SABR: SABR-only formats get gateway URLs.
    Give,
}

/// The header a client may send to choose for itself (`on` / `off`).
pub const CHOICE_HEADER: &str = "x-potproxy-gateway";

/// Who gets gateway URLs (documented in README "SABR gateway"):
/// 1. `[sabr] gateway = false`: nobody.
/// 2. Not a WebPO client: nobody (their responses carry URLs; they pass untouched).
/// 3. `X-Potproxy-Gateway: on|off` from the client: its choice.
/// 4. A browser (`Sec-Fetch-Site` or `Sec-Fetch-Dest` present, as every current browser sends
///    on fetches and navigations): no; YouTube's own player speaks SABR. `Sec-Fetch-Mode` alone
///    is not a browser: yt-dlp sends it on every request.
/// 5. Anyone else (yt-dlp, youtubei.js, curl, simple downloaders): yes. A SABR client among them
///    (googlevideo's `SabrStream`) reads `serverAbrStreamingUrl`, which stays as it came.
pub fn client_rule(enabled: bool, client: &str, headers: &http::HeaderMap) -> ClientRule {
    if !enabled || !is_webpo_client(client) {
        return ClientRule::Leave;
    }
    match headers
        .get(CHOICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("on") => return ClientRule::Give,
        Some("off") => return ClientRule::Leave,
        _ => {}
    }
    if headers.contains_key("sec-fetch-site") || headers.contains_key("sec-fetch-dest") {
        return ClientRule::Leave;
    }
    ClientRule::Give
}

/// Cheap test on the raw body before a whole document is built: only responses that may hold a
/// SABR-only format are parsed for the rewrite.
pub fn may_be_sabr_only(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"serverAbrStreamingUrl\"").is_some()
}

/// The `ip=` a player response's SABR URL is bound to (read from the raw body: cheap enough
/// for every response), percent-decoded. A watch page's JSON writes `&` as `\u0026`.
pub fn bound_ip_of(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"serverAbrStreamingUrl\":\"";
    let start = memchr::memmem::find(body, KEY)? + KEY.len();
    let rest = &body[start..];
    let end = memchr::memchr(b'"', rest)?;
    let url = std::str::from_utf8(&rest[..end])
        .ok()?
        .replace("\\u0026", "&");
    let (_, q) = url.split_once('?')?;
    let ip = query_param(q, "ip")?;
    Some(
        percent_encoding::percent_decode_str(ip)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn str_field<'a>(f: &'a Value, name: &str) -> Option<&'a str> {
    f.get(name).and_then(Value::as_str)
}

fn num_field(f: &Value, name: &str) -> Option<u64> {
    match f.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn format_ref(f: &Value) -> Option<FormatRef> {
    Some(FormatRef {
        itag: u32::try_from(num_field(f, "itag")?).ok()?,
        lmt: num_field(f, "lastModified")?,
        xtags: str_field(f, "xtags").map(str::to_string),
    })
}

fn is_audio(f: &Value) -> bool {
    str_field(f, "mimeType").is_some_and(|m| m.starts_with("audio/"))
}

fn sabr_only(f: &Value) -> bool {
    f.get("url").is_none() && f.get("signatureCipher").is_none() && f.get("cipher").is_none()
}

/// The lowest-bitrate format of the other kind: what SABR clients name as fully buffered when
/// they download a single track.
fn companion(formats: &[Value], audio: bool) -> Option<FormatRef> {
    formats
        .iter()
        .filter(|f| is_audio(f) != audio && f.get("drmFamilies").is_none())
        .filter_map(|f| Some((num_field(f, "bitrate").unwrap_or(u64::MAX), format_ref(f)?)))
        .min_by_key(|(bitrate, _)| *bitrate)
        .map(|(_, r)| r)
}

/// `videoPlaybackUstreamerConfig` decoded (YouTube sends it base64url, sometimes padded).
fn ustreamer_config(response: &Value) -> Option<Vec<u8>> {
    let text = response
        .pointer("/playerConfig/mediaCommonConfig/mediaUstreamerRequestConfig/videoPlaybackUstreamerConfig")?
        .as_str()?;
    let trimmed = text.trim_end_matches('=');
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// A player response's SABR URL and its decoded ustreamer config, when it has both.
pub fn sabr_source(response: &Value) -> Option<(String, Vec<u8>)> {
    let url = response
        .pointer("/streamingData/serverAbrStreamingUrl")
        .and_then(Value::as_str)
        .filter(|u| is_sabr_url(u))?;
    let Some(config) = ustreamer_config(response) else {
        tracing::debug!("SABR gateway: the response has no videoPlaybackUstreamerConfig");
        return None;
    };
    Some((url.to_string(), config))
}

/// Who asked for the player response.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub client: &'a str,
    pub client_version: Option<&'a str>,
    /// The request's `videoId`, used when the response's `videoDetails` lacks one.
    pub video_id: Option<&'a str>,
}

/// Gives every SABR-only adaptive format of `response` a gateway URL; returns how many.
pub fn add_gateway_urls(response: &mut Value, asker: &Asker<'_>) -> usize {
    let Some((sabr_url, config)) = sabr_source(response) else {
        return 0;
    };
    let Some(video_id) = response
        .pointer("/videoDetails/videoId")
        .and_then(Value::as_str)
        .or(asker.video_id)
        .map(str::to_string)
    else {
        return 0;
    };
    let n = sabr_url
        .split_once('?')
        .and_then(|(_, q)| query_param(q, "n"))
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .into_owned()
        });
    let Some(formats) = response
        .pointer_mut("/streamingData/adaptiveFormats")
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let snapshot = formats.clone();
    let mut given = 0;
    for f in formats.iter_mut() {
        if !sabr_only(f) || f.get("drmFamilies").is_some() {
            continue;
        }
        let (Some(format), Some(content_length)) = (format_ref(f), num_field(f, "contentLength"))
        else {
            continue;
        };
        let audio = is_audio(f);
        let gateway = Gateway {
            sabr_url: sabr_url.clone(),
            ustreamer_config: config.clone(),
            video_id: video_id.clone(),
            format,
            audio,
            companion: companion(&snapshot, audio),
            content_length,
            duration_ms: num_field(f, "approxDurationMs").unwrap_or(0),
            mime: str_field(f, "mimeType").unwrap_or("").to_string(),
            client: asker.client.to_string(),
            client_version: asker.client_version.map(str::to_string),
            n: n.clone(),
            n_original: n.clone(),
        };
        if let Some(obj) = f.as_object_mut() {
            obj.insert("url".into(), Value::String(gateway.url()));
            given += 1;
        }
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response() -> Value {
        json!({
            "videoDetails": {"videoId": "vid00000001"},
            "playerConfig": {"mediaCommonConfig": {"mediaUstreamerRequestConfig":
                {"videoPlaybackUstreamerConfig": "CgQIARAC"}}},
            "streamingData": {
                "serverAbrStreamingUrl": "https://rr1---sn-x.googlevideo.com/videoplayback?ei=E&id=o-1&n=nnn&sabr=1",
                "adaptiveFormats": [
                    {"itag": 137, "mimeType": "video/mp4; codecs=\"avc1\"", "bitrate": 4000000,
                     "lastModified": "1700000000000137", "contentLength": "50000000",
                     "approxDurationMs": "60000", "initRange": {"start": "0", "end": "740"}},
                    {"itag": 160, "mimeType": "video/mp4; codecs=\"avc1\"", "bitrate": 100000,
                     "lastModified": "1700000000000160", "contentLength": "900000",
                     "approxDurationMs": "60000"},
                    {"itag": 140, "mimeType": "audio/mp4; codecs=\"mp4a.40.2\"", "bitrate": 130000,
                     "lastModified": "1700000000000140", "contentLength": "970000",
                     "approxDurationMs": "60010", "xtags": "acont=original"},
                    {"itag": 251, "mimeType": "audio/webm", "bitrate": 150000,
                     "lastModified": "1700000000000251", "url": "https://rr1---sn-x.googlevideo.com/videoplayback?itag=251"},
                    {"itag": 299, "mimeType": "video/mp4", "lastModified": "1", "approxDurationMs": "1"},
                    {"itag": 400, "mimeType": "video/mp4", "lastModified": "1", "contentLength": "5",
                     "drmFamilies": ["WIDEVINE"]}
                ]
            }
        })
    }

    fn asker() -> Asker<'static> {
        Asker {
            client: "WEB",
            client_version: Some("2.2026"),
            video_id: None,
        }
    }

    fn gateway_of(f: &Value) -> Gateway {
        let url = f["url"].as_str().unwrap();
        Gateway::parse(url.split_once('?').unwrap().1).unwrap()
    }

    #[test]
    fn sabr_only_formats_get_a_gateway_url_and_keep_every_other_field() {
        let before = response();
        let mut v = response();
        assert_eq!(add_gateway_urls(&mut v, &asker()), 3);
        let formats = v["streamingData"]["adaptiveFormats"].as_array().unwrap();
        let old = before["streamingData"]["adaptiveFormats"]
            .as_array()
            .unwrap();
        for (new, old) in formats.iter().zip(old) {
            let mut stripped = new.clone();
            if old.get("url").is_none() {
                stripped.as_object_mut().unwrap().remove("url");
            }
            assert_eq!(&stripped, old, "only `url` is added");
        }
        let audio = gateway_of(&formats[2]);
        assert_eq!(audio.format.itag, 140);
        assert_eq!(audio.format.xtags.as_deref(), Some("acont=original"));
        assert!(audio.audio);
        assert_eq!(audio.content_length, 970_000);
        assert_eq!(audio.duration_ms, 60_010);
        assert_eq!(audio.video_id, "vid00000001");
        assert_eq!(
            audio.ustreamer_config,
            vec![0x0a, 0x04, 0x08, 0x01, 0x10, 0x02]
        );
        assert_eq!(audio.n.as_deref(), Some("nnn"));
        // The companion is the cheapest format of the other kind.
        assert_eq!(audio.companion.unwrap().itag, 160);
        assert_eq!(gateway_of(&formats[0]).companion.unwrap().itag, 140);
        // A format with its own URL, one without a size and a DRM one are left alone.
        assert!(formats[3]["url"].as_str().unwrap().contains("itag=251"));
        assert!(formats[4].get("url").is_none());
        assert!(formats[5].get("url").is_none());
    }

    #[test]
    fn a_response_without_a_sabr_url_or_its_config_is_left_alone() {
        let mut v = response();
        v["streamingData"]
            .as_object_mut()
            .unwrap()
            .remove("serverAbrStreamingUrl");
        assert_eq!(add_gateway_urls(&mut v, &asker()), 0);
        let mut v = response();
        v.as_object_mut().unwrap().remove("playerConfig");
        assert_eq!(add_gateway_urls(&mut v, &asker()), 0);
        assert!(
            v["streamingData"]["adaptiveFormats"][0]
                .get("url")
                .is_none()
        );
    }

    #[test]
    fn the_bound_ip_is_read_from_the_sabr_url_in_api_and_page_json() {
        let api = br#"{"a":1,"serverAbrStreamingUrl":"https://rr1---sn-x.googlevideo.com/videoplayback?ei=E&ip=2001%3Adb8%3A%3A1&sabr=1"}"#;
        assert_eq!(bound_ip_of(api).as_deref(), Some("2001:db8::1"));
        let page = br#"{"serverAbrStreamingUrl":"https://rr1---sn-x.googlevideo.com/videoplayback?ei=E\u0026ip=203.0.113.5\u0026sabr=1"}"#;
        assert_eq!(bound_ip_of(page).as_deref(), Some("203.0.113.5"));
        assert_eq!(bound_ip_of(br#"{"streamingData":{}}"#), None);
    }

    #[test]
    fn the_client_rule_gives_urls_to_downloaders_and_leaves_browsers_and_other_clients() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, http::HeaderValue::from_static(v));
            }
            m
        };
        let none = h(&[]);
        let browser = h(&[
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-dest", "empty"),
        ]);
        let yt_dlp = h(&[("sec-fetch-mode", "navigate")]);
        let cases = [
            (true, "WEB", &none, ClientRule::Give),
            (true, "MWEB", &none, ClientRule::Give),
            (false, "WEB", &none, ClientRule::Leave),
            (true, "ANDROID", &none, ClientRule::Leave),
            (true, "IOS", &none, ClientRule::Leave),
            (true, "WEB", &browser, ClientRule::Leave),
            (
                true,
                "WEB",
                &h(&[("sec-fetch-dest", "document")]),
                ClientRule::Leave,
            ),
            (true, "MWEB", &yt_dlp, ClientRule::Give),
            (
                true,
                "WEB",
                &h(&[("sec-fetch-site", "same-origin"), (CHOICE_HEADER, "on")]),
                ClientRule::Give,
            ),
            (
                true,
                "WEB",
                &h(&[(CHOICE_HEADER, "off")]),
                ClientRule::Leave,
            ),
            (
                false,
                "WEB",
                &h(&[(CHOICE_HEADER, "on")]),
                ClientRule::Leave,
            ),
        ];
        for (enabled, client, headers, want) in cases {
            assert_eq!(
                client_rule(enabled, client, headers),
                want,
                "{enabled} {client} {headers:?}"
            );
        }
    }

    #[test]
    fn a_real_player_response_made_sabr_only_gets_gateway_urls_for_every_sized_format() {
        let Some(raw) =
            crate::testutil::innertube_fixture("np2026_visionos_player_cclicensed", "response")
        else {
            return;
        };
        let mut v: Value = serde_json::from_slice(&raw).unwrap();
        let formats = v["streamingData"]["adaptiveFormats"]
            .as_array_mut()
            .unwrap();
        let sized = formats
            .iter()
            .filter(|f| f.get("contentLength").is_some())
            .count();
        for f in formats.iter_mut() {
            f.as_object_mut().unwrap().remove("url");
        }
        let n = add_gateway_urls(
            &mut v,
            &Asker {
                client: "WEB",
                client_version: None,
                video_id: None,
            },
        );
        assert!(sized > 0);
        assert_eq!(n, sized);
        for f in v["streamingData"]["adaptiveFormats"].as_array().unwrap() {
            if f.get("url").is_some() {
                let g = gateway_of(f);
                assert_eq!(g.format.itag as u64, num_field(f, "itag").unwrap());
                assert!(!g.ustreamer_config.is_empty());
            }
        }
    }
}
