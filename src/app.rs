//! Building and running the whole proxy from a [`Config`]: the CA, the services, the provider
//! API listener and the MITM proxy listener, wired together. The only module besides `main`
//! that reads the whole configuration; everything below it gets its own settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hudsucker::Proxy;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::ca::{CaError, CertificateAuthority};
use crate::config::Config;
use crate::handler::{PotHandler, RewriteSettings, Shared};
use crate::intercept::InterceptPolicy;
use crate::services::{Services, instance_id};
use crate::upstream::{Resolver, UpstreamError};
use crate::{api, learn, upstream};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("proxy setup failed: {0}")]
    Proxy(#[source] hudsucker::Error),
    /// The proxy task panicked or was cancelled.
    #[error("proxy setup failed: {0}")]
    Stopped(#[source] tokio::task::JoinError),
}

/// A proxy serving in the background. Dropping it stops the listener.
pub struct RunningProxy {
    pub addr: SocketAddr,
    pub ca_cert_pem: String,
    pub ca_cert_path: std::path::PathBuf,
    pub services: Services,
    /// Where the provider API listens, when enabled.
    pub api_addr: Option<SocketAddr>,
    api_shutdown: Option<oneshot::Sender<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), hudsucker::Error>>>,
}

impl RunningProxy {
    /// Waits until the proxy stops (it runs until shut down).
    pub async fn wait(mut self) -> Result<(), StartError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StartError::Proxy(e)),
            Err(e) => Err(StartError::Stopped(e)),
        }
    }

    /// Stops accepting connections and lets open ones finish.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Tells the proxy and the API listeners to stop.
    fn signal_stop(&mut self) {
        for tx in [self.shutdown.take(), self.api_shutdown.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// A listener whose accepted connections have Nagle's algorithm off (Linux copies TCP_NODELAY
/// from the listening socket): handshakes are many small writes, and with Nagle plus delayed
/// ACKs each new connection would stall ~40 ms.
fn bind_nodelay(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Installs the process-wide rustls crypto provider. Both ring and aws-lc-rs are linked (through
/// dependencies), so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds the token services for `config` (see [`Services::build`]).
pub fn build_services(config: &Config) -> Result<Services, UpstreamError> {
    build_services_for(config, &instance_id())
}

/// [`build_services`] for a given instance id.
pub fn build_services_for(config: &Config, instance: &str) -> Result<Services, UpstreamError> {
    Services::build(&config.upstream, &config.tokens, instance)
}

/// Builds the proxy from `config`, binds `config.listen`, and serves in the background.
pub async fn start(config: Config) -> Result<RunningProxy, StartError> {
    install_crypto_provider();
    let ca = CertificateAuthority::load_or_create(&config.ca_dir)?;
    for host in ca.hosts_outside_constraints(&config.intercept) {
        tracing::warn!(%host, "intercepted host outside the CA's name constraints: clients will reject its certificates");
    }
    let authority = ca.authority()?;
    let instance = instance_id();
    let services = build_services_for(&config, &instance)?;
    if let Some(bg) = services
        .botguard
        .as_ref()
        .filter(|_| config.tokens.botguard.prewarm)
    {
        bg.warm_in_background();
    }

    let gate = Arc::new(crate::access::Gate::new(
        &config.access,
        config.listen.ip(),
        chosen_destinations(&config),
    ));
    warn_if_open(&config);
    let connector = upstream::connector_checked(&config.upstream, gate.destinations.clone())?;
    let upgrades = {
        let mut h1 = config.upstream.clone();
        h1.http2 = false;
        upstream::connector(&h1)?
    };
    let shared = Arc::new(Shared {
        policy: InterceptPolicy::new(config.intercept.clone()),
        resolver: Resolver::new(&config.upstream),
        tokens: services.tokens.clone(),
        settings: RewriteSettings {
            strict: config.strict,
            max_body_bytes: config.max_body_bytes,
            sentinels: config.tokens.sentinels.clone(),
            always_replace: config.tokens.always_replace,
            player_response: config.rewrite_player_response,
        },
        sessions: learn::session::SessionStore::new(50_000),
        identities: learn::session::Identities::new(10_000),
        regimes: learn::regimes::Regimes::new(config.default_regime, 50_000),
        http: services.http.clone(),
        gate: gate.clone(),
        upgrades,
    });

    let listener = bind_nodelay(config.listen).map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;

    let mut client = Client::builder(TokioExecutor::new());
    client
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .http1_preserve_header_case(true);

    let mut server = ServerBuilder::new(TokioExecutor::new());
    server
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .preserve_header_case(true);

    let (api_tx, api_rx) = oneshot::channel::<()>();
    let api_addr = if config.api.enabled {
        let l = TcpListener::bind(config.api.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.api.listen,
                source,
            })?;
        let a = l.local_addr().map_err(|source| StartError::Listen {
            addr: config.api.listen,
            source,
        })?;
        let mut state = api::ApiState::new(
            services.clone(),
            config.api.compat_version.clone(),
            instance.clone(),
        );
        state.own_proxy = Some(addr);
        state.token = config.api.token.clone();
        state.listen = a;
        let state = Arc::new(state);
        tokio::spawn(api::serve(l, state, async {
            let _ = api_rx.await;
        }));
        tracing::info!(addr = %a, "provider API listening (bgutil-compatible)");
        Some(a)
    } else {
        None
    };

    gate.set_listeners(addr, api_addr);
    let (tx, rx) = oneshot::channel::<()>();
    let proxy = Proxy::builder()
        .with_listener(listener)
        .with_ca(authority)
        .with_http_connector(connector)
        .with_client(client)
        .with_server(server)
        .with_http_handler(PotHandler::new(shared))
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .build()
        .map_err(StartError::Proxy)?;
    let task = tokio::spawn(proxy.start());
    tracing::info!(%addr, ca = %ca.cert_path.display(), "potproxy listening");
    Ok(RunningProxy {
        addr,
        ca_cert_pem: ca.cert_pem.clone(),
        ca_cert_path: ca.cert_path.clone(),
        services,
        api_addr,
        api_shutdown: Some(api_tx),
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Destinations the operator chose, allowed whatever `[access]` says: `[upstream] resolve`
/// targets and the `[upstream] proxy`.
fn chosen_destinations(config: &Config) -> Vec<SocketAddr> {
    let mut chosen: Vec<SocketAddr> = config.upstream.resolve.iter().map(|(_, a)| *a).collect();
    if let Some(proxy) = config.upstream.proxy.address() {
        chosen.push(proxy);
    }
    chosen
}

/// A listener off loopback is reachable by others: say so loudly.
fn warn_if_open(config: &Config) {
    if !config.listen.ip().is_loopback() && config.access.users.is_empty() {
        tracing::warn!(
            listen = %config.listen,
            "proxy listens off loopback without [auth]: only loopback and private-network clients are served; set [auth] users to serve others"
        );
    }
    if config.api.enabled && !config.api.listen.ip().is_loopback() && config.api.token.is_none() {
        tracing::warn!(
            listen = %config.api.listen,
            "provider API listens off loopback without [api] token: /invalidate_* and /session are refused; set [api] token to allow them"
        );
    }
}
