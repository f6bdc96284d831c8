//! SABR request bodies: `VideoPlaybackAbrRequest.streamer_context (19).po_token (2)` set with a
//! wire-level edit. The body is never decoded into a message type (unknown fields would be
//! lost and field order could change): every byte outside field 19's `po_token` is copied as
//! is, and one new field-19 occurrence carrying the token is appended. Protobuf merges repeated
//! occurrences of an embedded message and the last scalar wins, so the appended token is the
//! one the server reads. Anything that does not parse as protobuf is left alone.

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

const STREAMER_CONTEXT: u64 = 19;
const PO_TOKEN: u64 = 2;

/// One field as it sits in the buffer.
struct Field<'a> {
    number: u64,
    wire_type: u8,
    /// Tag, length prefix and value: the field's exact bytes.
    raw: &'a [u8],
    /// The value of a length-delimited field.
    payload: Option<&'a [u8]>,
}

/// Splits `buf` into top-level fields; `None` when it is not well-formed protobuf (groups,
/// overruns, bad varints, field number 0).
fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let start = buf;
        let mut cur = buf;
        let tag = decode_varint(&mut cur).ok()?;
        let number = tag >> 3;
        let wire_type = (tag & 7) as u8;
        if number == 0 || number > 536_870_911 {
            return None;
        }
        let mut payload = None;
        match wire_type {
            0 => {
                decode_varint(&mut cur).ok()?;
            }
            1 => cur = cur.get(8..)?,
            2 => {
                let len = usize::try_from(decode_varint(&mut cur).ok()?).ok()?;
                payload = Some(cur.get(..len)?);
                cur = &cur[len..];
            }
            5 => cur = cur.get(4..)?,
            _ => return None,
        }
        let used = start.len() - cur.len();
        out.push(Field {
            number,
            wire_type,
            raw: &start[..used],
            payload,
        });
        buf = cur;
    }
    Some(out)
}

fn push_len_delimited(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    encode_varint((number << 3) | 2, out);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// The `po_token` the body carries (the last one, as a decoder would read it).
pub fn po_token(body: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for f in fields(body)? {
        if f.number == STREAMER_CONTEXT && f.wire_type == 2 {
            for sub in fields(f.payload?)? {
                if sub.number == PO_TOKEN && sub.wire_type == 2 {
                    found = sub.payload.map(<[u8]>::to_vec);
                }
            }
        }
    }
    found
}

/// Returns the body with `streamer_context.po_token` set to `token`, or `None` when the body is
/// not protobuf (the caller then forwards it unchanged).
pub fn set_po_token(body: &[u8], token: &[u8]) -> Option<Vec<u8>> {
    let top = fields(body)?;
    let mut out = Vec::with_capacity(body.len() + token.len() + 8);
    for f in &top {
        if f.number == STREAMER_CONTEXT && f.wire_type == 2 {
            let subs = fields(f.payload?)?;
            if !subs.iter().any(|s| s.number == PO_TOKEN) {
                out.extend_from_slice(f.raw);
                continue;
            }
            let kept: Vec<u8> = subs
                .iter()
                .filter(|s| s.number != PO_TOKEN)
                .flat_map(|s| s.raw.iter().copied())
                .collect();
            push_len_delimited(&mut out, STREAMER_CONTEXT, &kept);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    let mut ctx = Vec::with_capacity(token.len() + 4);
    push_len_delimited(&mut ctx, PO_TOKEN, token);
    push_len_delimited(&mut out, STREAMER_CONTEXT, &ctx);
    Some(out)
}

/// Bytes a body grows by at most when a token is set (for size checks).
pub fn max_growth(token_len: usize) -> usize {
    let ctx = 1 + encoded_len_varint(token_len as u64) + token_len;
    2 + encoded_len_varint(ctx as u64) + ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode_varint(n, &mut v);
        v
    }

    fn ld(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        push_len_delimited(&mut v, number, payload);
        v
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
    fn an_existing_context_keeps_its_other_fields_and_loses_only_the_old_token() {
        let mut sc = client_info();
        sc.extend(ld(2, b"OLDTOKEN"));
        sc.extend(ld(3, b"playback-cookie"));
        let original = body(Some(sc));
        let out = set_po_token(&original, b"NEWTOKEN").unwrap();
        assert_eq!(po_token(&out).unwrap(), b"NEWTOKEN");
        let mut expected_sc = client_info();
        expected_sc.extend(ld(3, b"playback-cookie"));
        assert_eq!(out, {
            let mut e = body(Some(expected_sc));
            e.extend(ld(19, &ld(2, b"NEWTOKEN")));
            e
        });
    }

    #[test]
    fn a_context_without_token_is_copied_byte_for_byte() {
        let original = body(Some(client_info()));
        let out = set_po_token(&original, b"T").unwrap();
        assert_eq!(&out[..original.len()], &original[..]);
    }

    #[test]
    fn repeated_contexts_all_lose_their_tokens() {
        let mut b = body(Some([client_info(), ld(2, b"A")].concat()));
        b.extend(ld(19, &ld(2, b"B")));
        let out = set_po_token(&b, b"C").unwrap();
        assert_eq!(po_token(&out).unwrap(), b"C");
        assert!(!out.windows(3).any(|w| w == [0x12, 0x01, b'A']));
        assert!(!out.windows(3).any(|w| w == [0x12, 0x01, b'B']));
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
            let number = [1, 2, 3, 5, 19, 19, 22, 1000][r.below(8) as usize];
            match r.below(4) {
                0 => {
                    encode_varint(number << 3, &mut b);
                    encode_varint(r.next() >> r.below(64), &mut b);
                }
                1 => {
                    encode_varint((number << 3) | 1, &mut b);
                    b.extend(r.next().to_le_bytes());
                }
                2 => {
                    let inner = if number == 19 && r.below(2) == 0 {
                        random_body(r)
                    } else {
                        (0..r.below(40)).map(|_| r.next() as u8).collect()
                    };
                    push_len_delimited(&mut b, number, &inner);
                }
                _ => {
                    encode_varint((number << 3) | 5, &mut b);
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
                }
                // Refused only when the body (or a streamer_context in it) is not protobuf.
                None => assert!(
                    fields(&b).is_none_or(|top| top.iter().any(|f| f.number == 19
                        && f.wire_type == 2
                        && fields(f.payload.unwrap()).is_none())),
                    "refused a well-formed body: {b:02x?}"
                ),
            }
        }
        assert!(edited > 5_000, "generator too hostile: {edited}");
    }
}
