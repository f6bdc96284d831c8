//! The proxy's way out. Every upstream connection of the proxy goes through here, so tests can
//! point real host names at in-process fakes: `egress` (directly or through the user's proxy),
//! `dial` (host overrides, the verified trust store, connectors, tunnels), `client` (the
//! proxy's own HTTP requests) and `per_egress` (the bounded set of minters or browsers kept per
//! request-named egress). This module owns its settings,
//! [`UpstreamConfig`]; `config` builds them from `[upstream]`.

mod client;
mod dial;
mod egress;
mod per_egress;
mod tcp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use client::{FetchError, FetchedResponse, HttpClient};
pub use dial::{
    DialError, OverrideConnector, Resolver, UpstreamConnector, client_tls_config,
    connector_checked, connector_via, root_store,
};
pub use egress::{Egress, EgressError};
pub use per_egress::{Close, Held, PerEgress, PerEgressError, Room, make_room};
pub use tcp::{TcpDialer, can_mark};

use crate::intercept::HostPattern;

/// The `[upstream]` settings, validated.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Host pattern -> socket address; first match wins, exact names before wildcards.
    pub resolve: Vec<(HostPattern, SocketAddr)>,
    pub extra_ca_certs: Vec<PathBuf>,
    pub connect_timeout: Duration,
    pub http2: bool,
    /// The user's proxy every upstream connection leaves through.
    pub proxy: Egress,
    /// `SO_MARK` on every socket potproxy dials (`[transparent] mark`), so redirect rules can
    /// exempt them.
    pub mark: Option<u32>,
}

/// Why the upstream side cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("config key `upstream.extra_ca_certs` has invalid value `{path}`: {cause}")]
    CaFile {
        path: String,
        #[source]
        cause: CaFileError,
    },
    #[error("upstream TLS setup failed: {0}")]
    Tls(#[source] rustls::Error),
}

/// What is wrong with one `extra_ca_certs` file.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("{0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    #[error("no PEM certificate in file")]
    NoCertificate,
    #[error("{0}")]
    Rejected(#[source] rustls::Error),
}
