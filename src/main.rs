//! The `potproxy` binary: parse the command line, load the configuration, hand over to the
//! library. Nothing here but wiring.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use potproxy::ca::CertificateAuthority;
use potproxy::config::{Config, Overrides};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POTPROXY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
