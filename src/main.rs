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
        .with_env_filter(potproxy::redact::log_filter(
            std::env::var("POTPROXY_LOG").ok().as_deref(),
            default_filter,
        ))
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
            rt.block_on(async {
                let proxy = potproxy::start(config).await?;
                tokio::select! {
                    r = proxy.wait() => r?,
                    _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
                }
                Ok(())
            })
        }
    }
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
