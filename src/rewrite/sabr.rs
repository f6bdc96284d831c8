//! SABR request bodies: `VideoPlaybackAbrRequest.streamer_context (19).po_token (2)` set with a
//! wire-level edit ([`crate::wire`]). The body is never decoded into a message type (unknown
//! fields would be lost and field order could change). The token goes into the client's own
//! streamer_context: replacing its `po_token`, or inserted after its `client_info`, with the
//! context's length prefix recomputed. It must not be a second field-19 occurrence: protobuf
//! would merge the two, but decoders generated like googlevideo's own keep only the last
//! occurrence, and a SABR library reading our body would lose the client info. Only a body
//! without a streamer_context gets one appended. Every other byte is kept; anything that does
//! not parse as protobuf is left alone.

use crate::wire::{self, Field};

const STREAMER_CONTEXT: u32 = 19;
const PO_TOKEN: u32 = 2;

/// A streamer_context occurrence: field 19, length-delimited.
fn is_context(f: &Field<'_>) -> bool {
    f.number == STREAMER_CONTEXT && f.bytes().is_some()
}

/// The `po_token` the body carries (the last one, as a decoder would read it).
pub fn po_token(body: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for f in wire::fields(body)?.iter().filter(|f| is_context(f)) {
        for sub in f.message()? {
            if let (PO_TOKEN, Some(t)) = (sub.number, sub.bytes()) {
                found = Some(t.to_vec());
            }
        }
    }
    found
}

/// A streamer_context payload with every `po_token` removed and, when `token` is given, one
/// `po_token` in the place of the first old one, else after the fields numbered below it
/// (`client_info`), keeping the schema's field order.
fn context_with(subs: &[Field<'_>], token: Option<&[u8]>) -> Vec<u8> {
    let extra = token.map_or(0, |t| wire::bytes_field_len(PO_TOKEN, t.len()));
    let mut out = Vec::with_capacity(subs.iter().map(|s| s.raw.len()).sum::<usize>() + extra);
    let mut pending = token;
    for s in subs {
        if s.number >= PO_TOKEN {
            if let Some(t) = pending.take() {
                wire::put_bytes(&mut out, PO_TOKEN, t);
            }
        }
        if s.number != PO_TOKEN {
            out.extend_from_slice(s.raw);
        }
    }
    if let Some(t) = pending {
        wire::put_bytes(&mut out, PO_TOKEN, t);
    }
    out
}

/// Returns the body with `streamer_context.po_token` set to `token`, or `None` when the body is
/// not protobuf (the caller then forwards it unchanged). With several streamer_context
/// occurrences, the last one (the one every decoder reads) gets the token and the others lose
/// theirs.
pub fn set_po_token(body: &[u8], token: &[u8]) -> Option<Vec<u8>> {
    let top = wire::fields(body)?;
    let last = top.iter().rposition(is_context);
    let mut out = Vec::with_capacity(body.len() + max_growth(token.len()));
    for (i, f) in top.iter().enumerate() {
        if !is_context(f) {
            out.extend_from_slice(f.raw);
            continue;
        }
        let subs = f.message()?;
        let ours = Some(i) == last;
        if !ours && !subs.iter().any(|s| s.number == PO_TOKEN) {
            out.extend_from_slice(f.raw);
            continue;
        }
        let context = context_with(&subs, ours.then_some(token));
        wire::put_bytes(&mut out, STREAMER_CONTEXT, &context);
    }
    if last.is_none() {
        let mut context = Vec::with_capacity(wire::bytes_field_len(PO_TOKEN, token.len()));
        wire::put_bytes(&mut context, PO_TOKEN, token);
        wire::put_bytes(&mut out, STREAMER_CONTEXT, &context);
    }
    Some(out)
}

/// Bytes a body grows by at most when a token is set (for size checks): a whole appended
/// streamer_context, which is more than a token inserted into an existing one (its length
/// prefix grows by fewer bytes than a new tag and prefix take).
pub fn max_growth(token_len: usize) -> usize {
    wire::bytes_field_len(STREAMER_CONTEXT, wire::bytes_field_len(PO_TOKEN, token_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    use prost::encoding::encode_varint;

    fn varint(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_varint(n, &mut v);
        v
    }

    fn ld(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        wire::put_bytes(&mut v, number, payload);
        v
    }

    /// The numbers of the top-level fields, in order.
    fn numbers(body: &[u8]) -> Vec<u32> {
        wire::fields(body)
            .unwrap()
            .iter()
            .map(|f| f.number)
            .collect()
    }

    /// A realistic request: client_abr_state, a format id, player time, the ustreamer config
    /// (bytes), an unknown field, and streamer_context with client info.
    fn body(streamer_context: Option<Vec<u8>>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(ld(1, &[0x08, 0x90, 0x4e, 0x28, 0x01]));
        b.extend(ld(2, &[0x08, 0x8c, 0x01, 0x10, 0x02]));
        b.extend([0x20]);
        b.extend(varint(12_345));
        b.extend(ld(5, b"\x0a\x10ustreamer-config-bytes\xff\x00"));
        b.extend([0xf8, 0x3e, 0x07]); // field 1000, varint 7: not in any schema
        if let Some(sc) = streamer_context {
            b.extend(ld(19, &sc));
        }
        b.extend(ld(22, b"trailing-unknown"));
        b
    }

    fn client_info() -> Vec<u8> {
        // ClientInfo {16: client_name = 1 (WEB), 17: "2.2026"}
        let mut ci = vec![0x80, 0x01, 0x01];
        ci.extend([0x8a, 0x01, 0x06]);
        ci.extend(b"2.2026");
        ld(1, &ci)
    }

    #[test]
    fn absent_streamer_context_is_appended_and_nothing_else_changes() {
        let original = body(None);
        let out = set_po_token(&original, b"\x32\x05TOKEN").unwrap();
        assert!(out.starts_with(&original));
        assert_eq!(po_token(&out).unwrap(), b"\x32\x05TOKEN");
    }

    #[test]
    fn an_existing_context_keeps_its_other_fields_and_gets_the_token_in_place_of_the_old() {
        let mut sc = client_info();
        sc.extend(ld(2, b"OLDTOKEN"));
        sc.extend(ld(3, b"playback-cookie"));
        let original = body(Some(sc));
        let out = set_po_token(&original, b"NEWTOKEN").unwrap();
        assert_eq!(po_token(&out).unwrap(), b"NEWTOKEN");
        let mut expected_sc = client_info();
        expected_sc.extend(ld(2, b"NEWTOKEN"));
        expected_sc.extend(ld(3, b"playback-cookie"));
        assert_eq!(out, body(Some(expected_sc)));
    }

    #[test]
    fn a_context_without_token_gets_it_after_the_client_info_and_stays_the_only_one() {
        let mut sc = client_info();
        sc.extend(ld(3, b"playback-cookie"));
        let original = body(Some(sc));
        let out = set_po_token(&original, b"T").unwrap();
        // Exactly one streamer_context, so decoders that keep only the last occurrence (like
        // googlevideo's generated ones) still see the client info.
        assert_eq!(numbers(&out), numbers(&original));
        let top = wire::fields(&out).unwrap();
        let contexts: Vec<_> = top.iter().filter(|f| f.number == 19).collect();
        assert_eq!(contexts.len(), 1);
        let subs = contexts[0].message().unwrap();
        assert_eq!(
            subs.iter().map(|s| s.raw.to_vec()).collect::<Vec<_>>(),
            [client_info(), ld(2, b"T"), ld(3, b"playback-cookie")]
        );
        // Every field outside the context is the client's, byte for byte, in order.
        let others = |b: &[u8]| -> Vec<Vec<u8>> {
            wire::fields(b)
                .unwrap()
                .iter()
                .filter(|f| f.number != 19)
                .map(|f| f.raw.to_vec())
                .collect()
        };
        assert_eq!(others(&out), others(&original));
    }

    #[test]
    fn repeated_contexts_all_lose_their_tokens() {
        let mut b = body(Some([client_info(), ld(2, b"A")].concat()));
        b.extend(ld(19, &ld(2, b"B")));
        let out = set_po_token(&b, b"C").unwrap();
        assert_eq!(po_token(&out).unwrap(), b"C");
        assert!(!out.windows(3).any(|w| w == [0x12, 0x01, b'A']));
        assert!(!out.windows(3).any(|w| w == [0x12, 0x01, b'B']));
        assert_eq!(numbers(&out), numbers(&b), "no occurrence added");
        let last = wire::fields(&out)
            .unwrap()
            .into_iter()
            .rfind(|f| f.number == 19)
            .unwrap();
        assert_eq!(last.bytes().unwrap(), ld(2, b"C"));
    }

    #[test]
    fn long_tokens_get_multi_byte_lengths() {
        let token = vec![0x32; 300];
        let out = set_po_token(&body(None), &token).unwrap();
        assert_eq!(po_token(&out).unwrap(), token);
        assert!(out.len() - body(None).len() <= max_growth(300));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"\x0a\x05abc"[..],                             // overrun
            b"\x0b\x00",                                     // group
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", // varint too long
            b"\x00\x01",                                     // field 0
            b"\x9a\x01\x03\xff\xff\xff",                     // field 19 payload not protobuf
        ] {
            assert!(set_po_token(bad, b"T").is_none(), "{bad:02x?}");
        }
        assert_eq!(set_po_token(b"", b"T").unwrap(), ld(19, &ld(2, b"T")));
    }

    /// Deterministic pseudo-random generator (xorshift) for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Protobuf-shaped bytes: mostly valid fields, sometimes truncated or corrupted.
    fn random_body(r: &mut Rng) -> Vec<u8> {
        let mut b = Vec::new();
        for _ in 0..r.below(8) {
            let number: u32 = [1, 2, 3, 5, 19, 19, 22, 1000][r.below(8) as usize];
            match r.below(4) {
                0 => {
                    encode_varint(u64::from(number) << 3, &mut b);
                    encode_varint(r.next() >> r.below(64), &mut b);
                }
                1 => {
                    encode_varint((u64::from(number) << 3) | 1, &mut b);
                    b.extend(r.next().to_le_bytes());
                }
                2 => {
                    let inner = if number == 19 && r.below(2) == 0 {
                        random_body(r)
                    } else {
                        (0..r.below(40)).map(|_| r.next() as u8).collect()
                    };
                    wire::put_bytes(&mut b, number, &inner);
                }
                _ => {
                    encode_varint((u64::from(number) << 3) | 5, &mut b);
                    b.extend((r.next() as u32).to_le_bytes());
                }
            }
        }
        match r.below(6) {
            0 if !b.is_empty() => {
                let cut = r.below(b.len() as u64) as usize;
                b.truncate(cut);
            }
            1 if !b.is_empty() => {
                let i = r.below(b.len() as u64) as usize;
                b[i] = r.next() as u8;
            }
            _ => {}
        }
        b
    }

    #[test]
    fn property_random_bodies_get_the_token_or_stay_untouched() {
        let mut r = Rng(0x5eed_1234_abcd_9876);
        let mut edited = 0;
        for _ in 0..20_000 {
            let b = random_body(&mut r);
            let token: Vec<u8> = (0..1 + r.below(130)).map(|_| r.next() as u8).collect();
            match set_po_token(&b, &token) {
                Some(out) => {
                    edited += 1;
                    assert_eq!(po_token(&out).as_deref(), Some(&token[..]), "{b:02x?}");
                    // The same fields in the same order, one context added only when there
                    // was none.
                    let (before, after) = (numbers(&b), numbers(&out));
                    let had_context = wire::fields(&b)
                        .unwrap()
                        .iter()
                        .any(|f| f.number == 19 && f.bytes().is_some());
                    if had_context {
                        assert_eq!(after, before, "{b:02x?}");
                    } else {
                        assert_eq!(after[..before.len()], before[..], "{b:02x?}");
                        assert_eq!(after.len(), before.len() + 1, "{b:02x?}");
                    }
                }
                // Refused only when the body (or a streamer_context in it) is not protobuf.
                None => assert!(
                    wire::fields(&b).is_none_or(|top| top
                        .iter()
                        .any(|f| f.number == 19 && f.bytes().is_some() && f.message().is_none())),
                    "refused a well-formed body: {b:02x?}"
                ),
            }
        }
        assert!(edited > 5_000, "generator too hostile: {edited}");
    }
}
