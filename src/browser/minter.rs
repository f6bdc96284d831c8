//! The browser minter of one egress: one long-lived Chromium ([`BrowserProcess`]), one page at
//! `https://www.youtube.com/` holding a warm BotGuard minter, and the same flow as the QuickJS
//! minter (challenge from the page / att/get / Create and the interpreter via
//! [`crate::botguard::waa`]; load, snapshot, minter and mint by `flow.js` inside the page;
//! GenerateIT via `waa` again, with the browser's own user agent). Every request the page makes
//! is paused by CDP `Fetch` and fulfilled by the egress's [`HttpClient`]; the document itself is
//! a blank page served locally for that URL. A browser that crashes is restarted (and the mint
//! retried once); one that misses a deadline is treated as hung, killed and restarted on the
//! next mint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetUserAgentOverrideParams, UserAgentMetadata,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    EventRequestPaused, FailRequestParams, FulfillRequestParams, HeaderEntry,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use futures::StreamExt;
use serde_json::{Value, json};

use super::process::BrowserProcess;
use super::{BrowserError, BrowserSettings, headful_brands, headful_user_agent};
use crate::botguard::error::BotGuardError;
use crate::botguard::settings::BotGuardSettings;
use crate::botguard::waa::Waa;
use crate::token::Token;
use crate::upstream::HttpClient;

/// The page the minter runs in: YouTube's origin, as the web player's BotGuard sees it.
pub const PAGE_URL: &str = "https://www.youtube.com/";
/// Served for [`PAGE_URL`] instead of the real page (its scripts are not needed to mint).
const BLANK_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>YouTube</title></head><body></body></html>";
const FLOW_JS: &str = include_str!("../botguard/flow.js");

/// The page global through which the DevTools side reaches flow.js's operations: flow.js keeps
/// its state in a closure, and the host needs one handle between `Runtime.evaluate` calls. A
/// random, non-enumerable name per process, so no fixed marker is there for a page to look for.
static FLOW_GLOBAL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    format!(
        "_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
});

/// Installs flow.js under [`FLOW_GLOBAL`]: `load`, `snapshot`, `createMinter` and `mint` return
/// promises the evaluation awaits.
fn install_flow_js() -> String {
    format!(
        "Object.defineProperty(globalThis, {name}, {{ value: (() => {{ const I = {{}}; ({FLOW_JS})(I); \
         return {{ load: (...a) => I.call('load', ...a), snapshot: () => I.call('snapshot'), \
         hasMinterFactory: () => I.hasMinterFactory(), createMinter: (t) => I.call('createMinter', t), \
         mint: (b) => I.call('mint', b) }}; }})(), enumerable: false, configurable: true }}); undefined",
        name = json!(FLOW_GLOBAL.as_str()),
    )
}

fn flow_call(op: &str, args: &[&Value]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    format!(
        "globalThis[{}].{op}({})",
        json!(FLOW_GLOBAL.as_str()),
        args.join(", ")
    )
}
/// Cap on a body the page receives through interception (decoded).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

fn cdp(e: CdpError) -> BrowserError {
    match e {
        // Chrome answered with a protocol error: the browser is fine, the call was not.
        CdpError::Chrome(e) => BrowserError::Script(e.to_string()),
        e => BrowserError::Crashed(e.to_string()),
    }
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct BrowserStats {
    pub launches: u64,
    pub restarts: u64,
    pub warmups: u64,
    pub mints: u64,
    pub mint_micros_total: u64,
    /// Resident memory of the browser's process tree when last measured, bytes.
    pub rss_bytes: u64,
}

/// The identity the page presents: the browser's own, without the headless marker.
struct Identity {
    user_agent: String,
    platform: String,
    metadata: Option<UserAgentMetadata>,
}

/// A page with a minter built from one integrity token.
struct PageMinter {
    /// Which warm-up built it: a refused token names the minter to drop.
    id: u64,
    page: Page,
    usable_until: Instant,
    usable_until_wall: SystemTime,
    interceptor: tokio::task::JoinHandle<()>,
}

impl Drop for PageMinter {
    fn drop(&mut self) {
        self.interceptor.abort();
        let page = self.page.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = page.close().await;
            });
        }
    }
}

#[derive(Default)]
struct State {
    process: Option<BrowserProcess>,
    identity: Option<Identity>,
    minter: Option<PageMinter>,
}

impl State {
    /// Drops the minter and the browser (killing its process group).
    fn reset(&mut self) {
        self.minter = None;
        self.identity = None;
        self.process = None;
    }
}

/// One browser and its warm minter for one egress.
pub struct BrowserMinter {
    http: HttpClient,
    settings: BrowserSettings,
    flow: BotGuardSettings,
    state: tokio::sync::Mutex<State>,
    launches: AtomicU64,
    restarts: AtomicU64,
    warmups: AtomicU64,
    mints: AtomicU64,
    mint_micros: AtomicU64,
    rss: AtomicU64,
    pid: AtomicU64,
    profile: std::sync::Mutex<Option<std::path::PathBuf>>,
}

impl BrowserMinter {
    /// `flow` gives the challenge order and WAA endpoint; its user agent is replaced by the
    /// browser's own.
    pub fn new(http: HttpClient, settings: BrowserSettings, flow: BotGuardSettings) -> Self {
        BrowserMinter {
            http,
            settings,
            flow,
            state: tokio::sync::Mutex::new(State::default()),
            launches: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            warmups: AtomicU64::new(0),
            mints: AtomicU64::new(0),
            mint_micros: AtomicU64::new(0),
            rss: AtomicU64::new(0),
            pid: AtomicU64::new(0),
            profile: std::sync::Mutex::new(None),
        }
    }

    pub fn stats(&self) -> BrowserStats {
        BrowserStats {
            launches: self.launches.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            warmups: self.warmups.load(Ordering::Relaxed),
            mints: self.mints.load(Ordering::Relaxed),
            mint_micros_total: self.mint_micros.load(Ordering::Relaxed),
            rss_bytes: self.rss.load(Ordering::Relaxed),
        }
    }

    /// The running browser's pid (0: none running).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed) as u32
    }

    /// The profile directory of the browser started last (every one of its processes names it
    /// on its command line; removed when the browser closes).
    pub fn profile_dir(&self) -> Option<std::path::PathBuf> {
        self.profile.lock().expect("profile lock").clone()
    }

    /// Evaluates `expr` in the minter's page (warming one first), awaiting a promise; its value
    /// as JSON. For diagnostics and probes: it sees exactly what BotGuard sees.
    pub async fn evaluate(&self, expr: &str) -> Result<Value, BrowserError> {
        let mut st = self.state.lock().await;
        let r = async {
            self.ensure_minter(&mut st).await?;
            let page = &st.minter.as_ref().expect("ensured").page;
            let after = self.settings.mint_timeout;
            tokio::time::timeout(after, eval(page, expr.to_string()))
                .await
                .map_err(|_| BrowserError::Timeout {
                    op: "evaluate",
                    after,
                })?
        }
        .await;
        if let Err(e) = &r {
            if e.needs_restart() {
                self.after_failure(&mut st, e);
            }
        }
        r
    }

    /// Resident memory of the running browser's process tree now, bytes (0: none running).
    pub fn rss_bytes(&self) -> u64 {
        match self.pid() {
            0 => 0,
            pid => {
                let rss = super::process::tree_rss_bytes(pid);
                self.rss.store(rss, Ordering::Relaxed);
                rss
            }
        }
    }

    /// True while a fresh minter is warm (without waiting for a mint in progress).
    pub fn is_warm(&self) -> bool {
        self.state
            .try_lock()
            .map(|s| {
                s.minter
                    .as_ref()
                    .is_some_and(|m| Instant::now() < m.usable_until)
            })
            .unwrap_or(false)
    }

    /// Starts the browser and warms a minter unless one is warm.
    pub async fn warm(&self) -> Result<(), BrowserError> {
        let mut st = self.state.lock().await;
        let r = self.ensure_minter(&mut st).await;
        if let Err(e) = &r {
            self.after_failure(&mut st, e);
        }
        r
    }

    /// Drops the minter (the browser keeps running); the next mint warms a new one.
    pub async fn invalidate(&self) {
        self.state.lock().await.minter = None;
    }

    /// Drops the minter `id` if it is still the current one (its token was refused). Returns
    /// whether it was dropped.
    pub async fn invalidate_minter(&self, id: u64) -> bool {
        let mut st = self.state.lock().await;
        if st.minter.as_ref().is_some_and(|m| m.id == id) {
            st.minter = None;
            true
        } else {
            false
        }
    }

    /// Closes the browser (no process left behind).
    pub async fn shutdown(&self) {
        self.state.lock().await.reset();
        self.pid.store(0, Ordering::Relaxed);
    }

    /// Mints for `binding` (the text exactly as given). A crashed browser is restarted and the
    /// mint retried once; a hung one is killed and the error returned (the next mint restarts).
    pub async fn mint(&self, binding: &str) -> Result<(Token, SystemTime, u64), BrowserError> {
        let mut st = self.state.lock().await;
        let mut retried = false;
        loop {
            match self.mint_locked(&mut st, binding).await {
                Ok(out) => return Ok(out),
                Err(e) => {
                    self.after_failure(&mut st, &e);
                    if matches!(e, BrowserError::Crashed(_)) && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    fn after_failure(&self, st: &mut State, e: &BrowserError) {
        if e.needs_restart() {
            tracing::warn!(error = %e, "browser unusable; closing it, the next mint starts a new one");
            if st.process.is_some() {
                self.restarts.fetch_add(1, Ordering::Relaxed);
            }
            st.reset();
            self.pid.store(0, Ordering::Relaxed);
        } else {
            // The page may be in any state after a failed flow: start the next from a new one.
            st.minter = None;
        }
    }

    async fn mint_locked(
        &self,
        st: &mut State,
        binding: &str,
    ) -> Result<(Token, SystemTime, u64), BrowserError> {
        self.ensure_minter(st).await?;
        let live = st.process.as_ref().expect("ensured").liveness();
        let m = st.minter.as_ref().expect("ensured");
        let t = Instant::now();
        let after = self.settings.mint_timeout;
        let v = unless_died(
            &live,
            tokio::time::timeout(after, eval(&m.page, flow_call("mint", &[&json!(binding)]))),
        )
        .await?
        .map_err(|_| BrowserError::Timeout { op: "mint", after })??;
        let text = v
            .as_str()
            .ok_or_else(|| BrowserError::Script(format!("mint returned {v}")))?;
        let token = Token::parse(text)
            .map_err(|e| BrowserError::Flow(BotGuardError::BadToken(e.to_string())))?;
        let bytes = token.bytes();
        if bytes.first() != Some(&0x32) || bytes.len() < 3 {
            return Err(BrowserError::Flow(BotGuardError::BadToken(format!(
                "first byte {:#04x}, {} bytes",
                bytes.first().copied().unwrap_or(0),
                bytes.len()
            ))));
        }
        let micros = t.elapsed().as_micros() as u64;
        self.mints.fetch_add(1, Ordering::Relaxed);
        self.mint_micros.fetch_add(micros, Ordering::Relaxed);
        tracing::debug!(mint_us = micros, token = %token.redacted(), "minted in the browser");
        Ok((token, m.usable_until_wall, m.id))
    }

    /// A running browser and a fresh minter, within `warmup_timeout`.
    async fn ensure_minter(&self, st: &mut State) -> Result<(), BrowserError> {
        if let Some(p) = st.process.as_mut() {
            if !p.is_alive() {
                st.reset();
                self.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("the browser exited; starting a new one");
            }
        }
        if st
            .minter
            .as_ref()
            .is_some_and(|m| Instant::now() < m.usable_until)
        {
            return Ok(());
        }
        st.minter = None;
        let after = self.settings.warmup_timeout;
        tokio::time::timeout(after, self.build(st))
            .await
            .map_err(|_| BrowserError::Timeout {
                op: "warm-up",
                after,
            })?
    }

    async fn build(&self, st: &mut State) -> Result<(), BrowserError> {
        let t0 = Instant::now();
        if st.process.is_none() {
            let exe = self
                .settings
                .executable
                .as_deref()
                .ok_or(BrowserError::NotFound)?;
            let p = BrowserProcess::launch(exe, &self.settings.args, self.settings.warmup_timeout)
                .await?;
            self.pid.store(p.pid() as u64, Ordering::Relaxed);
            *self.profile.lock().expect("profile lock") = Some(p.profile().to_path_buf());
            self.launches.fetch_add(1, Ordering::Relaxed);
            st.process = Some(p);
        }
        let launch_ms = t0.elapsed().as_millis() as u64;
        let live = st.process.as_ref().expect("launched").liveness();
        unless_died(&live, self.build_in(st, t0, launch_ms)).await?
    }

    async fn build_in(
        &self,
        st: &mut State,
        t0: Instant,
        launch_ms: u64,
    ) -> Result<(), BrowserError> {
        let browser = &st.process.as_ref().expect("launched").browser;
        let page = browser.new_page("about:blank").await.map_err(cdp)?;
        let interceptor = self.intercept(&page).await?;
        // From here the page owns the interceptor; dropping `pm` closes both.
        let mut pm = PageMinter {
            id: self.warmups.load(Ordering::Relaxed) + 1,
            page,
            usable_until: Instant::now(),
            usable_until_wall: SystemTime::now(),
            interceptor,
        };
        if st.identity.is_none() {
            // Read what this browser really is from a page at YouTube's origin (client hints
            // need a secure context), then present exactly that without the headless marker.
            pm.page.goto(PAGE_URL).await.map_err(cdp)?;
            st.identity = Some(identity(browser, &pm.page).await?);
        }
        let id = st.identity.as_ref().expect("identity");
        let mut ua = SetUserAgentOverrideParams::new(id.user_agent.clone());
        ua.accept_language = Some("en-US,en;q=0.9".into());
        ua.platform = Some(id.platform.clone());
        ua.user_agent_metadata = id.metadata.clone();
        pm.page.execute(ua).await.map_err(cdp)?;
        pm.page.goto(PAGE_URL).await.map_err(cdp)?;

        let mut flow = self.flow.clone();
        flow.user_agent = id.user_agent.clone();
        let waa = Waa::new(self.http.clone(), &flow);
        let t = Instant::now();
        let obtained = waa.obtain_challenge().await?;
        let interpreter = waa.interpreter(&obtained.challenge).await?;
        let challenge_ms = t.elapsed().as_millis() as u64;

        let t = Instant::now();
        if let Some(cfg) = obtained.vm_ytcfg_json() {
            eval(&pm.page, format!(
                "(() => {{ const c = {cfg}; globalThis.yt = globalThis.yt || {{}}; yt.config_ = c; globalThis.ytcfg = {{ data_: c, get: (k, d) => (k in c ? c[k] : d), set: (o) => Object.assign(c, o) }}; }})()"
            ))
            .await?;
        }
        // Named like the script it is, so stack traces read as in the web player.
        let name = obtained
            .challenge
            .interpreter_url
            .clone()
            .unwrap_or_else(|| "https://www.google.com/js/th/interpreter.js".into());
        eval(&pm.page, format!("{interpreter}\n//# sourceURL={name}")).await?;
        eval(&pm.page, install_flow_js()).await?;
        let c = &obtained.challenge;
        eval(
            &pm.page,
            flow_call("load", &[&json!(c.global_name), &json!(c.program)]),
        )
        .await?;
        let vm_ms = t.elapsed().as_millis() as u64;
        let t = Instant::now();
        let response = eval(&pm.page, flow_call("snapshot", &[])).await?;
        let response = response.as_str().unwrap_or_default().to_string();
        let has_factory = eval(&pm.page, flow_call("hasMinterFactory", &[])).await?;
        if has_factory != Value::Bool(true) {
            return Err(BotGuardError::NoMinterFactory(response.chars().take(16).collect()).into());
        }
        let snapshot_ms = t.elapsed().as_millis() as u64;
        if let Err(e) = waa.log_attestation(&obtained, &response).await {
            tracing::warn!(error = %e, "att/log failed; asking GenerateIT anyway");
        }
        let t = Instant::now();
        let (integrity_token, ttl) = waa.generate_it(&response).await?;
        let generate_it_ms = t.elapsed().as_millis() as u64;
        eval(
            &pm.page,
            flow_call("createMinter", &[&json!(integrity_token)]),
        )
        .await?;
        let life = obtained.minter_life(ttl);
        pm.usable_until = Instant::now() + life;
        pm.usable_until_wall = SystemTime::now() + life;
        st.minter = Some(pm);
        self.warmups.fetch_add(1, Ordering::Relaxed);
        let rss = self.rss_bytes();
        tracing::info!(
            source = ?obtained.source,
            launch_ms,
            challenge_ms,
            vm_ms,
            snapshot_ms,
            generate_it_ms,
            total_ms = t0.elapsed().as_millis() as u64,
            ttl_secs = ttl,
            rss_mib = rss / (1024 * 1024),
            "browser minter ready"
        );
        Ok(())
    }

    /// Pauses every request of `page` and answers it: the page itself locally, everything else
    /// through the egress's upstream client; what cannot be fetched fails in the page.
    async fn intercept(&self, page: &Page) -> Result<tokio::task::JoinHandle<()>, BrowserError> {
        let mut events = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(cdp)?;
        let (page, http) = (page.clone(), self.http.clone());
        Ok(tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let (page, http) = (page.clone(), http.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(&page, &http, &ev).await {
                        tracing::debug!(error = %e, "could not answer a paused browser request");
                    }
                });
            }
        }))
    }
}

/// `op`, unless the browser dies first (its pending CDP commands may never be answered).
async fn unless_died<T>(
    live: &super::process::Liveness,
    op: impl std::future::Future<Output = T>,
) -> Result<T, BrowserError> {
    tokio::select! {
        r = op => Ok(r),
        _ = live.died() => Err(BrowserError::Crashed("the browser process exited".into())),
    }
}

/// Evaluates `expr` in the page's main world, awaiting a promise; the value as JSON.
async fn eval(page: &Page, expr: String) -> Result<Value, BrowserError> {
    let mut p = EvaluateParams::new(expr);
    p.await_promise = Some(true);
    p.return_by_value = Some(true);
    let r = page.execute(p).await.map_err(cdp)?;
    if let Some(ex) = &r.result.exception_details {
        let what = ex
            .exception
            .as_ref()
            .and_then(|o| o.description.clone())
            .unwrap_or_else(|| ex.text.clone());
        return Err(BrowserError::Script(what));
    }
    Ok(r.result.result.value.clone().unwrap_or(Value::Null))
}

async fn identity(browser: &chromiumoxide::Browser, page: &Page) -> Result<Identity, BrowserError> {
    let version = browser.version().await.map_err(cdp)?;
    let user_agent = headful_user_agent(&version.user_agent);
    let v = eval(
        page,
        "(async () => { const d = navigator.userAgentData; const h = d ? await d.getHighEntropyValues(['architecture','bitness','model','platformVersion','fullVersionList','wow64','formFactors']) : null; return { platform: navigator.platform, hints: h }; })()".into(),
    )
    .await?;
    let platform = v["platform"].as_str().unwrap_or("Linux x86_64").to_string();
    let metadata = match v.get("hints") {
        Some(h) if h.is_object() => {
            let mut h = h.clone();
            for key in ["brands", "fullVersionList"] {
                if let Some(list) = h[key].as_array() {
                    let pairs: Vec<(String, String)> = list
                        .iter()
                        .map(|b| {
                            (
                                b["brand"].as_str().unwrap_or_default().to_string(),
                                b["version"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    h[key] = headful_brands(&pairs)
                        .into_iter()
                        .map(|(brand, version)| json!({"brand": brand, "version": version}))
                        .collect();
                }
            }
            serde_json::from_value::<UserAgentMetadata>(h).ok()
        }
        _ => None,
    };
    Ok(Identity {
        user_agent,
        platform,
        metadata,
    })
}

/// Request headers the upstream client sets itself.
fn forwardable_request_header(name: &str) -> bool {
    !matches!(
        name.to_ascii_lowercase().as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding"
    )
}

/// Response headers that describe the wire form; the page gets the decoded body.
fn forwardable_response_header(name: &str) -> bool {
    !matches!(
        name.to_ascii_lowercase().as_str(),
        "content-encoding" | "content-length" | "transfer-encoding" | "connection"
    )
}

async fn answer(page: &Page, http: &HttpClient, ev: &EventRequestPaused) -> Result<(), CdpError> {
    let req = &ev.request;
    if req.url == PAGE_URL && ev.resource_type == ResourceType::Document {
        let mut f = FulfillRequestParams::new(ev.request_id.clone(), 200);
        f.response_headers = Some(vec![HeaderEntry::new(
            "content-type",
            "text/html; charset=utf-8",
        )]);
        f.body = Some(STANDARD.encode(BLANK_PAGE).into());
        page.execute(f).await?;
        return Ok(());
    }
    let fail = |reason: ErrorReason| FailRequestParams::new(ev.request_id.clone(), reason);
    if !(req.url.starts_with("https://") || req.url.starts_with("http://")) {
        page.execute(fail(ErrorReason::BlockedByClient)).await?;
        return Ok(());
    }
    let Ok(method) = http::Method::from_bytes(req.method.as_bytes()) else {
        page.execute(fail(ErrorReason::BlockedByClient)).await?;
        return Ok(());
    };
    let headers: Vec<(String, String)> = req
        .headers
        .inner()
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| forwardable_request_header(k))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = req.post_data_entries.as_ref().map(|entries| {
        let mut out = Vec::new();
        for e in entries {
            if let Some(b) = &e.bytes {
                let s: &str = b.as_ref();
                out.extend(STANDARD.decode(s).unwrap_or_default());
            }
        }
        out
    });
    match http.send(method, &req.url, &header_refs, body).await {
        Ok(res) => {
            let encoding = res
                .headers
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = match crate::body::decode(&encoding, &res.body, BODY_LIMIT) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(url = %req.url, error = %e, "undecodable body for the browser");
                    page.execute(fail(ErrorReason::Failed)).await?;
                    return Ok(());
                }
            };
            let mut f = FulfillRequestParams::new(ev.request_id.clone(), res.status.as_u16());
            f.response_headers = Some(
                res.headers
                    .iter()
                    .filter(|(k, _)| forwardable_response_header(k.as_str()))
                    .map(|(k, v)| HeaderEntry::new(k.as_str(), v.to_str().unwrap_or_default()))
                    .collect(),
            );
            f.body = Some(STANDARD.encode(body).into());
            page.execute(f).await?;
        }
        Err(e) => {
            tracing::debug!(error = %e, "browser request failed upstream");
            page.execute(fail(ErrorReason::ConnectionFailed)).await?;
        }
    }
    Ok(())
}
