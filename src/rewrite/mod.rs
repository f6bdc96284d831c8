//! Pure rewrites of what clients send: the player JSON body and googlevideo URLs. No sockets, no
//! token lookups: callers pass the token in and get bytes or strings back.

pub mod media;
pub mod player;
pub mod response;
pub mod sabr;
