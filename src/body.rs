//! Message bodies the proxy needs to read or replace, requests and responses alike: the one
//! bounded reader ([`read_whole`]: up to a cap, handing back an untouched stream when the cap is
//! exceeded), undoing `Content-Encoding`, and the one body replacement that keeps the framing
//! headers true ([`Whole::replaced`]). Media bodies never come here.

use std::collections::VecDeque;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hudsucker::Body;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the request body failed: {0}")]
    Read(String),
    #[error("unsupported content-encoding `{0}`")]
    UnsupportedEncoding(String),
    #[error("body is not valid `{encoding}`: {reason}")]
    Undecodable { encoding: String, reason: String },
    #[error("decoded body exceeds {0} bytes")]
    DecodedTooLarge(usize),
}

/// The outcome of reading a body up to a cap.
pub enum Buffered {
    /// The whole body, within the cap.
    Complete(Bytes),
    /// Over the cap: the bytes read so far followed by the rest of the stream, unchanged, so the
    /// request can be forwarded as it came.
    TooLarge(Body),
}

/// Reads `body` until its end or until more than `cap` bytes arrived.
pub async fn buffer_to_cap(mut body: Body, cap: usize) -> Result<Buffered, BodyError> {
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(crate::errtext::error_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            chunks.push_back(data);
            if total > cap {
                return Ok(Buffered::TooLarge(Body::from(BoxBody::new(Prefixed {
                    prefix: chunks,
                    rest: body,
                }))));
            }
        }
    }
    let mut all = BytesMut::with_capacity(total);
    for c in chunks {
        all.extend_from_slice(&c);
    }
    Ok(Buffered::Complete(all.freeze()))
}

/// A request or a response: what [`read_whole`] and [`Whole`] work on.
pub trait Message: Sized {
    type Parts;
    fn split(self) -> (Self::Parts, Body);
    fn join(parts: Self::Parts, body: Body) -> Self;
    fn headers(parts: &Self::Parts) -> &HeaderMap;
    fn headers_mut(parts: &mut Self::Parts) -> &mut HeaderMap;
}

impl Message for Request<Body> {
    type Parts = http::request::Parts;
    fn split(self) -> (Self::Parts, Body) {
        self.into_parts()
    }
    fn join(parts: Self::Parts, body: Body) -> Self {
        Request::from_parts(parts, body)
    }
    fn headers(parts: &Self::Parts) -> &HeaderMap {
        &parts.headers
    }
    fn headers_mut(parts: &mut Self::Parts) -> &mut HeaderMap {
        &mut parts.headers
    }
}

impl Message for Response<Body> {
    type Parts = http::response::Parts;
    fn split(self) -> (Self::Parts, Body) {
        self.into_parts()
    }
    fn join(parts: Self::Parts, body: Body) -> Self {
        Response::from_parts(parts, body)
    }
    fn headers(parts: &Self::Parts) -> &HeaderMap {
        &parts.headers
    }
    fn headers_mut(parts: &mut Self::Parts) -> &mut HeaderMap {
        &mut parts.headers
    }
}

/// A message whose body was read to its end, within the cap.
pub struct Whole<M: Message> {
    pub parts: M::Parts,
    /// The body as it came (still content-encoded, if it was).
    pub raw: Bytes,
}

/// Why [`read_whole`] has no whole body to offer.
pub enum NotRead<M: Message> {
    /// Over the cap (declared or counted): the message as it came, ready to forward.
    TooLarge(M),
    /// The body broke while being read; what was read is lost.
    Broken { parts: M::Parts, error: BodyError },
}

/// Reads a message's body up to `cap` bytes. A declared `Content-Length` over the cap gives up
/// before reading anything.
pub async fn read_whole<M: Message>(msg: M, cap: usize) -> Result<Whole<M>, NotRead<M>> {
    let (parts, body) = msg.split();
    let declared = M::headers(&parts)
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(NotRead::TooLarge(M::join(parts, body)));
    }
    match buffer_to_cap(body, cap).await {
        Ok(Buffered::Complete(raw)) => Ok(Whole { parts, raw }),
        Ok(Buffered::TooLarge(body)) => Err(NotRead::TooLarge(M::join(parts, body))),
        Err(error) => Err(NotRead::Broken { parts, error }),
    }
}

impl<M: Message> Whole<M> {
    pub fn headers(&self) -> &HeaderMap {
        M::headers(&self.parts)
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        M::headers_mut(&mut self.parts)
    }

    /// The body with its `Content-Encoding` undone, at most `limit` bytes.
    pub fn decoded(&self, limit: usize) -> Result<Bytes, BodyError> {
        match self
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
        {
            None => Ok(self.raw.clone()),
            Some(enc) => decode(enc, &self.raw, limit).map(Bytes::from),
        }
    }

    /// The message as it came.
    pub fn unchanged(self) -> M {
        M::join(self.parts, Body::from(self.raw))
    }

    /// The message with a new, identity-coded body (see [`fix_framing`]).
    pub fn replaced(mut self, body: Vec<u8>) -> M {
        fix_framing(self.headers_mut(), body.len());
        M::join(self.parts, Body::from(body))
    }
}

/// Makes the framing headers describe a replacement body of `len` bytes: the new body is sent
/// whole and uncompressed, so `Content-Encoding` and `Transfer-Encoding` of the old one go.
pub fn fix_framing(headers: &mut HeaderMap, len: usize) {
    headers.remove(CONTENT_ENCODING);
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
}

/// Already-read chunks replayed in front of the unread remainder of a body.
struct Prefixed {
    prefix: VecDeque<Bytes>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(chunk) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let queued: u64 = self.prefix.iter().map(|b| b.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + queued);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + queued);
        }
        hint
    }
}

/// What a [`Tee`] calls with the whole copy of a body that ended within its cap.
pub type OnWhole = Box<dyn FnOnce(Bytes) + Send + Sync>;

/// A response body passed on frame by frame while a copy (up to `cap` bytes) is kept, for
/// learning from answers the client gets unchanged: nothing is held back, so a large page costs
/// the client no extra wait. When the body is complete within the cap, `on_whole` gets the copy
/// before the last frame is handed on (a client that acts on the last byte finds the lesson
/// learned); a body over the cap or broken teaches nothing.
pub struct Tee {
    inner: Body,
    copy: BytesMut,
    cap: usize,
    on_whole: Option<OnWhole>,
}

impl Tee {
    pub fn new(inner: Body, cap: usize, on_whole: OnWhole) -> Self {
        // A declared length within the cap is room taken once, not grown by doubling copies.
        let declared = http_body::Body::size_hint(&inner).exact().unwrap_or(0) as usize;
        Tee {
            inner,
            copy: BytesMut::with_capacity(if declared <= cap { declared } else { 0 }),
            cap,
            on_whole: Some(on_whole),
        }
    }

    fn finish(&mut self) {
        if let Some(f) = self.on_whole.take() {
            f(std::mem::take(&mut self.copy).freeze());
        }
    }
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.on_whole.is_some() {
                        if this.copy.len() + data.len() > this.cap {
                            this.on_whole = None;
                            this.copy = BytesMut::new();
                        } else {
                            this.copy.extend_from_slice(data);
                        }
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.on_whole = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Undoes a `Content-Encoding` header value (codings applied in order, so undone in reverse).
/// Output is limited to `limit` bytes so a small compressed body cannot expand without bound.
pub fn decode(content_encoding: &str, body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut data = body.to_vec();
    for coding in content_encoding
        .rsplit(',')
        .map(|c| c.trim().to_ascii_lowercase())
    {
        data = match coding.as_str() {
            "" | "identity" => data,
            "gzip" | "x-gzip" => {
                read_limited(flate2::read::MultiGzDecoder::new(&data[..]), &coding, limit)?
            }
            "deflate" => {
                // RFC 9110 says zlib-wrapped; some clients send raw deflate.
                read_limited(flate2::read::ZlibDecoder::new(&data[..]), &coding, limit).or_else(
                    |_| read_limited(flate2::read::DeflateDecoder::new(&data[..]), &coding, limit),
                )?
            }
            "br" => read_limited(brotli::Decompressor::new(&data[..], 4096), &coding, limit)?,
            "zstd" => {
                let dec = zstd::stream::read::Decoder::new(&data[..]).map_err(|e| {
                    BodyError::Undecodable {
                        encoding: coding.clone(),
                        reason: e.to_string(),
                    }
                })?;
                read_limited(dec, &coding, limit)?
            }
            other => return Err(BodyError::UnsupportedEncoding(other.to_string())),
        };
    }
    Ok(data)
}

fn read_limited(reader: impl Read, coding: &str, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Undecodable {
            encoding: coding.to_string(),
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BodyError::DecodedTooLarge(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = br#"{"context":{"client":{"clientName":"WEB"}},"videoId":"abcdefghijk"}"#;

    #[test]
    fn every_supported_encoding_round_trips() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        assert_eq!(
            decode("gzip", &gz.finish().unwrap(), 1 << 20).unwrap(),
            TEXT
        );

        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(TEXT).unwrap();
        assert_eq!(
            decode("deflate", &zl.finish().unwrap(), 1 << 20).unwrap(),
            TEXT
        );

        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).unwrap();
        assert_eq!(
            decode("deflate", &raw.finish().unwrap(), 1 << 20).unwrap(),
            TEXT
        );

        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(TEXT)
            .unwrap();
        assert_eq!(decode("br", &br, 1 << 20).unwrap(), TEXT);

        let zs = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(decode("zstd", &zs, 1 << 20).unwrap(), TEXT);
        assert_eq!(decode("identity", TEXT, 1 << 20).unwrap(), TEXT);
    }

    #[test]
    fn stacked_encodings_are_undone_in_reverse() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        let br_of_gz = {
            let mut out = Vec::new();
            brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
                .write_all(&gz.finish().unwrap())
                .unwrap();
            out
        };
        assert_eq!(decode("gzip, br", &br_of_gz, 1 << 20).unwrap(), TEXT);
    }

    #[test]
    fn garbage_that_claims_gzip_is_an_error() {
        assert!(matches!(
            decode("gzip", b"this is not gzip", 1 << 20),
            Err(BodyError::Undecodable { .. })
        ));
        assert!(matches!(
            decode("compress", TEXT, 1 << 20),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn a_compression_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        let zs = zstd::encode_all(&zeros[..], 3).unwrap();
        assert!(matches!(
            decode("zstd", &zs, 1 << 20),
            Err(BodyError::DecodedTooLarge(_))
        ));
    }

    #[tokio::test]
    async fn over_cap_bodies_come_back_whole_and_in_order() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..10u8).map(|i| Ok(Bytes::from(vec![i; 1000]))).collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let Buffered::TooLarge(rest) = buffer_to_cap(body, 2500).await.unwrap() else {
            panic!("expected over cap");
        };
        let all = rest.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 10_000);
        for (i, chunk) in all.chunks(1000).enumerate() {
            assert!(chunk.iter().all(|b| *b == i as u8));
        }
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_not_read() {
        let req = Request::builder()
            .header(CONTENT_LENGTH, "5000")
            .body(Body::from(vec![7u8; 5000]))
            .unwrap();
        let Err(NotRead::TooLarge(req)) = read_whole(req, 1000).await else {
            panic!("expected too large");
        };
        let all = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 5000);
    }

    #[tokio::test]
    async fn a_replaced_body_gets_true_framing_headers() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        let res = Response::builder()
            .header(CONTENT_ENCODING, "gzip")
            .header(TRANSFER_ENCODING, "chunked")
            .body(Body::from(gz.finish().unwrap()))
            .unwrap();
        let Ok(whole) = read_whole(res, 1 << 20).await else {
            panic!("expected whole");
        };
        assert_eq!(&whole.decoded(1 << 20).unwrap()[..], TEXT);
        let res = whole.replaced(b"{}".to_vec());
        assert!(res.headers().get(CONTENT_ENCODING).is_none());
        assert!(res.headers().get(TRANSFER_ENCODING).is_none());
        assert_eq!(res.headers()[CONTENT_LENGTH], "2");
    }

    #[tokio::test]
    async fn a_teed_body_passes_unchanged_and_teaches_before_its_last_frame() {
        use std::sync::{Arc, Mutex};
        let learned: Arc<Mutex<Option<Bytes>>> = Arc::default();
        let l = learned.clone();
        let body = Body::from(http_body_util::Full::new(Bytes::from_static(TEXT)));
        let mut tee = Tee::new(body, 1024, Box::new(move |b| *l.lock().unwrap() = Some(b)));
        let frame = tee.frame().await.unwrap().unwrap();
        // The copy is handed over as the last frame passes, before the client sees the end.
        assert_eq!(learned.lock().unwrap().as_deref(), Some(TEXT));
        assert_eq!(frame.into_data().unwrap(), TEXT);
        assert!(tee.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_teed_body_over_its_cap_passes_whole_and_teaches_nothing() {
        use std::sync::{Arc, Mutex};
        let learned: Arc<Mutex<Option<Bytes>>> = Arc::default();
        let l = learned.clone();
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..10u8).map(|i| Ok(Bytes::from(vec![i; 1000]))).collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let tee = Tee::new(body, 2500, Box::new(move |b| *l.lock().unwrap() = Some(b)));
        let all = tee.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 10_000);
        assert!(learned.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn small_bodies_are_complete() {
        let Buffered::Complete(b) = buffer_to_cap(Body::from(TEXT), 1024).await.unwrap() else {
            panic!("expected complete");
        };
        assert_eq!(&b[..], TEXT);
    }
}
