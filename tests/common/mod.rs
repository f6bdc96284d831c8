//! In-process fakes for the proxy's integration tests: a test CA, a fake YouTube/googlevideo
//! origin over real TLS on 127.0.0.1 (certificates for the real host names), a plain-HTTP
//! origin, a server that speaks first, and helpers to start the proxy pointed at them.
#![allow(dead_code)]

pub mod chain;
pub mod fakebg;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use potproxy::RunningProxy;
use potproxy::config::{Config, Overrides, RawConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Names the fake origin's certificate covers: the real YouTube hosts plus one non-YouTube
/// name used for tunnel tests.
pub const FAKE_NAMES: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtubei.googleapis.com",
    "*.googlevideo.com",
    "www.google.com",
    "jnn-pa.googleapis.com",
    "tunnel.example.org",
];

/// A real PO token shape (fixture-like: 0x32 prefix), used as the static token.
pub const STATIC_TOKEN: &str = "MlMQUj3TTz08aRBuqkQKUJI8sgaSz5WHWnAeQjJN7Jv-qhe-jZfl7VTihUv-RpMuTIpSK6hNhYf05Lt9IVFY-Gd4O1PI0miFlyOlU0zhdIr9Ac5aew==";

pub fn install_provider() {
    potproxy::install_crypto_provider();
}

/// A test CA and a leaf for [`FAKE_NAMES`], written to a temp dir for `extra_ca_certs`.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    /// The leaf for [`FAKE_NAMES`] and its key, as PEM files (for external origins).
    pub leaf_cert_path: PathBuf,
    pub leaf_key_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub fn new() -> Self {
        install_provider();
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "potproxy test upstream CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf =
            CertificateParams::new(FAKE_NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "fake youtube origin");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = ca_cert.pem();
        let ca_path = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_path, &ca_pem).unwrap();
        let leaf_cert_path = dir.path().join("leaf.pem");
        let leaf_key_path = dir.path().join("leaf.key");
        std::fs::write(&leaf_cert_path, leaf_cert.pem()).unwrap();
        std::fs::write(&leaf_key_path, leaf_key.serialize_pem()).unwrap();
        TestPki {
            dir,
            ca_pem,
            ca_path,
            leaf_cert_path,
            leaf_key_path,
            server_config: Arc::new(cfg),
        }
    }
}

/// One request as the fake origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub host: String,
    pub path_and_query: String,
    pub version: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn query_values(&self, name: &str) -> Vec<String> {
        let q = self
            .path_and_query
            .split_once('?')
            .map(|x| x.1)
            .unwrap_or("");
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("fake received JSON")
    }
}

/// The byte at offset `i` of every fake media file: position-dependent, so a lost, duplicated
/// or reordered chunk changes the content.
pub fn media_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i as u8)
}

pub fn media_bytes(start: u64, len: u64) -> Vec<u8> {
    (start..start + len).map(media_byte).collect()
}

/// Size of `/videoplayback` media unless the URL says `clen=`.
pub const DEFAULT_MEDIA_LEN: u64 = 3 * 1024 * 1024 + 12_345;

/// The fake origin: YouTube and googlevideo over TLS. `/videoplayback` and `/api/manifest/`
/// stream generated media (Range honoured, never buffered); everything else echoes JSON.
/// Who a player response was for.
#[derive(Debug, Clone)]
pub struct FakePlayback {
    pub video: String,
    pub visitor: String,
    pub logged_in: bool,
}

impl FakePlayback {
    /// The binding googlevideo expects under `regime`.
    pub fn gvs_binding(&self, regime: fakebg::GvsRegime) -> String {
        match regime {
            fakebg::GvsRegime::Video => self.video.clone(),
            fakebg::GvsRegime::Session if self.logged_in => fakebg::DATASYNC_ID.to_string(),
            fakebg::GvsRegime::Session => self.visitor.clone(),
        }
    }
}

/// Shared state of the fake origin.
#[derive(Default)]
pub struct FakeState {
    seen: Mutex<Vec<Seen>>,
    pub bg: fakebg::FakeBotGuard,
    /// Media URL `id` -> the playback it was handed out for.
    videos: Mutex<std::collections::HashMap<String, FakePlayback>>,
    /// (what, verdict) for every token the fake checked.
    pub verdicts: Mutex<Vec<(String, fakebg::Verdict)>>,
    counter: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct FakeOrigin {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

impl FakeOrigin {
    pub async fn start(pki: &TestPki) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(FakeState::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
        let seen2 = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(serve_fake(req, seen).await) }
                    });
                    let _ = ServerBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        FakeOrigin { addr, state }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.seen.lock().unwrap())
    }

    pub fn verdicts(&self) -> Vec<(String, fakebg::Verdict)> {
        self.state.verdicts.lock().unwrap().clone()
    }

    pub fn behaviour(&self) -> std::sync::MutexGuard<'_, fakebg::Behaviour> {
        self.state.bg.behaviour.lock().unwrap()
    }

    pub fn counts(&self) -> fakebg::Counts {
        self.state.bg.counts.lock().unwrap().clone()
    }
}

type FakeBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> FakeBody {
    Full::new(b.into()).boxed()
}

async fn serve_fake(req: Request<Incoming>, state: Arc<FakeState>) -> Response<FakeBody> {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.host().map(str::to_string))
        .unwrap_or_default();
    let is_media = parts.uri.path().starts_with("/videoplayback")
        || parts.uri.path().starts_with("/api/manifest/");
    let body = if is_media && parts.method != hyper::Method::POST {
        Vec::new()
    } else {
        body.collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        host: host.clone(),
        path_and_query: path_and_query.clone(),
        version: format!("{:?}", parts.version),
        headers,
        body: body.clone(),
    });

    let bare_host = host.split(':').next().unwrap_or("").to_string();
    let path = parts.uri.path().to_string();
    if is_media {
        if let Some(res) =
            check_media_token(&state, &bare_host, &parts.method, &path_and_query, &body)
        {
            return res;
        }
        return media_response(&parts, &path_and_query);
    }
    if bare_host == "www.youtube.com" && path == "/api/timedtext" {
        let query = path_and_query.split_once('?').map(|x| x.1).unwrap_or("");
        let param = |k: &str| {
            query
                .split('&')
                .filter_map(|p| p.split_once('='))
                .find(|(a, _)| *a == k)
                .map(|(_, v)| v.to_string())
        };
        let video = param("v").unwrap_or_default();
        let verdict = match param("pot") {
            Some(pot) if param("potc").as_deref() == Some("1") => state.bg.verify(&pot, &video),
            Some(_) => fakebg::Verdict::Invalid("pot without potc=1".into()),
            None => fakebg::Verdict::Invalid("no pot".into()),
        };
        state
            .verdicts
            .lock()
            .unwrap()
            .push((format!("subs {video}"), verdict));
        return status_body(
            200,
            "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
            "text/vtt",
        );
    }
    if bare_host == "www.youtube.com" && path == "/youtubei/v1/visitor_id" {
        state.bg.counts.lock().unwrap().visitor_id += 1;
        return status_body(
            200,
            serde_json::to_vec(&serde_json::json!({"responseContext": {"visitorData": fakebg::ISSUED_VISITOR_DATA}})).unwrap(),
            "application/json",
        );
    }
    if bare_host == "www.youtube.com" && path == "/potproxy-test" {
        return status_body(200, BROWSER_TEST_PAGE, "text/html; charset=utf-8");
    }
    if bare_host == "www.youtube.com" && path == "/watch" {
        let v = path_and_query
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("v="))
            .unwrap_or("aaaaaaaaaaa")
            .to_string();
        return status_body(
            200,
            state.bg.page_for("WEB", Some(&v)),
            "text/html; charset=utf-8",
        );
    }
    if let Some(res) = fake_botguard_route(&state, &parts.method, &bare_host, &path, &body) {
        return res;
    }
    if path == "/youtubei/v1/next" {
        let signed_in = parts.headers.contains_key("authorization");
        let visitor = parts
            .headers
            .get("x-goog-visitor-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(fakebg::VISITOR_DATA);
        let main = if signed_in {
            serde_json::json!({"datasyncId": fakebg::DATASYNC_ID, "loggedOut": false})
        } else {
            serde_json::json!({"loggedOut": true})
        };
        let body = serde_json::json!({
            "responseContext": {"visitorData": visitor, "mainAppWebResponseContext": main},
            "contents": {"twoColumnWatchNextResults": {"results": {"results": {"contents": []}}}}
        });
        return status_body(200, serde_json::to_vec(&body).unwrap(), "application/json");
    }
    if path.ends_with("/youtubei/v1/player") && parts.method == hyper::Method::POST {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            return player_response(&state, &v, &parts.headers);
        }
    }
    let mut echo = serde_json::json!({"ok": true, "path": path_and_query});
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        echo["received"] = v;
    }
    Response::builder()
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&echo).unwrap()))
        .unwrap()
}

/// A page a browser loads from the fake www.youtube.com: it asks the player API, fetches the
/// first audio URL from googlevideo (cross-origin), and writes what it saw into the DOM.
pub const BROWSER_TEST_PAGE: &str = r#"<!DOCTYPE html><html><head><title>potproxy test</title></head><body><pre id="out">pending</pre><script>
(async () => {
  const out = {};
  try {
    const r = await fetch('/youtubei/v1/player?prettyPrint=false', {method: 'POST', headers: {'content-type': 'application/json'},
      body: JSON.stringify({context: {client: {clientName: 'WEB', clientVersion: '2.20260512.00.00'}}, videoId: 'jNQXAC9IVRw'})});
    out.player = r.status;
    const p = await r.json();
    const m = await fetch(p.streamingData.adaptiveFormats[0].url);
    out.media = m.status;
    out.bytes = (await m.arrayBuffer()).byteLength;
  } catch (e) { out.error = String(e); }
  document.getElementById('out').textContent = 'RESULT:' + JSON.stringify(out);
})();
</script></body></html>"#;

fn status_body(status: u16, body: impl Into<Bytes>, content_type: &str) -> Response<FakeBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("access-control-allow-origin", "*")
        .body(full(body))
        .unwrap()
}

/// The simulated BotGuard's endpoints, by host and path.
fn fake_botguard_route(
    state: &FakeState,
    method: &hyper::Method,
    host: &str,
    path: &str,
    body: &[u8],
) -> Option<Response<FakeBody>> {
    let bg = &state.bg;
    let waa = |m: &str| {
        (host == "www.youtube.com" && path == format!("/api/jnn/v1/{m}"))
            || (host == "jnn-pa.googleapis.com"
                && path == format!("/$rpc/google.internal.waa.v1.Waa/{m}"))
    };
    if host == "www.youtube.com" && path == "/" && method == hyper::Method::GET {
        bg.counts.lock().unwrap().page += 1;
        return Some(status_body(200, bg.page(), "text/html; charset=utf-8"));
    }
    // What yt-dlp fetches before the player request when nothing is skipped.
    if host == "m.youtube.com" && path == "/" && method == hyper::Method::GET {
        return Some(status_body(
            200,
            bg.page_for("MWEB", None),
            "text/html; charset=utf-8",
        ));
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

    if host == "www.youtube.com" && path == "/youtubei/v1/att/get" {
        bg.counts.lock().unwrap().att_get += 1;
        if !bg.behaviour.lock().unwrap().att_get {
            return Some(status_body(404, "no att/get here", "text/plain"));
        }
        return Some(status_body(
            200,
            serde_json::to_vec(&bg.att_get_response()).unwrap(),
            "application/json",
        ));
    }
    if waa("Create") {
        bg.counts.lock().unwrap().create += 1;
        return Some(match bg.create_response() {
            Some(b) => status_body(200, b, "application/json+protobuf"),
            None => status_body(404, "no Create here", "text/plain"),
        });
    }
    if waa("GenerateIT") {
        bg.counts.lock().unwrap().generate_it += 1;
        let (status, b) = bg.generate_it(body);
        return Some(status_body(status, b, "application/json+protobuf"));
    }
    if host == "www.google.com" && path.starts_with("/js/th/") {
        bg.counts.lock().unwrap().interpreter += 1;
        return Some(status_body(200, bg.interpreter(), "text/javascript"));
    }
    None
}

/// A player response with real-shaped media URLs on the fake googlevideo, checking a player
/// token when one is present.
fn player_response(
    state: &FakeState,
    req: &serde_json::Value,
    headers: &http::HeaderMap,
) -> Response<FakeBody> {
    let video = req["videoId"].as_str().unwrap_or("aaaaaaaaaaa").to_string();
    let header_visitor = headers
        .get("x-goog-visitor-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let visitor = req["context"]["client"]["visitorData"]
        .as_str()
        .map(str::to_string)
        .or(header_visitor)
        .unwrap_or_else(|| fakebg::VISITOR_DATA.to_string());
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
                fakebg::DATASYNC_ID.to_string()
            } else {
                visitor.clone()
            }
        } else {
            video.clone()
        };
        let v = state.bg.verify(pot, &expected);
        state
            .verdicts
            .lock()
            .unwrap()
            .push((format!("player {video}"), v));
    }
    let n = state
        .counter
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let ei = format!("FakeEi{n:06}");
    let id = format!("o-FakeId{n:06}");
    state.videos.lock().unwrap().insert(
        id.clone(),
        FakePlayback {
            video: video.clone(),
            visitor: visitor.clone(),
            logged_in,
        },
    );
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
    let body = serde_json::json!({
        "responseContext": {
            "visitorData": visitor,
            "mainAppWebResponseContext": if logged_in {
                serde_json::json!({"datasyncId": fakebg::DATASYNC_ID, "loggedOut": false})
            } else {
                serde_json::json!({"loggedOut": true})
            }
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
        }
    });
    status_body(
        200,
        serde_json::to_vec(&body).unwrap(),
        "application/json; charset=UTF-8",
    )
}

/// A UMP body: a StreamProtectionStatus part, and a media part when accepted.
pub fn ump_body(status: u64, with_media: bool) -> Vec<u8> {
    let mut b = Vec::new();
    let sps = [0x08, status as u8];
    potproxy::ump::encode_varint(potproxy::ump::STREAM_PROTECTION_STATUS, &mut b);
    potproxy::ump::encode_varint(sps.len() as u64, &mut b);
    b.extend_from_slice(&sps);
    if with_media {
        let media = media_bytes(0, 1000);
        potproxy::ump::encode_varint(21, &mut b);
        potproxy::ump::encode_varint(media.len() as u64 + 1, &mut b);
        b.push(0);
        b.extend(media);
    }
    b
}

/// For media URLs the fake handed out: check the token (query `pot`, or the SABR body's
/// `streamer_context.po_token`) against the binding the fake's regime expects; refuse with 403
/// or in-band (UMP) when enforcing and it does not verify.
fn check_media_token(
    state: &FakeState,
    host: &str,
    method: &hyper::Method,
    pq: &str,
    body: &[u8],
) -> Option<Response<FakeBody>> {
    if !host.ends_with(".googlevideo.com") {
        return None;
    }
    let query = pq.split_once('?').map(|x| x.1).unwrap_or("");
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(a, _)| *a == k)
            .map(|(_, v)| v.to_string())
    };
    let id = param("id")?;
    let playback = state.videos.lock().unwrap().get(&id).cloned()?;
    let b = state.bg.behaviour.lock().unwrap().clone();
    let expected = playback.gvs_binding(b.gvs_regime);
    let sabr = param("sabr").as_deref() == Some("1");
    let (what, token) = if sabr {
        let t = potproxy::rewrite::sabr::po_token(body).map(|bytes| {
            potproxy::token::Token::from_bytes(&bytes)
                .as_str()
                .to_string()
        });
        ("sabr", t)
    } else {
        ("media", param("pot"))
    };
    let verdict = match token {
        Some(t) => state.bg.verify(&t, &expected),
        None => fakebg::Verdict::Invalid("no token".into()),
    };
    state
        .verdicts
        .lock()
        .unwrap()
        .push((format!("{what} {}", playback.video), verdict.clone()));
    let ok = verdict == fakebg::Verdict::Valid;
    let ump = sabr || param("ump").as_deref() == Some("1") || *method == hyper::Method::POST;
    if ump && (sabr || b.ump_rejections) {
        let status = if ok { 1 } else { 3 };
        return Some(status_body(
            200,
            ump_body(status, ok),
            "application/vnd.yt-ump",
        ));
    }
    if b.enforce_media && !ok {
        return Some(status_body(403, "Forbidden", "text/plain"));
    }
    None
}

fn media_response(parts: &http::request::Parts, pq: &str) -> Response<FakeBody> {
    let total = pq
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("clen="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MEDIA_LEN);
    let range = parts
        .headers
        .get("range")
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| {
            let a: u64 = a.parse().unwrap_or(0);
            let b: u64 = b.parse().unwrap_or(total - 1).min(total - 1);
            (a, b)
        });
    let (start, end, status) = match range {
        Some((a, b)) if a <= b && a < total => (a, b, StatusCode::PARTIAL_CONTENT),
        _ => (0, total - 1, StatusCode::OK),
    };
    let len = end - start + 1;
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "audio/mp4")
        .header("access-control-allow-origin", "*")
        .header("content-length", len.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header("content-range", format!("bytes {start}-{end}/{total}"));
    }
    if parts.method == hyper::Method::HEAD {
        return builder.body(full(Bytes::new())).unwrap();
    }
    const CHUNK: u64 = 64 * 1024;
    let stream = futures::stream::unfold(start, move |pos| async move {
        if pos > end {
            return None;
        }
        let n = CHUNK.min(end + 1 - pos);
        let frame = Frame::data(Bytes::from(media_bytes(pos, n)));
        Some((Ok::<_, Infallible>(frame), pos + n))
    });
    builder.body(StreamBody::new(stream).boxed()).unwrap()
}

/// A server that greets first, like SSH: `SSH-2.0-fake\r\n`, then echoes.
pub async fn start_banner_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"SSH-2.0-fake\r\n").await;
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A plain-HTTP origin answering `plain:<path>` to every request.
pub async fn start_plain_http() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(full(format!("plain:{}", req.uri().path()))))
                });
                let _ = ServerBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// Everything a test needs: fakes, the proxy, and its CA.
pub struct Harness {
    pub pki: TestPki,
    pub origin: FakeOrigin,
    pub proxy: RunningProxy,
    pub ca_dir: tempfile::TempDir,
}

/// Extra TOML appended to the harness config (e.g. `strict = true`).
pub async fn harness(extra_toml: &str) -> Harness {
    harness_with(extra_toml, &[]).await
}

pub async fn harness_with(extra_toml: &str, extra_resolve: &[(&str, SocketAddr)]) -> Harness {
    let pki = TestPki::new();
    let origin = FakeOrigin::start(&pki).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let config = config_for(&pki, &origin, ca_dir.path(), extra_toml, extra_resolve);
    let proxy = potproxy::start(config).await.unwrap();
    Harness {
        pki,
        origin,
        proxy,
        ca_dir,
    }
}

/// The configuration a test proxy runs with: every fake name resolved to the fake origin, the
/// test CA trusted upstream, `extra_toml` on top. Unless the TOML says otherwise: static
/// tokens only, no cache file, no pre-warming.
pub fn config_for(
    pki: &TestPki,
    origin: &FakeOrigin,
    ca_dir: &std::path::Path,
    extra_toml: &str,
    extra_resolve: &[(&str, SocketAddr)],
) -> Config {
    let mut resolve = String::new();
    for host in FAKE_NAMES {
        resolve.push_str(&format!("\"{host}\" = \"{}\"\n", origin.addr));
    }
    for (host, addr) in extra_resolve {
        resolve.push_str(&format!("\"{host}\" = \"{addr}\"\n"));
    }
    let (top, tables) = split_top_level(extra_toml);
    let text = format!(
        "listen = \"127.0.0.1:0\"\n{top}\n[ca]\ndir = {ca:?}\n\n[upstream]\nextra_ca_certs = [{cert:?}]\n\n[upstream.resolve]\n{resolve}\n{tables}\n",
        ca = ca_dir.to_str().unwrap(),
        cert = pki.ca_path.to_str().unwrap(),
    );
    let raw = RawConfig::parse(&text, std::path::Path::new("harness.toml")).unwrap();
    let mut config = Config::resolve(raw, Overrides::default()).unwrap();
    if !extra_toml.contains("sources") {
        config.tokens.sources = vec![potproxy::config::SourceKind::Static];
    }
    if !extra_toml.contains("cache_file") {
        config.tokens.cache_file = None;
    }
    if !extra_toml.contains("prewarm") {
        config.tokens.botguard.prewarm = false;
    }
    // Tests run in parallel: the API is off unless asked for, and never on a fixed port.
    config.api.enabled = extra_toml.contains("[api]");
    config.api.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// Splits test TOML into top-level keys (which must precede any table) and tables.
fn split_top_level(extra: &str) -> (String, String) {
    if extra.starts_with('[') {
        return (String::new(), extra.to_string());
    }
    match extra.find("\n[") {
        Some(i) => (extra[..=i].to_string(), extra[i + 1..].to_string()),
        None => (extra.to_string(), String::new()),
    }
}

/// A reqwest client that goes through `proxy` and trusts only the CA in `ca_pem`.
pub fn client_via(proxy: SocketAddr, ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{proxy}")).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .tls_built_in_root_certs(false)
        .no_gzip()
        .build()
        .unwrap()
}

impl Harness {
    /// A reqwest client that goes through the proxy and trusts only the proxy's CA.
    pub fn client(&self) -> reqwest::Client {
        client_via(self.proxy.addr, self.proxy.ca_cert_pem.as_bytes())
    }

    /// A reqwest client that goes through the proxy but trusts only the *upstream* test CA: it
    /// can only succeed where the proxy does not intercept.
    pub fn tunnel_client(&self) -> reqwest::Client {
        client_via(self.proxy.addr, self.pki.ca_pem.as_bytes())
    }

    /// A rustls client config trusting the proxy's CA, for raw-socket tests.
    pub fn proxy_tls(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.proxy.ca_cert_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Arc::new(cfg)
    }
}

use rustls_pki_types::pem::PemObject;

/// Sends a raw CONNECT preamble and reads the proxy's reply head.
pub async fn raw_connect(proxy: SocketAddr, preamble: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(preamble.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).await.unwrap();
        if n == 0 {
            break;
        }
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// A WEB player request body like yt-dlp's.
pub fn player_body(client: &str, video: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {"client": {"clientName": client, "clientVersion": "2.20260708.05.00", "hl": "en", "timeZone": "UTC", "utcOffsetMinutes": 0}},
        "videoId": video,
        "playbackContext": {"contentPlaybackContext": {"html5Preference": "HTML5_PREF_WANTS"}},
        "contentCheckOk": true,
        "racyCheckOk": true
    })
}

/// Canonical form of [`STATIC_TOKEN`] as the proxy writes it.
pub fn static_token() -> potproxy::token::Token {
    potproxy::token::Token::parse(STATIC_TOKEN).unwrap()
}

pub fn with_static_token() -> String {
    format!("[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n")
}
