//! Opt-in rewriting of player responses (`[rewrite] player_response = true`): tokens go into
//! the URLs the response hands out, for clients that fetch media outside the proxy. Format
//! URLs and the `url=` inside `signatureCipher` get `pot`; HLS/DASH manifest URLs get
//! `/pot/<token>`; caption `baseUrl`s get `pot`, `potc=1` and `c`. SABR URLs are left alone.

use serde_json::Value;

use super::media::{set_caption_query, set_manifest_pot, set_query_pot};
use crate::classify::{ManifestKind, query_param};
use crate::token::Token;

/// Edits a URL's query: the fragment starts at the first `#` (a `?` after it is not a query),
/// the query at the first `?` before it.
fn with_query(url: &str, f: impl FnOnce(&str) -> String) -> Option<String> {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, frag)) => (r, Some(frag)),
        None => (url, None),
    };
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query_param(query, "sabr") == Some("1") {
        return None;
    }
    let mut out = format!("{base}?{}", f(query));
    if let Some(frag) = fragment {
        out.push('#');
        out.push_str(frag);
    }
    Some(out)
}

fn set_manifest(url: &str, kind: ManifestKind, token: &Token) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let path = set_manifest_pot(parsed.path(), kind, token);
    let mut out = format!("{}://{}{}", parsed.scheme(), parsed.host_str()?, path);
    if let Some(q) = parsed.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// Adds `pot` (and `potc=1`, `c=<client>` when absent) to a caption URL.
fn caption_url(url: &str, token: &Token, client: &str) -> Option<String> {
    with_query(url, |q| set_caption_query(q, token, client))
}

/// Rewrites the URLs of a player response in place; returns how many were changed.
pub fn rewrite_player_response(
    response: &mut Value,
    gvs: Option<&Token>,
    subs: Option<&Token>,
    client: &str,
) -> usize {
    let mut changed = 0;
    if let (Some(token), Some(sd)) = (gvs, response.get_mut("streamingData")) {
        for list in ["formats", "adaptiveFormats"] {
            let Some(formats) = sd.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for f in formats {
                if let Some(Value::String(u)) = f.get_mut("url") {
                    if let Some(new) = with_query(u, |q| set_query_pot(q, token)) {
                        *u = new;
                        changed += 1;
                    }
                }
                if let Some(Value::String(sc)) = f.get_mut("signatureCipher") {
                    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(sc.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    let mut ser = url::form_urlencoded::Serializer::new(String::new());
                    let mut touched = false;
                    for (k, v) in &pairs {
                        if k == "url" {
                            if let Some(new) = with_query(v, |q| set_query_pot(q, token)) {
                                ser.append_pair(k, &new);
                                touched = true;
                                continue;
                            }
                        }
                        ser.append_pair(k, v);
                    }
                    if touched {
                        *sc = ser.finish();
                        changed += 1;
                    }
                }
            }
        }
        for (key, kind) in [
            ("hlsManifestUrl", ManifestKind::Hls),
            ("dashManifestUrl", ManifestKind::Dash),
        ] {
            if let Some(Value::String(u)) = sd.get_mut(key) {
                if let Some(new) = set_manifest(u, kind, token) {
                    *u = new;
                    changed += 1;
                }
            }
        }
    }
    if let Some(token) = subs {
        let tracks = response
            .get_mut("captions")
            .and_then(|c| c.get_mut("playerCaptionsTracklistRenderer"))
            .and_then(|r| r.get_mut("captionTracks"))
            .and_then(Value::as_array_mut);
        for t in tracks.into_iter().flatten() {
            if let Some(Value::String(u)) = t.get_mut("baseUrl") {
                if let Some(new) = caption_url(u, token, client) {
                    *u = new;
                    changed += 1;
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::innertube_fixture;

    fn tok() -> Token {
        Token::from_bytes(&[0x32, 0x03, 0xaa, 0xbb, 0xcc, 0x3d])
    }

    fn fixture(name: &str) -> Option<Value> {
        innertube_fixture(name, "response").map(|b| serde_json::from_slice(&b).unwrap())
    }

    /// Found by fuzzing (`fuzz/regressions/player_response`): a `?` inside the fragment was
    /// taken for the query, so the token went into the fragment, which is never sent.
    #[test]
    fn a_question_mark_in_the_fragment_does_not_take_the_token_out_of_the_query() {
        let t = tok();
        let pot = format!("pot={}", t.query_value());
        for (url, want) in [
            (
                "https://h/videoplayback#f?x=1",
                format!("https://h/videoplayback?{pot}#f?x=1"),
            ),
            (
                "https://h/v?a=1#f?pot=0",
                format!("https://h/v?a=1&{pot}#f?pot=0"),
            ),
            ("https://h/v#frag", format!("https://h/v?{pot}#frag")),
            ("https://h/v?a=1&pot=0", format!("https://h/v?a=1&{pot}")),
        ] {
            let mut v = serde_json::json!({"streamingData": {"formats": [{"url": url}]}});
            assert_eq!(rewrite_player_response(&mut v, Some(&t), None, "WEB"), 1);
            assert_eq!(
                v["streamingData"]["formats"][0]["url"],
                want.as_str(),
                "{url}"
            );
        }
    }

    #[test]
    fn every_plain_format_url_of_the_web_fixture_gets_one_pot() {
        let Some(mut v) = fixture("np2024_web_player_audiotrack_full") else {
            return;
        };
        let before = v.clone();
        let n = rewrite_player_response(&mut v, Some(&tok()), None, "WEB");
        let formats: Vec<&Value> = ["formats", "adaptiveFormats"]
            .iter()
            .flat_map(|l| v["streamingData"][l].as_array().into_iter().flatten())
            .collect();
        assert_eq!(formats.len(), 76);
        assert_eq!(n, 76);
        for f in formats {
            let u = f["url"].as_str().unwrap();
            assert_eq!(u.matches("&pot=").count(), 1, "{u}");
            assert!(u.ends_with(&format!("&pot={}", tok().query_value())));
        }
        // Nothing else changed.
        let mut stripped = v.clone();
        for l in ["formats", "adaptiveFormats"] {
            for (a, b) in stripped["streamingData"][l]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .zip(before["streamingData"][l].as_array().unwrap())
            {
                a["url"] = b["url"].clone();
            }
        }
        assert_eq!(stripped, before);
    }

    #[test]
    fn signature_cipher_urls_get_pot_inside_the_encoded_url() {
        let Some(mut v) = fixture("np2025_tvhtml5_player_relatedmix_signatureCipher") else {
            return;
        };
        let n = rewrite_player_response(&mut v, Some(&tok()), None, "TVHTML5");
        assert!(n >= 22, "{n}");
        for l in ["formats", "adaptiveFormats"] {
            for f in v["streamingData"][l].as_array().into_iter().flatten() {
                let sc = f["signatureCipher"].as_str().unwrap();
                let url: String = url::form_urlencoded::parse(sc.as_bytes())
                    .find(|(k, _)| k == "url")
                    .unwrap()
                    .1
                    .into_owned();
                assert_eq!(
                    query_param(url.split_once('?').unwrap().1, "pot"),
                    Some(tok().query_value().as_str())
                );
                assert!(sc.contains("s="), "signature kept: {sc}");
            }
        }
        let sabr = v["streamingData"]["serverAbrStreamingUrl"]
            .as_str()
            .unwrap();
        assert!(!sabr.contains("pot="), "SABR URL untouched");
    }

    #[test]
    fn manifests_and_captions_are_rewritten() {
        let mut v = serde_json::json!({
            "streamingData": {
                "hlsManifestUrl": "https://manifest.googlevideo.com/api/manifest/hls_variant/expire/1/ei/x/file/index.m3u8",
                "dashManifestUrl": "https://manifest.googlevideo.com/api/manifest/dash/expire/1/id/y"
            },
            "captions": {"playerCaptionsTracklistRenderer": {"captionTracks": [
                {"baseUrl": "https://www.youtube.com/api/timedtext?v=dQw4w9WgXcQ&ei=x&lang=en"}
            ]}}
        });
        let n = rewrite_player_response(&mut v, Some(&tok()), Some(&tok()), "MWEB");
        assert_eq!(n, 3);
        let t = tok();
        assert!(
            v["streamingData"]["hlsManifestUrl"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/pot/{}/file/index.m3u8", t.as_str()))
        );
        assert!(
            v["streamingData"]["dashManifestUrl"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/pot/{}", t.as_str()))
        );
        let cap = v["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"][0]["baseUrl"]
            .as_str()
            .unwrap();
        assert!(
            cap.ends_with(&format!("&pot={}&potc=1&c=MWEB", t.query_value())),
            "{cap}"
        );
    }

    #[test]
    fn android_and_visionos_responses_are_untouched_when_no_token_is_given() {
        for name in [
            "np2026_android_reel_item_watch_cclicensed",
            "np2026_visionos_player_cclicensed",
        ] {
            let Some(mut v) = fixture(name) else { return };
            let before = v.clone();
            assert_eq!(rewrite_player_response(&mut v, None, None, "ANDROID"), 0);
            assert_eq!(v, before);
        }
    }
}
