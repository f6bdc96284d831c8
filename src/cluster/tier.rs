//! What the fleet shares, as Redis keys under the configured prefix, and the shared tiers the
//! token service ([`SharedTokens`]) and the learning stores ([`SharedLearning`]) consult:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `tok:{kind}:{egress}:{binding}` | `{expires unix ms}\|{token}` | the token's expiry |
//! | `lock:{kind}:{egress}:{binding}` | a random claim id | [`CLAIM_TTL`] (or released) |
//! | `url:ei:{ei}`, `url:id:{id}` | playback JSON | as long as the media URLs |
//! | `regime:{client}:{session}` | `video` / `session` | [`LEARNED_TTL`] |
//! | `ident:{visitor}` | `[datasync id, signed in]` JSON | [`LEARNED_TTL`] |
//! | `asides` (hash) | `{source}\|{egress}` -> set-aside JSON | each entry's own expiry |
//!
//! Reads answer `None`/unreachable on any fault; writes are spawned and never awaited.
//!
//! Every read is bounded in size ([`VALUE_CAP`]): string values are read with `GETRANGE`, so a
//! large value planted in Redis costs one capped transfer, never the whole value in memory; the
//! set-aside hash is filtered inside Redis by a script. A value of the wrong type or shape is
//! ignored (and overwritten by the next write), a claim without a TTL (or with a longer one than
//! [`CLAIM_TTL`]) is taken over, set-asides longer than [`MAX_SET_ASIDE`] are dropped, and time
//! arithmetic on stored numbers is checked. Token expiries are capped by the token service (it
//! knows the TTL).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Cluster, Reply};
use crate::bindings::Regime;
use crate::learn::SharedLearning;
use crate::learn::session::PlaybackInfo;
use crate::token::Token;
use crate::tokens::{Claim, Fleet, SharedTokens};

/// How long a claim on a binding holds when its node never releases it (it died mid-mint).
pub const CLAIM_TTL: Duration = Duration::from_secs(15);
/// How long learned regimes and identities live in Redis (locally they live until evicted).
pub const LEARNED_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest value read from Redis. What potproxy writes is far smaller (a token ~200 bytes, a
/// playback ~300, visitor data ~100); a longer value is not ours and is not read whole.
pub const VALUE_CAP: usize = 16 * 1024;
/// Longest set-aside honoured: the longest `[tokens] set_aside_secs` allows.
pub const MAX_SET_ASIDE: Duration = Duration::from_secs(24 * 3600);
/// Most set-aside entries read (a node has a handful of sources per egress).
const MAX_ASIDES: usize = 1024;

const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Claims `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms: 1 when taken, 0 when another node holds a
/// live claim, 2 when what held it was not a claim (no TTL, a TTL longer than any node sets,
/// or not a string) and was taken over.
const CLAIM: &str = r"
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
local ttl = redis.call('pttl', KEYS[1])
local kind = redis.call('type', KEYS[1])['ok']
if ttl < 0 or ttl > tonumber(ARGV[2]) or kind ~= 'string' then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
";

/// The set-aside hash `KEYS[1]`, filtered inside Redis: `{skipped, field, value, ...}` with at
/// most `ARGV[2]` entries whose field and value are at most `ARGV[1]` bytes (longer ones are
/// deleted); `{-1}` when the key is not a hash.
const ASIDES: &str = r"
local kind = redis.call('type', KEYS[1])['ok']
if kind == 'none' then return {0} end
if kind ~= 'hash' then return {-1} end
local cap = tonumber(ARGV[1])
local most = tonumber(ARGV[2])
local all = redis.call('hgetall', KEYS[1])
local out = {0}
for i = 1, #all, 2 do
  if #all[i] > cap or #all[i + 1] > cap then
    redis.call('hdel', KEYS[1], all[i])
    out[1] = out[1] + 1
  elseif #out < 2 * most + 1 then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  else
    out[1] = out[1] + 1
  end
end
return out
";

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `UNIX_EPOCH + ms`, `None` when out of the platform's range.
fn from_unix_ms(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// `now + d`; `now` when out of range (never a panic).
fn later_by(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_add(d).unwrap_or(now)
}

/// What a capped read of one string value found.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Missing,
    Value(String),
    /// Not ours: why.
    Junk(&'static str),
}

/// Judges the bytes `GETRANGE key 0 VALUE_CAP` returned (a missing key reads as empty).
fn judge_read(bytes: Vec<u8>) -> Read {
    if bytes.is_empty() {
        return Read::Missing;
    }
    if bytes.len() > VALUE_CAP {
        return Read::Junk("value larger than the cap");
    }
    match String::from_utf8(bytes) {
        Ok(s) => Read::Value(s),
        Err(_) => Read::Junk("value not UTF-8"),
    }
}

fn claim_id() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A token as stored: its expiry first, so a reader knows how long to keep it.
fn encode_token(token: &Token, expires_at: SystemTime) -> String {
    format!("{}|{}", unix_ms(expires_at), token.as_str())
}

/// A stored token: `Ok(None)` when expired, `Err` when the text is not a token as we store it
/// (public for the fuzz targets).
pub fn decode_token(
    text: &str,
    now: SystemTime,
) -> Result<Option<(Token, SystemTime)>, &'static str> {
    let (ms, tok) = text.split_once('|').ok_or("token without expiry")?;
    let ms: u64 = ms.parse().map_err(|_| "token expiry not a number")?;
    let expires_at = from_unix_ms(ms).ok_or("token expiry out of range")?;
    let token = Token::parse(tok).map_err(|_| "not a token")?;
    Ok((expires_at > now).then_some((token, expires_at)))
}

/// [`PlaybackInfo`] as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPlayback {
    video_id: String,
    client: Option<String>,
    visitor_data: Option<String>,
    datasync_id: Option<String>,
    logged_in: bool,
}

impl From<&PlaybackInfo> for StoredPlayback {
    fn from(p: &PlaybackInfo) -> Self {
        StoredPlayback {
            video_id: p.video_id.clone(),
            client: p.client.clone(),
            visitor_data: p.visitor_data.clone(),
            datasync_id: p.datasync_id.clone(),
            logged_in: p.logged_in,
        }
    }
}

impl StoredPlayback {
    /// Whether this looks like what we store: a video id (URL-safe, short) and short strings.
    fn plausible(&self) -> bool {
        let short = |s: &Option<String>| s.as_ref().is_none_or(|s| s.len() <= 1024);
        (1..=64).contains(&self.video_id.len())
            && self
                .video_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && short(&self.client)
            && short(&self.visitor_data)
            && short(&self.datasync_id)
    }
}

impl From<StoredPlayback> for PlaybackInfo {
    fn from(p: StoredPlayback) -> Self {
        PlaybackInfo {
            video_id: p.video_id,
            client: p.client,
            visitor_data: p.visitor_data,
            datasync_id: p.datasync_id,
            logged_in: p.logged_in,
        }
    }
}

/// A token source set aside for an egress after refusals: the whole fleet stops using it until
/// `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The source's name (`botguard`, `provider`, ...).
    pub source: String,
    /// The egress key (`None`: the configured egress).
    pub egress: Option<String>,
    pub reason: String,
    /// Unix milliseconds.
    pub until_ms: u64,
}

impl SetAside {
    /// When it ends (the epoch, i.e. over, when `until_ms` is out of range).
    pub fn until(&self) -> SystemTime {
        from_unix_ms(self.until_ms).unwrap_or(UNIX_EPOCH)
    }
}

/// What one stored set-aside entry is worth at `now_ms`.
#[derive(Debug, PartialEq, Eq)]
enum AsideEntry {
    Live(SetAside),
    Expired,
    Junk(&'static str),
}

fn judge_aside(json: &str, now_ms: u64) -> AsideEntry {
    let Ok(a) = serde_json::from_str::<SetAside>(json) else {
        return AsideEntry::Junk("set-aside not the stored JSON");
    };
    if a.until_ms <= now_ms {
        AsideEntry::Expired
    } else if a.until_ms - now_ms > MAX_SET_ASIDE.as_millis() as u64 {
        AsideEntry::Junk("set-aside longer than any node sets")
    } else {
        AsideEntry::Live(a)
    }
}

fn px(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl Cluster {
    /// Tells the fleet that `source` is set aside for `egress` for `ttl` (fire-and-forget).
    pub fn set_aside(&self, source: &str, egress: Option<&str>, ttl: Duration, reason: &str) {
        let entry = SetAside {
            source: source.to_string(),
            egress: egress.map(str::to_string),
            reason: reason.to_string(),
            until_ms: unix_ms(later_by(SystemTime::now(), ttl.min(MAX_SET_ASIDE))),
        };
        let field = format!("{source}|{}", egress.unwrap_or("-"));
        let json = serde_json::to_string(&entry).expect("set-aside serialises");
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.key("asides")).arg(field).arg(json);
        self.fire("set_aside", cmd);
    }

    /// Ends a set-aside early (the source worked again), fleet-wide.
    pub fn clear_aside(&self, source: &str, egress: Option<&str>) {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.key("asides"))
            .arg(format!("{source}|{}", egress.unwrap_or("-")));
        self.fire("clear_aside", cmd);
    }

    /// The fleet's live set-asides; `None` when Redis is unreachable (keep the local verdicts).
    /// Expired entries are dropped from Redis on the way.
    /// Values that are not ours (junk, oversized, longer than [`MAX_SET_ASIDE`]) are dropped.
    pub async fn set_asides(&self) -> Option<Vec<SetAside>> {
        let script = redis::Script::new(ASIDES);
        let mut inv = script.key(self.key("asides"));
        inv.arg(VALUE_CAP).arg(MAX_ASIDES);
        let reply: Vec<redis::Value> = match self.call_script("set_asides", inv).await {
            Reply::Value(v) => v,
            Reply::Refused => {
                self.ignore("set-aside", "set-aside script refused");
                return Some(Vec::new());
            }
            Reply::Unreachable => return None,
        };
        let mut reply = reply.into_iter();
        match reply.next() {
            Some(redis::Value::Int(0)) => {}
            Some(redis::Value::Int(n)) if n < 0 => {
                self.ignore("set-aside", "set-aside key not a hash");
                return Some(Vec::new());
            }
            _ => self.ignore("set-aside", "set-aside entries oversized or too many"),
        }
        let text = |v: redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8(b).ok(),
            _ => None,
        };
        let now = unix_ms(SystemTime::now());
        let mut live = Vec::new();
        let mut expired = Vec::new();
        while let (Some(field), Some(json)) = (reply.next(), reply.next()) {
            let (Some(field), Some(json)) = (text(field), text(json)) else {
                self.ignore("set-aside", "set-aside not UTF-8");
                continue;
            };
            match judge_aside(&json, now) {
                AsideEntry::Live(a) => live.push(a),
                AsideEntry::Expired => expired.push(field),
                AsideEntry::Junk(why) => {
                    self.ignore("set-aside", why);
                    expired.push(field);
                }
            }
        }
        if !expired.is_empty() {
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(self.key("asides")).arg(expired);
            self.fire("expire_asides", cmd);
        }
        Some(live)
    }
}

impl SharedTokens for Cluster {
    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Fleet> {
        Box::pin(async move {
            let Some(read) = self.get_capped("token get", &format!("tok:{key}")).await else {
                return Fleet::Unreachable;
            };
            let text = match read {
                Read::Missing => return Fleet::Missing,
                Read::Junk(why) => {
                    self.ignore("token", why);
                    return Fleet::Missing;
                }
                Read::Value(text) => text,
            };
            match decode_token(&text, SystemTime::now()) {
                Ok(Some((t, exp))) => Fleet::Found(t, exp),
                Ok(None) => Fleet::Missing,
                Err(why) => {
                    self.ignore("token", why);
                    Fleet::Missing
                }
            }
        })
    }

    fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Claim> {
        Box::pin(async move {
            let id = claim_id();
            let script = redis::Script::new(CLAIM);
            let mut inv = script.key(self.key(&format!("lock:{key}")));
            inv.arg(&id).arg(px(CLAIM_TTL));
            match self.call_script::<i64>("claim", inv).await {
                Reply::Value(1) => Claim::Ours(id),
                Reply::Value(2) => {
                    self.ignore("claim", "claim without a TTL (or a longer one) taken over");
                    Claim::Ours(id)
                }
                Reply::Value(_) => Claim::Theirs,
                // A server refusing the script: mint here, as without a fleet.
                Reply::Refused | Reply::Unreachable => Claim::Unreachable,
            }
        })
    }

    fn publish(&self, key: &str, token: &Token, expires_at: SystemTime) {
        let Ok(left) = expires_at.duration_since(SystemTime::now()) else {
            return;
        };
        let Some(left) = u64::try_from(left.as_millis()).ok().filter(|ms| *ms > 0) else {
            return;
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("tok:{key}")))
            .arg(encode_token(token, expires_at))
            .arg("PX")
            .arg(left);
        self.fire("token set", cmd);
    }

    fn release(&self, key: &str, claim: String) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let me = self.clone();
        let lock = self.key(&format!("lock:{key}"));
        tokio::spawn(async move {
            let script = redis::Script::new(RELEASE);
            let mut inv = script.key(lock);
            inv.arg(claim);
            let _: Option<i64> = me.run_script("release", inv).await;
        });
    }

    fn forget(&self, key: &str) {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(&format!("tok:{key}")));
        self.fire("token del", cmd);
    }
}

fn regime_name(r: Regime) -> &'static str {
    match r {
        Regime::Video => "video",
        Regime::Session => "session",
    }
}

impl SharedLearning for Cluster {
    fn playback<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Option<PlaybackInfo>> {
        Box::pin(async move {
            if keys.is_empty() {
                return None;
            }
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.cmd("GETRANGE")
                    .arg(self.key(&format!("url:{k}")))
                    .arg(0)
                    .arg(VALUE_CAP);
            }
            let found: Vec<Vec<u8>> = match self.call_pipe("playback get", &pipe).await {
                Reply::Value(v) => v,
                Reply::Refused => {
                    self.ignore("playback", "playback key not a string");
                    return None;
                }
                Reply::Unreachable => return None,
            };
            found.into_iter().find_map(|bytes| {
                let json = match judge_read(bytes) {
                    Read::Missing => return None,
                    Read::Junk(why) => {
                        self.ignore("playback", why);
                        return None;
                    }
                    Read::Value(json) => json,
                };
                match serde_json::from_str::<StoredPlayback>(&json) {
                    Ok(p) if p.plausible() => Some(PlaybackInfo::from(p)),
                    _ => {
                        self.ignore("playback", "playback not the stored JSON");
                        None
                    }
                }
            })
        })
    }

    fn learn_playback(&self, keys: &[String], info: &PlaybackInfo, lifetime: Duration) {
        if keys.is_empty() {
            return;
        }
        let json = serde_json::to_string(&StoredPlayback::from(info)).expect("serialises");
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("SET")
                .arg(self.key(&format!("url:{k}")))
                .arg(&json)
                .arg("PX")
                .arg(px(lifetime))
                .ignore();
        }
        self.fire_pipe("playback set", pipe);
    }

    fn regime<'a>(&'a self, session: &'a str, client: &'a str) -> BoxFuture<'a, Option<Regime>> {
        Box::pin(async move {
            let read = self
                .get_capped("regime get", &format!("regime:{client}:{session}"))
                .await?;
            match read {
                Read::Missing => None,
                Read::Value(v) if v == "video" => Some(Regime::Video),
                Read::Value(v) if v == "session" => Some(Regime::Session),
                Read::Value(_) => {
                    self.ignore("regime", "not a regime name");
                    None
                }
                Read::Junk(why) => {
                    self.ignore("regime", why);
                    None
                }
            }
        })
    }

    fn observe_regime(&self, session: &str, client: &str, regime: Regime) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("regime:{client}:{session}")))
            .arg(regime_name(regime))
            .arg("PX")
            .arg(px(LEARNED_TTL));
        self.fire("regime set", cmd);
    }

    fn identity<'a>(&'a self, visitor: &'a str) -> BoxFuture<'a, Option<(Option<String>, bool)>> {
        Box::pin(async move {
            let json = match self
                .get_capped("identity get", &format!("ident:{visitor}"))
                .await?
            {
                Read::Missing => return None,
                Read::Junk(why) => {
                    self.ignore("identity", why);
                    return None;
                }
                Read::Value(json) => json,
            };
            match serde_json::from_str::<(Option<String>, bool)>(&json) {
                Ok((id, signed_in)) if id.as_ref().is_none_or(|i| i.len() <= 1024) => {
                    Some((id, signed_in))
                }
                _ => {
                    self.ignore("identity", "identity not the stored JSON");
                    None
                }
            }
        })
    }

    fn learn_identity(&self, visitor: &str, datasync_id: Option<&str>, logged_in: bool) {
        let json = serde_json::to_string(&(datasync_id, logged_in)).expect("serialises");
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("ident:{visitor}")))
            .arg(json)
            .arg("PX")
            .arg(px(LEARNED_TTL));
        self.fire("identity set", cmd);
    }
}

impl Cluster {
    /// Reads the string at `prefix + name`, at most [`VALUE_CAP`] bytes of it (`GETRANGE`: one
    /// call, and a large value is never transferred whole). `None` when Redis is unreachable;
    /// a value of another type reads as junk.
    async fn get_capped(&self, what: &'static str, name: &str) -> Option<Read> {
        let mut cmd = redis::cmd("GETRANGE");
        cmd.arg(self.key(name)).arg(0).arg(VALUE_CAP);
        match self.call::<Vec<u8>>(what, cmd).await {
            Reply::Value(bytes) => Some(judge_read(bytes)),
            Reply::Refused => Some(Read::Junk("not a string")),
            Reply::Unreachable => None,
        }
    }

    /// [`Cluster::fire`] for a pipeline.
    fn fire_pipe(&self, what: &'static str, pipe: redis::Pipeline) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let Some(mut conn) = me.ready() else { return };
            let res = tokio::time::timeout(
                me.inner.timeout,
                pipe.query_async::<redis::Value>(&mut conn),
            )
            .await;
            me.settle(what, res);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tokens_carry_their_expiry_and_expired_ones_read_as_missing() {
        let now = SystemTime::now();
        let t = Token::from_bytes(&[0x32, 1, 2, 3]);
        let later = now + Duration::from_secs(60);
        let (back, exp) = decode_token(&encode_token(&t, later), now)
            .unwrap()
            .unwrap();
        assert_eq!(back, t);
        assert_eq!(unix_ms(exp), unix_ms(later));
        let past = now - Duration::from_secs(1);
        assert_eq!(decode_token(&encode_token(&t, past), now), Ok(None));
    }

    #[test]
    fn stored_values_that_are_not_ours_are_junk_never_a_panic() {
        let now = SystemTime::now();
        for text in [
            "garbage",
            "|",
            "12|",
            "x|Mgc=",
            "-5|Mgc=",
            "99999999999999999999999|Mgc=",
            "1|not base64 !",
        ] {
            assert!(decode_token(text, now).is_err(), "{text}");
        }
        // The largest expiry a u64 holds: a far time (capped later by the service) or out of
        // range, never a panic.
        let _ = decode_token(&format!("{}|Mgc=", u64::MAX), now);
        assert_eq!(judge_read(Vec::new()), Read::Missing);
        assert_eq!(judge_read(b"video".to_vec()), Read::Value("video".into()));
        assert!(matches!(
            judge_read(vec![b'a'; VALUE_CAP + 1]),
            Read::Junk(_)
        ));
        assert!(matches!(judge_read(vec![0xff, 0xfe]), Read::Junk(_)));
    }

    #[test]
    fn set_asides_beyond_the_longest_window_or_malformed_are_junk() {
        let now = 1_800_000_000_000;
        let entry = |until: u64| {
            serde_json::to_string(&SetAside {
                source: "botguard".into(),
                egress: None,
                reason: "r".into(),
                until_ms: until,
            })
            .unwrap()
        };
        assert!(matches!(
            judge_aside(&entry(now + 60_000), now),
            AsideEntry::Live(_)
        ));
        assert_eq!(judge_aside(&entry(now - 1), now), AsideEntry::Expired);
        assert!(matches!(
            judge_aside(&entry(u64::MAX), now),
            AsideEntry::Junk(_)
        ));
        assert!(matches!(judge_aside("{}", now), AsideEntry::Junk(_)));
        assert!(matches!(judge_aside("[1,2]", now), AsideEntry::Junk(_)));
        let far = SetAside {
            source: "s".into(),
            egress: None,
            reason: String::new(),
            until_ms: u64::MAX,
        };
        let _ = far.until();
    }

    #[test]
    fn stored_playbacks_must_look_like_ours() {
        let p = |video_id: &str| StoredPlayback {
            video_id: video_id.into(),
            client: None,
            visitor_data: None,
            datasync_id: None,
            logged_in: false,
        };
        assert!(p("jNQXAC9IVRw").plausible());
        assert!(!p("").plausible());
        assert!(!p("a/b").plausible());
        assert!(!p(&"a".repeat(65)).plausible());
    }
}
