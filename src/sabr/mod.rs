//! SABR, googlevideo's server-driven streaming protocol: a client POSTs a protobuf
//! `VideoPlaybackAbrRequest` and reads media and control parts from a UMP response. This module
//! owns the protocol's messages ([`proto`]); the SABR client built on them lives beside it.

pub mod proto;
