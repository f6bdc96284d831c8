//! Static tokens from configuration or `YT_DLP_PO_TOKEN`: a per-binding table, then a default that
//! answers every binding. Its answers are never cached.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{Minted, TokenError, TokenRequest, TokenSource};
use crate::token::Token;

pub struct StaticSource {
    default: Option<Token>,
    bindings: BTreeMap<String, Token>,
}

impl StaticSource {
    /// `bindings` answers its bindings; `default` every other one.
    pub fn new(default: Option<Token>, bindings: BTreeMap<String, Token>) -> Self {
        StaticSource { default, bindings }
    }

    fn lookup(&self, req: &TokenRequest) -> Option<Token> {
        req.binding
            .key()
            .and_then(|k| self.bindings.get(k))
            .or(self.default.as_ref())
            .cloned()
    }
}

impl TokenSource for StaticSource {
    fn name(&self) -> &'static str {
        "static"
    }

    fn get<'a>(
        &'a self,
        req: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<Option<Minted>, TokenError>> {
        // Never cached (nor persisted): the lookup is cheap, and a changed token (config edit,
        // `YT_DLP_PO_TOKEN`, reload) must take effect at once rather than after the TTL.
        let answer = self.lookup(req).map(|token| Minted {
            cacheable: false,
            ..Minted::lasting(token)
        });
        Box::pin(async move { Ok(answer) })
    }

    fn readiness(&self) -> BoxFuture<'_, Result<(), super::Unready>> {
        let ready = match self.default {
            Some(_) => Ok(()),
            None => Err(super::Unready::NotConfigured {
                source_name: self.name(),
            }),
        };
        Box::pin(async move { ready })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Binding;

    #[test]
    fn binding_table_wins_over_default() {
        let a = Token::from_bytes(&[0x32, 1]);
        let b = Token::from_bytes(&[0x32, 2]);
        let s = StaticSource::new(
            Some(a.clone()),
            [("vid00000001".to_string(), b.clone())].into(),
        );
        let req = TokenRequest::new;
        assert_eq!(
            s.lookup(&req(Binding::Video("vid00000001".into()))),
            Some(b)
        );
        assert_eq!(
            s.lookup(&req(Binding::Video("other".into()))),
            Some(a.clone())
        );
        assert_eq!(s.lookup(&req(Binding::Unknown)), Some(a));
        assert_eq!(
            StaticSource::new(None, BTreeMap::new()).lookup(&req(Binding::Unknown)),
            None
        );
    }
}
