//! A YouTube HTML page (home, watch, embed, channel) read once, for everyone who learns from
//! it: the merged `ytcfg.set({...})` objects, the inline BotGuard challenge (`ytAtN`, older
//! `ytAtR`), `ytInitialPlayerResponse`, and the session facts ytcfg states (visitor data,
//! DataSync ID, signed in, the experiment flag that picks the token regime). The challenge is a
//! separately fallible part: a malformed one never keeps the rest of the page from being
//! learned. The challenge stays raw JSON here: what a challenge means is the minter's
//! vocabulary (`botguard::challenge`, which reads it from [`InlineChallenge`] and reports its
//! errors), so learning does not depend on minting.

use serde_json::{Map, Value};

use crate::bindings::{Identity, Regime, regime_from_flags};

/// Why a page's inline challenge cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PageChallengeError {
    /// No ytcfg at all: not a YouTube page.
    #[error("no `ytcfg.set({{...}})` in the page")]
    NoYtcfg,
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("challenge lacks `{0}`")]
    Missing(&'static str),
}

fn malformed(what: &'static str, reason: impl ToString) -> PageChallengeError {
    PageChallengeError::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// The inline challenge, as the page states it, and the token that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineChallenge {
    /// The embedded `/att/get` answer, unread: `bgChallenge` or `botguardData`, and the
    /// `challenge` text whose `c`/`t` say how long it lives (`ytAtR` states only the
    /// `bgChallenge`, kept here under that key).
    pub response: Value,
    /// `ytAtN`'s `T`: the eacrToken for `/att/get`.
    pub eacr_token: Option<String>,
}

/// What a page holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Every `ytcfg.set({...})` merged, in page order (empty when the page has none).
    pub ytcfg: Map<String, Value>,
    /// The inline challenge: `None` when the page has none, an error when it is malformed.
    pub challenge: Option<Result<InlineChallenge, PageChallengeError>>,
}

/// What a page's ytcfg says about the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageFacts {
    pub identity: Identity,
    pub regime: Option<Regime>,
    pub client: Option<String>,
}

impl Page {
    /// Reads a page; never fails, whatever part is missing or malformed.
    pub fn parse(html: &str) -> Page {
        let challenge = parse_yt_atn(html).or_else(|| parse_yt_atr(html));
        Page {
            ytcfg: ytcfg(html),
            challenge,
        }
    }

    pub fn ytcfg_str(&self, key: &str) -> Option<&str> {
        self.ytcfg.get(key).and_then(Value::as_str)
    }

    pub fn visitor_data(&self) -> Option<&str> {
        visitor_data(&self.ytcfg)
    }

    /// The eacrToken that came with a well-formed inline challenge.
    pub fn eacr_token(&self) -> Option<&str> {
        self.challenge
            .as_ref()?
            .as_ref()
            .ok()?
            .eacr_token
            .as_deref()
    }

    pub fn facts(&self) -> PageFacts {
        page_facts(&self.ytcfg)
    }

    /// The inline challenge as minting needs it: an error when the page has no ytcfg (not a
    /// YouTube page) or its challenge is malformed.
    pub fn inline_challenge(&self) -> Result<Option<&InlineChallenge>, PageChallengeError> {
        if self.ytcfg.is_empty() {
            return Err(PageChallengeError::NoYtcfg);
        }
        self.challenge
            .as_ref()
            .map(|r| r.as_ref())
            .transpose()
            .map_err(Clone::clone)
    }
}

/// The visitor data ytcfg names: `VISITOR_DATA`, else the InnerTube context's.
pub fn visitor_data(ytcfg: &Map<String, Value>) -> Option<&str> {
    ytcfg
        .get("VISITOR_DATA")
        .and_then(Value::as_str)
        .or_else(|| {
            ytcfg
                .get("INNERTUBE_CONTEXT")?
                .get("client")?
                .get("visitorData")?
                .as_str()
        })
}

/// Reads the session facts out of a page's ytcfg.
pub fn page_facts(ytcfg: &Map<String, Value>) -> PageFacts {
    let s = |k: &str| ytcfg.get(k).and_then(Value::as_str).map(str::to_string);
    let logged_in = ytcfg
        .get("LOGGED_IN")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let regime = ytcfg
        .get("WEB_PLAYER_CONTEXT_CONFIGS")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|c| c.get("serializedExperimentFlags").and_then(Value::as_str))
        .find_map(regime_from_flags);
    PageFacts {
        identity: Identity {
            visitor_data: visitor_data(ytcfg).map(str::to_string),
            datasync_id: s("DATASYNC_ID"),
            logged_in,
        },
        regime,
        client: ytcfg
            .get("INNERTUBE_CONTEXT")
            .and_then(|c| c.get("client"))
            .and_then(|c| c.get("clientName"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// A watch page's `ytInitialPlayerResponse`.
pub fn initial_player_response(html: &str) -> Option<Value> {
    extract_object_after(html, "ytInitialPlayerResponse")
}

/// Every `ytcfg.set({...})` object merged. Linear in the page: the scan resumes after each
/// object it read, and an object left open at the end of the page ends it (any later marker
/// lies inside text already scanned).
fn ytcfg(html: &str) -> Map<String, Value> {
    const MARKER: &str = "ytcfg.set(";
    let mut ytcfg = Map::new();
    let mut rest = html;
    while let Some(i) = find(rest, MARKER) {
        let after = &rest[i + MARKER.len()..];
        let object = after.trim_start();
        if !object.starts_with('{') {
            rest = after;
            continue;
        }
        let Some(end) = balanced_object_end(object) else {
            break;
        };
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&object[..end]) {
            ytcfg.extend(m);
        }
        rest = &object[end..];
    }
    ytcfg
}

/// `window.ytAtN({'R': '<js string>', 'T': '<js string>'})`.
fn parse_yt_atn(html: &str) -> Option<Result<InlineChallenge, PageChallengeError>> {
    let i = find(html, "ytAtN({")?;
    let obj = &html[i + "ytAtN(".len()..];
    let fields = match parse_loose_object(obj) {
        Ok(f) => f,
        Err(e) => return Some(Err(malformed("ytAtN", e))),
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(r) = get("R") else {
        return Some(Err(PageChallengeError::Missing("ytAtN R")));
    };
    Some((|| {
        let v: Value = serde_json::from_str(&r).map_err(|e| malformed("ytAtN R", e))?;
        if v.get("bgChallenge").is_none() && v.get("botguardData").is_none() {
            return Err(PageChallengeError::Missing("bgChallenge"));
        }
        Ok(InlineChallenge {
            response: v,
            eacr_token: get("T"),
        })
    })())
}

/// Older form: `window.ytAtR = '<JSON string>';`.
fn parse_yt_atr(html: &str) -> Option<Result<InlineChallenge, PageChallengeError>> {
    let i = find(html, "ytAtR")?;
    let after = html[i + 5..].trim_start().strip_prefix('=')?.trim_start();
    let (text, _) = match parse_js_string(after) {
        Ok(x) => x,
        Err(e) => return Some(Err(malformed("ytAtR", e))),
    };
    Some((|| {
        let v: Value = serde_json::from_str(&text).map_err(|e| malformed("ytAtR", e))?;
        let response = if v.get("bgChallenge").is_some() {
            v
        } else {
            serde_json::json!({ "bgChallenge": v })
        };
        Ok(InlineChallenge {
            response,
            eacr_token: None,
        })
    })())
}

/// The JSON object assigned after `marker` in a page (`ytInitialPlayerResponse = {...};`).
pub fn extract_object_after(html: &str, marker: &str) -> Option<Value> {
    serde_json::from_str(&html[object_span_after(html, marker)?]).ok()
}

/// Where the `{...}` assigned after `marker` lies in the page (to replace it).
pub fn object_span_after(html: &str, marker: &str) -> Option<std::ops::Range<usize>> {
    let i = find(html, marker)? + marker.len();
    let rest = &html[i..];
    let start = rest.find('{')?;
    if !rest[..start].trim().chars().all(|c| c == '=' || c == ':') {
        return None;
    }
    let end = balanced_object_end(&rest[start..])?;
    Some(i + start..i + start + end)
}

/// Where `needle` first occurs in `hay`. `str::find` searches byte by byte (Two-Way, no SIMD):
/// 1.5-2 ms per search of a 2 MB page whose text keeps almost matching (`yt...`); `memmem`
/// vectorises.
fn find(hay: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(hay.as_bytes(), needle.as_bytes())
}

/// Length of the `{...}` at the start of `s`, honouring JSON/JS strings.
///
/// Runs on every page the proxy passes, often over megabytes (an object left open runs to the
/// end of the page), so it looks at each byte once through a class table and jumps across
/// string contents with `memchr` instead of stepping a state machine byte by byte. (The 2 MB
/// marker page of `benches/hostile.rs` went from 6-9 ms to 2.5 ms mostly through [`find`];
/// this scanner's own share was not measured apart.)
fn balanced_object_end(s: &str) -> Option<usize> {
    const PLAIN: u8 = 0;
    const QUOTE: u8 = 1;
    const OPEN: u8 = 2;
    const CLOSE: u8 = 3;
    static CLASS: [u8; 256] = {
        let mut t = [PLAIN; 256];
        t[b'"' as usize] = QUOTE;
        t[b'\'' as usize] = QUOTE;
        t[b'{' as usize] = OPEN;
        t[b'[' as usize] = OPEN;
        t[b'}' as usize] = CLOSE;
        t[b']' as usize] = CLOSE;
        t
    };
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match CLASS[b as usize] {
            PLAIN => {}
            QUOTE => i = string_end(bytes, i, b)?,
            OPEN => depth += 1,
            _ => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
        }
        i += 1;
    }
    None
}

/// Index of the quote that closes the string opened by `quote` at `start` (backslash escapes
/// honoured); `None` when the string runs to the end.
fn string_end(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut at = start + 1;
    loop {
        let k = at + memchr::memchr2(quote, b'\\', bytes.get(at..)?)?;
        if bytes[k] == quote {
            return Some(k);
        }
        at = k + 2;
    }
}

/// Parses a JS string literal at the start of `s` (single or double quotes, JS escapes).
/// Returns the value and the rest of the input.
pub fn parse_js_string(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err("expected a string literal".into()),
    };
    let mut out = String::new();
    let mut pending_high: Option<u32> = None;
    let push_unit = |out: &mut String, pending: &mut Option<u32>, u: u32| {
        if (0xd800..0xdc00).contains(&u) {
            *pending = Some(u);
            return;
        }
        if (0xdc00..0xe000).contains(&u) {
            if let Some(h) = pending.take() {
                let c = 0x10000 + ((h - 0xd800) << 10) + (u - 0xdc00);
                out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                return;
            }
        }
        if pending.take().is_some() {
            out.push('\u{fffd}');
        }
        out.push(char::from_u32(u).unwrap_or('\u{fffd}'));
    };
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if pending_high.take().is_some() {
                out.push('\u{fffd}');
            }
            return Ok((out, &s[i + 1..]));
        }
        if c != '\\' {
            if pending_high.take().is_some() {
                out.push('\u{fffd}');
            }
            out.push(c);
            continue;
        }
        let (_, e) = chars.next().ok_or("unterminated escape")?;
        let hex = |chars: &mut std::str::CharIndices, n: usize| -> Result<u32, String> {
            let h: String = (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
            u32::from_str_radix(&h, 16).map_err(|_| format!("bad hex escape `{h}`"))
        };
        match e {
            'x' => push_unit(&mut out, &mut pending_high, hex(&mut chars, 2)?),
            'u' => push_unit(&mut out, &mut pending_high, hex(&mut chars, 4)?),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' => out.push('\0'),
            '\n' => {}
            other => out.push(other),
        }
    }
    Err("unterminated string".into())
}

/// Parses `{'K': 'v', "K2": "v2", K3: 'v3'}` (string values only) at the start of `s`.
fn parse_loose_object(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut rest = s.trim_start().strip_prefix('{').ok_or("expected `{`")?;
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            let _ = r;
            return Ok(out);
        }
        let (key, r) = if rest.starts_with(['\'', '"']) {
            parse_js_string(rest)?
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .ok_or("unterminated key")?;
            (rest[..end].to_string(), &rest[end..])
        };
        let r = r
            .trim_start()
            .strip_prefix(':')
            .ok_or("expected `:`")?
            .trim_start();
        let (value, r) = parse_js_string(r)?;
        out.push((key, value));
        rest = r.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixtures_dir;

    #[test]
    fn js_strings_decode_hex_unicode_and_slash_escapes() {
        let (s, rest) = parse_js_string(r#"'\x7b\x22a\x22:\/x\u00e9\'q\'}' tail"#).unwrap();
        assert_eq!(s, "{\"a\":/xé'q'}");
        assert_eq!(rest, " tail");
        let (s, _) = parse_js_string(r#""\ud83d\ude00""#).unwrap();
        assert_eq!(s, "😀");
        assert!(parse_js_string("'unterminated").is_err());
    }

    const YTCFG: &str = r#"<script>ytcfg.set({"VISITOR_DATA":"CgtVISITOR","LOGGED_IN":false,"DATASYNC_ID":"d||","INNERTUBE_CONTEXT":{"client":{"clientName":"WEB"}}});
ytcfg.set({"WEB_PLAYER_CONTEXT_CONFIGS":{"X":{"serializedExperimentFlags":"a=1&html5_generate_content_po_token=false"}}});</script>"#;

    #[test]
    fn a_malformed_inline_challenge_still_yields_visitor_data_and_the_regime_flag() {
        for challenge in [
            "<script>window.ytAtN({'R': '\\x7bnot json', 'T': 'eacr'});</script>",
            "<script>window.ytAtN({'R': 'unterminated",
            "<script>window.ytAtR = '{\"bgChallenge\": {\"program\": \"p\"}}';</script>",
        ] {
            let html = format!("{YTCFG}{challenge}");
            let page = Page::parse(&html);
            let facts = page.facts();
            assert_eq!(facts.identity.visitor_data.as_deref(), Some("CgtVISITOR"));
            assert_eq!(facts.regime, Some(Regime::Session));
            assert_eq!(facts.client.as_deref(), Some("WEB"));
            // The minter's reading of the same page reports the challenge error.
            assert!(
                crate::botguard::challenge::parse_page(&html).is_err(),
                "{challenge}"
            );
        }
    }

    #[test]
    fn a_page_without_ytcfg_or_challenge_is_still_read() {
        let html = r#"<script>var ytInitialPlayerResponse = {"videoDetails":{"videoId":"vvvvvvvvvvv"}};</script>"#;
        let page = Page::parse(html);
        assert!(page.ytcfg.is_empty() && page.challenge.is_none());
        assert_eq!(
            initial_player_response(html).unwrap()["videoDetails"]["videoId"],
            "vvvvvvvvvvv"
        );
    }

    #[test]
    fn ytcfg_objects_merge_in_order_and_non_objects_are_skipped() {
        let html = r#"ytcfg.set("K", 1); ytcfg.set({"A":1,"B":"}"}); ytcfg.set( {"A":2}) ytcfg.set({bad}) ytcfg.set({"C":3"#;
        let m = ytcfg(html);
        assert_eq!(Value::Object(m), serde_json::json!({"A": 2, "B": "}"}));
    }

    /// The byte-by-byte state machine the fast scanner replaced: the oracle it must agree with.
    fn balanced_object_end_oracle(s: &str) -> Option<usize> {
        let (mut depth, mut in_str, mut escaped) = (0usize, None, false);
        for (i, &b) in s.as_bytes().iter().enumerate() {
            if let Some(q) = in_str {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == q {
                    in_str = None;
                }
                continue;
            }
            match b {
                b'"' | b'\'' => in_str = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    #[test]
    fn object_ends_agree_with_the_byte_by_byte_scanner_on_random_text() {
        const ALPHABET: &[u8] = b"{}[]\"\'\\a :,";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut text = vec![b'{'];
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(ALPHABET[(seed % ALPHABET.len() as u64) as usize]);
            }
            let text = String::from_utf8(text).unwrap();
            assert_eq!(
                balanced_object_end(&text),
                balanced_object_end_oracle(&text),
                "{text:?}"
            );
        }
        assert_eq!(balanced_object_end(r#"{"a\"}":'}'}x"#), Some(12));
        assert_eq!(balanced_object_end(r#"{"unterminated\"#), None);
    }

    #[test]
    fn reading_ytcfg_is_linear_in_the_page_size() {
        // Every marker opens an object that never closes: a rescan from each marker would be
        // quadratic (about 10^10 steps here), one pass is instant.
        let html = "ytcfg.set({\"a\": [".repeat(60_000);
        let t = std::time::Instant::now();
        assert!(ytcfg(&html).is_empty());
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn the_real_page_yields_visitor_data_logged_out_state_and_the_challenge() {
        let Some(dir) = fixtures_dir() else { return };
        let html = std::fs::read_to_string(dir.join("botguard/youtube_channel_page_20260513.html"))
            .unwrap();
        let page = Page::parse(&html);
        assert!(matches!(&page.challenge, Some(Ok(c)) if c.eacr_token.is_some()));
        let f = page.facts();
        assert!(!f.identity.logged_in);
        assert!(
            f.identity
                .visitor_data
                .as_deref()
                .is_some_and(|v| v.starts_with("Cg"))
        );
        assert!(
            f.identity
                .datasync_id
                .as_deref()
                .is_some_and(|d| d.ends_with("||"))
        );
        // Logged out: the session binding is the visitor data, not the DataSync ID.
        assert_eq!(
            f.identity.session_binding(),
            f.identity.visitor_data.as_deref()
        );
        assert_eq!(f.client.as_deref(), Some("WEB"));
    }

    #[test]
    fn the_experiment_flag_is_found_in_any_player_context_config() {
        let ytcfg: Map<String, Value> = serde_json::from_str(
            r#"{"VISITOR_DATA":"CgtV","LOGGED_IN":true,"DATASYNC_ID":"a||b","WEB_PLAYER_CONTEXT_CONFIGS":{"X":{"serializedExperimentFlags":"a=1"},"Y":{"serializedExperimentFlags":"html5_generate_content_po_token=true"}}}"#,
        )
        .unwrap();
        let f = page_facts(&ytcfg);
        assert_eq!(f.regime, Some(Regime::Video));
        assert_eq!(f.identity.session_binding(), Some("a||b"));
    }
}
