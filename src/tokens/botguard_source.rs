//! The built-in minter as a token source. With a cold-start source after it, it declines while
//! no minter is warm (starting a warm-up in the background) so requests are never held up;
//! otherwise it waits for the warm-up.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource};
use crate::botguard::minter::BotGuardError;
use crate::botguard::pool::MinterPool;

const NAME: &str = "botguard";

/// The kind of a minter failure: a warm-up that did not finish in time may finish later; an
/// empty integrity token is YouTube saying no.
fn token_error(e: BotGuardError) -> TokenError {
    match e {
        BotGuardError::NotReady(_) => TokenError::timed_out(NAME, e),
        BotGuardError::EmptyIntegrityToken(_) => TokenError::refused(NAME, e),
        e => TokenError::failed(NAME, e),
    }
}

pub struct BotGuardSource {
    pool: Arc<MinterPool>,
    decline_while_warming: bool,
}

impl BotGuardSource {
    pub fn new(pool: Arc<MinterPool>, decline_while_warming: bool) -> Self {
        BotGuardSource {
            pool,
            decline_while_warming,
        }
    }
}

impl TokenSource for BotGuardSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn readiness(&self) -> BoxFuture<'_, Result<(), String>> {
        let state = self.pool.default_minter().state();
        Box::pin(async move {
            match state {
                crate::botguard::minter::MinterState::Ready => Ok(()),
                other => Err(format!("botguard: minter {}", other.as_str())),
            }
        })
    }

    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
        Box::pin(async move {
            let Some(binding) = req.binding.key() else {
                return Ok(None);
            };
            let bg = self
                .pool
                .for_egress(req.egress.as_ref())
                .map_err(|e| TokenError::failed(NAME, e))?;
            if self.decline_while_warming && bg.ready().is_none() {
                bg.warm_in_background();
                return Ok(None);
            }
            match bg.mint_traced(binding).await {
                Ok((token, expires_at, minter)) => Ok(Some(Minted {
                    token,
                    expires_at: Some(expires_at),
                    cacheable: true,
                    minter: Some(minter),
                })),
                Err(e) => Err(token_error(e)),
            }
        })
    }

    fn invalidate(&self) {
        self.pool.invalidate_all();
    }

    /// Drops the minter (of the request's egress) that made a refused token, so the next mint
    /// warms a fresh one.
    fn refused(&self, req: &TokenRequest, minter: Option<u64>) -> bool {
        if let Some(id) = minter {
            if self.pool.invalidate_minter(req.egress.as_ref(), id) {
                tracing::info!(
                    source = NAME,
                    minter = id,
                    "dropped the minter whose token was refused"
                );
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn minter_failures_keep_their_kind_and_message() {
        let e = token_error(BotGuardError::NotReady(Duration::from_secs(20)));
        assert!(matches!(e, TokenError::TimedOut { .. }), "{e:?}");
        let e = token_error(BotGuardError::EmptyIntegrityToken("x".into()));
        assert!(matches!(e, TokenError::Refused { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "token source `botguard` failed: GenerateIT returned no integrity token (fallback token: x)"
        );
        let e = token_error(BotGuardError::GenerateIt("503".into()));
        assert!(matches!(e, TokenError::Failed { .. }), "{e:?}");
    }
}
