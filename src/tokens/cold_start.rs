//! Cold-start tokens: the placeholder the web player sends until BotGuard is ready. A protobuf
//! `{4: bytes}` (real tokens are `{6: bytes}`) carrying two random key bytes, a zero byte, the
//! client state, a big-endian unix timestamp and the binding, XORed with the keys. googlevideo
//! accepts one while StreamProtectionStatus is 2 (about 1-2 MB of media), so it bridges the
//! few hundred milliseconds the minter needs to warm up, and is never cached.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource};
use crate::token::Token;

/// Longest binding whose length still fits the one-byte length field.
pub const MAX_BINDING_BYTES: usize = 118;
const CLIENT_STATE: u8 = 1;

/// Builds a cold-start token for `binding` with the given key bytes and time.
pub fn cold_start_token(binding: &str, keys: [u8; 2], unix_secs: u32) -> Option<Token> {
    let b = binding.as_bytes();
    if b.is_empty() || b.len() > MAX_BINDING_BYTES {
        return None;
    }
    let mut payload = vec![keys[0], keys[1], 0, CLIENT_STATE];
    payload.extend_from_slice(&unix_secs.to_be_bytes());
    payload.extend_from_slice(b);
    for i in 2..payload.len() {
        payload[i] ^= payload[i % 2];
    }
    let mut packet = vec![0x22, payload.len() as u8];
    packet.extend_from_slice(&payload);
    Some(Token::from_bytes(&packet))
}

/// A decoded cold-start token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStart {
    pub client_state: u8,
    pub unix_secs: u32,
    pub binding: String,
}

/// Recognises and decodes a cold-start token (as clients may send one).
pub fn decode_cold_start(token: &str) -> Option<ColdStart> {
    let packet = URL_SAFE
        .decode(token.trim().replace('+', "-").replace('/', "_"))
        .ok()?;
    if packet.len() < 10 || packet[0] != 0x22 || packet.len() != 2 + packet[1] as usize {
        return None;
    }
    let mut payload = packet[2..].to_vec();
    for i in 2..payload.len() {
        payload[i] ^= payload[i % 2];
    }
    if payload[2] != 0 {
        return None;
    }
    Some(ColdStart {
        client_state: payload[3],
        unix_secs: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
        binding: String::from_utf8(payload[8..].to_vec()).ok()?,
    })
}

/// Answers every bound request instantly with a cold-start token.
pub struct ColdStartSource;

/// How long a cold-start token is offered (it is never cached anyway).
const COLD_START_LIFETIME: Duration = Duration::from_secs(300);

impl TokenSource for ColdStartSource {
    fn name(&self) -> &'static str {
        "cold_start"
    }

    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
        let answer = req.binding.key().and_then(|binding| {
            let mut keys = [0u8; 2];
            getrandom::fill(&mut keys).ok()?;
            let now = SystemTime::now();
            let secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as u32;
            let token = cold_start_token(binding, keys, secs)?;
            Some(Minted {
                token,
                expires_at: Some(now + COLD_START_LIFETIME),
                cacheable: false,
                minter: None,
            })
        });
        Box::pin(async move { Ok(answer) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_binding_time_and_state() {
        let t = cold_start_token("dQw4w9WgXcQ", [0x5a, 0xc3], 1_769_565_104).unwrap();
        let bytes = t.bytes();
        assert_eq!(bytes[0], 0x22, "protobuf field 4, length-delimited");
        assert_eq!(bytes[1] as usize, bytes.len() - 2);
        assert_eq!(&bytes[2..4], &[0x5a, 0xc3], "keys in clear");
        let d = decode_cold_start(t.as_str()).unwrap();
        assert_eq!(d.binding, "dQw4w9WgXcQ");
        assert_eq!(d.unix_secs, 1_769_565_104);
        assert_eq!(d.client_state, 1);
        // The binding does not appear in clear.
        assert!(!bytes.windows(11).any(|w| w == b"dQw4w9WgXcQ"));
    }

    #[test]
    fn xor_follows_the_even_odd_key_rule() {
        let t = cold_start_token("ab", [0x0f, 0xf0], 0).unwrap();
        let b = t.bytes();
        // payload: k0 k1 0^k0 1^k1 ts^.. 'a'^k0 'b'^k1
        assert_eq!(b[4], 0x0f);
        assert_eq!(b[5], 1 ^ 0xf0);
        assert_eq!(b[10], b'a' ^ 0x0f);
        assert_eq!(b[11], b'b' ^ 0xf0);
    }

    #[test]
    fn overlong_or_empty_bindings_are_refused() {
        assert!(cold_start_token(&"x".repeat(119), [1, 2], 0).is_none());
        assert!(cold_start_token("", [1, 2], 0).is_none());
        assert!(cold_start_token(&"x".repeat(118), [1, 2], 0).is_some());
    }

    #[test]
    fn real_tokens_are_not_mistaken_for_cold_start() {
        let real = "MlMQUj3TTz08aRBuqkQKUJI8sgaSz5WHWnAeQjJN7Jv-qhe-jZfl7VTihUv-RpMuTIpSK6hNhYf05Lt9IVFY-Gd4O1PI0miFlyOlU0zhdIr9Ac5aew==";
        assert!(decode_cold_start(real).is_none());
        assert!(decode_cold_start("garbage!").is_none());
    }
}
