//! The minting flow, as the web client runs it: obtain a challenge (the YouTube page's inline
//! `ytAtN`, then InnerTube `/att/get`, then WAA `Create`), fetch and verify the interpreter, run
//! the VM to a snapshot, trade the snapshot for an integrity token at `GenerateIT`, build the
//! minter, and mint per binding. [`BotGuard`] keeps one warm minter, renews it before its
//! integrity token expires (in the background, requests keep using the old one), and warms a
//! new one on demand when there is none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use serde_json::{Value, json};

use super::challenge::{Challenge, ChallengeError, PageData, parse_page};
use super::vm::{LoadRequest, VmError, VmHandle, VmLimits};
use crate::token::Token;
use crate::upstream::{FetchError, HttpClient};

/// The request key the web client sends as the first element of every WAA body.
pub const REQUEST_KEY: &str = "O43z0dpjhgX20SCx4KAo";
/// The public WAA API key (`x-google-api-key` of the web client's WAA calls).
pub const WAA_API_KEY: &str = "AIzaSyDyT5W0Jh49F30Pqqtyfdf7pDLFKLJoAnw";
/// BotGuard requires a WebKit user agent; the same one is used for HTTP and inside the VM.
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
/// Renew this long before the integrity token's stated end (at most).
const RENEW_MARGIN: Duration = Duration::from_secs(600);
const DEFAULT_IT_TTL: u64 = 43_200;

/// Where a challenge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeSource {
    /// The YouTube home page (`ytcfg` + inline `ytAtN`), the web client's own source.
    Page,
    /// InnerTube `POST /youtubei/v1/att/get`.
    AttGet,
    /// WAA `Create`.
    Create,
    /// Supplied by the caller (the provider API's `challenge` field).
    Supplied,
}

impl ChallengeSource {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "page" => Some(ChallengeSource::Page),
            "att_get" => Some(ChallengeSource::AttGet),
            "create" => Some(ChallengeSource::Create),
            _ => None,
        }
    }
}

/// Which WAA host serves `Create` and `GenerateIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaaEndpoint {
    /// `https://www.youtube.com/api/jnn/v1/<method>` (what the web player uses).
    YouTube,
    /// `https://jnn-pa.googleapis.com/$rpc/google.internal.waa.v1.Waa/<method>`.
    Googleapis,
}

impl WaaEndpoint {
    pub fn url(self, method: &str) -> String {
        match self {
            WaaEndpoint::YouTube => format!("https://www.youtube.com/api/jnn/v1/{method}"),
            WaaEndpoint::Googleapis => {
                format!("https://jnn-pa.googleapis.com/$rpc/google.internal.waa.v1.Waa/{method}")
            }
        }
    }
}

/// Settings of the built-in minter.
#[derive(Debug, Clone)]
pub struct BotGuardSettings {
    pub challenge_order: Vec<ChallengeSource>,
    pub endpoint: WaaEndpoint,
    pub user_agent: String,
    pub vm: VmLimits,
    /// How long a request waits for the first minter.
    pub warmup_wait: Duration,
}

impl Default for BotGuardSettings {
    fn default() -> Self {
        BotGuardSettings {
            challenge_order: vec![
                ChallengeSource::Page,
                ChallengeSource::AttGet,
                ChallengeSource::Create,
            ],
            endpoint: WaaEndpoint::YouTube,
            user_agent: DEFAULT_USER_AGENT.into(),
            vm: VmLimits::default(),
            warmup_wait: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BotGuardError {
    #[error("could not get a BotGuard challenge: {0}")]
    NoChallenge(String),
    #[error("interpreter: {0}")]
    Interpreter(String),
    #[error("BotGuard VM: {0}")]
    Vm(#[from] VmError),
    #[error("the VM produced no minter (webPoSignalOutput[0] missing); snapshot began {0:?}")]
    NoMinterFactory(String),
    #[error("GenerateIT: {0}")]
    GenerateIt(String),
    #[error("GenerateIT returned no integrity token (fallback token: {0})")]
    EmptyIntegrityToken(String),
    #[error("minted token is malformed: {0}")]
    BadToken(String),
    #[error("no minter ready within {0:?}")]
    NotReady(Duration),
}

impl From<FetchError> for BotGuardError {
    fn from(e: FetchError) -> Self {
        BotGuardError::NoChallenge(e.to_string())
    }
}

/// How long each step of the last warm-up took.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct WarmupTimings {
    pub challenge_ms: u64,
    pub interpreter_ms: u64,
    pub vm_load_ms: u64,
    pub snapshot_ms: u64,
    pub generate_it_ms: u64,
    pub minter_ms: u64,
}

/// A VM holding a minter built from one integrity token.
pub struct Minter {
    vm: VmHandle,
    pub source: ChallengeSource,
    pub created: Instant,
    /// When the integrity token stops being good (its TTL less a safety margin).
    pub usable_until: Instant,
    pub usable_until_wall: SystemTime,
    pub timings: WarmupTimings,
    /// `ytcfg` of the page the challenge came from (visitor data, rollout token), when known.
    pub page: Option<PageData>,
}

impl Minter {
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.usable_until
    }

    /// Mints for `binding` (the text exactly as given: video id, visitor data, DataSync ID).
    pub async fn mint(&self, binding: &str) -> Result<Token, BotGuardError> {
        let text = self.vm.mint(binding).await?;
        let token = Token::parse(&text).map_err(|e| BotGuardError::BadToken(e.to_string()))?;
        let bytes = token.bytes();
        // A WebPO token is a protobuf whose first field is 6, length-delimited.
        if bytes.first() != Some(&0x32) || bytes.len() < 3 {
            return Err(BotGuardError::BadToken(format!(
                "first byte {:#04x}, {} bytes",
                bytes.first().copied().unwrap_or(0),
                bytes.len()
            )));
        }
        Ok(token)
    }

    pub async fn memory_used_bytes(&self) -> u64 {
        self.vm
            .stats()
            .await
            .map(|s| s.memory_used_bytes)
            .unwrap_or(0)
    }
}

/// A challenge plus the page it came with.
struct Obtained {
    challenge: Challenge,
    source: ChallengeSource,
    page: Option<PageData>,
}

/// Counters for logs.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MintStats {
    pub warmups: u64,
    pub warmup_failures: u64,
    pub mints: u64,
    pub mint_micros_total: u64,
}

/// Keeps a warm minter and renews it.
pub struct BotGuard {
    http: HttpClient,
    settings: BotGuardSettings,
    current: Mutex<Option<Arc<Minter>>>,
    warming: tokio::sync::Mutex<()>,
    interpreters: Mutex<HashMap<String, String>>,
    stats: Mutex<MintStats>,
    /// Bumped by `invalidate`, so a renewal started before it does not install a stale minter.
    generation: std::sync::atomic::AtomicU64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl BotGuard {
    pub fn new(http: HttpClient, settings: BotGuardSettings) -> Arc<Self> {
        Arc::new(BotGuard {
            http,
            settings,
            current: Mutex::new(None),
            warming: tokio::sync::Mutex::new(()),
            interpreters: Mutex::new(HashMap::new()),
            stats: Mutex::new(MintStats::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &BotGuardSettings {
        &self.settings
    }

    pub fn stats(&self) -> MintStats {
        *self.stats.lock().expect("stats lock")
    }

    /// The current minter if it is still fresh.
    pub fn ready(&self) -> Option<Arc<Minter>> {
        self.current
            .lock()
            .expect("minter lock")
            .clone()
            .filter(|m| m.is_fresh())
    }

    /// Drops the current minter; the next mint warms a new one.
    pub fn invalidate(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.current.lock().expect("minter lock") = None;
    }

    /// A fresh minter: the current one, or a new one (one warm-up at a time; callers that
    /// arrive meanwhile wait for it), within `warmup_wait`.
    pub async fn minter(self: &Arc<Self>) -> Result<Arc<Minter>, BotGuardError> {
        if let Some(m) = self.ready() {
            return Ok(m);
        }
        let wait = self.settings.warmup_wait;
        match tokio::time::timeout(wait, self.warm(false)).await {
            Ok(r) => r,
            Err(_) => Err(BotGuardError::NotReady(wait)),
        }
    }

    /// Starts a warm-up in the background if none is ready (for cold-start fallbacks).
    pub fn warm_in_background(self: &Arc<Self>) {
        if self.ready().is_some() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.warm(false).await {
                tracing::warn!(error = %e, "background BotGuard warm-up failed");
            }
        });
    }

    /// Mints for `binding` with the current minter (warming one first if needed).
    pub async fn mint(
        self: &Arc<Self>,
        binding: &str,
    ) -> Result<(Token, SystemTime), BotGuardError> {
        let minter = self.minter().await?;
        let t = Instant::now();
        let token = minter.mint(binding).await?;
        let micros = t.elapsed().as_micros() as u64;
        {
            let mut s = self.stats.lock().expect("stats lock");
            s.mints += 1;
            s.mint_micros_total += micros;
        }
        tracing::debug!(mint_us = micros, token = %token.redacted(), "minted");
        Ok((token, minter.usable_until_wall))
    }

    /// Builds a new minter unless a fresh one appeared while waiting (`force` renews anyway).
    pub async fn warm(self: &Arc<Self>, force: bool) -> Result<Arc<Minter>, BotGuardError> {
        self.warm_from(None, force).await
    }

    /// Warms from a caller-supplied challenge (the provider API's `challenge`) instead of
    /// fetching one, unless a fresh minter exists.
    pub async fn warm_with(
        self: &Arc<Self>,
        challenge: Challenge,
    ) -> Result<Arc<Minter>, BotGuardError> {
        self.warm_from(
            Some(Obtained {
                challenge,
                source: ChallengeSource::Supplied,
                page: None,
            }),
            false,
        )
        .await
    }

    async fn warm_from(
        self: &Arc<Self>,
        supplied: Option<Obtained>,
        force: bool,
    ) -> Result<Arc<Minter>, BotGuardError> {
        let _one_at_a_time = self.warming.lock().await;
        if !force {
            if let Some(m) = self.ready() {
                return Ok(m);
            }
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        match self.build(supplied).await {
            Ok(m) => {
                let m = Arc::new(m);
                self.stats.lock().expect("stats lock").warmups += 1;
                if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
                    *self.current.lock().expect("minter lock") = Some(m.clone());
                }
                self.schedule_renewal(&m);
                Ok(m)
            }
            Err(e) => {
                self.stats.lock().expect("stats lock").warmup_failures += 1;
                Err(e)
            }
        }
    }

    fn schedule_renewal(self: &Arc<Self>, m: &Arc<Minter>) {
        let me = Arc::downgrade(self);
        let at = m.usable_until;
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut backoff = Duration::from_secs(30);
            loop {
                let Some(bg) = me.upgrade() else { return };
                match bg.warm(true).await {
                    Ok(_) => {
                        tracing::info!(
                            "BotGuard minter renewed before its integrity token expired"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "BotGuard renewal failed");
                    }
                }
                drop(bg);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1800));
            }
        });
    }

    async fn build(&self, supplied: Option<Obtained>) -> Result<Minter, BotGuardError> {
        let mut timings = WarmupTimings::default();
        let t = Instant::now();
        let obtained = match supplied {
            Some(o) => o,
            None => self.obtain_challenge().await?,
        };
        timings.challenge_ms = ms(t.elapsed());

        let t = Instant::now();
        let interpreter = self.interpreter(&obtained.challenge).await?;
        timings.interpreter_ms = ms(t.elapsed());

        let vm = VmHandle::spawn(self.settings.vm)?;
        let t = Instant::now();
        let ytcfg_json = obtained
            .page
            .as_ref()
            .map(|p| serde_json::to_string(&p.ytcfg).expect("ytcfg serialises"));
        vm.load(LoadRequest {
            interpreter_js: interpreter,
            program: obtained.challenge.program.clone(),
            global_name: obtained.challenge.global_name.clone(),
            ytcfg_json,
        })
        .await?;
        timings.vm_load_ms = ms(t.elapsed());

        let t = Instant::now();
        let (response, has_factory) = vm.snapshot().await?;
        timings.snapshot_ms = ms(t.elapsed());
        if !has_factory {
            return Err(BotGuardError::NoMinterFactory(
                response.chars().take(16).collect(),
            ));
        }

        let t = Instant::now();
        let (integrity_token, ttl) = self.generate_it(&response).await?;
        timings.generate_it_ms = ms(t.elapsed());

        let t = Instant::now();
        vm.create_minter(&integrity_token).await?;
        timings.minter_ms = ms(t.elapsed());

        // Renew ten minutes early, or a tenth of the lifetime early for short-lived tokens.
        let ttl_d = Duration::from_secs(ttl);
        let life = ttl_d.saturating_sub(RENEW_MARGIN.min(ttl_d / 10));
        tracing::info!(
            source = ?obtained.source,
            challenge_ms = timings.challenge_ms,
            interpreter_ms = timings.interpreter_ms,
            vm_setup_ms = timings.vm_load_ms,
            snapshot_ms = timings.snapshot_ms,
            generate_it_ms = timings.generate_it_ms,
            minter_ms = timings.minter_ms,
            ttl_secs = ttl,
            "BotGuard minter ready"
        );
        Ok(Minter {
            vm,
            source: obtained.source,
            created: Instant::now(),
            usable_until: Instant::now() + life,
            usable_until_wall: SystemTime::now() + life,
            timings,
            page: obtained.page,
        })
    }

    fn ua_headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("user-agent", self.settings.user_agent.as_str()),
            ("accept-language", "en-US,en;q=0.9"),
        ]
    }

    async fn obtain_challenge(&self) -> Result<Obtained, BotGuardError> {
        let mut errors = Vec::new();
        let mut page: Option<PageData> = None;
        for source in &self.settings.challenge_order {
            let r = match source {
                ChallengeSource::Page => self.fetch_page().await.map(|p| {
                    let c = p.challenge.clone();
                    page = Some(p);
                    c
                }),
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
                Ok(None) => errors.push(format!("{source:?}: page has no inline challenge")),
                Err(e) => {
                    tracing::debug!(?source, error = %e, "challenge source failed");
                    errors.push(format!("{source:?}: {e}"));
                }
            }
        }
        Err(BotGuardError::NoChallenge(errors.join("; ")))
    }

    async fn fetch_page(&self) -> Result<PageData, BotGuardError> {
        let mut headers = self.ua_headers();
        headers.push(("accept", "text/html"));
        let res = self
            .http
            .send(Method::GET, "https://www.youtube.com/", &headers, None)
            .await?;
        if !res.status.is_success() {
            return Err(BotGuardError::NoChallenge(format!(
                "home page: HTTP {}",
                res.status
            )));
        }
        let html = String::from_utf8_lossy(&res.body);
        parse_page(&html).map_err(|e: ChallengeError| BotGuardError::NoChallenge(e.to_string()))
    }

    async fn fetch_att_get(&self, page: Option<&PageData>) -> Result<Challenge, BotGuardError> {
        let context = page
            .and_then(|p| p.ytcfg.get("INNERTUBE_CONTEXT").cloned())
            .unwrap_or_else(
                || json!({"client": {"clientName": "WEB", "clientVersion": "2.20260227.01.00"}}),
            );
        let mut body = json!({"context": context, "engagementType": "ENGAGEMENT_TYPE_UNBOUND"});
        if let Some(t) = page.and_then(|p| p.eacr_token.as_deref()) {
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
            .await?;
        if !res.status.is_success() {
            return Err(BotGuardError::NoChallenge(format!(
                "att/get: HTTP {}",
                res.status
            )));
        }
        Challenge::from_att_get(&res.body).map_err(|e| BotGuardError::NoChallenge(e.to_string()))
    }

    async fn fetch_create(&self) -> Result<Challenge, BotGuardError> {
        let res = self
            .http
            .send(
                Method::POST,
                &self.settings.endpoint.url("Create"),
                &self.waa_headers(),
                Some(serde_json::to_vec(&json!([REQUEST_KEY])).expect("json")),
            )
            .await?;
        if !res.status.is_success() {
            return Err(BotGuardError::NoChallenge(format!(
                "Create: HTTP {}",
                res.status
            )));
        }
        Challenge::from_create(&res.body).map_err(|e| BotGuardError::NoChallenge(e.to_string()))
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
    async fn interpreter(&self, c: &Challenge) -> Result<String, BotGuardError> {
        if let Some(js) = &c.interpreter_js {
            c.verify_interpreter(js.as_bytes())
                .map_err(|e| BotGuardError::Interpreter(e.to_string()))?;
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
        let url = c.interpreter_url.as_deref().ok_or_else(|| {
            BotGuardError::Interpreter("challenge has neither script nor URL".into())
        })?;
        let res = self
            .http
            .send(Method::GET, url, &self.ua_headers(), None)
            .await
            .map_err(|e| BotGuardError::Interpreter(e.to_string()))?;
        if !res.status.is_success() {
            return Err(BotGuardError::Interpreter(format!(
                "{url}: HTTP {}",
                res.status
            )));
        }
        c.verify_interpreter(&res.body)
            .map_err(|e| BotGuardError::Interpreter(e.to_string()))?;
        let js = String::from_utf8(res.body.to_vec())
            .map_err(|_| BotGuardError::Interpreter("interpreter is not UTF-8".into()))?;
        self.interpreters
            .lock()
            .expect("interpreters lock")
            .insert(c.interpreter_hash.clone(), js.clone());
        Ok(js)
    }

    async fn generate_it(&self, botguard_response: &str) -> Result<(String, u64), BotGuardError> {
        let res = self
            .http
            .send(
                Method::POST,
                &self.settings.endpoint.url("GenerateIT"),
                &self.waa_headers(),
                Some(serde_json::to_vec(&json!([REQUEST_KEY, botguard_response])).expect("json")),
            )
            .await
            .map_err(|e| BotGuardError::GenerateIt(e.to_string()))?;
        if !res.status.is_success() {
            return Err(BotGuardError::GenerateIt(format!("HTTP {}", res.status)));
        }
        parse_generate_it(&res.body)
    }
}

/// `[integrityToken, estimatedTtlSecs, mintRefreshThreshold, websafeFallbackToken]`; real
/// answers may stop after the third element. A null token is a failure that carries a fallback.
pub fn parse_generate_it(body: &[u8]) -> Result<(String, u64), BotGuardError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| BotGuardError::GenerateIt(format!("not JSON: {e}")))?;
    let a = v
        .as_array()
        .ok_or_else(|| BotGuardError::GenerateIt("not an array".into()))?;
    let ttl = a.get(1).and_then(Value::as_u64).unwrap_or(DEFAULT_IT_TTL);
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
