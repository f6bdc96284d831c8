//! A simulated BotGuard behind the fake YouTube: the challenge sources it serves itself
//! (`/att/get` as the web or the TV client, answering with `bgChallenge` or with the newer
//! `botguardData` plus `eats`; `/att/log`; WAA `Create` plain or scrambled; the page `ytAtN` is
//! in [`super::youtube`]), an interpreter that follows the real calling convention
//! (asynchronous setup callback, async snapshot, minter factory in `webPoSignalOutput[0]`), and
//! a `GenerateIT` that signs integrity tokens, so the fake googlevideo and player can verify
//! minted tokens: their signature, expiry and binding. With [`Behaviour::require_event_id`]
//! a web challenge's snapshot gets an integrity token only if the VM held the page's EVENT_ID
//! in `yt.config_` (the TV client's challenge is not bound). Every challenge carries a `challenge`
//! text with its issue time `c` and lifetime `t`; a snapshot of a challenge whose answer carried
//! `eats` gets an integrity token only after `/att/log` returned that `eats` with the snapshot.
//!
//! Trust grading, as YouTube grades since August 2026: the interpreter probes the environment
//! it runs in with something an emulated DOM cannot fake and a real browser passes by
//! construction (2D canvas text rendering: `fillText`, then `getImageData` must show a
//! plausible number of inked pixels, many of them anti-aliased), and puts the verdict into
//! its snapshot. With [`Behaviour::grade_trust`] on, `GenerateIT` marks the integrity token low
//! or high trust from it (off: every token is high trust), and the fake googlevideo treats
//! low-trust tokens' media as configured (see `super::media`).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::origin::{Behaviour, FakeRequest, FakeState, Reply, status_body};
use super::youtube::{EVENT_ID, VISITOR_DATA};

pub const GLOBAL_NAME: &str = "fakebg";
pub const PROGRAM: &str = "ZmFrZS1wcm9ncmFtLWZvci1wb3Rwcm94eS10ZXN0cw";
/// The program of the TV client's challenge, which is not bound to a page's EVENT_ID.
pub const PROGRAM_TV: &str = "ZmFrZS10di1wcm9ncmFtLWZvci1wb3Rwcm94eQ";
pub const REQUEST_KEY: &str = "O43z0dpjhgX20SCx4KAo";

/// The interpreter: registers `globalThis.fakebg.a(...)` like the real one. The snapshot is
/// `$` + base64("fake-botguard:" + program + ":" + trust [+ ":" + EVENT_ID]), trust being what
/// the canvas probe found (`high` or `low`), EVENT_ID the one `yt.config_` holds, if any; the minter builds a field-6 protobuf holding the integrity token,
/// the binding and 4 random bytes.
pub const INTERPRETER_JS: &str = r#"(function () {
  var g = globalThis;
  function varint(n, out) { while (n > 127) { out.push((n & 127) | 128); n >>>= 7; } out.push(n); }
  // Real text rendering: glyphs leave a few hundred inked pixels, a good share of them
  // anti-aliased (alpha strictly between 0 and 255). No canvas, an empty one, a solid block or
  // an error all grade low.
  function probeCanvas() {
    try {
      var c = document.createElement("canvas");
      c.width = 240; c.height = 60;
      var x = c.getContext("2d");
      if (!x) return "low";
      x.fillStyle = "black";
      x.font = "28px sans-serif";
      x.fillText("Wj potproxy 42", 6, 40);
      var d = x.getImageData(0, 0, 240, 60).data;
      var ink = 0, soft = 0;
      for (var i = 3; i < d.length; i += 4) {
        if (d[i] > 0) { ink++; if (d[i] < 255) soft++; }
      }
      return (ink > 300 && ink < 9000 && soft > 60 && soft < ink) ? "high" : "low";
    } catch (e) { return "low"; }
  }
  // Registered under the real interpreter's global too: `botguardData` names no global.
  g.fakebg = g.trayride = {
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
          var cfg = g.yt && g.yt.config_;
          var eventId = (cfg && cfg.EVENT_ID) || "";
          done("$" + btoa("fake-botguard:" + program + ":" + probeCanvas() + (eventId ? ":" + eventId : "")));
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

/// A no-op interpreter as pages sometimes inline instead of naming the real one.
pub const STUB_JS: &str = "(function(){})();";

/// How `/att/get` states its challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttGetForm {
    /// `bgChallenge` (interpreter URL, hash, program, global name).
    BgChallenge,
    /// `botguardData` with `interpreterSafeUrl` wrapping the interpreter's URL, plus `eats`.
    BotguardDataUrl,
    /// `botguardData` with `interpreterSafeUrl` wrapping the script itself, plus `eats`.
    BotguardDataInline,
}

/// How `Create` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Off,
    Plain,
    Scrambled,
    Garbage,
}

/// The signing side of the fake: what it serves depends on the [`Behaviour`] passed in, so the
/// whole fake origin has one set of switches.
pub struct FakeBotGuard {
    secret: [u8; 16],
    /// `eats` values handed out with `botguardData` answers.
    issued_eats: std::sync::Mutex<Vec<String>>,
    /// (`eats`, `webResponse`) pairs `/att/log` received.
    logged: std::sync::Mutex<Vec<(String, String)>>,
}

impl Default for FakeBotGuard {
    fn default() -> Self {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).unwrap();
        FakeBotGuard {
            secret,
            issued_eats: Default::default(),
            logged: Default::default(),
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

/// How much googlevideo trusts a valid token (the grade its integrity token carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Low,
    High,
}

impl FakeBotGuard {
    pub fn interpreter(&self, b: &Behaviour) -> String {
        b.interpreter_override
            .clone()
            .unwrap_or_else(|| INTERPRETER_JS.to_string())
    }

    /// The hash challenges name: the fake interpreter's, or the override's when asked to.
    fn named_hash(&self, b: &Behaviour) -> String {
        match (&b.interpreter_override, b.challenge_names_override) {
            (Some(js), true) => hash_of(js),
            _ => hash_of(INTERPRETER_JS),
        }
    }

    pub fn bg_challenge(&self, b: &Behaviour) -> Value {
        let hash = self.named_hash(b);
        json!({
            "interpreterUrl": {"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue": format!("//www.google.com/js/th/{hash}.js")},
            "interpreterHash": hash,
            "program": PROGRAM,
            "globalName": GLOBAL_NAME,
            "clientExperimentsStateBlob": "[null,null,null,null,null,null,null,[],[]]"
        })
    }

    /// A `challenge` text issued `age_secs` ago, living `b.challenge_ttl_secs`.
    pub fn challenge_text(&self, b: &Behaviour, age_secs: u64) -> String {
        format!(
            "a=6&a2=10&b=fakeChallengeBody&c={}&d=1&t={}",
            now() - age_secs,
            b.challenge_ttl_secs
        )
    }

    /// The `/att/get` answer as the web page embeds it (always `bgChallenge`; with
    /// `page_interpreter_stub`, one that inlines a no-op interpreter and names no URL).
    pub fn page_att_response(&self, b: &Behaviour) -> Value {
        let mut bg = self.bg_challenge(b);
        if b.page_interpreter_stub {
            let o = bg.as_object_mut().unwrap();
            o.remove("interpreterUrl");
            o.insert(
                "interpreterJavascript".into(),
                json!({"privateDoNotAccessOrElseSafeScriptWrappedValue": STUB_JS}),
            );
        }
        json!({"responseContext": {"visitorData": VISITOR_DATA}, "challenge": self.challenge_text(b, b.page_challenge_age_secs), "bgChallenge": bg})
    }

    /// The `/att/get` answer in the configured form; the TV client's names its own program.
    pub fn att_get_response(&self, b: &Behaviour, tv: bool) -> Value {
        let text = self.challenge_text(b, 0);
        if tv {
            let mut bg = self.bg_challenge(b);
            bg["program"] = json!(PROGRAM_TV);
            return json!({"responseContext": {"visitorData": VISITOR_DATA}, "challenge": text, "bgChallenge": bg});
        }
        let safe_url = |key: &str, value: String| json!({ key: value });
        let data = match b.att_get_form {
            AttGetForm::BgChallenge => {
                return json!({"responseContext": {"visitorData": VISITOR_DATA}, "challenge": text, "bgChallenge": self.bg_challenge(b)});
            }
            AttGetForm::BotguardDataUrl => safe_url(
                "privateDoNotAccessOrElseTrustedResourceUrlWrappedValue",
                format!("//www.google.com/js/th/{}.js", self.named_hash(b)),
            ),
            AttGetForm::BotguardDataInline => safe_url(
                "privateDoNotAccessOrElseSafeScriptWrappedValue",
                self.interpreter(b),
            ),
        };
        let mut eats = [0u8; 12];
        getrandom::fill(&mut eats).unwrap();
        let eats = format!("eats-{}", URL_SAFE_NO_PAD.encode(eats));
        self.issued_eats.lock().unwrap().push(eats.clone());
        json!({
            "responseContext": {"visitorData": VISITOR_DATA},
            "challenge": text,
            "botguardData": {"program": PROGRAM, "interpreterSafeUrl": data},
            "eats": eats
        })
    }

    /// `/att/log`: records the `eats` (from the one-time context) and the VM's response.
    pub fn att_log(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return (400, b"bad json".to_vec());
        };
        let eats = v["context"]["request"]["eats"].as_str();
        let web = v["webResponse"].as_str();
        let well_formed = v["challenge"].as_str().is_some_and(|c| c.contains("&c="))
            && v["engagementType"] == "ENGAGEMENT_TYPE_UNBOUND";
        match (eats, web) {
            (Some(e), Some(w)) if well_formed => {
                self.logged
                    .lock()
                    .unwrap()
                    .push((e.to_string(), w.to_string()));
                (200, br#"{"responseContext":{}}"#.to_vec())
            }
            _ => (400, format!("bad att/log request: {v}").into_bytes()),
        }
    }

    /// Whether a snapshot may be traded: when `eats` was handed out, only one that `/att/log`
    /// returned with an issued `eats`.
    fn logged_if_needed(&self, snapshot: &str) -> bool {
        let issued = self.issued_eats.lock().unwrap();
        if issued.is_empty() {
            return true;
        }
        self.logged
            .lock()
            .unwrap()
            .iter()
            .any(|(e, w)| w == snapshot && issued.contains(e))
    }

    pub fn create_response(&self, b: &Behaviour) -> Option<Vec<u8>> {
        let hash = self.named_hash(b);
        let arr = json!([
            "fake-message-id",
            [null, self.interpreter(b)],
            [null, format!("//www.google.com/js/th/{hash}.js")],
            hash,
            PROGRAM,
            GLOBAL_NAME,
            null,
            "[]"
        ]);
        match b.create {
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
    pub fn generate_it(&self, b: &Behaviour, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return (400, b"bad json".to_vec());
        };
        let snapshot = v[1]
            .as_str()
            .and_then(|s| s.strip_prefix('$'))
            .and_then(|s| STANDARD.decode(s).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut parts = snapshot
            .strip_prefix("fake-botguard:")
            .unwrap_or_default()
            .split(':');
        let program = parts.next().unwrap_or_default();
        let probe = parts.next().unwrap_or_default().to_string();
        let event_id = parts.next().unwrap_or_default();
        if v[0] != REQUEST_KEY || (program != PROGRAM && program != PROGRAM_TV) {
            return (400, format!("bad GenerateIT request: {v}").into_bytes());
        }
        // The web challenges are bound to the page's EVENT_ID; the TV client's is not.
        let unbound = b.require_event_id && program == PROGRAM && event_id != EVENT_ID;
        let trust = if b.distrust_next > 0 {
            Trust::Low
        } else if !b.grade_trust || probe == "high" {
            Trust::High
        } else {
            Trust::Low
        };
        if b.null_integrity_token
            || unbound
            || !self.logged_if_needed(v[1].as_str().unwrap_or_default())
        {
            return (
                200,
                serde_json::to_vec(&json!([null, 43200, null, "FAKEFALLBACKTOKEN0123456789"]))
                    .unwrap(),
            );
        }
        let it = self.integrity_token(b.it_ttl_secs, trust);
        (
            200,
            serde_json::to_vec(&json!([STANDARD.encode(it), b.it_ttl_secs, 100])).unwrap(),
        )
    }

    /// A signed integrity token: expiry (8 bytes), trust (1), nonce (7), signature (16).
    fn integrity_token(&self, ttl_secs: u64, trust: Trust) -> Vec<u8> {
        let mut it = Vec::new();
        it.extend_from_slice(&(now() + ttl_secs).to_be_bytes());
        it.push(match trust {
            Trust::Low => 0,
            Trust::High => 1,
        });
        let mut nonce = [0u8; 7];
        getrandom::fill(&mut nonce).unwrap();
        it.extend_from_slice(&nonce);
        let sig = self.sign(&it);
        it.extend_from_slice(&sig);
        it
    }

    /// A PO token for `binding` as a minter of this fake would make it, with the given trust:
    /// what a browser-grade source hands out, for tests that need one without a browser.
    pub fn signed_token(&self, binding: &str, trust: Trust) -> String {
        let it = self.integrity_token(43_200, trust);
        let mut payload = Vec::new();
        payload.push(it.len() as u8);
        payload.extend_from_slice(&it);
        payload.push(binding.len() as u8);
        payload.extend_from_slice(binding.as_bytes());
        payload.extend_from_slice(&[1, 2, 3, 4]);
        let mut tok = vec![0x32, payload.len() as u8];
        tok.extend(payload);
        URL_SAFE.encode(tok)
    }

    /// The trust of a token that verifies for `binding` (`None`: it does not verify).
    pub fn trust(&self, token: &str, binding: &str) -> Option<Trust> {
        self.inspect(token, binding).ok()
    }

    /// Checks a minted PO token: field 6, a valid unexpired integrity token, the binding.
    pub fn verify(&self, token: &str, binding: &str) -> Verdict {
        match self.inspect(token, binding) {
            Ok(_) => Verdict::Valid,
            Err(why) => Verdict::Invalid(why),
        }
    }

    fn inspect(&self, token: &str, binding: &str) -> Result<Trust, String> {
        let verdict = self.check(token, binding);
        match verdict {
            Ok(trust) => Ok(trust),
            Err(Verdict::Invalid(why)) => Err(why),
            Err(Verdict::Valid) => unreachable!("a failed check has a reason"),
        }
    }

    fn check(&self, token: &str, binding: &str) -> Result<Trust, Verdict> {
        let text = percent_encoding::percent_decode_str(token)
            .decode_utf8_lossy()
            .into_owned();
        let Ok(bytes) = URL_SAFE.decode(text.replace('+', "-").replace('/', "_")) else {
            return Err(Verdict::Invalid("not base64url".into()));
        };
        let mut pos = 0;
        if bytes.first() != Some(&0x32) {
            return Err(Verdict::Invalid("not field 6".into()));
        }
        pos += 1;
        let Some(len) = read_varint(&bytes, &mut pos) else {
            return Err(Verdict::Invalid("bad length".into()));
        };
        if pos + len != bytes.len() {
            return Err(Verdict::Invalid("length mismatch".into()));
        }
        let Some(it_len) = read_varint(&bytes, &mut pos) else {
            return Err(Verdict::Invalid("bad IT length".into()));
        };
        let Some(it) = bytes.get(pos..pos + it_len) else {
            return Err(Verdict::Invalid("short IT".into()));
        };
        pos += it_len;
        if it.len() != 32 || self.sign(&it[..16]) != it[16..32] {
            return Err(Verdict::Invalid(
                "integrity token not signed by this GenerateIT".into(),
            ));
        }
        let exp = u64::from_be_bytes(it[..8].try_into().unwrap());
        if exp <= now() {
            return Err(Verdict::Invalid("integrity token expired".into()));
        }
        let Some(b_len) = read_varint(&bytes, &mut pos) else {
            return Err(Verdict::Invalid("bad binding length".into()));
        };
        let Some(b) = bytes.get(pos..pos + b_len) else {
            return Err(Verdict::Invalid("short binding".into()));
        };
        if b != binding.as_bytes() {
            return Err(Verdict::Invalid(format!(
                "bound to {:?}, expected {binding:?}",
                String::from_utf8_lossy(b)
            )));
        }
        Ok(if it[8] == 1 { Trust::High } else { Trust::Low })
    }
}

/// BotGuard's own endpoints: `/att/get`, WAA `Create` and `GenerateIT` (on www.youtube.com and
/// on jnn-pa.googleapis.com) and the interpreter script.
pub(super) fn route(state: &FakeState, req: &FakeRequest) -> Option<Reply> {
    let (host, path) = (req.host.as_str(), req.path.as_str());
    let waa = |m: &str| {
        (host == "www.youtube.com" && path == format!("/api/jnn/v1/{m}"))
            || (host == "jnn-pa.googleapis.com"
                && path == format!("/$rpc/google.internal.waa.v1.Waa/{m}"))
    };
    let bg = &state.bg;
    let b = state.behaviour();
    if host == "www.youtube.com" && path == "/youtubei/v1/att/log" {
        state.count(|c| c.att_log += 1);
        let (status, body) = bg.att_log(&req.body);
        return Some(status_body(status, body, "application/json"));
    }
    if host == "www.youtube.com" && path == "/youtubei/v1/att/get" {
        state.count(|c| c.att_get += 1);
        if !b.att_get {
            return Some(status_body(404, "no att/get here", "text/plain"));
        }
        let tv = serde_json::from_slice::<Value>(&req.body).is_ok_and(|v| {
            v["context"]["client"]["clientName"]
                .as_str()
                .is_some_and(|n| n.starts_with("TVHTML5"))
        });
        return Some(status_body(
            200,
            serde_json::to_vec(&bg.att_get_response(&b, tv)).unwrap(),
            "application/json",
        ));
    }
    if waa("Create") {
        state.count(|c| c.create += 1);
        return Some(match bg.create_response(&b) {
            Some(body) => status_body(200, body, "application/json+protobuf"),
            None => status_body(404, "no Create here", "text/plain"),
        });
    }
    if waa("GenerateIT") {
        state.count(|c| c.generate_it += 1);
        if b.distrust_next > 0 {
            let mut live = state.behaviour.lock().unwrap();
            live.distrust_next = live.distrust_next.saturating_sub(1);
            drop(live);
            state.count(|c| c.distrusted += 1);
        }
        let (status, body) = bg.generate_it(&b, &req.body);
        return Some(status_body(status, body, "application/json+protobuf"));
    }
    if host == "www.google.com" && path.starts_with("/js/th/") {
        state.count(|c| c.interpreter += 1);
        return Some(status_body(200, bg.interpreter(&b), "text/javascript"));
    }
    None
}
