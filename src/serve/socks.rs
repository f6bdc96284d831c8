//! SOCKS5 as a way in (RFC 1928, with RFC 1929 username/password): the handshake is read
//! here, and what follows goes through the same front door as an HTTP `CONNECT` (the entry
//! check with `[auth] users`, the destination rule, intercept or tunnel). A name
//! (`socks5h://`) is judged like `CONNECT name:port`; an address (`socks5://`) like an
//! IP-literal `CONNECT`, so on 443 its ClientHello's SNI decides. Only `CONNECT` is served:
//! `BIND` and `UDP ASSOCIATE` get "command not supported", which sends QUIC clients to TCP.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use http::header::PROXY_AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use hudsucker::certificate_authority::CertificateAuthority;
use hyper_util::client::legacy::connect::Connect;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::door::{self, Door};
use super::tunnel::{OpenError, Opened, Via};
use super::{Arrived, Hook, ProxyServer};
use crate::access::Entry;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;

/// Reply codes (RFC 1928 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0,
    NotAllowed = 2,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    CommandNotSupported = 7,
    AddressNotSupported = 8,
}

/// What a SOCKS5 client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `CONNECT host:port` (a name, or an address written as text).
    Connect { host: String, port: u16 },
    /// Anything else (`BIND`, `UDP ASSOCIATE`, unknown): refused with this reply.
    Refused(Reply),
}

/// Why a SOCKS5 handshake ended early.
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    #[error("not SOCKS5 (version byte {0})")]
    Version(u8),
    #[error("the client offered no acceptable authentication method")]
    NoMethod,
    #[error("the client was refused by the entry check ({0:?})")]
    Refused(Entry),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The method the server picks from the client's list: username/password when `[auth]` is on,
/// else none; `None` when the client offered neither.
pub fn choose_method(offered: &[u8], auth_required: bool) -> Option<u8> {
    let wanted = if auth_required { USER_PASS } else { NO_AUTH };
    offered.contains(&wanted).then_some(wanted)
}

/// Reads a request (after the method negotiation): version, command, reserved byte, address.
pub async fn read_request<R: AsyncRead + Unpin>(io: &mut R) -> Result<Request, SocksError> {
    let mut head = [0u8; 4];
    io.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(SocksError::Version(head[0]));
    }
    let host = match head[3] {
        1 => {
            let mut ip = [0u8; 4];
            io.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let len = io.read_u8().await? as usize;
            let mut name = vec![0u8; len];
            io.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(n) if crate::intercept::is_acceptable_host(&n) => n.to_ascii_lowercase(),
                _ => return Ok(Request::Refused(Reply::AddressNotSupported)),
            }
        }
        4 => {
            let mut ip = [0u8; 16];
            io.read_exact(&mut ip).await?;
            Ipv6Addr::from(ip).to_string()
        }
        _ => return Ok(Request::Refused(Reply::AddressNotSupported)),
    };
    let port = io.read_u16().await?;
    if head[1] != 1 {
        return Ok(Request::Refused(Reply::CommandNotSupported));
    }
    Ok(Request::Connect { host, port })
}

/// Reads an RFC 1929 username/password request.
async fn read_user_pass<R: AsyncRead + Unpin>(io: &mut R) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let _version = io.read_u8().await?;
    let ulen = io.read_u8().await? as usize;
    let mut user = vec![0u8; ulen];
    io.read_exact(&mut user).await?;
    let plen = io.read_u8().await? as usize;
    let mut pass = vec![0u8; plen];
    io.read_exact(&mut pass).await?;
    Ok((user, pass))
}

/// The credentials as the HTTP proxy would have received them, so one entry check (and its
/// failure counting) serves both ways in.
fn as_proxy_authorization(user: &[u8], pass: &[u8]) -> HeaderMap {
    let mut pair = user.to_vec();
    pair.push(b':');
    pair.extend_from_slice(pass);
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(PROXY_AUTHORIZATION, v);
    }
    headers
}

/// A reply with an unspecified bound address (clients ignore it for `CONNECT`).
async fn reply<W: AsyncWrite + Unpin>(io: &mut W, code: Reply) -> std::io::Result<()> {
    io.write_all(&[VERSION, code as u8, 0, 1, 0, 0, 0, 0, 0, 0])
        .await?;
    io.flush().await
}

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: Hook,
{
    /// One SOCKS5 client connection, from the greeting to the tunnel or the decrypted
    /// requests inside.
    pub(super) async fn serve_socks<I>(self: Arc<Self>, mut io: I, arrived: Arrived)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = arrived.client_addr;
        let request = match self.socks_handshake(&mut io, peer).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "SOCKS5 handshake ended");
                return;
            }
        };
        let (host, port) = match request {
            Request::Connect { host, port } => (host, port),
            Request::Refused(code) => {
                tracing::debug!(%peer, ?code, "SOCKS5 request refused");
                let _ = reply(&mut io, code).await;
                return;
            }
        };
        let arrival = self
            .door
            .arrival(door::Kind::Connect, Entry::Allowed, host, port, true);
        match door::decide(&arrival) {
            Door::TunnelNow => {
                let opened =
                    Opened::new(Via::Socks5, arrival.authority()).for_client(arrived.client_addr);
                match self.tunnels.open(&arrival.host, arrival.port).await {
                    Ok(server) => {
                        if reply(&mut io, Reply::Succeeded).await.is_ok() {
                            self.tunnels
                                .relay(opened, io, server, &[], &arrived.conn)
                                .await;
                        }
                    }
                    Err(e) => {
                        opened.failed(&e);
                        let code = match &e {
                            OpenError::Refused(_) => Reply::NotAllowed,
                            OpenError::Unreachable { source, .. }
                                if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                            {
                                Reply::ConnectionRefused
                            }
                            OpenError::Unreachable { .. } => Reply::HostUnreachable,
                        };
                        let _ = reply(&mut io, code).await;
                    }
                }
            }
            Door::ReadFirstBytes => {
                if reply(&mut io, Reply::Succeeded).await.is_ok() {
                    self.sniff_then_decide(arrival, io, arrived).await;
                }
            }
            Door::RefuseDestination(r) => {
                tracing::info!(authority = %arrival.authority(), refusal = ?r, "SOCKS5 destination refused");
                let _ = reply(&mut io, Reply::NotAllowed).await;
            }
            other => {
                tracing::debug!(decision = ?other, "SOCKS5: unexpected decision");
                let _ = reply(&mut io, Reply::NotAllowed).await;
            }
        }
    }

    /// Greeting, method choice and (with `[auth] users`) credentials, judged by the same
    /// entry check as the HTTP proxy's; then the request.
    async fn socks_handshake<I>(&self, io: &mut I, peer: SocketAddr) -> Result<Request, SocksError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let version = io.read_u8().await?;
        if version != VERSION {
            return Err(SocksError::Version(version));
        }
        let n = io.read_u8().await? as usize;
        let mut offered = vec![0u8; n];
        io.read_exact(&mut offered).await?;
        let gate = &self.door.gate;
        let auth_required = !gate.users.is_empty();
        let Some(method) = choose_method(&offered, auth_required) else {
            io.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
            return Err(SocksError::NoMethod);
        };
        let headers = if method == USER_PASS {
            io.write_all(&[VERSION, USER_PASS]).await?;
            let (user, pass) = read_user_pass(io).await?;
            as_proxy_authorization(&user, &pass)
        } else {
            HeaderMap::new()
        };
        let entry = gate.entry(peer.ip(), &headers);
        match (method, entry) {
            (USER_PASS, Entry::Allowed) => io.write_all(&[1, 0]).await?,
            (USER_PASS, e) => {
                io.write_all(&[1, 1]).await?;
                return Err(SocksError::Refused(e));
            }
            (_, Entry::Allowed) => io.write_all(&[VERSION, NO_AUTH]).await?,
            (_, e) => {
                tracing::warn!(%peer, "refused a SOCKS5 client outside loopback and private networks (no [auth] configured)");
                io.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
                return Err(SocksError::Refused(e));
            }
        }
        read_request(io).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_follows_auth_and_what_the_client_offers() {
        assert_eq!(choose_method(&[0], false), Some(NO_AUTH));
        assert_eq!(choose_method(&[0, 2], true), Some(USER_PASS));
        assert_eq!(
            choose_method(&[0], true),
            None,
            "auth on, no user/pass offered"
        );
        assert_eq!(choose_method(&[2], false), None, "no auth, none offered");
        assert_eq!(choose_method(&[], false), None);
    }

    async fn request(bytes: &[u8]) -> Request {
        let mut rd = bytes;
        read_request(&mut rd).await.unwrap()
    }

    #[tokio::test]
    async fn requests_by_name_and_by_address_are_read() {
        let mut by_name = vec![5, 1, 0, 3, 15];
        by_name.extend_from_slice(b"WWW.YouTube.com");
        by_name.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(
            request(&by_name).await,
            Request::Connect {
                host: "www.youtube.com".into(),
                port: 443
            }
        );
        let v4 = [5, 1, 0, 1, 192, 0, 2, 7, 0x01, 0xbb];
        assert_eq!(
            request(&v4).await,
            Request::Connect {
                host: "192.0.2.7".into(),
                port: 443
            }
        );
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&22u16.to_be_bytes());
        assert_eq!(
            request(&v6).await,
            Request::Connect {
                host: "::1".into(),
                port: 22
            }
        );
    }

    #[tokio::test]
    async fn bind_udp_associate_and_unknown_addresses_are_refused_with_their_codes() {
        let udp = [5, 3, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            request(&udp).await,
            Request::Refused(Reply::CommandNotSupported)
        );
        let bind = [5, 2, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            request(&bind).await,
            Request::Refused(Reply::CommandNotSupported)
        );
        let mut userinfo = vec![5, 1, 0, 3, 11];
        userinfo.extend_from_slice(b"a@127.0.0.1");
        userinfo.extend_from_slice(&4416u16.to_be_bytes());
        assert_eq!(
            request(&userinfo).await,
            Request::Refused(Reply::AddressNotSupported),
            "a name the destination rule could not judge"
        );
        let unknown_atyp = [5, 1, 0, 9, 0, 0];
        assert_eq!(
            request(&unknown_atyp).await,
            Request::Refused(Reply::AddressNotSupported)
        );
        let mut rd: &[u8] = &[4, 1, 0, 1];
        assert!(matches!(
            read_request(&mut rd).await,
            Err(SocksError::Version(4))
        ));
    }

    #[test]
    fn socks_credentials_become_the_http_proxy_header() {
        let h = as_proxy_authorization(b"me", b"s3cret");
        assert_eq!(h[PROXY_AUTHORIZATION], "Basic bWU6czNjcmV0");
    }
}
