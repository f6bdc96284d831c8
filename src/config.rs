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

use crate::access::{AccessConfig, Users};
use crate::botguard::minter::BotGuardSettings;
use crate::botguard::waa::{ChallengeSource, WaaEndpoint};
use crate::intercept::HostPattern;
use crate::token::{Token, TokenFormatError};
use crate::upstream::Egress;

// Each module owns its settings type; these re-exports keep the `config::` paths working.
pub use crate::api::{ApiConfig, DEFAULT_API_LISTEN, DEFAULT_COMPAT_VERSION};
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
    pub auth: Option<RawAuth>,
    pub access: Option<RawAccess>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub users: Option<Vec<String>>,
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
    pub botguard: Option<RawBotGuard>,
    pub provider: Option<RawProvider>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub url: Option<String>,
    pub timeout_secs: Option<u64>,
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
}

impl Overrides {
    /// Reads the environment variables the proxy honours.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Overrides {
            listen: None,
            static_token: var(ENV_STATIC_TOKEN),
            token_ttl_hours: var(ENV_TOKEN_TTL),
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
    /// `[auth]` and `[access]`.
    pub access: AccessConfig,
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
        let api_listen_text = raw_api
            .listen
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
        let api = ApiConfig {
            enabled: raw_api.enabled.unwrap_or(true),
            listen: api_listen,
            compat_version,
            token: resolve_api_token(raw_api.token)?,
        };
        let access = resolve_access(raw.auth.unwrap_or_default(), raw.access.unwrap_or_default())?;
        Ok(Config {
            listen,
            api,
            access,
            rewrite_player_response: rewrite.player_response.unwrap_or(false),
            default_regime,
            strict: raw.strict.unwrap_or(false),
            ca_dir,
            intercept,
            upstream,
            tokens,
            max_body_bytes,
        })
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
    Ok(AccessConfig {
        users,
        loopback_destinations: access.loopback_destinations.unwrap_or(false),
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
    let names = raw
        .sources
        .unwrap_or_else(|| vec!["static".into(), "botguard".into()]);
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
                    "expected one of static, botguard, provider, cold_start",
                )
            })?;
        if sources.contains(&kind) {
            return Err(ConfigError::invalid("tokens.sources", n, "listed twice"));
        }
        sources.push(kind);
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
        provider_url,
        provider_timeout,
        static_default,
        static_bindings,
        sentinels,
        always_replace: raw.always_replace.unwrap_or(false),
    })
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
                    "expected page, att_get or create",
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
    })
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
            },
        )
        .unwrap();
        assert_eq!(c.tokens.static_default.unwrap().as_str(), TOKEN);
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.tokens.ttl, Duration::from_secs(7200));
    }

    #[test]
    fn sources_default_to_static_then_botguard_and_reject_unknown_names() {
        let c = parse("").unwrap();
        assert_eq!(
            c.tokens.sources,
            vec![SourceKind::Static, SourceKind::BotGuard]
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
}
