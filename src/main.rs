//! The `potproxy` binary: parse the command line, load the configuration, hand over to the
//! library. Nothing here but wiring.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use potproxy::api::{ApiError, ApiState, GetPot};
use potproxy::ca::CertificateAuthority;
use potproxy::config::{Config, Overrides};
use potproxy::upstream::Egress;

#[derive(Parser)]
#[command(
    name = "potproxy",
    version,
    about = "YouTube PO-token MITM forward proxy"
)]
struct Cli {
    /// Configuration file (TOML); see config.example.toml.
    #[arg(long, global = true, env = "POTPROXY_CONFIG")]
    config: Option<PathBuf>,

    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides `listen`).
    #[arg(long, global = true, env = "POTPROXY_LISTEN")]
    listen: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Print the CA certificate's path and PEM, generating the CA if needed.
    Ca,
    /// Mint one token and print it as JSON on the last stdout line (like bgutil's script).
    Mint {
        /// What to mint for: a video id, visitor data or DataSync ID. Default: fresh visitor data.
        #[arg(short = 'c', long = "content-binding")]
        content_binding: Option<String>,
        /// Upstream proxy for this mint (http://, socks5://, socks5h://).
        #[arg(short = 'p', long)]
        proxy: Option<String>,
        /// Ignore cached tokens (the new one is still stored).
        #[arg(short = 'b', long = "bypass-cache")]
        bypass_cache: bool,
        /// Log progress to stderr.
        #[arg(long)]
        verbose: bool,
    },
    /// Print a ready session (visitor data, its token, rollout token) as JSON.
    Session {
        #[arg(long)]
        verbose: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One-shot commands keep stderr quiet unless asked; the proxy logs at info.
    let default_filter =
        match &cli.command {
            Some(Command::Mint { verbose, .. }) | Some(Command::Session { verbose }) => {
                if *verbose { "info" } else { "error" }
            }
            _ => "info",
        };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POTPROXY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();

    let overrides = Overrides {
        listen: cli.listen.clone(),
        ..Overrides::default()
    };
    let config = Config::load(cli.config.as_deref(), overrides)?;

    match cli.command.unwrap_or(Command::Run) {
        Command::Ca => {
            potproxy::install_crypto_provider();
            let ca = CertificateAuthority::load_or_create(&config.ca_dir)?;
            println!("{}", ca.cert_path.display());
            print!("{}", ca.cert_pem);
            Ok(())
        }
        Command::Mint {
            content_binding,
            proxy,
            bypass_cache,
            ..
        } => one_shot(config, |state| async move {
            // Parsed here, inside the one-shot, so a bad --proxy still ends with `{}`.
            let proxy = proxy.as_deref().map(Egress::parse).transpose()?;
            potproxy::api::mint_for(
                &state,
                GetPot {
                    content_binding,
                    proxy,
                    bypass_cache,
                    ..Default::default()
                },
            )
            .await
        }),
        Command::Session { .. } => one_shot(config, |state| async move {
            potproxy::api::session_json(&state).await
        }),
        Command::Run => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let result = rt.block_on(async {
                let proxy = potproxy::start(config).await?;
                serve_until_stopped(proxy).await
            });
            // Work cut off by the drain (or a minter still running) must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
    }
}

/// Serves until SIGTERM or SIGINT, then drains: the listeners close, in-flight requests,
/// tunnels and streams get `[timeouts] drain_secs` to finish, the token cache is flushed, and
/// the process exits 0. A second SIGTERM/SIGINT during the drain cuts it short. SIGHUP is
/// never fatal: nothing is reloaded yet, so it is logged and ignored.
#[cfg(unix)]
async fn serve_until_stopped(mut proxy: potproxy::RunningProxy) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let which = loop {
        tokio::select! {
            r = proxy.finished() => return r.map_err(Into::into),
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => tracing::info!(
                "SIGHUP received: nothing is reloaded while running (restart to apply configuration changes); still serving"
            ),
        }
    };
    tracing::info!(
        signal = which,
        in_flight = proxy.in_flight(),
        "shutting down: draining in-flight requests"
    );
    tokio::select! {
        outcome = proxy.drain() => {
            if outcome.finished {
                tracing::info!(drained = outcome.in_flight, "drained; exiting");
            } else {
                tracing::warn!(cut_off = outcome.left, "drain time (timeouts.drain_secs) over; exiting with connections still open");
            }
        }
        _ = term.recv() => tracing::warn!("second SIGTERM: exiting without waiting"),
        _ = int.recv() => tracing::warn!("second SIGINT: exiting without waiting"),
    }
    Ok(())
}

#[cfg(not(unix))]
async fn serve_until_stopped(mut proxy: potproxy::RunningProxy) -> anyhow::Result<()> {
    tokio::select! {
        r = proxy.finished() => return r.map_err(Into::into),
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
    proxy.drain().await;
    Ok(())
}

/// Runs one provider call without serving anything, prints its JSON as the last stdout line,
/// and exits non-zero (after printing `{}`) on failure, as bgutil's script does.
fn one_shot<F, Fut>(mut config: Config, work: F) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<ApiState>) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    config.tokens.botguard.prewarm = false;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async {
        potproxy::install_crypto_provider();
        let services = potproxy::build_services(&config)?;
        let state = std::sync::Arc::new(ApiState::new(
            services,
            config.api.compat_version.clone(),
            potproxy::instance_id(),
        ));
        let out = work(state.clone()).await;
        state.services.tokens.cache().flush();
        out.map_err(|e| anyhow::anyhow!(potproxy::errtext::error_chain(&e)))
    });
    match result {
        Ok(v) => {
            println!("{v}");
            Ok(())
        }
        Err(e) => {
            println!("{{}}");
            Err(e)
        }
    }
}
