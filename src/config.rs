//! Configuration: the TOML file as written (`RawConfig`), then validated and resolved into
//! [`Config`], a bundle of the settings types each module owns (`upstream::UpstreamConfig`,
//! `tokens::TokensConfig`, `api::ApiConfig`, ...). Only the app reads the bundle; a module gets
//! its own part and never imports this one.
//!
//! Three steps, in the ripgrep manner: *parse* (serde, unknown keys rejected by name), *validate*
//! (every value checked, errors name the key and the value), *resolve* (defaults filled in,
//! environment and command line applied on top). Nothing downstream re-checks a value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::access::{AccessConfig, AuthBackoff, Users};
use crate::botguard::minter::BotGuardSettings;
use crate::botguard::waa::{ChallengeSource, WaaEndpoint};
use crate::browser::BrowserSettings;
use crate::intercept::HostPattern;
use crate::token::{Token, TokenFormatError};
use crate::upstream::Egress;

// Each module owns its settings type; re-exported here so callers configuring potproxy as a
// library find every settings type in one place.
pub use crate::api::{ApiConfig, DEFAULT_API_LISTEN, DEFAULT_COMPAT_VERSION};
pub use crate::cluster::ClusterConfig;
pub use crate::intercept::DEFAULT_INTERCEPT_HOSTS;
pub use crate::tokens::{BotGuardConfig, SourceKind, TokensConfig};
pub use crate::upstream::UpstreamConfig;

/// Environment variable existing yt-dlp backends read a PO token from.
pub const ENV_STATIC_TOKEN: &str = "YT_DLP_PO_TOKEN";
/// Environment variable bgutil reads the token cache TTL from, in hours.
pub const ENV_TOKEN_TTL: &str = "TOKEN_TTL";
pub const DEFAULT_CACHE_FILE: &str = "token-cache.json";

/// The placeholder recognised without configuration (yt-dlp keeps it unchanged: base64url
/// letters only, length a multiple of 4).
pub const DEFAULT_SENTINEL: &str = "POTPROXYSENTINEL";

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a configuration could not be used. Every variant names the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}` has invalid value `{value}`: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    fn invalid(
        key: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parse: the file as written.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub api: Option<RawApi>,
    pub bindings: Option<RawBindings>,
    pub strict: Option<bool>,
    pub ca: Option<RawCa>,
    pub intercept: Option<RawIntercept>,
    pub upstream: Option<RawUpstream>,
    pub tokens: Option<RawTokens>,
    pub rewrite: Option<RawRewrite>,
    pub timeouts: Option<RawTimeouts>,
    pub limits: Option<RawLimits>,
    pub cluster: Option<RawCluster>,
    pub auth: Option<RawAuth>,
    pub access: Option<RawAccess>,
    pub socks: Option<RawSocks>,
    pub transparent: Option<RawTransparent>,
    pub sabr: Option<RawSabr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSabr {
    pub gateway: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransparent {
    pub listen: Option<String>,
    pub mark: Option<i64>,
    pub tproxy: Option<bool>,
}

/// `SO_MARK` potproxy's own connections carry in transparent mode unless `[transparent] mark`
/// says otherwise ("PP").
pub const DEFAULT_MARK: u32 = 0x5050;

/// `[transparent]`: a listener for connections redirected by the firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparentConfig {
    pub listen: SocketAddr,
    /// `SO_MARK` of potproxy's own connections (`None`: not marked).
    pub mark: Option<u32>,
    /// The listener is a TPROXY target (`IP_TRANSPARENT`): the original destination is the
    /// socket's local address instead of `SO_ORIGINAL_DST`.
    pub tproxy: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSocks {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub client_idle_secs: Option<u64>,
    pub tunnel_idle_secs: Option<u64>,
    pub upstream_headers_secs: Option<u64>,
    pub upstream_idle_secs: Option<u64>,
    pub drain_secs: Option<u64>,
    pub shutdown_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub users: Option<Vec<String>>,
    pub max_failures: Option<u32>,
    pub failure_window_secs: Option<u64>,
    pub backoff_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<usize>,
    pub sessions: Option<usize>,
    pub identities: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    pub loopback_destinations: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntercept {
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub proxy: Option<String>,
    pub resolve: Option<BTreeMap<String, String>>,
    pub extra_ca_certs: Option<Vec<String>>,
    pub connect_timeout_secs: Option<u64>,
    pub http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    pub sources: Option<Vec<String>>,
    /// Hours.
    pub ttl: Option<f64>,
    pub cache_file: Option<String>,
    #[serde(rename = "static")]
    pub static_: Option<RawStatic>,
    pub sentinels: Option<Vec<String>>,
    pub always_replace: Option<bool>,
    /// Seconds a source whose tokens keep being refused is set aside for an egress.
    pub set_aside_secs: Option<u64>,
    /// Prove a new minter's first token before clients meet it.
    pub prove_new_minters: Option<bool>,
    pub botguard: Option<RawBotGuard>,
    pub provider: Option<RawProvider>,
    pub browser: Option<RawBrowser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBotGuard {
    pub challenge: Option<Vec<String>>,
    pub endpoint: Option<String>,
    pub user_agent: Option<String>,
    pub vm_timeout_secs: Option<u64>,
    pub warmup_wait_secs: Option<u64>,
    pub prewarm: Option<bool>,
    pub max_minters: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrowser {
    pub executable: Option<String>,
    pub args: Option<Vec<String>>,
    pub prewarm: Option<bool>,
    pub mint_timeout_secs: Option<u64>,
    pub warmup_timeout_secs: Option<u64>,
    /// `max_browsers` is this cap's earlier name (one browser per egress then).
    #[serde(alias = "max_browsers")]
    pub max_contexts: Option<usize>,
    pub profile_root: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatic {
    pub default: Option<String>,
    pub bindings: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    pub max_body_bytes: Option<usize>,
    pub player_response: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub compat_version: Option<String>,
    pub token: Option<String>,
    pub public: Option<bool>,
    pub ui_exchanges: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub url: Option<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub redis: Option<String>,
    pub prefix: Option<String>,
    pub timeout_ms: Option<u64>,
}

impl std::fmt::Debug for RawCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCluster")
            .field(
                "redis",
                &self.redis.as_deref().map(crate::redact::redact_url),
            )
            .field("prefix", &self.prefix)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBindings {
    pub default_regime: Option<String>,
}

impl RawConfig {
    /// Parses TOML text; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides: environment and command line, applied on top of the file.
// ---------------------------------------------------------------------------------------------

/// Values that win over the file: the command line's flags and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    /// `YT_DLP_PO_TOKEN`: the default static token.
    pub static_token: Option<String>,
    /// `TOKEN_TTL`: token cache TTL in hours (as bgutil reads it).
    pub token_ttl_hours: Option<String>,
    /// `--api-listen` / `POTPROXY_API_LISTEN`: wins over `[api] listen`.
    pub api_listen: Option<String>,
    /// `--api-public` / `POTPROXY_API_PUBLIC`: wins over `[api] public`.
    pub api_public: Option<bool>,
    /// The state directory (see [`crate::state`]): relative `[ca] dir` and `[tokens]
    /// cache_file` are resolved inside it. `None` leaves them as written.
    pub state_dir: Option<PathBuf>,
}

impl Overrides {
    /// Reads the environment variables the proxy honours.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Overrides {
            listen: None,
            static_token: var(ENV_STATIC_TOKEN),
            token_ttl_hours: var(ENV_TOKEN_TTL),
            ..Overrides::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resolve: validated, defaults applied.
// ---------------------------------------------------------------------------------------------

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub strict: bool,
    pub ca_dir: PathBuf,
    pub intercept: Vec<HostPattern>,
    pub upstream: UpstreamConfig,
    pub tokens: TokensConfig,
    pub max_body_bytes: usize,
    pub rewrite_player_response: bool,
    pub default_regime: crate::bindings::Regime,
    pub api: ApiConfig,
    /// Where relative state paths were resolved (`None`: as written, relative to the CWD).
    pub state_dir: Option<PathBuf>,
    pub timeouts: crate::limits::Timeouts,
    pub limits: crate::limits::Limits,
    /// `[cluster]`: the fleet's Redis; `None` runs this node alone.
    pub cluster: Option<ClusterConfig>,
    /// `[auth]` and `[access]`.
    pub access: AccessConfig,
    /// `[socks] listen`: the SOCKS5 listener; `None` (the default) runs none.
    pub socks: Option<SocketAddr>,
    /// `[transparent]`: the listener for redirected connections; `None` runs none.
    pub transparent: Option<TransparentConfig>,
    /// `[sabr]`: the gateway for SABR-only formats.
    pub sabr: crate::sabr::SabrSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config::resolve(RawConfig::default(), Overrides::default())
            .expect("the built-in defaults are valid")
    }
}

impl Config {
    /// Validates `raw`, applies `overrides`, and fills in defaults.
    pub fn resolve(raw: RawConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        let listen_text = overrides
            .listen
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "listen",
                &listen_text,
                "expected ip:port, e.g. 127.0.0.1:8080",
            )
        })?;

        let ca_dir = PathBuf::from(raw.ca.and_then(|c| c.dir).unwrap_or_else(|| "certs".into()));
        if ca_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("ca.dir", "", "must name a directory"));
        }

        let hosts = raw.intercept.and_then(|i| i.hosts).unwrap_or_else(|| {
            DEFAULT_INTERCEPT_HOSTS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let intercept = hosts
            .iter()
            .map(|h| {
                HostPattern::parse(h)
                    .map_err(|reason| ConfigError::invalid("intercept.hosts", h, reason))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let upstream = resolve_upstream(raw.upstream.unwrap_or_default())?;
        let cluster = raw
            .cluster
            .map(|c| resolve_cluster(c, &upstream))
            .transpose()?;
        let tokens = resolve_tokens(
            raw.tokens.unwrap_or_default(),
            overrides.static_token,
            overrides.token_ttl_hours,
        )?;

        let rewrite = raw.rewrite.unwrap_or_default();
        let max_body_bytes = rewrite.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 || max_body_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::invalid(
                "rewrite.max_body_bytes",
                max_body_bytes.to_string(),
                "must be between 1 and 67108864",
            ));
        }

        let default_regime = match raw
            .bindings
            .and_then(|b| b.default_regime)
            .as_deref()
            .unwrap_or("video")
        {
            "video" => crate::bindings::Regime::Video,
            "session" => crate::bindings::Regime::Session,
            other => {
                return Err(ConfigError::invalid(
                    "bindings.default_regime",
                    other,
                    "expected video or session",
                ));
            }
        };
        let raw_api = raw.api.unwrap_or_default();
        let api_listen_text = overrides
            .api_listen
            .or(raw_api.listen)
            .unwrap_or_else(|| DEFAULT_API_LISTEN.to_string());
        let api_listen = api_listen_text.parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "api.listen",
                &api_listen_text,
                "expected ip:port, e.g. 127.0.0.1:4416",
            )
        })?;
        let compat_version = raw_api
            .compat_version
            .unwrap_or_else(|| DEFAULT_COMPAT_VERSION.to_string());
        if compat_version
            .split('.')
            .next()
            .is_none_or(|m| m.parse::<u32>().is_err())
        {
            return Err(ConfigError::invalid(
                "api.compat_version",
                &compat_version,
                "expected a version such as 2.0.2",
            ));
        }
        let ui_exchanges = raw_api
            .ui_exchanges
            .unwrap_or(crate::observe::recent::DEFAULT_CAPACITY);
        if !(1..=crate::observe::recent::MAX_CAPACITY).contains(&ui_exchanges) {
            return Err(ConfigError::invalid(
                "api.ui_exchanges",
                ui_exchanges.to_string(),
                "expected 1 to 100000",
            ));
        }
        let api = ApiConfig {
            ui_exchanges,
            enabled: raw_api.enabled.unwrap_or(true),
            listen: api_listen,
            compat_version,
            token: resolve_api_token(raw_api.token)?,
            public: overrides.api_public.or(raw_api.public).unwrap_or(false),
        };
        if api.enabled
            && crate::access::api_needs_token_or_public(
                api.listen.ip(),
                api.token.is_some(),
                api.public,
            )
        {
            return Err(ConfigError::invalid(
                "api.listen",
                api.listen.to_string(),
                "the provider API listens off loopback: set [api] token (clients send it as a \
                 bearer token), or [api] public = true (POTPROXY_API_PUBLIC=true) to serve it to \
                 anyone who can reach it, or listen on 127.0.0.1",
            ));
        }
        let access = resolve_access(raw.auth.unwrap_or_default(), raw.access.unwrap_or_default())?;
        let timeouts = resolve_timeouts(raw.timeouts.unwrap_or_default())?;
        let limits = resolve_limits(raw.limits.unwrap_or_default())?;
        let socks = match raw.socks.and_then(|s| s.listen) {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    "socks.listen",
                    &text,
                    "expected ip:port, e.g. 127.0.0.1:1080",
                )
            })?),
        };
        let transparent = resolve_transparent(raw.transparent.unwrap_or_default())?;
        // Marked connections are the ones redirect rules let pass: every upstream socket.
        let mut upstream = upstream;
        upstream.mark = transparent.as_ref().and_then(|t| t.mark);
        let mut config = Config {
            listen,
            socks,
            transparent,
            api,
            timeouts,
            limits,
            cluster,
            access,
            rewrite_player_response: rewrite.player_response.unwrap_or(false),
            sabr: crate::sabr::SabrSettings {
                gateway: raw.sabr.as_ref().and_then(|s| s.gateway).unwrap_or(true),
            },
            default_regime,
            strict: raw.strict.unwrap_or(false),
            ca_dir,
            intercept,
            upstream,
            tokens,
            max_body_bytes,
            state_dir: None,
        };
        if let Some(dir) = overrides.state_dir {
            config.place_state_in(&dir);
        }
        Ok(config)
    }

    /// Resolves the relative state paths (`[ca] dir`, `[tokens] cache_file`, `[tokens.browser]
    /// profile_root`, by default `browser`) inside `dir`.
    fn place_state_in(&mut self, dir: &Path) {
        // Joining an absolute path yields it unchanged.
        self.ca_dir = dir.join(&self.ca_dir);
        self.tokens.cache_file = self.tokens.cache_file.as_deref().map(|f| dir.join(f));
        let profiles = self.tokens.browser.profile_root.take();
        self.tokens.browser.profile_root =
            Some(dir.join(profiles.as_deref().unwrap_or(Path::new("browser"))));
        self.state_dir = Some(dir.to_path_buf());
    }

    /// Loads `path` (when given), applies the environment and `overrides`.
    pub fn load(path: Option<&Path>, mut overrides: Overrides) -> Result<Self, ConfigError> {
        let raw = match path {
            Some(p) => RawConfig::load(p)?,
            None => RawConfig::default(),
        };
        let env = Overrides::from_env();
        if overrides.static_token.is_none() {
            overrides.static_token = env.static_token;
        }
        if overrides.token_ttl_hours.is_none() {
            overrides.token_ttl_hours = env.token_ttl_hours;
        }
        Config::resolve(raw, overrides)
    }
}

/// `[timeouts]`: whole seconds; 0 is refused (it would close everything at once), and so is
/// anything over a day (a typo, not a limit).
fn resolve_timeouts(raw: RawTimeouts) -> Result<crate::limits::Timeouts, ConfigError> {
    let d = crate::limits::Timeouts::default();
    let secs = |key: &str, v: Option<u64>, default: Duration| match v {
        None => Ok(default),
        Some(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
        Some(n) => Err(ConfigError::invalid(
            format!("timeouts.{key}"),
            n.to_string(),
            "must be between 1 and 86400 seconds",
        )),
    };
    Ok(crate::limits::Timeouts {
        client_idle: secs("client_idle_secs", raw.client_idle_secs, d.client_idle)?,
        tunnel_idle: secs("tunnel_idle_secs", raw.tunnel_idle_secs, d.tunnel_idle)?,
        upstream_headers: secs(
            "upstream_headers_secs",
            raw.upstream_headers_secs,
            d.upstream_headers,
        )?,
        upstream_idle: secs(
            "upstream_idle_secs",
            raw.upstream_idle_secs,
            d.upstream_idle,
        )?,
        drain: secs("drain_secs", raw.drain_secs, d.drain)?,
        shutdown: secs("shutdown_secs", raw.shutdown_secs, d.shutdown)?,
    })
}

/// `[limits]`: each at least 1; an unset `max_connections` derives it from the descriptor
/// limit.
fn resolve_limits(raw: RawLimits) -> Result<crate::limits::Limits, ConfigError> {
    let d = crate::limits::Limits::default();
    let count = |key: &str, v: Option<usize>, max: usize| match v {
        Some(n) if !(1..=max).contains(&n) => Err(ConfigError::invalid(
            format!("limits.{key}"),
            n.to_string(),
            format!("must be between 1 and {max}"),
        )),
        v => Ok(v),
    };
    Ok(crate::limits::Limits {
        max_connections: count("max_connections", raw.max_connections, 1_000_000)?,
        sessions: count("sessions", raw.sessions, 10_000_000)?.unwrap_or(d.sessions),
        identities: count("identities", raw.identities, 10_000_000)?.unwrap_or(d.identities),
    })
}

fn resolve_upstream(raw: RawUpstream) -> Result<UpstreamConfig, ConfigError> {
    let mut resolve = Vec::new();
    for (host, addr) in raw.resolve.unwrap_or_default() {
        let key = format!("upstream.resolve.\"{host}\"");
        let pattern = HostPattern::parse(&host)
            .map_err(|reason| ConfigError::invalid(&key, &host, reason))?;
        let addr = addr
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::invalid(&key, &addr, "expected \"ip:port\""))?;
        resolve.push((pattern, addr));
    }
    // Exact names win over wildcards; longer wildcard suffixes win over shorter ones.
    resolve.sort_by_key(|(p, _)| p.specificity());

    let mut extra_ca_certs = Vec::new();
    for path in raw.extra_ca_certs.unwrap_or_default() {
        let p = PathBuf::from(&path);
        if !p.is_file() {
            return Err(ConfigError::invalid(
                "upstream.extra_ca_certs",
                &path,
                "no such file",
            ));
        }
        extra_ca_certs.push(p);
    }

    let secs = raw.connect_timeout_secs.unwrap_or(10);
    if secs == 0 || secs > 300 {
        return Err(ConfigError::invalid(
            "upstream.connect_timeout_secs",
            secs.to_string(),
            "must be between 1 and 300",
        ));
    }

    let proxy = match raw.proxy {
        Some(p) => Egress::parse(&p).map_err(|e| {
            ConfigError::invalid(
                "upstream.proxy",
                crate::redact::redact_url(&p),
                e.to_string(),
            )
        })?,
        None => Egress::Direct,
    };
    Ok(UpstreamConfig {
        resolve,
        extra_ca_certs,
        connect_timeout: Duration::from_secs(secs),
        http2: raw.http2.unwrap_or(false),
        proxy,
        mark: None,
    })
}

/// `[transparent]`: off unless `listen` is set; then potproxy's own connections carry
/// `mark` (default [`DEFAULT_MARK`]; 0 turns marking off, for setups that exempt by owner).
fn resolve_transparent(raw: RawTransparent) -> Result<Option<TransparentConfig>, ConfigError> {
    let Some(text) = raw.listen else {
        return Ok(None);
    };
    let listen = text.parse::<SocketAddr>().map_err(|_| {
        ConfigError::invalid(
            "transparent.listen",
            &text,
            "expected ip:port, e.g. 0.0.0.0:8443",
        )
    })?;
    let mark = match raw.mark.unwrap_or(DEFAULT_MARK as i64) {
        0 => None,
        m if (1..=u32::MAX as i64).contains(&m) => Some(m as u32),
        m => {
            return Err(ConfigError::invalid(
                "transparent.mark",
                m.to_string(),
                "must be between 0 and 4294967295",
            ));
        }
    };
    Ok(Some(TransparentConfig {
        listen,
        mark,
        tproxy: raw.tproxy.unwrap_or(false),
    }))
}

fn resolve_cluster(
    raw: RawCluster,
    upstream: &UpstreamConfig,
) -> Result<ClusterConfig, ConfigError> {
    let Some(url) = raw.redis else {
        return Err(ConfigError::invalid(
            "cluster.redis",
            "",
            "required in [cluster]: redis://[user:password@]host:port[/db] or rediss://...",
        ));
    };
    ClusterConfig::check_url(&url).map_err(|reason| {
        ConfigError::invalid("cluster.redis", crate::redact::redact_url(&url), reason)
    })?;
    let prefix = raw
        .prefix
        .unwrap_or_else(|| crate::cluster::DEFAULT_PREFIX.to_string());
    if prefix.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "cluster.prefix",
            &prefix,
            "must not contain whitespace",
        ));
    }
    let timeout_ms = raw
        .timeout_ms
        .unwrap_or(crate::cluster::DEFAULT_TIMEOUT.as_millis() as u64);
    if timeout_ms == 0 || timeout_ms > 10_000 {
        return Err(ConfigError::invalid(
            "cluster.timeout_ms",
            timeout_ms.to_string(),
            "must be between 1 and 10000",
        ));
    }
    Ok(ClusterConfig {
        url,
        prefix,
        timeout: Duration::from_millis(timeout_ms),
        extra_ca_certs: upstream.extra_ca_certs.clone(),
    })
}

fn resolve_api_token(token: Option<String>) -> Result<Option<String>, ConfigError> {
    match token {
        None => Ok(None),
        Some(t) if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(ConfigError::invalid(
                "api.token",
                crate::redact::redact(&t),
                "must be at least 16 printable characters without spaces",
            ))
        }
        Some(t) => Ok(Some(t)),
    }
}

fn resolve_access(auth: RawAuth, access: RawAccess) -> Result<AccessConfig, ConfigError> {
    let entries = auth.users.unwrap_or_default();
    let users = Users::parse(&entries).map_err(|(i, e)| {
        let name = entries[i].split(':').next().unwrap_or_default();
        ConfigError::invalid(
            format!("auth.users[{i}]"),
            format!("{name}:***"),
            e.to_string(),
        )
    })?;
    let defaults = AuthBackoff::default();
    let secs = |key: &str, v: Option<u64>, default: Duration| match v {
        None => Ok(default),
        Some(s @ 1..=86_400) => Ok(Duration::from_secs(s)),
        Some(s) => Err(ConfigError::invalid(
            key,
            s.to_string(),
            "expected seconds, 1-86400",
        )),
    };
    Ok(AccessConfig {
        users,
        loopback_destinations: access.loopback_destinations.unwrap_or(false),
        auth_backoff: AuthBackoff {
            max_failures: auth.max_failures.unwrap_or(defaults.max_failures),
            window: secs(
                "auth.failure_window_secs",
                auth.failure_window_secs,
                defaults.window,
            )?,
            backoff: secs("auth.backoff_secs", auth.backoff_secs, defaults.backoff)?,
        },
    })
}

fn resolve_tokens(
    raw: RawTokens,
    env_default: Option<String>,
    env_ttl: Option<String>,
) -> Result<TokensConfig, ConfigError> {
    let parse = |key: &str, value: &str| -> Result<Token, ConfigError> {
        Token::parse(value).map_err(|e: TokenFormatError| {
            ConfigError::invalid(key, crate::redact::redact(value), e.to_string())
        })
    };
    let raw_static = raw.static_.unwrap_or_default();
    let static_default = match (env_default, raw_static.default) {
        (Some(env), _) => Some(parse(ENV_STATIC_TOKEN, &env)?),
        (None, Some(file)) => Some(parse("tokens.static.default", &file)?),
        (None, None) => None,
    };
    let mut static_bindings = BTreeMap::new();
    for (binding, token) in raw_static.bindings.unwrap_or_default() {
        let key = format!("tokens.static.bindings.\"{binding}\"");
        if binding.trim().is_empty() {
            return Err(ConfigError::invalid(
                key,
                binding,
                "binding must not be empty",
            ));
        }
        static_bindings.insert(binding, parse(&key, &token)?);
    }
    let sentinels = raw
        .sentinels
        .unwrap_or_else(|| vec![DEFAULT_SENTINEL.to_string()]);
    for s in &sentinels {
        if s.trim().is_empty() {
            return Err(ConfigError::invalid(
                "tokens.sentinels",
                s,
                "a sentinel must not be empty",
            ));
        }
    }
    let browser = resolve_browser(raw.browser.unwrap_or_default())?;
    let explicit_sources = raw.sources.is_some();
    let names = raw.sources.unwrap_or_default();
    let mut sources = Vec::new();
    for n in &names {
        let kind = SourceKind::ALL
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "tokens.sources",
                    n,
                    "expected one of static, botguard, provider, cold_start, browser",
                )
            })?;
        if sources.contains(&kind) {
            return Err(ConfigError::invalid("tokens.sources", n, "listed twice"));
        }
        sources.push(kind);
    }
    if !explicit_sources {
        sources = SourceKind::defaults(browser.executable.is_some());
        if browser.executable.is_none() {
            tracing::info!(
                "no browser found on PATH (tried {}): tokens are minted in QuickJS only; install Chromium for browser-grade tokens",
                crate::browser::CANDIDATES.join(", ")
            );
        }
    }
    if sources.contains(&SourceKind::Browser) && browser.executable.is_none() {
        return Err(ConfigError::invalid(
            "tokens.sources",
            "browser",
            "no browser found on PATH; set [tokens.browser] executable",
        ));
    }
    let ttl_hours = match env_ttl {
        Some(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| ConfigError::invalid(ENV_TOKEN_TTL, &t, "expected hours, e.g. 6"))?,
        None => raw.ttl.unwrap_or(6.0),
    };
    if !(ttl_hours > 0.0 && ttl_hours <= 24.0 * 30.0) {
        return Err(ConfigError::invalid(
            "tokens.ttl",
            ttl_hours.to_string(),
            "hours between 0 and 720",
        ));
    }
    let raw_provider = raw.provider.unwrap_or_default();
    let provider_timeout = match raw_provider.timeout_secs.unwrap_or(20) {
        t @ 1..=300 => Duration::from_secs(t),
        t => {
            return Err(ConfigError::invalid(
                "tokens.provider.timeout_secs",
                t.to_string(),
                "seconds between 1 and 300",
            ));
        }
    };
    let provider_url = match raw_provider.url {
        Some(u) => {
            let parsed = url::Url::parse(&u).map_err(|e| {
                ConfigError::invalid("tokens.provider.url", &u, format!("not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    "tokens.provider.url",
                    &u,
                    "expected an http:// or https:// URL",
                ));
            }
            Some(parsed)
        }
        None => None,
    };
    if sources.contains(&SourceKind::Provider) && provider_url.is_none() {
        return Err(ConfigError::invalid(
            "tokens.sources",
            "provider",
            "the provider source needs [tokens.provider] url",
        ));
    }
    let cache_file = match raw.cache_file {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(PathBuf::from(f)),
        None => Some(PathBuf::from(DEFAULT_CACHE_FILE)),
    };
    Ok(TokensConfig {
        sources,
        ttl: Duration::from_secs_f64(ttl_hours * 3600.0),
        cache_file,
        botguard: resolve_botguard(raw.botguard.unwrap_or_default())?,
        browser,
        provider_url,
        provider_timeout,
        static_default,
        static_bindings,
        sentinels,
        always_replace: raw.always_replace.unwrap_or(false),
        set_aside: resolve_set_aside(raw.set_aside_secs)?,
        prove_new_minters: raw.prove_new_minters.unwrap_or(true),
    })
}

/// `[tokens.browser]`: an `executable` is a path, or a name looked up on `PATH`; without one,
/// the first known browser on `PATH` (none: the `browser` source is unavailable).
fn resolve_browser(raw: RawBrowser) -> Result<BrowserSettings, ConfigError> {
    let mut s = BrowserSettings::default();
    if let Some(exe) = raw.executable {
        let path = std::path::Path::new(&exe);
        let found = if exe.contains('/') {
            path.is_file().then(|| path.to_path_buf())
        } else {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(&exe))
                    .find(|c| c.is_file())
            })
        };
        s.executable = Some(found.ok_or_else(|| {
            ConfigError::invalid(
                "tokens.browser.executable",
                &exe,
                "no such file (a path, or a name on PATH)",
            )
        })?);
    }
    if let Some(args) = raw.args {
        if let Some(a) = args.iter().find(|a| !a.starts_with("--")) {
            return Err(ConfigError::invalid(
                "tokens.browser.args",
                a,
                "each argument must be a flag starting with --",
            ));
        }
        s.args = args;
    }
    if let Some(p) = raw.prewarm {
        s.prewarm = p;
    }
    let secs = |key: &str, v: Option<u64>, default: Duration| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(v @ 1..=300) => Ok(Duration::from_secs(v)),
            Some(v) => Err(ConfigError::invalid(
                key,
                v.to_string(),
                "seconds between 1 and 300",
            )),
        }
    };
    s.mint_timeout = secs(
        "tokens.browser.mint_timeout_secs",
        raw.mint_timeout_secs,
        s.mint_timeout,
    )?;
    s.warmup_timeout = secs(
        "tokens.browser.warmup_timeout_secs",
        raw.warmup_timeout_secs,
        s.warmup_timeout,
    )?;
    s.max_contexts = cap(
        "tokens.browser.max_contexts",
        raw.max_contexts,
        s.max_contexts,
        crate::browser::MAX_MAX_CONTEXTS,
    )?;
    if let Some(root) = raw.profile_root {
        if root.is_empty() {
            return Err(ConfigError::invalid(
                "tokens.browser.profile_root",
                "",
                "must name a directory",
            ));
        }
        s.profile_root = Some(PathBuf::from(root));
    }
    Ok(s)
}

/// `[tokens] set_aside_secs`: from a minute to a day.
fn resolve_set_aside(raw: Option<u64>) -> Result<Duration, ConfigError> {
    match raw {
        None => Ok(crate::tokens::DEFAULT_SET_ASIDE),
        Some(t @ 60..=86_400) => Ok(Duration::from_secs(t)),
        Some(t) => Err(ConfigError::invalid(
            "tokens.set_aside_secs",
            t.to_string(),
            "seconds between 60 and 86400",
        )),
    }
}

fn resolve_botguard(raw: RawBotGuard) -> Result<BotGuardConfig, ConfigError> {
    let mut settings = BotGuardSettings::default();
    if let Some(list) = raw.challenge {
        let mut order = Vec::new();
        for c in &list {
            order.push(ChallengeSource::parse(c).ok_or_else(|| {
                ConfigError::invalid(
                    "tokens.botguard.challenge",
                    c,
                    "expected page, att_get, tv or create",
                )
            })?);
        }
        if order.is_empty() {
            return Err(ConfigError::invalid(
                "tokens.botguard.challenge",
                "[]",
                "name at least one challenge source",
            ));
        }
        settings.challenge_order = order;
    }
    if let Some(e) = raw.endpoint {
        settings.endpoint = match e.as_str() {
            "youtube" => WaaEndpoint::YouTube,
            "googleapis" => WaaEndpoint::Googleapis,
            _ => {
                return Err(ConfigError::invalid(
                    "tokens.botguard.endpoint",
                    e,
                    "expected youtube or googleapis",
                ));
            }
        };
    }
    if let Some(ua) = raw.user_agent {
        if !ua.contains("AppleWebKit") {
            return Err(ConfigError::invalid(
                "tokens.botguard.user_agent",
                ua,
                "BotGuard needs a WebKit user agent (containing AppleWebKit)",
            ));
        }
        settings.user_agent = ua;
    }
    let secs =
        |key: &str, v: Option<u64>, default: u64, max: u64| -> Result<Duration, ConfigError> {
            let v = v.unwrap_or(default);
            if v == 0 || v > max {
                return Err(ConfigError::invalid(
                    key,
                    v.to_string(),
                    format!("seconds between 1 and {max}"),
                ));
            }
            Ok(Duration::from_secs(v))
        };
    settings.vm.op_timeout = secs(
        "tokens.botguard.vm_timeout_secs",
        raw.vm_timeout_secs,
        10,
        120,
    )?;
    settings.warmup_wait = secs(
        "tokens.botguard.warmup_wait_secs",
        raw.warmup_wait_secs,
        20,
        300,
    )?;
    Ok(BotGuardConfig {
        settings,
        prewarm: raw.prewarm.unwrap_or(true),
        max_minters: cap(
            "tokens.botguard.max_minters",
            raw.max_minters,
            crate::botguard::pool::DEFAULT_MAX_MINTERS,
            crate::botguard::pool::MAX_MAX_MINTERS,
        )?,
    })
}

/// A per-egress cap: from 1 to `max`.
fn cap(key: &str, v: Option<usize>, default: usize, max: usize) -> Result<usize, ConfigError> {
    match v.unwrap_or(default) {
        v @ 1.. if v <= max => Ok(v),
        v => Err(ConfigError::invalid(
            key,
            v.to_string(),
            format!("expected 1 to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::resolve(
            RawConfig::parse(text, Path::new("t.toml"))?,
            Overrides::default(),
        )
    }

    #[test]
    fn access_keys_are_validated_and_name_key_without_the_password() {
        let c = parse("[auth]\nusers = [\"me:pw\"]\n[access]\nloopback_destinations = true\n[api]\ntoken = \"0123456789abcdef\"\n").unwrap();
        assert!(!c.access.users.is_empty());
        assert!(c.access.loopback_destinations);
        assert_eq!(c.api.token.as_deref(), Some("0123456789abcdef"));
        let d = parse("").unwrap();
        assert!(
            d.access.users.is_empty() && !d.access.loopback_destinations && d.api.token.is_none()
        );
        let e = parse("[auth]\nusers = [\"ok:pw\", \"bob\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auth.users[1]") && e.contains("name:password"),
            "{e}"
        );
        let e = parse("[auth]\nusers = [\"bob:\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.users[0]") && e.contains("bob:***"), "{e}");
        let e = parse("[api]\ntoken = \"short-secret\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.token") && !e.contains("short-secret"),
            "{e}"
        );
    }

    #[test]
    fn auth_backoff_keys_default_and_are_validated() {
        let d = parse("").unwrap().access.auth_backoff;
        assert_eq!(d, AuthBackoff::default());
        let c = parse("[auth]\nmax_failures = 3\nfailure_window_secs = 5\nbackoff_secs = 2\n")
            .unwrap()
            .access
            .auth_backoff;
        assert_eq!(c.max_failures, 3);
        assert_eq!(c.window, Duration::from_secs(5));
        assert_eq!(c.backoff, Duration::from_secs(2));
        let e = parse("[auth]\nbackoff_secs = 0\n").unwrap_err().to_string();
        assert!(e.contains("auth.backoff_secs"), "{e}");
        let e = parse("[auth]\nfailure_window_secs = 100000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.failure_window_secs"), "{e}");
    }

    #[test]
    fn an_api_off_loopback_needs_a_token_or_public_to_start() {
        for listen in ["0.0.0.0:4416", "192.168.1.5:4416", "[::]:4416"] {
            let e = parse(&format!("[api]\nlisten = \"{listen}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("api.listen") && e.contains("[api] token") && e.contains("[api] public"),
                "{e}"
            );
            let with_token = parse(&format!(
                "[api]\nlisten = \"{listen}\"\ntoken = \"0123456789abcdef\"\n"
            ))
            .unwrap();
            assert!(!with_token.api.public);
            let public = parse(&format!("[api]\nlisten = \"{listen}\"\npublic = true\n")).unwrap();
            assert!(public.api.public && public.api.token.is_none());
            parse(&format!("[api]\nlisten = \"{listen}\"\nenabled = false\n")).unwrap();
        }
        assert!(!parse("").unwrap().api.public);
        let raw = RawConfig::parse("", Path::new("t")).unwrap();
        let over = Overrides {
            api_listen: Some("0.0.0.0:4416".into()),
            api_public: Some(true),
            ..Overrides::default()
        };
        assert!(Config::resolve(raw, over).unwrap().api.public);
        let raw = RawConfig::parse("[api]\npublic = true\n", Path::new("t")).unwrap();
        let over = Overrides {
            api_listen: Some("0.0.0.0:4416".into()),
            api_public: Some(false),
            ..Overrides::default()
        };
        let e = Config::resolve(raw, over).unwrap_err().to_string();
        assert!(e.contains("api.listen"), "{e}");
    }

    #[test]
    fn an_https_proxy_url_is_refused_naming_the_key() {
        let e = parse("[upstream]\nproxy = \"https://u:secret@proxy.example:443\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.proxy") && e.contains("https"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    const TOKEN: &str = "MlsBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn defaults_listen_on_loopback_8080_and_intercept_youtube_hosts() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.ca_dir, PathBuf::from("certs"));
        assert_eq!(c.intercept.len(), DEFAULT_INTERCEPT_HOSTS.len());
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(!c.strict);
    }

    #[test]
    fn without_cluster_a_node_runs_alone_and_cluster_keys_get_defaults() {
        assert!(parse("").unwrap().cluster.is_none());
        let c = parse("[cluster]\nredis = \"redis://10.0.0.5:6379/2\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(c.url, "redis://10.0.0.5:6379/2");
        assert_eq!(c.prefix, "potproxy:");
        assert_eq!(c.timeout, Duration::from_millis(200));
    }

    #[test]
    fn bad_cluster_values_name_key_and_value_without_the_password() {
        let e = parse("[cluster]\nredis = \"http://u:hunter2@h:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster.redis") && e.contains("http://u:***@h:1"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse("[cluster]\nprefix = \"x:\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.redis"), "{e}");
        let e = parse("[cluster]\nredis = \"redis://h:1\"\ntimeout_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.timeout_ms") && e.contains("`0`"), "{e}");
    }

    #[test]
    fn per_egress_caps_default_and_reject_zero_and_huge_values_naming_the_key() {
        let c = parse("").unwrap();
        assert_eq!(c.tokens.botguard.max_minters, 16);
        assert_eq!(c.tokens.browser.max_contexts, 8);
        let c = parse("[tokens.botguard]\nmax_minters = 3\n[tokens.browser]\nmax_contexts = 2\n")
            .unwrap();
        assert_eq!(c.tokens.botguard.max_minters, 3);
        assert_eq!(c.tokens.browser.max_contexts, 2);
        // The cap's earlier name still sets it.
        let c = parse("[tokens.browser]\nmax_browsers = 3\n").unwrap();
        assert_eq!(c.tokens.browser.max_contexts, 3);
        for (table, key, bad) in [
            ("botguard", "max_minters", "0"),
            ("botguard", "max_minters", "5000"),
            ("browser", "max_contexts", "0"),
            ("browser", "max_contexts", "65"),
        ] {
            let e = parse(&format!("[tokens.{table}]\n{key} = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("tokens.{table}.{key}")) && e.contains(&format!("`{bad}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named_in_the_error() {
        let e = parse("[upstream]\nresolv = {}\n").unwrap_err().to_string();
        assert!(e.contains("resolv"), "{e}");
    }

    #[test]
    fn bad_resolve_address_names_key_and_value() {
        let e = parse("[upstream.resolve]\n\"*.googlevideo.com\" = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.resolve.\"*.googlevideo.com\""), "{e}");
        assert!(e.contains("nowhere"), "{e}");
    }

    #[test]
    fn bad_listen_names_key_and_value() {
        let e = parse("listen = \"localhost\"").unwrap_err().to_string();
        assert!(e.contains("`listen`") && e.contains("localhost"), "{e}");
    }

    #[test]
    fn ui_exchanges_defaults_to_500_and_rejects_zero_and_huge_rings() {
        assert_eq!(parse("").unwrap().api.ui_exchanges, 500);
        assert_eq!(
            parse("[api]\nui_exchanges = 20").unwrap().api.ui_exchanges,
            20
        );
        for bad in ["0", "100001"] {
            let e = parse(&format!("[api]\nui_exchanges = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("api.ui_exchanges") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn timeouts_and_limits_default_and_reject_zero_naming_key_and_value() {
        let c = parse("").unwrap();
        assert_eq!(c.timeouts, crate::limits::Timeouts::default());
        assert_eq!(c.limits.max_connections, None);
        let c = parse("[timeouts]\nclient_idle_secs = 5\n[limits]\nmax_connections = 10").unwrap();
        assert_eq!(c.timeouts.client_idle, Duration::from_secs(5));
        assert_eq!(c.limits.max_connections, Some(10));
        let e = parse("[timeouts]\nupstream_idle_secs = 0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timeouts.upstream_idle_secs") && e.contains("`0`"),
            "{e}"
        );
        let e = parse("[limits]\nmax_connections = 0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("limits.max_connections") && e.contains("`0`"),
            "{e}"
        );
    }

    #[test]
    fn env_token_overrides_file_default() {
        let raw = RawConfig::parse(
            &format!("[tokens.static]\ndefault = \"{}\"\n", "A".repeat(8)),
            Path::new("t"),
        )
        .unwrap();
        let c = Config::resolve(
            raw,
            Overrides {
                listen: Some("127.0.0.1:9999".into()),
                static_token: Some(TOKEN.into()),
                token_ttl_hours: Some("2".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.tokens.static_default.unwrap().as_str(), TOKEN);
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.tokens.ttl, Duration::from_secs(7200));
    }

    #[test]
    fn browser_settings_are_validated_naming_key_and_value() {
        let e = parse("[tokens.browser]\nexecutable = \"/nonexistent/chrome\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokens.browser.executable") && e.contains("/nonexistent/chrome"),
            "{e}"
        );
        let e = parse("[tokens.browser]\nexecutable = \"/bin/sh\"\nargs = [\"headless\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokens.browser.args") && e.contains("headless"),
            "{e}"
        );
        let e = parse("[tokens.browser]\nexecutable = \"/bin/sh\"\nmint_timeout_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens.browser.mint_timeout_secs"), "{e}");
        let c = parse(
            "[tokens]\nsources = [\"browser\"]\n[tokens.browser]\nexecutable = \"/bin/sh\"\nargs = [\"--foo\"]\nprewarm = false\n",
        )
        .unwrap();
        assert_eq!(c.tokens.sources, vec![SourceKind::Browser]);
        let b = &c.tokens.browser;
        assert_eq!(b.executable.as_deref(), Some(Path::new("/bin/sh")));
        assert_eq!(
            (b.args.clone(), b.prewarm),
            (vec!["--foo".to_string()], false)
        );
    }

    #[test]
    fn sources_default_to_static_then_browser_when_installed_then_botguard_and_reject_unknown_names()
     {
        let c = parse("").unwrap();
        // The default depends on whether a browser is installed (see SourceKind::defaults).
        let browser = crate::browser::find_executable(std::env::var_os("PATH").as_deref());
        assert_eq!(c.tokens.sources, SourceKind::defaults(browser.is_some()));
        assert_eq!(
            SourceKind::defaults(false),
            vec![SourceKind::Static, SourceKind::BotGuard]
        );
        assert_eq!(
            SourceKind::defaults(true),
            vec![
                SourceKind::Static,
                SourceKind::Browser,
                SourceKind::BotGuard
            ]
        );
        let e = parse("[tokens]\nsources = [\"static\", \"magic\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens.sources") && e.contains("magic"), "{e}");
        let e = parse("[tokens.botguard]\nuser_agent = \"curl/8\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens.botguard.user_agent"), "{e}");
    }

    #[test]
    fn malformed_static_token_is_rejected_without_echoing_it_whole() {
        let e = parse("[tokens.static]\ndefault = \"not a token!!\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens.static.default"), "{e}");
        assert!(!e.contains("not a token!!"), "{e}");
    }

    #[test]
    fn wildcard_resolve_entries_sort_after_exact_names() {
        let c = parse(
            "[upstream.resolve]\n\"*.googlevideo.com\" = \"127.0.0.1:1\"\n\"rr1.googlevideo.com\" = \"127.0.0.1:2\"\n",
        )
        .unwrap();
        assert_eq!(c.upstream.resolve[0].1.port(), 2);
    }

    #[test]
    fn relative_state_paths_land_in_the_state_dir_and_absolute_ones_stay() {
        let in_state_dir = |raw| {
            Config::resolve(
                raw,
                Overrides {
                    state_dir: Some(PathBuf::from("/srv/state")),
                    ..Overrides::default()
                },
            )
            .unwrap()
        };
        let raw = RawConfig::parse(
            "[tokens]\ncache_file = \"/var/tmp/c.json\"\n",
            Path::new("t"),
        )
        .unwrap();
        let c = in_state_dir(raw);
        assert_eq!(c.ca_dir, PathBuf::from("/srv/state/certs"));
        assert_eq!(c.tokens.cache_file, Some(PathBuf::from("/var/tmp/c.json")));
        let c = in_state_dir(RawConfig::default());
        assert_eq!(
            c.tokens.cache_file,
            Some(PathBuf::from("/srv/state/token-cache.json"))
        );
        assert_eq!(c.state_dir, Some(PathBuf::from("/srv/state")));
        assert_eq!(
            c.tokens.browser.profile_root,
            Some(PathBuf::from("/srv/state/browser"))
        );
        for (written, want) in [("profiles", "/srv/state/profiles"), ("/run/pp", "/run/pp")] {
            let raw = RawConfig::parse(
                &format!("[tokens.browser]\nprofile_root = {written:?}\n"),
                Path::new("t"),
            )
            .unwrap();
            let c = in_state_dir(raw);
            assert_eq!(c.tokens.browser.profile_root, Some(PathBuf::from(want)));
        }
    }

    #[test]
    fn api_listen_override_wins_over_the_file_and_is_validated() {
        let raw = RawConfig::parse("[api]\nlisten = \"127.0.0.1:4416\"\n", Path::new("t")).unwrap();
        let c = Config::resolve(
            raw,
            Overrides {
                api_listen: Some("127.0.0.1:4417".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.api.listen.port(), 4417);
        let e = Config::resolve(
            RawConfig::default(),
            Overrides {
                api_listen: Some("nope".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("api.listen") && e.contains("nope"), "{e}");
    }

    #[test]
    fn prove_new_minters_is_on_by_default_and_a_bad_value_names_key_and_value() {
        assert!(parse("").unwrap().tokens.prove_new_minters);
        let off = parse("[tokens]\nprove_new_minters = false\n").unwrap();
        assert!(!off.tokens.prove_new_minters);
        let e = parse("[tokens]\nprove_new_minters = \"sometimes\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prove_new_minters") && e.contains("sometimes"),
            "{e}"
        );
    }
}
