//! BotGuard challenges from their sources, as pure parsers: an `/att/get` answer
//! ([`Attestation`]: its `bgChallenge` object or its newer `botguardData`, the `challenge` text
//! whose `c`/`t` bound its life, and `eats`), the same answer embedded in the YouTube page as
//! `ytAtN`'s `R` (found by [`crate::learn::page`]), and WAA `Create` (plain or scrambled array);
//! and the page as minting reads it, where a malformed inline challenge is an error. Also the
//! interpreter check: `interpreterHash` is the unpadded base64url SHA-256 of the script's bytes,
//! and names the script's file (`//www.google.com/js/th/<hash>.js`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::learn::page::{self, Page, PageChallengeError};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("no `{0}` in the page")]
    NotInPage(&'static str),
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("challenge lacks `{0}`")]
    Missing(&'static str),
    #[error("interpreter hash mismatch: expected {expected}, got {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("interpreter URL `{0}` is not on google.com or youtube.com")]
    UntrustedUrl(String),
}

impl From<PageChallengeError> for ChallengeError {
    fn from(e: PageChallengeError) -> Self {
        match e {
            PageChallengeError::NoYtcfg => ChallengeError::NotInPage("ytcfg.set({...})"),
            PageChallengeError::Malformed { what, reason } => {
                ChallengeError::Malformed { what, reason }
            }
            PageChallengeError::Missing(what) => ChallengeError::Missing(what),
        }
    }
}

fn malformed(what: &'static str, reason: impl ToString) -> ChallengeError {
    ChallengeError::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// A BotGuard challenge, whatever its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `https://www.google.com/js/th/<hash>.js`, scheme added.
    pub interpreter_url: Option<String>,
    /// The script itself, when the challenge inlines it (Create can).
    pub interpreter_js: Option<String>,
    pub interpreter_hash: String,
    pub program: String,
    pub global_name: String,
    pub client_experiments_state_blob: Option<String>,
}

/// Unpadded base64url SHA-256 of the interpreter's bytes.
pub fn interpreter_hash(script: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(script))
}

/// The global a `botguardData` interpreter defines: that answer does not name it, and the web
/// player's interpreter has always been `trayride` (YouTube.js #1248 assumes the same).
pub const DEFAULT_GLOBAL_NAME: &str = "trayride";

/// The hash an interpreter URL names: its file is `<interpreterHash>.js` (43 characters of
/// unpadded base64url, the SHA-256).
pub fn hash_from_url(url: &str) -> Option<String> {
    let path = url::Url::parse(url).ok()?.path().to_string();
    let name = path.rsplit('/').next()?.strip_suffix(".js")?;
    let ok = name.len() == 43
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| name.to_string())
}

/// When an attestation `challenge` text (`a=6&a2=10&b=...&c=<issued>&...&t=<ttl>`, form
/// encoded) stops being good, in Unix seconds: `c + t`. `None` when either is missing, not a
/// number, or `t` is zero (then only the integrity token bounds the minter).
pub fn challenge_expiry(text: &str) -> Option<u64> {
    let (mut issued, mut ttl) = (None, None);
    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
        match k.as_ref() {
            "c" => issued = v.parse::<u64>().ok(),
            "t" => ttl = v.parse::<u64>().ok().filter(|t| *t > 0),
            _ => {}
        }
    }
    issued?.checked_add(ttl?)
}

/// An `/att/get` answer (or the copy the page embeds): the challenge to run, the `challenge`
/// text `/att/log` echoes and whose `c`/`t` bound its life, and `eats`, which the client sends
/// back through `/att/log`'s one-time context (`context.request.eats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub challenge: Challenge,
    pub text: Option<String>,
    pub eats: Option<String>,
}

impl Attestation {
    /// Reads an `/att/get` answer: `bgChallenge`, else `botguardData`.
    pub fn from_response(v: &Value) -> Result<Self, ChallengeError> {
        let challenge = match (v.get("bgChallenge"), v.get("botguardData")) {
            (Some(bg), _) => Challenge::from_bg_challenge(bg)?,
            (None, Some(data)) => Challenge::from_botguard_data(data)?,
            (None, None) => return Err(ChallengeError::Missing("bgChallenge")),
        };
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Attestation {
            challenge,
            text: s("challenge"),
            eats: s("eats"),
        })
    }

    /// Parses an InnerTube `/att/get` response body.
    pub fn from_att_get(body: &[u8]) -> Result<Self, ChallengeError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| malformed("att/get response", e))?;
        Self::from_response(&v)
    }

    /// When the challenge stops being good (Unix seconds), from its text's `c`/`t`.
    pub fn expires_at(&self) -> Option<u64> {
        self.text.as_deref().and_then(challenge_expiry)
    }
}

impl Challenge {
    /// Checks a fetched or inlined interpreter against `interpreterHash`; a challenge that
    /// names no hash verifies nothing.
    pub fn verify_interpreter(&self, script: &[u8]) -> Result<(), ChallengeError> {
        if self.interpreter_hash.is_empty() {
            return Err(ChallengeError::Missing("interpreterHash"));
        }
        let actual = interpreter_hash(script);
        if actual == self.interpreter_hash {
            Ok(())
        } else {
            Err(ChallengeError::HashMismatch {
                expected: self.interpreter_hash.clone(),
                actual,
            })
        }
    }

    /// Parses a `bgChallenge` object (att/get, ytAtN `R`, bgutil's `challenge` field).
    pub fn from_bg_challenge(v: &Value) -> Result<Self, ChallengeError> {
        let o = v
            .as_object()
            .ok_or(malformed("bgChallenge", "not an object"))?;
        let s = |k: &'static str| -> Result<String, ChallengeError> {
            o.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or(ChallengeError::Missing(k))
        };
        let url = o
            .get("interpreterUrl")
            .and_then(|u| {
                u.get("privateDoNotAccessOrElseTrustedResourceUrlWrappedValue")
                    .or(Some(u))
            })
            .and_then(Value::as_str)
            .map(absolute_url);
        let inline = o
            .get("interpreterJavascript")
            .and_then(|u| {
                u.get("privateDoNotAccessOrElseSafeScriptWrappedValue")
                    .or(Some(u))
            })
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let c = Challenge {
            interpreter_url: url,
            interpreter_js: inline,
            interpreter_hash: s("interpreterHash")?,
            program: s("program")?,
            global_name: s("globalName")?,
            client_experiments_state_blob: o
                .get("clientExperimentsStateBlob")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        c.check_url()?;
        Ok(c)
    }

    /// Parses an InnerTube `/att/get` response body (its challenge only).
    pub fn from_att_get(body: &[u8]) -> Result<Self, ChallengeError> {
        Attestation::from_att_get(body).map(|a| a.challenge)
    }

    /// Parses `botguardData` (`/att/get` answers since Aug 2026, YouTube.js #1248): `program`
    /// and `interpreterSafeUrl`, which wraps either the interpreter's URL or the script itself.
    /// It names neither hash nor global: the hash is read from the URL's file name (none for an
    /// inline script, which then runs only if it is a known interpreter), the global is
    /// [`DEFAULT_GLOBAL_NAME`] unless stated.
    pub fn from_botguard_data(v: &Value) -> Result<Self, ChallengeError> {
        let o = v
            .as_object()
            .ok_or(malformed("botguardData", "not an object"))?;
        let wrapped = |inner: &str| -> Option<String> {
            [
                "interpreterSafeUrl",
                "interpreterUrl",
                "interpreterJavascript",
            ]
            .iter()
            .filter_map(|k| o.get(*k)?.get(inner)?.as_str())
            .find(|s| !s.is_empty())
            .map(str::to_string)
        };
        let url = wrapped("privateDoNotAccessOrElseTrustedResourceUrlWrappedValue")
            .map(|u| absolute_url(&u));
        let inline = wrapped("privateDoNotAccessOrElseSafeScriptWrappedValue");
        if url.is_none() && inline.is_none() {
            return Err(ChallengeError::Missing("interpreter"));
        }
        let named = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let c = Challenge {
            interpreter_hash: named("interpreterHash")
                .or_else(|| url.as_deref().and_then(hash_from_url))
                .unwrap_or_default(),
            interpreter_url: url,
            interpreter_js: inline,
            program: named("program").ok_or(ChallengeError::Missing("program"))?,
            global_name: named("globalName").unwrap_or_else(|| DEFAULT_GLOBAL_NAME.into()),
            client_experiments_state_blob: named("clientExperimentsStateBlob"),
        };
        c.check_url()?;
        Ok(c)
    }

    /// Parses a WAA `Create` response: plain (`[0]` is the challenge array) or scrambled
    /// (`[1]` is base64 of the JSON with every byte lowered by 97).
    pub fn from_create(body: &[u8]) -> Result<Self, ChallengeError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| malformed("Create response", e))?;
        let arr = v
            .as_array()
            .ok_or(malformed("Create response", "not an array"))?;
        let challenge: Value = if let Some(Value::Array(_)) = arr.first() {
            arr[0].clone()
        } else if let Some(Value::String(s)) = arr.get(1) {
            let b64: String = s
                .chars()
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    '.' => '=',
                    c => c,
                })
                .collect();
            let bytes = STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| malformed("scrambled Create challenge", e))?;
            let text: Vec<u8> = bytes.iter().map(|b| b.wrapping_add(97)).collect();
            serde_json::from_slice(&text).map_err(|e| malformed("scrambled Create challenge", e))?
        } else {
            return Err(malformed("Create response", "neither plain nor scrambled"));
        };
        Self::from_create_array(&challenge)
    }

    fn from_create_array(v: &Value) -> Result<Self, ChallengeError> {
        let a = v
            .as_array()
            .ok_or(malformed("Create challenge", "not an array"))?;
        if a.len() < 6 {
            return Err(malformed(
                "Create challenge",
                format!("{} elements, need 6", a.len()),
            ));
        }
        let first_string = |x: &Value| -> Option<String> {
            x.as_array()?
                .iter()
                .find_map(|e| e.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        };
        let s = |i: usize, k: &'static str| -> Result<String, ChallengeError> {
            a[i].as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or(ChallengeError::Missing(k))
        };
        let c = Challenge {
            interpreter_js: first_string(&a[1]),
            interpreter_url: first_string(&a[2]).map(|u| absolute_url(&u)),
            interpreter_hash: s(3, "interpreterHash")?,
            program: s(4, "program")?,
            global_name: s(5, "globalName")?,
            client_experiments_state_blob: a.get(7).and_then(Value::as_str).map(str::to_string),
        };
        if c.interpreter_js.is_none() && c.interpreter_url.is_none() {
            return Err(ChallengeError::Missing("interpreter"));
        }
        c.check_url()?;
        Ok(c)
    }

    /// Only Google's own hosts serve interpreters: a challenge pointing elsewhere is refused.
    fn check_url(&self) -> Result<(), ChallengeError> {
        let Some(u) = &self.interpreter_url else {
            return Ok(());
        };
        let host = url::Url::parse(u)
            .ok()
            .and_then(|p| p.host_str().map(str::to_ascii_lowercase));
        match host.as_deref().map(|h| h.strip_prefix("www.").unwrap_or(h)) {
            Some("google.com") | Some("youtube.com") => Ok(()),
            _ => Err(ChallengeError::UntrustedUrl(u.clone())),
        }
    }
}

fn absolute_url(u: &str) -> String {
    if u.starts_with("//") {
        format!("https:{u}")
    } else {
        u.to_string()
    }
}

/// What the YouTube page holds for minting.
#[derive(Debug, Clone, PartialEq)]
pub struct PageData {
    /// Every `ytcfg.set({...})` merged, in page order.
    pub ytcfg: Map<String, Value>,
    /// The inline `ytAtN` (or `ytAtR`) challenge, if present.
    pub challenge: Option<Challenge>,
    /// The rest of the embedded `/att/get` answer (`challenge` text, `eats`).
    pub attestation: Option<Attestation>,
    /// `ytAtN`'s `T`: the eacrToken for `/att/get`.
    pub eacr_token: Option<String>,
}

impl PageData {
    pub fn ytcfg_str(&self, key: &str) -> Option<&str> {
        self.ytcfg.get(key).and_then(Value::as_str)
    }

    pub fn visitor_data(&self) -> Option<&str> {
        page::visitor_data(&self.ytcfg)
    }
}

/// Reads a YouTube page as minting needs it: its ytcfg (required) and its inline challenge,
/// whose errors this reports (learning from the page ignores them, see [`Page`]).
pub fn parse_page(html: &str) -> Result<PageData, ChallengeError> {
    let page = Page::parse(html);
    let attestation = inline_challenge(&page)?;
    let eacr_token = page.eacr_token().map(str::to_string);
    Ok(PageData {
        ytcfg: page.ytcfg,
        challenge: attestation.as_ref().map(|a| a.challenge.clone()),
        attestation,
        eacr_token,
    })
}

/// The page's inline challenge as an [`Attestation`]: `None` when the page has none, an error
/// when the page is not a YouTube page or the challenge is malformed.
pub fn inline_challenge(page: &Page) -> Result<Option<Attestation>, ChallengeError> {
    page.inline_challenge()?
        .map(|i| Attestation::from_response(&i.response))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixtures_dir;

    #[test]
    fn scrambled_and_plain_create_responses_parse_alike() {
        let arr = serde_json::json!([
            "msgid",
            [null, "var trayride={};"],
            [null, "//www.google.com/js/th/abc.js"],
            "HASH",
            "PROGRAM",
            "trayride",
            null,
            "[]"
        ]);
        let plain = serde_json::to_vec(&serde_json::json!([arr])).unwrap();
        let text = serde_json::to_vec(&arr).unwrap();
        let scrambled: Vec<u8> = text.iter().map(|b| b.wrapping_sub(97)).collect();
        let enc = STANDARD
            .encode(scrambled)
            .replace('+', "-")
            .replace('/', "_")
            .replace('=', ".");
        let scr = serde_json::to_vec(&serde_json::json!(["x", enc])).unwrap();
        let a = Challenge::from_create(&plain).unwrap();
        let b = Challenge::from_create(&scr).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.global_name, "trayride");
        assert_eq!(
            a.interpreter_url.as_deref(),
            Some("https://www.google.com/js/th/abc.js")
        );
        assert_eq!(a.interpreter_js.as_deref(), Some("var trayride={};"));
    }

    #[test]
    fn garbage_create_responses_are_errors() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"[1,2]",
            b"[\"x\", \"!!!notbase64\"]",
            b"[[1,2,3]]",
        ] {
            assert!(
                Challenge::from_create(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn interpreters_from_other_hosts_are_refused() {
        let v = serde_json::json!({"interpreterUrl": {"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue": "//evil.example/x.js"}, "interpreterHash": "h", "program": "p", "globalName": "g"});
        assert!(matches!(
            Challenge::from_bg_challenge(&v),
            Err(ChallengeError::UntrustedUrl(_))
        ));
    }

    #[test]
    fn real_page_yields_ytcfg_and_the_inline_challenge() {
        let Some(dir) = fixtures_dir() else { return };
        let html = std::fs::read_to_string(dir.join("botguard/youtube_channel_page_20260513.html"))
            .unwrap();
        let page = parse_page(&html).unwrap();
        assert!(page.ytcfg_str("EVENT_ID").is_some_and(|e| e.len() >= 16));
        assert!(page.visitor_data().is_some_and(|v| v.starts_with("Cg")));
        assert!(page.ytcfg.contains_key("INNERTUBE_CONTEXT"));
        let c = page.challenge.expect("ytAtN challenge");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("botguard/bgChallenge.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(c, Challenge::from_bg_challenge(&expected).unwrap());
        assert_eq!(c.global_name, "trayride");
        assert!(page.eacr_token.is_some());
    }

    #[test]
    fn botguard_data_answers_parse_with_the_hash_from_the_url_and_their_eats() {
        let h = "GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0";
        let by_url = serde_json::json!({
            "challenge": "a=6&c=1000&t=60", "eats": "EATS",
            "botguardData": {"program": "P", "interpreterSafeUrl": {"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue": format!("//www.google.com/js/th/{h}.js")}}
        });
        let a = Attestation::from_response(&by_url).unwrap();
        assert_eq!(a.challenge.interpreter_hash, h);
        assert_eq!(a.challenge.global_name, DEFAULT_GLOBAL_NAME);
        assert_eq!(a.challenge.program, "P");
        assert_eq!(
            (a.eats.as_deref(), a.expires_at()),
            (Some("EATS"), Some(1060))
        );
        let inline = serde_json::json!({
            "botguardData": {"program": "P", "interpreterSafeUrl": {"privateDoNotAccessOrElseSafeScriptWrappedValue": "var trayride={};"}}
        });
        let a = Attestation::from_response(&inline).unwrap();
        assert_eq!(
            a.challenge.interpreter_js.as_deref(),
            Some("var trayride={};")
        );
        assert_eq!(
            a.challenge.interpreter_hash, "",
            "an inline script names no hash"
        );
        assert!(a.challenge.verify_interpreter(b"var trayride={};").is_err());
        let elsewhere = serde_json::json!({"botguardData": {"program": "P", "interpreterSafeUrl": {"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue": "//evil.example/x.js"}}});
        assert!(matches!(
            Attestation::from_response(&elsewhere),
            Err(ChallengeError::UntrustedUrl(_))
        ));
        assert!(
            Attestation::from_response(&serde_json::json!({"botguardData": {"program": "P"}}))
                .is_err()
        );
        assert!(Attestation::from_response(&serde_json::json!({"challenge": "a=6"})).is_err());
    }

    #[test]
    fn challenge_texts_end_at_c_plus_t_and_otherwise_say_nothing() {
        for (text, end) in [
            (
                "a=6&a2=10&b=x&c=1778671634&d=1&t=21600&c1a=1",
                Some(1778671634 + 21600),
            ),
            ("c=10&t=5", Some(15)),
            ("a=6&a2=10", None),
            ("c=10", None),
            ("c=10&t=0", None),
            ("c=x&t=5", None),
            ("", None),
        ] {
            assert_eq!(challenge_expiry(text), end, "{text}");
        }
        assert_eq!(
            hash_from_url(
                "https://www.google.com/js/th/GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0.js"
            )
            .as_deref(),
            Some("GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0")
        );
        assert_eq!(hash_from_url("https://www.google.com/js/th/short.js"), None);
        assert_eq!(hash_from_url("not a url"), None);
    }

    #[test]
    fn real_att_get_response_parses() {
        let Some(dir) = fixtures_dir() else { return };
        let body = std::fs::read(dir.join("botguard/att_get_response_decoded.json")).unwrap();
        // The captured challenge lives 6 hours from its issue (`c=1778671634&...&t=21600`).
        let a = Attestation::from_att_get(&body).unwrap();
        assert_eq!(a.expires_at(), Some(1_778_671_634 + 21_600));
        let c = Challenge::from_att_get(&body).unwrap();
        assert_eq!(
            c.interpreter_hash,
            "GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0"
        );
        assert_eq!(c.program.len(), 35_115);
    }

    #[test]
    fn real_interpreter_matches_its_hash_and_a_changed_byte_does_not() {
        let Some(dir) = fixtures_dir() else { return };
        let hash = "GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0";
        let mut js = std::fs::read(dir.join(format!("botguard/interpreter_{hash}.js"))).unwrap();
        assert_eq!(interpreter_hash(&js), hash);
        js[100] ^= 1;
        assert_ne!(interpreter_hash(&js), hash);
    }
}
