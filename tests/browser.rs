//! The `browser` token source: headless Chromium minting against the simulated BotGuard, every
//! request it makes fulfilled through potproxy's upstream path (so the in-process fakes over
//! real TLS are reachable), and its process life: crash, hang, shutdown, no process left behind;
//! one browser for every egress, each in its own context (isolated, capped, re-opened after a
//! crash). Skips with a message where no browser is installed; fails instead under `CI`.

mod common;
#[path = "probes/harness.rs"]
#[allow(dead_code)]
mod probes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use common::botguard::Verdict;
use common::chain::start_http_connect_proxy_with_auth;
use common::*;
use futures::StreamExt;
use potproxy::browser::{BrowserMinter, BrowserPool};
use potproxy::config::SourceKind;
use potproxy::upstream::Egress;

const VIDEO: &str = "jNQXAC9IVRw";

/// Processes whose command line names `profile` (every process of one browser does).
fn processes_of(profile: &Path) -> Vec<u32> {
    potproxy::browser::process::pids_with_arg(&format!("--user-data-dir={}", profile.display()))
}

/// Waits (bounded) until no process names `profile`; the pids left otherwise.
async fn gone(profile: &Path) -> Vec<u32> {
    for _ in 0..50 {
        if processes_of(profile).is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processes_of(profile)
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    rustix::process::kill_process(pid, sig).expect("signal the browser");
}

struct Sim {
    origin: FakeOrigin,
    services: potproxy::Services,
    _fakes: Fakes,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn browser(&self) -> Arc<BrowserMinter> {
        self.pool().default_minter()
    }

    fn pool(&self) -> Arc<BrowserPool> {
        self.services.browsers.clone().expect("browser configured")
    }

    /// `n` distinct egresses, each a login on one chaining proxy in front of the fake origin.
    async fn egresses(&self, n: usize) -> Vec<Egress> {
        let (chain, _seen) = start_http_connect_proxy_with_auth(self.origin.addr).await;
        (0..n)
            .map(|i| Egress::parse(&format!("http://user{i}:secret-{i}@{chain}")).unwrap())
            .collect()
    }

    /// The context for `egress`, a token minted in it and checked by the fake.
    async fn mint_via(&self, egress: &Egress, binding: &str) -> Arc<BrowserMinter> {
        let m = self
            .pool()
            .for_egress(Some(egress))
            .await
            .expect("a context");
        let (token, _, _) = m.mint(binding).await.expect("mint");
        assert_eq!(
            self.origin.state.bg.verify(token.as_str(), binding),
            Verdict::Valid
        );
        m
    }
}

async fn sim(extra_toml: &str) -> Sim {
    let fakes = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::builder()
        .sources(&[SourceKind::Browser])
        .toml(extra_toml)
        .config(&fakes, dir.path());
    let services = potproxy::build_services(&config).unwrap();
    Sim {
        origin: fakes.origin.clone(),
        services,
        _fakes: fakes,
        _dir: dir,
    }
}

async fn mint_and_verify(s: &Sim, binding: &str) {
    let (token, _, _) = s.browser().mint(binding).await.expect("mint");
    assert_eq!(
        s.origin.state.bg.verify(token.as_str(), binding),
        Verdict::Valid
    );
}

#[tokio::test]
async fn a_player_request_through_the_proxy_gets_a_browser_minted_token_the_fake_verifies() {
    if !have_browser() {
        return;
    }
    let h = Harness::builder()
        .sources(&[SourceKind::Browser])
        .api(true)
        .start()
        .await;
    h.origin.behaviour().enforce_media = true;
    let body = serde_json::to_vec(&player_body("MWEB", VIDEO)).unwrap();
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let player: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let url = player["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let res = h.client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "media accepted");
    assert!(res.bytes().await.unwrap() == media_bytes(0, DEFAULT_MEDIA_LEN));
    assert_eq!(
        h.origin.verdicts(),
        vec![
            (format!("player {VIDEO}"), Verdict::Valid),
            (format!("media {VIDEO}"), Verdict::Valid)
        ]
    );
    let browsers = h.proxy.services.browsers.clone().expect("browser source");
    let stats = browsers.default_minter().stats();
    assert!(
        stats.mints >= 1 && stats.launches == 1,
        "minted in the browser: {stats:?}"
    );
    assert!(
        browsers.pss_bytes() > 10 << 20,
        "the browser's memory is reported"
    );
    // And scraped: the whole browser, and the configured egress's context.
    let total = h
        .metric("potproxy_browser_pss_bytes ")
        .await
        .expect("browser PSS");
    let context = h
        .metric("potproxy_browser_context_pss_bytes{egress=\"direct\"} ")
        .await
        .expect("the configured egress's context PSS");
    assert!(
        total > 10 << 20 && context > 0 && context < total,
        "{total} {context}"
    );
    let profile = browsers.default_minter().profile_dir().unwrap();
    h.proxy.shutdown().await;
    assert_eq!(
        gone(&profile).await,
        Vec::<u32>::new(),
        "no browser process left"
    );
    assert!(!profile.exists(), "profile removed");
}

#[tokio::test]
async fn the_page_is_youtube_fetches_through_the_proxy_upstream_and_shows_no_automation() {
    if !have_browser() {
        return;
    }
    let s = sim("").await;
    mint_and_verify(&s, VIDEO).await;
    let b = s.browser();
    let v = b
        .evaluate(
            "(async () => { const r = await fetch('/potproxy-probe?x=1'); return { origin: location.origin, status: r.status, webdriver: navigator.webdriver, ua: navigator.userAgent, brands: navigator.userAgentData.brands.map(b => b.brand).join(','), plat: navigator.platform }; })()",
        )
        .await
        .expect("evaluate in the page");
    assert_eq!(v["origin"], "https://www.youtube.com", "{v}");
    assert_eq!(v["webdriver"], false, "{v}");
    let ua = v["ua"].as_str().unwrap();
    assert!(!ua.contains("Headless") && ua.contains("Chrome/"), "{ua}");
    let brands = v["brands"].as_str().unwrap();
    assert!(!brands.contains("Headless"), "{brands}");
    // The page's own request reached the fake origin over potproxy's upstream path (the
    // browser resolves nothing itself), with the same identity.
    let seen: Vec<_> = s
        .origin
        .seen()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/potproxy-probe"))
        .collect();
    assert_eq!(seen.len(), 1, "page fetch reached the origin: {v}");
    assert_eq!(
        seen[0].headers.get("user-agent").map(String::as_str),
        Some(ua)
    );
    // GenerateIT and the challenge were asked for with the browser's user agent too.
    let gen_ua: Vec<_> = s
        .origin
        .seen()
        .into_iter()
        .filter(|r| r.path_and_query.contains("GenerateIT"))
        .map(|r| r.headers.get("user-agent").cloned().unwrap_or_default())
        .collect();
    assert_eq!(gen_ua, vec![ua.to_string()]);
    b.shutdown().await;
}

#[tokio::test]
async fn killing_the_browser_while_it_mints_costs_no_token_and_leaves_no_process() {
    if !have_browser() {
        return;
    }
    let s = sim("").await;
    mint_and_verify(&s, VIDEO).await;
    let b = s.browser();
    let (old_pid, old_profile) = (b.pid(), b.profile_dir().unwrap());
    // Kill it while a mint is under way (the mint runs right after the kill is sent).
    let minting = {
        let b = b.clone();
        tokio::spawn(async move { b.mint("second-binding").await })
    };
    signal(old_pid, rustix::process::Signal::KILL);
    let first = minting.await.unwrap();
    // Either the mint finished before the browser died or it was retried in a new browser.
    assert!(first.is_ok(), "mint during the crash: {first:?}");
    mint_and_verify(&s, "third-binding").await;
    assert_ne!(b.pid(), old_pid, "a new browser runs");
    assert_eq!(
        gone(&old_profile).await,
        Vec::<u32>::new(),
        "old browser's processes left"
    );
    assert!(!old_profile.exists(), "old profile removed");
    let new_profile = b.profile_dir().unwrap();
    b.shutdown().await;
    assert_eq!(gone(&new_profile).await, Vec::<u32>::new());
}

#[tokio::test]
async fn a_hung_browser_times_out_is_replaced_and_the_next_mint_succeeds() {
    if !have_browser() {
        return;
    }
    let s = sim("[tokens.browser]\nmint_timeout_secs = 2\n").await;
    mint_and_verify(&s, VIDEO).await;
    let b = s.browser();
    let (old_pid, old_profile) = (b.pid(), b.profile_dir().unwrap());
    signal(old_pid, rustix::process::Signal::STOP);
    let e = tokio::time::timeout(Duration::from_secs(20), b.mint("while-hung"))
        .await
        .expect("the mint is bounded")
        .unwrap_err();
    assert!(
        matches!(e, potproxy::browser::BrowserError::Timeout { .. }),
        "{e}"
    );
    assert_eq!(
        gone(&old_profile).await,
        Vec::<u32>::new(),
        "hung browser killed"
    );
    mint_and_verify(&s, "after-the-hang").await;
    assert_ne!(b.pid(), old_pid);
    assert_eq!(b.stats().restarts, 1);
    let new_profile: PathBuf = b.profile_dir().unwrap();
    b.shutdown().await;
    assert_eq!(gone(&new_profile).await, Vec::<u32>::new());
}

#[tokio::test]
async fn a_prewarmed_browser_is_closed_on_shutdown() {
    if !have_browser() {
        return;
    }
    let h = Harness::builder()
        .sources(&[SourceKind::Browser])
        .prewarm(true)
        .start()
        .await;
    let b = h.proxy.services.browsers.clone().unwrap().default_minter();
    for _ in 0..300 {
        if b.is_warm() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.is_warm(), "prewarmed without a request");
    assert_eq!(h.origin.counts().generate_it, 1);
    let profile = b.profile_dir().unwrap();
    assert!(!processes_of(&profile).is_empty());
    h.proxy.shutdown().await;
    assert_eq!(
        gone(&profile).await,
        Vec::<u32>::new(),
        "no browser process left"
    );
    assert!(!profile.exists());
}

/// Sockets `pids` hold in the LISTEN state, as `(pid, local address)`, from each process's own
/// view of /proc/net/tcp and tcp6 (its network namespace) and its open descriptors.
fn listening_sockets(pids: &[u32]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let inodes: std::collections::HashSet<String> = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                l.strip_prefix("socket:[")?
                    .strip_suffix(']')
                    .map(str::to_string)
            })
            .collect();
        for table in ["tcp", "tcp6"] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                    out.push((pid, f[1].to_string()));
                }
            }
        }
    }
    out
}

fn browser_exe() -> PathBuf {
    potproxy::browser::find_executable(std::env::var_os("PATH").as_deref()).expect("a browser")
}

#[tokio::test]
async fn no_tcp_devtools_listener() {
    if !have_browser() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // The scan finds a browser's DevTools port where there is one: the same browser with a TCP
    // port asked for on top (as potproxy used to start it).
    let control = potproxy::browser::process::BrowserProcess::launch(
        &browser_exe(),
        &["--remote-debugging-port=0".to_string()],
        &root.path().join("browser"),
        Duration::from_secs(30),
    )
    .await
    .expect("launch");
    let found = listening_sockets(&potproxy::browser::process::tree_pids(control.pid()));
    assert!(!found.is_empty(), "the scan sees a DevTools port");
    drop(control);

    let p = potproxy::browser::process::BrowserProcess::launch(
        &browser_exe(),
        &[],
        &root.path().join("browser"),
        Duration::from_secs(30),
    )
    .await
    .expect("launch");
    let tree = potproxy::browser::process::tree_pids(p.pid());
    assert!(tree.len() >= 3, "the browser's processes: {tree:?}");
    assert_eq!(
        listening_sockets(&tree),
        Vec::new(),
        "no process of the browser listens on TCP"
    );
    assert!(
        !p.profile().join("DevToolsActivePort").exists(),
        "no DevTools port file"
    );
    // The bridge potproxy connected through takes nobody else.
    let url = p.browser.websocket_address().clone();
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let second = match tokio::net::TcpStream::connect(&addr).await {
        Err(_) => None,
        Ok(tcp) => tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .ok(),
    };
    assert!(second.is_none(), "a second client attached to DevTools");
    // potproxy's own connection still drives it.
    p.browser.version().await.expect("DevTools still answers");
    let profile = p.profile().to_path_buf();
    drop(p);
    assert_eq!(gone(&profile).await, Vec::<u32>::new());
}

#[tokio::test]
async fn a_browser_profile_is_private_under_the_state_dir_and_gone_after_close() {
    if !have_browser() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let config = potproxy::config::Config::resolve(
        potproxy::config::RawConfig::default(),
        potproxy::config::Overrides {
            state_dir: Some(state.path().to_path_buf()),
            ..Default::default()
        },
    )
    .unwrap();
    let root = config.tokens.browser.profile_root();
    assert_eq!(root, state.path().join("browser"));
    let p = potproxy::browser::process::BrowserProcess::launch(
        &browser_exe(),
        &[],
        &root,
        Duration::from_secs(30),
    )
    .await
    .expect("launch");
    let profile = p.profile().to_path_buf();
    assert_eq!(profile.parent(), Some(root.as_path()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&profile), 0o700, "profile private");
    assert_eq!(mode(&root), 0o700, "profile root private");
    let name = profile.file_name().unwrap().to_str().unwrap();
    let owner = potproxy::browser::process::profile_owner(name).expect("an owner in the name");
    assert_eq!(owner.pid, std::process::id());
    drop(p);
    assert_eq!(gone(&profile).await, Vec::<u32>::new());
    assert!(!profile.exists(), "profile removed");
}

/// A potproxy binary with the browser source and prewarm, its state in `state`; killed on drop.
struct Potproxy {
    child: std::process::Child,
    log: PathBuf,
}

impl Drop for Potproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Potproxy {
    fn start(state: &Path, fakes: &Fakes, run: &str) -> Potproxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = state.join(format!("{run}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\n[api]\nenabled = false\n[tokens]\nsources = [\"browser\"]\n[tokens.browser]\nprewarm = true\n{}",
                fakes.upstream_toml(None, &[])
            ),
        )
        .unwrap();
        let log = state.join(format!("{run}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_potproxy"))
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(state)
            .current_dir(state)
            .env_remove("POTPROXY_LISTEN")
            .env_remove("POTPROXY_CONFIG")
            .env_remove("YT_DLP_PO_TOKEN")
            .env("POTPROXY_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = Potproxy { child, log };
        for _ in 0..400 {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("potproxy exited ({st}):\n{}", p.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return p;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = p.log();
        drop(p);
        panic!("potproxy did not listen:\n{log}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Profile names under `root` that some running process names as its `--user-data-dir`.
fn profiles_in_use(root: &Path) -> std::collections::BTreeSet<String> {
    let root = root.to_str().unwrap();
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            for a in cmd.split(|b| *b == 0) {
                let a = String::from_utf8_lossy(a);
                if let Some(name) = potproxy::browser::process::profile_in_root(&a, root) {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_no_orphan_after_next_start() {
    if !have_browser() {
        return;
    }
    let fakes = Fakes::start().await;
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("browser");
    let first = Potproxy::start(state.path(), &fakes, "first");
    let mut old = std::collections::BTreeSet::new();
    for _ in 0..300 {
        old = profiles_in_use(&root);
        if !old.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        old.len(),
        1,
        "the first run's browser runs:\n{}",
        first.log()
    );
    let old_profile = root.join(old.iter().next().unwrap());
    assert!(!processes_of(&old_profile).is_empty());
    drop(first); // SIGKILL: no chance to clean up
    // Measured, not asserted: how soon the browser follows potproxy without the sweep.
    let t0 = std::time::Instant::now();
    let mut left = processes_of(&old_profile);
    while !left.is_empty() && t0.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        left = processes_of(&old_profile);
    }
    eprintln!(
        "after SIGKILL of potproxy: {} browser processes left after {:?}",
        left.len(),
        t0.elapsed()
    );
    let second = Potproxy::start(state.path(), &fakes, "second");
    let survivors = processes_of(&old_profile);
    let log = second.log();
    drop(second);
    potproxy::browser::process::sweep_orphans(&root);
    assert_eq!(
        survivors,
        Vec::<u32>::new(),
        "the first run's browser survived"
    );
    assert!(
        !old_profile.exists(),
        "the first run's profile is left:\n{log}"
    );
    assert!(
        log.contains("removed the browsers and profiles of a potproxy that is gone"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_egress_mints_in_its_own_context_of_one_browser_and_sees_no_other_egress_cookies() {
    if !have_browser() {
        return;
    }
    let s = sim("[tokens.browser]\nprewarm = false\n").await;
    let e = s.egresses(2).await;
    let a = s.mint_via(&e[0], "binding-a").await;
    let b = s.mint_via(&e[1], "binding-b").await;
    assert_eq!(s.pool().browser().launches(), 1, "one browser for both");
    assert_eq!(a.pid(), b.pid());
    assert_eq!(s.pool().browser().contexts(), 2);

    // Same origin in both pages; what one stores the other must not see.
    let set = a
        .evaluate("(() => { document.cookie = 'pp_probe=a; path=/; Secure'; localStorage.setItem('pp_probe', 'a'); return document.cookie; })()")
        .await
        .unwrap();
    assert!(set.as_str().unwrap().contains("pp_probe=a"), "{set}");
    let seen = b
        .evaluate(
            "(() => ({ cookie: document.cookie, stored: localStorage.getItem('pp_probe') }))()",
        )
        .await
        .unwrap();
    assert!(
        !seen["cookie"].as_str().unwrap().contains("pp_probe"),
        "cookie leaked across egresses: {seen}"
    );
    assert_eq!(seen["stored"], serde_json::Value::Null, "{seen}");
    // The egress that set it still has it.
    let again = a.evaluate("document.cookie").await.unwrap();
    assert!(again.as_str().unwrap().contains("pp_probe=a"), "{again}");

    // Memory: the whole browser, and each context's own renderer.
    let pool = s.pool();
    let total = pool.pss_bytes();
    assert!(total > 10 << 20, "browser PSS {total}");
    let contexts = pool.context_pss();
    assert_eq!(contexts.len(), 2, "{contexts:?}");
    assert_ne!(a.renderer_pids(), b.renderer_pids());
    for (egress, pss) in contexts {
        assert!(pss > 0 && pss < total, "{egress}: {pss} of {total}");
    }
    let profile = a.profile_dir().unwrap();
    pool.shutdown().await;
    assert_eq!(gone(&profile).await, Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_context_cap_the_least_recently_used_egress_context_is_closed_and_counted() {
    if !have_browser() {
        return;
    }
    let s = sim("[tokens.browser]\nprewarm = false\nmax_contexts = 2\n").await;
    let e = s.egresses(3).await;
    let before = potproxy::metrics::EGRESS_EVICTIONS.get(&["browser_context"]);
    let first = s.mint_via(&e[0], "first").await;
    s.mint_via(&e[1], "second").await;
    // The first is used again, so the second is now the least recently used.
    s.mint_via(&e[0], "first-again").await;
    let third = s.mint_via(&e[2], "third").await;
    let pool = s.pool();
    assert_eq!(pool.evictions(), 1);
    assert!(potproxy::metrics::EGRESS_EVICTIONS.get(&["browser_context"]) > before);
    assert_eq!(pool.browser().contexts(), 2, "at most the cap open");
    assert!(
        pool.existing(Some(&e[1])).is_none(),
        "the idle one was closed"
    );
    assert!(first.has_context() && third.has_context());
    assert_eq!(
        pool.browser().launches(),
        1,
        "contexts come and go, the browser stays"
    );
    // The closed egress gets a fresh context when it comes back, in place of the least
    // recently used of the two once nobody holds them.
    drop((first, third));
    let back = s.mint_via(&e[1], "second-again").await;
    assert!(back.has_context());
    assert_eq!(pool.evictions(), 2);
    assert!(pool.existing(Some(&e[0])).is_none() && pool.existing(Some(&e[2])).is_some());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_crash_with_three_contexts_in_use_reopens_all_three_in_one_new_browser() {
    if !have_browser() {
        return;
    }
    let s = sim("[tokens.browser]\nprewarm = false\n").await;
    let e = s.egresses(3).await;
    let mut ms = Vec::new();
    for (i, egress) in e.iter().enumerate() {
        ms.push(s.mint_via(egress, &format!("before-{i}")).await);
    }
    let pool = s.pool();
    let (old_pid, old_profile) = (pool.browser().pid(), pool.browser().profile_dir().unwrap());
    signal(old_pid, rustix::process::Signal::KILL);
    assert_eq!(gone(&old_profile).await, Vec::<u32>::new());
    // All three mint again, at once, each through its own egress.
    let minted: Vec<_> = futures::stream::iter(ms.iter().enumerate())
        .map(|(i, m)| async move { (i, m.mint(&format!("after-{i}")).await) })
        .buffer_unordered(3)
        .collect()
        .await;
    for (i, r) in minted {
        let (token, _, _) = r.unwrap_or_else(|e| panic!("egress {i} after the crash: {e}"));
        assert_eq!(
            s.origin
                .state
                .bg
                .verify(token.as_str(), &format!("after-{i}")),
            Verdict::Valid
        );
    }
    let b = pool.browser();
    assert_eq!(b.launches(), 2, "one new browser, not one per context");
    assert_ne!(b.pid(), old_pid);
    assert!(ms.iter().all(|m| m.pid() == b.pid() && m.has_context()));
    assert_eq!(b.contexts(), 3);
    assert!(!processes_of(&b.profile_dir().unwrap()).is_empty());
    let profile = b.profile_dir().unwrap();
    pool.shutdown().await;
    assert_eq!(gone(&profile).await, Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_egresses_used_at_once_for_the_first_time_start_a_single_browser() {
    if !have_browser() {
        return;
    }
    let s = sim(
        "[tokens.browser]\nprewarm = false\nwarmup_timeout_secs = 120\nmint_timeout_secs = 60\n",
    )
    .await;
    let e = s.egresses(5).await;
    let s = &s;
    let pids: Vec<u32> = futures::stream::iter(e.iter().enumerate())
        .map(|(i, egress)| async move { s.mint_via(egress, &format!("at-once-{i}")).await.pid() })
        .buffer_unordered(5)
        .collect()
        .await;
    let pool = s.pool();
    assert_eq!(
        pool.browser().launches(),
        1,
        "one browser for five egresses"
    );
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    assert_eq!(pool.browser().contexts(), 5);
    pool.shutdown().await;
}

/// The probe suite in a minter's page (what BotGuard sees), with the browser's flags plus
/// `args`.
async fn probe_values(args: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let s = sim(&format!(
        "[tokens.browser]\nprewarm = false\nargs = [{args}]\n"
    ))
    .await;
    let v = s
        .browser()
        .evaluate(&format!("({})()", probes::PROBES_JS))
        .await
        .expect("the probe suite runs in the page");
    s.pool().shutdown().await;
    let run: probes::ProbeRun = serde_json::from_value(v).expect("probe results");
    run.values
}

#[tokio::test]
async fn the_memory_saving_flags_change_nothing_the_page_can_probe() {
    if !have_browser() {
        return;
    }
    // A later --disable-features replaces ours: the spare renderer and the omnibox WebUI are back.
    let without = probe_values("\"--disable-features=PotproxyNoSuchFeature\"").await;
    let with = probe_values("").await;
    assert!(with.len() > 50, "{} probes", with.len());
    let differ: Vec<_> = with
        .iter()
        .filter(|(k, v)| without.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {v} vs {:?}", without.get(k)))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
}

/// The window and screen a minter's page sees: `[outerWidth, outerHeight, screenX, screenY,
/// screen.width, screen.height, screen.availWidth, screen.availHeight]`, with the browser's flags
/// plus `args`.
async fn geometry(args: &str) -> Vec<i64> {
    let s = sim(&format!(
        "[tokens.browser]\nprewarm = false\nargs = [{args}]\n"
    ))
    .await;
    let v = s
        .browser()
        .evaluate("[outerWidth, outerHeight, screenX, screenY, screen.width, screen.height, screen.availWidth, screen.availHeight]")
        .await
        .expect("geometry");
    s.pool().shutdown().await;
    serde_json::from_value(v).expect("numbers")
}

/// Whether a window `[w, h, x, y]` lies inside a screen `[sw, sh, aw, ah]` (and its work area).
fn fits(g: &[i64]) -> bool {
    let [w, h, x, y, sw, sh, aw, ah] = g[..] else {
        return false;
    };
    x >= 0 && y >= 0 && x + w <= aw.min(sw) && y + h <= ah.min(sh)
}

#[tokio::test]
async fn the_minters_window_fits_inside_its_screen() {
    if !have_browser() {
        return;
    }
    let ours = geometry("").await;
    assert!(
        fits(&ours),
        "window and screen as the page sees them: {ours:?}"
    );
    assert_eq!(&ours[..2], &[1920, 1080], "a desktop-sized window");
    // Headless Chromium's own screen (800x600) would hold no such window: the check can fail.
    let headless_default = geometry("\"--screen-info={800x600}\"").await;
    assert!(!fits(&headless_default), "{headless_default:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_egress_contexts_are_closed_the_browser_with_the_last_and_they_reopen_on_use() {
    if !have_browser() {
        return;
    }
    let s = sim("[tokens.browser]\nprewarm = false\n").await;
    let e = s.egresses(2).await;
    let pool = s.pool();
    drop(s.mint_via(&e[0], "idle-0").await);
    let busy = s.mint_via(&e[1], "busy-1").await;
    // A context used within the idle time stays, judged when it would be closed.
    assert!(!busy.close_if_idle(Duration::from_secs(3600)).await);
    assert!(busy.has_context());
    // A context someone holds for a request stays, however long unused.
    assert_eq!(pool.close_idle(Duration::ZERO).await, 1);
    assert_eq!(pool.browser().contexts(), 1);
    assert!(busy.has_context());
    assert!(!pool.existing(Some(&e[0])).unwrap().has_context());
    // The last context closed stops the browser.
    let profile = pool.browser().profile_dir().unwrap();
    drop(busy);
    assert_eq!(pool.close_idle(Duration::ZERO).await, 1);
    assert_eq!(pool.browser().pid(), 0);
    assert_eq!(gone(&profile).await, Vec::<u32>::new(), "browser stopped");
    // Both come back on their next use, in one new browser.
    s.mint_via(&e[0], "back-0").await;
    s.mint_via(&e[1], "back-1").await;
    assert_eq!(pool.browser().launches(), 2);
    assert_eq!(pool.browser().contexts(), 2);
    pool.shutdown().await;
}
