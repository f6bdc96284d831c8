//! Origins that misbehave in time: one that accepts and never speaks, one that stalls before or
//! in the middle of its response, and one that sends its body slowly. Plain TCP and hand-written
//! HTTP/1.1, so the stall is exactly where the test says.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where a [`start_stalling_http`] origin stops.
#[derive(Debug, Clone, Copy)]
pub enum Stall {
    /// Reads the request, never answers.
    BeforeHeaders,
    /// Sends headers announcing `len` bytes, then `sent` of them, then nothing.
    MidBody { len: usize, sent: usize },
}

/// Accepts connections and holds them open without a byte.
pub async fn start_silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

async fn read_head(s: &mut TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
    }
}

/// An HTTP origin that stalls as `stall` says (and holds the socket open for a minute).
pub async fn start_stalling_http(stall: Stall) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut s).await;
                if let Stall::MidBody { len, sent } = stall {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\n\r\n"
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&vec![b'x'; sent]).await;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(s);
            });
        }
    });
    addr
}

/// An HTTP origin that sends `chunks` chunks of `chunk_len` bytes (`b'a' + i % 26`), one every
/// `gap`, with a Content-Length: a rate-limited download.
pub async fn start_slow_http(chunks: usize, chunk_len: usize, gap: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut s).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                    chunks * chunk_len
                );
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0..chunks {
                    let chunk = vec![b'a' + (i % 26) as u8; chunk_len];
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(gap).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}
