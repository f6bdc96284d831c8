//! The fake's SABR: a format catalog ([`FORMATS`]: 140, 251, 137, 136, and a 50 MiB 160 for
//! the gateway benchmark) whose player-response
//! entries the fake YouTube hands out (SABR-only for web clients when [`SabrBehaviour::only`]
//! is on), and a SABR server on googlevideo's `/videoplayback?...&sabr=1` (when
//! [`SabrBehaviour::serve`] is on) that streams each format as real UMP: FORMAT_INITIALIZATION_
//! METADATA, the init segment, media segments of a few seconds (MEDIA_HEADER / MEDIA / MEDIA_END),
//! STREAM_PROTECTION_STATUS and NEXT_REQUEST_POLICY with a playback cookie.
//!
//! A format's bytes over SABR are exactly its progressive URL's (`media_bytes(0, clen)`): the init
//! segment covers `0..=indexRange.end` and media segment `k` starts where `k - 1` ended
//! (googlevideo's SabrUmpProcessor slices Shaka's index request out of the init segment). The
//! server follows the reference clients: media from the segment holding
//! `client_abr_state.player_time_ms`, skipping segments the buffered ranges hold, within
//! [`SabrBehaviour::window_ms`]; formats named fully buffered, or of a track type the
//! client disabled, get none.
//!
//! Every request is recorded ([`SabrRequest`]: rn, host, token bytes, cookie, player time,
//! formats, what was answered), and protocol slips become violations ([`SabrState::violations`]):
//! no `rn`, a wrong ustreamer config, a missing, forged or stale playback cookie, a request
//! before the backoff deadline. Faults on the `n`th SABR request the fake receives (1-based,
//! all sessions counted): a redirect to [`REDIRECT_HOST`], STREAM_PROTECTION_STATUS 2 (media
//! still flows) or 3 (none, and that token stays refused: only fresh token bytes get media),
//! SABR_ERROR, RELOAD_PLAYER_RESPONSE (the playback's URL then answers nothing else; the next
//! `/player` request's `reloadPlaybackContext` token is recorded).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use potproxy::sabr::proto::{
    self, BufferedRange, FormatId, FormatInitializationMetadata, MediaHeader, NextRequestPolicy,
    PlaybackCookie, ReloadPlaybackContext, ReloadPlaybackParams, SabrError, SabrRedirect,
    StreamProtectionStatus, TimeRange, VideoPlaybackAbrRequest, part, track_types,
};
use prost::Message;
use serde_json::{Value, json};

use super::botguard::Verdict;
use super::harness::{Fakes, Harness, HarnessBuilder};
use super::media::media_bytes;
use super::origin::{FakeOrigin, FakeRequest, FakeState, Reply, status_body};
use super::pki::TestPki;

/// Every format's duration.
pub const DURATION_MS: u64 = 30_000;

/// The googlevideo host a SABR_REDIRECT sends clients to (also served by the fake).
pub const REDIRECT_HOST: &str = "rr2---sn-fake2.googlevideo.com";

/// The `n` challenge SABR URLs carry (untransformed).
pub const SABR_N: &str = "FakeNChallenge01";

/// Bytes per MEDIA part (googlevideo sends 32 KiB parts).
const MEDIA_PART: usize = 32 * 1024;

/// One adaptive format of the fake video.
#[derive(Debug, Clone, Copy)]
pub struct FakeFormat {
    pub itag: u32,
    /// The player response's `mimeType`, codecs included.
    pub mime: &'static str,
    pub clen: u64,
    pub last_modified: u64,
    pub xtags: Option<&'static str>,
    /// `initRange.end` and `indexRange.end` (both ranges are contiguous from byte 0).
    pub init_end: u64,
    pub index_end: u64,
    pub segment_ms: u64,
    pub bitrate: u64,
    pub average_bitrate: u64,
    pub video: Option<Video>,
}

#[derive(Debug, Clone, Copy)]
pub struct Video {
    pub width: u32,
    pub height: u32,
    pub quality: &'static str,
    pub label: &'static str,
}

/// The fake video's adaptive formats, shaped like a real WEB response's (audio segments of
/// 10 s, video of 5 s, as googlevideo cuts them).
pub const FORMATS: &[FakeFormat] = &[
    FakeFormat {
        itag: 140,
        mime: "audio/mp4; codecs=\"mp4a.40.2\"",
        clen: 491_577,
        last_modified: 1_696_900_260_724_630,
        xtags: None,
        init_end: 631,
        index_end: 771,
        segment_ms: 10_000,
        bitrate: 131_244,
        average_bitrate: 129_477,
        video: None,
    },
    FakeFormat {
        itag: 251,
        mime: "audio/webm; codecs=\"opus\"",
        clen: 503_318,
        last_modified: 1_696_900_251_646_817,
        xtags: Some("CggKA2RyYxIBMQ"),
        init_end: 258,
        index_end: 317,
        segment_ms: 10_000,
        bitrate: 151_962,
        average_bitrate: 133_392,
        video: None,
    },
    FakeFormat {
        itag: 137,
        mime: "video/mp4; codecs=\"avc1.640028\"",
        clen: 2_402_911,
        last_modified: 1_696_992_368_447_156,
        xtags: None,
        init_end: 740,
        index_end: 952,
        segment_ms: 5_000,
        bitrate: 4_462_508,
        average_bitrate: 640_776,
        video: Some(Video {
            width: 1920,
            height: 1080,
            quality: "hd1080",
            label: "1080p",
        }),
    },
    FakeFormat {
        itag: 136,
        mime: "video/mp4; codecs=\"avc1.4d401f\"",
        clen: 1_103_457,
        last_modified: 1_696_991_067_551_813,
        xtags: None,
        init_end: 738,
        index_end: 950,
        segment_ms: 5_000,
        bitrate: 1_434_109,
        average_bitrate: 294_255,
        video: Some(Video {
            width: 1280,
            height: 720,
            quality: "hd720",
            label: "720p",
        }),
    },
    // The large one (benches/sabr_gateway.rs streams it): 50 MiB, far more than a real 144p.
    FakeFormat {
        itag: 160,
        mime: "video/mp4; codecs=\"avc1.4d400c\"",
        clen: 52_428_800,
        last_modified: 1_696_991_043_318_556,
        xtags: None,
        init_end: 737,
        index_end: 949,
        segment_ms: 5_000,
        bitrate: 66_000,
        average_bitrate: 41_000,
        video: Some(Video {
            width: 256,
            height: 144,
            quality: "tiny",
            label: "144p",
        }),
    },
];

/// The catalog entry for `itag`.
pub fn format(itag: u32) -> &'static FakeFormat {
    FORMATS
        .iter()
        .find(|f| f.itag == itag)
        .unwrap_or_else(|| panic!("no fake format {itag}"))
}

/// The bytes format `itag`'s progressive URL serves, which SABR must reproduce.
pub fn progressive_bytes(itag: u32) -> Vec<u8> {
    media_bytes(0, format(itag).clen)
}

/// One segment of a format: `seq` 0 is the init segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub seq: u32,
    pub start: u64,
    pub len: u64,
    pub start_ms: u64,
    pub duration_ms: u64,
}

impl FakeFormat {
    pub fn is_audio(&self) -> bool {
        self.mime.starts_with("audio/")
    }

    /// The number of media segments (sequence numbers run 1..=this).
    pub fn segment_count(&self) -> u32 {
        DURATION_MS.div_ceil(self.segment_ms) as u32
    }

    /// The init segment (`0..=indexRange.end`) then the media segments, back to back up to
    /// `clen`.
    pub fn segments(&self) -> Vec<Segment> {
        let base = self.index_end + 1;
        let media = self.clen - base;
        let n = self.segment_count() as u64;
        let mut out = vec![Segment {
            seq: 0,
            start: 0,
            len: base,
            start_ms: 0,
            duration_ms: 0,
        }];
        for k in 0..n {
            let start = base + media * k / n;
            let end = base + media * (k + 1) / n;
            let start_ms = k * self.segment_ms;
            out.push(Segment {
                seq: k as u32 + 1,
                start,
                len: end - start,
                start_ms,
                duration_ms: self.segment_ms.min(DURATION_MS - start_ms),
            });
        }
        out
    }

    pub fn format_id(&self) -> FormatId {
        FormatId {
            itag: Some(self.itag as i32),
            last_modified: Some(self.last_modified),
            xtags: self.xtags.map(str::to_string),
        }
    }

    /// Whether a client's FormatId names this format (itag, lastModified and xtags alike).
    fn named_by(&self, id: &FormatId) -> bool {
        id.itag == Some(self.itag as i32)
            && id.last_modified == Some(self.last_modified)
            && id.xtags.as_deref().filter(|x| !x.is_empty()) == self.xtags
    }

    /// Its `adaptiveFormats` entry; `url` for clients that get one.
    pub fn json(&self, url: Option<String>) -> Value {
        let mut v = json!({
            "itag": self.itag,
            "mimeType": self.mime,
            "bitrate": self.bitrate,
            "initRange": {"start": "0", "end": self.init_end.to_string()},
            "indexRange": {"start": (self.init_end + 1).to_string(), "end": self.index_end.to_string()},
            "lastModified": self.last_modified.to_string(),
            "contentLength": self.clen.to_string(),
            "projectionType": "RECTANGULAR",
            "averageBitrate": self.average_bitrate,
            "approxDurationMs": DURATION_MS.to_string(),
        });
        let m = v.as_object_mut().unwrap();
        if let Some(u) = url {
            m.insert("url".into(), u.into());
        }
        match self.video {
            Some(video) => {
                m.insert("width".into(), video.width.into());
                m.insert("height".into(), video.height.into());
                m.insert("quality".into(), video.quality.into());
                m.insert("fps".into(), 30.into());
                m.insert("qualityLabel".into(), video.label.into());
            }
            None => {
                m.insert("quality".into(), "tiny".into());
                m.insert("highReplication".into(), true.into());
                m.insert("audioQuality".into(), "AUDIO_QUALITY_MEDIUM".into());
                let rate = if self.mime.contains("opus") {
                    "48000"
                } else {
                    "44100"
                };
                m.insert("audioSampleRate".into(), rate.into());
                m.insert("audioChannels".into(), 2.into());
                m.insert("loudnessDb".into(), 0.into());
            }
        }
        if let Some(x) = self.xtags {
            m.insert("xtags".into(), x.into());
        }
        v
    }
}

/// What the SABR side of the fake does; tests flip these through
/// `FakeOrigin::behaviour().sabr`.
#[derive(Debug, Clone)]
pub struct SabrBehaviour {
    /// Player responses list [`FORMATS`] and give web clients (WEB, MWEB, WEB_*) no format URLs:
    /// only `serverAbrStreamingUrl`.
    pub only: bool,
    /// The SABR URL is answered by the SABR server (else by a bare status body).
    pub serve: bool,
    /// `backoff_time_ms` in every NEXT_REQUEST_POLICY.
    pub backoff_ms: Option<i32>,
    /// Media time per response, from the player time on.
    pub window_ms: u64,
    /// Request numbers (1-based, as received) answered with SABR_REDIRECT to [`REDIRECT_HOST`].
    pub redirect_on: Option<u32>,
    /// (request number, status): STREAM_PROTECTION_STATUS 2 (media still sent) or 3 (none).
    pub protection_on: Option<(u32, i32)>,
    /// Request number answered with SABR_ERROR.
    pub error_on: Option<u32>,
    /// Every request from `error_on` on is answered with SABR_ERROR (a config googlevideo
    /// will not take, whoever asks).
    pub error_persists: bool,
    /// Request number answered with RELOAD_PLAYER_RESPONSE.
    pub reload_on: Option<u32>,
    /// The SABR URL carries an `n` challenge, as real ones do (off for clients that skip
    /// formats whose `n` they cannot solve, like yt-dlp without the player JS).
    pub n_param: bool,
}

impl Default for SabrBehaviour {
    fn default() -> Self {
        SabrBehaviour {
            only: false,
            serve: false,
            backoff_ms: None,
            window_ms: 10_000,
            redirect_on: None,
            protection_on: None,
            error_on: None,
            error_persists: false,
            reload_on: None,
            n_param: true,
        }
    }
}

impl SabrBehaviour {
    /// SABR-only player responses for web clients, served by the SABR server.
    pub fn on() -> Self {
        SabrBehaviour {
            only: true,
            serve: true,
            ..Default::default()
        }
    }
}

/// Whether `client` gets SABR-only responses (the web family).
pub fn is_web_client(client: &str) -> bool {
    client == "MWEB" || client.starts_with("WEB")
}

/// The opaque `videoPlaybackUstreamerConfig` bytes of the playback with URL `id`.
pub fn ustreamer_config(id: &str) -> Vec<u8> {
    format!("\u{8}\u{1}fake-ustreamer-config:{id}").into_bytes()
}

/// The same, as the player response carries it (base64url).
pub fn ustreamer_config_b64(id: &str) -> String {
    URL_SAFE.encode(ustreamer_config(id))
}

/// A SABR URL shaped like googlevideo's.
pub fn sabr_url(expire: u64, ei: &str, id: &str, client: &str) -> String {
    format!(
        "https://rr1---sn-fake.googlevideo.com/videoplayback?expire={expire}&ei={ei}&ip=127.0.0.1&id={id}&source=youtube&requiressl=yes&xpc=EgVo2aDSNQ%3D%3D&met={expire}%2C&mh=Fk&mm=31%2C29&mn=sn-fake%2Csn-fake2&ms=au%2Crdu&mv=m&mvi=1&pl=24&rms=au%2Cau&spc=FakeSpcValue0123456789&svpuc=1&sabr=1&rqh=1&mt={expire}&fvip=4&keepalive=yes&c={client}&cver=2.20260512.00.00&n={SABR_N}&sparams=expire%2Cei%2Cip%2Cid%2Csource%2Crequiressl%2Cxpc%2Cspc%2Csvpuc%2Csabr%2Crqh&sig=AJfQdSswRAIgFakeSabrSignature&lsparams=met%2Cmh%2Cmm%2Cmn%2Cms%2Cmv%2Cmvi%2Cpl%2Crms&lsig=APaTxxFakeLsig"
    )
}

/// What the fake answered a SABR request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SabrAnswer {
    /// Media: (itag, sequence number; 0 = init) of each segment sent.
    Media(Vec<(u32, u32)>),
    /// STREAM_PROTECTION_STATUS 3, no media.
    Refused,
    Redirect(String),
    Error,
    Reload(String),
    /// HTTP 400 (no `rn`, a body that is not a request).
    BadRequest(String),
}

/// One SABR request as the fake received and answered it.
#[derive(Debug, Clone)]
pub struct SabrRequest {
    /// 1-based arrival order among SABR requests.
    pub n: u32,
    pub at: Instant,
    pub host: String,
    pub rn: Option<u64>,
    /// The URL's `n` as sent (the player JS transforms it; the fake hands out [`SABR_N`]).
    pub n_param: Option<String>,
    pub token: Option<Vec<u8>>,
    pub token_valid: bool,
    pub cookie: Option<Vec<u8>>,
    pub player_time_ms: i64,
    pub enabled_track_types: i32,
    /// The client session, as the playback cookie chains requests (a cookie-less request
    /// starts one); -1 when the request was answered before the cookie was read.
    pub session: i32,
    pub selected: Vec<u32>,
    pub preferred_audio: Vec<u32>,
    pub preferred_video: Vec<u32>,
    /// (itag, start segment, end segment) per buffered range.
    pub buffered: Vec<(u32, i32, i32)>,
    pub answer: SabrAnswer,
}

/// Where one cookie chain (one client session) stands.
struct Chain {
    step: i32,
    not_before: Option<Instant>,
}

/// The SABR server's memory, in the fake origin's state.
#[derive(Default)]
pub struct SabrState {
    requests: Mutex<Vec<SabrRequest>>,
    violations: Mutex<Vec<String>>,
    arrivals: AtomicU32,
    chains: Mutex<HashMap<i32, Chain>>,
    next_chain: AtomicU32,
    refused_tokens: Mutex<HashSet<Vec<u8>>>,
    /// Playback ids told to reload, with the token they were given.
    reloading: Mutex<HashMap<String, String>>,
    /// `reloadPlaybackContext` tokens player requests came back with.
    reloads_seen: Mutex<Vec<String>>,
}

impl SabrState {
    pub fn requests(&self) -> Vec<SabrRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Protocol slips the clients made, in order; empty for a well-behaved client.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// The reload tokens the fake issued that came back in a player request.
    pub fn reloads_seen(&self) -> Vec<String> {
        self.reloads_seen.lock().unwrap().clone()
    }

    /// Notes a player request's `playbackContext.reloadPlaybackContext` (the fake YouTube calls
    /// this).
    pub(super) fn player_request(&self, body: &Value) {
        let token =
            &body["playbackContext"]["reloadPlaybackContext"]["reloadPlaybackParams"]["token"];
        if let Some(t) = token.as_str() {
            let issued = self.reloading.lock().unwrap().values().any(|v| v == t);
            if issued {
                self.reloads_seen.lock().unwrap().push(t.to_string());
            } else {
                self.violate(format!("player request with an unknown reload token {t:?}"));
            }
        }
    }

    fn violate(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }
}

/// Whether the SABR server answers this request.
pub(super) fn handles(state: &FakeState, req: &FakeRequest) -> bool {
    req.parts.method == hyper::Method::POST
        && req.param("sabr").as_deref() == Some("1")
        && req.host.ends_with(".googlevideo.com")
        && state.behaviour().sabr.serve
}

/// Answers one SABR request and records it.
pub(super) fn serve(state: &FakeState, req: &FakeRequest) -> Reply {
    let sabr = &state.sabr;
    let n = sabr.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
    let at = Instant::now();
    let b = state.behaviour().sabr;
    let decoded = VideoPlaybackAbrRequest::decode(req.body.as_slice());
    let abr = decoded.clone().unwrap_or_default();
    let ctx = abr.streamer_context.clone().unwrap_or_default();
    let abr_state = abr.client_abr_state.clone().unwrap_or_default();
    let itags = |ids: &[FormatId]| -> Vec<u32> {
        ids.iter()
            .filter_map(|f| f.itag)
            .map(|i| i as u32)
            .collect()
    };
    let mut record = SabrRequest {
        n,
        at,
        host: req.host.clone(),
        rn: req.param("rn").and_then(|v| v.parse().ok()),
        n_param: req.param("n"),
        token: ctx.po_token.clone(),
        token_valid: false,
        cookie: ctx.playback_cookie.clone(),
        player_time_ms: abr_state.player_time_ms.or(abr.player_time_ms).unwrap_or(0),
        enabled_track_types: abr_state.enabled_track_types_bitfield.unwrap_or(0),
        session: -1,
        selected: itags(&abr.selected_format_ids),
        preferred_audio: itags(&abr.preferred_audio_format_ids),
        preferred_video: itags(&abr.preferred_video_format_ids),
        buffered: abr
            .buffered_ranges
            .iter()
            .map(|r| {
                let itag = r.format_id.as_ref().and_then(|f| f.itag).unwrap_or(0) as u32;
                (
                    itag,
                    r.start_segment_index.unwrap_or(0),
                    r.end_segment_index.unwrap_or(0),
                )
            })
            .collect(),
        answer: SabrAnswer::Refused,
    };
    let (answer, body) = answer(state, req, &b, n, at, decoded.ok(), &mut record);
    record.answer = answer.clone();
    sabr.requests.lock().unwrap().push(record);
    match answer {
        SabrAnswer::BadRequest(why) => status_body(400, why, "text/plain"),
        _ => hyper::Response::builder()
            .status(200)
            .header("content-type", "application/vnd.yt-ump")
            .header("access-control-allow-origin", "*")
            .body(ump_body(body.finish()))
            .unwrap(),
    }
}

/// Decides and builds the answer (parts in the order googlevideo sends them: protection status,
/// request policy, format metadata, segments).
fn answer(
    state: &FakeState,
    req: &FakeRequest,
    b: &SabrBehaviour,
    n: u32,
    at: Instant,
    abr: Option<VideoPlaybackAbrRequest>,
    record: &mut SabrRequest,
) -> (SabrAnswer, Ump) {
    let sabr = &state.sabr;
    if record.rn.is_none() {
        sabr.violate(format!("request {n}: no rn"));
        return (SabrAnswer::BadRequest("missing rn".into()), Ump::default());
    }
    let Some(abr) = abr else {
        sabr.violate(format!(
            "request {n}: body is not a VideoPlaybackAbrRequest"
        ));
        return (
            SabrAnswer::BadRequest("bad request body".into()),
            Ump::default(),
        );
    };
    let id = req.param("id").unwrap_or_default();
    let Some(playback) = state.playbacks.get(&id) else {
        sabr.violate(format!("request {n}: unknown playback id {id:?}"));
        return (SabrAnswer::Error, error_body("sabr.unknown_playback"));
    };
    let mut out = Ump::default();

    // The token, checked like every media token; a refused one stays refused.
    let expected = playback.gvs_binding(state.behaviour().gvs_regime);
    let verdict = match &record.token {
        Some(t) => state
            .bg
            .verify(potproxy::token::Token::from_bytes(t).as_str(), &expected),
        None => Verdict::Invalid("no token".into()),
    };
    state.record_verdict(format!("sabr {}", playback.video), verdict.clone());
    record.token_valid = verdict == Verdict::Valid;
    let refused_before = record
        .token
        .as_ref()
        .is_some_and(|t| sabr.refused_tokens.lock().unwrap().contains(t));
    let protection = b.protection_on.filter(|(k, _)| *k == n).map(|(_, s)| s);
    if !record.token_valid || refused_before || protection == Some(3) {
        if let Some(t) = &record.token {
            sabr.refused_tokens.lock().unwrap().insert(t.clone());
        }
        put(
            &mut out,
            part::STREAM_PROTECTION_STATUS,
            &StreamProtectionStatus {
                status: Some(3),
                max_retries: None,
            },
        );
        return (SabrAnswer::Refused, out);
    }

    // The config must be the one the player response handed out.
    if abr.video_playback_ustreamer_config.as_deref() != Some(ustreamer_config(&id).as_slice()) {
        sabr.violate(format!("request {n}: wrong or missing ustreamer config"));
        return (SabrAnswer::Error, error_body("sabr.malformed_config"));
    }

    // The playback cookie: none only on a session's first request; else one the fake issued,
    // the latest of its chain; and no request before the chain's backoff deadline.
    let chain = match &record.cookie {
        None => {
            let c = sabr.next_chain.fetch_add(1, Ordering::SeqCst) as i32;
            if abr
                .selected_format_ids
                .iter()
                .filter_map(|id| FORMATS.iter().find(|f| f.named_by(id)))
                .any(|f| !fully_buffered(&abr, f))
            {
                sabr.violate(format!(
                    "request {n} (rn {:?}): no playback cookie after formats were initialized",
                    record.rn
                ));
            }
            sabr.chains.lock().unwrap().insert(
                c,
                Chain {
                    step: 0,
                    not_before: None,
                },
            );
            c
        }
        Some(bytes) => {
            let cookie = PlaybackCookie::decode(bytes.as_slice()).unwrap_or_default();
            let (c, step) = cookie
                .field2
                .map(|v| (v / 1000, v % 1000))
                .unwrap_or((-1, -1));
            let mut chains = sabr.chains.lock().unwrap();
            match chains.get(&c) {
                None => sabr.violate(format!(
                    "request {n}: a playback cookie the fake never issued"
                )),
                Some(ch) if ch.step != step => sabr.violate(format!(
                    "request {n}: stale playback cookie (step {step}, latest {})",
                    ch.step
                )),
                Some(ch) => {
                    if ch.not_before.is_some_and(|t| at < t) {
                        sabr.violate(format!("request {n}: sent before the backoff deadline"));
                    }
                }
            }
            chains.entry(c).or_insert(Chain {
                step,
                not_before: None,
            });
            c
        }
    };

    record.session = chain;

    if b.redirect_on == Some(n) {
        let to = format!("https://{REDIRECT_HOST}{}", strip_rn(&req.path_and_query));
        put(
            &mut out,
            part::SABR_REDIRECT,
            &SabrRedirect {
                url: Some(to.clone()),
            },
        );
        return (SabrAnswer::Redirect(to), out);
    }
    if b.error_on == Some(n) || (b.error_persists && b.error_on.is_some_and(|e| n >= e)) {
        return (SabrAnswer::Error, error_body("sabr.fake_error"));
    }
    let reload = {
        let mut reloading = sabr.reloading.lock().unwrap();
        if b.reload_on == Some(n) {
            reloading.insert(id.clone(), format!("FakeReloadToken{n}"));
        }
        reloading.get(&id).cloned()
    };
    if let Some(token) = reload {
        put(
            &mut out,
            part::RELOAD_PLAYER_RESPONSE,
            &ReloadPlaybackContext {
                reload_playback_params: Some(ReloadPlaybackParams {
                    token: Some(token.clone()),
                }),
            },
        );
        return (SabrAnswer::Reload(token), out);
    }

    let plan = match plan(&abr, b.window_ms) {
        Ok(plan) => plan,
        Err(why) => {
            sabr.violate(format!("request {n}: {why}"));
            return (SabrAnswer::Error, error_body("sabr.unknown_format"));
        }
    };

    put(
        &mut out,
        part::STREAM_PROTECTION_STATUS,
        &StreamProtectionStatus {
            status: Some(protection.unwrap_or(1)),
            max_retries: None,
        },
    );
    // The next step of this chain, with its backoff deadline.
    let step = {
        let mut chains = sabr.chains.lock().unwrap();
        let ch = chains.get_mut(&chain).unwrap();
        ch.step += 1;
        ch.not_before = b
            .backoff_ms
            .filter(|ms| *ms > 0)
            .map(|ms| at + Duration::from_millis(ms as u64));
        ch.step
    };
    let audio = abr.preferred_audio_format_ids.first().cloned();
    let video = abr.preferred_video_format_ids.first().cloned();
    put(
        &mut out,
        part::NEXT_REQUEST_POLICY,
        &NextRequestPolicy {
            target_audio_readahead_ms: Some(15_000),
            target_video_readahead_ms: Some(15_000),
            max_time_since_last_request_ms: Some(60_000),
            backoff_time_ms: b.backoff_ms,
            playback_cookie: Some(
                PlaybackCookie {
                    resolution: Some(999_999),
                    field2: Some(chain * 1000 + step),
                    video_fmt: video,
                    audio_fmt: audio,
                }
                .encode_to_vec(),
            ),
            video_id: None,
            ..Default::default()
        },
    );
    for f in &plan.initialize {
        put(
            &mut out,
            part::FORMAT_INITIALIZATION_METADATA,
            &init_metadata(f, &playback.video),
        );
    }
    let mut sent = Vec::new();
    for (header_id, (f, seg)) in plan.segments.iter().enumerate() {
        put_segment(&mut out, header_id as u8, f, seg, &playback.video);
        sent.push((f.itag, seg.seq));
    }
    (SabrAnswer::Media(sent), out)
}

/// What one response carries: formats to initialize (with their init segments) and segments.
#[derive(Debug, Default)]
pub struct Plan {
    pub initialize: Vec<&'static FakeFormat>,
    pub segments: Vec<(&'static FakeFormat, Segment)>,
}

/// Whether the request announces `f` as fully buffered, by segments or by time (what a client
/// does with a format it does not want: `SabrStream` names segments up to
/// [`proto::FULLY_BUFFERED_SEGMENT`], yt-dlp times up to 2^53 - 1).
fn fully_buffered(abr: &VideoPlaybackAbrRequest, f: &FakeFormat) -> bool {
    abr.buffered_ranges.iter().any(|r| {
        let named = r.format_id.as_ref().is_some_and(|id| f.named_by(id));
        let by_segments = r.start_segment_index.unwrap_or(0) <= 1
            && r.end_segment_index.unwrap_or(0) >= f.segment_count() as i32;
        let start_ms = r.start_time_ms.unwrap_or(0);
        let by_time = start_ms <= 0
            && start_ms.saturating_add(r.duration_ms.unwrap_or(0)) >= DURATION_MS as i64;
        named && (by_segments || by_time)
    })
}

/// Whether a buffered range of `abr` holds segment `seq` of `f`.
fn held(abr: &VideoPlaybackAbrRequest, f: &FakeFormat, seq: u32) -> bool {
    abr.buffered_ranges.iter().any(|r: &BufferedRange| {
        r.format_id.as_ref().is_some_and(|id| f.named_by(id))
            && r.start_segment_index.unwrap_or(0) as i64 <= seq as i64
            && seq as i64 <= r.end_segment_index.unwrap_or(-1) as i64
    })
}

/// The server's decision for one request, from the request alone: the preferred formats of the
/// enabled track types; part 42 and the init segment for each not yet initialized
/// (`selected_format_ids`); then each one's segments from the one holding the player time,
/// within `window_ms`, skipping those buffered. Errors name a format the fake does not have.
pub fn plan(abr: &VideoPlaybackAbrRequest, window_ms: u64) -> Result<Plan, String> {
    let enabled = abr
        .client_abr_state
        .as_ref()
        .and_then(|s| s.enabled_track_types_bitfield)
        .unwrap_or(track_types::AUDIO_AND_VIDEO);
    let time = abr
        .client_abr_state
        .as_ref()
        .and_then(|s| s.player_time_ms)
        .or(abr.player_time_ms)
        .unwrap_or(0)
        .max(0) as u64;
    let mut wanted: Vec<&FormatId> = Vec::new();
    if enabled != track_types::VIDEO_ONLY {
        wanted.extend(abr.preferred_audio_format_ids.first());
    }
    if enabled != track_types::AUDIO_ONLY {
        wanted.extend(abr.preferred_video_format_ids.first());
    }
    let mut plan = Plan::default();
    for id in wanted {
        let f = FORMATS
            .iter()
            .find(|f| f.named_by(id))
            .ok_or_else(|| format!("unknown format {id:?}"))?;
        if fully_buffered(abr, f) {
            continue;
        }
        let initialized = abr.selected_format_ids.iter().any(|s| f.named_by(s));
        let segments = f.segments();
        if !initialized {
            plan.initialize.push(f);
            plan.segments.push((f, segments[0]));
        }
        for seg in &segments[1..] {
            let end_ms = seg.start_ms + seg.duration_ms;
            if end_ms <= time || held(abr, f, seg.seq) {
                continue;
            }
            if seg.start_ms >= time + window_ms && seg.start_ms > time {
                break;
            }
            plan.segments.push((f, *seg));
        }
    }
    Ok(plan)
}

fn init_metadata(f: &FakeFormat, video: &str) -> FormatInitializationMetadata {
    FormatInitializationMetadata {
        video_id: Some(video.to_string()),
        format_id: Some(f.format_id()),
        end_time_ms: Some(DURATION_MS as i64),
        end_segment_number: Some(f.segment_count() as i64),
        mime_type: Some(f.mime.to_string()),
        init_range: Some(proto::Range {
            start: Some(0),
            end: Some(f.init_end as i32),
            ..Default::default()
        }),
        index_range: Some(proto::Range {
            start: Some(f.init_end as i32 + 1),
            end: Some(f.index_end as i32),
            ..Default::default()
        }),
        field8: None,
        duration_units: Some(DURATION_MS as i64),
        duration_timescale: Some(1000),
    }
}

/// A UMP answer being built: control parts as bytes, each segment's media as a range produced
/// part by part while the answer streams (a 10 s window of a large format is megabytes; the
/// fake never holds it whole, as googlevideo does not).
#[derive(Default)]
struct Ump {
    pieces: Vec<Piece>,
    buf: Vec<u8>,
}

enum Piece {
    Bytes(Vec<u8>),
    Media { header_id: u8, start: u64, len: u64 },
}

impl Ump {
    fn media(&mut self, header_id: u8, start: u64, len: u64) {
        let done = std::mem::take(&mut self.buf);
        self.pieces.push(Piece::Bytes(done));
        self.pieces.push(Piece::Media {
            header_id,
            start,
            len,
        });
    }

    fn finish(mut self) -> Vec<Piece> {
        let done = std::mem::take(&mut self.buf);
        self.pieces.push(Piece::Bytes(done));
        self.pieces
            .retain(|p| !matches!(p, Piece::Bytes(b) if b.is_empty()));
        self.pieces
    }
}

/// The answer's bytes as they go out: media generated one MEDIA part at a time.
fn ump_body(pieces: Vec<Piece>) -> super::origin::FakeBody {
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    let frames = futures::stream::iter(pieces).flat_map(|piece| match piece {
        Piece::Bytes(b) => futures::stream::iter(vec![bytes::Bytes::from(b)]).left_stream(),
        Piece::Media {
            header_id,
            start,
            len,
        } => futures::stream::unfold(0u64, move |done| async move {
            if done >= len {
                return None;
            }
            let n = (MEDIA_PART as u64).min(len - done);
            let mut part = Vec::with_capacity(n as usize + 8);
            potproxy::ump::encode_varint(part::MEDIA, &mut part);
            potproxy::ump::encode_varint(n + 1, &mut part);
            part.push(header_id);
            part.extend(media_bytes(start + done, n));
            Some((bytes::Bytes::from(part), done + n))
        })
        .right_stream(),
    });
    BodyExt::boxed(StreamBody::new(frames.map(|b| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))
    })))
}

/// MEDIA_HEADER, the segment's bytes in MEDIA parts, MEDIA_END.
fn put_segment(out: &mut Ump, header_id: u8, f: &FakeFormat, seg: &Segment, video: &str) {
    let init = seg.seq == 0;
    let header = MediaHeader {
        header_id: Some(header_id as u32),
        video_id: Some(video.to_string()),
        itag: Some(f.itag as i32),
        lmt: Some(f.last_modified),
        xtags: f.xtags.map(str::to_string),
        start_range: Some(seg.start as i64),
        is_init_seg: init.then_some(true),
        sequence_number: (!init).then_some(seg.seq as i32),
        start_ms: (!init).then_some(seg.start_ms as i64),
        duration_ms: (!init).then_some(seg.duration_ms as i64),
        format_id: Some(f.format_id()),
        content_length: Some(seg.len as i64),
        time_range: (!init).then_some(TimeRange {
            start_ticks: Some(seg.start_ms as i64),
            duration_ticks: Some(seg.duration_ms as i64),
            timescale: Some(1000),
        }),
        ..Default::default()
    };
    put(out, part::MEDIA_HEADER, &header);
    out.media(header_id, seg.start, seg.len);
    potproxy::ump::encode_varint(part::MEDIA_END, &mut out.buf);
    potproxy::ump::encode_varint(1, &mut out.buf);
    out.buf.push(header_id);
}

/// One UMP part holding `msg`.
fn put(out: &mut Ump, id: u64, msg: &impl Message) {
    let payload = msg.encode_to_vec();
    potproxy::ump::encode_varint(id, &mut out.buf);
    potproxy::ump::encode_varint(payload.len() as u64, &mut out.buf);
    out.buf.extend_from_slice(&payload);
}

fn error_body(kind: &str) -> Ump {
    let mut out = Ump::default();
    put(
        &mut out,
        part::SABR_ERROR,
        &SabrError {
            r#type: Some(kind.to_string()),
            code: Some(1),
        },
    );
    out
}

/// The path and query without `rn` (a redirect URL has none; the client adds its own).
fn strip_rn(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("rn=")).collect();
    format!("{path}?{}", kept.join("&"))
}

/// A client that reaches the fake origin directly (no proxy): the YouTube and googlevideo names
/// the SABR fake uses resolved to it, only the test CA trusted.
pub fn direct_client(origin: &FakeOrigin, pki: &TestPki) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .no_gzip();
    for host in [
        "www.youtube.com",
        "m.youtube.com",
        "rr1---sn-fake.googlevideo.com",
        REDIRECT_HOST,
    ] {
        b = b.resolve(host, origin.addr);
    }
    b.build().unwrap()
}

/// The parts of a complete UMP body, as (part id, payload); panics on a truncated body.
pub fn ump_parts(mut body: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let n = match b[0] {
            0x00..=0x7f => 1,
            0x80..=0xbf => 2,
            0xc0..=0xdf => 3,
            0xe0..=0xef => 4,
            _ => 5,
        };
        let v = potproxy::ump::decode_varint(b).expect("a whole UMP varint");
        *b = &b[n..];
        v
    }
    let mut parts = Vec::new();
    while !body.is_empty() {
        let id = varint(&mut body);
        let len = varint(&mut body) as usize;
        parts.push((id, body[..len].to_vec()));
        body = &body[len..];
    }
    parts
}

impl SabrState {
    /// The requests of each client session (see [`SabrRequest::session`]), in arrival order.
    pub fn sessions(&self) -> std::collections::BTreeMap<i32, Vec<SabrRequest>> {
        let mut out = std::collections::BTreeMap::<i32, Vec<SabrRequest>>::new();
        for r in self.requests() {
            out.entry(r.session).or_default().push(r);
        }
        out
    }
}

impl HarnessBuilder {
    /// Starts the proxy against fresh fakes whose YouTube answers web clients SABR-only and
    /// whose googlevideo serves SABR with `sabr`'s faults (usually [`SabrBehaviour::on`]).
    pub async fn start_sabr(self, sabr: SabrBehaviour) -> Harness {
        let fakes = Fakes::start().await;
        fakes.origin.behaviour().sabr = sabr;
        self.start_on(fakes).await
    }
}
