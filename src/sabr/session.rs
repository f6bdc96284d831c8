//! The proxy's own SABR client for one byte range of one format: what each request says, and
//! what each part of each UMP response does to the session (pure: the handler's gateway stage
//! sends the requests, feeds the parts and passes the emitted bytes on).
//!
//! The loop follows what googlevideo's reference client does (LuanRT/googlevideo
//! `src/core/SabrStream.ts`, `src/utils/sabrStreamUtils.ts`): requests numbered with `rn`; the
//! chosen format named as preferred, and as selected once its FORMAT_INITIALIZATION_METADATA
//! came; a single-track download announcing the other kind's format as buffered to the end; the
//! segments received reported back as buffered ranges with the player time at their end; the
//! last NEXT_REQUEST_POLICY's playback cookie sent back and its backoff waited; SABR_REDIRECT
//! followed; SABR_CONTEXT_UPDATE values kept and sent while their type is active
//! (SABR_CONTEXT_SENDING_POLICY starts, stops and discards types).
//!
//! Bytes are placed by MEDIA_HEADER `start_range`: a segment's data lands at its offset in the
//! format's progressive object, so the emitted stream is that object's bytes from `first` to
//! `last`. A range that starts mid-file starts at the player time its offset suggests; when the
//! first segment that comes begins after the wanted byte, the session seeks earlier and tries
//! again, and it never emits a byte it did not receive at its place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use super::gateway::{FormatRef, Gateway, with_query_param};
use super::proto::{self, part};
use crate::ump::Event;

/// Why a gateway stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SabrFailure {
    #[error("googlevideo ended the stream with SABR_ERROR {kind} (code {code})")]
    Server { kind: String, code: i32 },
    #[error("googlevideo sent media after a gap: wanted byte {wanted}, got byte {got}")]
    Gap { wanted: u64, got: u64 },
    #[error("a segment carried {got} bytes, its header said {said}")]
    SegmentLength { got: u64, said: u64 },
    #[error("the format ended at byte {at}, before its contentLength {content_length}")]
    Short { at: u64, content_length: u64 },
    #[error("a media header for the format has no start_range")]
    Unplaceable,
    #[error("SABR_REDIRECT to a URL that is not an https googlevideo.com URL")]
    BadRedirect,
    #[error("{requests} SABR requests in a row brought none of the format's media")]
    Stalled { requests: u32 },
    #[error("googlevideo asks for a new player response")]
    Reload,
    #[error("a UMP part that should be protobuf is not: part {part_type}")]
    Malformed { part_type: u64 },
}

/// What one event did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes for the client, in order.
    pub emit: Option<Bytes>,
    /// Stop reading this response.
    pub halt: Option<Halt>,
}

/// Why the session stops reading a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The wanted range is complete.
    Done,
    /// The first media came from after the wanted byte: seek earlier with the next request.
    Overshot,
    /// The stream cannot go on.
    Failed(SabrFailure),
}

/// What to do once a response is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done,
    /// Send the next request, after `backoff`.
    Request {
        backoff: Duration,
    },
    /// The response refused the token (STREAM_PROTECTION_STATUS 3, or 2 without media): ask
    /// the refusal policy, then send the next request after `backoff`.
    Refused {
        status: i32,
        backoff: Duration,
    },
    /// STREAM_PROTECTION_STATUS 2 while media still came: a fresh token for the next request,
    /// which goes after `backoff`.
    Refresh {
        backoff: Duration,
    },
    /// googlevideo wants a new player response (its reload token).
    Reload {
        token: Option<String>,
    },
    Failed(SabrFailure),
}

#[derive(Debug, Clone)]
struct Segment {
    ours: bool,
    init: bool,
    start: u64,
    received: u64,
    length: Option<u64>,
    sequence: Option<i32>,
    start_ms: Option<i64>,
    duration_ms: Option<i64>,
}

/// The segments of the format received so far, contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Buffered {
    first_seq: i32,
    last_seq: i32,
    start_ms: i64,
    end_ms: i64,
}

/// Consecutive responses without the format's media before the session gives up.
const MAX_IDLE_RESPONSES: u32 = 4;
/// Seeks earlier before starting from the beginning.
const MAX_SEEKS: u32 = 4;

/// One SABR session serving bytes `first..=last` of one format.
#[derive(Debug)]
pub struct Pull {
    gw: Gateway,
    url: String,
    last: u64,
    pos: u64,
    rn: u32,
    cookie: Option<Vec<u8>>,
    backoff_ms: u64,
    contexts: BTreeMap<i32, proto::SabrContextUpdate>,
    sending: BTreeSet<i32>,
    initialized: bool,
    end_segment: Option<i64>,
    open: HashMap<u8, Segment>,
    buffered: Option<Buffered>,
    time_ms: i64,
    seeks: u32,
    /// Statuses and requests seen in the response being read.
    protection: Option<i32>,
    reload: Option<Option<String>>,
    /// The response being read moved the session on: bytes for the client, or segments of
    /// the format completed (those before a mid-file range count too).
    progressed: bool,
    idle: u32,
    /// Where the last overshooting media began (for the error when seeking cannot help).
    first_seen: Option<u64>,
    /// Where the current SABR session started: `first`, or where the bytes stopped when the
    /// session was started again. Media after it and before any byte went out means "seek".
    start: u64,
}

impl Pull {
    /// A session for `first..=last` (inclusive, within the format's `contentLength`).
    pub fn new(gw: Gateway, first: u64, last: u64) -> Pull {
        let url = gw.sabr_url();
        let time_ms = seek_time(first, gw.content_length, gw.duration_ms);
        Pull {
            gw,
            url,
            last,
            pos: first,
            rn: 0,
            cookie: None,
            backoff_ms: 0,
            contexts: BTreeMap::new(),
            sending: BTreeSet::new(),
            initialized: false,
            end_segment: None,
            open: HashMap::new(),
            buffered: None,
            time_ms,
            seeks: 0,
            protection: None,
            reload: None,
            progressed: false,
            idle: 0,
            first_seen: None,
            start: first,
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u32 {
        self.rn
    }

    /// The next byte the client is owed.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn is_done(&self) -> bool {
        self.pos > self.last
    }

    /// The URL requests go to now (redirects followed).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn format_id(f: &FormatRef) -> proto::FormatId {
        proto::FormatId {
            itag: Some(f.itag as i32),
            last_modified: Some(f.lmt),
            xtags: f.xtags.clone(),
        }
    }

    /// The next request: its URL (with `rn`) and its `VideoPlaybackAbrRequest` body, carrying
    /// `token` (raw bytes) in `streamer_context.po_token`.
    pub fn next_request(&mut self, token: Option<&[u8]>) -> (String, Vec<u8>) {
        // `rn` counts from 0, retries included (gv `makeStreamingRequest`, yt-dlp's SABR
        // processor).
        let rn = self.rn;
        self.rn += 1;
        self.protection = None;
        self.reload = None;
        self.progressed = false;
        let ours = Self::format_id(&self.gw.format);
        let companion = self.gw.companion.as_ref().map(Self::format_id);
        let mut buffered_ranges = Vec::new();
        if let Some(b) = self.buffered {
            buffered_ranges.push(proto::BufferedRange {
                format_id: Some(ours.clone()),
                start_time_ms: Some(b.start_ms),
                duration_ms: Some(b.end_ms - b.start_ms),
                start_segment_index: Some(b.first_seq),
                end_segment_index: Some(b.last_seq),
                time_range: None,
            });
        }
        if let Some(c) = &companion {
            buffered_ranges.push(proto::BufferedRange {
                format_id: Some(c.clone()),
                start_time_ms: Some(0),
                duration_ms: Some(i64::from(proto::FULLY_BUFFERED_SEGMENT)),
                start_segment_index: Some(proto::FULLY_BUFFERED_SEGMENT),
                end_segment_index: Some(proto::FULLY_BUFFERED_SEGMENT),
                time_range: Some(proto::TimeRange {
                    start_ticks: Some(0),
                    duration_ticks: Some(i64::from(proto::FULLY_BUFFERED_SEGMENT)),
                    timescale: Some(1000),
                }),
            });
        }
        let (audio, video) = if self.gw.audio {
            (vec![ours.clone()], companion.clone().into_iter().collect())
        } else {
            (companion.clone().into_iter().collect(), vec![ours.clone()])
        };
        // The discarded companion is selected from the start, the chosen format once its
        // FORMAT_INITIALIZATION_METADATA came (gv `prepareFormatSelections`).
        let mut selected: Vec<_> = companion.clone().into_iter().collect();
        if self.initialized {
            selected.push(ours.clone());
        }
        let sabr_contexts = self
            .contexts
            .iter()
            .filter(|(t, _)| self.sending.contains(t))
            .map(|(t, u)| proto::SabrContext {
                r#type: Some(*t),
                value: u.value.clone(),
            })
            .collect();
        let unsent_sabr_contexts = self
            .contexts
            .keys()
            .filter(|t| !self.sending.contains(t))
            .copied()
            .collect();
        let request = proto::VideoPlaybackAbrRequest {
            client_abr_state: Some(proto::ClientAbrState {
                player_time_ms: Some(self.time_ms),
                enabled_track_types_bitfield: Some(if self.gw.audio {
                    proto::track_types::AUDIO_ONLY
                } else {
                    proto::track_types::VIDEO_ONLY
                }),
                ..Default::default()
            }),
            selected_format_ids: selected,
            buffered_ranges,
            // The position travels in the ABR state only, as the reference clients send it.
            player_time_ms: None,
            video_playback_ustreamer_config: Some(self.gw.ustreamer_config.clone()),
            preferred_audio_format_ids: audio,
            preferred_video_format_ids: video,
            preferred_subtitle_format_ids: Vec::new(),
            streamer_context: Some(proto::StreamerContext {
                client_info: Some(proto::ClientInfo {
                    client_name: proto::client_name::id(&self.gw.client),
                    client_version: self.gw.client_version.clone(),
                    ..Default::default()
                }),
                po_token: token.map(<[u8]>::to_vec),
                playback_cookie: self.cookie.clone(),
                sabr_contexts,
                unsent_sabr_contexts,
            }),
        };
        let url = with_query_param(&self.url, "rn", &rn.to_string());
        (url, request.encode_to_vec())
    }

    /// Feeds one event of the response being read.
    pub fn on_event(&mut self, event: Event) -> Step {
        match event {
            Event::Media { header_id, data } => self.on_media(header_id, data),
            Event::Oversized { .. } => Step::default(),
            Event::Part(p) => match self.on_part(p.part_type, &p.payload) {
                Ok(()) => Step::default(),
                Err(f) => Step {
                    emit: None,
                    halt: Some(Halt::Failed(f)),
                },
            },
        }
    }

    fn on_media(&mut self, header_id: u8, data: Bytes) -> Step {
        let Some(seg) = self.open.get_mut(&header_id) else {
            return Step::default();
        };
        let off = seg.start + seg.received;
        seg.received += data.len() as u64;
        if !seg.ours {
            return Step::default();
        }
        let end = off + data.len() as u64;
        if off > self.pos {
            let halt = if self.pos == self.start && !seg.init {
                self.first_seen = Some(off);
                Halt::Overshot
            } else {
                Halt::Failed(SabrFailure::Gap {
                    wanted: self.pos,
                    got: off,
                })
            };
            return Step {
                emit: None,
                halt: Some(halt),
            };
        }
        if end <= self.pos {
            return Step::default();
        }
        let from = (self.pos - off) as usize;
        let to = (end.min(self.last + 1) - off) as usize;
        self.pos = off + to as u64;
        self.progressed = true;
        Step {
            emit: Some(data.slice(from..to)),
            halt: self.is_done().then_some(Halt::Done),
        }
    }

    fn on_part(&mut self, part_type: u64, payload: &[u8]) -> Result<(), SabrFailure> {
        let bad = || SabrFailure::Malformed { part_type };
        match part_type {
            part::MEDIA_HEADER => {
                let h = proto::MediaHeader::decode(payload).map_err(|_| bad())?;
                let ours = h.itag == Some(self.gw.format.itag as i32)
                    && h.lmt.is_none_or(|l| l == self.gw.format.lmt);
                let init = h.is_init_seg.unwrap_or(false);
                let start = match (h.start_range, init) {
                    (Some(s), _) => u64::try_from(s).map_err(|_| SabrFailure::Unplaceable)?,
                    (None, true) => 0,
                    (None, false) if ours => return Err(SabrFailure::Unplaceable),
                    (None, false) => 0,
                };
                let id = h.header_id.unwrap_or(0) as u8;
                self.open.insert(
                    id,
                    Segment {
                        ours,
                        init,
                        start,
                        received: 0,
                        length: h.content_length.and_then(|l| u64::try_from(l).ok()),
                        sequence: h.sequence_number,
                        start_ms: h.start_ms,
                        duration_ms: h.duration_ms,
                    },
                );
            }
            part::MEDIA_END => {
                let id = payload.first().copied().unwrap_or(0);
                if let Some(seg) = self.open.remove(&id) {
                    if seg.ours {
                        self.segment_done(&seg)?;
                    }
                }
            }
            part::FORMAT_INITIALIZATION_METADATA => {
                let m = proto::FormatInitializationMetadata::decode(payload).map_err(|_| bad())?;
                if m.format_id.as_ref().and_then(|f| f.itag) == Some(self.gw.format.itag as i32) {
                    self.initialized = true;
                    self.end_segment = m.end_segment_number;
                }
            }
            part::NEXT_REQUEST_POLICY => {
                let p = proto::NextRequestPolicy::decode(payload).map_err(|_| bad())?;
                if let Some(c) = p.playback_cookie {
                    self.cookie = Some(c);
                }
                self.backoff_ms = p.backoff_time_ms.unwrap_or(0).max(0) as u64;
            }
            part::SABR_REDIRECT => {
                let r = proto::SabrRedirect::decode(payload).map_err(|_| bad())?;
                let url = r.url.ok_or(SabrFailure::BadRedirect)?;
                if !super::gateway::is_googlevideo_https(&url) {
                    return Err(SabrFailure::BadRedirect);
                }
                self.url = url;
            }
            part::SABR_ERROR => {
                let e = proto::SabrError::decode(payload).map_err(|_| bad())?;
                return Err(SabrFailure::Server {
                    kind: e.r#type.unwrap_or_default(),
                    code: e.code.unwrap_or(0),
                });
            }
            part::STREAM_PROTECTION_STATUS => {
                let s = proto::StreamProtectionStatus::decode(payload).map_err(|_| bad())?;
                let status = s.status.unwrap_or(1);
                self.protection = Some(self.protection.map_or(status, |p| p.max(status)));
            }
            part::RELOAD_PLAYER_RESPONSE => {
                let r = proto::ReloadPlaybackContext::decode(payload).map_err(|_| bad())?;
                self.reload = Some(r.reload_playback_params.and_then(|p| p.token));
            }
            part::SABR_CONTEXT_UPDATE => {
                let u = proto::SabrContextUpdate::decode(payload).map_err(|_| bad())?;
                let Some(t) = u.r#type else { return Ok(()) };
                let keep = u.write_policy == Some(proto::write_policy::KEEP_EXISTING)
                    && self.contexts.contains_key(&t);
                if !keep {
                    if u.send_by_default == Some(true) {
                        self.sending.insert(t);
                    }
                    self.contexts.insert(t, u);
                }
            }
            part::SABR_CONTEXT_SENDING_POLICY => {
                let p = proto::SabrContextSendingPolicy::decode(payload).map_err(|_| bad())?;
                self.sending.extend(p.start_policy);
                for t in p.stop_policy {
                    self.sending.remove(&t);
                }
                for t in p.discard_policy {
                    self.contexts.remove(&t);
                    self.sending.remove(&t);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn segment_done(&mut self, seg: &Segment) -> Result<(), SabrFailure> {
        if let Some(said) = seg.length {
            if said != seg.received {
                return Err(SabrFailure::SegmentLength {
                    got: seg.received,
                    said,
                });
            }
        }
        if seg.init {
            return Ok(());
        }
        let (Some(seq), Some(start_ms)) = (seg.sequence, seg.start_ms) else {
            return Ok(());
        };
        let end_ms = start_ms + seg.duration_ms.unwrap_or(0);
        let before = self.buffered;
        self.buffered = Some(match self.buffered {
            Some(b) if seq == b.last_seq + 1 => Buffered {
                last_seq: seq,
                end_ms,
                ..b
            },
            Some(b) if seq <= b.last_seq && seq >= b.first_seq => b,
            _ => Buffered {
                first_seq: seq,
                last_seq: seq,
                start_ms,
                end_ms,
            },
        });
        self.time_ms = self.time_ms.max(end_ms);
        self.progressed |= self.buffered != before;
        Ok(())
    }

    /// After a response was read to its end, or halted with `halt`.
    pub fn after_response(&mut self, halt: Option<&Halt>) -> Next {
        // Parts of a response cut short never completed.
        self.open.clear();
        let backoff = Duration::from_millis(self.backoff_ms);
        match halt {
            Some(Halt::Done) => return Next::Done,
            Some(Halt::Failed(f)) => return Next::Failed(f.clone()),
            Some(Halt::Overshot) => {
                self.seeks += 1;
                if self.seeks > MAX_SEEKS + 1 {
                    // Even from the start the media begins after the wanted byte.
                    return Next::Failed(SabrFailure::Gap {
                        wanted: self.pos,
                        got: self.first_seen.unwrap_or(self.pos),
                    });
                }
                self.buffered = None;
                self.time_ms = if self.seeks > MAX_SEEKS {
                    0
                } else {
                    let step = 5_000i64 << self.seeks;
                    (self.time_ms - step).max(0)
                };
                return Next::Request { backoff };
            }
            None => {}
        }
        if self.is_done() {
            return Next::Done;
        }
        if let Some(token) = self.reload.take() {
            return Next::Reload { token };
        }
        match self.protection {
            // Media still came: the token goes on this request, a better one on the next
            // (googlevideo's client fails an attempt only on 2 with no media).
            Some(2) if self.progressed => return Next::Refresh { backoff },
            Some(status @ 2..) => return Next::Refused { status, backoff },
            _ => {}
        }
        let ended = matches!((self.end_segment, self.buffered), (Some(end), Some(b)) if i64::from(b.last_seq) >= end);
        if ended {
            return Next::Failed(SabrFailure::Short {
                at: self.pos,
                content_length: self.gw.content_length,
            });
        }
        if self.progressed {
            self.idle = 0;
        } else {
            self.idle += 1;
            if self.idle >= MAX_IDLE_RESPONSES {
                return Next::Failed(SabrFailure::Stalled {
                    requests: self.idle,
                });
            }
        }
        Next::Request { backoff }
    }

    /// Starts a new SABR session from where the bytes stopped (after a SABR_ERROR): no
    /// cookie, no contexts, the format not initialized, the player time at the next byte's
    /// place. The URL (redirects followed) and the request numbers go on.
    pub fn restart(&mut self) {
        self.cookie = None;
        self.backoff_ms = 0;
        self.contexts.clear();
        self.sending.clear();
        self.initialized = false;
        self.open.clear();
        self.buffered = None;
        self.seeks = 0;
        self.idle = 0;
        self.start = self.pos;
        self.time_ms = seek_time(self.pos, self.gw.content_length, self.gw.duration_ms);
    }

    /// A new player response's SABR URL and config (after RELOAD_PLAYER_RESPONSE): the
    /// session goes on from where its bytes stopped.
    pub fn reloaded(&mut self, sabr_url: String, ustreamer_config: Vec<u8>) {
        self.gw.sabr_url = sabr_url;
        self.gw.ustreamer_config = ustreamer_config;
        // The client's solved `n` answered the old URL's challenge, not the new one's.
        self.gw.n = None;
        self.gw.n_original = None;
        self.url = self.gw.sabr_url();
        self.cookie = None;
    }
}

/// The player time to start at for byte `first`: proportional to its place in the file, a few
/// seconds early (segments start before the byte), zero at the start.
pub fn seek_time(first: u64, content_length: u64, duration_ms: u64) -> i64 {
    if first == 0 || content_length == 0 {
        return 0;
    }
    let t = (u128::from(first) * u128::from(duration_ms) / u128::from(content_length)) as i64;
    (t - 3_000).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ump::{Reader, encode_varint};

    fn gw(clen: u64) -> Gateway {
        Gateway {
            sabr_url: "https://rr1---sn-a.googlevideo.com/videoplayback?ei=E&sabr=1".into(),
            ustreamer_config: vec![1, 2, 3],
            video_id: "vid".into(),
            format: FormatRef {
                itag: 140,
                lmt: 77,
                xtags: None,
            },
            audio: true,
            companion: Some(FormatRef {
                itag: 160,
                lmt: 88,
                xtags: None,
            }),
            content_length: clen,
            duration_ms: 10_000,
            mime: "audio/mp4".into(),
            client: "WEB".into(),
            client_version: Some("2.1".into()),
            n: None,
            n_original: None,
        }
    }

    fn ump(t: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_varint(t, &mut v);
        encode_varint(payload.len() as u64, &mut v);
        v.extend_from_slice(payload);
        v
    }

    /// A response with segments `(seq, start_byte, bytes)` of itag 140, each 1 s long.
    fn response(segs: &[(i32, u64, Vec<u8>)], extra: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, p) in extra {
            out.extend(ump(*t, p));
        }
        for (i, (seq, start, bytes)) in segs.iter().enumerate() {
            let id = i as u32 + 1;
            let h = proto::MediaHeader {
                header_id: Some(id),
                itag: Some(140),
                lmt: Some(77),
                start_range: Some(*start as i64),
                is_init_seg: Some(*seq == 0),
                sequence_number: Some(*seq),
                start_ms: Some(i64::from(*seq - 1) * 1000),
                duration_ms: Some(1000),
                content_length: Some(bytes.len() as i64),
                ..Default::default()
            };
            out.extend(ump(part::MEDIA_HEADER, &h.encode_to_vec()));
            let mut m = vec![id as u8];
            m.extend(bytes);
            out.extend(ump(part::MEDIA, &m));
            out.extend(ump(part::MEDIA_END, &[id as u8]));
        }
        out
    }

    fn obj(start: u64, len: u64) -> Vec<u8> {
        (start..start + len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Feeds a whole response; returns the bytes emitted and the halt.
    fn feed(p: &mut Pull, body: &[u8]) -> (Vec<u8>, Option<Halt>) {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for chunk in body.chunks(7) {
            for e in r.feed(Bytes::copy_from_slice(chunk)) {
                let s = p.on_event(e);
                if let Some(b) = s.emit {
                    out.extend_from_slice(&b);
                }
                if s.halt.is_some() {
                    return (out, s.halt);
                }
            }
        }
        (out, None)
    }

    fn decode(body: &[u8]) -> proto::VideoPlaybackAbrRequest {
        proto::VideoPlaybackAbrRequest::decode(body).unwrap()
    }

    #[test]
    fn the_init_segment_then_media_segments_make_the_progressive_bytes() {
        let mut p = Pull::new(gw(300), 0, 299);
        let (url, body) = p.next_request(Some(b"tok"));
        assert!(url.ends_with("&rn=0"));
        let req = decode(&body);
        assert_eq!(
            req.streamer_context.as_ref().unwrap().po_token.as_deref(),
            Some(&b"tok"[..])
        );
        let itags = |r: &proto::VideoPlaybackAbrRequest| {
            r.selected_format_ids
                .iter()
                .map(|f| f.itag.unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            itags(&req),
            [160],
            "the companion only, until 140 is initialized"
        );
        let fim = proto::FormatInitializationMetadata {
            format_id: Some(Pull::format_id(&p.gw.format)),
            end_segment_number: Some(3),
            ..Default::default()
        };
        let nrp = proto::NextRequestPolicy {
            backoff_time_ms: Some(40),
            playback_cookie: Some(vec![9, 9]),
            ..Default::default()
        };
        let r1 = response(
            &[(0, 0, obj(0, 100)), (1, 100, obj(100, 100))],
            &[
                (part::FORMAT_INITIALIZATION_METADATA, fim.encode_to_vec()),
                (part::NEXT_REQUEST_POLICY, nrp.encode_to_vec()),
            ],
        );
        let (got, halt) = feed(&mut p, &r1);
        assert_eq!(halt, None);
        assert_eq!(got, obj(0, 200));
        assert_eq!(
            p.after_response(None),
            Next::Request {
                backoff: Duration::from_millis(40)
            }
        );
        let (url, body) = p.next_request(Some(b"tok"));
        assert!(url.ends_with("&rn=1"));
        let req = decode(&body);
        let sc = req.streamer_context.clone().unwrap();
        assert_eq!(sc.playback_cookie.as_deref(), Some(&[9u8, 9][..]));
        assert_eq!(itags(&req), [160, 140]);
        assert_eq!(req.client_abr_state.unwrap().player_time_ms, Some(1000));
        let ours = &req.buffered_ranges[0];
        assert_eq!(
            (ours.start_segment_index, ours.end_segment_index),
            (Some(1), Some(1))
        );
        assert_eq!(
            req.buffered_ranges[1].start_segment_index,
            Some(proto::FULLY_BUFFERED_SEGMENT)
        );
        let (got, halt) = feed(&mut p, &response(&[(2, 200, obj(200, 100))], &[]));
        assert_eq!(got, obj(200, 100));
        assert_eq!(halt, Some(Halt::Done));
        assert_eq!(p.after_response(halt.as_ref()), Next::Done);
    }

    #[test]
    fn a_range_mid_file_skips_what_comes_before_it_and_stops_at_its_end() {
        let mut p = Pull::new(gw(300), 150, 249);
        let _ = p.next_request(None);
        let r = response(
            &[
                (0, 0, obj(0, 100)),
                (1, 100, obj(100, 100)),
                (2, 200, obj(200, 100)),
            ],
            &[],
        );
        let (got, halt) = feed(&mut p, &r);
        assert_eq!(got, obj(150, 100));
        assert_eq!(halt, Some(Halt::Done));
    }

    #[test]
    fn media_starting_after_the_wanted_byte_seeks_earlier_and_never_emits_past_a_gap() {
        let mut p = Pull::new(gw(10_000), 5_000, 9_999);
        let (_, body) = p.next_request(None);
        let t0 = decode(&body)
            .client_abr_state
            .unwrap()
            .player_time_ms
            .unwrap();
        assert_eq!(t0, 2_000, "5000 of 10000 bytes of 10 s, 3 s early");
        let (got, halt) = feed(&mut p, &response(&[(3, 6_000, obj(6_000, 10))], &[]));
        assert!(got.is_empty());
        assert_eq!(halt, Some(Halt::Overshot));
        assert!(matches!(
            p.after_response(halt.as_ref()),
            Next::Request { .. }
        ));
        let (_, body) = p.next_request(None);
        let t1 = decode(&body)
            .client_abr_state
            .unwrap()
            .player_time_ms
            .unwrap();
        assert!(t1 < t0);
        // Once bytes went out, a gap is a failure, not a seek.
        let mut p = Pull::new(gw(300), 0, 299);
        let _ = p.next_request(None);
        let (got, halt) = feed(
            &mut p,
            &response(&[(0, 0, obj(0, 100)), (2, 200, obj(200, 100))], &[]),
        );
        assert_eq!(got, obj(0, 100));
        assert_eq!(
            halt,
            Some(Halt::Failed(SabrFailure::Gap {
                wanted: 100,
                got: 200
            }))
        );
    }

    #[test]
    fn media_that_starts_after_the_wanted_byte_even_from_zero_fails_instead_of_looping() {
        let mut p = Pull::new(gw(10_000), 5_000, 9_999);
        let mut last = None;
        for _ in 0..=MAX_SEEKS + 1 {
            let _ = p.next_request(None);
            let (_, halt) = feed(&mut p, &response(&[(3, 6_000, obj(6_000, 10))], &[]));
            last = Some(p.after_response(halt.as_ref()));
        }
        assert_eq!(
            last,
            Some(Next::Failed(SabrFailure::Gap {
                wanted: 5_000,
                got: 6_000
            }))
        );
    }

    #[test]
    fn protection_status_redirects_errors_and_reloads_decide_the_next_step() {
        let sps = |s| {
            (
                part::STREAM_PROTECTION_STATUS,
                proto::StreamProtectionStatus {
                    status: Some(s),
                    max_retries: None,
                }
                .encode_to_vec(),
            )
        };
        let mut p = Pull::new(gw(300), 0, 299);
        let _ = p.next_request(None);
        let _ = feed(&mut p, &response(&[], &[sps(3)]));
        assert!(matches!(
            p.after_response(None),
            Next::Refused { status: 3, .. }
        ));

        let redirect = proto::SabrRedirect {
            url: Some("https://rr9---sn-b.googlevideo.com/videoplayback?sabr=1&ei=E".into()),
        };
        let _ = p.next_request(None);
        let _ = feed(
            &mut p,
            &response(
                &[(0, 0, obj(0, 10))],
                &[(part::SABR_REDIRECT, redirect.encode_to_vec())],
            ),
        );
        assert!(matches!(p.after_response(None), Next::Request { .. }));
        let (url, _) = p.next_request(None);
        assert!(
            url.starts_with("https://rr9---sn-b.googlevideo.com/"),
            "{url}"
        );

        let evil = proto::SabrRedirect {
            url: Some("https://evil.example/x".into()),
        };
        let (_, halt) = feed(
            &mut p,
            &response(&[], &[(part::SABR_REDIRECT, evil.encode_to_vec())]),
        );
        assert_eq!(halt, Some(Halt::Failed(SabrFailure::BadRedirect)));

        let err = proto::SabrError {
            r#type: Some("sabr.malformed_config".into()),
            code: Some(3),
        };
        let _ = p.next_request(None);
        let (_, halt) = feed(
            &mut p,
            &response(&[], &[(part::SABR_ERROR, err.encode_to_vec())]),
        );
        assert!(matches!(
            halt,
            Some(Halt::Failed(SabrFailure::Server { code: 3, .. }))
        ));

        let reload = proto::ReloadPlaybackContext {
            reload_playback_params: Some(proto::ReloadPlaybackParams {
                token: Some("rt".into()),
            }),
        };
        let _ = p.next_request(None);
        let _ = feed(
            &mut p,
            &response(
                &[],
                &[(part::RELOAD_PLAYER_RESPONSE, reload.encode_to_vec())],
            ),
        );
        assert_eq!(
            p.after_response(None),
            Next::Reload {
                token: Some("rt".into())
            }
        );
    }

    #[test]
    fn a_restarted_session_asks_again_from_where_the_bytes_stopped() {
        let mut p = Pull::new(gw(10_000), 0, 9_999);
        let _ = p.next_request(None);
        let nrp = proto::NextRequestPolicy {
            playback_cookie: Some(vec![1]),
            ..Default::default()
        };
        let (got, _) = feed(
            &mut p,
            &response(
                &[(0, 0, obj(0, 100)), (1, 100, obj(100, 4_900))],
                &[(part::NEXT_REQUEST_POLICY, nrp.encode_to_vec())],
            ),
        );
        assert_eq!(got.len(), 5_000);
        p.after_response(None);
        p.restart();
        let (_, body) = p.next_request(None);
        let req = decode(&body);
        assert_eq!(req.streamer_context.unwrap().playback_cookie, None);
        assert!(
            req.buffered_ranges
                .iter()
                .all(|b| b.format_id.as_ref().unwrap().itag != Some(140))
        );
        let t = req.client_abr_state.unwrap().player_time_ms.unwrap();
        assert_eq!(t, 2_000, "byte 5000 of 10000 over 10 s, 3 s early");
        // The new session's first media begins after byte 5000: seek, not a gap.
        let (got, halt) = feed(&mut p, &response(&[(6, 5_500, obj(5_500, 10))], &[]));
        assert!(got.is_empty());
        assert_eq!(halt, Some(Halt::Overshot));
        // Media from before byte 5000 is skipped up to it.
        p.after_response(halt.as_ref());
        let _ = p.next_request(None);
        let (got, _) = feed(&mut p, &response(&[(5, 4_000, obj(4_000, 2_000))], &[]));
        assert_eq!(got, obj(5_000, 1_000));
    }

    #[test]
    fn status_2_with_media_refreshes_the_token_and_without_media_is_a_refusal() {
        let sps2 = (
            part::STREAM_PROTECTION_STATUS,
            proto::StreamProtectionStatus {
                status: Some(2),
                max_retries: None,
            }
            .encode_to_vec(),
        );
        let mut p = Pull::new(gw(300), 0, 299);
        let _ = p.next_request(None);
        let _ = feed(
            &mut p,
            &response(&[(0, 0, obj(0, 100))], std::slice::from_ref(&sps2)),
        );
        assert!(matches!(p.after_response(None), Next::Refresh { .. }));
        let _ = p.next_request(None);
        let _ = feed(&mut p, &response(&[], &[sps2]));
        assert!(matches!(
            p.after_response(None),
            Next::Refused { status: 2, .. }
        ));
    }

    #[test]
    fn a_reloaded_session_drops_the_n_solved_for_the_old_url() {
        let mut g = gw(300);
        g.sabr_url = "https://rr1---sn-a.googlevideo.com/videoplayback?n=old&sabr=1".into();
        g.n = Some("solved".into());
        g.n_original = Some("old".into());
        let mut p = Pull::new(g, 0, 299);
        assert!(p.url().contains("n=solved"));
        p.reloaded(
            "https://rr1---sn-a.googlevideo.com/videoplayback?n=new&sabr=1".into(),
            vec![9],
        );
        assert!(p.url().contains("n=new"), "{}", p.url());
    }

    #[test]
    fn contexts_are_sent_while_active_and_stop_when_the_policy_says() {
        let mut p = Pull::new(gw(300), 0, 299);
        let _ = p.next_request(None);
        let update = proto::SabrContextUpdate {
            r#type: Some(5),
            value: Some(vec![1, 2]),
            send_by_default: Some(true),
            ..Default::default()
        };
        let quiet = proto::SabrContextUpdate {
            r#type: Some(6),
            value: Some(vec![3]),
            ..Default::default()
        };
        let _ = feed(
            &mut p,
            &response(
                &[(0, 0, obj(0, 5))],
                &[
                    (part::SABR_CONTEXT_UPDATE, update.encode_to_vec()),
                    (part::SABR_CONTEXT_UPDATE, quiet.encode_to_vec()),
                ],
            ),
        );
        p.after_response(None);
        let (_, body) = p.next_request(None);
        let sc = decode(&body).streamer_context.unwrap();
        assert_eq!(sc.sabr_contexts.len(), 1);
        assert_eq!(sc.sabr_contexts[0].r#type, Some(5));
        assert_eq!(sc.unsent_sabr_contexts, vec![6]);
        let policy = proto::SabrContextSendingPolicy {
            start_policy: vec![6],
            stop_policy: vec![5],
            discard_policy: vec![],
        };
        let _ = feed(
            &mut p,
            &response(
                &[(1, 5, obj(5, 5))],
                &[(part::SABR_CONTEXT_SENDING_POLICY, policy.encode_to_vec())],
            ),
        );
        p.after_response(None);
        let (_, body) = p.next_request(None);
        let sc = decode(&body).streamer_context.unwrap();
        assert_eq!(sc.sabr_contexts[0].r#type, Some(6));
        assert_eq!(sc.unsent_sabr_contexts, vec![5]);
    }

    #[test]
    fn a_segment_shorter_than_its_header_says_fails_the_stream() {
        let mut p = Pull::new(gw(300), 0, 299);
        let _ = p.next_request(None);
        // A header that claims 11 bytes for 10.
        let h = proto::MediaHeader {
            header_id: Some(1),
            itag: Some(140),
            start_range: Some(0),
            is_init_seg: Some(true),
            content_length: Some(11),
            ..Default::default()
        };
        let body = [
            ump(part::MEDIA_HEADER, &h.encode_to_vec()),
            {
                let mut m = vec![1u8];
                m.extend(obj(0, 10));
                ump(part::MEDIA, &m)
            },
            ump(part::MEDIA_END, &[1]),
        ]
        .concat();
        let (_, halt) = feed(&mut p, &body);
        assert_eq!(
            halt,
            Some(Halt::Failed(SabrFailure::SegmentLength {
                got: 10,
                said: 11
            }))
        );
    }

    #[test]
    fn responses_without_the_formats_media_end_the_stream_after_a_few() {
        let mut p = Pull::new(gw(300), 0, 299);
        let mut last = None;
        for _ in 0..MAX_IDLE_RESPONSES {
            let _ = p.next_request(None);
            last = Some(p.after_response(None));
        }
        assert!(matches!(
            last,
            Some(Next::Failed(SabrFailure::Stalled { .. }))
        ));
    }
}
