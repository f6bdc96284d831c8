//! The built-in minter as a token source. With a cold-start source after it, it declines while
//! no minter is warm (starting a warm-up in the background) so requests are never held up;
//! otherwise it waits for the warm-up.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource, Unready};
use crate::botguard::error::BotGuardError;
use crate::botguard::pool::MinterPool;
use crate::upstream::PerEgressError;

const NAME: &str = "botguard";

/// The kind of a minter failure: a missed deadline may work later; an error status from
/// YouTube or WAA (or GenerateIT without an integrity token) is the upstream saying no; the
/// rest broke.
fn token_error(e: BotGuardError) -> TokenError {
    if e.is_timeout() {
        TokenError::timed_out(NAME, e)
    } else if e.is_refusal() {
        TokenError::refused(NAME, e)
    } else {
        TokenError::failed(NAME, e)
    }
}

/// Every minter of request-named egresses busy may clear up later; an unusable egress will not.
pub(super) fn pool_error(name: &'static str, e: PerEgressError) -> TokenError {
    match e {
        PerEgressError::Busy { .. } => TokenError::timed_out(name, e),
        PerEgressError::Upstream(_) => TokenError::failed(name, e),
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

    fn readiness(&self) -> BoxFuture<'_, Result<(), Unready>> {
        let state = self.pool.default_minter().state();
        Box::pin(async move {
            match state {
                crate::botguard::minter::MinterState::Ready => Ok(()),
                other => Err(Unready::Minter {
                    source_name: NAME,
                    state: other.as_str(),
                }),
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
                .await
                .map_err(|e| pool_error(NAME, e))?;
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
        use crate::botguard::error::Step;
        use crate::upstream::FetchError;
        let status = |step, status| BotGuardError::Status { step, status };
        let kind = |e: &TokenError| match e {
            TokenError::TimedOut { .. } => "timed out",
            TokenError::Refused { .. } => "refused",
            TokenError::Failed { .. } => "failed",
            TokenError::Unavailable { .. } => "unavailable",
        };
        let cases = [
            (
                BotGuardError::NotReady(Duration::from_secs(20)),
                "timed out",
            ),
            (
                BotGuardError::Transport {
                    step: Step::GenerateIt,
                    cause: FetchError::Timeout {
                        method: http::Method::POST,
                        url: "u".into(),
                        after: Duration::from_secs(30),
                    },
                },
                "timed out",
            ),
            (BotGuardError::EmptyIntegrityToken("x".into()), "refused"),
            // GenerateIT answering 503 is WAA saying no, as its doc promises.
            (status(Step::GenerateIt, 503), "refused"),
            (status(Step::Create, 429), "refused"),
            (
                BotGuardError::NoChallenge(vec![
                    status(Step::Page, 503),
                    status(Step::AttGet, 403),
                ]),
                "refused",
            ),
            (
                BotGuardError::Transport {
                    step: Step::Page,
                    cause: FetchError::Failed {
                        method: http::Method::GET,
                        url: "u".into(),
                        reason: "connection refused".into(),
                    },
                },
                "failed",
            ),
            (
                BotGuardError::Parse {
                    step: Step::GenerateIt,
                    what: "not JSON".into(),
                },
                "failed",
            ),
            (BotGuardError::BadToken("x".into()), "failed"),
        ];
        for (e, want) in cases {
            let text = e.to_string();
            let got = token_error(e);
            assert_eq!(kind(&got), want, "{text}");
            assert_eq!(
                got.to_string(),
                format!("token source `botguard` failed: {text}")
            );
        }
        assert_eq!(
            token_error(BotGuardError::EmptyIntegrityToken("x".into())).to_string(),
            "token source `botguard` failed: GenerateIT returned no integrity token (fallback token: x)"
        );
    }
}
