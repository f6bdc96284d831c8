//! The fake SABR server (tests/common/sabr.rs) proved against the reference client, googlevideo's
//! own `SabrStream` (npm `googlevideo`, tests/clients/node/sabr.mjs), straight from the fake with
//! no proxy: audio-only and audio+video downloads are byte-exact with the formats' progressive
//! bytes, with what the fake recorded (rn, tokens, cookies) checked. A small SABR driver here
//! pins the fake's own rules (layout, seeking, faults, violations) without node.

mod common;

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use common::botguard::Trust;
use common::origin::FakeOrigin;
use common::pki::TestPki;
use common::sabr::{self, FORMATS, REDIRECT_HOST, SabrAnswer, SabrBehaviour, ump_parts};
use common::*;
use potproxy::config::SourceKind;
use potproxy::sabr::proto::{
    BufferedRange, ClientAbrState, ClientInfo, FormatId, MediaHeader, NextRequestPolicy,
    SabrRedirect, StreamProtectionStatus, StreamerContext, VideoPlaybackAbrRequest, part,
    track_types,
};
use prost::Message;
use serde_json::Value;

const V: &str = "jNQXAC9IVRw";

/// Fakes with SABR on, and a client that reaches them directly.
async fn fakes(sabr: SabrBehaviour) -> (Fakes, reqwest::Client) {
    let fakes = Fakes::start().await;
    fakes.origin.behaviour().sabr = sabr;
    let client = sabr::direct_client(&fakes.origin, &fakes.pki);
    (fakes, client)
}

async fn player(client: &reqwest::Client, name: &str) -> Value {
    player_response(client, &player_body(name, V)).await
}

/// [`fakes`] with `sabr`, and a [`Driver`] asking for the `enabled` tracks on the WEB player
/// response's SABR URL with a valid token.
async fn session(sabr: SabrBehaviour, enabled: i32) -> (Fakes, reqwest::Client, Driver) {
    let (fakes, client) = fakes(sabr).await;
    let web = player(&client, "WEB").await;
    let d = Driver::new(&client, &web, token_bytes(&fakes), enabled);
    (fakes, client, d)
}

fn token_bytes(fakes: &Fakes) -> Vec<u8> {
    URL_SAFE
        .decode(fakes.origin.state.bg.signed_token(V, Trust::High))
        .unwrap()
}

/// A minimal SABR client over the fake, for pinning the fake's rules: one request per
/// [`Driver::step`], segments placed by `start_range`.
struct Driver {
    client: reqwest::Client,
    url: String,
    config: Vec<u8>,
    token: Vec<u8>,
    rn: u64,
    cookie: Option<Vec<u8>>,
    audio: FormatId,
    video: FormatId,
    enabled: i32,
    player_time_ms: i64,
    initialized: Vec<FormatId>,
    /// Per itag: the rebuilt file and the media time received.
    files: std::collections::BTreeMap<i32, (Vec<u8>, i64)>,
}

impl Driver {
    fn new(client: &reqwest::Client, player: &Value, token: Vec<u8>, enabled: i32) -> Self {
        let b64 = player["playerConfig"]["mediaCommonConfig"]["mediaUstreamerRequestConfig"]
            ["videoPlaybackUstreamerConfig"]
            .as_str()
            .unwrap();
        Driver {
            client: client.clone(),
            url: player["streamingData"]["serverAbrStreamingUrl"]
                .as_str()
                .unwrap()
                .to_string(),
            config: URL_SAFE.decode(b64).unwrap(),
            token,
            rn: 0,
            cookie: None,
            audio: sabr::format(140).format_id(),
            video: sabr::format(137).format_id(),
            enabled,
            player_time_ms: 0,
            initialized: Vec::new(),
            files: Default::default(),
        }
    }

    fn body(&self) -> Vec<u8> {
        let mut buffered = Vec::new();
        let mut selected = self.initialized.clone();
        let unwanted = match self.enabled {
            track_types::AUDIO_ONLY => Some(&self.video),
            track_types::VIDEO_ONLY => Some(&self.audio),
            _ => None,
        };
        if let Some(f) = unwanted {
            buffered.push(BufferedRange {
                format_id: Some(f.clone()),
                start_time_ms: Some(0),
                duration_ms: Some(i32::MAX as i64),
                start_segment_index: Some(i32::MAX),
                end_segment_index: Some(i32::MAX),
                time_range: None,
            });
            selected.push(f.clone());
        }
        VideoPlaybackAbrRequest {
            client_abr_state: Some(ClientAbrState {
                player_time_ms: Some(self.player_time_ms),
                enabled_track_types_bitfield: Some(self.enabled),
                ..Default::default()
            }),
            selected_format_ids: selected,
            buffered_ranges: buffered,
            video_playback_ustreamer_config: Some(self.config.clone()),
            preferred_audio_format_ids: vec![self.audio.clone()],
            preferred_video_format_ids: vec![self.video.clone()],
            streamer_context: Some(StreamerContext {
                client_info: Some(ClientInfo {
                    client_name: Some(1),
                    client_version: Some("2.20260512.00.00".into()),
                    ..Default::default()
                }),
                po_token: Some(self.token.clone()),
                playback_cookie: self.cookie.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// One request; applies the answer (cookie, redirect, format metadata, segments) and
    /// returns its parts.
    async fn step(&mut self) -> Vec<(u64, Vec<u8>)> {
        let res = self
            .client
            .post(format!("{}&rn={}", self.url, self.rn))
            .header("content-type", "application/x-protobuf")
            .body(self.body())
            .send()
            .await
            .unwrap();
        self.rn += 1;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/vnd.yt-ump"
        );
        let parts = ump_parts(&res.bytes().await.unwrap());
        // Open segments by header id: the header and the bytes received so far.
        let mut open: std::collections::HashMap<u8, (MediaHeader, usize)> = Default::default();
        let main = if self.enabled == track_types::AUDIO_ONLY {
            140
        } else {
            137
        };
        for (id, payload) in &parts {
            match *id {
                part::NEXT_REQUEST_POLICY => {
                    self.cookie = NextRequestPolicy::decode(payload.as_slice())
                        .unwrap()
                        .playback_cookie;
                }
                part::SABR_REDIRECT => {
                    let url = SabrRedirect::decode(payload.as_slice())
                        .unwrap()
                        .url
                        .unwrap();
                    self.url = url;
                }
                part::FORMAT_INITIALIZATION_METADATA => {
                    let m = potproxy::sabr::proto::FormatInitializationMetadata::decode(
                        payload.as_slice(),
                    )
                    .unwrap();
                    self.initialized.push(m.format_id.unwrap());
                }
                part::MEDIA_HEADER => {
                    let h = MediaHeader::decode(payload.as_slice()).unwrap();
                    open.insert(h.header_id.unwrap_or(0) as u8, (h, 0));
                }
                part::MEDIA => {
                    let (h, done) = open.get_mut(&payload[0]).unwrap();
                    let (file, _) = self.files.entry(h.itag.unwrap()).or_default();
                    let pos = h.start_range.unwrap_or(0) as usize + *done;
                    let data = &payload[1..];
                    if file.len() < pos + data.len() {
                        file.resize(pos + data.len(), 0);
                    }
                    file[pos..pos + data.len()].copy_from_slice(data);
                    *done += data.len();
                }
                part::MEDIA_END => {
                    let (h, done) = open.remove(&payload[0]).unwrap();
                    assert_eq!(done as i64, h.content_length.unwrap(), "segment length");
                    let (_, ms) = self.files.entry(h.itag.unwrap()).or_default();
                    *ms += h.duration_ms.unwrap_or(0);
                }
                _ => {}
            }
        }
        self.player_time_ms = self.files.get(&main).map_or(0, |f| f.1);
        parts
    }
}

fn has_part(parts: &[(u64, Vec<u8>)], id: u64) -> bool {
    parts.iter().any(|p| p.0 == id)
}

fn protection(parts: &[(u64, Vec<u8>)]) -> Option<i32> {
    parts
        .iter()
        .find(|p| p.0 == part::STREAM_PROTECTION_STATUS)
        .and_then(|p| StreamProtectionStatus::decode(p.1.as_slice()).ok()?.status)
}

#[test]
fn segments_cover_every_byte_once_from_the_init_segment_on() {
    for f in FORMATS {
        let segs = f.segments();
        assert_eq!(
            segs[0].len,
            f.index_end + 1,
            "the init segment holds the index"
        );
        let mut at = 0;
        for s in &segs {
            assert_eq!(s.start, at, "itag {} seq {}", f.itag, s.seq);
            at += s.len;
        }
        assert_eq!(at, f.clen);
        let ms: u64 = segs.iter().map(|s| s.duration_ms).sum();
        assert_eq!(ms, sabr::DURATION_MS);
        assert_eq!(segs.len() as u32, f.segment_count() + 1);
    }
}

#[tokio::test]
async fn web_clients_get_only_the_sabr_url_and_other_clients_progressive_urls() {
    let (_fakes, client) = fakes(SabrBehaviour::on()).await;
    let web = player(&client, "WEB").await;
    let formats = web["streamingData"]["adaptiveFormats"].as_array().unwrap();
    let itags: Vec<u64> = formats
        .iter()
        .map(|f| f["itag"].as_u64().unwrap())
        .collect();
    assert_eq!(itags, [140, 251, 137, 136, 160]);
    for f in formats {
        assert!(
            f.get("url").is_none() && f.get("signatureCipher").is_none(),
            "{f}"
        );
        for key in [
            "contentLength",
            "lastModified",
            "initRange",
            "indexRange",
            "approxDurationMs",
            "mimeType",
            "bitrate",
        ] {
            assert!(f.get(key).is_some(), "{key} in {f}");
        }
    }
    let url = web["streamingData"]["serverAbrStreamingUrl"]
        .as_str()
        .unwrap();
    for p in [
        "sabr=1", "expire=", "ei=", "ip=", "id=", "n=", "c=WEB", "cver=",
    ] {
        assert!(url.contains(p), "{p} in {url}");
    }
    assert!(web["playerConfig"]["mediaCommonConfig"]["mediaUstreamerRequestConfig"]
        ["videoPlaybackUstreamerConfig"]
        .is_string());
    let tv = player(&client, "TVHTML5").await;
    let f = &tv["streamingData"]["adaptiveFormats"][0];
    assert!(f["url"].as_str().unwrap().contains("clen=491577"), "{f}");
}

#[tokio::test]
async fn a_sabr_session_rebuilds_the_progressive_bytes_of_audio_and_video() {
    let (fakes, client, mut d) = session(SabrBehaviour::on(), track_types::AUDIO_AND_VIDEO).await;
    for _ in 0..10 {
        if d.player_time_ms >= sabr::DURATION_MS as i64 {
            break;
        }
        d.step().await;
    }
    assert_eq!(d.player_time_ms, sabr::DURATION_MS as i64);
    let tv = player(&client, "TVHTML5").await;
    for f in tv["streamingData"]["adaptiveFormats"].as_array().unwrap() {
        let itag = f["itag"].as_i64().unwrap();
        if itag != 140 && itag != 137 {
            continue;
        }
        let progressive = body_of(client.get(f["url"].as_str().unwrap())).await;
        let clen = sabr::format(itag as u32).clen;
        assert_eq!(progressive.len() as u64, clen);
        assert!(
            d.files[&(itag as i32)].0 == progressive,
            "itag {itag} over SABR differs"
        );
    }
    let requests = fakes.origin.sabr_requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let rns: Vec<_> = requests.iter().map(|r| r.rn.unwrap()).collect();
    assert_eq!(rns, [0, 1, 2]);
    assert!(
        requests
            .iter()
            .all(|r| r.n_param.as_deref() == Some(sabr::SABR_N))
    );
    assert!(requests.iter().all(|r| r.token_valid));
    assert!(requests[1..].iter().all(|r| r.cookie.is_some()));
    assert_eq!(fakes.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_player_time_mid_file_starts_at_the_segment_holding_it() {
    let (fakes, _, mut d) = session(SabrBehaviour::on(), track_types::VIDEO_ONLY).await;
    d.player_time_ms = 12_000;
    d.initialized = vec![d.video.clone()];
    let parts = d.step().await;
    let headers: Vec<MediaHeader> = parts
        .iter()
        .filter(|p| p.0 == part::MEDIA_HEADER)
        .map(|p| MediaHeader::decode(p.1.as_slice()).unwrap())
        .collect();
    let f = sabr::format(137);
    let seqs: Vec<i32> = headers.iter().map(|h| h.sequence_number.unwrap()).collect();
    assert_eq!(
        seqs,
        [3, 4, 5],
        "5 s segments from the one holding 12 s, 10 s of media"
    );
    assert_eq!(headers[0].start_range, Some(f.segments()[3].start as i64));
    assert_eq!(
        fakes.origin.sabr_requests()[0].answer,
        SabrAnswer::Media(vec![(137, 3), (137, 4), (137, 5)])
    );
}

#[tokio::test]
async fn a_redirect_moves_the_session_to_the_other_host() {
    let (fakes, _, mut d) = session(
        SabrBehaviour {
            redirect_on: Some(2),
            ..SabrBehaviour::on()
        },
        track_types::AUDIO_ONLY,
    )
    .await;
    d.step().await;
    let parts = d.step().await;
    assert_eq!(parts.len(), 1, "a redirect comes alone");
    assert!(
        d.url
            .starts_with(&format!("https://{REDIRECT_HOST}/videoplayback?"))
    );
    assert!(!d.url.contains("rn="));
    let parts = d.step().await;
    assert!(has_part(&parts, part::MEDIA));
    let hosts: Vec<String> = fakes
        .origin
        .sabr_requests()
        .iter()
        .map(|r| r.host.clone())
        .collect();
    assert_eq!(
        hosts,
        [
            "rr1---sn-fake.googlevideo.com",
            "rr1---sn-fake.googlevideo.com",
            REDIRECT_HOST
        ]
    );
    assert_eq!(fakes.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn protection_status_3_refuses_that_token_until_fresh_token_bytes_come() {
    let (fakes, _, mut d) = session(
        SabrBehaviour {
            protection_on: Some((2, 3)),
            ..SabrBehaviour::on()
        },
        track_types::AUDIO_ONLY,
    )
    .await;
    assert_eq!(protection(&d.step().await), Some(1));
    let refused = d.step().await;
    assert_eq!(protection(&refused), Some(3));
    assert!(!has_part(&refused, part::MEDIA));
    assert_eq!(
        protection(&d.step().await),
        Some(3),
        "the same token stays refused"
    );
    d.token = token_bytes(&fakes);
    let healed = d.step().await;
    assert_eq!(protection(&healed), Some(1));
    assert!(has_part(&healed, part::MEDIA));
    assert_eq!(fakes.origin.sabr_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn sabr_error_and_reload_answer_their_request_alone() {
    let (fakes, client, mut d) = session(
        SabrBehaviour {
            error_on: Some(1),
            reload_on: Some(2),
            protection_on: Some((4, 2)),
            ..SabrBehaviour::on()
        },
        track_types::AUDIO_ONLY,
    )
    .await;
    let parts = d.step().await;
    assert_eq!(
        parts.iter().map(|p| p.0).collect::<Vec<_>>(),
        [part::SABR_ERROR]
    );
    let parts = d.step().await;
    assert_eq!(
        parts.iter().map(|p| p.0).collect::<Vec<_>>(),
        [part::RELOAD_PLAYER_RESPONSE]
    );
    let parts = d.step().await;
    assert_eq!(
        parts.iter().map(|p| p.0).collect::<Vec<_>>(),
        [part::RELOAD_PLAYER_RESPONSE],
        "the reloading playback's URL answers nothing else"
    );
    // A fresh player response, asked for with the reload token, gives a URL that works; status
    // 2 still carries media.
    let SabrAnswer::Reload(token) = fakes.origin.sabr_requests()[1].answer.clone() else {
        panic!("request 2 reloads");
    };
    let mut body = player_body("WEB", V);
    body["playbackContext"]["reloadPlaybackContext"] =
        serde_json::json!({"reloadPlaybackParams": {"token": token}});
    let fresh = player_response(&client, &body).await;
    assert_eq!(fakes.origin.state.sabr.reloads_seen(), [token]);
    let mut d2 = Driver::new(
        &client,
        &fresh,
        token_bytes(&fakes),
        track_types::AUDIO_ONLY,
    );
    let parts = d2.step().await;
    assert!(has_part(&parts, part::MEDIA), "status 2 still sends media");
    assert_eq!(protection(&parts), Some(2));
}

#[tokio::test]
async fn the_fake_records_a_dropped_cookie_an_early_request_and_a_wrong_config() {
    let (fakes, client, mut d) = session(
        SabrBehaviour {
            backoff_ms: Some(60_000),
            ..SabrBehaviour::on()
        },
        track_types::AUDIO_ONLY,
    )
    .await;
    d.step().await;
    d.step().await;
    d.cookie = None;
    d.step().await;
    d.config = b"not the config".to_vec();
    let parts = d.step().await;
    assert_eq!(parts[0].0, part::SABR_ERROR);
    let v = fakes.origin.sabr_violations();
    assert!(v[0].contains("before the backoff deadline"), "{v:?}");
    assert!(v[1].contains("no playback cookie"), "{v:?}");
    assert!(v[2].contains("ustreamer config"), "{v:?}");
    assert_eq!(v.len(), 3, "{v:?}");
    // A request without rn is refused outright.
    let res = client.post(&d.url).body(d.body()).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

struct SabrRun {
    audio: Vec<u8>,
    video: Vec<u8>,
    summary: Value,
}

/// Runs sabr.mjs against the fakes: `mode` is `audio` (audio only) or `av`; `via`: through
/// this proxy URL, trusting this CA.
async fn run_sabr_stream(
    dir: PathBuf,
    origin: &FakeOrigin,
    pki: &TestPki,
    mode: &str,
    via: Option<(String, PathBuf)>,
) -> SabrRun {
    let out = tempfile::tempdir().unwrap();
    let token = origin.state.bg.signed_token(V, Trust::High);
    // Through a proxy, the fake's own port is withheld: only the proxy can reach it.
    let port = match via {
        Some(_) => 1,
        None => origin.addr.port(),
    };
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("sabr.mjs"))
        .arg(port.to_string())
        .arg(&pki.ca_path)
        .arg(V)
        .arg(token)
        .arg(mode)
        .arg(out.path());
    if let Some((proxy, ca)) = via {
        cmd.env("SABR_PROXY", proxy).env("NODE_EXTRA_CA_CERTS", ca);
    }
    let res = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout).into_owned();
    assert!(
        res.status.success(),
        "node failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    SabrRun {
        audio: std::fs::read(out.path().join("audio.bin")).unwrap(),
        video: std::fs::read(out.path().join("video.bin")).unwrap(),
        summary: serde_json::from_str(stdout.lines().last().unwrap()).unwrap(),
    }
}

/// What every reference-client session must show: rn counting from 0 within each session,
/// a valid token on every request, the last cookie sent back, no slips.
fn assert_reference_behaviour(origin: &FakeOrigin) {
    assert_eq!(origin.sabr_violations(), Vec::<String>::new());
    let requests = origin.sabr_requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.token_valid), "{requests:#?}");
    for (session, reqs) in origin.state.sabr.sessions() {
        let rns: Vec<u64> = reqs.iter().map(|r| r.rn.unwrap()).collect();
        let expected: Vec<u64> = (0..reqs.len() as u64).collect();
        assert_eq!(rns, expected, "session {session}");
        assert!(
            reqs[1..].iter().all(|r| r.cookie.is_some()),
            "session {session}"
        );
    }
}

#[tokio::test]
async fn googlevideo_sabr_stream_downloads_audio_only_byte_exact_from_the_fake() {
    let Some(dir) = node_clients("googlevideo") else {
        return;
    };
    let (fakes, _) = fakes(SabrBehaviour::on()).await;
    let run = run_sabr_stream(dir, &fakes.origin, &fakes.pki, "audio", None).await;
    let clen = sabr::format(140).clen;
    assert!(
        run.audio == media_bytes(0, clen),
        "audio differs: {} bytes of {clen}",
        run.audio.len()
    );
    assert!(run.video.is_empty(), "no video in an audio-only download");
    assert_reference_behaviour(&fakes.origin);
    let requests = fakes.origin.sabr_requests();
    assert!(
        requests
            .iter()
            .all(|r| r.enabled_track_types == track_types::AUDIO_ONLY)
    );
    assert!(
        requests
            .iter()
            .all(|r| r.buffered.contains(&(137, i32::MAX, i32::MAX))),
        "the video is named fully buffered: {requests:#?}"
    );
    assert!(requests.iter().all(|r| match &r.answer {
        SabrAnswer::Media(segs) => segs.iter().all(|s| s.0 == 140),
        _ => false,
    }));
    assert_eq!(run.summary["audioItag"], 140);
}

#[tokio::test]
async fn googlevideo_sabr_stream_downloads_audio_and_video_byte_exact_from_the_fake() {
    let Some(dir) = node_clients("googlevideo") else {
        return;
    };
    let (fakes, _) = fakes(SabrBehaviour::on()).await;
    let run = run_sabr_stream(dir, &fakes.origin, &fakes.pki, "av", None).await;
    let (a, v) = (sabr::format(140).clen, sabr::format(137).clen);
    assert!(
        run.audio == media_bytes(0, a),
        "audio differs: {} bytes of {a}",
        run.audio.len()
    );
    assert!(
        run.video == media_bytes(0, v),
        "video differs: {} bytes of {v}",
        run.video.len()
    );
    assert_reference_behaviour(&fakes.origin);
    // 10 s of media per response; SabrStream asks once more at the end (player time = duration)
    // and gets none.
    let requests = fakes.origin.sabr_requests();
    let media: Vec<usize> = requests
        .iter()
        .map(|r| match &r.answer {
            SabrAnswer::Media(segs) => segs.len(),
            _ => usize::MAX,
        })
        .collect();
    assert_eq!(media, [5, 3, 3, 0], "{requests:#?}");
}

#[tokio::test]
async fn googlevideo_sabr_stream_follows_redirect_backoff_protection_and_reload() {
    let Some(dir) = node_clients("googlevideo") else {
        return;
    };
    let (fakes, _) = fakes(SabrBehaviour {
        backoff_ms: Some(300),
        redirect_on: Some(2),
        protection_on: Some((3, 2)),
        reload_on: Some(4),
        ..SabrBehaviour::on()
    })
    .await;
    let run = run_sabr_stream(dir, &fakes.origin, &fakes.pki, "audio", None).await;
    let clen = sabr::format(140).clen;
    assert!(
        run.audio == media_bytes(0, clen),
        "audio differs: {} bytes of {clen}",
        run.audio.len()
    );
    assert!(
        run.summary["reloads"].as_u64().unwrap() >= 1,
        "{}",
        run.summary
    );
    assert_eq!(
        fakes.origin.sabr_violations(),
        Vec::<String>::new(),
        "backoff honoured, cookies sent back"
    );
    let requests = fakes.origin.sabr_requests();
    assert!(requests.iter().all(|r| r.token_valid));
    let answers: Vec<&SabrAnswer> = requests.iter().map(|r| &r.answer).collect();
    assert!(matches!(answers[1], SabrAnswer::Redirect(_)), "{answers:?}");
    assert_eq!(requests[2].host, REDIRECT_HOST, "the redirect was followed");
    assert!(matches!(answers[3], SabrAnswer::Reload(_)), "{answers:?}");
    assert!(!fakes.origin.state.sabr.reloads_seen().is_empty());
    assert!(
        matches!(answers.last().unwrap(), SabrAnswer::Media(_)),
        "the session went on with the fresh player response: {answers:?}"
    );
    let rns: Vec<u64> = requests.iter().map(|r| r.rn.unwrap()).collect();
    assert!(
        rns.windows(2).all(|w| w[1] == w[0] + 1),
        "rn counts on through redirect and reload: {rns:?}"
    );
}

#[tokio::test]
async fn googlevideo_sabr_stream_through_the_proxy_stays_byte_exact_with_valid_tokens() {
    let Some(dir) = node_clients("googlevideo") else {
        return;
    };
    let h = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .start_sabr(SabrBehaviour::on())
        .await;
    let via = (
        format!("http://{}", h.proxy.addr),
        h.proxy.ca_cert_path.clone(),
    );
    let run = run_sabr_stream(dir, &h.origin, &h.pki, "av", Some(via)).await;
    assert!(run.audio == sabr::progressive_bytes(140), "audio differs");
    assert!(run.video == sabr::progressive_bytes(137), "video differs");
    assert_reference_behaviour(&h.origin);
}
