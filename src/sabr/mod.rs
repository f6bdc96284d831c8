//! SABR, googlevideo's server-driven streaming protocol: a client POSTs a protobuf
//! `VideoPlaybackAbrRequest` and reads media and control parts from a UMP response. This module
//! owns the protocol's messages ([`proto`]), the gateway that gives SABR-only formats a URL
//! ([`gateway`]: the URL scheme; [`formats`]: which responses and clients get one) and the
//! proxy's own SABR client that serves those URLs ([`session`], pure; the handler's gateway
//! stage does its I/O), with its settings (`[sabr]`).

pub mod formats;
pub mod gateway;
pub mod proto;
pub mod range;
pub mod session;

/// `[sabr]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SabrSettings {
    /// Give SABR-only formats gateway URLs (`[sabr] gateway`, default on).
    pub gateway: bool,
}

impl Default for SabrSettings {
    fn default() -> Self {
        SabrSettings { gateway: true }
    }
}
