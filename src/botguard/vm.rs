//! The QuickJS host for Google's BotGuard VM. One dedicated OS thread owns the rquickjs runtime
//! (it is not shared across threads); callers talk to it through [`VmHandle`], an actor fed by a
//! channel. The thread provides the browser-like global (`env.js`, presenting a given user agent;
//! docs/PROBES.md compares it with Chromium), the WebPO calling convention (`flow.js`), and an
//! event loop. Nothing of the host is reachable from the global object: both scripts are
//! functions called with the host's natives, and the host keeps their internals. The event
//! loop: microtasks drained after every macrotask, timers run in due order against a real clock.
//! Every operation has a deadline enforced by QuickJS's interrupt handler, so a runaway script is
//! stopped, never hangs the proxy.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rquickjs::{Context, Function, Object, Runtime, Value};
use tokio::sync::oneshot;

const ENV_JS: &str = include_str!("env.js");
const FLOW_JS: &str = include_str!("flow.js");
/// Script names in stack traces: env.js leaves frames from files named `potproxy-*` out of
/// `Error().stack` (a browser shows none for its native code); page scripts carry the page's
/// address, as inline scripts do in a browser.
const ENV_FILE: &str = "potproxy-env.js";
const FLOW_FILE: &str = "potproxy-flow.js";
const PAGE_FILE: &str = "https://www.youtube.com/";
const THREAD_STACK: usize = 32 * 1024 * 1024;
const JS_STACK_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VmError {
    #[error("JavaScript runtime setup failed: {0}")]
    Setup(String),
    #[error("script threw: {0}")]
    Threw(String),
    #[error("VM operation `{op}` timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    #[error("VM operation `{0}` stalled: nothing left to run and no result")]
    Stalled(&'static str),
    #[error("the VM thread is gone")]
    Gone,
}

impl VmError {
    /// True when the VM ran into its time or memory limit: it may be left mid-script and is
    /// not to be used again.
    pub fn hit_limits(&self) -> bool {
        match self {
            VmError::Timeout { .. } => true,
            VmError::Threw(text) => text.contains("out of memory") || text.contains("interrupted"),
            _ => false,
        }
    }
}

/// Limits for one VM.
#[derive(Debug, Clone, Copy)]
pub struct VmLimits {
    /// Deadline for each operation (load, snapshot, minter, mint).
    pub op_timeout: Duration,
    /// QuickJS heap limit in bytes.
    pub memory_limit: usize,
}

impl Default for VmLimits {
    fn default() -> Self {
        VmLimits {
            op_timeout: Duration::from_secs(10),
            memory_limit: 256 * 1024 * 1024,
        }
    }
}

/// What the host needs to start BotGuard.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub interpreter_js: String,
    pub program: String,
    pub global_name: String,
    /// `ytcfg` from the same page as the challenge, as JSON, installed as `yt.config_`.
    pub ytcfg_json: Option<String>,
}

/// Timings and sizes the host reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmStats {
    pub memory_used_bytes: u64,
}

enum Command {
    Load(Box<LoadRequest>, oneshot::Sender<Result<String, VmError>>),
    Snapshot(oneshot::Sender<Result<(String, bool), VmError>>),
    CreateMinter(String, oneshot::Sender<Result<(), VmError>>),
    Mint(String, oneshot::Sender<Result<String, VmError>>),
    Eval(String, oneshot::Sender<Result<String, VmError>>),
    Telemetry(oneshot::Sender<Result<String, VmError>>),
    Stats(oneshot::Sender<VmStats>),
}

/// Handle to a VM thread. Cheap to clone; the thread ends when every handle is dropped.
#[derive(Clone)]
pub struct VmHandle {
    tx: mpsc::Sender<Command>,
    /// Closed when the thread ends.
    exited: tokio::sync::watch::Receiver<()>,
}

impl VmHandle {
    /// Starts a fresh VM thread with the browser environment installed, presenting env.js's
    /// default user agent.
    pub fn spawn(limits: VmLimits) -> Result<Self, VmError> {
        Self::spawn_as(limits, None)
    }

    /// Starts a fresh VM thread whose browser environment presents `user_agent` (navigator's
    /// fields, client hints and engine traits follow from it), or env.js's default for `None`.
    pub fn spawn_as(limits: VmLimits, user_agent: Option<&str>) -> Result<Self, VmError> {
        let user_agent = user_agent.map(str::to_string);
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (alive, exited) = tokio::sync::watch::channel(());
        std::thread::Builder::new()
            .name("potproxy-botguard".into())
            // QuickJS checks its own stack limit (JS_STACK_LIMIT below); the thread must be
            // comfortably larger so deep recursion raises a JS error instead of aborting.
            .stack_size(THREAD_STACK)
            .spawn(move || {
                // Dropped as the thread returns: `exited` then resolves.
                let _alive = alive;
                let host = match Host::new(limits, user_agent.as_deref()) {
                    Ok(h) => {
                        let _ = ready_tx.send(Ok(()));
                        h
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(cmd) = rx.recv() {
                    host.handle(cmd);
                }
            })
            .map_err(|e| VmError::Setup(e.to_string()))?;
        ready_rx.recv().map_err(|_| VmError::Gone)??;
        Ok(VmHandle { tx, exited })
    }

    /// Resolves once the VM thread has ended (which it does when every handle is dropped), so
    /// whoever drops the last handle can wait for the thread and its heap to be gone.
    pub fn exited(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.exited.clone();
        async move { while rx.changed().await.is_ok() {} }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, VmError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| VmError::Gone)?;
        rx.await.map_err(|_| VmError::Gone)
    }

    /// Evaluates the interpreter and runs `vm.a(...)` until the setup callback delivered its
    /// functions. Returns their `typeof`s, comma-separated.
    pub async fn load(&self, req: LoadRequest) -> Result<String, VmError> {
        self.ask(|tx| Command::Load(Box::new(req), tx)).await?
    }

    /// Runs the async snapshot; returns the BotGuard response and whether
    /// `webPoSignalOutput[0]` was filled.
    pub async fn snapshot(&self) -> Result<(String, bool), VmError> {
        self.ask(Command::Snapshot).await?
    }

    /// Builds the minter from an integrity token (base64, either alphabet).
    pub async fn create_minter(&self, integrity_token: &str) -> Result<(), VmError> {
        let it = integrity_token.to_string();
        self.ask(|tx| Command::CreateMinter(it, tx)).await?
    }

    /// Mints for a binding; returns base64url with padding.
    pub async fn mint(&self, binding: &str) -> Result<String, VmError> {
        let b = binding.to_string();
        self.ask(|tx| Command::Mint(b, tx)).await?
    }

    /// Evaluates a script in the VM's global scope and returns its result as a string
    /// (diagnostics and tests).
    pub async fn eval(&self, script: &str) -> Result<String, VmError> {
        let s = script.to_string();
        self.ask(|tx| Command::Eval(s, tx)).await?
    }

    /// The telemetry events the VM reported through the web client's loggers (diagnostics).
    pub async fn telemetry(&self) -> Result<String, VmError> {
        self.ask(Command::Telemetry).await?
    }

    pub async fn stats(&self) -> Result<VmStats, VmError> {
        self.ask(Command::Stats).await
    }
}

/// Lives on the VM thread.
struct Host {
    /// The main realm's internals (see [`Internals`]); first, so it is released before the
    /// runtime goes.
    internals: Internals,
    rt: Runtime,
    ctx: Context,
    /// Extra realms handed out as `iframe.contentWindow` (BotGuard takes pristine builtins
    /// from an iframe it attaches). Kept alive for the VM's lifetime.
    _realms: Vec<Context>,
    deadline: Rc<Cell<Option<Instant>>>,
    limits: VmLimits,
}

/// Realms prepared for iframes; BotGuard attaches one.
const SPARE_REALMS: usize = 2;

fn exception_text(ctx: &rquickjs::Ctx<'_>, e: rquickjs::Error) -> String {
    match e {
        rquickjs::Error::Exception => {
            let v = ctx.catch();
            describe(&v)
        }
        other => other.to_string(),
    }
}

fn describe(v: &Value<'_>) -> String {
    if let Some(o) = v.as_object() {
        let msg: Option<String> = o.get("message").ok();
        let stack: Option<String> = o.get("stack").ok();
        if let Some(m) = msg {
            return match stack {
                Some(s) if !s.is_empty() => format!("{m}\n{s}"),
                _ => m,
            };
        }
    }
    v.as_string()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The host's hidden side of a realm: env.js returns it (timers, realms, the settling slot,
/// the operations flow.js adds) instead of putting anything on the global object, where page
/// scripts would see it (`Object.getOwnPropertyNames(window)`).
type Internals = rquickjs::Persistent<Object<'static>>;

/// The host's time zone name (IANA), for `Intl.DateTimeFormat().resolvedOptions().timeZone`;
/// `None` lets env.js derive it from the UTC offset.
fn host_time_zone() -> Option<String> {
    if let Ok(tz) = std::env::var("TZ") {
        let tz = tz.trim_start_matches(':').trim();
        if tz.contains('/') || tz == "UTC" {
            return Some(tz.to_string());
        }
    }
    if let Ok(tz) = std::fs::read_to_string("/etc/timezone") {
        let tz = tz.trim();
        if !tz.is_empty() {
            return Some(tz.to_string());
        }
    }
    let link = std::fs::read_link("/etc/localtime").ok()?;
    let s = link.to_string_lossy();
    s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
}

/// A new context with the browser environment installed; returns it with its internals.
fn browser_context(
    rt: &Runtime,
    start: Instant,
    user_agent: Option<&str>,
) -> Result<(Context, Internals), VmError> {
    let ctx = Context::full(rt).map_err(|e| VmError::Setup(e.to_string()))?;
    let internals = ctx.with(|ctx| {
        let natives =
            host_natives(&ctx, start, user_agent).map_err(|e| setup_error(&ctx, "natives", e))?;
        let setup: Function = ctx
            .eval_with_options(ENV_JS, named(ENV_FILE))
            .map_err(|e| setup_error(&ctx, "env.js", e))?;
        let internals: Object = setup
            .call((natives,))
            .map_err(|e| setup_error(&ctx, "env.js", e))?;
        Ok::<_, VmError>(rquickjs::Persistent::save(&ctx, internals))
    })?;
    Ok((ctx, internals))
}

/// What env.js gets from Rust: the clock, randomness, logging, the identity to present.
fn host_natives<'js>(
    ctx: &rquickjs::Ctx<'js>,
    start: Instant,
    user_agent: Option<&str>,
) -> rquickjs::Result<Object<'js>> {
    {
        let natives = Object::new(ctx.clone())?;
        if let Some(ua) = user_agent {
            natives.set("userAgent", ua)?;
        }
        if let Some(tz) = host_time_zone() {
            natives.set("timeZone", tz)?;
        }
        natives.set(
            "now",
            Function::new(ctx.clone(), move || start.elapsed().as_secs_f64() * 1000.0)?,
        )?;
        natives.set(
            "random",
            Function::new(ctx.clone(), |n: usize| {
                let mut buf = vec![0u8; n.min(65_536)];
                getrandom::fill(&mut buf).expect("OS randomness");
                buf
            })?,
        )?;
        natives.set(
            "log",
            Function::new(ctx.clone(), |level: String, msg: String| {
                tracing::debug!(target: "potproxy::botguard::js", %level, "{msg}");
            })?,
        )?;
        Ok(natives)
    }
}

fn named(file: &str) -> rquickjs::context::EvalOptions {
    let mut o = rquickjs::context::EvalOptions::default();
    o.filename = Some(file.to_string());
    o
}

fn setup_error(ctx: &rquickjs::Ctx<'_>, name: &str, e: rquickjs::Error) -> VmError {
    VmError::Setup(format!("{name}: {}", exception_text(ctx, e)))
}

impl Host {
    fn new(limits: VmLimits, user_agent: Option<&str>) -> Result<Self, VmError> {
        let rt = Runtime::new().map_err(|e| VmError::Setup(e.to_string()))?;
        rt.set_memory_limit(limits.memory_limit);
        rt.set_max_stack_size(JS_STACK_LIMIT);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let d = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            d.get().is_some_and(|t| Instant::now() > t)
        })));
        let start = Instant::now();
        let (ctx, internals) = browser_context(&rt, start, user_agent)?;
        ctx.with(|c| {
            let flow: Function = c
                .eval_with_options(FLOW_JS, named(FLOW_FILE))
                .map_err(|e| setup_error(&c, "flow.js", e))?;
            let i = internals
                .clone()
                .restore(&c)
                .map_err(|e| setup_error(&c, "flow.js", e))?;
            flow.call::<_, ()>((i,))
                .map_err(|e| setup_error(&c, "flow.js", e))
        })?;
        let mut realms = Vec::new();
        for _ in 0..SPARE_REALMS {
            let (realm, _) = browser_context(&rt, start, user_agent)?;
            let global = realm.with(|c| rquickjs::Persistent::save(&c, c.globals()));
            ctx.with(|c| -> rquickjs::Result<()> {
                let g = global.restore(&c)?;
                let i = internals.clone().restore(&c)?;
                let list: rquickjs::Array = i.get("realms")?;
                list.set(list.len(), g)
            })
            .map_err(|e| VmError::Setup(e.to_string()))?;
            realms.push(realm);
        }
        Ok(Host {
            rt,
            ctx,
            internals,
            _realms: realms,
            deadline,
            limits,
        })
    }

    fn arm(&self, timeout: Duration) -> Instant {
        let t = Instant::now() + timeout;
        self.deadline.set(Some(t));
        t
    }

    fn eval_global(&self, name: &'static str, src: &str) -> Result<(), VmError> {
        self.arm(self.limits.op_timeout);
        let r = self.ctx.with(|ctx| {
            ctx.eval_with_options::<(), _>(src, named(PAGE_FILE))
                .map_err(|e| exception_text(&ctx, e))
        });
        let expired = self.deadline.get().is_some_and(|t| Instant::now() > t);
        self.deadline.set(None);
        r.map_err(|msg| {
            if expired {
                VmError::Timeout {
                    op: name,
                    after: self.limits.op_timeout,
                }
            } else {
                VmError::Threw(format!("{name}: {msg}"))
            }
        })
    }

    /// Calls `internals[name](...args)` synchronously.
    fn call_internal<T>(&self, name: &str, args: Vec<String>) -> Result<T, VmError>
    where
        T: for<'js> rquickjs::FromJs<'js>,
    {
        self.ctx.with(|ctx| {
            let run = || -> rquickjs::Result<T> {
                let i = self.internals.clone().restore(&ctx)?;
                let f: Function = i.get(name)?;
                let mut a = rquickjs::function::Args::new(ctx.clone(), args.len());
                for s in args {
                    a.push_arg(s)?;
                }
                f.call_arg(a)
            };
            run().map_err(|e| VmError::Threw(format!("{name}: {}", exception_text(&ctx, e))))
        })
    }

    /// Starts operation `op` (a function of the internals' `ops`, see flow.js) and drives the
    /// event loop until its promise settles.
    fn run_op(&self, op: &'static str, args: Vec<String>) -> Result<String, VmError> {
        let deadline = self.arm(self.limits.op_timeout);
        let result = self.drive(op, args, deadline);
        self.deadline.set(None);
        result
    }

    fn drive(
        &self,
        op: &'static str,
        args: Vec<String>,
        deadline: Instant,
    ) -> Result<String, VmError> {
        let timeout = || VmError::Timeout {
            op,
            after: self.limits.op_timeout,
        };
        let mut start = vec![op.to_string()];
        start.extend(args);
        self.call_internal::<()>("start", start)?;
        loop {
            self.drain_microtasks();
            if Instant::now() > deadline {
                return Err(timeout());
            }
            let slot = self
                .ctx
                .with(|ctx| -> rquickjs::Result<Option<(bool, String)>> {
                    let i = self.internals.clone().restore(&ctx)?;
                    let slot: Object = i.get("slot")?;
                    if !slot.get::<_, bool>("done")? {
                        return Ok(None);
                    }
                    let ok: bool = slot.get("ok")?;
                    let v: Value = slot.get("value")?;
                    let text = if v.is_undefined() || v.is_null() {
                        String::new()
                    } else if let Some(s) = v.as_string() {
                        s.to_string()?
                    } else {
                        describe(&v)
                    };
                    Ok(Some((ok, text)))
                });
            match slot {
                Ok(Some((true, v))) => return Ok(v),
                Ok(Some((false, e))) => return Err(VmError::Threw(e)),
                Ok(None) => {}
                Err(e) => return Err(VmError::Threw(e.to_string())),
            }
            let next: f64 = self.call_internal("timersNext", vec![])?;
            if next < 0.0 {
                if self.rt.is_job_pending() {
                    continue;
                }
                return Err(VmError::Stalled(op));
            }
            if next > 0.0 {
                let left = deadline.saturating_duration_since(Instant::now());
                let wait = Duration::from_secs_f64(next / 1000.0).min(left);
                std::thread::sleep(wait);
            }
            if let Err(e) = self.call_internal::<bool>("timersRunOne", vec![]) {
                if Instant::now() > deadline {
                    return Err(timeout());
                }
                // An exception in a timer callback is the page's problem, as in a browser.
                tracing::debug!(target: "potproxy::botguard::js", error = %e, "timer callback threw");
            }
        }
    }

    fn drain_microtasks(&self) {
        loop {
            match self.rt.execute_pending_job() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    let msg = e.0.with(|ctx| describe(&ctx.catch()));
                    tracing::debug!(target: "potproxy::botguard::js", error = %msg, "job threw");
                }
            }
        }
    }

    fn handle(&self, cmd: Command) {
        match cmd {
            Command::Load(req, reply) => {
                let _ = reply.send(self.load(&req));
            }
            Command::Snapshot(reply) => {
                let r = self.run_op("snapshot", vec![]).and_then(|resp| {
                    let has = self.call_internal::<bool>("hasMinterFactory", vec![])?;
                    Ok((resp, has))
                });
                let _ = reply.send(r);
            }
            Command::CreateMinter(it, reply) => {
                let r = self.run_op("createMinter", vec![it]).map(|_| ());
                let _ = reply.send(r);
            }
            Command::Mint(binding, reply) => {
                let _ = reply.send(self.run_op("mint", vec![binding]));
            }
            Command::Eval(src, reply) => {
                let _ = reply.send(self.run_op("eval", vec![src]));
            }
            Command::Telemetry(reply) => {
                let r = self.call_internal::<String>("telemetry", vec![]);
                let _ = reply.send(r);
            }
            Command::Stats(reply) => {
                let usage = self.rt.memory_usage();
                let _ = reply.send(VmStats {
                    memory_used_bytes: usage.memory_used_size.max(0) as u64,
                });
            }
        }
    }

    fn load(&self, req: &LoadRequest) -> Result<String, VmError> {
        if let Some(cfg) = &req.ytcfg_json {
            self.call_internal::<()>("setYtcfg", vec![cfg.clone()])?;
        }
        self.eval_global("interpreter", &req.interpreter_js)?;
        self.run_op("load", vec![req.global_name.clone(), req.program.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ms: u64) -> VmLimits {
        VmLimits {
            op_timeout: Duration::from_millis(ms),
            ..VmLimits::default()
        }
    }

    #[tokio::test]
    async fn the_vm_thread_ends_once_the_last_handle_is_dropped() {
        let vm = VmHandle::spawn(limits(2000)).unwrap();
        let copy = vm.clone();
        let exited = vm.exited();
        drop(vm);
        assert_eq!(copy.eval("1 + 1").await.unwrap(), "2", "a handle is left");
        drop(copy);
        tokio::time::timeout(Duration::from_secs(30), exited)
            .await
            .expect("the thread ended");
    }

    #[tokio::test]
    async fn timers_and_microtasks_run_in_browser_order() {
        let vm = VmHandle::spawn(limits(2000)).unwrap();
        let out = vm
            .eval(
                "new Promise((res) => { const log = []; setTimeout(() => log.push('t20'), 20); setTimeout(() => { log.push('t0'); Promise.resolve().then(() => log.push('micro-after-t0')); }, 0); Promise.resolve().then(() => log.push('micro')); setTimeout(() => res(log.join(',')), 40); })",
            )
            .await
            .unwrap();
        assert_eq!(out, "micro,t0,micro-after-t0,t20");
    }

    #[tokio::test]
    async fn a_runaway_script_is_interrupted() {
        let vm = VmHandle::spawn(limits(200)).unwrap();
        let started = Instant::now();
        let e = vm.eval("(() => { for (;;) {} })()").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(e, VmError::Threw(_) | VmError::Timeout { .. }),
            "{e}"
        );
        // The VM thread survives and answers again.
        assert_eq!(vm.eval("1 + 1").await.unwrap(), "2");
    }

    #[tokio::test]
    async fn running_out_of_time_or_memory_marks_the_vm_as_spent() {
        let vm = VmHandle::spawn(VmLimits {
            op_timeout: Duration::from_millis(300),
            memory_limit: 32 * 1024 * 1024,
        })
        .unwrap();
        let e = vm
            .eval("(() => { const a = []; for (;;) a.push(new Array(100000).fill(1)); })()")
            .await
            .unwrap_err();
        assert!(e.hit_limits(), "{e}");
        let e = vm.eval("(() => { for (;;) {} })()").await.unwrap_err();
        assert!(e.hit_limits(), "{e}");
        let e = vm.eval("throw new Error('plain')").await.unwrap_err();
        assert!(!e.hit_limits(), "{e}");
    }

    #[tokio::test]
    async fn a_promise_that_never_settles_times_out() {
        let vm = VmHandle::spawn(limits(300)).unwrap();
        let e = vm
            .eval("new Promise(() => setInterval(() => {}, 50))")
            .await
            .unwrap_err();
        assert!(matches!(e, VmError::Timeout { .. }), "{e}");
        // A fresh VM: the interval above is still scheduled in the first one.
        let vm = VmHandle::spawn(limits(300)).unwrap();
        let e = vm.eval("new Promise(() => {})").await.unwrap_err();
        assert_eq!(e, VmError::Stalled("eval"));
    }

    #[tokio::test]
    async fn deep_recursion_is_a_js_error_not_a_crash() {
        let vm = VmHandle::spawn(limits(5000)).unwrap();
        let e = vm
            .eval("(function f(n) { return f(n + 1) + 1; })(0)")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, VmError::Threw(m) if m.contains("stack")),
            "{e}"
        );
        assert_eq!(vm.eval("'alive'").await.unwrap(), "alive");
    }

    #[tokio::test]
    async fn browser_globals_look_like_a_browser() {
        let vm = VmHandle::spawn(limits(2000)).unwrap();
        let checks = [
            ("window === globalThis && self === window", "true"),
            ("location.origin", "https://www.youtube.com"),
            ("navigator.webdriver", "false"),
            ("/AppleWebKit/.test(navigator.userAgent)", "true"),
            (
                "document.createElement('canvas').getContext('2d')",
                "[object CanvasRenderingContext2D]",
            ),
            ("typeof document.body.appendChild", "function"),
            ("setTimeout.toString().includes('[native code]')", "true"),
            (
                "new TextDecoder().decode(new TextEncoder().encode('héllo €'))",
                "héllo €",
            ),
            ("atob(btoa('\\x00\\xff'))", "\u{0}\u{ff}"),
            ("crypto.getRandomValues(new Uint8Array(8)).length", "8"),
            ("typeof performance.now()", "number"),
            (
                "(() => { let n = 0; addEventListener('x', () => n++); dispatchEvent(new Event('x')); return n; })()",
                "1",
            ),
            (
                "(document.cookie = 'a=1', document.cookie = 'b=2; path=/', document.cookie)",
                "a=1; b=2",
            ),
        ];
        for (expr, want) in checks {
            let got = vm.eval(&format!("String(({expr}) ?? '')")).await.unwrap();
            assert_eq!(got, want, "{expr}");
        }
    }
}
