//! Egress: how the proxy's upstream connections leave (directly, or through the user's HTTP or
//! SOCKS5 proxy). A proxy URL is parsed here once, where it enters (configuration, an API
//! request, the command line); everything inward holds the typed [`Egress`].

use http::Uri;

/// Why a proxy URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("not a proxy URL: {0}")]
    NotAUrl(#[source] url::ParseError),
    #[error("proxy URL has no host")]
    NoHost,
    #[error(
        "unsupported proxy scheme `{0}` (http, socks5, socks5h; https:// proxies are not supported)"
    )]
    UnsupportedScheme(String),
    #[error("bad proxy address: {0}")]
    BadAddress(#[source] http::uri::InvalidUri),
}

/// How upstream connections leave: directly, or chained through the user's proxy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Egress {
    Direct,
    /// An HTTP proxy, reached with CONNECT.
    Http {
        proxy: Uri,
        auth: Option<String>,
        /// The URL as written, credentials included (see [`Egress::url`]).
        url: String,
    },
    /// A SOCKS5 proxy; `remote_dns` (socks5h) lets the proxy resolve names.
    Socks5 {
        proxy: Uri,
        auth: Option<(String, String)>,
        remote_dns: bool,
        url: String,
    },
}

/// Credentials stay out of logs: an egress shows as its key.
impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key() {
            Some(k) => write!(f, "Egress({k})"),
            None => f.write_str("Egress(direct)"),
        }
    }
}

impl Egress {
    /// Parses `http://[user:pass@]host:port` or `socks5[h]://[user:pass@]host:port`; a value
    /// without a scheme is taken as `http://` (as bgutil does).
    pub fn parse(text: &str) -> Result<Egress, EgressError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(Egress::Direct);
        }
        let with_scheme = if t.contains("://") {
            t.to_string()
        } else {
            format!("http://{t}")
        };
        let u = url::Url::parse(&with_scheme).map_err(EgressError::NotAUrl)?;
        let host = u.host_str().ok_or(EgressError::NoHost)?;
        let default_port = match u.scheme() {
            "http" => 80,
            "socks5" | "socks5h" => 1080,
            other => return Err(EgressError::UnsupportedScheme(other.to_string())),
        };
        let port = u.port().unwrap_or(default_port);
        let host_port = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let proxy: Uri = format!("http://{host_port}")
            .parse()
            .map_err(EgressError::BadAddress)?;
        let user = percent_encoding::percent_decode_str(u.username())
            .decode_utf8_lossy()
            .into_owned();
        let pass = u.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let url = t.to_string();
        Ok(match u.scheme() {
            "http" => Egress::Http {
                proxy,
                auth: (!user.is_empty()).then(|| {
                    use base64::Engine;
                    let raw = format!("{user}:{}", pass.unwrap_or_default());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    )
                }),
                url,
            },
            scheme => Egress::Socks5 {
                proxy,
                auth: (!user.is_empty()).then(|| (user, pass.unwrap_or_default())),
                remote_dns: scheme == "socks5h",
                url,
            },
        })
    }

    /// The identity of this egress: what connections, minters, browsers and cached tokens are
    /// kept per. The proxy's address, plus a fingerprint of its credentials when it has any:
    /// rotating-proxy services pick the exit address by user name, so two callers naming one
    /// proxy with different credentials leave from different places and must share nothing.
    /// The credentials themselves never appear in it (it goes into logs, Redis keys and the
    /// cache file), only [`credential_fingerprint`]. `None` when direct.
    pub fn key(&self) -> Option<String> {
        let (address, fingerprint) = match self {
            Egress::Direct => return None,
            Egress::Http { proxy, auth, .. } => (
                format!("http://{}", proxy.authority()?),
                auth.as_deref()
                    .map(|a| credential_fingerprint(&[b"http", a.as_bytes()])),
            ),
            Egress::Socks5 {
                proxy,
                auth,
                remote_dns,
                ..
            } => (
                format!(
                    "{}://{}",
                    if *remote_dns { "socks5h" } else { "socks5" },
                    proxy.authority()?
                ),
                auth.as_ref().map(|(user, pass)| {
                    credential_fingerprint(&[b"socks5", user.as_bytes(), pass.as_bytes()])
                }),
            ),
        };
        Some(match fingerprint {
            Some(f) => format!("{address}#cred={f}"),
            None => address,
        })
    }

    /// [`Self::key`], or `direct` for a direct egress: how per-egress state, metrics and the
    /// `check` command name the configured egress.
    pub fn key_or_direct(&self) -> String {
        self.key().unwrap_or_else(|| "direct".into())
    }

    /// The proxy's socket address when it is an IP literal (names are resolved when dialled).
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        let proxy = match self {
            Egress::Direct => return None,
            Egress::Http { proxy, .. } | Egress::Socks5 { proxy, .. } => proxy,
        };
        let host = proxy.host()?.trim_matches(|c| c == '[' || c == ']');
        Some(std::net::SocketAddr::new(
            host.parse().ok()?,
            proxy.port_u16()?,
        ))
    }

    /// The proxy URL as written, credentials included: what another bgutil-compatible provider
    /// is handed so it leaves through the same proxy. `None` when direct.
    pub fn url(&self) -> Option<&str> {
        match self {
            Egress::Direct => None,
            Egress::Http { url, .. } | Egress::Socks5 { url, .. } => Some(url),
        }
    }
}

/// A short, stable fingerprint of proxy credentials: the first 64 bits of a domain-separated
/// SHA-256 over length-prefixed parts, in hex. Stable across restarts and nodes (the cache file
/// and the fleet's Redis keys use it); it is a fingerprint, not a password hash, so a weak proxy
/// password could be guessed offline by whoever reads those keys -- one more reason Redis and
/// the state dir stay private.
fn credential_fingerprint(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"potproxy egress credentials v1");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_defaults_and_credentials() {
        assert_eq!(Egress::parse("").unwrap(), Egress::Direct);
        match Egress::parse("127.0.0.1:3128").unwrap() {
            Egress::Http { proxy, auth, .. } => {
                assert_eq!(proxy.to_string(), "http://127.0.0.1:3128/");
                assert!(auth.is_none());
            }
            e => panic!("{e:?}"),
        }
        match Egress::parse("http://u%40x:p@proxy.example").unwrap() {
            Egress::Http { proxy, auth, .. } => {
                assert_eq!(proxy.authority().unwrap().as_str(), "proxy.example:80");
                assert_eq!(auth.as_deref(), Some("Basic dUB4OnA="));
            }
            e => panic!("{e:?}"),
        }
        let s = Egress::parse("socks5h://127.0.0.1").unwrap();
        assert_eq!(s.key().as_deref(), Some("socks5h://127.0.0.1:1080"));
        // Spoken in plaintext, an https:// proxy would expose its credentials: refused.
        assert!(
            Egress::parse("https://u:p@proxy.example")
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        assert!(
            Egress::parse("ftp://x")
                .unwrap_err()
                .to_string()
                .contains("ftp")
        );
    }

    #[test]
    fn the_written_url_is_kept_for_other_providers_but_never_shown() {
        let e = Egress::parse("socks5://user:secret@127.0.0.1:1080").unwrap();
        assert_eq!(e.url(), Some("socks5://user:secret@127.0.0.1:1080"));
        assert!(!format!("{e:?}").contains("secret"), "{e:?}");
        assert_eq!(Egress::Direct.url(), None);
    }

    #[test]
    fn credentials_make_a_different_identity_without_showing_in_it() {
        let key = |u: &str| Egress::parse(u).unwrap().key().unwrap();
        let cases = [
            "http://alice:pw1@proxy.example:3128",
            "http://bob:pw1@proxy.example:3128",
            "http://alice:pw2@proxy.example:3128",
            "http://proxy.example:3128",
            "socks5://alice:pw1@proxy.example:3128",
            "socks5://bob:pw1@proxy.example:3128",
            "socks5://proxy.example:3128",
        ];
        let keys: Vec<String> = cases.iter().map(|u| key(u)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b, "{cases:?}");
            }
            for secret in ["alice", "bob", "pw1", "pw2"] {
                assert!(!a.contains(secret), "{a}");
            }
        }
        // The same credentials, spelled differently, are the same identity.
        assert_eq!(
            key("http://alice:pw1@proxy.example:3128"),
            key("alice:pw1@proxy.example:3128")
        );
        assert_eq!(
            key("socks5h://a:b@127.0.0.1"),
            key("socks5h://a:b@127.0.0.1:1080")
        );
        assert!(
            key("http://alice:pw1@proxy.example:3128")
                .starts_with("http://proxy.example:3128#cred=")
        );
        let e = Egress::parse("http://alice:pw1@proxy.example:3128").unwrap();
        assert!(!format!("{e:?}").contains("pw1"), "{e:?}");
    }
}
