//! The `potproxy` binary: parse the command line, load the configuration, hand over to the
//! library. Nothing here but wiring.

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use potproxy::api::{ApiError, ApiState, GetPot};
use potproxy::config::Config;
use potproxy::upstream::Egress;

/// Logs to stderr, filtered by `POTPROXY_LOG` (else `default_filter`): one JSON object per line
/// with `POTPROXY_LOG_FORMAT=json`, else text, with ANSI colours only when stderr is a terminal.
/// Either way, control and bidi characters from clients (hosts, paths, headers) are escaped.
fn init_logging(default_filter: &str) -> anyhow::Result<()> {
    use potproxy::redact::{EscapedFields, JsonEscaping};
    use std::io::IsTerminal;
    let filter = potproxy::redact::log_filter(
        std::env::var("POTPROXY_LOG").ok().as_deref(),
        default_filter,
    );
    let format = std::env::var("POTPROXY_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format.trim().to_ascii_lowercase().as_str() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(|| JsonEscaping(std::io::stderr()))
            .init(),
        "" | "text" => builder
            .fmt_fields(EscapedFields::default())
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
        other => anyhow::bail!("POTPROXY_LOG_FORMAT = {other:?}: expected \"json\" or \"text\""),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Generated from the CLI itself: no configuration, no logging.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            cli::completions(*shell);
            return Ok(());
        }
        Some(Command::Man) => return cli::man(),
        _ => {}
    }
    // One-shot commands keep stderr quiet unless asked; the proxy logs at info.
    let default_filter =
        match &cli.command {
            Some(Command::Mint { verbose, .. }) | Some(Command::Session { verbose }) => {
                if *verbose { "info" } else { "error" }
            }
            Some(Command::Check) => "warn",
            _ => "info",
        };
    init_logging(default_filter)?;

    let (config, state) = cli.load()?;
    if let Some(Command::Check) = &cli.command {
        return cli::check(&cli, &config, &state);
    }
    if let Some(Command::Rules { gateway, port }) = &cli.command {
        return cli::rules(&config, *gateway, *port);
    }
    cli::prepare_state(&state, &config)?;

    match cli.command.unwrap_or(Command::Run) {
        Command::Ca { pem } => cli::ca(&config, pem),
        Command::Check | Command::Completions { .. } | Command::Man | Command::Rules { .. } => {
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
