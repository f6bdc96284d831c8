//! potproxy: a MITM forward proxy that adds YouTube Proof-of-Origin (PO) tokens to the requests
//! of clients that cannot mint them.
//!
//! # Data flow
//!
//! ```text
//! client ──▶ front door (serve::door::decide: access, intercept)
//!               ├─ refused / CA page ───────────▶ answered by the proxy
//!               ├─ not a YouTube host, upgrades ─▶ one blind tunnel routine (serve::tunnel)
//!               └─ YouTube host (by name or SNI) ▶ TLS with a leaf from our CA (ca, serve)
//!                                                  │ request hook (handler)
//!            classify  (classify: pure Route)
//!            read      (body: bounded)
//!            plan      (handler::plan: pure; where the token goes, or pass)
//!            context   (learn: playback, regime; innertube: visitor data)
//!            token     (tokens: cache, then sources in order)
//!            apply     (rewrite, handler::plan: pure)
//!            forward   (upstream: overrides, egress proxy, verified TLS) ─▶ YouTube
//!            watch     (learn from responses; ump: in-band refusals; retry a 403)
//! ```
//!
//! The stages are drawn in full in [`handler`]'s docs and in `docs/ARCHITECTURE.md`, which also
//! says where a new token source, rewrite or learned fact goes.
//!
//! Media bodies are never buffered: only player JSON, SABR protobuf and HTML page bodies are
//! read, up to a cap ([`body`]). Any failure to rewrite forwards the original request and logs
//! why (`strict = true` turns that into a 502). On the way back, player responses and pages teach
//! [`learn`] and [`bindings`] which video and session each media URL belongs to; refused media
//! requests are retried once with the other binding ([`ump`] watches in-band refusals). A token
//! refused once the binding is known good is blamed on its source and minter ([`heal`]): fresh
//! minter, then the next source; a media body that breaks mid-stream is resumed into the same
//! client response, with the same token unless the evidence says it was refused.
//!
//! [`api`] serves the same token service as a bgutil-compatible provider.
//!
//! # Ownership
//!
//! Each module owns its vocabulary and its settings type (`upstream::UpstreamConfig`,
//! `tokens::TokensConfig`, `api::ApiConfig`, ...). [`config`] parses and validates the file and
//! builds those settings; no module below it imports it. [`services`] builds the token side
//! once; [`app`] wires everything and starts the listeners. Imports only point down this list.
//!
//! [`start`] builds and runs the whole proxy from a [`config::Config`]; tests call it with
//! port 0 and upstream overrides that point YouTube's names at in-process fakes.

// Shared vocabulary.
pub mod errtext;
// Atomic, private file writes (the CA, the token cache file).
pub mod fsutil;
pub mod metrics;
pub mod redact;

pub mod token;
pub mod wire;

// The way in (CONNECT filter, our CA) and the way out.
pub mod intercept;

// Timeouts, the connection cap and the idle clocks every connection runs under.
pub mod limits;

// Who may use the proxy and the API, and where it may connect.
pub mod access;

pub mod ca;

// What the operator sees (access log, byte counts) and what clients fetch (PAC, CA page).
pub mod observe;

pub mod upstream;

pub mod innertube;

// Request stages, in the order a request meets them.
pub mod classify;

pub mod body;

pub mod rewrite;

// What responses teach: media in-band refusals, bindings, sessions.
pub mod ump;

// SABR: its messages, the gateway URLs and the proxy's own SABR client.
pub mod sabr;

pub mod heal;

pub mod bindings;

pub mod learn;

// Proving a new minter's first token (used by the minters and the token service).
pub mod proof;

// Tokens: the minter, the token service, and the services built from them.
pub mod botguard;

pub mod browser;

pub mod tokens;

pub mod services;

// The fleet: what nodes share through Redis (`[cluster]`).
pub mod cluster;

// The front door: the proxy listener's server decides what each arrival is (refused, answered
// here, tunnelled, decrypted, handed to the hook), with the one tunnel routine, and drains.
pub mod serve;

// Assembly: the request hook, the provider API, the configuration, the running app.
pub mod handler;

pub mod api;

// Where state lives (CA, token cache), chosen once per start.
pub mod state;

pub mod config;

pub mod app;

#[cfg(test)]
mod testutil;

pub use app::{
    RunningProxy, StartError, build_services, build_services_for, install_crypto_provider, start,
};
pub use services::{Services, instance_id};
