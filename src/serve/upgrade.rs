//! Protocol upgrades (WebSocket and others): the handshake is relayed over HTTP/1 through the
//! upstream connector (overrides, egress proxy, destination rule, verified TLS), and on `101`
//! both upgraded connections become one blind tunnel ([`super::tunnel`]). Nothing inside an
//! upgraded connection is rewritten.

use std::sync::Arc;

use http::header::HOST;
use http::{Request, Response, StatusCode};
use hudsucker::Body;
use hudsucker::certificate_authority::CertificateAuthority;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioIo;
use tower_service::Service;

use super::tunnel::{Opened, Via};
use super::{Arrived, Hook, ProxyServer, text_response};
use crate::access::strip_hop_by_hop;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: Hook,
{
    pub(super) async fn upgrade(
        self: Arc<Self>,
        mut req: Request<Body>,
        arrived: &Arrived,
    ) -> Response<Body> {
        strip_hop_by_hop(req.headers_mut(), true);
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let opened = Opened::new(Via::Upgrade, authority).for_client(arrived.client_addr);
        let client_side = hyper::upgrade::on(&mut req);
        let sent =
            tokio::time::timeout(self.timeouts.upstream_headers, self.send_upgrade(req)).await;
        let mut res = match sent {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                let chain = crate::errtext::error_chain(e.as_ref());
                tracing::warn!(authority = %opened.authority, error = %chain, "upgrade: cannot reach upstream");
                crate::metrics::UPSTREAM_ERRORS.with(&["upgrade"]).inc();
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    "potproxy: upstream upgrade failed\n".into(),
                );
            }
            Err(_) => return self.headers_timed_out(),
        };
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let server_side = hyper::upgrade::on(&mut res);
            let tunnels = self.tunnels.clone();
            let conn = arrived.conn.clone();
            self.drain.spawn(async move {
                match futures::future::try_join(client_side, server_side).await {
                    Ok((c, s)) => {
                        tunnels
                            .relay(opened, TokioIo::new(c), TokioIo::new(s), &[], &conn)
                            .await
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade: a side did not switch"),
                }
            });
        }
        res.map(Body::from)
    }

    /// Sends the handshake on a fresh HTTP/1 connection (an upgraded connection is never
    /// pooled), whose driver runs on the drain's tracker until it hands the socket over.
    async fn send_upgrade(
        &self,
        req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, BoxError> {
        let uri = req.uri().clone();
        let host = uri.host().ok_or("upgrade request without a host")?;
        let host_header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let io = self.upgrades.clone().call(uri.clone()).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        self.drain.spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let (mut parts, body) = req.into_parts();
        parts.uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()?;
        parts.headers.insert(HOST, host_header.parse()?);
        Ok(sender
            .send_request(Request::from_parts(parts, body))
            .await?)
    }
}
