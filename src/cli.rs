//! The command line of the `potproxy` binary (part of the binary, not the library): the clap
//! definitions, turning flags and environment into configuration overrides and a state
//! directory, and the small commands that serve nothing (`ca`, `check`, `completions`, `man`).
//! Running the proxy and the one-shot provider commands stay in `main.rs`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use potproxy::ca::CertificateAuthority;
use potproxy::config::{Config, Overrides};
use potproxy::state::StateDir;

#[derive(Parser)]
#[command(
    name = "potproxy",
    version,
    about = "YouTube PO-token MITM forward proxy"
)]
pub struct Cli {
    /// Configuration file (TOML); see config.example.toml.
    #[arg(long, global = true, env = "POTPROXY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides `listen`).
    #[arg(long, global = true, env = "POTPROXY_LISTEN")]
    pub listen: Option<String>,

    /// Address of the provider API, e.g. 127.0.0.1:4417 (overrides `[api] listen`).
    #[arg(long, global = true, env = "POTPROXY_API_LISTEN")]
    pub api_listen: Option<String>,

    /// Serve the provider API to anyone who can reach it when it listens off loopback without
    /// `[api] token` (overrides `[api] public`; true/false, yes/no, 1/0).
    #[arg(
        long,
        global = true,
        env = "POTPROXY_API_PUBLIC",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub api_public: Option<bool>,

    /// Directory for state (the CA in certs/, token-cache.json). Default: systemd's
    /// STATE_DIRECTORY, else $XDG_STATE_HOME/potproxy, else ~/.local/state/potproxy.
    #[arg(long, global = true, env = "POTPROXY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Run,
    /// Print the CA certificate's absolute path, generating the CA if needed.
    Ca {
        /// Print the certificate in PEM instead of its path.
        #[arg(long)]
        pem: bool,
    },
    /// Validate the configuration and the overrides without side effects, print a summary.
    Check,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `potproxy man > potproxy.1`.
    Man,
    /// Print nftables rules for transparent mode (`nft -f`): this host's own traffic, with
    /// potproxy's marked connections exempt, or with --gateway the traffic of hosts routed
    /// through this one. Both drop UDP 443 so clients leave QUIC for TCP.
    Rules {
        /// Rules for a gateway (prerouting) instead of this host (output).
        #[arg(long)]
        gateway: bool,
        /// The transparent listener's port. Default: `[transparent] listen`'s.
        #[arg(long)]
        port: Option<u16>,
    },
}

/// `potproxy rules`: the nftables rules for the configured (or given) transparent port.
pub fn rules(config: &Config, gateway: bool, port: Option<u16>) -> anyhow::Result<()> {
    let transparent = config.transparent.as_ref();
    let Some(port) = port.or(transparent.map(|t| t.listen.port())) else {
        anyhow::bail!(
            "no transparent listener: set `[transparent] listen` in the configuration or pass --port"
        );
    };
    let mark = match transparent {
        Some(t) => t.mark,
        None => Some(potproxy::config::DEFAULT_MARK),
    };
    let for_ = if gateway {
        potproxy::serve::transparent::RulesFor::Gateway
    } else {
        potproxy::serve::transparent::RulesFor::Host
    };
    print!("{}", potproxy::serve::transparent::rules(for_, port, mark));
    Ok(())
}

impl Cli {
    /// The configuration with the command line and environment applied, its state paths inside
    /// the state directory. Touches nothing on disk but reading the config file.
    pub fn load(&self) -> anyhow::Result<(Config, StateDir)> {
        let state = StateDir::from_process(self.state_dir.as_deref())?;
        let overrides = Overrides {
            listen: self.listen.clone(),
            api_listen: self.api_listen.clone(),
            api_public: self.api_public,
            state_dir: Some(state.path.clone()),
            ..Overrides::default()
        };
        let config = Config::load(self.config.as_deref(), overrides)?;
        Ok((config, state))
    }
}

/// Creates the state directory (0700) for commands that write state, and logs where it is.
pub fn prepare_state(state: &StateDir, config: &Config) -> anyhow::Result<()> {
    state
        .create()
        .with_context(|| format!("cannot create state directory {}", state.path.display()))?;
    tracing::info!(state_dir = %state.path.display(), chosen_by = %state.origin, "state directory");
    warn_about_old_cwd_state(config);
    Ok(())
}

/// Earlier versions kept `certs/` in the working directory. Starting with a new, empty state
/// directory while such a CA sits here would silently make a second CA: say so instead.
fn warn_about_old_cwd_state(config: &Config) {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let old = cwd.join("certs");
    if old != config.ca_dir
        && old.join("ca.pem").is_file()
        && !config.ca_dir.join("ca.pem").exists()
    {
        tracing::warn!(
            found = %old.display(),
            using = %config.ca_dir.display(),
            "a CA from an earlier version is in the working directory; potproxy now keeps state in \
             its state directory. Move certs/ (and token-cache.json) there, or pass --state-dir ."
        );
    }
}

/// `potproxy ca`: the certificate's absolute path, or with `--pem` the PEM alone.
pub fn ca(config: &Config, pem: bool) -> anyhow::Result<()> {
    potproxy::install_crypto_provider();
    let ca = CertificateAuthority::load_or_create(&config.ca_dir)?;
    let mut out = std::io::stdout().lock();
    if pem {
        write!(out, "{}", ca.cert_pem)?;
    } else {
        let path = std::path::absolute(&ca.cert_path).unwrap_or(ca.cert_path.clone());
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

/// `potproxy check`: what the proxy would run with. The config was already validated by
/// loading it; this only reads (no CA created, nothing bound, no network).
pub fn check(cli: &Cli, config: &Config, state: &StateDir) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let file = cli
        .config
        .as_deref()
        .map_or("none (built-in defaults)".to_string(), |p| {
            p.display().to_string()
        });
    writeln!(out, "config:          {file}")?;
    writeln!(
        out,
        "state directory: {} ({})",
        state.path.display(),
        state.origin
    )?;
    writeln!(out, "proxy listen:    {}", config.listen)?;
    if config.api.enabled {
        writeln!(out, "provider API:    {}", config.api.listen)?;
    } else {
        writeln!(out, "provider API:    disabled")?;
    }
    let ca_pem = config.ca_dir.join("ca.pem");
    let ca_state = if ca_pem.is_file() {
        "exists"
    } else {
        "created on first start"
    };
    writeln!(out, "CA certificate:  {} ({ca_state})", ca_pem.display())?;
    match &config.tokens.cache_file {
        Some(f) => writeln!(out, "token cache:     {}", f.display())?,
        None => writeln!(out, "token cache:     in memory only")?,
    }
    let sources: Vec<&str> = config
        .tokens
        .sources
        .iter()
        .filter_map(|k| {
            potproxy::config::SourceKind::ALL
                .iter()
                .find(|(_, v)| v == k)
                .map(|(n, _)| *n)
        })
        .collect();
    writeln!(out, "token sources:   {}", sources.join(", "))?;
    writeln!(
        out,
        "intercepted:     {} host patterns",
        config.intercept.len()
    )?;
    let egress = config.upstream.proxy.key_or_direct();
    writeln!(out, "upstream:        {egress}")?;
    writeln!(out, "ok")?;
    Ok(())
}

/// `potproxy completions <shell>`.
pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "potproxy",
        &mut std::io::stdout(),
    );
}

/// `potproxy man`: the roff man page (options, environment, and a SUBCOMMANDS section).
pub fn man() -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    std::io::stdout().write_all(&buf)?;
    Ok(())
}
