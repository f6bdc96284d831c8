//! A `CONNECT` the front door let in: a blind tunnel dialled before the `200`
//! ([`Door::TunnelNow`]), or a `200` and then the client's first bytes, which decide between
//! decrypting TLS with a leaf from the CA, serving the plain HTTP inside, and a blind tunnel
//! that replays them ([`Door::ReadFirstBytes`]). Everything that outlives the `CONNECT`
//! request runs on the drain's tracker.

use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode};
use hudsucker::Body;
use hudsucker::certificate_authority::CertificateAuthority;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::door::{self, Arrival, Door, First};
use super::io::{Rewind, Sniffed, sniff};
use super::tunnel::{OpenError, Opened, Via};
use super::{Arrived, Hook, Inside, ProxyServer, text_response};

fn ok() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .expect("static response parts are valid")
}

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: Hook,
{
    /// `decision` is [`Door::TunnelNow`] or [`Door::ReadFirstBytes`] for `arrival`.
    pub(super) async fn connect(
        self: Arc<Self>,
        mut req: Request<Body>,
        arrival: Arrival,
        decision: Door,
        arrived: &Arrived,
    ) -> Response<Body> {
        let upgrade = hyper::upgrade::on(&mut req);
        let conn = arrived.conn.clone();
        if decision == Door::TunnelNow {
            // Dialled first: servers that speak first (SSH, SMTP) see a client at once, and a
            // destination that cannot be reached is a 502, not a 200 that closes.
            let opened =
                Opened::new(Via::Connect, arrival.authority()).for_client(arrived.client_addr);
            let server = match self.tunnels.open(&arrival.host, arrival.port).await {
                Ok(s) => s,
                Err(e) => return self.not_opened(&opened, &e),
            };
            let tunnels = self.tunnels.clone();
            self.drain.spawn(async move {
                match upgrade.await {
                    Ok(u) => {
                        tunnels
                            .relay(opened, TokioIo::new(u), server, &[], &conn)
                            .await
                    }
                    Err(e) => tracing::debug!(error = %e, "CONNECT: client upgrade failed"),
                }
            });
            return ok();
        }
        let this = self.clone();
        let arrived = arrived.clone();
        self.drain.spawn(async move {
            match upgrade.await {
                Ok(u) => {
                    this.sniff_then_decide(arrival, TokioIo::new(u), arrived)
                        .await
                }
                Err(e) => tracing::debug!(error = %e, "CONNECT: client upgrade failed"),
            }
        });
        ok()
    }

    /// [`Door::ReadFirstBytes`] once the client was told to go ahead: read the first bytes
    /// (the client socket's idle clock bounds the wait), then act on the second decision.
    pub(super) async fn sniff_then_decide<I>(
        self: Arc<Self>,
        arrival: Arrival,
        mut client: I,
        arrived: Arrived,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sniffed, first) = match sniff(&mut client).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(authority = %arrival.authority(), error = %e, "CONNECT: no first bytes from the client");
                return;
            }
        };
        self.after_first_bytes(arrival, sniffed, first, client, arrived)
            .await;
    }

    /// The door's second decision, once the first bytes are in.
    async fn after_first_bytes<I>(
        self: Arc<Self>,
        arrival: Arrival,
        sniffed: Sniffed,
        first: Vec<u8>,
        client: I,
        arrived: Arrived,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // The name a transparent (or IP-literal) connection's plain HTTP is for, when it is
        // intercepted: its Host header.
        let mut by_host = None;
        let seen = match sniffed {
            Sniffed::Tls(sni) => First::Tls {
                intercepted: sni.as_deref().is_some_and(|n| {
                    !crate::intercept::is_ip_literal(n) && self.door.policy.is_intercepted(n)
                }),
                sni,
            },
            Sniffed::Http(host) => {
                by_host = host.filter(|h| {
                    arrival.ip_literal
                        && !crate::intercept::is_ip_literal(h)
                        && self.door.policy.is_intercepted(h)
                });
                First::Http {
                    by_host: by_host.is_some(),
                }
            }
            Sniffed::Other => First::Other,
        };
        let by_sni = matches!(
            &seen,
            First::Tls {
                intercepted: true,
                ..
            }
        ) && arrival.ip_literal;
        let arrival = Arrival {
            first: Some(seen),
            ..arrival
        };
        let arrived = Arrived {
            by_name: !arrival.ip_literal,
            ..arrived
        };
        match door::decide(&arrival) {
            Door::Decrypt { name } => {
                // Requests inside an IP-literal CONNECT are for the name its ClientHello gave,
                // so the IP itself is never dialled.
                let inside = if by_sni {
                    format!("{name}:{}", arrival.port)
                } else {
                    arrival.authority()
                };
                self.decrypt(&name, &inside, Rewind::new(first, client), arrived)
                    .await
            }
            Door::ServeHttp => {
                let inside = match &by_host {
                    Some(host) => format!("{host}:{}", arrival.port),
                    None => arrival.authority(),
                };
                let Ok(inside) = inside.parse::<Authority>() else {
                    return;
                };
                let arrived = Arrived {
                    inside: Some(Inside {
                        scheme: Scheme::HTTP,
                        authority: inside,
                    }),
                    ..arrived
                };
                let io = TokioIo::new(Rewind::new(first, client));
                if let Err(e) = self.serve_http(io, arrived).await {
                    tracing::debug!(error = %crate::errtext::error_chain(e.as_ref()), "plain connection inside CONNECT ended with an error");
                }
            }
            Door::TunnelAfterFirstBytes => {
                let opened =
                    Opened::new(Via::Connect, arrival.authority()).for_client(arrived.client_addr);
                match self.tunnels.open(&arrival.host, arrival.port).await {
                    Ok(server) => {
                        self.tunnels
                            .relay(opened, client, server, &first, &arrived.conn)
                            .await
                    }
                    Err(e) => {
                        opened.failed(&e);
                        tracing::info!(authority = %arrival.authority(), error = %e, "tunnel not opened");
                    }
                }
            }
            Door::Close(r) => {
                let opened =
                    Opened::new(Via::Connect, arrival.authority()).for_client(arrived.client_addr);
                opened.failed(&OpenError::Refused(r));
                tracing::info!(authority = %arrival.authority(), refusal = ?r, "tunnel refused after its first bytes");
            }
            Door::CloseForeign => {
                tracing::info!(authority = %arrival.authority(), "CONNECT to an intercepted name carried neither TLS nor HTTP; closed");
            }
            other => tracing::debug!(decision = ?other, "CONNECT: no action after the first bytes"),
        }
    }

    /// TLS with a leaf for `name`, then the requests inside, for `inside`.
    async fn decrypt<I>(self: Arc<Self>, name: &str, inside: &str, client: I, arrived: Arrived)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (Ok(leaf_for), Ok(inside)) = (Authority::try_from(name), inside.parse::<Authority>())
        else {
            tracing::debug!(%name, "CONNECT: the name is no authority");
            return;
        };
        let config = self.ca.gen_server_config(&leaf_for).await;
        let tls = match tokio_rustls::TlsAcceptor::from(config).accept(client).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%name, error = %e, "CONNECT: TLS handshake with the client failed");
                return;
            }
        };
        let arrived = Arrived {
            inside: Some(Inside {
                scheme: Scheme::HTTPS,
                authority: inside,
            }),
            ..arrived
        };
        if let Err(e) = self.serve_http(TokioIo::new(tls), arrived).await {
            tracing::debug!(error = %crate::errtext::error_chain(e.as_ref()), "TLS connection inside CONNECT ended with an error");
        }
    }

    /// The client's answer for a tunnel whose server side did not open.
    pub(super) fn not_opened(&self, opened: &Opened, why: &OpenError) -> Response<Body> {
        opened.failed(why);
        match why {
            OpenError::Refused(r) => text_response(StatusCode::FORBIDDEN, r.text().to_string()),
            OpenError::Unreachable { .. } => {
                tracing::warn!(authority = %opened.authority, error = %why, "tunnel: cannot reach upstream");
                text_response(StatusCode::BAD_GATEWAY, format!("potproxy: {why}\n"))
            }
        }
    }
}
