//! Who may use the proxy and where it may go: proxy Basic auth (`[auth]`), the client-address
//! rule for open listeners without auth (mitmproxy's `block_global`), the destination rule
//! (`[access] loopback_destinations`, squid's `deny to_localhost`, plus potproxy's own
//! listeners), hop-by-hop header stripping, and bearer-token checks for the API. Everything
//! here is a pure decision on addresses and header values; the handler and the API call it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// The realm clients are asked to authenticate for.
pub const REALM: &str = "potproxy";

/// The `[auth]` and `[access]` settings, validated.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Proxy users; empty: no proxy auth.
    pub users: Users,
    /// Allow CONNECT and absolute-form requests to loopback and link-local addresses.
    pub loopback_destinations: bool,
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
                    || (l.ip().is_unspecified() && is_private_or_loopback(ip)))
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

/// Everything the proxy's entry checks need, built once at start.
#[derive(Debug)]
pub struct Gate {
    pub users: Users,
    /// The proxy's configured listen address (decides the `block_global` rule).
    pub listen: IpAddr,
    pub destinations: Arc<Destinations>,
}

/// What the entry check decided for one request from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Allowed,
    /// The client's address is outside loopback and private ranges, and there is no `[auth]`.
    ForeignClient,
    /// `[auth]` is on and the request carries no valid `Proxy-Authorization`.
    NeedsAuth,
}

impl Gate {
    pub fn new(cfg: &AccessConfig, listen: IpAddr, chosen: Vec<SocketAddr>) -> Self {
        Gate {
            users: cfg.users.clone(),
            listen,
            destinations: Arc::new(Destinations::new(cfg.loopback_destinations, chosen)),
        }
    }

    /// Records the bound proxy and API listeners.
    pub fn set_listeners(&self, proxy: SocketAddr, api: Option<SocketAddr>) {
        self.destinations
            .set_own_listeners(std::iter::once(proxy).chain(api).collect());
    }

    /// The entry check for a request arriving on a client connection.
    pub fn entry(&self, peer: IpAddr, headers: &HeaderMap) -> Entry {
        let auth = !self.users.is_empty();
        if !client_allowed(peer, self.listen, auth) {
            return Entry::ForeignClient;
        }
        if auth && !self.users.admits(headers.get(header::PROXY_AUTHORIZATION)) {
            return Entry::NeedsAuth;
        }
        Entry::Allowed
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
