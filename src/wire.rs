//! The protobuf wire format, read and written without a schema: fields as they sit in a buffer
//! (tag, wire type, exact bytes), and the few encoders edits need. SABR request bodies
//! ([`crate::rewrite::sabr`]) and UMP control parts ([`crate::ump`]) are both read through it.
//! Varints, keys and lengths are prost's own encoding primitives; only the walk over fields is
//! ours, because prost has no way to keep a message's unknown fields and exact bytes.

use prost::encoding::{
    WireType, decode_key, decode_varint, encode_key, encode_varint, encoded_len_varint,
};

/// One field as it sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Tag, length prefix and value: the field's exact bytes.
    pub raw: &'a [u8],
}

/// A field's value, by wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// The payload of a length-delimited field (bytes, string or embedded message).
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Field<'a> {
    /// The payload when the field is length-delimited.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The embedded message's fields, when the field is length-delimited and its payload is
    /// well-formed protobuf.
    pub fn message(&self) -> Option<Vec<Field<'a>>> {
        fields(self.bytes()?)
    }
}

/// Not well-formed protobuf: groups (deprecated, never in the messages we edit), overruns,
/// bad varints, field number 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not well-formed protobuf at byte {offset}")]
pub struct Malformed {
    pub offset: usize,
}

/// The top-level fields of `buf`, one at a time; stops after the first malformed one.
pub struct Fields<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

/// Walks `buf`'s top-level fields.
pub fn walk(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        offset: 0,
        failed: false,
    }
}

/// All top-level fields of `buf`; `None` when it is not well-formed protobuf.
pub fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    walk(buf).collect::<Result<_, _>>().ok()
}

impl<'a> Fields<'a> {
    fn next_field(&mut self) -> Option<Field<'a>> {
        let start = self.buf;
        let mut cur = start;
        let (number, wire_type) = decode_key(&mut cur).ok()?;
        let value = match wire_type {
            WireType::Varint => Value::Varint(decode_varint(&mut cur).ok()?),
            WireType::SixtyFourBit => {
                let (v, rest) = cur.split_first_chunk::<8>()?;
                cur = rest;
                Value::Fixed64(u64::from_le_bytes(*v))
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut cur).ok()?).ok()?;
                let payload = cur.get(..len)?;
                cur = &cur[len..];
                Value::Bytes(payload)
            }
            WireType::ThirtyTwoBit => {
                let (v, rest) = cur.split_first_chunk::<4>()?;
                cur = rest;
                Value::Fixed32(u32::from_le_bytes(*v))
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        let used = start.len() - cur.len();
        self.buf = cur;
        self.offset += used;
        Some(Field {
            number,
            value,
            raw: &start[..used],
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        match self.next_field() {
            Some(f) => Some(Ok(f)),
            None => {
                self.failed = true;
                Some(Err(Malformed {
                    offset: self.offset,
                }))
            }
        }
    }
}

/// Appends a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends a varint field.
pub fn put_varint(out: &mut Vec<u8>, number: u32, value: u64) {
    encode_key(number, WireType::Varint, out);
    encode_varint(value, out);
}

/// Bytes a length-delimited field with a `len`-byte payload takes, tag and prefix included.
pub fn bytes_field_len(number: u32, len: usize) -> usize {
    prost::encoding::key_len(number) + encoded_len_varint(len as u64) + len
}

/// The first varint field `number` of a message (a field missing or the message malformed
/// before it: `None`).
pub fn first_varint(buf: &[u8], number: u32) -> Option<u64> {
    walk(buf).find_map(|f| match f {
        Ok(Field {
            number: n,
            value: Value::Varint(v),
            ..
        }) if n == number => Some(Some(v)),
        Ok(_) => None,
        Err(_) => Some(None),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_type_is_read_with_its_exact_bytes() {
        let mut b = Vec::new();
        put_varint(&mut b, 1, 300);
        b.extend([0x11, 1, 0, 0, 0, 0, 0, 0, 0]); // 2: fixed64 1
        put_bytes(&mut b, 19, b"ctx");
        b.extend([0x25, 7, 0, 0, 0]); // 4: fixed32 7
        let f = fields(&b).unwrap();
        assert_eq!(
            f.iter().map(|f| (f.number, f.value)).collect::<Vec<_>>(),
            [
                (1, Value::Varint(300)),
                (2, Value::Fixed64(1)),
                (19, Value::Bytes(b"ctx")),
                (4, Value::Fixed32(7)),
            ]
        );
        assert_eq!(f.iter().flat_map(|f| f.raw).copied().collect::<Vec<_>>(), b);
        assert_eq!(f[2].raw, [0x9a, 0x01, 3, b'c', b't', b'x']);
        assert_eq!(bytes_field_len(19, 3), f[2].raw.len());
    }

    #[test]
    fn malformed_input_is_reported_where_it_starts() {
        let mut b = Vec::new();
        put_varint(&mut b, 1, 5);
        b.extend(b"\x0a\x05abc"); // overrun
        let all: Vec<_> = walk(&b).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], Err(Malformed { offset: 2 }));
        for bad in [
            &b"\x0b\x00"[..],                                // group
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", // varint too long
            b"\x00\x01",                                     // field 0
            b"\x09\x01\x02",                                 // short fixed64
        ] {
            assert!(fields(bad).is_none(), "{bad:02x?}");
        }
        assert_eq!(fields(b"").unwrap(), []);
    }

    #[test]
    fn first_varint_skips_other_fields_and_stops_at_garbage() {
        assert_eq!(first_varint(&[0x10, 0x05, 0x08, 0x02], 1), Some(2));
        assert_eq!(first_varint(&[0x10, 0x05], 1), None);
        assert_eq!(first_varint(&[0xff], 1), None);
        assert_eq!(first_varint(&[0x12, 0x01, 0x08, 0x08, 0x04], 1), Some(4));
    }
}
