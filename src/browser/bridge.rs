//! The DevTools bridge: Chromium speaks CDP on a pipe (`--remote-debugging-pipe`: commands in
//! on its fd 3, answers and events out on its fd 4, each a JSON text ended by a NUL byte), while
//! chromiumoxide 0.9 only speaks WebSocket (its connection type is fixed to a TCP WebSocket and
//! its handler cannot be built around another transport). So this relays in-process: a
//! WebSocket server on 127.0.0.1 whose path carries a random 128-bit secret accepts exactly one
//! connection with that path (anything else is refused and logged), stops listening at once,
//! and relays text frames to and from the pipes.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_util::task::AbortOnDropHandle;

/// A pipe whose both ends close on exec, so no other child inherits them: `(read, write)`.
pub(super) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Largest single message relayed from the browser; a browser that sends more without a NUL is
/// broken and its connection is ended.
const MAX_PIPE_MESSAGE: u64 = 512 << 20;
/// How long a connection to the bridge may take over its WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the bridge between a WebSocket on 127.0.0.1 and the browser's pipes. Returns the one
/// URL it serves (its path holds a random 128-bit secret; never logged) and its task, which
/// ends when either side closes.
pub(crate) async fn bridge(
    to_browser: pipe::Sender,
    from_browser: pipe::Receiver,
) -> io::Result<(String, AbortOnDropHandle<()>)> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
    let path = format!(
        "/devtools/browser/{}",
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("ws://{}{path}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        if let Some(ws) = accept_one(listener, &path).await {
            relay(ws, to_browser, from_browser).await;
        }
    });
    Ok((url, AbortOnDropHandle::new(task)))
}

type BridgeSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Accepts connections until one completes the WebSocket handshake on `path`, then closes the
/// listener (dropped here) and abandons every other handshake. Handshakes run side by side so a
/// connection that stalls cannot hold the real one back.
async fn accept_one(listener: tokio::net::TcpListener, path: &str) -> Option<BridgeSocket> {
    let (won_tx, mut won_rx) = tokio::sync::mpsc::channel::<BridgeSocket>(1);
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (path, won) = (path.to_string(), won_tx.clone());
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &path)).await {
                            Ok(Ok(ws)) => {
                                let _ = won.try_send(ws);
                            }
                            Ok(Err(e)) => tracing::warn!(
                                %peer,
                                error = %e,
                                "refused a connection to the browser's DevTools bridge"
                            ),
                            Err(_) => tracing::warn!(
                                %peer,
                                "refused a connection to the browser's DevTools bridge: no handshake within 5 s"
                            ),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DevTools bridge: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(ws) = won_rx.recv() => {
                drop(listener);
                handshakes.abort_all();
                return Some(ws);
            }
        }
    }
}

/// The server side of the WebSocket handshake, refusing (404) any path but `path`.
// The callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn handshake(
    stream: tokio::net::TcpStream,
    path: &str,
) -> Result<BridgeSocket, tokio_tungstenite::tungstenite::Error> {
    let check = |req: &Request, res: Response| -> Result<Response, ErrorResponse> {
        if same_secret(req.uri().path().as_bytes(), path.as_bytes()) {
            return Ok(res);
        }
        let mut refused = ErrorResponse::new(Some("not found".into()));
        *refused.status_mut() = http::StatusCode::NOT_FOUND;
        Err(refused)
    };
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await
}

/// Equality that takes as long whatever the first differing byte is, so the secret cannot be
/// guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Relays until either side ends: each WebSocket text frame is written to the browser followed
/// by a NUL; each NUL-ended message the browser writes becomes one text frame. When the browser
/// closes its pipe (it exited) the WebSocket is closed, so chromiumoxide's handler ends; when
/// the WebSocket ends, the pipe to the browser is closed, and Chromium exits on its own.
async fn relay(ws: BridgeSocket, mut to_browser: pipe::Sender, from_browser: pipe::Receiver) {
    let (mut sink, mut stream) = ws.split();
    let down = async {
        while let Some(Ok(msg)) = stream.next().await {
            let mut bytes = match msg {
                Message::Text(t) => Vec::from(t.as_bytes()),
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            bytes.push(0);
            if to_browser.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let up = async {
        let mut reader = BufReader::new(from_browser);
        loop {
            let mut buf = Vec::new();
            match (&mut reader)
                .take(MAX_PIPE_MESSAGE)
                .read_until(0, &mut buf)
                .await
            {
                Ok(_) if buf.last() == Some(&0) => {
                    buf.pop();
                    let text = String::from_utf8(buf)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Ok(n) => {
                    if n as u64 >= MAX_PIPE_MESSAGE {
                        tracing::warn!("the browser sent a DevTools message over 512 MiB; closing");
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(
            b"/devtools/browser/ab",
            b"/devtools/browser/ab"
        ));
        assert!(!same_secret(
            b"/devtools/browser/ab",
            b"/devtools/browser/ac"
        ));
        assert!(!same_secret(
            b"/devtools/browser/a",
            b"/devtools/browser/ab"
        ));
        assert!(!same_secret(b"/", b"/devtools/browser/ab"));
    }

    #[tokio::test]
    async fn the_bridge_serves_one_client_on_the_secret_path_and_then_stops_listening() {
        use tokio_tungstenite::client_async;
        let (cmd_r, cmd_w) = cloexec_pipe().unwrap();
        let (out_r, out_w) = cloexec_pipe().unwrap();
        let (url, _task) = bridge(
            pipe::Sender::from_owned_fd(cmd_w).unwrap(),
            pipe::Receiver::from_owned_fd(out_r).unwrap(),
        )
        .await
        .unwrap();
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        // The wrong path is refused and the bridge keeps waiting for the right one.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let wrong = format!("ws://{addr}/devtools/browser/00000000000000000000000000000000");
        assert!(client_async(wrong, tcp).await.is_err());
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut ws, _) = client_async(url.as_str(), tcp)
            .await
            .expect("the right path");
        // Text frames become NUL-ended messages on the browser's command pipe...
        ws.send(Message::text("{\"id\":1}")).await.unwrap();
        let mut cmd_r = pipe::Receiver::from_owned_fd(cmd_r).unwrap();
        let mut got = [0u8; 9];
        cmd_r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"{\"id\":1}\0");
        // ...and the browser's NUL-ended messages become text frames, one each.
        let mut out_w = pipe::Sender::from_owned_fd(out_w).unwrap();
        out_w.write_all(b"{\"a\":1}\0{\"b\":2}\0").await.unwrap();
        let a = ws.next().await.unwrap().unwrap();
        let b = ws.next().await.unwrap().unwrap();
        assert_eq!(
            (a, b),
            (Message::text("{\"a\":1}"), Message::text("{\"b\":2}"))
        );
        // Nobody else gets in: the listener is closed.
        assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
        // The browser's pipe closing (it exited) closes the WebSocket.
        drop(out_w);
        assert!(matches!(
            ws.next().await,
            None | Some(Ok(Message::Close(_))) | Some(Err(_))
        ));
    }
}
