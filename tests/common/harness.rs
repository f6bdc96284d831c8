//! Starting a proxy under test: [`Fakes`] (the test PKI and the fake origin), a
//! [`HarnessBuilder`] whose typed options say what the proxy runs with, and the [`Harness`] it
//! returns with clients that reach the fakes through the proxy.
//!
//! Defaults keep tests independent and quiet: static tokens only, no cache file, no
//! pre-warming, the API off (and on an ephemeral port when on), every fake name resolved to the
//! fake origin. Typed options win over raw TOML; the TOML is for keys without a typed option and
//! is passed through, never inspected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use potproxy::RunningProxy;
use potproxy::config::{Config, Overrides, RawConfig, SourceKind};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::STATIC_TOKEN;
use super::origin::FakeOrigin;
use super::pki::{FAKE_NAMES, TestPki};

/// The test PKI and the fake origin presenting it; start these first when another server (a
/// chained upstream proxy) must point at the origin before the proxy starts.
pub struct Fakes {
    pub pki: TestPki,
    pub origin: FakeOrigin,
}

impl Fakes {
    pub async fn start() -> Self {
        let pki = TestPki::new();
        let origin = FakeOrigin::start(&pki).await;
        Fakes { pki, origin }
    }

    /// The `[upstream]` table that reaches the fakes: the test CA trusted, every fake name (and
    /// `extra_resolve`) resolved to its address, chained through `proxy` when given.
    pub fn upstream_toml(
        &self,
        proxy: Option<&str>,
        extra_resolve: &[(String, SocketAddr)],
    ) -> String {
        let mut text = format!(
            "[upstream]\nextra_ca_certs = [{:?}]\n",
            self.pki.ca_path.to_str().unwrap()
        );
        if let Some(url) = proxy {
            text.push_str(&format!("proxy = {url:?}\n"));
        }
        text.push_str("\n[upstream.resolve]\n");
        let fakes = FAKE_NAMES.iter().map(|h| (h.to_string(), self.origin.addr));
        for (host, addr) in fakes.chain(extra_resolve.iter().cloned()) {
            text.push_str(&format!("\"{host}\" = \"{addr}\"\n"));
        }
        text
    }
}

/// Everything a test needs: fakes, the proxy, and its CA.
pub struct Harness {
    pub pki: TestPki,
    pub origin: FakeOrigin,
    pub proxy: RunningProxy,
    pub ca_dir: tempfile::TempDir,
}

/// What the proxy under test runs with; see the module docs for the defaults.
#[derive(Debug, Clone)]
pub struct HarnessBuilder {
    sources: Vec<SourceKind>,
    static_token: bool,
    api: bool,
    api_listen: SocketAddr,
    cache_file: Option<PathBuf>,
    prewarm: bool,
    strict: bool,
    upstream_proxy: Option<String>,
    resolve: Vec<(String, SocketAddr)>,
    toml: String,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        HarnessBuilder {
            sources: vec![SourceKind::Static],
            static_token: false,
            api: false,
            // Tests run in parallel: never a fixed port.
            api_listen: "127.0.0.1:0".parse().unwrap(),
            cache_file: None,
            prewarm: false,
            strict: false,
            upstream_proxy: None,
            resolve: Vec::new(),
            toml: String::new(),
        }
    }
}

impl Harness {
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }
}

impl HarnessBuilder {
    /// The token sources, in order (default: static only).
    pub fn sources(mut self, sources: &[SourceKind]) -> Self {
        self.sources = sources.to_vec();
        self
    }

    /// Serve [`STATIC_TOKEN`] as the static default (as `[tokens.static]`; do not also write
    /// that table in [`Self::toml`]).
    pub fn static_token(mut self) -> Self {
        self.static_token = true;
        self
    }

    /// The bgutil-compatible API (default: off).
    pub fn api(mut self, on: bool) -> Self {
        self.api = on;
        self
    }

    /// Where the API listens when on (default: an ephemeral port).
    pub fn api_listen(mut self, addr: SocketAddr) -> Self {
        self.api_listen = addr;
        self
    }

    /// Persist the token cache here (default: no cache file).
    pub fn cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_file = Some(path.into());
        self
    }

    /// Warm a minter (and start the browser, with the `browser` source) at start-up (default:
    /// no).
    pub fn prewarm(mut self, on: bool) -> Self {
        self.prewarm = on;
        self
    }

    /// Refuse requests that need a token when there is none (default: no).
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// Chain upstream traffic through this proxy URL (written into the harness's `[upstream]`).
    pub fn upstream_proxy(mut self, url: &str) -> Self {
        self.upstream_proxy = Some(url.to_string());
        self
    }

    /// Resolve `host` to `addr` besides the fake names.
    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> Self {
        self.resolve.push((host.to_string(), addr));
        self
    }

    /// Raw TOML tables for keys without a typed option, appended as given. The harness writes
    /// `listen`, `[ca]` and `[upstream]` itself (and `[tokens.static]` with
    /// [`Self::static_token`]).
    pub fn toml(mut self, extra: &str) -> Self {
        self.toml.push_str(extra);
        if !self.toml.ends_with('\n') {
            self.toml.push('\n');
        }
        self
    }

    /// The configuration the proxy would run with against `fakes`, its CA kept in `ca_dir`.
    pub fn config(&self, fakes: &Fakes, ca_dir: &Path) -> Config {
        let mut text = format!("listen = \"127.0.0.1:0\"\n\n{}\n", self.toml);
        if self.static_token {
            text.push_str(&format!(
                "[tokens.static]\ndefault = \"{STATIC_TOKEN}\"\n\n"
            ));
        }
        text.push_str(&format!("[ca]\ndir = {:?}\n\n", ca_dir.to_str().unwrap()));
        text.push_str(&fakes.upstream_toml(self.upstream_proxy.as_deref(), &self.resolve));
        let raw = RawConfig::parse(&text, Path::new("harness.toml"))
            .unwrap_or_else(|e| panic!("harness config: {e}\n{text}"));
        let mut config = Config::resolve(raw, Overrides::default())
            .unwrap_or_else(|e| panic!("harness config: {e}\n{text}"));
        config.tokens.sources = self.sources.clone();
        config.tokens.cache_file = self.cache_file.clone();
        config.tokens.botguard.prewarm = self.prewarm;
        config.tokens.browser.prewarm = self.prewarm;
        config.strict = self.strict;
        config.api.enabled = self.api;
        config.api.listen = self.api_listen;
        config
    }

    /// Starts fresh fakes and the proxy.
    pub async fn start(self) -> Harness {
        self.start_on(Fakes::start().await).await
    }

    /// Starts the proxy against fakes already running.
    pub async fn start_on(self, fakes: Fakes) -> Harness {
        let ca_dir = tempfile::tempdir().unwrap();
        let config = self.config(&fakes, ca_dir.path());
        let proxy = potproxy::start(config).await.unwrap();
        Harness {
            pki: fakes.pki,
            origin: fakes.origin,
            proxy,
            ca_dir,
        }
    }
}

/// A reqwest client that goes through `proxy` and trusts only the CA in `ca_pem`.
pub fn client_via(proxy: SocketAddr, ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{proxy}")).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .tls_built_in_root_certs(false)
        .no_gzip()
        .build()
        .unwrap()
}

impl Harness {
    /// The value of one series (`series`: its name and labels as printed) in the
    /// API's `/metrics`, asked directly (never through a proxy); `None` when absent.
    pub async fn metric(&self, series: &str) -> Option<u64> {
        let text = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{}/metrics", self.proxy.api_addr.unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// A reqwest client that goes through the proxy and trusts only the proxy's CA.
    pub fn client(&self) -> reqwest::Client {
        client_via(self.proxy.addr, self.proxy.ca_cert_pem.as_bytes())
    }

    /// A reqwest client that goes through the proxy but trusts only the *upstream* test CA: it
    /// can only succeed where the proxy does not intercept.
    pub fn tunnel_client(&self) -> reqwest::Client {
        client_via(self.proxy.addr, self.pki.ca_pem.as_bytes())
    }

    /// A rustls client config trusting the proxy's CA, for raw-socket tests.
    pub fn proxy_tls(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.proxy.ca_cert_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Arc::new(cfg)
    }
}

/// Sends a raw CONNECT preamble and reads the proxy's reply head.
pub async fn raw_connect(proxy: SocketAddr, preamble: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(preamble.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).await.unwrap();
        if n == 0 {
            break;
        }
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// TLS as `sni` over an already `CONNECT`ed socket, trusting the proxy's CA, then one HTTP/1.1
/// player request for `client` and `video`; the raw answer, head and body.
pub async fn player_over_raw_tunnel(
    h: &Harness,
    stream: TcpStream,
    sni: &str,
    client: &str,
    video: &str,
) -> String {
    let tls = tokio_rustls::TlsConnector::from(h.proxy_tls(&[b"http/1.1"]));
    let mut tls = tls
        .connect(sni.to_string().try_into().unwrap(), stream)
        .await
        .expect("proxy's leaf must verify against its CA");
    let body = serde_json::to_vec(&super::player_body(client, video)).unwrap();
    let head = format!(
        "POST /youtubei/v1/player?prettyPrint=false HTTP/1.1\r\nHost: www.youtube.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}
