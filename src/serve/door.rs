//! The front door: what each arrival at the proxy listener is, decided in one place. An arrival
//! is a `CONNECT`, a protocol upgrade, or any other request (absolute-form, or read inside an
//! intercepted connection). [`decide`] is a pure function of what is known of it so far, in the
//! spirit of mitmproxy's `next_layer`: for a `CONNECT` to an intercepted name or to an IP
//! literal on 443 it first answers [`Door::ReadFirstBytes`], and is asked again once the first
//! bytes are in ([`Arrival::first`]). The I/O that follows each answer lives in `connect`,
//! `tunnel` and the server's request path; nothing here touches a socket.

use crate::access::{Entry, Refusal};

/// What kind of arrival this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `CONNECT host:port`.
    Connect,
    /// A request asking to switch protocols (`Connection: upgrade` + `Upgrade`).
    Upgrade,
    /// Any other request.
    Request,
}

/// What the first bytes inside a `CONNECT` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    /// A TLS ClientHello; `intercepted` when its SNI is a name in `[intercept] hosts`.
    Tls {
        sni: Option<String>,
        intercepted: bool,
    },
    /// A plain HTTP request head; `by_host` when its `Host` is a name in `[intercept] hosts`.
    Http { by_host: bool },
    /// Anything else (SSH, a server-first protocol's silence is never read here).
    Other,
}

/// What is known of an arrival when the door decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub kind: Kind,
    /// The entry check (proxy auth, client ranges); `Allowed` for requests inside a `CONNECT`
    /// that passed it.
    pub entry: Entry,
    /// The destination host as the client wrote it (no brackets, lower-cased).
    pub host: String,
    /// The host is an IP literal: its name is only known from a ClientHello.
    pub ip_literal: bool,
    pub port: u16,
    /// The host is in `[intercept] hosts`.
    pub intercepted: bool,
    /// The destination rule's verdict on `host:port` as written (`None` for the authority of
    /// the `CONNECT` a request arrived in, which was judged already).
    pub refused: Option<Refusal>,
    /// The host is the CA page's (`http://potproxy.invalid/`).
    pub ca_page: bool,
    /// The first bytes inside a `CONNECT`, once read.
    pub first: Option<First>,
}

impl Arrival {
    /// `host:port` as a CONNECT would write it (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What to do with an arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Door {
    /// The client may not use the proxy: 407 (`NeedsAuth`), 429 (`BackedOff`) or 403
    /// (`ForeignClient`).
    RefuseClient(Entry),
    /// The destination is refused (potproxy's own listeners, loopback): 403.
    RefuseDestination(Refusal),
    /// The CA page: answered by the proxy itself.
    AnswerLocally,
    /// A blind tunnel dialled before the client's `200`, so servers that speak first work.
    TunnelNow,
    /// Answer `200`, then read the client's first bytes and ask again.
    ReadFirstBytes,
    /// Terminate TLS with a leaf for `name` and serve the requests inside.
    Decrypt { name: String },
    /// Serve the plain HTTP requests inside the `CONNECT`.
    ServeHttp,
    /// A blind tunnel after the first bytes, which are replayed to the server.
    TunnelAfterFirstBytes,
    /// Close the connection: its first bytes named nothing potproxy may reach.
    Close(Refusal),
    /// Close the connection: an intercepted name spoke neither TLS nor HTTP, and potproxy
    /// only ever decrypts such names (it never dials them blind).
    CloseForeign,
    /// Relay the upgrade handshake, then tunnel the bytes.
    Upgrade,
    /// Through the request hook and on to the origin.
    Forward,
}

/// The front door's decision, numbered in the order the rules apply.
pub fn decide(a: &Arrival) -> Door {
    // 1. The client: proxy auth and the client-range rule come before anything else.
    if a.entry != Entry::Allowed {
        return Door::RefuseClient(a.entry);
    }
    match a.kind {
        Kind::Connect => decide_connect(a),
        // 2. The CA page is ours to answer, wherever the client thinks it is.
        Kind::Request if a.ca_page => Door::AnswerLocally,
        // 3. A request for a refused destination (an absolute-form URL, or an HTTP/2
        //    `:authority` other than its tunnel's) never leaves.
        _ if a.refused.is_some() => Door::RefuseDestination(a.refused.expect("checked")),
        // 4. Upgrades are tunnels after their handshake: nothing inside them is rewritten.
        Kind::Upgrade => Door::Upgrade,
        // 5. Everything else goes through the hook.
        Kind::Request => Door::Forward,
    }
}

fn decide_connect(a: &Arrival) -> Door {
    let Some(first) = &a.first else {
        // 6. An intercepted name, or an IP literal on 443 (its ClientHello may name an
        //    intercepted host, and then the IP itself is never dialled): look first.
        if a.intercepted || (a.ip_literal && a.port == 443) {
            return Door::ReadFirstBytes;
        }
        // 7. Any other destination: refused, or tunnelled at once.
        return match a.refused {
            Some(r) => Door::RefuseDestination(r),
            None => Door::TunnelNow,
        };
    };
    match first {
        // 8. TLS for an intercepted name (by the CONNECT's name, or by the SNI of an IP
        //    literal): decrypt with a leaf for the SNI, else for the CONNECT's name.
        First::Tls {
            sni,
            intercepted: by_sni,
        } if a.intercepted || *by_sni => Door::Decrypt {
            name: sni
                .clone()
                .filter(|_| *by_sni || !a.ip_literal)
                .unwrap_or_else(|| a.host.clone()),
        },
        // 9. Plain HTTP to an intercepted name is served (and rewritten) like TLS.
        First::Http { by_host } if a.intercepted || *by_host => Door::ServeHttp,
        // 10. Anything else for an intercepted name is not ours to pass on.
        _ if a.intercepted => Door::CloseForeign,
        // 11. Anything else: a tunnel to what the client named, unless that is refused.
        _ => match a.refused {
            Some(r) => Door::Close(r),
            None => Door::TunnelAfterFirstBytes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(kind: Kind, host: &'static str, port: u16) -> Arrival {
        Arrival {
            kind,
            entry: Entry::Allowed,
            host: host.to_string(),
            ip_literal: host.parse::<std::net::IpAddr>().is_ok(),
            port,
            intercepted: host.ends_with("youtube.com"),
            refused: None,
            ca_page: false,
            first: None,
        }
    }

    fn tls(sni: &str, intercepted: bool) -> Option<First> {
        Some(First::Tls {
            sni: Some(sni.into()),
            intercepted,
        })
    }

    /// Every branch of the door, one row each: (what arrived, what the door does).
    #[test]
    fn the_front_door_decision_table() {
        use Door::*;
        let connect = |h, p| arrival(Kind::Connect, h, p);
        let request = |h| arrival(Kind::Request, h, 80);
        let rows: Vec<(&str, Arrival, Door)> = vec![
            (
                "no credentials with [auth] on",
                Arrival {
                    entry: Entry::NeedsAuth,
                    ..connect("example.com", 443)
                },
                RefuseClient(Entry::NeedsAuth),
            ),
            (
                "a client backed off after wrong passwords",
                Arrival {
                    entry: Entry::BackedOff {
                        retry_after: std::time::Duration::from_secs(5),
                    },
                    ..connect("www.youtube.com", 443)
                },
                RefuseClient(Entry::BackedOff {
                    retry_after: std::time::Duration::from_secs(5),
                }),
            ),
            (
                "a client outside private ranges without [auth]",
                Arrival {
                    entry: Entry::ForeignClient,
                    ..request("www.youtube.com")
                },
                RefuseClient(Entry::ForeignClient),
            ),
            (
                "CONNECT to an intercepted name",
                connect("www.youtube.com", 443),
                ReadFirstBytes,
            ),
            (
                "CONNECT to another name",
                connect("example.com", 443),
                TunnelNow,
            ),
            (
                "CONNECT to an IP literal on 22",
                connect("192.0.2.1", 22),
                TunnelNow,
            ),
            (
                "CONNECT to potproxy's own API",
                Arrival {
                    refused: Some(Refusal::OwnListener),
                    ..connect("127.0.0.1", 4416)
                },
                RefuseDestination(Refusal::OwnListener),
            ),
            (
                "CONNECT to a refused IP on 443 (it may still name YouTube)",
                Arrival {
                    refused: Some(Refusal::Loopback),
                    ..connect("127.0.0.1", 443)
                },
                ReadFirstBytes,
            ),
            (
                "TLS inside an intercepted name",
                Arrival {
                    first: tls("www.youtube.com", true),
                    ..connect("www.youtube.com", 443)
                },
                Decrypt {
                    name: "www.youtube.com".into(),
                },
            ),
            (
                "TLS without SNI inside an intercepted name",
                Arrival {
                    first: Some(First::Tls {
                        sni: None,
                        intercepted: false,
                    }),
                    ..connect("www.youtube.com", 443)
                },
                Decrypt {
                    name: "www.youtube.com".into(),
                },
            ),
            (
                "an IP literal whose SNI is intercepted: decrypted, the IP never dialled",
                Arrival {
                    first: tls("rr1---sn-a.googlevideo.com", true),
                    ..connect("192.0.2.7", 443)
                },
                Decrypt {
                    name: "rr1---sn-a.googlevideo.com".into(),
                },
            ),
            (
                "a refused IP literal whose SNI is intercepted: still decrypted",
                Arrival {
                    first: tls("www.youtube.com", true),
                    refused: Some(Refusal::Loopback),
                    ..connect("127.0.0.1", 443)
                },
                Decrypt {
                    name: "www.youtube.com".into(),
                },
            ),
            (
                "an IP literal with another SNI: tunnelled with its first bytes",
                Arrival {
                    first: tls("example.com", false),
                    ..connect("192.0.2.7", 443)
                },
                TunnelAfterFirstBytes,
            ),
            (
                "a refused IP literal with another SNI: closed, never dialled",
                Arrival {
                    first: tls("example.com", false),
                    refused: Some(Refusal::Loopback),
                    ..connect("127.0.0.1", 443)
                },
                Close(Refusal::Loopback),
            ),
            (
                "foreign bytes to an IP literal",
                Arrival {
                    first: Some(First::Other),
                    ..connect("192.0.2.7", 443)
                },
                TunnelAfterFirstBytes,
            ),
            (
                "plain HTTP inside an intercepted name",
                Arrival {
                    first: Some(First::Http { by_host: false }),
                    ..connect("www.youtube.com", 443)
                },
                ServeHttp,
            ),
            (
                "plain HTTP to an address whose Host is intercepted (transparent mode)",
                Arrival {
                    first: Some(First::Http { by_host: true }),
                    ..connect("192.0.2.7", 80)
                },
                ServeHttp,
            ),
            (
                "plain HTTP to an address for another host",
                Arrival {
                    first: Some(First::Http { by_host: false }),
                    ..connect("192.0.2.7", 80)
                },
                TunnelAfterFirstBytes,
            ),
            (
                "foreign bytes inside an intercepted name: closed, never dialled blind",
                Arrival {
                    first: Some(First::Other),
                    ..connect("www.youtube.com", 443)
                },
                CloseForeign,
            ),
            (
                "the CA page",
                Arrival {
                    ca_page: true,
                    ..request("potproxy.invalid")
                },
                AnswerLocally,
            ),
            (
                "a request for a refused destination",
                Arrival {
                    refused: Some(Refusal::Loopback),
                    ..request("127.0.0.1")
                },
                RefuseDestination(Refusal::Loopback),
            ),
            (
                "an upgrade (WebSocket)",
                arrival(Kind::Upgrade, "example.com", 80),
                Upgrade,
            ),
            (
                "an upgrade to a refused destination",
                Arrival {
                    refused: Some(Refusal::OwnListener),
                    ..arrival(Kind::Upgrade, "127.0.0.1", 8080)
                },
                RefuseDestination(Refusal::OwnListener),
            ),
            ("any other request", request("www.youtube.com"), Forward),
        ];
        for (why, a, want) in rows {
            assert_eq!(decide(&a), want, "{why}");
        }
    }
}
