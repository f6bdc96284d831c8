//! Headless Chromium as a token source ([`crate::browser`]): browser-grade tokens, minted in a
//! real engine at YouTube's origin through the request's egress. A browser that cannot start or
//! mint fails the source, and the service moves on to the next one (QuickJS, usually).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource, Unready};
use crate::browser::{BrowserError, BrowserPool};

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
}

impl BrowserSource {
    pub fn new(pool: Arc<BrowserPool>) -> Self {
        BrowserSource { pool }
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
