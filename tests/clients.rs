//! Real clients through the proxy: yt-dlp (inject, placeholder and full-flow modes, and with the
//! unmodified bgutil plugin asking our API). They come from `.ci/run`'s setup
//! (`target/clients`, or `POTPROXY_CLIENTS`); each test skips with a message when its client is
//! absent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::botguard::Verdict;
use common::youtube::VISITOR_DATA;
use common::*;
use potproxy::config::SourceKind;

const V: &str = "jNQXAC9IVRw";

fn clients_dir() -> PathBuf {
    std::env::var_os("POTPROXY_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients"))
}

fn yt_dlp() -> Option<PathBuf> {
    let p = clients_dir().join("venv/bin/yt-dlp");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipping: yt-dlp not found at {} (run .ci/run's setup or set POTPROXY_CLIENTS)",
            p.display()
        );
        None
    }
}

/// The proxy `builder` makes, minting with BotGuard, against fakes that refuse media without a
/// valid token; `tweak` sets more of their behaviour.
async fn minting_proxy(builder: HarnessBuilder, tweak: impl FnOnce(&mut Behaviour)) -> Harness {
    let h = builder.sources(&[SourceKind::BotGuard]).start().await;
    {
        let mut b = h.origin.behaviour();
        b.enforce_media = true;
        tweak(&mut b);
    }
    h
}

/// A yt-dlp run that succeeded: its output files in `dir`, its output.
struct Run {
    dir: tempfile::TempDir,
    stdout: String,
    stderr: String,
}

/// Runs yt-dlp through the proxy, trusting its CA the way the README says, writing into a
/// fresh temp dir; fails the test with its stderr when it fails.
async fn run_yt_dlp(bin: &Path, h: &Harness, args: &[&str]) -> Run {
    run_yt_dlp_via(bin, &format!("http://{}", h.proxy.addr), h, args).await
}

/// [`run_yt_dlp`] through the proxy URL `proxy` (HTTP or SOCKS5).
async fn run_yt_dlp_via(bin: &Path, proxy: &str, h: &Harness, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("--proxy")
        .arg(proxy)
        .args(["--compat-options", "no-certifi"])
        .env("SSL_CERT_FILE", &h.proxy.ca_cert_path)
        .args(["--no-cache-dir", "--ignore-config", "--no-progress", "-v"])
        .arg("-o")
        .arg(dir.path().join("%(id)s.%(ext)s"))
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "yt-dlp failed:\n{stderr}");
    Run {
        dir,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

fn watch_url() -> String {
    format!("https://www.youtube.com/watch?v={V}")
}

fn assert_downloaded(run: &Run) {
    let file = run.dir.path().join(format!("{V}.m4a"));
    let bytes = std::fs::read(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nstdout:\n{}\nstderr:\n{}",
            file.display(),
            run.stdout,
            run.stderr
        )
    });
    assert_eq!(bytes.len() as u64, DEFAULT_MEDIA_LEN);
    assert!(
        bytes == media_bytes(0, DEFAULT_MEDIA_LEN),
        "file differs from the origin's bytes"
    );
}

/// yt-dlp in inject mode (no token of its own) downloads itag 140 in 1 MB ranges through
/// potproxy's HTTP listener or, with `socks`, its SOCKS5 listener (`socks5h://`): the file is
/// byte-exact and every player and media request carried a valid token.
async fn inject_mode_downloads_over_several_ranges(socks: bool) {
    let Some(bin) = yt_dlp() else { return };
    let mut builder = Harness::builder();
    if socks {
        builder = builder.toml("[socks]\nlisten = \"127.0.0.1:0\"\n");
    }
    let h = minting_proxy(builder, |_| {}).await;
    let proxy = match h.proxy.socks_addr {
        Some(socks) => format!("socks5h://{socks}"),
        None => format!("http://{}", h.proxy.addr),
    };
    let run = run_yt_dlp_via(
        &bin,
        &proxy,
        &h,
        &[
            "--extractor-args",
            "youtube:player_client=mweb;player_skip=webpage,configs,js,initial_data;formats=missing_pot",
            "--http-chunk-size",
            "1M",
            "-f",
            "140",
            &watch_url(),
        ],
    )
    .await;
    assert_downloaded(&run);
    let verdicts = h.origin.verdicts();
    assert!(
        verdicts.contains(&(format!("player {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
    let media: Vec<_> = verdicts
        .iter()
        .filter(|(w, _)| w.starts_with("media"))
        .collect();
    assert!(media.len() >= 3, "several Range requests: {media:?}");
    assert!(media.iter().all(|(_, v)| *v == Verdict::Valid), "{media:?}");
}

#[tokio::test]
async fn yt_dlp_inject_mode_downloads_over_several_ranges_with_our_tokens() {
    inject_mode_downloads_over_several_ranges(false).await;
}

#[tokio::test]
async fn yt_dlp_through_socks5h_downloads_over_several_ranges_with_our_tokens() {
    inject_mode_downloads_over_several_ranges(true).await;
}

/// yt-dlp, which cannot speak SABR, against a fake that answers web clients SABR-only: the
/// format gets a gateway URL, yt-dlp fetches it in ranges, potproxy serves each from its own
/// SABR session; the file is byte-exact and every SABR request carried a valid token.
async fn yt_dlp_downloads_a_sabr_only_format(
    itag: u32,
    ext: &str,
    extractor_args: &str,
) -> Vec<Seen> {
    use common::sabr::{SabrBehaviour, format};
    let Some(bin) = yt_dlp() else {
        return Vec::new();
    };
    let h = minting_proxy(Harness::builder(), |b| {
        b.sabr = SabrBehaviour::on();
        // yt-dlp skips a format whose URL has an `n` it cannot solve (no player JS here).
        b.sabr.n_param = false;
    })
    .await;
    let run = run_yt_dlp(
        &bin,
        &h,
        &[
            "--extractor-args",
            extractor_args,
            "--http-chunk-size",
            "300K",
            "--fixup",
            "never",
            "-f",
            &itag.to_string(),
            &watch_url(),
        ],
    )
    .await;
    let file = run.dir.path().join(format!("{V}.{ext}"));
    let bytes =
        std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), run.stderr));
    let clen = format(itag).clen;
    assert_eq!(bytes.len() as u64, clen);
    assert!(
        bytes == media_bytes(0, clen),
        "file differs from the format's bytes"
    );
    let seen = h.origin.take();
    let sabr_posts = seen
        .iter()
        .filter(|s| s.path_and_query.contains("sabr=1"))
        .count();
    assert!(sabr_posts >= 2, "several SABR requests: {sabr_posts}");
    let requests = h.origin.sabr_requests();
    assert!(requests.iter().all(|r| r.token_valid), "{requests:#?}");
    assert_eq!(h.origin.sabr_violations(), Vec::<String>::new());
    seen
}

#[tokio::test]
async fn yt_dlp_downloads_sabr_only_audio_140_byte_exact_through_the_gateway() {
    yt_dlp_downloads_a_sabr_only_format(140, "m4a", API_ARGS).await;
}

#[tokio::test]
async fn yt_dlp_downloads_sabr_only_video_137_byte_exact_through_the_gateway() {
    yt_dlp_downloads_a_sabr_only_format(137, "mp4", API_ARGS).await;
}

/// The web client reads its formats from the watch page's `ytInitialPlayerResponse`.
#[tokio::test]
async fn yt_dlp_downloads_a_sabr_only_format_from_the_watch_pages_player_response() {
    let seen = yt_dlp_downloads_a_sabr_only_format(
        140,
        "m4a",
        "youtube:player_client=web;player_skip=configs,js;formats=missing_pot",
    )
    .await;
    if seen.is_empty() {
        return;
    }
    assert!(
        seen.iter().any(|s| s.path_and_query.starts_with("/watch")),
        "yt-dlp read the watch page"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.path_and_query.contains("/youtubei/v1/player")),
        "the formats came from the page, not the player API"
    );
}

/// yt-dlp's player API path (mweb, no watch page).
const API_ARGS: &str =
    "youtube:player_client=mweb;player_skip=webpage,configs,js,initial_data;formats=missing_pot";

#[tokio::test]
async fn yt_dlp_placeholder_mode_never_lets_the_sentinel_through() {
    let Some(bin) = yt_dlp() else { return };
    let h = minting_proxy(
        Harness::builder().toml("[tokens]\nsentinels = [\"POTPROXYSENTINEL\"]\n"),
        |_| {},
    )
    .await;
    let run = run_yt_dlp(
        &bin,
        &h,
        &[
            "--extractor-args",
            "youtube:player_client=mweb;player_skip=webpage,configs,js,initial_data;po_token=mweb.gvs+POTPROXYSENTINEL,mweb.player+POTPROXYSENTINEL",
            "--http-chunk-size",
            "1M",
            "-f",
            "140",
            &watch_url(),
        ],
    )
    .await;
    assert_downloaded(&run);
    let seen = h.origin.seen();
    for s in &seen {
        assert!(
            !s.path_and_query.contains("POTPROXYSENTINEL"),
            "{}",
            s.path_and_query
        );
        assert!(!String::from_utf8_lossy(&s.body).contains("POTPROXYSENTINEL"));
        if s.path_and_query.starts_with("/videoplayback") {
            assert_eq!(s.query_values("pot").len(), 1, "{}", s.path_and_query);
        }
    }
    let verdicts = h.origin.verdicts();
    assert!(
        verdicts.contains(&(format!("player {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
    assert!(
        verdicts
            .iter()
            .filter(|(w, _)| w.starts_with("media"))
            .all(|(_, v)| *v == Verdict::Valid)
    );
}

#[tokio::test]
async fn yt_dlp_with_the_bgutil_plugin_gets_its_tokens_from_our_api() {
    let Some(bin) = yt_dlp() else { return };
    // Without the watch page yt-dlp binds GVS tokens to the visitor data.
    let h = minting_proxy(Harness::builder().api(true), |b| {
        b.gvs_regime = GvsRegime::Session
    })
    .await;
    let base_url = format!(
        "youtubepot-bgutilhttp:base_url=http://{}",
        h.proxy.api_addr.unwrap()
    );
    let run = run_yt_dlp(
        &bin,
        &h,
        &[
            "--extractor-args",
            &format!("youtube:player_client=mweb;player_skip=webpage,configs,js,initial_data;visitor_data={VISITOR_DATA}"),
            "--extractor-args",
            &base_url,
            "-f",
            "140",
            &watch_url(),
        ],
    )
    .await;
    assert!(
        run.stderr.contains("bgutil:http"),
        "plugin loaded:\n{}",
        run.stderr
    );
    assert_downloaded(&run);
    let bg = h.proxy.services.botguard.clone().unwrap();
    assert!(bg.stats().mints >= 1, "our API minted");
    let seen = h.origin.seen();
    let media = seen
        .iter()
        .find(|s| s.path_and_query.starts_with("/videoplayback"))
        .unwrap();
    let pot = &media.query_values("pot")[0];
    assert_eq!(
        h.origin.state.bg.verify(pot, VISITOR_DATA),
        Verdict::Valid,
        "the plugin's token, bound to the visitor data"
    );
}

#[tokio::test]
async fn youtubei_js_player_and_media_requests_carry_our_tokens() {
    let Some(dir) = node_clients("youtubei.js") else {
        return;
    };
    let h = minting_proxy(Harness::builder(), |_| {}).await;
    let proxy = format!("http://{}", h.proxy.addr);
    let ca = h.proxy.ca_cert_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("player.mjs"))
            .arg(proxy)
            .arg(V)
            .env("NODE_EXTRA_CA_CERTS", ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], 206, "{v}");
    assert_eq!(v["bytes"], 1000);
    let seen = h.origin.seen();
    let player = seen
        .iter()
        .find(|s| s.path_and_query.starts_with("/youtubei/v1/player"))
        .unwrap();
    assert!(
        player.path_and_query.contains("alt=json"),
        "{}",
        player.path_and_query
    );
    let verdicts = h.origin.verdicts();
    assert!(
        verdicts.contains(&(format!("player {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&(format!("media {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
}

#[tokio::test]
async fn yt_dlp_full_flow_teaches_the_proxy_the_session() {
    let Some(bin) = yt_dlp() else { return };
    let h = minting_proxy(Harness::builder(), |b| {
        // This session is in the session-bound regime, and its pages say so.
        b.gvs_regime = GvsRegime::Session;
        b.page_flag_video_bound = Some(false);
    })
    .await;
    let run = run_yt_dlp(
        &bin,
        &h,
        &[
            "--extractor-args",
            "youtube:player_client=mweb;formats=missing_pot",
            "-f",
            "140",
            &watch_url(),
        ],
    )
    .await;
    assert_downloaded(&run);
    let seen = h.origin.seen();
    let paths: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.host, s.path_and_query))
        .collect();
    // The player JS URL comes from the page's ytcfg, so /iframe_api is only a fallback.
    for path in ["/watch", "/s/player/abcd1234/", "/youtubei/v1/player"] {
        assert!(
            seen.iter().any(|s| s.path_and_query.starts_with(path)),
            "yt-dlp fetched {path}: {paths:#?}"
        );
    }
    // Learned from the watch page: the first media token was already session-bound, so no
    // request was refused.
    let media: Vec<_> = h
        .origin
        .verdicts()
        .into_iter()
        .filter(|(w, _)| w.starts_with("media"))
        .collect();
    assert!(!media.is_empty());
    assert!(media.iter().all(|(_, v)| *v == Verdict::Valid), "{media:?}");
}

/// Headless Debian chromium (large; .ci/run installs it): a missing one skips locally, fails in CI.
fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if !p.exists() {
        assert!(
            !common::testutil::ci(),
            "/usr/bin/chromium is missing under CI (.ci/run installs it)"
        );
        eprintln!(
            "skipping: /usr/bin/chromium not installed (apt-get install chromium libnss3-tools)"
        );
        return None;
    }
    Some(p)
}

/// Loads the fake YouTube test page in headless Chromium through `proxy_server` (Chromium's
/// `--proxy-server` value) and returns what the page reported.
async fn chromium_page_via(bin: PathBuf, h: &Harness, proxy_server: String) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    assert!(
        ok(Command::new("certutil").args(["-d", &db, "-N", "--empty-password"])),
        "certutil -N"
    );
    assert!(ok(Command::new("certutil")
        .args(["-d", &db, "-A", "-t", "C,,", "-n", "potproxy", "-i"])
        .arg(&h.proxy.ca_cert_path)));
    let proxy = format!("--proxy-server={proxy_server}");
    let profile = format!("--user-data-dir={}", home.path().join("profile").display());
    let home_dir = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .env("HOME", &home_dir)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--virtual-time-budget=8000",
                "--dump-dom",
            ])
            .arg(profile)
            .arg(proxy)
            .arg("https://www.youtube.com/potproxy-test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split("RESULT:")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| {
            panic!(
                "no result in DOM:\n{dom}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(&result.replace("&quot;", "\"")).unwrap()
}

fn assert_page_fetched_with_valid_tokens(h: &Harness, v: &serde_json::Value) {
    assert_eq!(v["player"], 200, "{v}");
    assert_eq!(v["media"], 200, "{v}");
    assert_eq!(v["bytes"], DEFAULT_MEDIA_LEN, "{v}");
    let verdicts = h.origin.verdicts();
    assert!(
        verdicts.contains(&(format!("player {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&(format!("media {V}"), Verdict::Valid)),
        "{verdicts:?}"
    );
}

#[tokio::test]
async fn chromium_page_fetches_player_and_media_through_the_proxy() {
    let Some(bin) = chromium() else { return };
    let h = minting_proxy(Harness::builder(), |_| {}).await;
    let v = chromium_page_via(bin, &h, format!("http://{}", h.proxy.addr)).await;
    assert_page_fetched_with_valid_tokens(&h, &v);
}

/// A browser plays SABR itself: through potproxy it gets a SABR-only player response exactly as
/// YouTube sent it, without gateway URLs.
#[tokio::test]
async fn chromium_gets_a_sabr_only_response_without_gateway_urls() {
    let Some(bin) = chromium() else { return };
    let h = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .start()
        .await;
    h.origin.behaviour().sabr = common::sabr::SabrBehaviour::on();
    let v = chromium_page_via(bin, &h, format!("http://{}", h.proxy.addr)).await;
    assert_eq!(v["player"], 200, "{v}");
    assert_eq!(v["sabr_url"], true, "{v}");
    assert_eq!(v["format_urls"], 0, "no gateway URL for a browser: {v}");
}

#[tokio::test]
async fn chromium_through_socks5_fetches_player_and_media_with_our_tokens() {
    let Some(bin) = chromium() else { return };
    let h = minting_proxy(
        Harness::builder().toml("[socks]\nlisten = \"127.0.0.1:0\"\n"),
        |_| {},
    )
    .await;
    let socks = h.proxy.socks_addr.unwrap();
    let v = chromium_page_via(bin, &h, format!("socks5://{socks}")).await;
    assert_page_fetched_with_valid_tokens(&h, &v);
}
