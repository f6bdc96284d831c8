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
/// identity as the local cache key: the spelling of the proxy URL does not count, its
/// credentials do (as a fingerprint, never in clear).
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
    fn the_shared_key_names_kind_egress_and_binding_without_credentials_in_clear() {
        let mut req = TokenRequest::new(Binding::Video("aaaaaaaaaaa".into()));
        assert_eq!(shared_key(&req).unwrap(), "video:-:aaaaaaaaaaa");
        req.egress = Some(Egress::parse("http://proxy.example:3128").unwrap());
        assert_eq!(
            shared_key(&req).unwrap(),
            "video:http://proxy.example:3128:aaaaaaaaaaa"
        );
        req.egress = Some(Egress::parse("http://user:secret@proxy.example:3128").unwrap());
        let k = shared_key(&req).unwrap();
        assert!(
            k.starts_with("video:http://proxy.example:3128#cred="),
            "{k}"
        );
        assert!(!k.contains("secret") && !k.contains("user"), "{k}");
        assert!(shared_key(&TokenRequest::new(Binding::Unknown)).is_none());
    }
}

#[cfg(test)]
mod service_tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::tokens::{Minted, TokenError, TokenService, TokenSource};

    /// The fleet's store in memory, with a switch that makes it unreachable.
    #[derive(Default)]
    struct MemoryFleet {
        tokens: Mutex<HashMap<String, (Token, SystemTime)>>,
        claims: Mutex<HashMap<String, String>>,
        down: AtomicBool,
        released: AtomicUsize,
    }

    impl SharedTokens for MemoryFleet {
        fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Fleet> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Fleet::Unreachable;
                }
                match self.tokens.lock().unwrap().get(key) {
                    Some((t, e)) => Fleet::Found(t.clone(), *e),
                    None => Fleet::Missing,
                }
            })
        }
        fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Claim> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Claim::Unreachable;
                }
                let mut claims = self.claims.lock().unwrap();
                if claims.contains_key(key) {
                    return Claim::Theirs;
                }
                claims.insert(key.to_string(), "mine".into());
                Claim::Ours("mine".into())
            })
        }
        fn publish(&self, key: &str, token: &Token, expires_at: SystemTime) {
            self.tokens
                .lock()
                .unwrap()
                .insert(key.to_string(), (token.clone(), expires_at));
        }
        fn release(&self, key: &str, claim: String) {
            let mut claims = self.claims.lock().unwrap();
            if claims.get(key) == Some(&claim) {
                claims.remove(key);
            }
            self.released.fetch_add(1, Ordering::SeqCst);
        }
        fn forget(&self, key: &str) {
            self.tokens.lock().unwrap().remove(key);
        }
    }

    /// Counts mints; fails when told to.
    #[derive(Default)]
    struct Counting {
        mints: AtomicUsize,
        fail: AtomicBool,
    }

    impl TokenSource for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn get<'a>(
            &'a self,
            _: &'a TokenRequest,
        ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
            Box::pin(async move {
                if self.fail.load(Ordering::SeqCst) {
                    return Err(TokenError::failed(
                        "counting",
                        std::io::Error::other("down"),
                    ));
                }
                let n = self.mints.fetch_add(1, Ordering::SeqCst) as u8;
                Ok(Some(Minted::lasting(Token::from_bytes(&[0x32, 7, n]))))
            })
        }
    }

    fn node(fleet: &Arc<MemoryFleet>) -> (TokenService, Arc<Counting>) {
        let source = Arc::new(Counting::default());
        let svc = TokenService::uncached(vec![source.clone()]).with_shared(fleet.clone());
        (svc, source)
    }

    fn req() -> TokenRequest {
        TokenRequest::new(Binding::Video("abcdefghijk".into()))
    }

    #[tokio::test]
    async fn a_token_one_node_minted_is_served_by_another_without_minting() {
        let fleet = Arc::new(MemoryFleet::default());
        let (a, a_src) = node(&fleet);
        let (b, b_src) = node(&fleet);
        let t = a.get(&req()).await.unwrap();
        assert_eq!(b.get(&req()).await.unwrap(), t);
        assert_eq!(a_src.mints.load(Ordering::SeqCst), 1);
        assert_eq!(b_src.mints.load(Ordering::SeqCst), 0);
        assert!(fleet.claims.lock().unwrap().is_empty(), "claim released");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_waits_for_the_claim_holders_token_and_mints_itself_only_after_the_wait() {
        let fleet = Arc::new(MemoryFleet::default());
        let key = shared_key(&req()).unwrap();
        fleet
            .claims
            .lock()
            .unwrap()
            .insert(key.clone(), "theirs".into());
        let (b, b_src) = node(&fleet);
        let theirs = Token::from_bytes(&[0x32, 9, 9]);
        let publisher = {
            let fleet = fleet.clone();
            let theirs = theirs.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                fleet.publish(&key, &theirs, SystemTime::now() + Duration::from_secs(60));
            })
        };
        assert_eq!(b.get(&req()).await.unwrap(), theirs);
        assert_eq!(b_src.mints.load(Ordering::SeqCst), 0);
        publisher.await.unwrap();
        // A claim whose holder never publishes: bounded wait, then a local mint.
        let mut other = req();
        other.binding = Binding::Video("zzzzzzzzzzz".into());
        fleet
            .claims
            .lock()
            .unwrap()
            .insert(shared_key(&other).unwrap(), "stuck".into());
        let started = tokio::time::Instant::now();
        b.get(&other).await.unwrap();
        assert_eq!(b_src.mints.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() >= CLAIM_WAIT);
    }

    #[tokio::test]
    async fn a_fleet_token_with_an_absurd_expiry_never_outlives_this_nodes_ttl() {
        let fleet = Arc::new(MemoryFleet::default());
        let key = shared_key(&req()).unwrap();
        // Year 5138, as a rewritten Redis entry may say.
        let far = std::time::UNIX_EPOCH + Duration::from_secs(105_000_000_000);
        fleet.publish(&key, &Token::from_bytes(&[0x32, 5]), far);
        let (b, b_src) = node(&fleet);
        let cap = SystemTime::now() + Duration::from_secs(6 * 3600 + 60);
        let issued = b.issue(&req()).await.unwrap();
        assert!(issued.expires_at <= cap, "{:?}", issued.expires_at);
        let again = b.issue(&req()).await.unwrap();
        assert!(
            again.cached && again.expires_at <= cap,
            "the local copy too"
        );
        assert_eq!(b_src.mints.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_unreachable_fleet_means_minting_locally() {
        let fleet = Arc::new(MemoryFleet::default());
        fleet.down.store(true, Ordering::SeqCst);
        let (a, a_src) = node(&fleet);
        a.get(&req()).await.unwrap();
        assert_eq!(a_src.mints.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_mint_gives_the_claim_back() {
        let fleet = Arc::new(MemoryFleet::default());
        let (a, a_src) = node(&fleet);
        a_src.fail.store(true, Ordering::SeqCst);
        assert!(a.get(&req()).await.is_err());
        assert!(fleet.claims.lock().unwrap().is_empty());
        assert_eq!(fleet.released.load(Ordering::SeqCst), 1);
    }
}
