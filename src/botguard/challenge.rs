//! BotGuard challenges from their three sources, as pure parsers: the `bgChallenge` object
//! (InnerTube `/att/get`, the YouTube page's inline `ytAtN`, found by [`crate::learn::page`]),
//! and WAA `Create` (plain or scrambled array); and the page as minting reads it, where a
//! malformed inline challenge is an error. Also the interpreter check: `interpreterHash` is the
//! unpadded base64url SHA-256 of the script's bytes.

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

impl Challenge {
    /// Checks a fetched or inlined interpreter against `interpreterHash`.
    pub fn verify_interpreter(&self, script: &[u8]) -> Result<(), ChallengeError> {
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

    /// Parses an InnerTube `/att/get` response body.
    pub fn from_att_get(body: &[u8]) -> Result<Self, ChallengeError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| malformed("att/get response", e))?;
        let bg = v
            .get("bgChallenge")
            .ok_or(ChallengeError::Missing("bgChallenge"))?;
        Self::from_bg_challenge(bg)
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
    let challenge = inline_challenge(&page)?;
    let eacr_token = page.eacr_token().map(str::to_string);
    Ok(PageData {
        ytcfg: page.ytcfg,
        challenge,
        eacr_token,
    })
}

/// The page's inline challenge as a [`Challenge`]: `None` when the page has none, an error
/// when the page is not a YouTube page or the challenge is malformed.
pub fn inline_challenge(page: &Page) -> Result<Option<Challenge>, ChallengeError> {
    page.inline_challenge()?
        .map(|i| Challenge::from_bg_challenge(&i.bg_challenge))
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
    fn real_att_get_response_parses() {
        let Some(dir) = fixtures_dir() else { return };
        let body = std::fs::read(dir.join("botguard/att_get_response_decoded.json")).unwrap();
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
