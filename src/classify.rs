//! Request classification: from method, host and path alone, what kind of YouTube request this is
//! and which client sent it. Pure functions; no I/O, no token knowledge.

use http::Method;

/// InnerTube client names that use BotGuard-minted (WebPO) tokens. Everything else (ANDROID,
/// ANDROID_VR, IOS, VISIONOS, unknown names) attests another way and must pass untouched.
const WEBPO_CLIENTS: &[&str] = &[
    "WEB",
    "MWEB",
    "WEB_REMIX",
    "WEB_CREATOR",
    "WEB_EMBEDDED_PLAYER",
    "TVHTML5",
    "TVHTML5_SIMPLY",
    "TVHTML5_SIMPLY_EMBEDDED_PLAYER",
];

/// True for clients whose traffic takes web PO tokens (`TVHTML5*` included).
pub fn is_webpo_client(name: &str) -> bool {
    WEBPO_CLIENTS.contains(&name) || name.starts_with("TVHTML5")
}

/// How a googlevideo URL carries its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlForm {
    /// `/videoplayback?expire=..&ei=..`
    Query,
    /// `/videoplayback/id/<x>/itag/<n>/...` (live and manifest segments).
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Hls,
    Dash,
}

/// What a request is, as far as token placement goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /youtubei/v1/player` on an InnerTube host: the token goes into the JSON body.
    Player,
    /// googlevideo `/videoplayback`: the token goes into the URL (or, for SABR, into the body).
    Media {
        client: Option<String>,
        form: UrlForm,
        sabr: bool,
    },
    /// googlevideo `/api/manifest/...`: the token goes into the path.
    Manifest {
        client: Option<String>,
        kind: ManifestKind,
    },
    /// `GET /api/timedtext` (captions): `pot`, `potc=1` and `c` go into the query.
    Subtitles {
        client: Option<String>,
        video: Option<String>,
    },
    /// An HTML page of a YouTube host (watch, embed, home): read for ytcfg on the way back.
    Page,
    /// Any other InnerTube call (`/youtubei/v1/next`, `browse`, ...): its JSON response says
    /// which account the visitor is signed in as.
    InnerTube,
    /// Anything else: forwarded untouched.
    Other,
}

impl Route {
    /// The client named by the URL's `c` parameter, for media and manifest routes.
    pub fn url_client(&self) -> Option<&str> {
        match self {
            Route::Media { client, .. }
            | Route::Manifest { client, .. }
            | Route::Subtitles { client, .. } => client.as_deref(),
            _ => None,
        }
    }
}

pub fn is_googlevideo(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h.ends_with(".googlevideo.com")
}

/// Splits a request target into path and query (without the `?`).
pub fn split_path_query(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    }
}

/// A googlevideo URL parameter, from the query or the key/value path, URL-decoded; an empty
/// value counts as absent.
pub fn url_param(path: &str, query: Option<&str>, name: &str) -> Option<String> {
    query
        .and_then(|q| query_param(q, name))
        .or_else(|| path_param(path, name))
        .filter(|v| !v.is_empty())
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Classifies a request. `host` has no port; `path_and_query` is the raw request target path.
pub fn classify(method: &Method, host: &str, path_and_query: &str) -> Route {
    let (path, query) = split_path_query(path_and_query);
    if is_googlevideo(host) {
        return classify_googlevideo(method, path, query);
    }
    if *method == Method::POST && path.trim_end_matches('/').ends_with("/youtubei/v1/player") {
        return Route::Player;
    }
    if *method == Method::GET && path == "/api/timedtext" {
        let q = query.unwrap_or("");
        return Route::Subtitles {
            client: query_param(q, "c")
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            video: query_param(q, "v")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        };
    }
    if *method == Method::GET && is_page_path(path) {
        return Route::Page;
    }
    if *method == Method::POST && path.starts_with("/youtubei/v1/") {
        return Route::InnerTube;
    }
    Route::Other
}

/// Paths that serve HTML carrying ytcfg: the home page, watch and embed pages, channels.
fn is_page_path(path: &str) -> bool {
    path == "/"
        || path == "/watch"
        || path.starts_with("/embed/")
        || path.starts_with("/shorts/")
        || path.starts_with("/@")
        || path.starts_with("/channel/")
}

fn classify_googlevideo(method: &Method, path: &str, query: Option<&str>) -> Route {
    let media_method = *method == Method::GET || *method == Method::HEAD || *method == Method::POST;
    if path == "/videoplayback" && media_method {
        return Route::Media {
            client: query.and_then(|q| query_param(q, "c")).map(str::to_owned),
            form: UrlForm::Query,
            sabr: query.and_then(|q| query_param(q, "sabr")) == Some("1"),
        };
    }
    if path.starts_with("/videoplayback/") && media_method {
        let client = path_param(path, "c")
            .or_else(|| query.and_then(|q| query_param(q, "c")))
            .map(str::to_owned);
        return Route::Media {
            client,
            form: UrlForm::Path,
            sabr: path_param(path, "sabr") == Some("1"),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/manifest/") {
        if *method != Method::GET && *method != Method::HEAD {
            return Route::Other;
        }
        let kind = if rest.starts_with("dash/") {
            ManifestKind::Dash
        } else if rest.starts_with("hls_variant/") || rest.starts_with("hls_playlist/") {
            ManifestKind::Hls
        } else {
            return Route::Other;
        };
        let client = path_param(path, "c")
            .or_else(|| query.and_then(|q| query_param(q, "c")))
            .map(str::to_owned);
        return Route::Manifest { client, kind };
    }
    Route::Other
}

/// The raw value of the first `name=` parameter of a query string.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// The value after the key segment `name` in a key/value path (`/videoplayback/c/WEB/itag/18`).
/// The path is walked in (key, value) pairs from the route prefix, so a value that happens to
/// spell a key name (an `id` equal to `c`) is never mistaken for one.
pub fn path_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let rest = path.strip_prefix("/videoplayback/").or_else(|| {
        // `/api/manifest/<kind>/key/value/...`
        let r = path.strip_prefix("/api/manifest/")?;
        Some(r.split_once('/').map(|(_, tail)| tail).unwrap_or(""))
    })?;
    let segs: Vec<&str> = rest.split('/').collect();
    segs.chunks(2).find_map(|kv| match kv {
        [k, v] if *k == name => Some(*v),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_path_matches_with_any_query_on_any_innertube_host() {
        for pq in [
            "/youtubei/v1/player",
            "/youtubei/v1/player?prettyPrint=false",
            "/youtubei/v1/player?prettyPrint=false&alt=json",
            "/youtubei/v1/player?key=AIza&$fields=videoDetails",
        ] {
            assert_eq!(
                classify(&Method::POST, "www.youtube.com", pq),
                Route::Player,
                "{pq}"
            );
        }
        assert_eq!(
            classify(
                &Method::POST,
                "youtubei.googleapis.com",
                "/youtubei/v1/player?t=1&id=x"
            ),
            Route::Player
        );
        assert_eq!(
            classify(&Method::GET, "www.youtube.com", "/youtubei/v1/player"),
            Route::Other
        );
        assert_eq!(
            classify(&Method::POST, "www.youtube.com", "/youtubei/v1/next"),
            Route::InnerTube
        );
        assert_eq!(
            classify(
                &Method::POST,
                "www.youtube.com",
                "/youtubei/v1/player/heartbeat"
            ),
            Route::InnerTube
        );
    }

    #[test]
    fn media_query_form_reads_client_and_sabr() {
        let r = classify(
            &Method::GET,
            "rr4---sn-u125g5-5p.googlevideo.com",
            "/videoplayback?expire=1&ei=abc&c=MWEB&itag=140",
        );
        assert_eq!(
            r,
            Route::Media {
                client: Some("MWEB".into()),
                form: UrlForm::Query,
                sabr: false
            }
        );
        let r = classify(
            &Method::POST,
            "rr1---sn-x.googlevideo.com",
            "/videoplayback?sabr=1&c=WEB",
        );
        assert!(matches!(r, Route::Media { sabr: true, .. }));
    }

    #[test]
    fn media_path_form_reads_client_segment() {
        let r = classify(
            &Method::GET,
            "rr1---sn-x.googlevideo.com",
            "/videoplayback/id/abc.1/itag/140/source/yt_live_broadcast/c/WEB/sq/5/file/seg.ts",
        );
        assert_eq!(
            r,
            Route::Media {
                client: Some("WEB".into()),
                form: UrlForm::Path,
                sabr: false
            }
        );
    }

    #[test]
    fn manifests_are_recognised_by_kind() {
        let r = classify(
            &Method::GET,
            "manifest.googlevideo.com",
            "/api/manifest/hls_variant/expire/1/ei/x/c/MWEB/file/index.m3u8",
        );
        assert_eq!(
            r,
            Route::Manifest {
                client: Some("MWEB".into()),
                kind: ManifestKind::Hls
            }
        );
        let r = classify(
            &Method::GET,
            "manifest.googlevideo.com",
            "/api/manifest/dash/expire/1/c/WEB",
        );
        assert!(matches!(
            r,
            Route::Manifest {
                kind: ManifestKind::Dash,
                ..
            }
        ));
    }

    #[test]
    fn subtitles_and_pages_are_recognised() {
        assert_eq!(
            classify(
                &Method::GET,
                "www.youtube.com",
                "/api/timedtext?v=dQw4w9WgXcQ&ei=x&lang=en&c=WEB"
            ),
            Route::Subtitles {
                client: Some("WEB".into()),
                video: Some("dQw4w9WgXcQ".into())
            }
        );
        for p in [
            "/",
            "/watch?v=dQw4w9WgXcQ&bpctr=9999999999",
            "/embed/dQw4w9WgXcQ",
            "/@channel/videos",
        ] {
            assert_eq!(
                classify(&Method::GET, "www.youtube.com", p),
                Route::Page,
                "{p}"
            );
        }
        assert_eq!(
            classify(&Method::GET, "www.youtube.com", "/s/player/abc/base.js"),
            Route::Other
        );
    }

    #[test]
    fn non_webpo_clients_are_recognised() {
        for c in [
            "WEB",
            "MWEB",
            "WEB_REMIX",
            "TVHTML5",
            "TVHTML5_SIMPLY_EMBEDDED_PLAYER",
            "WEB_CREATOR",
        ] {
            assert!(is_webpo_client(c), "{c}");
        }
        for c in [
            "ANDROID",
            "ANDROID_VR",
            "IOS",
            "VISIONOS",
            "web",
            "",
            "ANDROID_MUSIC",
        ] {
            assert!(!is_webpo_client(c), "{c}");
        }
    }

    #[test]
    fn query_param_returns_first_raw_value() {
        assert_eq!(query_param("a=1&pot=x%3D&pot=y", "pot"), Some("x%3D"));
        assert_eq!(query_param("a=1&flag&b=2", "flag"), Some(""));
        assert_eq!(query_param("a=1", "b"), None);
    }
}
