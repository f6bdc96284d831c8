//! Which hosts the proxy decrypts. Owns host-name patterns (`www.youtube.com`, `*.googlevideo.com`)
//! and whether a host name is decrypted; what a connection becomes is `serve::door`'s decision.

use std::net::IpAddr;

/// Hosts decrypted by default; every other CONNECT is a blind tunnel.
pub const DEFAULT_INTERCEPT_HOSTS: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtubei.googleapis.com",
    "www.youtube-nocookie.com",
    "studio.youtube.com",
    "*.googlevideo.com",
];

/// An exact host name or a `*.suffix` wildcard, lower-cased, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// Stored as `.suffix`: matches any name ending in it, not the bare suffix itself.
    Suffix(String),
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        let valid_label = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        if let Some(rest) = t.strip_prefix("*.") {
            if valid_label(rest) {
                return Ok(HostPattern::Suffix(format!(".{rest}")));
            }
        } else if valid_label(&t) {
            return Ok(HostPattern::Exact(t));
        }
        Err("expected a host name such as www.youtube.com or *.googlevideo.com".into())
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                host.len() > s.len()
                    && host.is_char_boundary(host.len() - s.len())
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }

    /// Sort key: exact names first, then wildcards with longer suffixes first.
    pub fn specificity(&self) -> (u8, std::cmp::Reverse<usize>) {
        match self {
            HostPattern::Exact(h) => (0, std::cmp::Reverse(h.len())),
            HostPattern::Suffix(s) => (1, std::cmp::Reverse(s.len())),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Suffix(s) => write!(f, "*{s}"),
        }
    }
}

/// Splits `host:port` (or `[v6]:port`, or a bare host) into host and port.
pub fn split_authority(authority: &str, default_port: u16) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            return (h, port);
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().unwrap_or(default_port)),
        _ => (authority, default_port),
    }
}

/// Whether `host` (no brackets, no port) is something potproxy agrees to reach: an IP literal
/// as Rust parses it, or a DNS name whose labels are letters, digits, `-` and `_` and whose last
/// label starts with a letter. That leaves out userinfo (`a@127.0.0.1`) and the numeric spellings
/// a resolver or egress proxy would read as an address (`2130706433`, `0x7f000001`, `127.1`),
/// which the destination rule could not judge.
pub fn is_acceptable_host(host: &str) -> bool {
    if is_ip_literal(host) {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    !name.is_empty()
        && name.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && labels
            .last()
            .is_some_and(|l| l.as_bytes()[0].is_ascii_alphabetic())
}

pub fn is_ip_literal(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// The list of hosts to decrypt.
#[derive(Debug, Clone)]
pub struct InterceptPolicy {
    patterns: Vec<HostPattern>,
}

impl InterceptPolicy {
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        InterceptPolicy { patterns }
    }

    pub fn is_intercepted(&self, host: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> InterceptPolicy {
        InterceptPolicy::new(
            DEFAULT_INTERCEPT_HOSTS
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
        )
    }

    #[test]
    fn youtube_hosts_are_intercepted_others_are_not() {
        let p = policy();
        for host in [
            "www.youtube.com",
            "WWW.YouTube.com",
            "rr4---sn-u125g5-5p.googlevideo.com",
            "youtubei.googleapis.com",
        ] {
            assert!(p.is_intercepted(host), "{host}");
        }
        for other in [
            "jnn-pa.googleapis.com",
            "www.google.com",
            "accounts.google.com",
            "i.ytimg.com",
            "youtube.com",
            "googlevideo.com",
            "evilgooglevideo.com",
        ] {
            assert!(!p.is_intercepted(other), "{other}");
        }
    }

    #[test]
    fn only_ip_literals_and_real_names_are_acceptable_hosts() {
        for ok in [
            "www.youtube.com",
            "localhost",
            "127.0.0.1",
            "::1",
            "a-b_c.example.org.",
        ] {
            assert!(is_acceptable_host(ok), "{ok}");
        }
        for bad in [
            "a@127.0.0.1",
            "2130706433",
            "0x7f000001",
            "127.1",
            "10.0.0.1.",
            "",
            "a..b",
            "exa mple.com",
            "x.123",
        ] {
            assert!(!is_acceptable_host(bad), "{bad}");
        }
    }

    #[test]
    fn authority_splitting_handles_missing_port_and_ipv6() {
        assert_eq!(split_authority("a.b:8443", 443), ("a.b", 8443));
        assert_eq!(split_authority("a.b", 443), ("a.b", 443));
        assert_eq!(split_authority("[::1]:22", 443), ("::1", 22));
        assert_eq!(split_authority("[::1]", 443), ("::1", 443));
    }

    #[test]
    fn patterns_reject_garbage() {
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("a b").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("*.googlevideo.com").is_ok());
    }
}
