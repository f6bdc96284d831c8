//! The built-in minter's settings ([`BotGuardSettings`]) and their vocabulary: where a
//! challenge comes from ([`ChallengeSource`]), which WAA host answers ([`WaaEndpoint`]), and the
//! user agent. Shared by the minter, its transport (`waa`) and the browser minter; `config`
//! builds them from `[tokens.botguard]`.

use std::time::Duration;

use super::vm::VmLimits;

/// BotGuard requires a WebKit user agent; the same one is used for HTTP and inside the VM. A
/// Chrome one: the VM's environment has V8's traits (error stacks, client hints, `window.chrome`;
/// docs/PROBES.md compares it with Chromium), so a Chrome identity is the consistent one.
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// Settings of the built-in minter.
#[derive(Debug, Clone)]
pub struct BotGuardSettings {
    pub challenge_order: Vec<ChallengeSource>,
    pub endpoint: WaaEndpoint,
    pub user_agent: String,
    pub vm: VmLimits,
    /// How long a request waits for the first minter.
    pub warmup_wait: Duration,
}

impl Default for BotGuardSettings {
    fn default() -> Self {
        BotGuardSettings {
            challenge_order: vec![
                ChallengeSource::Page,
                ChallengeSource::AttGet,
                ChallengeSource::Tv,
                ChallengeSource::Create,
            ],
            endpoint: WaaEndpoint::YouTube,
            user_agent: DEFAULT_USER_AGENT.into(),
            vm: VmLimits::default(),
            warmup_wait: Duration::from_secs(20),
        }
    }
}

/// Where a challenge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeSource {
    /// The YouTube home page (`ytcfg` + inline `ytAtN`), the web client's own source.
    Page,
    /// InnerTube `POST /youtubei/v1/att/get` as the web client (with the page's eacrToken when
    /// the page gave one).
    AttGet,
    /// InnerTube `/att/get` as the TV client (`TVHTML5`), whose challenge is not bound to a
    /// page's `EVENT_ID` (LuanRT/BgUtils#44).
    Tv,
    /// WAA `Create`.
    Create,
    /// Supplied by the caller (the provider API's `challenge` field).
    Supplied,
}

impl ChallengeSource {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "page" => Some(ChallengeSource::Page),
            "att_get" => Some(ChallengeSource::AttGet),
            "tv" => Some(ChallengeSource::Tv),
            "create" => Some(ChallengeSource::Create),
            _ => None,
        }
    }
}

/// Which WAA host serves `Create` and `GenerateIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaaEndpoint {
    /// `https://www.youtube.com/api/jnn/v1/<method>` (what the web player uses).
    YouTube,
    /// `https://jnn-pa.googleapis.com/$rpc/google.internal.waa.v1.Waa/<method>`.
    Googleapis,
}

impl WaaEndpoint {
    pub fn url(self, method: &str) -> String {
        match self {
            WaaEndpoint::YouTube => format!("https://www.youtube.com/api/jnn/v1/{method}"),
            WaaEndpoint::Googleapis => {
                format!("https://jnn-pa.googleapis.com/$rpc/google.internal.waa.v1.Waa/{method}")
            }
        }
    }
}
