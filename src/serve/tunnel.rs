//! The one blind tunnel routine, for every way a connection becomes a byte pipe: a `CONNECT`
//! to a host potproxy does not decrypt, an IP literal whose first bytes name no intercepted
//! host, and a protocol upgrade (WebSocket and others) after its handshake. Each gets the same
//! guarantees: the destination rule before any connection is made ([`Tunnels::open`]: resolve,
//! check, then connect to the checked address), egress through `[upstream]`, the tunnel idle
//! clock over both sides (`[timeouts] tunnel_idle_secs`) in place of the client socket's own,
//! drain tracking (the caller runs it on the server's task tracker), and one access line with
//! true byte counts however the tunnel ends.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::io::Counted;
use crate::access::Refusal;
use crate::limits::ClientConn;
use crate::observe::{Kind, Outcome, TunnelRecord};
use crate::upstream::{DialError, Resolver};

/// Dials and relays blind tunnels; one per proxy listener.
#[derive(Clone)]
pub struct Tunnels {
    pub resolver: Resolver,
    pub destinations: std::sync::Arc<crate::access::Destinations>,
}

/// Why a tunnel's server side could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The destination rule refused the address (before any connection was made).
    #[error("{}", .0.text().trim_end())]
    Refused(Refusal),
    /// The destination (or the egress proxy) could not be reached.
    #[error("cannot connect to {authority}: {source}")]
    Unreachable {
        authority: String,
        source: io::Error,
    },
}

/// How a connection came to be a tunnel (the access line's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `CONNECT` (by name, or an IP literal after its first bytes).
    Connect,
    /// A protocol upgrade after its `101`.
    Upgrade,
    /// A SOCKS5 `CONNECT`.
    Socks5,
}

impl Via {
    fn kind(self) -> Kind {
        match self {
            Via::Connect => Kind::Tunnel,
            Via::Upgrade => Kind::Upgrade,
            Via::Socks5 => Kind::Socks5,
        }
    }

    fn status(self) -> u16 {
        match self {
            Via::Connect | Via::Socks5 => 200,
            Via::Upgrade => 101,
        }
    }
}

/// One tunnel's identity for its access line.
#[derive(Debug, Clone)]
pub struct Opened {
    pub via: Via,
    pub authority: String,
    pub started: Instant,
    /// The client it is for.
    pub client: Option<std::net::SocketAddr>,
}

impl Opened {
    pub fn new(via: Via, authority: impl Into<String>) -> Self {
        Opened {
            via,
            authority: authority.into(),
            started: Instant::now(),
            client: None,
        }
    }

    /// The tunnel is for `client`.
    pub fn for_client(mut self, client: std::net::SocketAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The access line of a tunnel that never carried a byte (its server side never opened).
    pub fn failed(&self, why: &OpenError) {
        let status = match why {
            OpenError::Refused(_) => 403,
            OpenError::Unreachable { .. } => 502,
        };
        if matches!(why, OpenError::Unreachable { .. }) {
            crate::metrics::UPSTREAM_ERRORS.with(&["tunnel_dial"]).inc();
        }
        crate::observe::tunnel_closed(&TunnelRecord {
            kind: self.via.kind(),
            authority: &self.authority,
            status,
            started: self.started,
            bytes_in: 0,
            bytes_out: 0,
            outcome: Outcome::NotOpened,
            client: self.client,
        });
    }
}

impl Tunnels {
    /// Opens the server side of a tunnel to `host:port`: `[upstream] resolve` overrides and the
    /// egress proxy as configured; a name dialled directly is resolved first and only an
    /// address the destination rule allows is connected to, so a refused destination never
    /// sees a connection attempt (and its port state cannot be probed through the proxy).
    pub async fn open(&self, host: &str, port: u16) -> Result<TcpStream, OpenError> {
        self.resolver
            .dial_checked(host, port, &self.destinations)
            .await
            .map_err(|e| match e {
                DialError::Refused(r) => OpenError::Refused(r),
                DialError::Io(source) => OpenError::Unreachable {
                    authority: format!("{host}:{port}"),
                    source,
                },
            })
    }

    /// Relays `client` and `server` until both close, or until neither moved a byte for
    /// `idle`; `first` (bytes already read from the client) goes to the server first. Lifts
    /// the client socket's own idle clock, then writes the access line.
    pub async fn relay<C, S>(
        &self,
        opened: Opened,
        client: C,
        server: S,
        first: &[u8],
        conn: &ClientConn,
    ) where
        C: AsyncRead + AsyncWrite + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (idle, _open) = conn.into_tunnel();
        let (client, read_from_client) = Counted::new(client);
        let (mut server, read_from_server) = Counted::new(server);
        let result = async {
            // Under the tunnel's clock too: a server that never reads must not hold the task.
            match tokio::time::timeout(idle, server.write_all(first)).await {
                Ok(written) => written?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "server never read")),
            }
            crate::limits::tunnel(client, server, idle).await
        }
        .await;
        let outcome = match &result {
            Ok(_) => Outcome::Passed,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::IdleTimeout,
            Err(_) => Outcome::Error,
        };
        if let Err(e) = &result {
            tracing::debug!(authority = %opened.authority, error = %e, "tunnel closed with an error");
        }
        crate::observe::tunnel_closed(&TunnelRecord {
            kind: opened.via.kind(),
            authority: &opened.authority,
            status: opened.via.status(),
            started: opened.started,
            bytes_in: first.len() as u64 + read_from_client.load(Ordering::Relaxed),
            bytes_out: read_from_server.load(Ordering::Relaxed),
            outcome,
            client: opened.client,
        });
    }
}
