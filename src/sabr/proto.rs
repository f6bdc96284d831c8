//! The SABR protocol's protobuf messages, as `prost` types: the request a SABR client POSTs
//! (`VideoPlaybackAbrRequest` and what it carries) and the payloads of the UMP parts googlevideo
//! answers with, plus the UMP part ids. Field numbers and scalar types follow LuanRT/googlevideo's
//! reverse-engineered schema (`protos/video_streaming/*.proto`, `protos/misc/common.proto`, all
//! proto2), so every field is optional here and an absent field reads as `None`.
//!
//! Only the fields a SABR client and the test fake use are declared; prost drops the rest when
//! decoding, which is why the forwarding path edits request bodies at the wire level
//! ([`crate::rewrite`]) and never re-encodes through these types. Enumerations are kept as plain
//! `i32` so an unknown value still decodes.

/// UMP part ids (LuanRT/googlevideo `protos/video_streaming/ump_part_id.proto`), in the same
/// integer type as [`crate::ump`]'s part types.
pub mod part {
    /// Opens a media segment: [`super::MediaHeader`].
    pub const MEDIA_HEADER: u64 = 20;
    /// Segment bytes: one byte of `header_id`, then data.
    pub const MEDIA: u64 = 21;
    /// Closes a segment: one byte of `header_id`.
    pub const MEDIA_END: u64 = 22;
    /// [`super::NextRequestPolicy`].
    pub const NEXT_REQUEST_POLICY: u64 = 35;
    /// [`super::FormatInitializationMetadata`].
    pub const FORMAT_INITIALIZATION_METADATA: u64 = 42;
    /// [`super::SabrRedirect`].
    pub const SABR_REDIRECT: u64 = 43;
    /// [`super::SabrError`].
    pub const SABR_ERROR: u64 = 44;
    /// [`super::SabrSeek`].
    pub const SABR_SEEK: u64 = 45;
    /// [`super::ReloadPlaybackContext`].
    pub const RELOAD_PLAYER_RESPONSE: u64 = 46;
    /// [`super::SabrContextUpdate`].
    pub const SABR_CONTEXT_UPDATE: u64 = 57;
    /// [`super::StreamProtectionStatus`].
    pub const STREAM_PROTECTION_STATUS: u64 = 58;
    /// [`super::SabrContextSendingPolicy`].
    pub const SABR_CONTEXT_SENDING_POLICY: u64 = 59;
    /// Debug text; no client acts on it.
    pub const PLAYBACK_DEBUG_INFO: u64 = 66;
    /// A notification for the user; no client acts on it.
    pub const SNACKBAR_MESSAGE: u64 = 67;
}

/// `ClientAbrState.enabled_track_types_bitfield` values (LuanRT/googlevideo
/// `src/utils/shared.ts` `EnabledTrackTypes`).
pub mod track_types {
    pub const AUDIO_AND_VIDEO: i32 = 0;
    pub const AUDIO_ONLY: i32 = 1;
    pub const VIDEO_ONLY: i32 = 2;
}

/// InnerTube client names as `ClientInfo.client_name` numbers them (youtubei.js
/// `Constants.CLIENT_NAME_IDS`).
pub mod client_name {
    const IDS: &[(&str, i32)] = &[
        ("WEB", 1),
        ("MWEB", 2),
        ("ANDROID", 3),
        ("IOS", 5),
        ("TVHTML5", 7),
        ("ANDROID_CREATOR", 14),
        ("ANDROID_MUSIC", 21),
        ("ANDROID_VR", 28),
        ("WEB_EMBEDDED_PLAYER", 56),
        ("WEB_CREATOR", 62),
        ("WEB_REMIX", 67),
        ("TVHTML5_SIMPLY", 74),
        ("WEB_KIDS", 76),
        ("TVHTML5_SIMPLY_EMBEDDED_PLAYER", 85),
        ("VISIONOS", 101),
    ];

    /// The number of a `context.client.clientName`, `None` for a name not in the table.
    pub fn id(name: &str) -> Option<i32> {
        IDS.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
    }
}

/// The segment index a client announces for a format it does not want: "buffered to the end"
/// (LuanRT/googlevideo `src/utils/shared.ts` `MAX_INT32_VALUE`).
pub const FULLY_BUFFERED_SEGMENT: i32 = i32::MAX;

/// `misc.FormatId`: a format as SABR names it. `last_modified` is the player response's
/// `lastModified` (the URL's `lmt`), `xtags` its `xtags` (absent for most formats).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FormatId {
    #[prost(int32, optional, tag = "1")]
    pub itag: Option<i32>,
    #[prost(uint64, optional, tag = "2")]
    pub last_modified: Option<u64>,
    #[prost(string, optional, tag = "3")]
    pub xtags: Option<String>,
}

/// `misc.Range`: a byte range, both ends inclusive (`initRange` / `indexRange`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Range {
    #[prost(int32, optional, tag = "1")]
    pub legacy_start: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub legacy_end: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub start: Option<i32>,
    #[prost(int32, optional, tag = "4")]
    pub end: Option<i32>,
}

/// `video_streaming.TimeRange`: a span in ticks of `timescale` per second.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeRange {
    #[prost(int64, optional, tag = "1")]
    pub start_ticks: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub duration_ticks: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    pub timescale: Option<i32>,
}

/// `video_streaming.VideoPlaybackAbrRequest`: the body of every SABR POST.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VideoPlaybackAbrRequest {
    #[prost(message, optional, tag = "1")]
    pub client_abr_state: Option<ClientAbrState>,
    /// Formats the client has initialized (received part 42 for), plus a format it announces as
    /// fully buffered because it does not want it.
    #[prost(message, repeated, tag = "2")]
    pub selected_format_ids: Vec<FormatId>,
    #[prost(message, repeated, tag = "3")]
    pub buffered_ranges: Vec<BufferedRange>,
    /// Top-level player time; `SabrStream` leaves it unset and uses
    /// `client_abr_state.player_time_ms`.
    #[prost(int64, optional, tag = "4")]
    pub player_time_ms: Option<i64>,
    /// The base64-decoded `videoPlaybackUstreamerConfig` of the player response.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub video_playback_ustreamer_config: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "16")]
    pub preferred_audio_format_ids: Vec<FormatId>,
    #[prost(message, repeated, tag = "17")]
    pub preferred_video_format_ids: Vec<FormatId>,
    #[prost(message, repeated, tag = "18")]
    pub preferred_subtitle_format_ids: Vec<FormatId>,
    #[prost(message, optional, tag = "19")]
    pub streamer_context: Option<StreamerContext>,
}

/// `video_streaming.ClientAbrState`: the fields `SabrStream` sets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientAbrState {
    #[prost(int32, optional, tag = "21")]
    pub sticky_resolution: Option<i32>,
    #[prost(bool, optional, tag = "22")]
    pub client_viewport_is_flexible: Option<bool>,
    /// Where playback (the download) stands: the summed duration of the main format's received
    /// segments, or a seek target.
    #[prost(int64, optional, tag = "28")]
    pub player_time_ms: Option<i64>,
    #[prost(int32, optional, tag = "34")]
    pub visibility: Option<i32>,
    #[prost(float, optional, tag = "35")]
    pub playback_rate: Option<f32>,
    /// [`track_types`]: 0 audio and video, 1 audio only, 2 video only.
    #[prost(int32, optional, tag = "40")]
    pub enabled_track_types_bitfield: Option<i32>,
    #[prost(bool, optional, tag = "46")]
    pub drc_enabled: Option<bool>,
    #[prost(string, optional, tag = "69")]
    pub audio_track_id: Option<String>,
}

/// `video_streaming.BufferedRange`: segments of one format the client holds. Declared `required`
/// in the schema, but the reference encoder omits zero values, so they are optional here.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BufferedRange {
    #[prost(message, optional, tag = "1")]
    pub format_id: Option<FormatId>,
    #[prost(int64, optional, tag = "2")]
    pub start_time_ms: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub duration_ms: Option<i64>,
    #[prost(int32, optional, tag = "4")]
    pub start_segment_index: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    pub end_segment_index: Option<i32>,
    #[prost(message, optional, tag = "6")]
    pub time_range: Option<TimeRange>,
}

/// `video_streaming.StreamerContext` (request field 19): who asks, with which token.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamerContext {
    #[prost(message, optional, tag = "1")]
    pub client_info: Option<ClientInfo>,
    /// The PO token's raw bytes (base64-decoded), not its text.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub po_token: Option<Vec<u8>>,
    /// The last NEXT_REQUEST_POLICY's `playback_cookie`, as bytes.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub playback_cookie: Option<Vec<u8>>,
    /// Contexts from SABR_CONTEXT_UPDATE whose type is active (sent).
    #[prost(message, repeated, tag = "5")]
    pub sabr_contexts: Vec<SabrContext>,
    /// Types of contexts held but not active.
    #[prost(int32, repeated, packed = "false", tag = "6")]
    pub unsent_sabr_contexts: Vec<i32>,
}

/// `StreamerContext.ClientInfo`: the InnerTube client, with its name as the numeric id
/// ([`client_name::id`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientInfo {
    #[prost(string, optional, tag = "12")]
    pub device_make: Option<String>,
    #[prost(string, optional, tag = "13")]
    pub device_model: Option<String>,
    #[prost(int32, optional, tag = "16")]
    pub client_name: Option<i32>,
    #[prost(string, optional, tag = "17")]
    pub client_version: Option<String>,
    #[prost(string, optional, tag = "18")]
    pub os_name: Option<String>,
    #[prost(string, optional, tag = "19")]
    pub os_version: Option<String>,
    #[prost(string, optional, tag = "21")]
    pub accept_language: Option<String>,
    #[prost(string, optional, tag = "22")]
    pub accept_region: Option<String>,
}

/// `StreamerContext.SabrContext`: a context sent back to the server.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrContext {
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub value: Option<Vec<u8>>,
}

/// Part 42: a format's layout, sent before its first segment.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FormatInitializationMetadata {
    #[prost(string, optional, tag = "1")]
    pub video_id: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub format_id: Option<FormatId>,
    #[prost(int64, optional, tag = "3")]
    pub end_time_ms: Option<i64>,
    /// The last media segment's sequence number (segments run 1..=this; the init segment is 0).
    #[prost(int64, optional, tag = "4")]
    pub end_segment_number: Option<i64>,
    #[prost(string, optional, tag = "5")]
    pub mime_type: Option<String>,
    #[prost(message, optional, tag = "6")]
    pub init_range: Option<Range>,
    #[prost(message, optional, tag = "7")]
    pub index_range: Option<Range>,
    #[prost(int64, optional, tag = "8")]
    pub field8: Option<i64>,
    /// Duration as `duration_units / duration_timescale` seconds.
    #[prost(int64, optional, tag = "9")]
    pub duration_units: Option<i64>,
    #[prost(int64, optional, tag = "10")]
    pub duration_timescale: Option<i64>,
}

/// Part 20: opens one segment, identified by `header_id` in the MEDIA / MEDIA_END parts that
/// follow.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MediaHeader {
    #[prost(uint32, optional, tag = "1")]
    pub header_id: Option<u32>,
    #[prost(string, optional, tag = "2")]
    pub video_id: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub itag: Option<i32>,
    #[prost(uint64, optional, tag = "4")]
    pub lmt: Option<u64>,
    #[prost(string, optional, tag = "5")]
    pub xtags: Option<String>,
    /// Byte offset of the segment in the format's progressive file.
    #[prost(int64, optional, tag = "6")]
    pub start_range: Option<i64>,
    #[prost(int32, optional, tag = "7")]
    pub compression_algorithm: Option<i32>,
    #[prost(bool, optional, tag = "8")]
    pub is_init_seg: Option<bool>,
    #[prost(int32, optional, tag = "9")]
    pub sequence_number: Option<i32>,
    #[prost(int64, optional, tag = "10")]
    pub bitrate_bps: Option<i64>,
    #[prost(int64, optional, tag = "11")]
    pub start_ms: Option<i64>,
    #[prost(int64, optional, tag = "12")]
    pub duration_ms: Option<i64>,
    #[prost(message, optional, tag = "13")]
    pub format_id: Option<FormatId>,
    /// The segment's byte count (what MEDIA parts must add up to).
    #[prost(int64, optional, tag = "14")]
    pub content_length: Option<i64>,
    #[prost(message, optional, tag = "15")]
    pub time_range: Option<TimeRange>,
    #[prost(uint64, optional, tag = "16")]
    pub sequence_lmt: Option<u64>,
}

/// Part 35: how to make the next request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NextRequestPolicy {
    #[prost(int32, optional, tag = "1")]
    pub target_audio_readahead_ms: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub target_video_readahead_ms: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub max_time_since_last_request_ms: Option<i32>,
    /// Wait this long before the next request.
    #[prost(int32, optional, tag = "4")]
    pub backoff_time_ms: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    pub min_audio_readahead_ms: Option<i32>,
    #[prost(int32, optional, tag = "6")]
    pub min_video_readahead_ms: Option<i32>,
    /// A [`PlaybackCookie`] message, kept as its bytes so it goes back in
    /// `StreamerContext.playback_cookie` exactly as received, unknown fields included.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub playback_cookie: Option<Vec<u8>>,
    #[prost(string, optional, tag = "8")]
    pub video_id: Option<String>,
}

/// `video_streaming.PlaybackCookie`: opaque server state echoed by the client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PlaybackCookie {
    #[prost(int32, optional, tag = "1")]
    pub resolution: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub field2: Option<i32>,
    #[prost(message, optional, tag = "7")]
    pub video_fmt: Option<FormatId>,
    #[prost(message, optional, tag = "8")]
    pub audio_fmt: Option<FormatId>,
}

/// Part 43: continue at another URL.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrRedirect {
    #[prost(string, optional, tag = "1")]
    pub url: Option<String>,
}

/// Part 44: the server refuses the request; fatal for the stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrError {
    #[prost(string, optional, tag = "1")]
    pub r#type: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub code: Option<i32>,
}

/// Part 45: the server moves the playhead.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrSeek {
    #[prost(int64, optional, tag = "1")]
    pub seek_media_time: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub seek_media_timescale: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub seek_source: Option<i32>,
}

/// Part 58: 1 token fine, 2 token needed soon, 3 no more media without a valid token.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamProtectionStatus {
    #[prost(int32, optional, tag = "1")]
    pub status: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub max_retries: Option<i32>,
}

/// Part 46 (RELOAD_PLAYER_RESPONSE): fetch a new player response, sending these params back as
/// `playbackContext.reloadPlaybackContext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReloadPlaybackContext {
    #[prost(message, optional, tag = "1")]
    pub reload_playback_params: Option<ReloadPlaybackParams>,
}

/// The payload of part RELOAD_PLAYER_RESPONSE, under the part's name.
pub type ReloadPlayerResponse = ReloadPlaybackContext;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReloadPlaybackParams {
    #[prost(string, optional, tag = "1")]
    pub token: Option<String>,
}

/// Part 57: a context value to keep (and send back while its type is active).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrContextUpdate {
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    /// 0 unknown, 1 playback, 2 request, 3 watch endpoint, 4 content ads.
    #[prost(int32, optional, tag = "2")]
    pub scope: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub value: Option<Vec<u8>>,
    /// Make the type active as soon as it is received.
    #[prost(bool, optional, tag = "4")]
    pub send_by_default: Option<bool>,
    /// See [`write_policy`].
    #[prost(int32, optional, tag = "5")]
    pub write_policy: Option<i32>,
}

/// `SabrContextUpdate.write_policy` values.
pub mod write_policy {
    pub const UNSPECIFIED: i32 = 0;
    pub const OVERWRITE: i32 = 1;
    /// Ignore the update when a context of that type is already held.
    pub const KEEP_EXISTING: i32 = 2;
}

/// Part 59: context types to start sending, stop sending, and forget.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SabrContextSendingPolicy {
    #[prost(int32, repeated, packed = "false", tag = "1")]
    pub start_policy: Vec<i32>,
    #[prost(int32, repeated, packed = "false", tag = "2")]
    pub stop_policy: Vec<i32>,
    #[prost(int32, repeated, packed = "false", tag = "3")]
    pub discard_policy: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn the_token_sits_at_field_19_2_as_raw_bytes() {
        let req = VideoPlaybackAbrRequest {
            streamer_context: Some(StreamerContext {
                po_token: Some(vec![0xAA, 0xBB]),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Field 19 length-delimited is the two-byte key 0x9A 0x01; inside it, field 2 is 0x12.
        assert_eq!(req.encode_to_vec(), [0x9A, 0x01, 4, 0x12, 2, 0xAA, 0xBB]);
    }

    #[test]
    fn player_time_is_field_28_of_the_abr_state() {
        let state = ClientAbrState {
            player_time_ms: Some(5),
            enabled_track_types_bitfield: Some(track_types::AUDIO_ONLY),
            ..Default::default()
        };
        // 28 << 3 = 224 (varint E0 01); 40 << 3 = 320 (varint C0 02).
        assert_eq!(state.encode_to_vec(), [0xE0, 0x01, 5, 0xC0, 0x02, 1]);
    }

    #[test]
    fn a_cookie_read_as_a_message_reads_back_from_its_bytes() {
        let cookie = PlaybackCookie {
            field2: Some(3),
            audio_fmt: Some(FormatId {
                itag: Some(140),
                last_modified: Some(1_700_000_000_000_000),
                xtags: None,
            }),
            ..Default::default()
        };
        let policy = NextRequestPolicy {
            backoff_time_ms: Some(250),
            playback_cookie: Some(cookie.encode_to_vec()),
            ..Default::default()
        };
        let back = NextRequestPolicy::decode(policy.encode_to_vec().as_slice()).unwrap();
        let bytes = back.playback_cookie.unwrap();
        assert_eq!(PlaybackCookie::decode(bytes.as_slice()).unwrap(), cookie);
        assert_eq!(back.backoff_time_ms, Some(250));
    }

    #[test]
    fn client_names_map_to_their_numeric_ids() {
        let cases = [
            ("WEB", Some(1)),
            ("MWEB", Some(2)),
            ("TVHTML5", Some(7)),
            ("WEB_EMBEDDED_PLAYER", Some(56)),
            ("WEB_CREATOR", Some(62)),
            ("WEB_REMIX", Some(67)),
            ("web", None),
            ("", None),
        ];
        for (name, id) in cases {
            assert_eq!(client_name::id(name), id, "{name}");
        }
    }

    #[test]
    fn unsent_context_types_decode_packed_or_not() {
        // Field 6, unpacked (two varint entries) and packed (one length-delimited run).
        let unpacked = [0x30, 7, 0x30, 9];
        let packed = [0x32, 2, 7, 9];
        for body in [&unpacked[..], &packed[..]] {
            let ctx = StreamerContext::decode(body).unwrap();
            assert_eq!(ctx.unsent_sabr_contexts, [7, 9]);
        }
    }
}
