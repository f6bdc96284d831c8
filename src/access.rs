//! Who may use the proxy and where it may go: proxy Basic auth (`[auth]`), the client-address
//! rule for open listeners without auth (mitmproxy's `block_global`), the destination rule
//! (`[access] loopback_destinations`, squid's `deny to_localhost`, plus potproxy's own
//! listeners), hop-by-hop header stripping, the back-off after repeated failed proxy logins
//! (`[auth] max_failures`), and the API's token rule. The decisions are pure functions on
//! addresses, header values and instants; [`Gate`] keeps the one piece of state they need (a
//! bounded per-client table of failed logins), counts and logs refusals, and the handler and
//! the API call it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::limits::LogThrottle;
use crate::metrics;

/// The realm clients are asked to authenticate for.
pub const REALM: &str = "potproxy";

/// The `[auth]` and `[access]` settings, validated.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Proxy users; empty: no proxy auth.
    pub users: Users,
    /// Allow CONNECT and absolute-form requests to loopback and link-local addresses.
    pub loopback_destinations: bool,
    /// The back-off after repeated wrong proxy logins.
    pub auth_backoff: AuthBackoff,
}

/// Proxy users, kept as the exact `Proxy-Authorization` values that admit them.
#[derive(Clone, Default)]
pub struct Users {
    expected: Vec<Vec<u8>>,
}

/// Passwords stay out of logs.
impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} configured)", self.expected.len())
    }
}

/// Why an `[auth] users` entry cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("expected name:password")]
    NoColon,
    #[error("the name is empty")]
    EmptyName,
    #[error("the password is empty")]
    EmptyPassword,
}

impl Users {
    /// Parses `name:password` entries (the password may contain `:`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Users, (usize, UserError)> {
        use base64::Engine;
        let mut expected = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let e = e.as_ref();
            let (name, pass) = e.split_once(':').ok_or((i, UserError::NoColon))?;
            if name.is_empty() {
                return Err((i, UserError::EmptyName));
            }
            if pass.is_empty() {
                return Err((i, UserError::EmptyPassword));
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(e);
            expected.push(format!("Basic {b64}").into_bytes());
        }
        Ok(Users { expected })
    }

    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }

    /// True when `header` (a `Proxy-Authorization` value) names a configured user. Every user
    /// is compared, each in constant time, so timing tells nothing about which byte differed.
    pub fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(given) = header.map(HeaderValue::as_bytes) else {
            return false;
        };
        let given = normalize_basic(given);
        self.expected
            .iter()
            .fold(false, |ok, want| ok | constant_time_eq(want, &given))
    }
}

/// `basic  xyz` -> `Basic xyz`: the scheme is case-insensitive, extra blanks are tolerated.
fn normalize_basic(given: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(given);
    let t = text.trim();
    match t.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
            format!("Basic {}", rest.trim()).into_bytes()
        }
        _ => t.as_bytes().to_vec(),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len_diff = (a.len() ^ b.len()) as u64;
    let n = a.len().max(b.len());
    let mut diff = 0u8;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0 && len_diff == 0
}

/// True for `Authorization: Bearer <token>` naming `token` (constant time).
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let text = String::from_utf8_lossy(v.as_bytes());
    let t = text.trim();
    match t.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
            constant_time_eq(rest.trim().as_bytes(), token.as_bytes())
        }
        _ => false,
    }
}

/// Unwraps IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) so one rule covers both forms.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Loopback or unspecified (`0.0.0.0` and `::` reach the local host on Linux).
pub fn is_local(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    ip.is_loopback() || ip.is_unspecified()
}

/// Link-local: 169.254/16, fe80::/10.
pub fn is_link_local(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Loopback and the private ranges a household or office network uses: 10/8, 172.16/12,
/// 192.168/16, 100.64/10 (carrier-grade NAT, Tailscale), fc00::/7, fe80::/10, 169.254/16.
pub fn is_private_or_loopback(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    if is_local(ip) || is_link_local(ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Names that always mean this host (RFC 6761): `localhost` and `*.localhost`.
pub fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Whether a client at `peer` may use a proxy listening on `listen`. Open listeners without
/// `[auth]` serve only loopback and private clients; with auth, everyone may try.
pub fn client_allowed(peer: IpAddr, listen: IpAddr, auth: bool) -> bool {
    auth || canonical_ip(listen).is_loopback() || is_private_or_loopback(peer)
}

/// Why a destination is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One of potproxy's own listeners (proxy, API): never reachable through the proxy.
    OwnListener,
    /// Loopback or link-local, and `[access] loopback_destinations` is off.
    Loopback,
}

impl Refusal {
    pub fn text(self) -> &'static str {
        match self {
            Refusal::OwnListener => "potproxy: destination is one of potproxy's own listeners\n",
            Refusal::Loopback => {
                "potproxy: loopback and link-local destinations are refused ([access] loopback_destinations = true allows them)\n"
            }
        }
    }
}

/// The destination rule, with the addresses known at start.
#[derive(Debug, Default)]
pub struct Destinations {
    allow_loopback: bool,
    /// Addresses the operator chose (`[upstream] resolve` targets, the `[upstream] proxy`).
    chosen: Vec<SocketAddr>,
    /// potproxy's own listeners, set once they are bound.
    own: OnceLock<Vec<SocketAddr>>,
}

impl Destinations {
    pub fn new(allow_loopback: bool, chosen: Vec<SocketAddr>) -> Self {
        Destinations {
            allow_loopback,
            chosen,
            own: OnceLock::new(),
        }
    }

    /// Records the proxy's and the API's bound addresses (once).
    pub fn set_own_listeners(&self, own: Vec<SocketAddr>) {
        let _ = self.own.set(own);
    }

    fn own(&self) -> &[SocketAddr] {
        self.own.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Decides a destination given as written by the client (`host`, `port`). Names other than
    /// `localhost` are judged where they are dialled (their address is not known here).
    pub fn check(&self, host: &str, port: u16) -> Result<(), Refusal> {
        let host = host.trim_matches(|c| c == '[' || c == ']');
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => canonical_ip(ip),
            Err(_) if is_localhost_name(host) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Err(_) => return Ok(()),
        };
        self.check_addr(SocketAddr::new(ip, port))
    }

    /// Decides an address about to be (or just) connected to.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical_ip(addr.ip());
        let addr = SocketAddr::new(ip, addr.port());
        if self.chosen.contains(&addr) {
            return Ok(());
        }
        let own = self.own().iter().any(|l| {
            l.port() == addr.port()
                && (canonical_ip(l.ip()) == ip
                    || is_local(ip)
                    || (l.ip().is_unspecified()
                        && (is_private_or_loopback(ip) || is_this_hosts_address(ip))))
        });
        if own {
            return Err(Refusal::OwnListener);
        }
        if !self.allow_loopback && (is_local(ip) || is_link_local(ip)) {
            return Err(Refusal::Loopback);
        }
        Ok(())
    }
}

/// Whether `ip` is one of this host's own addresses (a public one included): a socket can bind
/// to it. Asked only for a port one of potproxy's wildcard listeners uses, so a listener on
/// `0.0.0.0` is not reachable through the host's public address either.
fn is_this_hosts_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Hop-by-hop headers (RFC 9110 7.6.1) plus the proxy's own: never forwarded to an origin.
/// `Upgrade` and `Connection: upgrade` stay when `upgrading` (a WebSocket handshake needs them).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrading: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !(upgrading && t == "upgrade"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("proxy-connection"),
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    if !upgrading {
        headers.remove(header::UPGRADE);
        headers.remove(header::CONNECTION);
    } else {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// True for a request asking to switch protocols (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// `[auth]`'s back-off after failed proxy logins: `max_failures` wrong credentials from one
/// client within `window` refuse that client for `backoff`, credentials unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthBackoff {
    /// Wrong credentials tolerated within `window`; 0 turns the back-off off.
    pub max_failures: u32,
    pub window: Duration,
    pub backoff: Duration,
}

impl Default for AuthBackoff {
    fn default() -> Self {
        AuthBackoff {
            max_failures: 10,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
        }
    }
}

/// One client's recent failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// When the current window opened (the first failure counted in it).
    since: Instant,
    count: u32,
    /// Refused without a credential check until then.
    until: Option<Instant>,
}

/// What one wrong login did to its client's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    pub record: Failures,
    /// This failure started a back-off.
    pub backed_off: bool,
}

impl AuthBackoff {
    /// How long `record`'s client is still refused at `now`; `None`: check its credentials.
    pub fn remaining(&self, record: Option<&Failures>, now: Instant) -> Option<Duration> {
        record?
            .until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Counts one wrong login at `now`. A window that has passed starts over; the failure that
    /// reaches `max_failures` starts the back-off and clears the count (once the back-off is
    /// over, the client gets `max_failures` tries again).
    pub fn fail(&self, record: Option<Failures>, now: Instant) -> AfterFailure {
        if let Some(r) = record.filter(|r| r.until.is_some_and(|u| u > now)) {
            // Already backed off: the back-off runs its course unchanged.
            return AfterFailure {
                record: r,
                backed_off: false,
            };
        }
        let fresh = Failures {
            since: now,
            count: 0,
            until: None,
        };
        let mut r = match record {
            Some(r)
                if r.until.is_none() && now.saturating_duration_since(r.since) < self.window =>
            {
                r
            }
            _ => fresh,
        };
        r.count = r.count.saturating_add(1);
        let backed_off = self.max_failures > 0 && r.count >= self.max_failures;
        if backed_off {
            r = Failures {
                since: now,
                count: 0,
                until: Some(now + self.backoff),
            };
        }
        AfterFailure {
            record: r,
            backed_off,
        }
    }

    /// How long a client's record must be kept: its window, or its back-off.
    fn keep(&self) -> Duration {
        self.window.max(self.backoff)
    }
}

/// The key one client's failures are counted under: its IPv4 address, or its IPv6 /64 (one
/// host is usually handed a whole /64 and can change addresses within it at will).
pub fn client_key(peer: IpAddr) -> IpAddr {
    match canonical_ip(peer) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Clients whose failed logins are remembered at most; past this the least recently seen are
/// forgotten first (memory stays bounded under a flood of addresses).
const FAILURE_TABLE_CAP: u64 = 16_384;

/// How often a line about failed logins may be logged; the lines held back are counted in the
/// next one.
const AUTH_LOG_EVERY: Duration = Duration::from_secs(10);

/// The per-client failure table and its log throttles.
struct AuthFailures {
    settings: AuthBackoff,
    table: moka::sync::Cache<IpAddr, Failures>,
    failed_log: Mutex<LogThrottle>,
    backoff_log: Mutex<LogThrottle>,
}

impl std::fmt::Debug for AuthFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailures")
            .field("settings", &self.settings)
            .field("clients", &self.table.entry_count())
            .finish()
    }
}

impl AuthFailures {
    fn new(settings: AuthBackoff) -> Self {
        AuthFailures {
            settings,
            // LRU, not moka's default frequency-based admission: a new address failing now
            // must be remembered even when the table is full of others.
            table: moka::sync::Cache::builder()
                .max_capacity(FAILURE_TABLE_CAP)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_live(settings.keep())
                .build(),
            failed_log: Mutex::new(LogThrottle::new(AUTH_LOG_EVERY)),
            backoff_log: Mutex::new(LogThrottle::new(AUTH_LOG_EVERY)),
        }
    }

    fn remaining(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let record = self.table.get(&client_key(peer));
        self.settings.remaining(record.as_ref(), now)
    }

    /// Counts, remembers and (at a bounded rate) logs one refused login.
    fn refused(&self, peer: IpAddr, outcome: AuthOutcome, now: Instant) {
        metrics::AUTH_FAILURES.with(&[outcome.label()]).inc();
        match outcome {
            AuthOutcome::Missing => {}
            AuthOutcome::BackedOff => {}
            AuthOutcome::Wrong => {
                let key = client_key(peer);
                // One atomic update per client: concurrent failures are all counted.
                let mut backed_off = false;
                self.table.entry(key).and_upsert_with(|old| {
                    let after = self.settings.fail(old.map(|e| e.into_value()), now);
                    backed_off = after.backed_off;
                    after.record
                });
                if backed_off {
                    if let Some(held) = allow(&self.backoff_log, now) {
                        tracing::warn!(
                            client = %key,
                            failures = self.settings.max_failures,
                            backoff_secs = self.settings.backoff.as_secs(),
                            repeated = held,
                            "proxy auth: too many wrong logins; refusing this client (429) without checking credentials"
                        );
                    }
                } else if let Some(held) = allow(&self.failed_log, now) {
                    tracing::warn!(%peer, repeated = held, "proxy auth: wrong credentials (407)");
                }
            }
        }
    }
}

fn allow(throttle: &Mutex<LogThrottle>, now: Instant) -> Option<u64> {
    throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allow(now)
}

/// Why a login was refused, as counted in `potproxy_auth_failures_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthOutcome {
    /// No `Proxy-Authorization`: the usual first step of a client's challenge (not held against it).
    Missing,
    /// Credentials that name no user.
    Wrong,
    /// Refused during a back-off, credentials unchecked.
    BackedOff,
}

impl AuthOutcome {
    fn label(self) -> &'static str {
        match self {
            AuthOutcome::Missing => "missing",
            AuthOutcome::Wrong => "wrong",
            AuthOutcome::BackedOff => "backed_off",
        }
    }
}

/// Everything the proxy's entry checks need, built once at start.
#[derive(Debug)]
pub struct Gate {
    pub users: Users,
    /// The proxy's configured listen address (decides the `block_global` rule).
    pub listen: IpAddr,
    pub destinations: Arc<Destinations>,
    /// Failed logins per client (`[auth]` only).
    failures: AuthFailures,
}

/// What the entry check decided for one request from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Allowed,
    /// The client's address is outside loopback and private ranges, and there is no `[auth]`.
    ForeignClient,
    /// `[auth]` is on and the request carries no valid `Proxy-Authorization`.
    NeedsAuth,
    /// This client sent too many wrong credentials lately: refused for `retry_after` more,
    /// whatever it sends.
    BackedOff {
        retry_after: Duration,
    },
}

impl Gate {
    pub fn new(cfg: &AccessConfig, listen: IpAddr, chosen: Vec<SocketAddr>) -> Self {
        Gate {
            users: cfg.users.clone(),
            listen,
            destinations: Arc::new(Destinations::new(cfg.loopback_destinations, chosen)),
            failures: AuthFailures::new(cfg.auth_backoff),
        }
    }

    /// The entry check for a request arriving on a client connection. With `[auth]`, a client
    /// in its back-off is refused before its credentials are looked at; every refusal is
    /// counted (`potproxy_auth_failures_total`) and wrong credentials are remembered.
    pub fn entry(&self, peer: IpAddr, headers: &HeaderMap) -> Entry {
        let auth = !self.users.is_empty();
        if !client_allowed(peer, self.listen, auth) {
            return Entry::ForeignClient;
        }
        if !auth {
            return Entry::Allowed;
        }
        let now = Instant::now();
        if let Some(retry_after) = self.failures.remaining(peer, now) {
            self.failures.refused(peer, AuthOutcome::BackedOff, now);
            return Entry::BackedOff { retry_after };
        }
        let given = headers.get(header::PROXY_AUTHORIZATION);
        if self.users.admits(given) {
            return Entry::Allowed;
        }
        let outcome = match given {
            None => AuthOutcome::Missing,
            Some(_) => AuthOutcome::Wrong,
        };
        self.failures.refused(peer, outcome, now);
        Entry::NeedsAuth
    }
}

/// True for an `Origin` header: browsers send one on cross-site and most same-site requests.
pub fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
}

/// Whether an API request's Host names the API itself: a loopback name or address, the
/// configured listen address, or any address when the API listens on a wildcard. A foreign
/// name here is DNS rebinding.
pub fn api_host_allowed(host: Option<&str>, listen: SocketAddr) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = crate::intercept::split_authority(host, listen.port()).0;
    let name = name.trim_matches(|c| c == '[' || c == ']');
    if is_localhost_name(name) {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => {
            let ip = canonical_ip(ip);
            ip.is_loopback() || ip == canonical_ip(listen.ip()) || listen.ip().is_unspecified()
        }
        Err(_) => false,
    }
}

/// What an API route may do, for the token rule: reading (tokens, metrics, health, the CA) or
/// changing state and handing out a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRule {
    Read,
    Mutating,
    /// What the proxy saw (the live page, `/exchanges`: clients' addresses, every tunnel's
    /// destination): off loopback only with the token, even when `[api] public = true`.
    Private,
}

/// The bearer token of one API request, against `[api] token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// No `[api] token` is configured.
    Unset,
    /// The request names the configured token.
    Right,
    /// A token is configured and the request carries another one, or none.
    Wrong,
}

/// Why an API request is refused by the token rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiDenied {
    /// 401: the configured token is missing or wrong.
    Token,
    /// 403: off loopback with neither `[api] token` nor `[api] public = true`.
    NotPublic,
    /// 403: a mutating or private route off loopback without `[api] token` (even when public).
    MutatingNeedsToken,
}

impl ApiDenied {
    pub fn text(self) -> &'static str {
        match self {
            ApiDenied::Token => "missing or wrong bearer token",
            ApiDenied::NotPublic => {
                "the API listens off loopback: set [api] token (or [api] public = true to serve anyone who can reach it)"
            }
            ApiDenied::MutatingNeedsToken => {
                "this route needs [api] token when the API listens off loopback"
            }
        }
    }
}

/// True when an API listening on `listen` would serve anyone who can reach it without the
/// operator having said so: off loopback, no `[api] token`, no `[api] public = true`. The
/// configuration refuses to start such an API; [`api_access`] refuses its every route.
pub fn api_needs_token_or_public(listen: IpAddr, token: bool, public: bool) -> bool {
    !canonical_ip(listen).is_loopback() && !token && !public
}

/// The API's token rule for one request. The bind address decides, not the caller's address:
/// an API bound to `0.0.0.0` is reachable from the network even when this caller is local.
pub fn api_access(
    rule: ApiRule,
    listen: IpAddr,
    bearer: Bearer,
    public: bool,
) -> Result<(), ApiDenied> {
    match bearer {
        Bearer::Right => Ok(()),
        Bearer::Wrong => Err(ApiDenied::Token),
        Bearer::Unset if canonical_ip(listen).is_loopback() => Ok(()),
        Bearer::Unset if !public => Err(ApiDenied::NotPublic),
        Bearer::Unset if rule != ApiRule::Read => Err(ApiDenied::MutatingNeedsToken),
        Bearer::Unset => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn only_a_configured_user_and_password_are_admitted() {
        let users = Users::parse(&["alice:s3cr:et", "bob:pw"]).unwrap();
        // alice:s3cr:et
        assert!(users.admits(Some(&hv("Basic YWxpY2U6czNjcjpldA=="))));
        assert!(users.admits(Some(&hv("basic   Ym9iOnB3"))));
        assert!(!users.admits(Some(&hv("Basic Ym9iOnB4"))));
        assert!(!users.admits(Some(&hv("Bearer Ym9iOnB3"))));
        assert!(!users.admits(None));
        assert!(!Users::default().admits(Some(&hv("Basic Ym9iOnB3"))));
    }

    #[test]
    fn malformed_users_are_named() {
        assert_eq!(
            Users::parse(&["nocolon"]).unwrap_err(),
            (0, UserError::NoColon)
        );
        assert_eq!(
            Users::parse(&["a:b", ":x"]).unwrap_err(),
            (1, UserError::EmptyName)
        );
        assert_eq!(
            Users::parse(&["a:"]).unwrap_err(),
            (0, UserError::EmptyPassword)
        );
        assert!(!format!("{:?}", Users::parse(&["a:hunter2"]).unwrap()).contains("hunter2"));
    }

    #[test]
    fn equal_strings_compare_equal_and_others_do_not() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn open_listeners_without_auth_serve_only_private_clients() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for ok in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.9",
            "100.100.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
            "::ffff:192.168.0.2",
        ] {
            assert!(client_allowed(ok.parse().unwrap(), any, false), "{ok}");
        }
        for bad in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1"] {
            assert!(!client_allowed(bad.parse().unwrap(), any, false), "{bad}");
            assert!(client_allowed(bad.parse().unwrap(), any, true), "{bad}");
            assert!(client_allowed(bad.parse().unwrap(), lo, false), "{bad}");
        }
    }

    #[test]
    fn loopback_and_link_local_destinations_are_refused_unless_allowed() {
        let d = Destinations::new(false, vec!["127.0.0.1:9999".parse().unwrap()]);
        for bad in [
            ("127.0.0.1", 22),
            ("127.9.9.9", 80),
            ("[::1]", 80),
            ("::ffff:127.0.0.1", 80),
            ("0.0.0.0", 80),
            ("169.254.169.254", 80),
            ("fe80::1", 80),
            ("localhost", 6379),
            ("Redis.LOCALHOST.", 6379),
        ] {
            assert_eq!(d.check(bad.0, bad.1), Err(Refusal::Loopback), "{bad:?}");
        }
        assert_eq!(d.check("127.0.0.1", 9999), Ok(()), "a resolve target");
        assert_eq!(d.check("192.168.1.1", 80), Ok(()));
        assert_eq!(d.check("www.youtube.com", 443), Ok(()));
        let open = Destinations::new(true, vec![]);
        assert_eq!(open.check("127.0.0.1", 22), Ok(()));
        assert_eq!(open.check("localhost", 22), Ok(()));
    }

    #[test]
    fn own_listeners_are_refused_even_when_loopback_is_allowed() {
        let d = Destinations::new(true, vec![]);
        d.set_own_listeners(vec![
            "0.0.0.0:8080".parse().unwrap(),
            "127.0.0.1:4416".parse().unwrap(),
        ]);
        assert_eq!(d.check("127.0.0.1", 4416), Err(Refusal::OwnListener));
        assert_eq!(d.check("localhost", 4416), Err(Refusal::OwnListener));
        assert_eq!(d.check("192.168.1.5", 8080), Err(Refusal::OwnListener));
        assert_eq!(d.check("127.0.0.1", 4417), Ok(()));
        assert_eq!(d.check("93.184.216.34", 8080), Ok(()));
    }

    #[test]
    fn a_wildcard_listener_is_refused_through_this_hosts_public_address_too() {
        // The source address of a route out is one of this host's own (no packet is sent).
        let Some(own) = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
            .and_then(|s| s.local_addr())
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified())
        else {
            eprintln!("skipping: this host has no route out to learn an address from");
            return;
        };
        let d = Destinations::new(true, vec![]);
        d.set_own_listeners(vec!["0.0.0.0:8080".parse().unwrap()]);
        assert_eq!(
            d.check_addr(SocketAddr::new(own, 8080)),
            Err(Refusal::OwnListener),
            "{own}"
        );
        assert_eq!(d.check_addr(SocketAddr::new(own, 8081)), Ok(()));
    }

    #[test]
    fn hop_by_hop_headers_never_reach_the_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::PROXY_AUTHORIZATION, hv("Basic eA=="));
        h.insert("proxy-connection", hv("keep-alive"));
        h.insert("keep-alive", hv("timeout=5"));
        h.insert(header::TE, hv("trailers"));
        h.insert(header::CONNECTION, hv("close, X-Secret"));
        h.insert("x-secret", hv("1"));
        h.insert(header::UPGRADE, hv("h2c"));
        h.insert(header::ACCEPT, hv("*/*"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));

        let mut ws = HeaderMap::new();
        ws.insert(header::CONNECTION, hv("keep-alive, Upgrade"));
        ws.insert(header::UPGRADE, hv("websocket"));
        ws.insert(header::PROXY_AUTHORIZATION, hv("Basic eA=="));
        assert!(is_upgrade(&ws));
        strip_hop_by_hop(&mut ws, true);
        assert_eq!(ws.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(ws.get(header::CONNECTION).unwrap(), "upgrade");
        assert!(!ws.contains_key(header::PROXY_AUTHORIZATION));
    }

    #[test]
    fn api_hosts_must_name_the_api_itself() {
        let lo: SocketAddr = "127.0.0.1:4416".parse().unwrap();
        assert!(api_host_allowed(Some("127.0.0.1:4416"), lo));
        assert!(api_host_allowed(Some("localhost:4416"), lo));
        assert!(api_host_allowed(Some("[::1]:4416"), lo));
        assert!(api_host_allowed(None, lo));
        assert!(!api_host_allowed(Some("evil.example:4416"), lo));
        assert!(!api_host_allowed(Some("192.168.1.5:4416"), lo));
        let lan: SocketAddr = "192.168.1.5:4416".parse().unwrap();
        assert!(api_host_allowed(Some("192.168.1.5:4416"), lan));
        assert!(!api_host_allowed(Some("rebind.example"), lan));
        let any: SocketAddr = "0.0.0.0:4416".parse().unwrap();
        assert!(api_host_allowed(Some("10.0.0.7:4416"), any));
        assert!(!api_host_allowed(Some("rebind.example:4416"), any));
    }

    #[test]
    fn repeated_wrong_logins_back_a_client_off_and_the_count_starts_over_after() {
        let b = AuthBackoff {
            max_failures: 3,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // (seconds after t0 of each wrong login, started a back-off?, remaining back-off right
        // after it)
        type Step = (u64, bool, Option<u64>);
        let cases: &[(&str, &[Step])] = &[
            (
                "three within the window back off for 300 s",
                &[(0, false, None), (10, false, None), (20, true, Some(300))],
            ),
            (
                "a window that passed starts the count over",
                &[
                    (0, false, None),
                    (10, false, None),
                    (70, false, None),
                    (80, false, None),
                ],
            ),
            (
                "after the back-off the client gets max_failures tries again",
                &[
                    (0, false, None),
                    (1, false, None),
                    (2, true, Some(300)),
                    (302, false, None),
                    (303, false, None),
                    (304, true, Some(300)),
                ],
            ),
        ];
        for (name, steps) in cases {
            let mut record = None;
            for &(s, backs_off, remaining) in *steps {
                let after = b.fail(record, at(s));
                assert_eq!(after.backed_off, backs_off, "{name}: at {s} s");
                assert_eq!(
                    b.remaining(Some(&after.record), at(s)),
                    remaining.map(Duration::from_secs),
                    "{name}: at {s} s"
                );
                record = Some(after.record);
            }
        }
        // The back-off runs out on time, and nothing is remembered for an unknown client.
        let blocked = b.fail(
            b.fail(b.fail(None, at(0)).record.into(), at(1))
                .record
                .into(),
            at(2),
        );
        assert!(blocked.backed_off);
        assert_eq!(
            b.remaining(Some(&blocked.record), at(2 + 299)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(b.remaining(Some(&blocked.record), at(2 + 300)), None);
        assert_eq!(b.remaining(None, at(0)), None);
        // max_failures = 0: never backed off.
        let off = AuthBackoff {
            max_failures: 0,
            ..b
        };
        let mut record = None;
        for s in 0..100 {
            let after = off.fail(record, at(s));
            assert!(!after.backed_off);
            record = Some(after.record);
        }
    }

    #[test]
    fn the_failure_table_stays_bounded_under_a_flood_of_addresses() {
        let f = AuthFailures::new(AuthBackoff::default());
        let now = Instant::now();
        let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let n = FAILURE_TABLE_CAP as u32 + 5_000;
        for i in 0..n {
            f.refused(addr(i), AuthOutcome::Wrong, now);
        }
        f.table.run_pending_tasks();
        assert!(f.table.entry_count() <= FAILURE_TABLE_CAP);
        // The address failing now is remembered even though the table is full.
        assert!(f.table.contains_key(&addr(n - 1)));
    }

    #[test]
    fn failures_are_counted_per_ipv4_address_and_per_ipv6_64() {
        let key = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn a_backed_off_client_is_refused_even_with_the_right_password_and_others_are_not() {
        let cfg = AccessConfig {
            users: Users::parse(&["me:s3cret"]).unwrap(),
            loopback_destinations: false,
            auth_backoff: AuthBackoff {
                max_failures: 3,
                window: Duration::from_secs(60),
                backoff: Duration::from_secs(300),
            },
        };
        let gate = Gate::new(&cfg, "0.0.0.0".parse().unwrap(), vec![]);
        let with = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::PROXY_AUTHORIZATION, hv(v));
            }
            h
        };
        let (good, bad) = (
            with(Some("Basic bWU6czNjcmV0")),
            with(Some("Basic bWU6d3Jvbmc=")),
        );
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "198.51.100.4".parse().unwrap();
        let wrong_before = metrics::AUTH_FAILURES.get(&["wrong"]);
        // Asking without credentials first is how clients learn the realm: never held against them.
        for _ in 0..10 {
            assert_eq!(gate.entry(attacker, &with(None)), Entry::NeedsAuth);
        }
        assert_eq!(gate.entry(attacker, &good), Entry::Allowed);
        for _ in 0..3 {
            assert_eq!(gate.entry(attacker, &bad), Entry::NeedsAuth);
        }
        assert!(metrics::AUTH_FAILURES.get(&["wrong"]) >= wrong_before + 3);
        assert!(matches!(
            gate.entry(attacker, &good),
            Entry::BackedOff { retry_after } if retry_after > Duration::from_secs(290)
        ));
        assert!(metrics::AUTH_FAILURES.get(&["backed_off"]) >= 1);
        assert_eq!(gate.entry(other, &good), Entry::Allowed);
        assert_eq!(gate.entry(other, &bad), Entry::NeedsAuth);
    }

    #[test]
    fn api_routes_off_loopback_need_a_token_or_an_explicit_public() {
        use ApiDenied::*;
        use ApiRule::*;
        use Bearer::*;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        // (rule, listen, bearer, public) -> decision
        let cases = [
            (Read, lo, Unset, false, Ok(())),
            (Mutating, lo6, Unset, false, Ok(())),
            (Read, lo, Wrong, false, Err(Token)),
            (Read, any, Unset, false, Err(NotPublic)),
            (Mutating, any, Unset, false, Err(NotPublic)),
            (Read, lan, Unset, false, Err(NotPublic)),
            (Read, any, Unset, true, Ok(())),
            (Mutating, any, Unset, true, Err(MutatingNeedsToken)),
            (Private, any, Unset, true, Err(MutatingNeedsToken)),
            (Private, lo, Unset, false, Ok(())),
            (Private, any, Right, true, Ok(())),
            (Read, any, Right, false, Ok(())),
            (Mutating, lan, Right, false, Ok(())),
            (Read, any, Wrong, true, Err(Token)),
        ];
        for (rule, listen, bearer, public, want) in cases {
            assert_eq!(
                api_access(rule, listen, bearer, public),
                want,
                "{rule:?} {listen} {bearer:?} public={public}"
            );
        }
        assert!(api_needs_token_or_public(any, false, false));
        assert!(api_needs_token_or_public(lan, false, false));
        assert!(!api_needs_token_or_public(any, true, false));
        assert!(!api_needs_token_or_public(any, false, true));
        assert!(!api_needs_token_or_public(lo, false, false));
        assert!(!api_needs_token_or_public(
            "::ffff:127.0.0.1".parse().unwrap(),
            false,
            false
        ));
    }

    #[test]
    fn bearer_tokens_compare_exactly() {
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, "t0k"));
        h.insert(header::AUTHORIZATION, hv("Bearer t0k"));
        assert!(bearer_matches(&h, "t0k"));
        assert!(!bearer_matches(&h, "t0"));
        h.insert(header::AUTHORIZATION, hv("Basic t0k"));
        assert!(!bearer_matches(&h, "t0k"));
    }
}
