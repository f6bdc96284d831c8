//! The minter's transport, the WAA and InnerTube calls as the web client makes them: the
//! YouTube page (inline challenge and ytcfg), InnerTube `/att/get`, WAA `Create`, the
//! interpreter download (checked against its hash, cached by hash) and `GenerateIT`, whose
//! answer [`parse_generate_it`] reads. What a challenge is and how pages are read live in
//! [`super::challenge`] and [`crate::learn::page`]; the minter's lifecycle in [`super::minter`].

use std::collections::HashMap;
use std::sync::Mutex;

use http::Method;
use serde_json::{Value, json};

pub use super::settings::{ChallengeSource, WaaEndpoint};

use super::challenge::{Challenge, ChallengeError};
use super::error::{BotGuardError, Step};
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

/// A challenge plus the page it came with.
pub struct Obtained {
    pub challenge: Challenge,
    pub source: ChallengeSource,
    pub page: Option<Page>,
}

/// Talks to YouTube and WAA for one minter, through its egress.
pub struct Waa {
    http: HttpClient,
    endpoint: WaaEndpoint,
    user_agent: String,
    challenge_order: Vec<ChallengeSource>,
    /// Interpreter scripts by hash (they change rarely; every renewal needs one).
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

    /// A challenge from the first source in `challenge_order` that gives one; the page, when
    /// fetched, is kept even if its inline challenge is missing or malformed (att/get reads
    /// its InnerTube context).
    pub async fn obtain_challenge(&self) -> Result<Obtained, BotGuardError> {
        let mut errors = Vec::new();
        let mut page: Option<Page> = None;
        for source in &self.challenge_order {
            let r = match source {
                ChallengeSource::Page => match self.fetch_page().await {
                    Ok(p) => {
                        let c = super::challenge::inline_challenge(&p).map_err(|e| {
                            BotGuardError::Parse {
                                step: Step::Page,
                                what: e.to_string(),
                            }
                        });
                        page = Some(p);
                        c
                    }
                    Err(e) => Err(e),
                },
                ChallengeSource::AttGet => self.fetch_att_get(page.as_ref()).await.map(Some),
                ChallengeSource::Create => self.fetch_create().await.map(Some),
                ChallengeSource::Supplied => continue,
            };
            match r {
                Ok(Some(challenge)) => {
                    return Ok(Obtained {
                        challenge,
                        source: *source,
                        page,
                    });
                }
                Ok(None) => errors.push(BotGuardError::Parse {
                    step: Step::Page,
                    what: "page has no inline challenge".into(),
                }),
                Err(e) => {
                    tracing::debug!(?source, error = %e, "challenge source failed");
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

    async fn fetch_att_get(&self, page: Option<&Page>) -> Result<Challenge, BotGuardError> {
        let context = page
            .and_then(|p| p.ytcfg.get("INNERTUBE_CONTEXT").cloned())
            .unwrap_or_else(|| {
                let client = crate::innertube::DEFAULT_CLIENT;
                crate::innertube::context(client, crate::innertube::client_version(client))
            });
        let mut body = json!({"context": context, "engagementType": "ENGAGEMENT_TYPE_UNBOUND"});
        if let Some(t) = page.and_then(Page::eacr_token) {
            body["eacrToken"] = Value::String(t.to_string());
        }
        let mut headers = self.waa_headers();
        headers.retain(|(k, _)| *k != "content-type");
        headers.push(("content-type", "application/json"));
        let res = self
            .http
            .send(
                Method::POST,
                "https://www.youtube.com/youtubei/v1/att/get?prettyPrint=false",
                &headers,
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await
            .map_err(transport(Step::AttGet))?;
        check_status(Step::AttGet, res.status)?;
        Challenge::from_att_get(&res.body).map_err(|e| BotGuardError::Parse {
            step: Step::AttGet,
            what: e.to_string(),
        })
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

    /// The interpreter script, inline or fetched (cached by hash), verified against the hash.
    pub async fn interpreter(&self, c: &Challenge) -> Result<String, BotGuardError> {
        if let Some(js) = &c.interpreter_js {
            c.verify_interpreter(js.as_bytes())
                .map_err(interpreter_mismatch)?;
            return Ok(js.clone());
        }
        if let Some(js) = self
            .interpreters
            .lock()
            .expect("interpreters lock")
            .get(&c.interpreter_hash)
        {
            return Ok(js.clone());
        }
        let url = c
            .interpreter_url
            .as_deref()
            .ok_or_else(|| BotGuardError::Parse {
                step: Step::Interpreter,
                what: "challenge has neither script nor URL".into(),
            })?;
        let res = self
            .http
            .send(Method::GET, url, &self.ua_headers(), None)
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
