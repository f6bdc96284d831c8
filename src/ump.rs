//! UMP (googlevideo's response framing for SABR and `ump=1` requests) read as it streams past:
//! parts are `varint type, varint size, payload`, with UMP's own varint (the first byte fixes the
//! length) and parts straddling network chunks. Only small control parts are collected; media
//! payloads are skipped by count, never buffered. Used to notice STREAM_PROTECTION_STATUS 3 (the
//! in-band 403) without touching the bytes the client receives. UMP's framing varint is its own
//! (not protobuf's) and lives here; the protobuf payloads of parts are read with [`crate::wire`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

pub const STREAM_PROTECTION_STATUS: u64 = 58;
pub const SABR_ERROR: u64 = 44;
pub const RELOAD_PLAYER_RESPONSE: u64 = 46;

/// Control parts larger than this are skipped rather than collected.
const MAX_COLLECTED: u64 = 64 * 1024;

/// Length of a UMP varint from its first byte.
fn varint_len(b0: u8) -> usize {
    match b0 {
        0x00..=0x7f => 1,
        0x80..=0xbf => 2,
        0xc0..=0xdf => 3,
        0xe0..=0xef => 4,
        _ => 5,
    }
}

/// Decodes a complete UMP varint.
pub fn decode_varint(b: &[u8]) -> Option<u64> {
    let b0 = *b.first()?;
    let n = varint_len(b0);
    if b.len() < n {
        return None;
    }
    let v = match n {
        1 => b0 as u64,
        2 => (b0 & 0x3f) as u64 + 64 * b[1] as u64,
        3 => (b0 & 0x1f) as u64 + 32 * (b[1] as u64 + 256 * b[2] as u64),
        4 => (b0 & 0x0f) as u64 + 16 * (b[1] as u64 + 256 * (b[2] as u64 + 256 * b[3] as u64)),
        _ => u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as u64,
    };
    Some(v)
}

/// Encodes a UMP varint (for tests and fakes).
pub fn encode_varint(v: u64, out: &mut Vec<u8>) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 16_384 {
        out.extend([0x80 | (v & 0x3f) as u8, (v >> 6) as u8]);
    } else if v < 2_097_152 {
        out.extend([0xc0 | (v & 0x1f) as u8, (v >> 5) as u8, (v >> 13) as u8]);
    } else if v < 268_435_456 {
        out.extend([
            0xe0 | (v & 0x0f) as u8,
            (v >> 4) as u8,
            (v >> 12) as u8,
            (v >> 20) as u8,
        ]);
    } else {
        out.push(0xf0);
        out.extend((v as u32).to_le_bytes());
    }
}

/// A control part collected from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub part_type: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
enum State {
    /// Collecting varint bytes: (bytes so far, is it the size varint, part type).
    Header(Vec<u8>, bool, u64),
    /// Payload of `remaining` bytes; `collect` holds it when the part is of interest.
    Payload {
        part_type: u64,
        remaining: u64,
        collect: Option<Vec<u8>>,
    },
}

/// Incremental UMP reader.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    interesting: &'static [u64],
}

impl Scanner {
    /// Collects parts whose type is in `interesting`.
    pub fn new(interesting: &'static [u64]) -> Self {
        Scanner {
            state: State::Header(Vec::new(), false, 0),
            interesting,
        }
    }

    /// Feeds the next chunk; returns the interesting parts completed by it.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<Part> {
        let mut done = Vec::new();
        while !chunk.is_empty() {
            match &mut self.state {
                State::Header(buf, is_size, part_type) => {
                    buf.push(chunk[0]);
                    chunk = &chunk[1..];
                    if buf.len() < varint_len(buf[0]) {
                        continue;
                    }
                    let v = decode_varint(buf).expect("complete varint");
                    if !*is_size {
                        self.state = State::Header(Vec::new(), true, v);
                    } else {
                        let part_type = *part_type;
                        let collect = (self.interesting.contains(&part_type) && v <= MAX_COLLECTED)
                            .then(|| Vec::with_capacity(v as usize));
                        self.state = State::Payload {
                            part_type,
                            remaining: v,
                            collect,
                        };
                        self.finish_if_done(&mut done);
                    }
                }
                State::Payload {
                    remaining, collect, ..
                } => {
                    let n = (*remaining).min(chunk.len() as u64) as usize;
                    if let Some(c) = collect.as_mut() {
                        c.extend_from_slice(&chunk[..n]);
                    }
                    *remaining -= n as u64;
                    chunk = &chunk[n..];
                    self.finish_if_done(&mut done);
                }
            }
        }
        done
    }

    fn finish_if_done(&mut self, done: &mut Vec<Part>) {
        if let State::Payload {
            part_type,
            remaining: 0,
            collect,
        } = &mut self.state
        {
            if let Some(payload) = collect.take() {
                done.push(Part {
                    part_type: *part_type,
                    payload,
                });
            }
            self.state = State::Header(Vec::new(), false, 0);
        }
    }
}

/// What a [`Reader`] found in the bytes fed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete part other than MEDIA (control parts are small; one over the cap is
    /// reported as `Oversized` instead).
    Part(Part),
    /// A control part over the cap, skipped.
    Oversized { part_type: u64 },
    /// A piece of a MEDIA part's data (the part's leading header-id byte taken off), passed on
    /// as it arrives, never collected.
    Media { header_id: u8, data: Bytes },
}

/// MEDIA: its payload is the segment's bytes, streamed by [`Reader`].
const MEDIA: u64 = 21;

#[derive(Debug)]
enum ReadState {
    Header(Vec<u8>, bool, u64),
    /// Inside a part: `header_id` once a MEDIA part's first byte is read.
    Payload {
        part_type: u64,
        remaining: u64,
        collect: Option<Vec<u8>>,
        header_id: Option<u8>,
    },
}

/// Incremental UMP reader for a SABR client: control parts whole, MEDIA data as slices of the
/// chunks fed (no copy), so the memory a stream holds is one chunk plus small control parts.
#[derive(Debug)]
pub struct Reader {
    state: ReadState,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            state: ReadState::Header(Vec::new(), false, 0),
        }
    }
}

impl Reader {
    /// Whether the bytes fed so far end on a part boundary (a response cut elsewhere is
    /// incomplete). Only the tests ask: the gateway goes on from where its segments stopped,
    /// whether a response ended on a boundary or not.
    #[cfg(test)]
    pub fn at_boundary(&self) -> bool {
        matches!(&self.state, ReadState::Header(b, false, _) if b.is_empty())
    }

    /// Feeds the next chunk; returns what it completed or carried, in order.
    pub fn feed(&mut self, chunk: Bytes) -> Vec<Event> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < chunk.len() {
            match &mut self.state {
                ReadState::Header(buf, is_size, part_type) => {
                    buf.push(chunk[at]);
                    at += 1;
                    if buf.len() < varint_len(buf[0]) {
                        continue;
                    }
                    let v = decode_varint(buf).expect("complete varint");
                    if !*is_size {
                        self.state = ReadState::Header(Vec::new(), true, v);
                        continue;
                    }
                    let part_type = *part_type;
                    let collect = (part_type != MEDIA && v <= MAX_COLLECTED)
                        .then(|| Vec::with_capacity(v as usize));
                    self.state = ReadState::Payload {
                        part_type,
                        remaining: v,
                        collect,
                        header_id: None,
                    };
                }
                ReadState::Payload {
                    part_type,
                    remaining,
                    collect,
                    header_id,
                } => {
                    let n = (*remaining).min((chunk.len() - at) as u64) as usize;
                    let mut piece = chunk.slice(at..at + n);
                    at += n;
                    *remaining -= n as u64;
                    if *part_type == MEDIA {
                        if header_id.is_none() && !piece.is_empty() {
                            *header_id = Some(piece[0]);
                            piece = piece.slice(1..);
                        }
                        if let (Some(id), false) = (*header_id, piece.is_empty()) {
                            out.push(Event::Media {
                                header_id: id,
                                data: piece,
                            });
                        }
                    } else if let Some(c) = collect.as_mut() {
                        c.extend_from_slice(&piece);
                    }
                }
            }
            if let ReadState::Payload {
                part_type,
                remaining: 0,
                collect,
                ..
            } = &mut self.state
            {
                match (*part_type, collect.take()) {
                    (MEDIA, _) => {}
                    (part_type, Some(payload)) => {
                        out.push(Event::Part(Part { part_type, payload }))
                    }
                    (part_type, None) => out.push(Event::Oversized { part_type }),
                }
                self.state = ReadState::Header(Vec::new(), false, 0);
            }
        }
        out
    }
}

/// `StreamProtectionStatus.status` (field 1) of a part's payload.
pub fn protection_status(payload: &[u8]) -> Option<u64> {
    crate::wire::first_varint(payload, 1)
}

/// What a [`Watched`] body calls with every STREAM_PROTECTION_STATUS it sees, in order.
pub type OnStatus = Box<dyn FnMut(u64) + Send + Sync>;

/// A response body passed through unchanged while its UMP parts are watched; `on_status` is
/// called with every STREAM_PROTECTION_STATUS seen (a stream may go from 2 to 3).
pub struct Watched<B> {
    inner: B,
    scanner: Scanner,
    on_status: Option<OnStatus>,
}

impl<B> Watched<B> {
    pub fn new(inner: B, on_status: OnStatus) -> Self {
        Watched {
            inner,
            scanner: Scanner::new(&[STREAM_PROTECTION_STATUS]),
            on_status: Some(on_status),
        }
    }
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if self.on_status.is_some() {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    for part in self.scanner.feed(&data) {
                        if let Some(status) = protection_status(&part.payload) {
                            if let Some(f) = self.on_status.as_mut() {
                                f(status);
                            }
                        }
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(t: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_varint(t, &mut v);
        encode_varint(payload.len() as u64, &mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn varints_round_trip_at_every_length() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
            268_435_456,
            u32::MAX as u64,
        ] {
            let mut b = Vec::new();
            encode_varint(v, &mut b);
            assert_eq!(decode_varint(&b), Some(v), "{v}");
        }
        // The reference's 5-byte form ignores the first byte's low bits.
        assert_eq!(decode_varint(&[0xf7, 1, 0, 0, 0]), Some(1));
    }

    #[test]
    fn parts_straddling_chunks_are_found_and_media_is_skipped() {
        let mut stream = Vec::new();
        stream.extend(part(20, b"header"));
        stream.extend(part(21, &vec![0xab; 100_000]));
        stream.extend(part(STREAM_PROTECTION_STATUS, &[0x08, 0x03, 0x10, 0x02]));
        stream.extend(part(22, b"\x01"));
        for chunk_size in [1, 3, 7, 1000, 65_536, stream.len()] {
            let mut s = Scanner::new(&[STREAM_PROTECTION_STATUS]);
            let mut found = Vec::new();
            for c in stream.chunks(chunk_size) {
                found.extend(s.feed(c));
            }
            assert_eq!(found.len(), 1, "chunk {chunk_size}");
            assert_eq!(protection_status(&found[0].payload), Some(3));
        }
    }

    #[test]
    fn the_reader_passes_media_data_through_whole_at_any_chunking() {
        let media: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut body = vec![7u8];
        body.extend(&media);
        let mut stream = Vec::new();
        stream.extend(part(20, b"hdr"));
        stream.extend(part(21, &body));
        stream.extend(part(22, &[7]));
        stream.extend(part(35, &vec![1; 70_000]));
        for chunk_size in [1, 2, 5, 4096, stream.len()] {
            let mut r = Reader::default();
            let (mut got, mut parts) = (Vec::new(), Vec::new());
            for c in stream.chunks(chunk_size) {
                for e in r.feed(Bytes::copy_from_slice(c)) {
                    match e {
                        Event::Media { header_id, data } => {
                            assert_eq!(header_id, 7);
                            got.extend_from_slice(&data);
                        }
                        Event::Part(p) => parts.push((p.part_type, p.payload)),
                        Event::Oversized { part_type } => parts.push((part_type, vec![])),
                    }
                }
            }
            assert!(r.at_boundary());
            assert_eq!(got, media, "chunk {chunk_size}");
            assert_eq!(
                parts,
                vec![(20, b"hdr".to_vec()), (22, vec![7]), (35, vec![])],
                "chunk {chunk_size}"
            );
        }
    }

    #[test]
    fn protection_status_reads_field_one_after_others() {
        assert_eq!(protection_status(&[0x10, 0x05, 0x08, 0x02]), Some(2));
        assert_eq!(protection_status(&[0x10, 0x05]), None);
        assert_eq!(protection_status(&[0xff]), None);
    }
}
