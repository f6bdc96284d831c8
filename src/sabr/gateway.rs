//! Gateway URLs: the `url` potproxy gives a SABR-only format, and reading one back.
//!
//! A gateway URL names [`GATEWAY_HOST`], a name under `googlevideo.com` that potproxy
//! intercepts and answers itself and that does not exist outside it: fetched without the proxy
//! it fails to resolve, loudly, instead of reaching a server that would answer something else.
//! The URL carries everything a node needs to serve it (the SABR streaming URL, the ustreamer
//! config, the format and its companion, the client), so a URL written by one fleet node is
//! served by any other without shared state. Its query keeps googlevideo's own names where one
//! exists (`itag`, `clen`, `dur`, `lmt`, `mime`, `c`, `cver`, `n`) so clients read it as they
//! read any format URL; the SABR URL and the config travel base64url-encoded, so clients that
//! re-encode queries (yt-dlp rebuilds them) cannot alter them.
//!
//! `n` sits at the top level, as on every googlevideo URL: a client that transforms format
//! URLs' `n` (yt-dlp with its JS solver) hands the transformed value back, and
//! [`Gateway::sabr_url`] puts it on the SABR URL. `n0` keeps the original, so potproxy can tell
//! whether anyone transformed it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::classify::query_param;

/// The host gateway URLs name. Intercepted, answered by potproxy, never dialled.
pub const GATEWAY_HOST: &str = "sabr.potproxy.googlevideo.com";

/// Whether `host` (no port) is the gateway's.
pub fn is_gateway_host(host: &str) -> bool {
    host.trim_end_matches('.')
        .eq_ignore_ascii_case(GATEWAY_HOST)
}

/// A format as SABR names it (`misc.FormatId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatRef {
    pub itag: u32,
    /// The format's `lastModified`.
    pub lmt: u64,
    pub xtags: Option<String>,
}

impl FormatRef {
    /// `itag.lmt[.xtags]`, the compact form the URL carries for the companion format.
    fn encode(&self) -> String {
        match &self.xtags {
            Some(x) => format!("{}.{}.{}", self.itag, self.lmt, URL_SAFE_NO_PAD.encode(x)),
            None => format!("{}.{}", self.itag, self.lmt),
        }
    }

    fn decode(text: &str) -> Option<FormatRef> {
        let mut it = text.splitn(3, '.');
        let itag = it.next()?.parse().ok()?;
        let lmt = it.next()?.parse().ok()?;
        let xtags = match it.next() {
            Some(x) => Some(String::from_utf8(URL_SAFE_NO_PAD.decode(x).ok()?).ok()?),
            None => None,
        };
        Some(FormatRef { itag, lmt, xtags })
    }
}

/// What a gateway URL carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The player response's `serverAbrStreamingUrl`, as it came.
    pub sabr_url: String,
    /// `videoPlaybackUstreamerConfig`, decoded.
    pub ustreamer_config: Vec<u8>,
    pub video_id: String,
    pub format: FormatRef,
    /// Whether the format is audio (it is video otherwise).
    pub audio: bool,
    /// A format of the other kind, announced to the server as fully buffered, as SABR clients
    /// do for a single-track download.
    pub companion: Option<FormatRef>,
    /// The format's `contentLength`: the size of the object the URL stands for.
    pub content_length: u64,
    /// The format's `approxDurationMs`.
    pub duration_ms: u64,
    pub mime: String,
    /// Client name and version of the player request the response answered.
    pub client: String,
    pub client_version: Option<String>,
    /// The `n` the client handed back (transformed, if the client transforms `n`).
    pub n: Option<String>,
    /// The SABR URL's own `n` when the gateway URL was written.
    pub n_original: Option<String>,
}

/// Why a gateway URL could not be read. The request gets a 400 naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway URL: {0} is missing or malformed")]
    Field(&'static str),
    #[error("gateway URL: the SABR URL is not an https googlevideo.com URL with sabr=1")]
    NotSabr,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `url` is a SABR streaming URL potproxy may POST to: https, a googlevideo.com host
/// (never the gateway's own), `sabr=1`. Anything else in a gateway URL would make potproxy
/// a client for hosts the URL's writer chose.
pub fn is_sabr_url(url: &str) -> bool {
    is_googlevideo_https(url)
        && url::Url::parse(url).is_ok_and(|u| u.query_pairs().any(|(k, v)| k == "sabr" && v == "1"))
}

/// Whether `url` is an https URL on a googlevideo.com host (never the gateway's own), on the
/// default port, without userinfo: where a SABR session may go (its first URL, a redirect).
pub fn is_googlevideo_https(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or("");
    u.scheme() == "https"
        && u.port().is_none()
        && u.username().is_empty()
        && u.password().is_none()
        && crate::classify::is_googlevideo(host)
        && !is_gateway_host(host)
}

impl Gateway {
    /// The gateway URL for this format.
    pub fn url(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("itag", &self.format.itag.to_string())
            .append_pair("lmt", &self.format.lmt.to_string())
            .append_pair("clen", &self.content_length.to_string())
            .append_pair("dur", &self.duration_ms.to_string())
            .append_pair("mime", &self.mime)
            .append_pair("v", &self.video_id)
            .append_pair("track", if self.audio { "audio" } else { "video" })
            .append_pair("c", &self.client);
        if let Some(x) = &self.format.xtags {
            q.append_pair("xtags", &b64(x.as_bytes()));
        }
        if let Some(v) = &self.client_version {
            q.append_pair("cver", v);
        }
        if let Some(c) = &self.companion {
            q.append_pair("other", &c.encode());
        }
        if let Some(n) = &self.n_original {
            q.append_pair("n", n).append_pair("n0", n);
        }
        q.append_pair("usc", &b64(&self.ustreamer_config))
            .append_pair("sabr_url", &b64(self.sabr_url.as_bytes()));
        format!("https://{GATEWAY_HOST}/videoplayback?{}", q.finish())
    }

    /// Reads a gateway URL's query.
    pub fn parse(query: &str) -> Result<Gateway, GatewayError> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let need = |name: &'static str| get(name).ok_or(GatewayError::Field(name));
        let num = |name: &'static str| {
            need(name)?
                .parse::<u64>()
                .map_err(|_| GatewayError::Field(name))
        };
        let bytes = |name: &'static str| {
            URL_SAFE_NO_PAD
                .decode(need(name)?)
                .map_err(|_| GatewayError::Field(name))
        };
        let sabr_url =
            String::from_utf8(bytes("sabr_url")?).map_err(|_| GatewayError::Field("sabr_url"))?;
        if !is_sabr_url(&sabr_url) {
            return Err(GatewayError::NotSabr);
        }
        let xtags = match get("xtags") {
            Some(_) => {
                Some(String::from_utf8(bytes("xtags")?).map_err(|_| GatewayError::Field("xtags"))?)
            }
            None => None,
        };
        let itag = u32::try_from(num("itag")?).map_err(|_| GatewayError::Field("itag"))?;
        let audio = match need("track")? {
            "audio" => true,
            "video" => false,
            _ => return Err(GatewayError::Field("track")),
        };
        let companion = match get("other") {
            Some(o) => Some(FormatRef::decode(o).ok_or(GatewayError::Field("other"))?),
            None => None,
        };
        let video_id = need("v")?.to_string();
        if video_id.is_empty() {
            return Err(GatewayError::Field("v"));
        }
        Ok(Gateway {
            sabr_url,
            ustreamer_config: bytes("usc")?,
            video_id,
            format: FormatRef {
                itag,
                lmt: num("lmt")?,
                xtags,
            },
            audio,
            companion,
            content_length: num("clen")?,
            duration_ms: num("dur")?,
            mime: need("mime")?.to_string(),
            client: need("c")?.to_string(),
            client_version: get("cver").map(str::to_string),
            n: get("n").map(str::to_string),
            n_original: get("n0").map(str::to_string),
        })
    }

    /// Whether the client handed back an `n` other than the SABR URL's own (it transforms `n`).
    pub fn n_transformed(&self) -> bool {
        matches!((&self.n, &self.n_original), (Some(n), Some(o)) if n != o)
    }

    /// The SABR URL to POST to: the client's `n` in place of the original when it transformed
    /// it, other parameters as they came.
    pub fn sabr_url(&self) -> String {
        match (&self.n, self.n_transformed()) {
            (Some(n), true) => replace_query_param(&self.sabr_url, "n", n),
            _ => self.sabr_url.clone(),
        }
    }

    /// The `ip=` the SABR URL is bound to.
    pub fn bound_ip(&self) -> Option<String> {
        let (_, q) = self.sabr_url.split_once('?')?;
        query_param(q, "ip").map(|ip| {
            percent_encoding::percent_decode_str(ip)
                .decode_utf8_lossy()
                .into_owned()
        })
    }
}

/// `url` with `name`'s value replaced (first occurrence), the rest of the query byte-for-byte.
pub fn replace_query_param(url: &str, name: &str, value: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut done = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if !done && key == name {
                done = true;
                format!("{name}={encoded}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

/// A URL query with `name=value` appended (SABR's `rn`).
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SABR: &str = "https://rr1---sn-abc.googlevideo.com/videoplayback?expire=1&ei=E&ip=203.0.113.9&id=o-X&n=abcDEF&sabr=1&c=WEB";

    fn gateway() -> Gateway {
        Gateway {
            sabr_url: SABR.into(),
            ustreamer_config: vec![0, 1, 2, 250, 251],
            video_id: "dQw4w9WgXcQ".into(),
            format: FormatRef {
                itag: 140,
                lmt: 1_700_000_000_000_000,
                xtags: Some("acont=original:lang=en".into()),
            },
            audio: true,
            companion: Some(FormatRef {
                itag: 160,
                lmt: 1_700_000_000_000_001,
                xtags: None,
            }),
            content_length: 3_456_789,
            duration_ms: 212_000,
            mime: "audio/mp4; codecs=\"mp4a.40.2\"".into(),
            client: "WEB".into(),
            client_version: Some("2.20261201.01.00".into()),
            n: Some("abcDEF".into()),
            n_original: Some("abcDEF".into()),
        }
    }

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn a_gateway_url_reads_back_as_written_and_names_the_gateway_host() {
        let g = gateway();
        let url = g.url();
        assert!(url.starts_with("https://sabr.potproxy.googlevideo.com/videoplayback?"));
        assert_eq!(Gateway::parse(query_of(&url)).unwrap(), g);
    }

    #[test]
    fn a_gateway_url_survives_a_client_reencoding_its_query() {
        // yt-dlp parses a format URL's query and serialises it again (update_url_query).
        let url = gateway().url();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query_of(&url).as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut again = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().rev() {
            again.append_pair(k, v);
        }
        assert_eq!(Gateway::parse(&again.finish()).unwrap(), gateway());
    }

    #[test]
    fn a_transformed_n_goes_onto_the_sabr_url_and_an_untouched_one_changes_nothing() {
        let mut g = gateway();
        assert!(!g.n_transformed());
        assert_eq!(g.sabr_url(), SABR);
        g.n = Some("xyz_solved".into());
        assert!(g.n_transformed());
        assert_eq!(g.sabr_url(), SABR.replace("n=abcDEF", "n=xyz_solved"));
    }

    #[test]
    fn a_gateway_url_pointing_anywhere_but_a_googlevideo_sabr_url_is_refused() {
        for target in [
            "https://evil.example/videoplayback?sabr=1",
            "http://rr1---sn-abc.googlevideo.com/videoplayback?sabr=1",
            "https://rr1---sn-abc.googlevideo.com/videoplayback?itag=140",
            "https://sabr.potproxy.googlevideo.com/videoplayback?sabr=1",
            "https://sabr.potproxy.googlevideo.com./videoplayback?sabr=1",
            "https://rr1---sn-abc.googlevideo.com:22/videoplayback?sabr=1",
            "https://user@rr1---sn-abc.googlevideo.com/videoplayback?sabr=1",
        ] {
            let mut g = gateway();
            g.sabr_url = target.into();
            assert_eq!(
                Gateway::parse(query_of(&g.url())),
                Err(GatewayError::NotSabr),
                "{target}"
            );
        }
    }

    #[test]
    fn a_gateway_url_missing_a_field_names_it() {
        let url = gateway().url();
        let without: String = query_of(&url)
            .split('&')
            .filter(|p| !p.starts_with("clen="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(Gateway::parse(&without), Err(GatewayError::Field("clen")));
    }

    #[test]
    fn the_bound_ip_is_read_from_the_sabr_url() {
        assert_eq!(gateway().bound_ip().as_deref(), Some("203.0.113.9"));
    }
}
