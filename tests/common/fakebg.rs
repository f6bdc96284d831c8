//! A simulated BotGuard behind the fake YouTube: the three challenge sources (page `ytAtN`,
//! `/att/get`, WAA `Create` plain or scrambled), an interpreter that follows the real calling
//! convention (asynchronous setup callback, async snapshot, minter factory in
//! `webPoSignalOutput[0]`), and a `GenerateIT` that signs integrity tokens, so the fake
//! googlevideo and player can verify minted tokens: their signature, expiry and binding.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const GLOBAL_NAME: &str = "fakebg";
pub const PROGRAM: &str = "ZmFrZS1wcm9ncmFtLWZvci1wb3Rwcm94eS10ZXN0cw";
pub const REQUEST_KEY: &str = "O43z0dpjhgX20SCx4KAo";
pub const VISITOR_DATA: &str = "CgtGYWtlVmlzaXRvcijAgICAxjIKCgJERRIEEgAgNg%3D%3D";
/// What `/youtubei/v1/visitor_id` issues.
pub const ISSUED_VISITOR_DATA: &str = "CgtJc3N1ZWRWaXNpdG9yKMCAgIDGMgoKAkRFEgQSACA2";
/// The DataSync ID of the fake's signed-in account.
pub const DATASYNC_ID: &str = "FAKEDSID123||";

/// The interpreter: registers `globalThis.fakebg.a(...)` like the real one. The snapshot is
/// `$` + base64("fake-botguard:" + program); the minter builds a field-6 protobuf holding the
/// integrity token, the binding and 4 random bytes.
pub const INTERPRETER_JS: &str = r#"(function () {
  var g = globalThis;
  function varint(n, out) { while (n > 127) { out.push((n & 127) | 128); n >>>= 7; } out.push(n); }
  g.fakebg = {
    a: function (program, setup, flag, el, telemetry, experiments, u1, f, loggers) {
      if (typeof setup !== "function") throw new Error("no setup callback");
      function asyncSnapshot(done, args) {
        var out = args && args[2];
        setTimeout(function () {
          if (out) out[0] = function getMinter(it) {
            var itBytes = Array.prototype.slice.call(it);
            return Promise.resolve(function minter(binding) {
              return new Promise(function (resolve) {
                setTimeout(function () {
                  var b = Array.prototype.slice.call(binding);
                  var rnd = Array.prototype.slice.call(crypto.getRandomValues(new Uint8Array(4)));
                  var payload = [];
                  varint(itBytes.length, payload); payload = payload.concat(itBytes);
                  varint(b.length, payload); payload = payload.concat(b, rnd);
                  var tok = [0x32]; varint(payload.length, tok);
                  resolve(new Uint8Array(tok.concat(payload)));
                }, 0);
              });
            });
          };
          done("$" + btoa("fake-botguard:" + program));
        }, 1);
      }
      setTimeout(function () { setup(asyncSnapshot, function () {}, function () {}, function () {}); }, 2);
      return [function syncSnapshot() { return "$sync"; }];
    }
  };
})();
"#;

/// An interpreter that never returns.
pub const LOOPING_JS: &str = "globalThis.fakebg = { a: function () { for (;;) {} } };";

pub fn hash_of(js: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(js.as_bytes()))
}

/// What the fake serves; tests flip these.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub page_challenge: bool,
    pub att_get: bool,
    pub create: CreateMode,
    /// Serve this script at the interpreter URL instead of the real fake interpreter.
    pub interpreter_override: Option<String>,
    /// Challenges name the override's hash (so it passes verification and runs).
    pub challenge_names_override: bool,
    pub null_integrity_token: bool,
    pub it_ttl_secs: u64,
    /// googlevideo answers 403 to media without a valid token.
    pub enforce_media: bool,
    /// Which binding googlevideo expects of media tokens.
    pub gvs_regime: GvsRegime,
    /// UMP requests (`ump=1`, POST) are refused in-band (HTTP 200, StreamProtectionStatus 3)
    /// instead of with a 403.
    pub ump_rejections: bool,
    /// The `html5_generate_content_po_token` flag pages carry (`None`: absent).
    pub page_flag_video_bound: Option<bool>,
}

/// What googlevideo binds media tokens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GvsRegime {
    /// The video id.
    Video,
    /// The visitor data (logged out) or DataSync ID (logged in).
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Off,
    Plain,
    Scrambled,
    Garbage,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            page_challenge: true,
            att_get: true,
            create: CreateMode::Plain,
            interpreter_override: None,
            challenge_names_override: false,
            null_integrity_token: false,
            it_ttl_secs: 43_200,
            enforce_media: false,
            gvs_regime: GvsRegime::Video,
            ump_rejections: false,
            page_flag_video_bound: Some(true),
        }
    }
}

/// Counters a test can assert on.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub visitor_id: usize,
    pub page: usize,
    pub att_get: usize,
    pub create: usize,
    pub interpreter: usize,
    pub generate_it: usize,
}

pub struct FakeBotGuard {
    secret: [u8; 16],
    pub behaviour: Mutex<Behaviour>,
    pub counts: Mutex<Counts>,
}

impl Default for FakeBotGuard {
    fn default() -> Self {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).unwrap();
        FakeBotGuard {
            secret,
            behaviour: Mutex::new(Behaviour::default()),
            counts: Mutex::new(Counts::default()),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<usize> {
    let mut v = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 127) as usize) << shift;
        if byte < 128 {
            return Some(v);
        }
    }
    None
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(String),
}

impl FakeBotGuard {
    pub fn interpreter(&self) -> String {
        self.behaviour
            .lock()
            .unwrap()
            .interpreter_override
            .clone()
            .unwrap_or_else(|| INTERPRETER_JS.to_string())
    }

    /// The hash challenges name: the fake interpreter's, or the override's when asked to.
    fn named_hash(&self) -> String {
        let b = self.behaviour.lock().unwrap();
        match (&b.interpreter_override, b.challenge_names_override) {
            (Some(js), true) => hash_of(js),
            _ => hash_of(INTERPRETER_JS),
        }
    }

    pub fn bg_challenge(&self) -> Value {
        let hash = self.named_hash();
        json!({
            "interpreterUrl": {"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue": format!("//www.google.com/js/th/{hash}.js")},
            "interpreterHash": hash,
            "program": PROGRAM,
            "globalName": GLOBAL_NAME,
            "clientExperimentsStateBlob": "[null,null,null,null,null,null,null,[],[]]"
        })
    }

    pub fn att_get_response(&self) -> Value {
        json!({"responseContext": {"visitorData": VISITOR_DATA}, "challenge": "a=6&a2=10", "bgChallenge": self.bg_challenge()})
    }

    /// A page's ytcfg for `client` (`WEB` on www, `MWEB` on m.).
    pub fn ytcfg(&self, client: &str) -> Value {
        let flags = match self.behaviour.lock().unwrap().page_flag_video_bound {
            Some(v) => format!("html5_generate_content_po_token={v}&foo=1"),
            None => "foo=1".into(),
        };
        json!({
            "EVENT_ID": "FakeEventId0123456789ab",
            "VISITOR_DATA": VISITOR_DATA,
            "DATASYNC_ID": "V15f488c3||",
            "LOGGED_IN": false,
            "INNERTUBE_API_KEY": "AIzaSyFakeKeyForTests0000000000000000",
            "INNERTUBE_CLIENT_NAME": client,
            "INNERTUBE_CLIENT_VERSION": "2.20260512.00.00",
            "INNERTUBE_CONTEXT_CLIENT_NAME": if client == "MWEB" { 2 } else { 1 },
            "INNERTUBE_CONTEXT": {"client": {"clientName": client, "clientVersion": "2.20260512.00.00", "visitorData": VISITOR_DATA, "hl": "en", "gl": "US"}},
            "PLAYER_JS_URL": "/s/player/abcd1234/player_ias.vflset/en_US/base.js",
            "WEB_PLAYER_CONTEXT_CONFIGS": {"WEB_PLAYER_CONTEXT_CONFIG_ID_KEVLAR_WATCH": {"serializedExperimentFlags": flags, "jsUrl": "/s/player/abcd1234/player_ias.vflset/en_US/base.js"}}
        })
    }

    /// The home page: ytcfg plus the inline `ytAtN` in the same escaped form the real page uses.
    pub fn page(&self) -> String {
        self.page_for("WEB", None)
    }

    /// A page for `client`; with `video`, a watch page carrying `ytInitialPlayerResponse`.
    pub fn page_for(&self, client: &str, video: Option<&str>) -> String {
        let mut html = format!(
            "<!DOCTYPE html><html><head><script nonce=\"x\">ytcfg.set({});</script></head><body>",
            self.ytcfg(client)
        );
        if let Some(v) = video {
            let ipr = json!({"playabilityStatus": {"status": "OK"}, "videoDetails": {"videoId": v, "title": "Fake video", "lengthSeconds": "10"}});
            html.push_str(&format!(
                "<script nonce=\"x\">var ytInitialPlayerResponse = {ipr};var meta = document.createElement('meta');</script><script nonce=\"x\">var ytInitialData = {{\"contents\": {{}}}};</script>"
            ));
        }
        if self.behaviour.lock().unwrap().page_challenge {
            let r = serde_json::to_string(&self.att_get_response()).unwrap();
            let escaped: String = r
                .chars()
                .map(|c| match c {
                    '"' => "\\x22".to_string(),
                    '{' => "\\x7b".to_string(),
                    '}' => "\\x7d".to_string(),
                    '/' => "\\/".to_string(),
                    c => c.to_string(),
                })
                .collect();
            html.push_str(&format!(
                "<script nonce=\"x\">(function() {{if (window.ytAtN) {{window.ytAtN({{'R': '{escaped}', 'T': 'eacr-token-fake'}});}}}})();</script>"
            ));
        }
        html.push_str("</body></html>");
        html
    }

    pub fn create_response(&self) -> Option<Vec<u8>> {
        let mode = self.behaviour.lock().unwrap().create;
        let hash = self.named_hash();
        let arr = json!([
            "fake-message-id",
            [null, self.interpreter()],
            [null, format!("//www.google.com/js/th/{hash}.js")],
            hash,
            PROGRAM,
            GLOBAL_NAME,
            null,
            "[]"
        ]);
        match mode {
            CreateMode::Off => None,
            CreateMode::Plain => Some(serde_json::to_vec(&json!([arr])).unwrap()),
            CreateMode::Scrambled => {
                let text = serde_json::to_vec(&arr).unwrap();
                let scrambled: Vec<u8> = text.iter().map(|b| b.wrapping_sub(97)).collect();
                let enc = STANDARD
                    .encode(scrambled)
                    .replace('+', "-")
                    .replace('/', "_")
                    .replace('=', ".");
                Some(serde_json::to_vec(&json!(["fake", enc])).unwrap())
            }
            CreateMode::Garbage => Some(b"[\"fake\", 12, {\"nope\": true}]".to_vec()),
        }
    }

    fn sign(&self, data: &[u8]) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(data);
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }

    /// `GenerateIT`: checks the request key and the snapshot, issues a signed integrity token.
    pub fn generate_it(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let b = self.behaviour.lock().unwrap().clone();
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return (400, b"bad json".to_vec());
        };
        let expected = "$".to_string() + &STANDARD.encode(format!("fake-botguard:{PROGRAM}"));
        if v[0] != REQUEST_KEY || v[1].as_str() != Some(expected.as_str()) {
            return (400, format!("bad GenerateIT request: {v}").into_bytes());
        }
        if b.null_integrity_token {
            return (
                200,
                serde_json::to_vec(&json!([null, 43200, null, "FAKEFALLBACKTOKEN0123456789"]))
                    .unwrap(),
            );
        }
        let mut it = Vec::new();
        it.extend_from_slice(&(now() + b.it_ttl_secs).to_be_bytes());
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).unwrap();
        it.extend_from_slice(&nonce);
        let sig = self.sign(&it);
        it.extend_from_slice(&sig);
        (
            200,
            serde_json::to_vec(&json!([STANDARD.encode(it), b.it_ttl_secs, 100])).unwrap(),
        )
    }

    /// Checks a minted PO token: field 6, a valid unexpired integrity token, the binding.
    pub fn verify(&self, token: &str, binding: &str) -> Verdict {
        let text = percent_encoding::percent_decode_str(token)
            .decode_utf8_lossy()
            .into_owned();
        let Ok(bytes) = URL_SAFE.decode(text.replace('+', "-").replace('/', "_")) else {
            return Verdict::Invalid("not base64url".into());
        };
        let mut pos = 0;
        if bytes.first() != Some(&0x32) {
            return Verdict::Invalid("not field 6".into());
        }
        pos += 1;
        let Some(len) = read_varint(&bytes, &mut pos) else {
            return Verdict::Invalid("bad length".into());
        };
        if pos + len != bytes.len() {
            return Verdict::Invalid("length mismatch".into());
        }
        let Some(it_len) = read_varint(&bytes, &mut pos) else {
            return Verdict::Invalid("bad IT length".into());
        };
        let Some(it) = bytes.get(pos..pos + it_len) else {
            return Verdict::Invalid("short IT".into());
        };
        pos += it_len;
        if it.len() != 32 || self.sign(&it[..16]) != it[16..32] {
            return Verdict::Invalid("integrity token not signed by this GenerateIT".into());
        }
        let exp = u64::from_be_bytes(it[..8].try_into().unwrap());
        if exp <= now() {
            return Verdict::Invalid("integrity token expired".into());
        }
        let Some(b_len) = read_varint(&bytes, &mut pos) else {
            return Verdict::Invalid("bad binding length".into());
        };
        let Some(b) = bytes.get(pos..pos + b_len) else {
            return Verdict::Invalid("short binding".into());
        };
        if b != binding.as_bytes() {
            return Verdict::Invalid(format!(
                "bound to {:?}, expected {binding:?}",
                String::from_utf8_lossy(b)
            ));
        }
        Verdict::Valid
    }
}
