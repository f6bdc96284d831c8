//! Support for the proxy's integration tests, one job per module: the test PKI ([`pki`]), the
//! fake origin server and its shared state ([`origin`]) with the fakes behind it (YouTube pages
//! and InnerTube in [`youtube`], googlevideo media and captions in [`media`], SABR in [`sabr`],
//! BotGuard in [`botguard`]), small non-YouTube origins ([`servers`]), chained upstream proxies
//! ([`chain`]), the curl client ([`curl`]), and the [`harness`] that starts a proxy against them. This module re-exports
//! what most tests use and holds the request and token shapes they share.
// Each test binary uses a different part of this support code.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod botguard;
pub mod chain;
pub mod curl;
pub mod egress;
pub mod harness;
pub mod media;
pub mod origin;
pub mod pki;
pub mod redis;
pub mod sabr;
pub mod scripted;
pub mod servers;
pub mod stalls;
pub mod youtube;

// `ci()` and the fixture rule, shared with the unit tests.
#[path = "../../src/testutil.rs"]
pub mod testutil;

pub use harness::{
    Fakes, Harness, HarnessBuilder, client_via, player_over_raw_tunnel, raw_connect,
};
pub use media::{
    DEFAULT_MEDIA_LEN, FakePlayback, GvsRegime, LowTrust, media_byte, media_bytes, ump_body,
    ump_low_trust_body,
};
pub use origin::{Behaviour, Counts, FakeOrigin, Seen};
pub use pki::{FAKE_NAMES, TestPki, install_provider};
pub use servers::{start_banner_server, start_plain_http};
pub use youtube::BROWSER_TEST_PAGE;

/// The Node test clients' folder (tests/clients/node) when `package` is installed there and
/// node runs, else `None` after a skip message.
pub fn node_clients(package: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node");
    let ok = dir.join("node_modules").join(package).is_dir()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if ok {
        Some(dir)
    } else {
        eprintln!("skipping: {package} not installed (npm ci --prefix tests/clients/node)");
        None
    }
}

/// A loopback port nothing listens on (bound, then let go for a server or process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real PO token shape (fixture-like: 0x32 prefix), used as the static token.
pub const STATIC_TOKEN: &str = "MlMQUj3TTz08aRBuqkQKUJI8sgaSz5WHWnAeQjJN7Jv-qhe-jZfl7VTihUv-RpMuTIpSK6hNhYf05Lt9IVFY-Gd4O1PI0miFlyOlU0zhdIr9Ac5aew==";

/// Canonical form of [`STATIC_TOKEN`] as the proxy writes it.
pub fn static_token() -> potproxy::token::Token {
    potproxy::token::Token::parse(STATIC_TOKEN).unwrap()
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

/// Whether Chromium is installed for the tests that drive it: without one they skip with a
/// message, and fail instead under CI (`.ci/run` installs it).
pub fn have_browser() -> bool {
    if potproxy::browser::find_executable(std::env::var_os("PATH").as_deref()).is_some() {
        return true;
    }
    assert!(
        !testutil::ci(),
        "no chromium on PATH and CI is set: browser tests must not skip in CI (.ci/run installs it)"
    );
    eprintln!("skipping: no chromium on PATH (apt-get install chromium)");
    false
}

/// The whole body of the answer to `request`, whatever its status (the caller checks that where
/// it matters); panics when the request cannot be sent or its body read.
pub async fn body_of(request: reqwest::RequestBuilder) -> bytes::Bytes {
    request.send().await.unwrap().bytes().await.unwrap()
}

/// The player response `client` gets for `body` (a [`player_body`] or one built from it), as
/// JSON.
pub async fn player_response(
    client: &reqwest::Client,
    body: &serde_json::Value,
) -> serde_json::Value {
    let request = client
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap());
    serde_json::from_slice(&body_of(request).await).unwrap()
}
