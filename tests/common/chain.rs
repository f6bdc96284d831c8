//! Upstream proxies for chaining tests: a minimal HTTP CONNECT proxy and a minimal SOCKS5 proxy.
//! Both record the `host:port` they were asked for and connect every tunnel to one target (the
//! fake origin), which presents certificates for the real names.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Seen = Arc<Mutex<Vec<String>>>;

async fn splice(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

pub async fn start_http_connect_proxy(target: SocketAddr) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
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
                    return;
                };
                seen.lock().unwrap().push(dest.to_string());
                let _ = s
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                splice(s, target).await;
            });
        }
    });
    (addr, seen)
}

pub async fn start_socks5_proxy(target: SocketAddr) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut hello = [0u8; 2];
                if s.read_exact(&mut hello).await.is_err() || hello[0] != 5 {
                    return;
                }
                let mut methods = vec![0u8; hello[1] as usize];
                if s.read_exact(&mut methods).await.is_err() {
                    return;
                }
                let _ = s.write_all(&[5, 0]).await;
                let mut req = [0u8; 4];
                if s.read_exact(&mut req).await.is_err() || req[1] != 1 {
                    return;
                }
                let host = match req[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        let _ = s.read_exact(&mut ip).await;
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        let _ = s.read_exact(&mut len).await;
                        let mut name = vec![0u8; len[0] as usize];
                        let _ = s.read_exact(&mut name).await;
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    _ => return,
                };
                let mut port = [0u8; 2];
                let _ = s.read_exact(&mut port).await;
                seen.lock()
                    .unwrap()
                    .push(format!("{host}:{}", u16::from_be_bytes(port)));
                let _ = s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await;
                splice(s, target).await;
            });
        }
    });
    (addr, seen)
}
