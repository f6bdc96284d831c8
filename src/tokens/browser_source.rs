//! Headless Chromium as a token source ([`crate::browser`]): browser-grade tokens, minted in a
//! real engine at YouTube's origin through the request's egress. A browser that cannot start or
//! mint fails the source, and the service moves on to the next one (QuickJS, usually).
//! With a prover ([`crate::proof`]) a minter's first token is followed, in the background, by
//! a proof of that minter; a refused one is dropped and a replacement warmed (once).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource, Unready};
use crate::browser::{BrowserError, BrowserMinter, BrowserPool};
use crate::proof::{Outcome, Prover, rebuild};

const NAME: &str = "browser";

/// The kind of a browser failure: a missed deadline may work next time; an error status from
/// YouTube or WAA (or GenerateIT without an integrity token) is the upstream saying no.
fn token_error(e: BrowserError) -> TokenError {
    match &e {
        BrowserError::Timeout { .. } => TokenError::timed_out(NAME, e),
        BrowserError::Flow(f) if f.is_timeout() => TokenError::timed_out(NAME, e),
        BrowserError::Flow(f) if f.is_refusal() => TokenError::refused(NAME, e),
        _ => TokenError::failed(NAME, e),
    }
}

pub struct BrowserSource {
    pool: Arc<BrowserPool>,
    proof: Option<Proofs>,
}

/// Which browser minters were proved, per egress key.
struct Proofs {
    prover: Arc<Prover>,
    /// The last minter id seen per egress, and whether the next new one replaces a minter its
    /// proof refused (then it is proved but never rebuilt). Bounded by [`crate::proof::MAX_EGRESSES`].
    seen: moka::sync::Cache<String, (u64, bool)>,
    /// Makes a look and the record that follows it one step (one proof per new minter).
    one_at_a_time: std::sync::Mutex<()>,
}

/// What a token of minter `id` means for proving, given the last minter seen for its egress
/// (`prev`): `None` when that minter was seen already; otherwise whether it replaces a minter
/// its proof refused.
fn first_token_of(prev: Option<(u64, bool)>, id: u64) -> Option<bool> {
    match prev {
        Some((last, _)) if last == id => None,
        Some((_, replacing)) => Some(replacing),
        None => Some(false),
    }
}

impl BrowserSource {
    pub fn new(pool: Arc<BrowserPool>) -> Self {
        BrowserSource { pool, proof: None }
    }

    /// The same source proving each new minter with `prover`.
    pub fn with_prover(mut self, prover: Arc<Prover>) -> Self {
        self.proof = Some(Proofs {
            prover,
            seen: moka::sync::Cache::new(crate::proof::MAX_EGRESSES),
            one_at_a_time: std::sync::Mutex::new(()),
        });
        self
    }

    /// After a mint by minter `id` of `m`: its first token starts its proof in the background
    /// (the client already has its token; the next ones are spared a refused minter).
    fn after_mint(&self, req: &TokenRequest, m: &Arc<BrowserMinter>, id: u64) {
        let Some(proofs) = &self.proof else { return };
        let key = req
            .egress
            .as_ref()
            .and_then(|e| e.key())
            .unwrap_or_else(|| proofs.prover.home().to_string());
        let replacing = {
            let _one = proofs.one_at_a_time.lock().expect("proofs lock");
            let Some(replacing) = first_token_of(proofs.seen.get(&key), id) else {
                return;
            };
            proofs.seen.insert(key.clone(), (id, false));
            replacing
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let prover = proofs.prover.clone();
        let seen = proofs.seen.clone();
        let m = m.clone();
        rt.spawn(async move {
            let minter = m.clone();
            let outcome = prover
                .prove(&key, &m.http().clone(), |binding| async move {
                    match minter.mint(&binding).await {
                        Ok((t, _, by)) if by == id => Ok(t),
                        // Dropped or closed meanwhile: a later minter answered, and it is
                        // not the one this proof is about.
                        Ok(_) => Err("another minter answered".to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                })
                .await;
            if outcome == Outcome::Refused && replacing {
                // Two in a row refused: the URL itself may be what googlevideo refuses.
                prover.forget(&key);
            }
            if rebuild(&outcome, replacing) && m.invalidate_minter(id).await {
                seen.insert(key, (id, true));
                tracing::warn!(
                    source = NAME,
                    minter = id,
                    "dropped the new browser minter its proof refused; warming a replacement"
                );
                if let Err(e) = m.warm().await {
                    tracing::warn!(source = NAME, error = %e, "replacing a refused browser minter failed");
                }
            }
        });
    }
}

impl TokenSource for BrowserSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
        Box::pin(async move {
            let Some(binding) = req.binding.key() else {
                return Ok(None);
            };
            let m = self
                .pool
                .for_egress(req.egress.as_ref())
                .await
                .map_err(|e| super::botguard_source::pool_error(NAME, e))?;
            match m.mint(binding).await {
                Ok((token, expires_at, minter)) => {
                    self.after_mint(req, &m, minter);
                    Ok(Some(Minted {
                        token,
                        expires_at: Some(expires_at),
                        cacheable: true,
                        minter: Some(minter),
                    }))
                }
                Err(e) => Err(token_error(e)),
            }
        })
    }

    /// Ready while the configured egress's browser holds a warm minter (`/readyz`).
    fn readiness(&self) -> BoxFuture<'_, Result<(), Unready>> {
        let warm = self.pool.default_minter().is_warm();
        Box::pin(async move {
            if warm {
                Ok(())
            } else {
                Err(Unready::Minter {
                    source_name: NAME,
                    state: "not warm",
                })
            }
        })
    }

    /// Drops the page minter that made a refused token; the next mint warms a fresh one.
    fn refused(&self, req: &TokenRequest, minter: Option<u64>) -> bool {
        if let (Some(id), Some(m)) = (minter, self.pool.existing(req.egress.as_ref())) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if m.invalidate_minter(id).await {
                        tracing::info!(
                            source = NAME,
                            minter = id,
                            "dropped the browser minter whose token was refused"
                        );
                    }
                });
            }
        }
        true
    }

    fn invalidate(&self) {
        let pool = self.pool.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { pool.invalidate_all().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_new_minter_is_proved_once_and_a_replacement_is_marked() {
        let cases = [
            (None, 1, Some(false)),
            (Some((1, false)), 1, None),
            (Some((1, false)), 2, Some(false)),
            // Minter 1 was refused: the next one replaces it.
            (Some((1, true)), 2, Some(true)),
            (Some((1, true)), 1, None),
        ];
        for (prev, id, want) in cases {
            assert_eq!(first_token_of(prev, id), want, "{prev:?} {id}");
        }
    }

    #[test]
    fn browser_failures_keep_their_kind() {
        let e = token_error(BrowserError::Timeout {
            op: "mint",
            after: Duration::from_secs(1),
        });
        assert!(matches!(e, TokenError::TimedOut { .. }), "{e:?}");
        let e = token_error(BrowserError::Flow(
            crate::botguard::error::BotGuardError::Status {
                step: crate::botguard::error::Step::GenerateIt,
                status: 503,
            },
        ));
        assert!(matches!(e, TokenError::Refused { .. }), "{e:?}");
        let e = token_error(BrowserError::NotFound);
        assert!(matches!(e, TokenError::Failed { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("token source `browser` failed: no browser found")
        );
    }
}
