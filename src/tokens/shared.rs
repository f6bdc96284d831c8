//! The fleet's tier behind the in-process token cache: what [`super::TokenService`] asks when
//! its own cache misses, before minting. A node first looks for a token another node minted for
//! the same (binding, egress); when there is none it claims the binding fleet-wide, so however
//! many nodes are asked at once only one mints while the others wait a bounded time for its
//! token. Every answer may be "unreachable": the service then mints locally, as a single node
//! would. The store itself (Redis) lives in `crate::cluster`; this module only says what the
//! service needs from it, so tokens never depend on the store.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::TokenRequest;
use crate::token::{Binding, Token};
use crate::upstream::Egress;

/// How long a node waits for another node's token before minting itself.
pub const CLAIM_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting node looks again.
pub const CLAIM_POLL: Duration = Duration::from_millis(20);

/// A stored token, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fleet {
    Found(Token, SystemTime),
    Missing,
    /// The store did not answer in time (or is known to be down).
    Unreachable,
}

/// The answer to a claim on a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node mints; the string releases the claim.
    Ours(String),
    /// Another node is minting.
    Theirs,
    Unreachable,
}

/// What the token service needs from the fleet's store. Reads are bounded by the store's
/// timeout; writes are fire-and-forget (they never delay a request).
pub trait SharedTokens: Send + Sync {
    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Fleet>;
    fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Claim>;
    /// Stores a minted token until `expires_at`.
    fn publish(&self, key: &str, token: &Token, expires_at: SystemTime);
    /// Gives up a claim taken with [`claim`](Self::claim) (only if it is still ours).
    fn release(&self, key: &str, claim: String);
    /// Drops a token googlevideo refused.
    fn forget(&self, key: &str);
}

/// The fleet-wide name of a request's (binding, egress), `None` for unbound requests. Same
/// identity as the local cache key: credentials and spelling of the proxy URL do not count.
pub fn shared_key(req: &TokenRequest) -> Option<String> {
    let (kind, binding) = match &req.binding {
        Binding::Video(v) => ("video", v),
        Binding::Session(s) => ("session", s),
        Binding::Unknown => return None,
    };
    let egress = req.egress.as_ref().and_then(Egress::key);
    Some(format!(
        "{kind}:{}:{binding}",
        egress.as_deref().unwrap_or("-")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_key_names_kind_egress_and_binding_without_credentials() {
        let mut req = TokenRequest::new(Binding::Video("aaaaaaaaaaa".into()));
        assert_eq!(shared_key(&req).unwrap(), "video:-:aaaaaaaaaaa");
        req.egress = Some(Egress::parse("http://user:secret@proxy.example:3128").unwrap());
        let k = shared_key(&req).unwrap();
        assert_eq!(k, "video:http://proxy.example:3128:aaaaaaaaaaa");
        assert!(!k.contains("secret"));
        assert!(shared_key(&TokenRequest::new(Binding::Unknown)).is_none());
    }
}
