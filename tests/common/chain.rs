//! Upstream proxies for chaining tests: a minimal HTTP CONNECT proxy and a minimal SOCKS5 proxy.
//! Both record the `host:port` they were asked for and connect every tunnel to one target (the
//! fake origin), which presents certificates for the real names.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Seen = Arc<Mutex<Vec<String>>>;

/// Accepts connections, runs `handshake` on each (it answers the client and returns the
/// requested `host:port`), records the destination and splices the tunnel to `target`.
async fn start_proxy<F, Fut>(target: SocketAddr, handshake: F) -> (SocketAddr, Seen)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Option<(TcpStream, String)>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Some((mut client, dest)) = handshake(s).await else {
                    return;
                };
                seen.lock().unwrap().push(dest);
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, seen)
}

async fn http_connect_handshake(mut s: TcpStream) -> Option<(TcpStream, String)> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let Some(dest) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.split(' ').next())
    else {
        let _ = s
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return None;
    };
    let dest = dest.to_string();
    s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .ok()?;
    Some((s, dest))
}

/// [`http_connect_handshake`], recording `host:port|Proxy-Authorization` (empty when none).
async fn http_connect_handshake_with_auth(s: TcpStream) -> Option<(TcpStream, String)> {
    let mut s = s;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let dest = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.split(' ').next())?
        .to_string();
    let auth = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .ok()?;
    Some((s, format!("{dest}|{auth}")))
}

async fn socks5_handshake(mut s: TcpStream) -> Option<(TcpStream, String)> {
    let mut hello = [0u8; 2];
    s.read_exact(&mut hello).await.ok()?;
    if hello[0] != 5 {
        return None;
    }
    let mut methods = vec![0u8; hello[1] as usize];
    s.read_exact(&mut methods).await.ok()?;
    s.write_all(&[5, 0]).await.ok()?;
    let mut req = [0u8; 4];
    s.read_exact(&mut req).await.ok()?;
    if req[1] != 1 {
        return None;
    }
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            s.read_exact(&mut ip).await.ok()?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await.ok()?;
            let mut name = vec![0u8; len[0] as usize];
            s.read_exact(&mut name).await.ok()?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return None,
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await.ok()?;
    s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await.ok()?;
    Some((s, format!("{host}:{}", u16::from_be_bytes(port))))
}

pub async fn start_http_connect_proxy(target: SocketAddr) -> (SocketAddr, Seen) {
    start_proxy(target, http_connect_handshake).await
}

pub async fn start_socks5_proxy(target: SocketAddr) -> (SocketAddr, Seen) {
    start_proxy(target, socks5_handshake).await
}

/// An HTTP CONNECT proxy recording each tunnel as `host:port|Proxy-Authorization`.
pub async fn start_http_connect_proxy_with_auth(target: SocketAddr) -> (SocketAddr, Seen) {
    start_proxy(target, http_connect_handshake_with_auth).await
}
