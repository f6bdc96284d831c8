//! What the proxy learns about sessions from traffic passing through: which video, client and
//! session each googlevideo URL belongs to, and which account is behind a visitor. Player
//! responses carry the media URLs; their `ei` (per response) and `id` (per response and client)
//! parameters are the keys a later media request can be traced back with. Bounded in memory
//! (least recently used entries make room); URL entries expire with the URLs (`expire=`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;
use serde_json::Value;

use super::{SharedLearning, bounded};
use crate::classify::url_param;

/// What a player response tells about its media URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackInfo {
    pub video_id: String,
    pub client: Option<String>,
    /// The visitor data YouTube used (the response's echo first).
    pub visitor_data: Option<String>,
    pub datasync_id: Option<String>,
    pub logged_in: bool,
}

impl PlaybackInfo {
    pub fn identity(&self) -> crate::bindings::Identity {
        crate::bindings::Identity {
            visitor_data: self.visitor_data.clone(),
            datasync_id: self.datasync_id.clone(),
            logged_in: self.logged_in,
        }
    }
}

/// The media-URL keys found in a player response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlKeys {
    pub ei: Vec<String>,
    pub id: Vec<String>,
    /// Latest `expire=` seen (unix seconds).
    pub expire: Option<u64>,
}

/// The parts of a player response potproxy learns from, read without building the rest of it:
/// a `serde_json::Value` of a whole 5 MB response (with `preserve_order`) costs tens of
/// megabytes; these typed fields skip everything else (serde ignores unknown fields).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PlayerFacts {
    #[serde(rename = "streamingData", default)]
    streaming_data: Option<StreamingFacts>,
    #[serde(rename = "videoDetails", default)]
    video_details: Option<VideoFacts>,
    /// Small; kept as a value for [`account_of`].
    #[serde(rename = "responseContext", default)]
    response_context: Option<Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct StreamingFacts {
    #[serde(default)]
    formats: Vec<FormatFacts>,
    #[serde(rename = "adaptiveFormats", default)]
    adaptive_formats: Vec<FormatFacts>,
    #[serde(rename = "serverAbrStreamingUrl")]
    server_abr_streaming_url: Option<String>,
    #[serde(rename = "hlsManifestUrl")]
    hls_manifest_url: Option<String>,
    #[serde(rename = "dashManifestUrl")]
    dash_manifest_url: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct FormatFacts {
    url: Option<String>,
    #[serde(rename = "signatureCipher")]
    signature_cipher: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct VideoFacts {
    #[serde(rename = "videoId")]
    video_id: Option<String>,
}

impl PlayerFacts {
    /// The facts of a player response body; `None` when it is not a player response object.
    pub fn parse(body: &[u8]) -> Option<PlayerFacts> {
        serde_json::from_slice(body).ok()
    }

    /// The facts of an already parsed response (pages carry it inside their HTML).
    pub fn of_value(response: &Value) -> PlayerFacts {
        <PlayerFacts as serde::Deserialize>::deserialize(response).unwrap_or_default()
    }

    /// `ei`, `id` and `expire` from every URL in `streamingData` (plain `url`,
    /// `signatureCipher`'s `url=`, `serverAbrStreamingUrl`, manifest URLs).
    pub fn url_keys(&self) -> UrlKeys {
        let mut keys = UrlKeys::default();
        let Some(sd) = &self.streaming_data else {
            return keys;
        };
        let mut urls: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        for f in sd.formats.iter().chain(&sd.adaptive_formats) {
            if let Some(u) = &f.url {
                urls.push(u.as_str().into());
            }
            if let Some(sc) = &f.signature_cipher {
                if let Some(u) = url::form_urlencoded::parse(sc.as_bytes())
                    .find(|(k, _)| k == "url")
                    .map(|(_, v)| v.into_owned())
                {
                    urls.push(u.into());
                }
            }
        }
        for u in [
            &sd.server_abr_streaming_url,
            &sd.hls_manifest_url,
            &sd.dash_manifest_url,
        ]
        .into_iter()
        .flatten()
        {
            urls.push(u.as_str().into());
        }
        for u in urls {
            let Ok(parsed) = url::Url::parse(&u) else {
                continue;
            };
            let (ei, id, expire) = media_url_keys(parsed.path(), parsed.query());
            if let Some(ei) = ei {
                if !keys.ei.contains(&ei) {
                    keys.ei.push(ei);
                }
            }
            if let Some(id) = id {
                if !keys.id.contains(&id) {
                    keys.id.push(id);
                }
            }
            if let Some(e) = expire {
                keys.expire = Some(keys.expire.map_or(e, |x| x.max(e)));
            }
        }
        keys
    }

    /// The playback facts (`videoDetails`, `responseContext`), given what the request said.
    /// Logged in: the response's `loggedOut: false`, else what the request's credentials said.
    pub fn playback_info(
        &self,
        request_video: Option<&str>,
        client: Option<&str>,
        request_visitor: Option<&str>,
        request_logged_in: bool,
    ) -> Option<PlaybackInfo> {
        let video_id = self
            .video_details
            .as_ref()
            .and_then(|d| d.video_id.as_deref())
            .or(request_video)?
            .to_string();
        let rc = self.response_context.as_ref();
        let visitor_data = rc
            .and_then(|r| r.get("visitorData"))
            .and_then(Value::as_str)
            .or(request_visitor)
            .map(str::to_string);
        let (datasync_id, logged_in) = rc.map(account_of).unwrap_or_default();
        let logged_in = logged_in.unwrap_or(request_logged_in);
        Some(PlaybackInfo {
            video_id,
            client: client.map(str::to_string),
            visitor_data,
            datasync_id,
            logged_in,
        })
    }
}

/// Extracts `ei`, `id` and `expire` from every URL in `streamingData` (see
/// [`PlayerFacts::url_keys`]).
pub fn url_keys(response: &Value) -> UrlKeys {
    PlayerFacts::of_value(response).url_keys()
}

/// `ei`, `id` and `expire` of a media or manifest URL, in query or path form.
pub fn media_url_keys(
    path: &str,
    query: Option<&str>,
) -> (Option<String>, Option<String>, Option<u64>) {
    let get = |name: &str| url_param(path, query, name);
    (
        get("ei"),
        get("id"),
        get("expire").and_then(|e| e.parse().ok()),
    )
}

#[derive(Clone)]
struct Entry {
    info: PlaybackInfo,
    /// How long the entry lives from when it is stored.
    lifetime: Duration,
}

/// Each entry lives as long as its URL.
struct UrlLifetime;

impl Expiry<String, Entry> for UrlLifetime {
    fn expire_after_create(&self, _key: &String, e: &Entry, _at: Instant) -> Option<Duration> {
        Some(e.lifetime)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        e: &Entry,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.lifetime)
    }
}

/// Media-URL key -> playback info, bounded and expiring.
pub struct SessionStore {
    map: Cache<String, Entry>,
    /// The fleet's tier (`[cluster]`), when there is one.
    shared: Option<Arc<dyn SharedLearning>>,
}

/// URLs live about six hours; keep entries a little longer when `expire` is missing.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 3600);

/// How long an entry for URLs expiring at `expire` (unix seconds) should live from `now`: ten
/// minutes past the URL's end, or the default when it is unknown or already past (clocks
/// differ). Never longer than a day: `expire=` comes from a response, and a huge value must
/// neither overflow the clock nor pin an entry for ever.
fn lifetime(expire: Option<u64>, now: SystemTime) -> Duration {
    const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
    expire
        .and_then(|e| {
            UNIX_EPOCH.checked_add(Duration::from_secs(e).saturating_add(Duration::from_secs(600)))
        })
        .and_then(|t| t.duration_since(now).ok())
        .filter(|d| !d.is_zero())
        .map_or(DEFAULT_LIFETIME, |d| d.min(MAX_LIFETIME))
}

impl SessionStore {
    pub fn new(capacity: usize) -> Self {
        SessionStore {
            map: bounded(capacity).expire_after(UrlLifetime).build(),
            shared: None,
        }
    }

    /// The same store, also teaching and asking the fleet.
    pub fn with_shared(mut self, shared: Arc<dyn SharedLearning>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// [`lookup`](Self::lookup), then (on a local miss) what another node learned; a fleet
    /// answer is kept here too.
    pub async fn lookup_shared(&self, ei: Option<&str>, id: Option<&str>) -> Option<PlaybackInfo> {
        if let Some(found) = self.lookup(ei, id) {
            return Some(found);
        }
        let shared = self.shared.as_ref()?;
        let keys: Vec<String> = ei
            .map(|e| format!("ei:{e}"))
            .into_iter()
            .chain(id.map(|i| format!("id:{i}")))
            .collect();
        if keys.is_empty() {
            return None;
        }
        let info = shared.playback(&keys).await?;
        let entry = Entry {
            info: info.clone(),
            lifetime: DEFAULT_LIFETIME,
        };
        for k in keys {
            self.map.insert(k, entry.clone());
        }
        Some(info)
    }

    /// Records a player response's URL keys.
    pub fn learn(&self, keys: &UrlKeys, info: PlaybackInfo) {
        let entry = Entry {
            info,
            lifetime: lifetime(keys.expire, SystemTime::now()),
        };
        let names: Vec<String> = keys
            .ei
            .iter()
            .map(|e| format!("ei:{e}"))
            .chain(keys.id.iter().map(|i| format!("id:{i}")))
            .collect();
        if let Some(shared) = &self.shared {
            shared.learn_playback(&names, &entry.info, entry.lifetime);
        }
        for k in names {
            self.map.insert(k, entry.clone());
        }
        // `len` first applies the pending inserts: `entry_count` alone lags behind them.
        crate::metrics::SESSIONS.with(&[]).set(self.len() as i64);
    }

    /// The playback a media URL belongs to: by `ei`, then by `id`.
    pub fn lookup(&self, ei: Option<&str>, id: Option<&str>) -> Option<PlaybackInfo> {
        let find = |k: String| self.map.get(&k).map(|e| e.info);
        ei.and_then(|e| find(format!("ei:{e}")))
            .or_else(|| id.and_then(|i| find(format!("id:{i}"))))
    }

    /// Entries held (evictions and expiries applied first).
    pub fn len(&self) -> usize {
        self.map.run_pending_tasks();
        self.map.entry_count() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The account a `responseContext` names: its DataSync ID, and whether it is signed in
/// (`mainAppWebResponseContext.loggedOut`, when present).
fn account_of(response_context: &Value) -> (Option<String>, Option<bool>) {
    let main = response_context.get("mainAppWebResponseContext");
    let datasync = main
        .and_then(|m| m.get("datasyncId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let logged_in = main
        .and_then(|m| m.get("loggedOut"))
        .and_then(Value::as_bool)
        .map(|out| !out);
    (datasync, logged_in)
}

/// What InnerTube responses say about a visitor: the account's DataSync ID and whether the
/// session is signed in. Keyed by the visitor data the response echoed; bounded.
pub struct Identities {
    map: Cache<String, (Option<String>, bool)>,
    /// The fleet's tier (`[cluster]`), when there is one.
    shared: Option<Arc<dyn SharedLearning>>,
}

impl Identities {
    pub fn new(capacity: usize) -> Self {
        Identities {
            map: bounded(capacity).build(),
            shared: None,
        }
    }

    /// The same store, also teaching and asking the fleet.
    pub fn with_shared(mut self, shared: Arc<dyn SharedLearning>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// [`lookup`](Self::lookup), then (on a local miss) what another node saw.
    pub async fn lookup_shared(&self, visitor: &str) -> Option<(Option<String>, bool)> {
        if let Some(found) = self.lookup(visitor) {
            return Some(found);
        }
        let found = self.shared.as_ref()?.identity(visitor).await?;
        self.map.insert(visitor.to_string(), found.clone());
        Some(found)
    }

    /// Records `responseContext` of any InnerTube JSON response.
    pub fn learn(&self, response: &Value) {
        let Some(rc) = response.get("responseContext") else {
            return;
        };
        let Some(visitor) = rc.get("visitorData").and_then(Value::as_str) else {
            return;
        };
        let (datasync, logged_in) = account_of(rc);
        if let Some(shared) = &self.shared {
            shared.learn_identity(visitor, datasync.as_deref(), logged_in.unwrap_or(false));
        }
        self.map
            .insert(visitor.to_string(), (datasync, logged_in.unwrap_or(false)));
    }

    /// (DataSync ID, signed in) last seen for `visitor`.
    pub fn lookup(&self, visitor: &str) -> Option<(Option<String>, bool)> {
        self.map.get(visitor)
    }
}

/// The playback facts of a player response (see [`PlayerFacts::playback_info`]).
pub fn playback_info(
    response: &Value,
    request_video: Option<&str>,
    client: Option<&str>,
    request_visitor: Option<&str>,
    request_logged_in: bool,
) -> Option<PlaybackInfo> {
    PlayerFacts::of_value(response).playback_info(
        request_video,
        client,
        request_visitor,
        request_logged_in,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::innertube_fixture;

    fn fixture(name: &str) -> Option<Value> {
        innertube_fixture(name, "response").map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn web_fixture_yields_one_ei_and_one_id_for_all_76_formats() {
        let Some(v) = fixture("np2024_web_player_audiotrack_full") else {
            return;
        };
        let keys = url_keys(&v);
        assert_eq!(keys.ei.len(), 1, "{keys:?}");
        assert_eq!(keys.id.len(), 1, "{keys:?}");
        assert!(keys.expire.is_some());
        let info = playback_info(&v, None, Some("WEB"), None, false).unwrap();
        assert_eq!(info.video_id.len(), 11);
        assert!(
            info.visitor_data
                .as_deref()
                .is_some_and(|s| s.starts_with("Cg"))
        );
    }

    #[test]
    fn typed_facts_read_the_same_keys_as_the_whole_document() {
        let name = "np2024_web_player_audiotrack_full";
        let Some(raw) = innertube_fixture(name, "response") else {
            return;
        };
        let whole: Value = serde_json::from_slice(&raw).unwrap();
        let facts = PlayerFacts::parse(&raw).expect("a player response");
        assert_eq!(facts.url_keys(), url_keys(&whole));
        assert!(!facts.url_keys().ei.is_empty());
        assert_eq!(
            facts.playback_info(None, Some("WEB"), None, false),
            playback_info(&whole, None, Some("WEB"), None, false)
        );
        assert!(
            PlayerFacts::parse(b"[1,2]").is_none(),
            "not a player response"
        );
    }

    #[test]
    fn signature_cipher_urls_are_read() {
        let Some(v) = fixture("np2025_tvhtml5_player_relatedmix_signatureCipher") else {
            return;
        };
        let keys = url_keys(&v);
        assert!(!keys.ei.is_empty() && !keys.id.is_empty(), "{keys:?}");
    }

    #[test]
    fn lookups_find_by_ei_then_id_and_respect_capacity() {
        let store = SessionStore::new(16);
        let info = |v: &str| PlaybackInfo {
            video_id: v.into(),
            client: Some("MWEB".into()),
            visitor_data: None,
            datasync_id: None,
            logged_in: false,
        };
        store.learn(
            &UrlKeys {
                ei: vec!["E1".into()],
                id: vec!["o-ID1".into()],
                expire: None,
            },
            info("aaaaaaaaaaa"),
        );
        assert_eq!(
            store.lookup(Some("E1"), None).unwrap().video_id,
            "aaaaaaaaaaa"
        );
        assert_eq!(
            store.lookup(Some("nope"), Some("o-ID1")).unwrap().video_id,
            "aaaaaaaaaaa"
        );
        assert!(store.lookup(Some("nope"), Some("nope")).is_none());
        for i in 0..40 {
            store.learn(
                &UrlKeys {
                    ei: vec![format!("e{i}")],
                    id: vec![],
                    expire: None,
                },
                info("bbbbbbbbbbb"),
            );
        }
        assert!(store.len() <= 16);
    }

    #[test]
    fn filling_past_capacity_keeps_the_recent_entries() {
        let store = SessionStore::new(16);
        let info = |v: &str| PlaybackInfo {
            video_id: v.into(),
            client: None,
            visitor_data: None,
            datasync_id: None,
            logged_in: false,
        };
        for i in 0..100 {
            store.learn(
                &UrlKeys {
                    ei: vec![format!("e{i}")],
                    id: vec![],
                    expire: None,
                },
                info(&format!("v{i}")),
            );
        }
        assert!(store.len() <= 16);
        assert!(store.len() >= 10, "not cleared: {}", store.len());
        for i in 90..100 {
            assert_eq!(
                store.lookup(Some(&format!("e{i}")), None).unwrap().video_id,
                format!("v{i}")
            );
        }
    }

    #[test]
    fn entries_live_as_long_as_their_urls() {
        let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(
            lifetime(Some(1_900_003_600), now),
            Duration::from_secs(3600 + 600)
        );
        assert_eq!(lifetime(Some(1_000_000), now), DEFAULT_LIFETIME);
        assert_eq!(lifetime(None, now), DEFAULT_LIFETIME);
        // A hostile `expire=` neither panics nor pins an entry for ever.
        assert_eq!(lifetime(Some(u64::MAX), now), DEFAULT_LIFETIME);
        assert_eq!(
            lifetime(Some(200_000_000_000), now),
            Duration::from_secs(24 * 3600)
        );
    }

    #[test]
    fn identities_keep_the_recent_visitors_when_full() {
        let ids = Identities::new(16);
        for i in 0..100 {
            ids.learn(&serde_json::json!({"responseContext": {"visitorData": format!("Cgt{i}"), "mainAppWebResponseContext": {"datasyncId": format!("{i}||"), "loggedOut": false}}}));
        }
        ids.map.run_pending_tasks();
        assert!(ids.map.entry_count() <= 16);
        for i in 90..100 {
            assert_eq!(
                ids.lookup(&format!("Cgt{i}")),
                Some((Some(format!("{i}||")), true))
            );
        }
    }

    #[test]
    fn expired_urls_are_forgotten() {
        let store = SessionStore::new(16);
        store.learn(
            &UrlKeys {
                ei: vec!["old".into()],
                id: vec![],
                expire: Some(1_000_000),
            },
            PlaybackInfo {
                video_id: "ccccccccccc".into(),
                client: None,
                visitor_data: None,
                datasync_id: None,
                logged_in: false,
            },
        );
        // An `expire` in the past falls back to the default lifetime rather than dropping the
        // entry outright (clocks differ); it is still found.
        assert!(store.lookup(Some("old"), None).is_some());
    }

    #[test]
    fn innertube_responses_teach_the_datasync_id_of_a_visitor() {
        let ids = Identities::new(16);
        ids.learn(&serde_json::json!({"responseContext": {"visitorData": "CgtA", "mainAppWebResponseContext": {"datasyncId": "1||", "loggedOut": false}}}));
        ids.learn(&serde_json::json!({"responseContext": {"visitorData": "CgtB", "mainAppWebResponseContext": {"loggedOut": true}}}));
        ids.learn(&serde_json::json!({"contents": {}}));
        assert_eq!(ids.lookup("CgtA"), Some((Some("1||".into()), true)));
        assert_eq!(ids.lookup("CgtB"), Some((None, false)));
        assert_eq!(ids.lookup("CgtC"), None);
    }

    #[test]
    fn path_form_keys_are_read() {
        let (ei, id, exp) = media_url_keys(
            "/api/manifest/hls_variant/expire/1900000000/ei/AbC/ip/1.2.3.4/id/abc.1/file/index.m3u8",
            None,
        );
        assert_eq!(
            (ei.as_deref(), id.as_deref(), exp),
            (Some("AbC"), Some("abc.1"), Some(1_900_000_000))
        );
    }
}
