//! The `[tokens]` settings, validated: which sources are asked in which order, the cache, and
//! each source's own settings. `config` builds them; the sources only read them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::botguard::settings::BotGuardSettings;
use crate::browser::BrowserSettings;
use crate::token::Token;

/// Token sources, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Static,
    BotGuard,
    Provider,
    ColdStart,
    /// Headless Chromium ([`crate::browser`]).
    Browser,
}

impl SourceKind {
    /// The sources used when `[tokens] sources` is not set: a browser mints when one is
    /// installed (browser-grade tokens without configuration), QuickJS otherwise or after it.
    pub fn defaults(browser_found: bool) -> Vec<SourceKind> {
        if browser_found {
            vec![
                SourceKind::Static,
                SourceKind::Browser,
                SourceKind::BotGuard,
            ]
        } else {
            vec![SourceKind::Static, SourceKind::BotGuard]
        }
    }

    pub const ALL: &[(&str, SourceKind)] = &[
        ("static", SourceKind::Static),
        ("botguard", SourceKind::BotGuard),
        ("provider", SourceKind::Provider),
        ("cold_start", SourceKind::ColdStart),
        ("browser", SourceKind::Browser),
    ];
}

/// `[tokens.botguard]`: the built-in minter.
#[derive(Debug, Clone)]
pub struct BotGuardConfig {
    pub settings: BotGuardSettings,
    /// Warm a minter at start-up instead of on the first request.
    pub prewarm: bool,
    /// Most minters (each with its VM thread) for request-named egresses at once.
    pub max_minters: usize,
}

#[derive(Debug, Clone)]
pub struct TokensConfig {
    pub sources: Vec<SourceKind>,
    pub ttl: Duration,
    pub cache_file: Option<PathBuf>,
    pub botguard: BotGuardConfig,
    /// `[tokens.browser]`: headless Chromium.
    pub browser: BrowserSettings,
    /// Base URL of an external bgutil-compatible provider (`[tokens.provider] url`).
    pub provider_url: Option<url::Url>,
    /// How long `/get_pot` of the provider may take.
    pub provider_timeout: Duration,
    pub static_default: Option<Token>,
    pub static_bindings: BTreeMap<String, Token>,
    /// Placeholders a client may send that the proxy replaces, kept as written and normalised.
    pub sentinels: Vec<String>,
    pub always_replace: bool,
    /// How long a source whose tokens keep being refused is set aside for an egress.
    pub set_aside: Duration,
    /// Prove each new minter's first token by a ranged GET of a media URL learned for its
    /// egress (`[tokens] prove_new_minters`).
    pub prove_new_minters: bool,
}
