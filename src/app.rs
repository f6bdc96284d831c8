//! Building and running the whole proxy from a [`Config`]: the CA, the services, the provider
//! API listener and the MITM proxy listener, wired together. The only module besides `main`
//! that reads the whole configuration; everything below it gets its own settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use hudsucker::certificate_authority::RcgenAuthority;

use crate::access::Gate;
use crate::ca::{CaError, CertificateAuthority};
use crate::config::Config;
use crate::handler::{PotHook, RewriteSettings, Shared};
use crate::intercept::InterceptPolicy;
use crate::serve::{DoorRules, Drain, ProxyServer, Tunnels, WayIn};
use crate::services::{FleetTokens, Services, instance_id};
use crate::upstream::{Resolver, UpstreamConnector, UpstreamError};
use crate::{api, learn, limits, upstream};

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
    /// The provider API's port is taken (often by bgutil, whose default is also 4416).
    #[error(
        "cannot start the provider API on {addr}: {source}; move it with --api-listen ADDR \
         (or POTPROXY_API_LISTEN, or `[api] listen`), or turn it off with `[api] enabled = false`"
    )]
    ApiListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Transparent mode cannot be set up (marking needs `CAP_NET_ADMIN`, TPROXY too).
    #[error(
        "config key `{key}`: {source} (transparent mode needs CAP_NET_ADMIN to mark potproxy's own connections; run as root or grant the capability, or set `[transparent] mark = 0` and exempt potproxy's user in the rules)"
    )]
    Transparent {
        key: &'static str,
        source: std::io::Error,
    },
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
    /// Where the SOCKS5 listener is, when `[socks] listen` is set.
    pub socks_addr: Option<SocketAddr>,
    /// Where the transparent listener is, when `[transparent] listen` is set.
    pub transparent_addr: Option<SocketAddr>,
    /// The fleet's Redis (`[cluster]`), when configured: its failed-call counter is for
    /// `/metrics`, its set-aside API for source verdicts.
    pub cluster: Option<crate::cluster::Cluster>,
    api_shutdown: Option<oneshot::Sender<()>>,
    drain: Drain,
    /// `[timeouts] drain_secs`: how long [`RunningProxy::drain`] waits.
    drain_time: Duration,
    /// `[timeouts] shutdown_secs`: how long [`RunningProxy::shutdown`] waits.
    shutdown_time: Duration,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningProxy {
    /// Waits until the proxy stops (it runs until shut down).
    pub async fn wait(mut self) -> Result<(), StartError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        task.await.map_err(StartError::Stopped)
    }

    /// Resolves when the proxy listener stops by itself (it runs until shut down; this means
    /// it panicked). Can be awaited again after a `select!`.
    pub async fn finished(&mut self) -> Result<(), StartError> {
        match self.task.as_mut() {
            Some(task) => {
                let r = task.await.map_err(StartError::Stopped);
                self.task = None;
                r
            }
            None => std::future::pending().await,
        }
    }

    /// Stops accepting connections, lets open ones finish (up to `[timeouts] shutdown_secs`),
    /// then closes the browsers.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        self.drain.wait(self.shutdown_time).await;
        self.close_browsers().await;
    }

    async fn close_browsers(&self) {
        if let Some(b) = &self.services.browsers {
            b.shutdown().await;
        }
    }

    /// The graceful stop (SIGTERM, SIGINT): stop accepting on both listeners, let in-flight
    /// requests, tunnels and streams finish for up to `[timeouts] drain_secs`, then flush the
    /// token cache. Returns what happened, for the log.
    pub async fn drain(mut self) -> DrainOutcome {
        let in_flight = self.drain.in_flight();
        self.signal_stop();
        let finished = self.drain.wait(self.drain_time).await;
        let left = self.drain.in_flight();
        self.services.tokens.cache().flush();
        self.close_browsers().await;
        DrainOutcome {
            in_flight,
            finished,
            left,
        }
    }

    /// Connections, tunnels and streams being served now.
    pub fn in_flight(&self) -> usize {
        self.drain.in_flight()
    }

    /// Tells the proxy and the API listeners to stop.
    fn signal_stop(&mut self) {
        self.drain.stop();
        if let Some(tx) = self.api_shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What a [`RunningProxy::drain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Connections, tunnels and streams open when the drain began.
    pub in_flight: usize,
    /// True when all of them finished within the drain time.
    pub finished: bool,
    /// Still open when the drain ended (cut off at exit).
    pub left: usize,
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.signal_stop();
        // Without an explicit shutdown the browsers still close (no orphan process).
        if let Some(b) = self.services.browsers.clone() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { b.shutdown().await });
            }
        }
    }
}

/// Starts the configured egress's browser and warms its minter in the background
/// (`[tokens.browser] prewarm`).
fn prewarm_browser(services: &Services, config: &Config) {
    if let Some(pool) = services
        .browsers
        .as_ref()
        .filter(|_| config.tokens.browser.prewarm)
    {
        let m = pool.default_minter();
        tokio::spawn(async move {
            if let Err(e) = m.warm().await {
                tracing::warn!(error = %crate::errtext::error_chain(&e), "browser warm-up failed");
            }
        });
    }
}

/// A listener whose accepted connections have Nagle's algorithm off (Linux copies TCP_NODELAY
/// from the listening socket): handshakes are many small writes, and with Nagle plus delayed
/// ACKs each new connection would stall ~40 ms.
fn bind_nodelay(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = nodelay_socket(addr)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// An unbound listening socket for `addr` with address reuse and Nagle off (see
/// [`bind_nodelay`]).
fn nodelay_socket(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Installs the process-wide rustls crypto provider. Both ring and aws-lc-rs are linked (through
/// dependencies), so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds the token services for `config` (see [`Services::build`]), without a fleet.
pub fn build_services(config: &Config) -> Result<Services, UpstreamError> {
    build_services_for(config, &instance_id())
}

/// [`build_services`] for a given instance id.
pub fn build_services_for(config: &Config, instance: &str) -> Result<Services, UpstreamError> {
    Services::build(&config.upstream, &config.tokens, instance, None)
}

/// Builds the proxy from `config`, binds `config.listen`, and serves in the background.
pub async fn start(config: Config) -> Result<RunningProxy, StartError> {
    install_crypto_provider();
    crate::observe::recent::set_capacity(config.api.ui_exchanges);
    let ca = load_ca(&config)?;
    let instance = instance_id();
    let cluster = match &config.cluster {
        Some(c) => Some(crate::cluster::Cluster::connect(c).await?),
        None => None,
    };
    let services = Services::build(
        &config.upstream,
        &config.tokens,
        &instance,
        cluster.as_ref().map(fleet_tokens),
    )?;
    prewarm(&services, &config);
    warn_if_open(&config);
    let listeners = Listeners::bind(&config)?;
    let (api_addr, api_stop) = match config.api.enabled {
        true => {
            let (addr, stop) =
                start_api(&config, &services, &ca, &cluster, &instance, listeners.addr).await?;
            (Some(addr), Some(stop))
        }
        false => (None, None),
    };
    let gate = Arc::new(Gate::new(
        &config.access,
        config.listen.ip(),
        chosen_destinations(&config),
    ));
    // potproxy's own listeners are never a destination through it.
    gate.destinations
        .set_own_listeners(listeners.own().chain(api_addr).collect());
    let drain = Drain::new();
    let proxy = proxy_server(&config, &ca, &services, &cluster, gate, drain.clone())?;
    let (addr, socks_addr, transparent_addr) = (
        listeners.addr,
        listeners.socks_addr(),
        listeners.transparent_addr(),
    );
    let task = listeners.serve(Arc::new(proxy));
    tokio::spawn(release_memory_after_loads(drain.clone()));
    tracing::info!(%addr, ca = %ca.cert_path.display(), "potproxy listening");
    Ok(RunningProxy {
        addr,
        ca_cert_pem: ca.cert_pem.clone(),
        ca_cert_path: ca.cert_path.clone(),
        services,
        api_addr,
        socks_addr,
        transparent_addr,
        cluster,
        api_shutdown: api_stop,
        drain,
        drain_time: config.timeouts.drain,
        shutdown_time: config.timeouts.shutdown,
        task: Some(task),
    })
}

/// The proxy's ways in, bound: the HTTP proxy listener, and SOCKS5 and transparent ones when
/// configured.
struct Listeners {
    http: TcpListener,
    addr: SocketAddr,
    socks: Option<(TcpListener, SocketAddr)>,
    transparent: Option<(TcpListener, SocketAddr, bool)>,
}

impl Listeners {
    fn bind(config: &Config) -> Result<Listeners, StartError> {
        let (http, addr) = bind_proxy(config.listen)?;
        Ok(Listeners {
            http,
            addr,
            socks: config.socks.map(bind_proxy).transpose()?,
            transparent: config
                .transparent
                .as_ref()
                .map(bind_transparent)
                .transpose()?,
        })
    }

    fn socks_addr(&self) -> Option<SocketAddr> {
        self.socks.as_ref().map(|(_, a)| *a)
    }

    fn transparent_addr(&self) -> Option<SocketAddr> {
        self.transparent.as_ref().map(|(_, a, _)| *a)
    }

    /// Every bound address.
    fn own(&self) -> impl Iterator<Item = SocketAddr> {
        [Some(self.addr), self.socks_addr(), self.transparent_addr()]
            .into_iter()
            .flatten()
    }

    /// Serves each way in through `proxy`; the HTTP listener's task is the proxy's own.
    fn serve(
        self,
        proxy: Arc<ProxyServer<UpstreamConnector, RcgenAuthority, PotHook>>,
    ) -> tokio::task::JoinHandle<()> {
        if let Some((l, addr)) = self.socks {
            tokio::spawn(proxy.clone().run(l, WayIn::Socks5));
            tracing::info!(%addr, "SOCKS5 listening");
        }
        if let Some((l, addr, tproxy)) = self.transparent {
            tokio::spawn(proxy.clone().run(l, WayIn::Transparent { tproxy }));
            tracing::info!(%addr, tproxy, "transparent listener (redirected connections)");
        }
        tokio::spawn(proxy.run(self.http, WayIn::Http))
    }
}

/// Our CA, loaded or made on first start; intercepted names it cannot sign for are logged.
fn load_ca(config: &Config) -> Result<CertificateAuthority, StartError> {
    let ca = CertificateAuthority::load_or_create(&config.ca_dir)?;
    for host in ca.hosts_outside_constraints(&config.intercept) {
        tracing::warn!(%host, "intercepted host outside the CA's name constraints: clients will reject its certificates");
    }
    Ok(ca)
}

/// What the fleet lends the token service: its tier of tokens and its refusal verdicts.
fn fleet_tokens(cluster: &crate::cluster::Cluster) -> FleetTokens {
    let c = cluster.clone();
    FleetTokens {
        shared: Arc::new(cluster.clone()),
        verdicts: Box::new(move |local, sources| {
            Arc::new(crate::cluster::FleetRefusals::new(local, c, sources))
        }),
    }
}

/// Minters and browsers warmed in the background, as configured.
fn prewarm(services: &Services, config: &Config) {
    if let Some(bg) = services
        .botguard
        .as_ref()
        .filter(|_| config.tokens.botguard.prewarm)
    {
        bg.warm_in_background();
    }
    prewarm_browser(services, config);
}

/// The proxy listener, bound (see [`bind_nodelay`]).
fn bind_proxy(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let err = |source| StartError::Listen {
        addr: listen,
        source,
    };
    let listener = bind_nodelay(listen).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    Ok((listener, addr))
}

/// The transparent listener: a TPROXY target gets `IP_TRANSPARENT` before it binds; potproxy's
/// own connections must be markable, or the redirect rules would loop them back here.
fn bind_transparent(
    t: &crate::config::TransparentConfig,
) -> Result<(TcpListener, SocketAddr, bool), StartError> {
    if let Some(mark) = t.mark {
        upstream::can_mark(mark).map_err(|source| StartError::Transparent {
            key: "transparent.mark",
            source,
        })?;
    }
    let err = |source| StartError::Transparent {
        key: "transparent.listen",
        source,
    };
    let socket = nodelay_socket(t.listen).map_err(err)?;
    if t.tproxy {
        set_ip_transparent(&socket).map_err(|source| StartError::Transparent {
            key: "transparent.tproxy",
            source,
        })?;
    }
    socket.bind(t.listen).map_err(err)?;
    let listener = socket.listen(1024).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    Ok((listener, addr, t.tproxy))
}

/// `IP_TRANSPARENT`: the socket may accept connections for addresses that are not its own.
fn set_ip_transparent(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_IP,
            libc::IP_TRANSPARENT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The provider API on its own listener; its bound address, and what stops it.
async fn start_api(
    config: &Config,
    services: &Services,
    ca: &CertificateAuthority,
    cluster: &Option<crate::cluster::Cluster>,
    instance: &str,
    proxy_addr: SocketAddr,
) -> Result<(SocketAddr, oneshot::Sender<()>), StartError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let err = |source| StartError::ApiListen {
        addr: config.api.listen,
        source,
    };
    let listener = TcpListener::bind(config.api.listen).await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let mut state = api::ApiState::new(
        services.clone(),
        config.api.compat_version.clone(),
        instance.to_string(),
    );
    state.own_proxy = Some(proxy_addr);
    state.intercept = config.intercept.clone();
    state.ca_pem = Some(ca.cert_pem.clone());
    state.token = config.api.token.clone();
    state.public = config.api.public;
    state.listen = addr;
    state.cluster = cluster.clone();
    tokio::spawn(api::serve_with(
        listener,
        Arc::new(state),
        async {
            let _ = stopped.await;
        },
        api_server_settings(&config.timeouts),
    ));
    tracing::info!(%addr, "provider API listening (bgutil-compatible)");
    Ok((addr, stop))
}

/// The front door, the request hook and what they forward with.
fn proxy_server(
    config: &Config,
    ca: &CertificateAuthority,
    services: &Services,
    cluster: &Option<crate::cluster::Cluster>,
    gate: Arc<Gate>,
    drain: Drain,
) -> Result<ProxyServer<UpstreamConnector, RcgenAuthority, PotHook>, StartError> {
    let policy = InterceptPolicy::new(config.intercept.clone());
    let resolver = Resolver::new(&config.upstream);
    let mut h1 = config.upstream.clone();
    h1.http2 = false;
    let fd_limit = raise_fd_limit();
    let max_connections = limits::connection_cap(config.limits.max_connections, fd_limit);
    tracing::info!(max_connections, fd_limit, "client connection cap");
    Ok(ProxyServer {
        ca: Arc::new(ca.authority()?),
        client: upstream_client().build(upstream::connector_checked(
            &config.upstream,
            gate.destinations.clone(),
        )?),
        server: client_server(&config.timeouts),
        hook: PotHook::new(Arc::new(hook_state(
            config,
            services,
            cluster,
            policy.clone(),
            upstream::HttpClient::checked(
                &config.upstream,
                gate.destinations.clone(),
                Duration::from_secs(30),
            )?,
        ))),
        tunnels: Tunnels {
            resolver: resolver.clone(),
            destinations: gate.destinations.clone(),
        },
        upgrades: upstream::connector_checked(&h1, gate.destinations.clone())?,
        door: DoorRules {
            policy,
            gate,
            resolver,
            ca_pem: ca.cert_pem.clone(),
        },
        timeouts: config.timeouts.clone(),
        max_connections,
        drain,
    })
}

/// What the request hook shares across requests: the token service, what was learned (with
/// the fleet's tier when there is one), the rewrite settings, and the client that sends
/// requests again on a client's behalf (`resend`, under the destination rule).
fn hook_state(
    config: &Config,
    services: &Services,
    cluster: &Option<crate::cluster::Cluster>,
    policy: InterceptPolicy,
    resend: upstream::HttpClient,
) -> Shared {
    let limits = &config.limits;
    Shared {
        policy,
        tokens: services.tokens.clone(),
        settings: RewriteSettings {
            strict: config.strict,
            max_body_bytes: config.max_body_bytes,
            sentinels: config.tokens.sentinels.clone(),
            always_replace: config.tokens.always_replace,
            player_response: config.rewrite_player_response,
            sabr_gateway: config.sabr.gateway,
        },
        sessions: with_fleet(
            learn::session::SessionStore::new(limits.sessions),
            cluster,
            learn::session::SessionStore::with_shared,
        ),
        identities: with_fleet(
            learn::session::Identities::new(limits.identities),
            cluster,
            learn::session::Identities::with_shared,
        ),
        regimes: with_fleet(
            learn::regimes::Regimes::new(config.default_regime, limits.sessions),
            cluster,
            learn::regimes::Regimes::with_shared,
        ),
        http: resend,
        own_ip: std::sync::Mutex::new(None),
    }
}

/// `store` backed by the fleet's tier when there is a cluster.
fn with_fleet<S>(
    store: S,
    cluster: &Option<crate::cluster::Cluster>,
    attach: fn(S, Arc<dyn learn::SharedLearning>) -> S,
) -> S {
    match cluster {
        Some(c) => attach(store, Arc::new(c.clone())),
        None => store,
    }
}

/// The client that forwards user traffic: pooled, with bounded read buffers.
fn upstream_client() -> hyper_util::client::legacy::Builder {
    let mut client = Client::builder(TokioExecutor::new());
    client
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .http1_max_buf_size(limits::UPSTREAM_H1_BUFFER)
        .http1_preserve_header_case(true);
    client
}

/// The server side of client connections: idle clocks and bounded send buffers.
fn client_server(timeouts: &limits::Timeouts) -> ServerBuilder<TokioExecutor> {
    let mut server = ServerBuilder::new(TokioExecutor::new());
    server
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.client_idle)
        .max_buf_size(limits::CLIENT_H1_BUFFER)
        .preserve_header_case(true);
    server
        .http2()
        .max_send_buf_size(limits::CLIENT_H2_STREAM_BUFFER);
    server
}

/// Watches the open connections and streams; when a load has gone (see
/// [`limits::should_release_memory`]) hands the freed heap back to the system, so the resident
/// set returns near its baseline instead of staying at the load's peak.
async fn release_memory_after_loads(drain: Drain) {
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !drain.is_stopped() {
        tick.tick().await;
        let open = drain.in_flight();
        peak = peak.max(open);
        if limits::should_release_memory(peak, open) {
            crate::observe::release_memory();
            peak = open;
        }
    }
}

/// Raises the descriptor limit as far as allowed and returns it (logged when it cannot be
/// read: the connection cap then assumes the common 1024).
fn raise_fd_limit() -> u64 {
    match limits::raise_fd_limit() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the descriptor limit; assuming 1024");
            1024
        }
    }
}

/// The provider API's connection timeouts: the proxy's client ones.
fn api_server_settings(t: &limits::Timeouts) -> api::ServerSettings {
    api::ServerSettings {
        idle: t.client_idle,
        header_read: t.client_idle,
    }
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
