//! Transparent mode (Linux, `[transparent] listen`): connections the firewall redirected to
//! potproxy (nftables/iptables `REDIRECT`, or `TPROXY` with `[transparent] tproxy = true`)
//! arrive here with their original destination, read from `SO_ORIGINAL_DST` (or, for TPROXY,
//! the socket's own local address). The client named nothing, so the connection is judged like
//! an IP-literal `CONNECT` to that destination: its ClientHello's SNI (or, for plain HTTP, its
//! `Host`) decides between decrypting a YouTube name and a byte-for-byte tunnel to the original
//! destination. potproxy's own connections carry `[transparent] mark` (`SO_MARK`) so the rules
//! can let them pass instead of redirecting them back ([`rules`] prints such rules).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hudsucker::certificate_authority::CertificateAuthority;
use hyper_util::client::legacy::connect::Connect;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::door;
use super::{Arrived, Hook, ProxyServer};
use crate::access::is_private_or_loopback;

/// `SO_ORIGINAL_DST` (netfilter, IPv4) and `IP6T_SO_ORIGINAL_DST` (IPv6): both 80.
const SO_ORIGINAL_DST: libc::c_int = 80;

/// Where a redirected connection was going.
pub fn original_destination(tcp: &TcpStream, tproxy: bool) -> io::Result<SocketAddr> {
    if tproxy {
        return tcp.local_addr();
    }
    let fd = tcp.as_raw_fd();
    match tcp.local_addr()? {
        SocketAddr::V4(_) => {
            // SAFETY: getsockopt into a zeroed sockaddr_in with its size.
            let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_IP,
                    SO_ORIGINAL_DST,
                    (&mut addr as *mut libc::sockaddr_in).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                u16::from_be(addr.sin_port),
            )))
        }
        SocketAddr::V6(_) => {
            // SAFETY: getsockopt into a zeroed sockaddr_in6 with its size.
            let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_IPV6,
                    SO_ORIGINAL_DST,
                    (&mut addr as *mut libc::sockaddr_in6).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(addr.sin6_addr.s6_addr),
                u16::from_be(addr.sin6_port),
                0,
                0,
            )))
        }
    }
}

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: Hook,
{
    /// One redirected connection to `dst`.
    pub(super) async fn serve_transparent<I>(
        self: Arc<Self>,
        io: I,
        dst: SocketAddr,
        arrived: Arrived,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = arrived.client_addr;
        // Redirected clients cannot send credentials: only loopback and private networks (the
        // hosts behind a gateway, or this host) are served.
        if !is_private_or_loopback(peer.ip()) {
            tracing::warn!(%peer, "refused a transparent client outside loopback and private networks");
            return;
        }
        // The client named nothing: judged like a CONNECT to the address it was going to.
        let arrival = self.door.arrival(
            door::Kind::Connect,
            crate::access::Entry::Allowed,
            dst.ip().to_string(),
            dst.port(),
            true,
        );
        self.sniff_then_decide(arrival, io, arrived).await;
    }
}

/// Which machine the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesFor {
    /// A gateway: traffic forwarded from other hosts (`prerouting`).
    Gateway,
    /// This host's own traffic (`output`), with potproxy's marked connections exempt.
    Host,
}

/// nftables rules that send TCP 80/443 to a transparent listener on `port`, and drop UDP 443
/// so clients leave QUIC for TCP. `mark` is what potproxy's own connections carry.
pub fn rules(for_: RulesFor, port: u16, mark: Option<u32>) -> String {
    let mut out = String::from("table inet potproxy {\n");
    match for_ {
        RulesFor::Gateway => {
            out.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n");
            out.push_str(&format!(
                "    fib daddr type local return\n    tcp dport {{ 80, 443 }} redirect to :{port}\n  }}\n"
            ));
            out.push_str(
                "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
            );
            out.push_str("    udp dport 443 drop\n  }\n");
        }
        RulesFor::Host => {
            out.push_str(
                "  chain output {\n    type nat hook output priority -100; policy accept;\n",
            );
            match mark {
                Some(m) => out.push_str(&format!("    meta mark 0x{m:x} return\n")),
                None => out.push_str(
                    "    # no [transparent] mark: exempt potproxy by its user instead, e.g.\n    # meta skuid \"potproxy\" return\n",
                ),
            }
            out.push_str("    ip daddr 127.0.0.0/8 return\n    ip6 daddr ::1 return\n");
            out.push_str(&format!(
                "    tcp dport {{ 80, 443 }} redirect to :{port}\n  }}\n"
            ));
            out.push_str(
                "  chain quic {\n    type filter hook output priority filter; policy accept;\n",
            );
            out.push_str("    udp dport 443 drop\n  }\n");
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_exempt_marked_connections_before_redirecting_and_drop_quic() {
        let r = rules(RulesFor::Host, 8443, Some(0x5050));
        let exempt = r.find("meta mark 0x5050 return").expect(&r);
        let redirect = r.find("redirect to :8443").expect(&r);
        assert!(exempt < redirect, "the exemption must come first:\n{r}");
        assert!(r.contains("udp dport 443 drop"), "{r}");
        assert!(r.contains("hook output"), "{r}");
    }

    #[test]
    fn gateway_rules_redirect_forwarded_traffic_and_drop_quic() {
        let r = rules(RulesFor::Gateway, 8443, None);
        assert!(r.contains("hook prerouting"), "{r}");
        assert!(r.contains("tcp dport { 80, 443 } redirect to :8443"), "{r}");
        assert!(r.contains("udp dport 443 drop"), "{r}");
        assert!(!r.contains("meta mark"), "{r}");
    }

    #[tokio::test]
    async fn a_connection_that_was_not_redirected_has_no_original_destination() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (_c, (s, _)) = tokio::join!(TcpStream::connect(addr), async {
            l.accept().await.unwrap()
        });
        // Without a netfilter redirect there is nothing to read (ENOENT); TPROXY mode reads
        // the local address.
        assert!(original_destination(&s, false).is_err());
        assert_eq!(original_destination(&s, true).unwrap(), addr);
    }
}
