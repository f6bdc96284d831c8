//! The TCP dialler under every upstream connection potproxy makes (forwarded requests, tunnels,
//! its own requests, the hop to an egress proxy): the connect timeout, no Nagle, and the
//! `SO_MARK` of `[transparent] mark`, so that firewall rules redirecting TCP to potproxy can let
//! potproxy's own connections pass instead of looping them back into it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// Dials `host:port` URIs (any scheme; the port defaults by scheme).
#[derive(Debug, Clone)]
pub struct TcpDialer {
    pub timeout: Duration,
    /// `SO_MARK` for every socket (Linux, needs `CAP_NET_ADMIN`).
    pub mark: Option<u32>,
}

impl TcpDialer {
    /// Connects to the first address of `host:port` that answers, each try within the timeout.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let host = host.trim_matches(|c| c == '[' || c == ']');
        let addrs: Vec<SocketAddr> = match host.parse() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| timed_out(host, port, self.timeout))??
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout(self.timeout, self.connect_addr(addr)).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(timed_out(host, port, self.timeout)),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
        }))
    }

    async fn connect_addr(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(mark) = self.mark {
            set_mark(&socket, mark)?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

fn timed_out(host: &str, port: u16, after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("connect to {host}:{port} timed out after {after:?}"),
    )
}

/// Sets `SO_MARK` on a socket.
#[cfg(target_os = "linux")]
fn set_mark(socket: &impl std::os::fd::AsRawFd, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt on a descriptor we own, with a pointer to a live u32 and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_mark(_socket: &impl std::os::fd::AsRawFd, _mark: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_MARK is Linux only",
    ))
}

/// Whether this process may mark its sockets (checked once at start, so a transparent setup
/// that would loop fails before it serves).
pub fn can_mark(mark: u32) -> io::Result<()> {
    set_mark(&TcpSocket::new_v4()?, mark)
}

impl tower_service::Service<Uri> for TcpDialer {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI has no host"))?;
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            this.connect(host, port).await.map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    #[tokio::test]
    async fn dials_a_uri_with_the_port_of_its_scheme_or_its_own() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut d = TcpDialer {
            timeout: Duration::from_secs(5),
            mark: None,
        };
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let io = d.call(uri).await.unwrap();
        assert!(io.inner().nodelay().unwrap());
        assert_eq!(io.inner().peer_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn a_marked_socket_carries_its_mark_where_allowed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        if can_mark(0x5050).is_err() {
            eprintln!("skipping: no CAP_NET_ADMIN to set SO_MARK");
            return;
        }
        let d = TcpDialer {
            timeout: Duration::from_secs(5),
            mark: Some(0x5050),
        };
        let s = d.connect("127.0.0.1", port).await.unwrap();
        let mut mark: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        use std::os::fd::AsRawFd;
        // SAFETY: getsockopt into a live u32 with its size.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MARK,
                (&mut mark as *mut u32).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(mark, 0x5050);
    }
}
