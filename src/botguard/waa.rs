//! The minter's transport, the WAA and InnerTube calls as the clients make them: the YouTube
//! page (inline challenge, ytcfg, eacrToken), InnerTube `/att/get` (web or TV client) and
//! `/att/log` (returning an answer's `eats`), WAA `Create`, the interpreter download (checked
//! against its hash, cached by hash) and `GenerateIT`, whose answer [`parse_generate_it`] reads.
//! Which request comes next is [`super::plan`]'s decision; what a challenge is and how pages are
//! read live in [`super::challenge`] and [`crate::learn::page`]; the minter's lifecycle in
//! [`super::minter`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

pub use super::settings::{ChallengeSource, WaaEndpoint};

use super::challenge::{
    Attestation, Challenge, ChallengeError, challenge_expiry, interpreter_hash,
};
use super::error::{BotGuardError, Step};
use super::plan;
use super::settings::BotGuardSettings;
use crate::learn::page::Page;
use crate::upstream::{FetchError, HttpClient};

/// The request key the web client sends as the first element of every WAA body.
pub const REQUEST_KEY: &str = "O43z0dpjhgX20SCx4KAo";
/// The public WAA API key (`x-google-api-key` of the web client's WAA calls).
pub const WAA_API_KEY: &str = "AIzaSyDyT5W0Jh49F30Pqqtyfdf7pDLFKLJoAnw";
/// How long an integrity token lives when GenerateIT does not say.
const DEFAULT_IT_TTL: u64 = 43_200;
/// The longest lifetime taken from GenerateIT, seconds.
const MAX_IT_TTL: u64 = 7 * 24 * 3600;

/// A challenge plus what came with it.
pub struct Obtained {
    pub challenge: Challenge,
    pub source: ChallengeSource,
    /// The page fetched on the way (its ytcfg: EVENT_ID, visitor data), even when its own
    /// challenge was not the one used.
    pub page: Option<Page>,
    /// The `/att/get` answer's `challenge` text: echoed by `/att/log`; its `c`/`t` bound the
    /// minter's life.
    pub text: Option<String>,
    /// The answer's `eats`, returned through `/att/log`.
    pub eats: Option<String>,
    /// The InnerTube context the challenge was asked with (what `/att/log` sends back).
    pub context: Value,
}

impl Obtained {
    /// A challenge the caller supplied (the provider API's `challenge`): nothing came with it.
    pub fn supplied(challenge: Challenge) -> Self {
        Obtained {
            challenge,
            source: ChallengeSource::Supplied,
            page: None,
            text: None,
            eats: None,
            context: default_context(),
        }
    }

    /// How long a minter built from this challenge and an integrity token of `it_ttl_secs` is
    /// used (see [`plan::minter_life`]).
    pub fn minter_life(&self, it_ttl_secs: u64) -> Duration {
        let expires = self.text.as_deref().and_then(challenge_expiry);
        plan::minter_life(it_ttl_secs, expires, plan::unix_now())
    }

    /// The page's ytcfg as JSON for the VM's `yt.config_` (the page-bound challenges are checked
    /// against its `EVENT_ID`); none for the TV challenge, which no web page goes with.
    pub fn vm_ytcfg_json(&self) -> Option<String> {
        if self.source == ChallengeSource::Tv {
            return None;
        }
        self.page
            .as_ref()
            .map(|p| serde_json::to_string(&p.ytcfg).expect("ytcfg serialises"))
    }
}

/// The web client's InnerTube context: the page's own when a page was read.
fn web_context(page: Option<&Page>) -> Value {
    page.and_then(|p| p.ytcfg.get("INNERTUBE_CONTEXT").cloned())
        .unwrap_or_else(default_context)
}

fn default_context() -> Value {
    let client = crate::innertube::DEFAULT_CLIENT;
    crate::innertube::context(client, crate::innertube::client_version(client))
}

/// The TV client's InnerTube context.
fn tv_context() -> Value {
    crate::innertube::context(TV_CLIENT, crate::innertube::client_version(TV_CLIENT))
}

/// The client whose `/att/get` challenge is not bound to a page's EVENT_ID.
pub const TV_CLIENT: &str = "TVHTML5";

/// Talks to YouTube and WAA for one minter, through its egress.
pub struct Waa {
    http: HttpClient,
    endpoint: WaaEndpoint,
    user_agent: String,
    challenge_order: Vec<ChallengeSource>,
    /// Interpreter scripts by hash, each verified (they change rarely; every renewal needs
    /// one). An inline script whose hash is here may run.
    interpreters: Mutex<HashMap<String, String>>,
}

impl Waa {
    pub fn new(http: HttpClient, settings: &BotGuardSettings) -> Self {
        Waa {
            http,
            endpoint: settings.endpoint,
            user_agent: settings.user_agent.clone(),
            challenge_order: settings.challenge_order.clone(),
            interpreters: Mutex::new(HashMap::new()),
        }
    }

    fn ua_headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("user-agent", self.user_agent.as_str()),
            ("accept-language", "en-US,en;q=0.9"),
        ]
    }

    /// A challenge from the sources in `challenge_order`, each next one chosen by
    /// [`plan::next_attempt`] from what the earlier ones gave: the page's own challenge when
    /// [`plan::judge_page`] finds it usable, else `/att/get` seeded with the page's eacrToken,
    /// the TV client's `/att/get`, WAA `Create`. The page, when fetched, is kept whatever its
    /// challenge (the VM's `yt.config_`, att/get's InnerTube context, visitor data).
    pub async fn obtain_challenge(&self) -> Result<Obtained, BotGuardError> {
        let mut errors = Vec::new();
        let mut page: Option<Page> = None;
        let mut progress = plan::Progress::default();
        while let Some(attempt) = plan::next_attempt(&self.challenge_order, &progress) {
            progress.tried.push(attempt.source());
            let r = match &attempt {
                plan::Attempt::Page => match self.fetch_page().await {
                    Ok(p) => {
                        let verdict = plan::judge_page(&p, plan::unix_now());
                        progress.page = Some(plan::PageSeen::of(&p));
                        let context = web_context(Some(&p));
                        page = Some(p);
                        page_attestation(verdict).map(|a| (a, context))
                    }
                    Err(e) => Err(e),
                },
                plan::Attempt::AttGet { eacr_token } => {
                    let context = web_context(page.as_ref());
                    self.fetch_att_get(&context, eacr_token.as_deref(), Step::AttGet)
                        .await
                        .map(|a| (a, context))
                }
                plan::Attempt::Tv => {
                    let context = tv_context();
                    self.fetch_att_get(&context, None, Step::AttGetTv)
                        .await
                        .map(|a| (a, context))
                }
                plan::Attempt::Create => self.fetch_create().await.map(|challenge| {
                    let a = Attestation {
                        challenge,
                        text: None,
                        eats: None,
                    };
                    (a, default_context())
                }),
            };
            match r {
                Ok((a, context)) => {
                    return Ok(Obtained {
                        challenge: a.challenge,
                        source: attempt.source(),
                        page,
                        text: a.text,
                        eats: a.eats,
                        context,
                    });
                }
                Err(e) => {
                    // The attempt itself may hold the page's eacrToken: only its source is logged.
                    tracing::debug!(source = ?attempt.source(), error = %e, "challenge source failed");
                    errors.push(e);
                }
            }
        }
        Err(BotGuardError::NoChallenge(errors))
    }

    async fn fetch_page(&self) -> Result<Page, BotGuardError> {
        let mut headers = self.ua_headers();
        headers.push(("accept", "text/html"));
        let res = self
            .http
            .send(Method::GET, "https://www.youtube.com/", &headers, None)
            .await
            .map_err(transport(Step::Page))?;
        check_status(Step::Page, res.status)?;
        let page = Page::parse(&String::from_utf8_lossy(&res.body));
        if page.ytcfg.is_empty() {
            return Err(BotGuardError::Parse {
                step: Step::Page,
                what: ChallengeError::NotInPage("ytcfg.set({...})").to_string(),
            });
        }
        Ok(page)
    }

    /// `/att/get` with `context` (the web client's or the TV client's), as the clients send it:
    /// WAA headers, the InnerTube client headers, and the page's eacrToken when given.
    async fn fetch_att_get(
        &self,
        context: &Value,
        eacr_token: Option<&str>,
        step: Step,
    ) -> Result<Attestation, BotGuardError> {
        let mut body = json!({"context": context, "engagementType": plan::ENGAGEMENT_TYPE});
        if let Some(t) = eacr_token {
            body["eacrToken"] = Value::String(t.to_string());
        }
        let client = &context["client"];
        let name = client["clientName"].as_str().unwrap_or_default();
        let version = client["clientVersion"].as_str().unwrap_or_default();
        let visitor = client["visitorData"].as_str().unwrap_or_default();
        let mut headers = self.waa_headers();
        headers.retain(|(k, _)| *k != "content-type");
        headers.push(("content-type", "application/json"));
        if let Some(id) = client_name_id(name) {
            headers.push(("x-youtube-client-name", id));
            headers.push(("x-youtube-client-version", version));
        }
        if !visitor.is_empty() {
            headers.push(("x-goog-visitor-id", visitor));
        }
        let res = self
            .http
            .send(
                Method::POST,
                "https://www.youtube.com/youtubei/v1/att/get?prettyPrint=false",
                &headers,
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await
            .map_err(transport(step))?;
        check_status(step, res.status)?;
        Attestation::from_att_get(&res.body).map_err(|e| BotGuardError::Parse {
            step,
            what: e.to_string(),
        })
    }

    /// Returns the answer's `eats` through `/att/log` after the VM ran its challenge, as the
    /// clients do ([`plan::att_log_body`]); nothing when the answer carried none. Returns
    /// whether a log was sent.
    pub async fn log_attestation(
        &self,
        o: &Obtained,
        web_response: &str,
    ) -> Result<bool, BotGuardError> {
        let Some(body) = plan::att_log_body(
            &o.context,
            o.text.as_deref(),
            o.eats.as_deref(),
            web_response,
        ) else {
            return Ok(false);
        };
        let mut headers = self.ua_headers();
        headers.push(("content-type", "application/json"));
        let res = self
            .http
            .send(
                Method::POST,
                "https://www.youtube.com/youtubei/v1/att/log?prettyPrint=false",
                &headers,
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await
            .map_err(transport(Step::AttLog))?;
        check_status(Step::AttLog, res.status)?;
        Ok(true)
    }

    async fn fetch_create(&self) -> Result<Challenge, BotGuardError> {
        let res = self
            .http
            .send(
                Method::POST,
                &self.endpoint.url("Create"),
                &self.waa_headers(),
                Some(serde_json::to_vec(&json!([REQUEST_KEY])).expect("json")),
            )
            .await
            .map_err(transport(Step::Create))?;
        check_status(Step::Create, res.status)?;
        Challenge::from_create(&res.body).map_err(|e| BotGuardError::Parse {
            step: Step::Create,
            what: e.to_string(),
        })
    }

    fn waa_headers(&self) -> Vec<(&str, &str)> {
        let mut h = self.ua_headers();
        h.extend([
            ("content-type", "application/json+protobuf"),
            ("x-goog-api-key", WAA_API_KEY),
            ("x-user-agent", "grpc-web-javascript/0.1"),
        ]);
        h
    }

    /// The interpreter script, as [`plan::interpreter_plan`] allows: inline when its hash is
    /// the stated or a known one, else downloaded (cached by hash) and verified against the
    /// hash. A script that cannot be verified never runs.
    pub async fn interpreter(&self, c: &Challenge) -> Result<String, BotGuardError> {
        let plan = {
            let known = self.interpreters.lock().expect("interpreters lock");
            plan::interpreter_plan(c, |h| known.contains_key(h))
        };
        let url = match plan {
            plan::InterpreterPlan::Inline => {
                let js = c.interpreter_js.clone().expect("an inline interpreter");
                self.interpreters
                    .lock()
                    .expect("interpreters lock")
                    .insert(interpreter_hash(js.as_bytes()), js.clone());
                return Ok(js);
            }
            plan::InterpreterPlan::Known => {
                let known = self.interpreters.lock().expect("interpreters lock");
                return Ok(known[&c.interpreter_hash].clone());
            }
            plan::InterpreterPlan::Refuse(e) => return Err(interpreter_mismatch(e)),
            plan::InterpreterPlan::Fetch(url) => url,
        };
        let res = self
            .http
            .send(Method::GET, &url, &self.ua_headers(), None)
            .await
            .map_err(transport(Step::Interpreter))?;
        check_status(Step::Interpreter, res.status)?;
        c.verify_interpreter(&res.body)
            .map_err(interpreter_mismatch)?;
        let js = String::from_utf8(res.body.to_vec()).map_err(|_| BotGuardError::Parse {
            step: Step::Interpreter,
            what: "interpreter is not UTF-8".into(),
        })?;
        self.interpreters
            .lock()
            .expect("interpreters lock")
            .insert(c.interpreter_hash.clone(), js.clone());
        Ok(js)
    }

    /// Trades a VM snapshot for an integrity token and its lifetime in seconds.
    pub async fn generate_it(
        &self,
        botguard_response: &str,
    ) -> Result<(String, u64), BotGuardError> {
        let res = self
            .http
            .send(
                Method::POST,
                &self.endpoint.url("GenerateIT"),
                &self.waa_headers(),
                Some(serde_json::to_vec(&json!([REQUEST_KEY, botguard_response])).expect("json")),
            )
            .await
            .map_err(transport(Step::GenerateIt))?;
        check_status(Step::GenerateIt, res.status)?;
        parse_generate_it(&res.body)
    }
}

/// What the page's verdict leaves: its challenge, or why it is not used (the next source is).
fn page_attestation(verdict: plan::PageVerdict) -> Result<Attestation, BotGuardError> {
    let why = match verdict {
        plan::PageVerdict::Usable(a) => return Ok(*a),
        plan::PageVerdict::Stub => {
            tracing::info!(
                "the page inlines a no-op BotGuard interpreter; asking att/get with its eacrToken"
            );
            "the page inlines a no-op interpreter".to_string()
        }
        plan::PageVerdict::Stale => "the page's challenge has expired".into(),
        plan::PageVerdict::Absent => "page has no inline challenge".into(),
        plan::PageVerdict::Malformed(what) => what,
    };
    Err(BotGuardError::Parse {
        step: Step::Page,
        what: why,
    })
}

/// The `x-youtube-client-name` number of the clients whose `/att/get` the minter asks.
fn client_name_id(name: &str) -> Option<&'static str> {
    match name {
        "WEB" => Some("1"),
        "MWEB" => Some("2"),
        "TVHTML5" => Some("7"),
        _ => None,
    }
}

/// Wraps a failed request of `step`.
fn transport(step: Step) -> impl FnOnce(FetchError) -> BotGuardError {
    move |cause| BotGuardError::Transport { step, cause }
}

/// An error status is the upstream's answer, kept as a number.
fn check_status(step: Step, status: http::StatusCode) -> Result<(), BotGuardError> {
    if status.is_success() {
        return Ok(());
    }
    Err(BotGuardError::Status {
        step,
        status: status.as_u16(),
    })
}

fn interpreter_mismatch(e: ChallengeError) -> BotGuardError {
    BotGuardError::Parse {
        step: Step::Interpreter,
        what: e.to_string(),
    }
}

/// `[integrityToken, estimatedTtlSecs, mintRefreshThreshold, websafeFallbackToken]`; real
/// answers may stop after the third element. A null token is a failure that carries a fallback.
pub fn parse_generate_it(body: &[u8]) -> Result<(String, u64), BotGuardError> {
    let parse = |what: String| BotGuardError::Parse {
        step: Step::GenerateIt,
        what,
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| parse(format!("not JSON: {e}")))?;
    let a = v.as_array().ok_or_else(|| parse("not an array".into()))?;
    // Capped: the lifetime sets deadlines, and no integrity token lives for days.
    let ttl = a
        .get(1)
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_IT_TTL)
        .min(MAX_IT_TTL);
    match a.first() {
        Some(Value::String(t)) if !t.is_empty() => Ok((t.clone(), ttl)),
        _ => {
            let fallback = a
                .get(3)
                .and_then(Value::as_str)
                .map(crate::redact::redact)
                .unwrap_or_else(|| "none".into());
            tracing::warn!(%fallback, "GenerateIT answered without an integrity token");
            Err(BotGuardError::EmptyIntegrityToken(fallback))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_it_answers_with_three_or_four_elements_parse() {
        let (t, ttl) = parse_generate_it(br#"["x6wb3t+/=",43200,100]"#).unwrap();
        assert_eq!((t.as_str(), ttl), ("x6wb3t+/=", 43200));
        let (_, ttl) = parse_generate_it(br#"["abc",3600,null,"fb"]"#).unwrap();
        assert_eq!(ttl, 3600);
    }

    #[test]
    fn a_null_integrity_token_is_an_error_naming_the_fallback_redacted() {
        let e = parse_generate_it(br#"[null,43200,null,"FALLBACKTOKENVALUE1234"]"#).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, BotGuardError::EmptyIntegrityToken(_)));
        assert!(
            s.contains("FALLBA") && !s.contains("FALLBACKTOKENVALUE1234"),
            "{s}"
        );
        assert!(parse_generate_it(b"{}").is_err());
        assert!(parse_generate_it(b"<html>").is_err());
    }

    #[test]
    fn an_absurd_lifetime_is_capped_and_an_error_status_is_kept_as_a_number() {
        let body = format!(r#"["abc",{}]"#, u64::MAX);
        let (_, ttl) = parse_generate_it(body.as_bytes()).unwrap();
        assert_eq!(ttl, MAX_IT_TTL);
        let e = check_status(Step::GenerateIt, http::StatusCode::SERVICE_UNAVAILABLE).unwrap_err();
        assert_eq!(e.upstream_status(), Some(503));
        assert!(e.is_refusal());
        assert_eq!(e.to_string(), "GenerateIT: HTTP 503");
        assert!(check_status(Step::GenerateIt, http::StatusCode::OK).is_ok());
        assert!(!parse_generate_it(b"<html>").unwrap_err().is_refusal());
    }

    #[test]
    fn the_real_generate_it_fixture_parses() {
        let Some(dir) = crate::testutil::fixtures_dir() else {
            return;
        };
        let body = std::fs::read(dir.join("botguard/generateIT_response.json")).unwrap();
        let (it, ttl) = parse_generate_it(&body).unwrap();
        assert_eq!(ttl, 43200);
        assert_eq!(it.len(), 92);
    }
}
