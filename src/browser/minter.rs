//! The one long-lived Chromium ([`SharedBrowser`], a [`BrowserProcess`]) and the browser minter
//! of one egress inside it ([`BrowserMinter`]): a browser context of its own (cookies, storage
//! and cache not shared with other egresses), one page at `https://www.youtube.com/` holding a
//! warm BotGuard minter, and the same flow as the QuickJS minter (challenge from the page /
//! att/get / Create and the interpreter via [`crate::botguard::waa`]; load, snapshot, minter and
//! mint by `flow.js` inside the page; GenerateIT via `waa` again, with the browser's own user
//! agent). Every request the page makes is paused by CDP `Fetch` and fulfilled by the egress's
//! [`HttpClient`]; the document itself is a blank page served locally for that URL.
//!
//! The browser is launched by the first context that needs it (under one lock, so concurrent
//! first uses start one Chromium) and stopped when its last context closes. One that crashes or
//! misses a deadline (hung) is killed; every context notices on its next use and re-opens itself
//! in the next browser, which the first of them launches (a crashed mint is retried once).
//! Memory is read as PSS: of the browser's whole process tree, and of the renderer that serves
//! a context's page when that renderer can be told apart (see [`super::new_renderers`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetUserAgentOverrideParams, UserAgentMetadata,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    EventRequestPaused, FailRequestParams, FulfillRequestParams, HeaderEntry,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use chromiumoxide::cdp::browser_protocol::target::{
    CloseTargetParams, CreateBrowserContextParams, CreateTargetParams, DisposeBrowserContextParams,
    GetTargetsParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use futures::StreamExt;
use serde_json::{Value, json};

use super::process::{BrowserProcess, Liveness};
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
/// Deadline for disposing of a closed context (the browser is otherwise idle then).
/// How long a cheap command may take before the browser counts as hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const DISPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopped browser's processes get to exit before a warning.
const EXIT_WAIT: Duration = Duration::from_secs(10);

fn cdp(e: CdpError) -> BrowserError {
    match e {
        // Chrome answered with a protocol error: the browser is fine, the call was not.
        CdpError::Chrome(e) => BrowserError::Script(e.to_string()),
        e => BrowserError::Crashed(e.to_string()),
    }
}

/// Counters for logs and metrics: `launches` and `restarts` are the shared browser's, the rest
/// this egress's context's.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct BrowserStats {
    pub launches: u64,
    pub restarts: u64,
    pub warmups: u64,
    pub mints: u64,
    pub mint_micros_total: u64,
    /// PSS of the renderer serving this context's page when last measured, bytes (0: not
    /// measured, or that renderer could not be told apart).
    pub context_pss_bytes: u64,
}

/// The identity the page presents: the browser's own, without the headless marker.
#[derive(Clone)]
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

/// The running browser: its process and what its pages present.
struct Running {
    process: BrowserProcess,
    /// Which launch this is; a context opened in an earlier one is gone with it.
    generation: u64,
    identity: Option<Identity>,
    /// The window the browser opened at start (about:blank, shared default context) is
    /// closed: once a context has a window of its own, it only costs memory.
    start_page_closed: bool,
}

/// The one Chromium every egress's context lives in. It is launched under [`Self::running`]'s
/// lock, so however many contexts need it at once, one browser starts.
pub struct SharedBrowser {
    settings: BrowserSettings,
    running: tokio::sync::Mutex<Option<Running>>,
    /// Generation of the running browser (0: none launched yet).
    generation: AtomicU64,
    /// Contexts open in any generation; the browser stops when the last one closes.
    open: AtomicUsize,
    launches: AtomicU64,
    restarts: AtomicU64,
    pid: AtomicU64,
    profile: std::sync::Mutex<Option<PathBuf>>,
}

impl SharedBrowser {
    pub fn new(settings: BrowserSettings) -> Self {
        SharedBrowser {
            settings,
            running: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            launches: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            pid: AtomicU64::new(0),
            profile: std::sync::Mutex::new(None),
        }
    }

    /// The running browser's pid (0: none running).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed) as u32
    }

    /// The profile directory of the browser started last (every one of its processes names it
    /// on its command line; removed when the browser closes).
    pub fn profile_dir(&self) -> Option<PathBuf> {
        self.profile.lock().expect("profile lock").clone()
    }

    /// Browsers launched since start (one at a time, ever).
    pub fn launches(&self) -> u64 {
        self.launches.load(Ordering::Relaxed)
    }

    /// Browsers found dead or killed as hung since start.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Contexts open now.
    pub fn contexts(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// PSS of the running browser's whole process tree now, bytes (0: none running).
    pub fn pss_bytes(&self) -> u64 {
        match self.pid() {
            0 => 0,
            pid => super::process::tree_pss_bytes(pid),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The browser, launched first if none runs (or the last one died), with its lock held.
    async fn running(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Running>>, BrowserError> {
        let mut guard = self.running.lock().await;
        if let Some(r) = guard.as_mut() {
            if !r.process.is_alive() {
                tracing::warn!(
                    pid = r.process.pid(),
                    "the browser exited; starting a new one"
                );
                self.restarts.fetch_add(1, Ordering::Relaxed);
                self.stop_locked(&mut guard);
            }
        }
        if guard.is_none() {
            let exe = self
                .settings
                .executable
                .as_deref()
                .ok_or(BrowserError::NotFound)?;
            let p = BrowserProcess::launch(
                exe,
                &self.settings.args,
                &self.settings.profile_root(),
                self.settings.warmup_timeout,
            )
            .await?;
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            // The contexts of an earlier browser died with it; only this one's count.
            self.open.store(0, Ordering::Relaxed);
            self.pid.store(p.pid() as u64, Ordering::Relaxed);
            *self.profile.lock().expect("profile lock") = Some(p.profile().to_path_buf());
            self.launches.fetch_add(1, Ordering::Relaxed);
            *guard = Some(Running {
                process: p,
                generation,
                identity: None,
                start_page_closed: false,
            });
        }
        Ok(guard)
    }

    /// Kills the browser of `generation` if it still runs (it crashed or hung under a
    /// context); the next context to need a browser launches a new one.
    async fn restart(&self, generation: u64) {
        let mut guard = self.running.lock().await;
        if guard.as_ref().is_some_and(|r| r.generation == generation) {
            self.restarts.fetch_add(1, Ordering::Relaxed);
            self.stop_locked(&mut guard);
        }
    }

    /// Whether the browser of `generation` fails to answer a cheap command. One egress's flow
    /// timing out (a slow proxy) must not restart the browser every egress shares: only a
    /// browser that does not answer is restarted. A lock held by others opening contexts is
    /// busy, not proof of a hang.
    async fn hung(&self, generation: u64) -> bool {
        let Ok(guard) = tokio::time::timeout(PROBE_TIMEOUT, self.running.lock()).await else {
            return false;
        };
        let Some(r) = guard.as_ref().filter(|r| r.generation == generation) else {
            return false;
        };
        !matches!(
            tokio::time::timeout(PROBE_TIMEOUT, r.process.browser.version()).await,
            Ok(Ok(_))
        )
    }

    /// Drops the running browser (its process group is killed).
    fn stop_locked(&self, guard: &mut Option<Running>) {
        *guard = None;
        self.pid.store(0, Ordering::Relaxed);
    }

    /// A context of `generation` is closed: disposed of if its browser still runs, and the
    /// browser stopped (and waited for) when no context is left.
    async fn release(&self, ctx: Context) {
        let mut guard = self.running.lock().await;
        if let Some(r) = guard.as_ref().filter(|r| r.generation == ctx.generation) {
            let dispose = r
                .process
                .browser
                .execute(DisposeBrowserContextParams::new(ctx.id.clone()));
            if let Ok(Err(e)) = tokio::time::timeout(DISPOSE_TIMEOUT, dispose).await {
                tracing::debug!(error = %e, "could not dispose of a browser context");
            }
        }
        let current = guard.as_ref().map(|r| r.generation) == Some(ctx.generation);
        if current && self.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            let profile = self.profile_dir();
            self.stop_locked(&mut guard);
            tracing::info!("no browser context left; browser stopped");
            if let Some(profile) = profile {
                if !super::process::wait_gone(&profile, EXIT_WAIT).await {
                    tracing::warn!(profile = %profile.display(), "a stopped browser's processes are still exiting");
                }
            }
        }
    }

    /// Stops the browser whatever its contexts (potproxy is shutting down).
    pub async fn shutdown(&self) {
        let mut guard = self.running.lock().await;
        self.stop_locked(&mut guard);
    }
}

/// One egress's browser context in a given browser.
struct Context {
    id: BrowserContextId,
    generation: u64,
    liveness: Liveness,
}

#[derive(Default)]
struct State {
    ctx: Option<Context>,
    minter: Option<PageMinter>,
    /// The browser generation the current warm-up got to talk to (`None` while it still waits
    /// for the browser's lock): a timeout blames that browser only.
    talking_to: Option<u64>,
}

/// One egress's context in the shared browser, and its warm minter.
pub struct BrowserMinter {
    http: HttpClient,
    settings: BrowserSettings,
    flow: BotGuardSettings,
    browser: Arc<SharedBrowser>,
    state: tokio::sync::Mutex<State>,
    warmups: AtomicU64,
    mints: AtomicU64,
    mint_micros: AtomicU64,
    /// Generation of the browser its context is open in (0: none open).
    ctx_generation: AtomicU64,
    /// When it was last asked to mint, warm or evaluate.
    last_used: std::sync::Mutex<tokio::time::Instant>,
    /// The renderer serving the current page, when it could be told apart.
    renderers: std::sync::Mutex<Vec<u32>>,
    context_pss: AtomicU64,
}

impl BrowserMinter {
    /// `flow` gives the challenge order and WAA endpoint; its user agent is replaced by the
    /// browser's own. Its context opens in `browser` on first use.
    pub fn new(
        http: HttpClient,
        settings: BrowserSettings,
        flow: BotGuardSettings,
        browser: Arc<SharedBrowser>,
    ) -> Self {
        BrowserMinter {
            http,
            settings,
            flow,
            browser,
            state: tokio::sync::Mutex::new(State::default()),
            warmups: AtomicU64::new(0),
            mints: AtomicU64::new(0),
            mint_micros: AtomicU64::new(0),
            ctx_generation: AtomicU64::new(0),
            last_used: std::sync::Mutex::new(tokio::time::Instant::now()),
            renderers: std::sync::Mutex::new(Vec::new()),
            context_pss: AtomicU64::new(0),
        }
    }

    /// The client its egress's requests leave through.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn stats(&self) -> BrowserStats {
        BrowserStats {
            launches: self.browser.launches(),
            restarts: self.browser.restarts(),
            warmups: self.warmups.load(Ordering::Relaxed),
            mints: self.mints.load(Ordering::Relaxed),
            mint_micros_total: self.mint_micros.load(Ordering::Relaxed),
            context_pss_bytes: self.context_pss.load(Ordering::Relaxed),
        }
    }

    /// The shared browser's pid (0: none running).
    pub fn pid(&self) -> u32 {
        self.browser.pid()
    }

    /// The profile directory of the browser started last.
    pub fn profile_dir(&self) -> Option<PathBuf> {
        self.browser.profile_dir()
    }

    /// How long since it was last asked to mint, warm or evaluate.
    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().expect("last_used lock").elapsed()
    }

    fn touch(&self) {
        *self.last_used.lock().expect("last_used lock") = tokio::time::Instant::now();
    }

    /// Whether this egress has a context open in the running browser.
    pub fn has_context(&self) -> bool {
        let g = self.ctx_generation.load(Ordering::Relaxed);
        g != 0 && g == self.browser.generation() && self.browser.pid() != 0
    }

    /// Closes the page and hands the context back to the browser (disposed of if it still
    /// runs).
    async fn close_context(&self, st: &mut State) {
        st.minter = None;
        self.renderers.lock().expect("renderers lock").clear();
        self.ctx_generation.store(0, Ordering::Relaxed);
        if let Some(ctx) = st.ctx.take() {
            self.browser.release(ctx).await;
        }
    }

    /// The renderer processes serving this context's page (empty: none, or not told apart).
    pub fn renderer_pids(&self) -> Vec<u32> {
        self.renderers.lock().expect("renderers lock").clone()
    }

    /// PSS of the renderer serving this context's page now, bytes; `None` when it has no page
    /// or its renderer could not be told apart from the others.
    pub fn context_pss_bytes(&self) -> Option<u64> {
        let pids = self.renderer_pids();
        if pids.is_empty() {
            return None;
        }
        let pss = pids.into_iter().map(super::process::pss_bytes).sum();
        self.context_pss.store(pss, Ordering::Relaxed);
        Some(pss)
    }

    /// Evaluates `expr` in the minter's page (warming one first), awaiting a promise; its value
    /// as JSON. For diagnostics and probes: it sees exactly what BotGuard sees.
    pub async fn evaluate(&self, expr: &str) -> Result<Value, BrowserError> {
        self.touch();
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
                self.after_failure(&mut st, e).await;
            }
        }
        r
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
        self.touch();
        let mut st = self.state.lock().await;
        let r = self.ensure_minter(&mut st).await;
        if let Err(e) = &r {
            self.after_failure(&mut st, e).await;
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

    /// Closes this egress's context (its page, cookies, storage and cache); the browser stops
    /// with its last context (no process left behind).
    pub async fn shutdown(&self) {
        let mut st = self.state.lock().await;
        self.close_context(&mut st).await;
    }

    /// Closes the context if it has not been used for `idle`, judged under the state lock: a
    /// request marks its use before it waits for that lock, so one that came after the idle
    /// scan keeps its context. Whether it was closed.
    pub async fn close_if_idle(&self, idle: Duration) -> bool {
        let mut st = self.state.lock().await;
        if st.ctx.is_none() || self.idle_for() < idle {
            return false;
        }
        self.close_context(&mut st).await;
        true
    }

    /// Mints for `binding` (the text exactly as given). A crashed browser is restarted and the
    /// mint retried once; a hung one is killed and the error returned (the next mint restarts).
    pub async fn mint(&self, binding: &str) -> Result<(Token, SystemTime, u64), BrowserError> {
        self.touch();
        let mut st = self.state.lock().await;
        let mut retried = false;
        loop {
            match self.mint_locked(&mut st, binding).await {
                Ok(out) => return Ok(out),
                Err(e) => {
                    self.after_failure(&mut st, &e).await;
                    if matches!(e, BrowserError::Crashed(_)) && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn after_failure(&self, st: &mut State, e: &BrowserError) {
        if e.needs_restart() {
            // A launch that failed left no browser to restart; a warm-up that timed out while
            // waiting for the browser's lock (others opening their contexts) blames none; a
            // timeout restarts the shared browser only when it does not answer either.
            let generation = st.ctx.as_ref().map(|c| c.generation).or(st.talking_to);
            let restart = match (generation, e) {
                (None, _) | (_, BrowserError::Launch { .. }) => None,
                (Some(g), BrowserError::Timeout { .. }) => self.browser.hung(g).await.then_some(g),
                (Some(g), _) => Some(g),
            };
            match restart {
                Some(g) => {
                    tracing::warn!(error = %e, "browser unusable; closing it, the next mint starts a new one");
                    self.browser.restart(g).await;
                }
                None => {
                    tracing::warn!(error = %e, "this egress's context is closed; the browser answers and stays");
                }
            }
            self.close_context(st).await;
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
        let live = st.ctx.as_ref().expect("ensured").liveness.clone();
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

    /// A running browser, this egress's context in it and a fresh minter, within
    /// `warmup_timeout`.
    async fn ensure_minter(&self, st: &mut State) -> Result<(), BrowserError> {
        let stale = st
            .ctx
            .as_ref()
            .is_some_and(|c| c.generation != self.browser.generation() || !c.liveness.is_alive());
        if stale {
            // Its browser is gone: open the context again in the next one.
            self.close_context(st).await;
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
        st.talking_to = None;
        let (pm, id, launch_ms) = self.open_page(st, t0).await?;
        let live = st.ctx.as_ref().expect("opened").liveness.clone();
        unless_died(&live, self.build_in(st, pm, &id, t0, launch_ms)).await?
    }

    /// Under the browser's lock (launching it if needed): this egress's context (opened if it
    /// has none) and a new page in it at YouTube's origin, every request intercepted, presenting
    /// the browser's own identity. Also notes which renderer serves the page (the lock keeps
    /// other contexts from starting one meanwhile).
    async fn open_page(
        &self,
        st: &mut State,
        t0: Instant,
    ) -> Result<(PageMinter, Identity, u64), BrowserError> {
        let mut guard = self.browser.running().await?;
        let launch_ms = t0.elapsed().as_millis() as u64;
        let running = guard.as_mut().expect("running");
        st.talking_to = Some(running.generation);
        let browser = &running.process.browser;
        if st.ctx.is_none() {
            let id = browser
                .create_browser_context(CreateBrowserContextParams::default())
                .await
                .map_err(cdp)?;
            self.browser.open.fetch_add(1, Ordering::Relaxed);
            self.ctx_generation
                .store(running.generation, Ordering::Relaxed);
            st.ctx = Some(Context {
                id,
                generation: running.generation,
                liveness: running.process.liveness(),
            });
        }
        let ctx = st.ctx.as_ref().expect("opened");
        let root = running.process.pid();
        let before = super::process::renderer_pids(root);
        let mut target = CreateTargetParams::new("about:blank");
        target.browser_context_id = Some(ctx.id.clone());
        let page = unless_died(&ctx.liveness, browser.new_page(target))
            .await?
            .map_err(cdp)?;
        let interceptor = self.intercept(&page).await?;
        if !running.start_page_closed {
            running.start_page_closed = true;
            close_start_page(browser, &ctx.id).await;
        }
        // From here the page owns the interceptor; dropping `pm` closes both.
        let pm = PageMinter {
            id: self.warmups.load(Ordering::Relaxed) + 1,
            page,
            usable_until: Instant::now(),
            usable_until_wall: SystemTime::now(),
            interceptor,
        };
        if running.identity.is_none() {
            // Read what this browser really is from a page at YouTube's origin (client hints
            // need a secure context), then present exactly that without the headless marker.
            pm.page.goto(PAGE_URL).await.map_err(cdp)?;
            running.identity = Some(identity(browser, &pm.page).await?);
        }
        let id = running.identity.clone().expect("identity");
        let mut ua = SetUserAgentOverrideParams::new(id.user_agent.clone());
        ua.accept_language = Some("en-US,en;q=0.9".into());
        ua.platform = Some(id.platform.clone());
        ua.user_agent_metadata = id.metadata.clone();
        pm.page.execute(ua).await.map_err(cdp)?;
        pm.page.goto(PAGE_URL).await.map_err(cdp)?;
        // Renderers other contexts' pages were given before this one opened are in `before`.
        let after = super::process::renderer_pids(root);
        *self.renderers.lock().expect("renderers lock") = super::new_renderers(&before, &after);
        Ok((pm, id, launch_ms))
    }

    async fn build_in(
        &self,
        st: &mut State,
        mut pm: PageMinter,
        id: &Identity,
        t0: Instant,
        launch_ms: u64,
    ) -> Result<(), BrowserError> {
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
        let browser_pss = self.browser.pss_bytes();
        let context_pss = self.context_pss_bytes();
        tracing::info!(
            source = ?obtained.source,
            launch_ms,
            challenge_ms,
            vm_ms,
            snapshot_ms,
            generate_it_ms,
            total_ms = t0.elapsed().as_millis() as u64,
            ttl_secs = ttl,
            browser_pss_mib = browser_pss / (1024 * 1024),
            context_pss_mib = context_pss.map(|b| b / (1024 * 1024)),
            contexts = self.browser.contexts(),
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

/// Closes the blank page the browser opened at start (outside every context of ours; a failure
/// only leaves it open).
async fn close_start_page(browser: &chromiumoxide::Browser, ours: &BrowserContextId) {
    let Ok(targets) = browser.execute(GetTargetsParams::default()).await else {
        return;
    };
    for t in &targets.result.target_infos {
        if t.r#type == "page"
            && t.url == "about:blank"
            && t.browser_context_id.as_ref() != Some(ours)
        {
            if let Err(e) = browser
                .execute(CloseTargetParams::new(t.target_id.clone()))
                .await
            {
                tracing::debug!(error = %e, "could not close the browser's start page");
            }
        }
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
