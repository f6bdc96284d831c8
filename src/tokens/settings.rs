//! The `[tokens]` settings, validated: which sources are asked in which order, the cache, and
//! each source's own settings. `config` builds them; the sources only read them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::botguard::minter::BotGuardSettings;
use crate::token::Token;

/// Token sources, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Static,
    BotGuard,
    Provider,
    ColdStart,
}

impl SourceKind {
    pub const ALL: &[(&str, SourceKind)] = &[
        ("static", SourceKind::Static),
        ("botguard", SourceKind::BotGuard),
        ("provider", SourceKind::Provider),
        ("cold_start", SourceKind::ColdStart),
    ];
}

/// `[tokens.botguard]`: the built-in minter.
#[derive(Debug, Clone)]
pub struct BotGuardConfig {
    pub settings: BotGuardSettings,
    /// Warm a minter at start-up instead of on the first request.
    pub prewarm: bool,
}

#[derive(Debug, Clone)]
pub struct TokensConfig {
    pub sources: Vec<SourceKind>,
    pub ttl: Duration,
    pub cache_file: Option<PathBuf>,
    pub botguard: BotGuardConfig,
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
}
