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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::bindings::Regime;
use crate::learn::SharedLearning;
use crate::learn::session::PlaybackInfo;
use crate::token::Token;
use crate::tokens::{Claim, Fleet, SharedTokens};

/// How long a claim on a binding holds when its node never releases it (it died mid-mint).
pub const CLAIM_TTL: Duration = Duration::from_secs(15);
/// How long learned regimes and identities live in Redis (locally they live until evicted).
pub const LEARNED_TTL: Duration = Duration::from_secs(24 * 3600);

const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

/// A stored token value read back: `None` when it is malformed or expired (public for the fuzz
/// targets).
pub fn decode_token(text: &str) -> Option<(Token, SystemTime)> {
    let (ms, tok) = text.split_once('|')?;
    let expires_at = UNIX_EPOCH + Duration::from_millis(ms.parse().ok()?);
    if expires_at <= SystemTime::now() {
        return None;
    }
    Some((Token::parse(tok).ok()?, expires_at))
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
    pub fn until(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.until_ms)
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
            until_ms: unix_ms(SystemTime::now() + ttl),
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
    pub async fn set_asides(&self) -> Option<Vec<SetAside>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.key("asides"));
        let all: Vec<(String, String)> = self.run("set_asides", cmd).await?;
        let now = unix_ms(SystemTime::now());
        let mut live = Vec::new();
        let mut expired = Vec::new();
        for (field, json) in all {
            match serde_json::from_str::<SetAside>(&json) {
                Ok(a) if a.until_ms > now => live.push(a),
                _ => expired.push(field),
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
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(&format!("tok:{key}")));
            match self.run::<Option<String>>("token get", cmd).await {
                None => Fleet::Unreachable,
                Some(None) => Fleet::Missing,
                Some(Some(text)) => match decode_token(&text) {
                    Some((t, exp)) => Fleet::Found(t, exp),
                    None => Fleet::Missing,
                },
            }
        })
    }

    fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Claim> {
        Box::pin(async move {
            let id = claim_id();
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(&format!("lock:{key}")))
                .arg(&id)
                .arg("NX")
                .arg("PX")
                .arg(px(CLAIM_TTL));
            match self.run::<Option<String>>("claim", cmd).await {
                None => Claim::Unreachable,
                Some(Some(_)) => Claim::Ours(id),
                Some(None) => Claim::Theirs,
            }
        })
    }

    fn publish(&self, key: &str, token: &Token, expires_at: SystemTime) {
        let Ok(left) = expires_at.duration_since(SystemTime::now()) else {
            return;
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("tok:{key}")))
            .arg(encode_token(token, expires_at))
            .arg("PX")
            .arg(px(left));
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
            let mut cmd = redis::cmd("MGET");
            for k in keys {
                cmd.arg(self.key(&format!("url:{k}")));
            }
            let found: Vec<Option<String>> = self.run("playback get", cmd).await?;
            found
                .into_iter()
                .flatten()
                .find_map(|json| serde_json::from_str::<StoredPlayback>(&json).ok())
                .map(PlaybackInfo::from)
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
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(&format!("regime:{client}:{session}")));
            match self
                .run::<Option<String>>("regime get", cmd)
                .await??
                .as_str()
            {
                "video" => Some(Regime::Video),
                "session" => Some(Regime::Session),
                _ => None,
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
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(&format!("ident:{visitor}")));
            let json = self.run::<Option<String>>("identity get", cmd).await??;
            serde_json::from_str(&json).ok()
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
        let t = Token::from_bytes(&[0x32, 1, 2, 3]);
        let later = SystemTime::now() + Duration::from_secs(60);
        let (back, exp) = decode_token(&encode_token(&t, later)).unwrap();
        assert_eq!(back, t);
        assert_eq!(unix_ms(exp), unix_ms(later));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert!(decode_token(&encode_token(&t, past)).is_none());
        assert!(decode_token("garbage").is_none());
    }
}
