//! Byte-stream helpers of the front door: reading a connection's first bytes to learn what it
//! is (a ClientHello and its SNI, an HTTP request line, anything else) without losing them
//! ([`sniff`], [`Rewind`]), and counting what moves through a tunnel whatever way it ends
//! ([`Counted`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// A ClientHello larger than this is not one (post-quantum key shares stay well below).
const SNIFF_CAP: usize = 64 * 1024;

/// Request methods a plain HTTP connection may start with.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
];

/// Writes go straight to the wrapped stream's `inner`: these wrappers only change reads.
macro_rules! forward_writes {
    ($wrapper:ident) => {
        impl<T: AsyncWrite + Unpin> AsyncWrite for $wrapper<T> {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }
            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }
            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}

/// What the first bytes of a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// A whole TLS ClientHello, with its SNI (lower-cased) when it names one.
    Tls(Option<String>),
    /// An HTTP/1 request head, with its `Host` (lower-cased, without port) when it has one.
    Http(Option<String>),
    /// Anything else, or a ClientHello that does not parse.
    Other,
}

/// Reads the start of a connection until it is known what it is; returns that and every byte
/// read, to be replayed to whoever gets the connection. The caller's clock bounds the wait
/// (the client socket's idle limit).
pub async fn sniff<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<(Sniffed, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut acceptor = rustls::server::Acceptor::default();
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] != 0x16 {
            if METHODS.iter().any(|m| buf.starts_with(m)) {
                // The whole head, for its Host (a transparent connection has no other name).
                if !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < SNIFF_CAP {
                    continue;
                }
                return Ok((Sniffed::Http(host_header(&buf)), buf));
            }
            // "GE" may be the start of "GET ": read on until a method could no longer fit.
            if METHODS.iter().any(|m| m.starts_with(&buf)) {
                continue;
            }
            return Ok((Sniffed::Other, buf));
        }
        let mut rd = &chunk[..n];
        while !rd.is_empty() {
            if acceptor.read_tls(&mut rd).is_err() {
                return Ok((Sniffed::Other, buf));
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted
                    .client_hello()
                    .server_name()
                    .map(|s| s.to_ascii_lowercase());
                return Ok((Sniffed::Tls(sni), buf));
            }
            Ok(None) if buf.len() < SNIFF_CAP => continue,
            _ => return Ok((Sniffed::Other, buf)),
        }
    }
}

/// The `Host` header of an HTTP/1 request head, lower-cased, without its port.
fn host_header(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let value = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))?
        .value;
    let host = std::str::from_utf8(value).ok()?.trim();
    let (host, _) = crate::intercept::split_authority(host, 80);
    Some(host.to_ascii_lowercase()).filter(|h| !h.is_empty())
}

/// Bytes already read, served again before the rest of the stream.
pub struct Rewind<U> {
    prefix: Bytes,
    inner: U,
}

impl<U> Rewind<U> {
    pub fn new(prefix: Vec<u8>, inner: U) -> Self {
        Rewind {
            prefix: Bytes::from(prefix),
            inner,
        }
    }
}

impl<U: AsyncRead + Unpin> AsyncRead for Rewind<U> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

forward_writes!(Rewind);

/// A stream that counts the bytes read from it into a shared counter, so a tunnel's access
/// line has true byte counts even when the relay ends in an error or an idle timeout.
pub struct Counted<I> {
    inner: I,
    read: Arc<AtomicU64>,
}

impl<I> Counted<I> {
    pub fn new(inner: I) -> (Self, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        (
            Counted {
                inner,
                read: read.clone(),
            },
            read,
        )
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        res
    }
}

forward_writes!(Counted);

#[cfg(test)]
mod tests {
    use super::*;

    fn client_hello(name: &str) -> Vec<u8> {
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(cfg), name.to_string().try_into().unwrap())
                .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        hello
    }

    #[tokio::test]
    async fn a_client_hello_yields_its_sni_and_every_byte_read() {
        let hello = client_hello("WWW.YouTube.com");
        let mut rd = &hello[..];
        let (what, first) = sniff(&mut rd).await.unwrap();
        assert_eq!(what, Sniffed::Tls(Some("www.youtube.com".into())));
        assert_eq!(first, hello);
    }

    #[tokio::test]
    async fn request_lines_are_http_and_other_bytes_are_not() {
        let mut get = &b"GET / HTTP/1.1\r\nHost: WWW.YouTube.com:80\r\n\r\n"[..];
        assert_eq!(
            sniff(&mut get).await.unwrap().0,
            Sniffed::Http(Some("www.youtube.com".into()))
        );
        let mut post = &b"POST /youtubei/v1/player HTTP/1.1\r\n\r\n"[..];
        assert_eq!(sniff(&mut post).await.unwrap().0, Sniffed::Http(None));
        let mut ssh = &b"SSH-2.0-x\r\n"[..];
        assert_eq!(sniff(&mut ssh).await.unwrap().0, Sniffed::Other);
    }

    #[tokio::test]
    async fn a_request_line_split_across_reads_is_still_http() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(b"GE").await.unwrap();
            tokio::task::yield_now().await;
            client.write_all(b"T / HTTP/1.1\r\n\r\n").await.unwrap();
            client
        });
        let (what, first) = sniff(&mut server).await.unwrap();
        assert_eq!(what, Sniffed::Http(None));
        assert!(first.starts_with(b"GE"));
        drop(writer.await);
    }

    #[tokio::test]
    async fn rewind_serves_the_prefix_first() {
        let inner: &[u8] = b"world";
        let mut r = Rewind::new(b"hello ".to_vec(), inner);
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[tokio::test]
    async fn counted_counts_what_was_read_even_when_reading_stops_early() {
        let inner: &[u8] = b"0123456789";
        let (mut c, read) = Counted::new(inner);
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(read.load(Ordering::Relaxed), 4);
    }
}
